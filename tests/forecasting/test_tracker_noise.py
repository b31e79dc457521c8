"""Tracker-like training noise: hand-computed frame turns and offsets, statistics, and what it must not touch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.config import TrackerNoiseConfig
from forecasting.dataset import FeatureBatch
from forecasting.tracker_noise import add_tracker_noise
from forecasting.train import ForecastingTask
from tests.forecasting.conftest import tiny_config, tiny_samples

SCALE = 10.0


def one_sample(agent_speed_m_per_s: float, neighbor_speed_m_per_s: float = 5.0) -> FeatureBatch:
    """One agent at the origin heading +x, one neighbour at (10, 5) m heading +y, one lane, a straight future; goal
    paths: the straight ray and one along the lane."""
    history = np.zeros((1, 3, 7), np.float32)
    history[0, :, 0] = np.array([-2.0, -1.0, 0.0]) * agent_speed_m_per_s / SCALE
    history[0, :, 2] = agent_speed_m_per_s / SCALE
    history[0, :, 4] = 1.0
    history[0, :, 6] = 1.0
    neighbors = np.zeros((1, 2, 3, 7), np.float32)
    neighbors[0, 0, :, 0:2] = np.array([10.0, 5.0]) / SCALE
    neighbors[0, 0, :, 3] = neighbor_speed_m_per_s / SCALE
    neighbors[0, 0, :, 5] = 1.0
    neighbors[0, 0, :, 6] = 1.0
    lanes = np.zeros((1, 2, 4, 5), np.float32)
    lanes[0, 0, :, 0] = np.arange(4) * 5.0 / SCALE
    lanes[0, 0, :, 1] = 1.0 / SCALE
    lanes[0, 0, :, 2] = 1.0
    future = np.zeros((1, 3, 2), np.float32)
    future[0, :, 0] = [1.0, 2.0, 3.0]
    goal_paths = np.zeros((1, 2, 3, 2), np.float32)
    goal_paths[0, :, :, 0] = [0.0, 5.0, 10.0]
    goal_paths[0, 1, :, 1] = 1.0
    return FeatureBatch(
        history=history, neighbors=neighbors, neighbor_mask=np.array([[True, False]]), lanes=lanes, lane_mask=np.array([[True, False]]),
        category=np.zeros(1, np.int64), future_m=future, future_valid=np.ones((1, 3), bool), origin_xy_m=np.zeros((1, 2)),
        heading_rad=np.zeros(1), goal_paths_m=goal_paths, goal_path_valid=np.ones((1, 2), bool),
        goal_path_on_lane=np.array([[False, True]]),
    )  # fmt: skip


def test_off_by_default() -> None:
    assert not TrackerNoiseConfig().enabled
    assert TrackerNoiseConfig(stopped_flip_probability=0.3).enabled


def test_a_stopped_agent_whose_yaw_flips_sees_the_whole_scene_turned_by_180_degrees() -> None:
    batch = one_sample(agent_speed_m_per_s=0.0)
    noisy = add_tracker_noise(batch, TrackerNoiseConfig(stopped_flip_probability=1.0), SCALE, np.random.default_rng(0))
    np.testing.assert_allclose(noisy.future_m[0], [[-1.0, 0.0], [-2.0, 0.0], [-3.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(noisy.neighbors[0, 0, :, 0:2], np.tile([-1.0, -0.5], (3, 1)), atol=1e-6)
    np.testing.assert_allclose(noisy.neighbors[0, 0, :, 2:4], np.tile([0.0, -0.5], (3, 1)), atol=1e-6)
    np.testing.assert_allclose(noisy.neighbors[0, 0, :, 4:6], np.tile([0.0, -1.0], (3, 1)), atol=1e-6)  # moving: heading not flipped again
    np.testing.assert_allclose(noisy.lanes[0, 0, :, 0], -np.arange(4) * 0.5, atol=1e-6)
    np.testing.assert_allclose(noisy.lanes[0, 0, :, 2], -1.0, atol=1e-6)
    np.testing.assert_allclose(noisy.goal_paths_m[0, 1], [[0.0, -1.0], [-5.0, -1.0], [-10.0, -1.0]], atol=1e-6)  # the lane's path
    np.testing.assert_array_equal(noisy.goal_paths_m[0, 0], batch.goal_paths_m[0, 0])  # the ray: straight ahead of the agent
    # the tracker's yaw defines the frame, so the agent's own heading still reads straight ahead; its past headings,
    # stopped too, are flipped state by state
    np.testing.assert_allclose(noisy.history[0, -1, 4:6], [1.0, 0.0])
    np.testing.assert_allclose(noisy.history[0, :-1, 4], -1.0)
    # what is masked stays zero, the input is not modified
    assert not noisy.neighbors[0, 1].any() and not noisy.lanes[0, 1].any()
    assert batch.future_m[0, 0, 0] == 1.0


def test_a_moving_agent_keeps_its_frame() -> None:
    batch = one_sample(agent_speed_m_per_s=8.0)
    noisy = add_tracker_noise(batch, TrackerNoiseConfig(stopped_flip_probability=1.0), SCALE, np.random.default_rng(0))
    for name in ("history", "neighbors", "lanes", "future_m", "goal_paths_m"):
        np.testing.assert_array_equal(getattr(noisy, name), getattr(batch, name))


def test_the_origin_error_moves_the_future_and_the_context_the_other_way() -> None:
    batch = FeatureBatch.concatenate([one_sample(8.0)] * 4000)
    noise = TrackerNoiseConfig(position_std_m=0.5)
    noisy = add_tracker_noise(batch, noise, SCALE, np.random.default_rng(1))
    offset = noisy.future_m - batch.future_m  # (B, F, 2): minus the origin's error, the same at every future step
    np.testing.assert_allclose(offset, np.broadcast_to(offset[:, :1], offset.shape), atol=1e-5)
    assert np.std(offset[:, 0]) == pytest.approx(0.5, rel=0.05)
    np.testing.assert_allclose((noisy.lanes - batch.lanes)[:, 0, :, 0:2] * SCALE, np.broadcast_to(offset[:, :1], (4000, 4, 2)), atol=1e-4)
    np.testing.assert_allclose((noisy.goal_paths_m - batch.goal_paths_m)[:, 1], np.broadcast_to(offset[:, :1], (4000, 3, 2)), atol=1e-4)
    np.testing.assert_array_equal(noisy.goal_paths_m[:, 0], batch.goal_paths_m[:, 0])
    assert not noisy.history[:, -1, 0:2].any()  # the agent stays at its frame's origin
    past = (noisy.history - batch.history)[:, 0, 0:2] * SCALE  # origin shift plus its own error: sqrt(2) x 0.5
    assert np.std(past) == pytest.approx(0.5 * np.sqrt(2.0), rel=0.05)


def test_velocity_errors_have_the_configured_spread_and_tail() -> None:
    batch = FeatureBatch.concatenate([one_sample(8.0)] * 4000)
    noise = TrackerNoiseConfig(velocity_std_m_per_s=0.4, velocity_outlier_probability=0.2, velocity_outlier_std_m_per_s=3.0)
    noisy = add_tracker_noise(batch, noise, SCALE, np.random.default_rng(2))
    error = ((noisy.history - batch.history)[..., 2:4] * SCALE).ravel()
    assert np.sqrt(np.mean(error**2)) == pytest.approx(np.sqrt(0.8 * 0.4**2 + 0.2 * 3.0**2), rel=0.05)
    assert np.median(np.abs(error)) < 0.5  # most states are near the truth; the RMS comes from the tail
    np.testing.assert_array_equal(noisy.future_m, batch.future_m)
    stopped = FeatureBatch.concatenate([one_sample(0.0, neighbor_speed_m_per_s=0.2)] * 10)
    np.testing.assert_array_equal(add_tracker_noise(stopped, noise, SCALE, np.random.default_rng(3)).history[..., 2:4], stopped.history[..., 2:4])


@settings(max_examples=30, deadline=None)
@given(angle_deg=st.floats(0.0, 30.0), seed=st.integers(0, 2**16))
def test_turning_the_frame_keeps_distances(angle_deg: float, seed: int) -> None:
    batch = one_sample(8.0)
    noisy = add_tracker_noise(batch, TrackerNoiseConfig(heading_std_deg=angle_deg), SCALE, np.random.default_rng(seed))
    distance = np.linalg.norm(noisy.neighbors[0, 0, -1, 0:2] - noisy.lanes[0, 0, 2, 0:2])
    assert distance == pytest.approx(float(np.linalg.norm(batch.neighbors[0, 0, -1, 0:2] - batch.lanes[0, 0, 2, 0:2])), rel=1e-5)
    assert float(np.linalg.norm(noisy.future_m[0, -1])) == pytest.approx(3.0, rel=1e-5)
    assert float(np.linalg.norm(noisy.neighbors[0, 0, -1, 4:6])) == pytest.approx(1.0, rel=1e-5)


def test_training_batches_are_noisy_and_reproducible() -> None:
    noise = {"velocity_std_m_per_s": 1.0, "stopped_flip_probability": 0.3}
    cfg = tiny_config().model_copy(update={"tracker_noise": TrackerNoiseConfig(**noise)})
    samples = tiny_samples(cfg)
    indices = np.arange(8)
    first = ForecastingTask(cfg, samples).make_batch(indices, 0, torch.device("cpu"))
    again = ForecastingTask(cfg, samples).make_batch(indices, 0, torch.device("cpu"))
    clean = ForecastingTask(tiny_config(), samples).make_batch(indices, 0, torch.device("cpu"))
    torch.testing.assert_close(first["history"], again["history"])
    assert not torch.equal(first["history"], clean["history"])
    other_epoch = ForecastingTask(cfg, samples).make_batch(indices, 1, torch.device("cpu"))
    assert not torch.equal(first["history"], other_epoch["history"])
