"""Lane-goal candidates (TNT): paths through the lane graph, decoding along them, and the NMS selection of modes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.cab import objective_loss, training_logits
from forecasting.config import FeatureConfig, ForecastingConfig, LaneGoalConfig, ModelConfig, OptimConfig
from forecasting.dataset import build_samples, scenarios_from_tracks
from forecasting.forecaster import Forecaster
from forecasting.goal_decoder import GoalCandidates, LaneGoalDecoder, along_path
from forecasting.lane_goals import LanePaths, agent_paths, path_points, reach_m, select_modes
from forecasting.losses import MASKED_LOGIT
from forecasting.model import ForecastNet
from scenes.categories import CATEGORY_ID
from scenes.records import LaneGraph

from .conftest import straight_tracks

GOALS = LaneGoalConfig(enabled=True, max_paths=4, goals_per_path=5)
CAR, PEDESTRIAN = CATEGORY_ID["REGULAR_VEHICLE"], CATEGORY_ID["PEDESTRIAN"]


def junction_lane_graph() -> LaneGraph:
    """Lane 10 runs east from (-40, 0) to (0, 0); after it, lane 20 goes on east to (40, 0) and lane 30 turns left
    (north) on a 10 m radius to (10, 10) and on to (10, 40). Lane 40 runs west, 3.5 m to the north of lane 10."""
    approach = np.stack([np.linspace(-40.0, 0.0, 9), np.zeros(9)], axis=1)
    straight = np.stack([np.linspace(0.0, 40.0, 9), np.zeros(9)], axis=1)
    angles = np.linspace(-math.pi / 2, 0.0, 10)
    arc = np.stack([10.0 * np.cos(angles), 10.0 + 10.0 * np.sin(angles)], axis=1)
    turn = np.concatenate([arc, np.stack([np.full(6, 10.0), np.linspace(10.0, 40.0, 7)[1:]], axis=1)])[:9]
    opposite = np.stack([np.linspace(0.0, -40.0, 9), np.full(9, 3.5)], axis=1)
    centerlines = np.stack([approach, straight, turn, opposite])
    centerlines = np.concatenate([centerlines, np.zeros((*centerlines.shape[:2], 1))], axis=2)
    return LaneGraph(
        "TEST", np.array([10, 20, 30, 40]), centerlines, ((20, 30), (), (), ()), np.full(4, -1), np.full(4, -1),
        np.array([False, True, True, False]),
    )  # fmt: skip


def _distance_to_polyline(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    start, end = polyline[:-1], polyline[1:]
    along = np.einsum("nsd,sd->ns", points[:, None] - start, end - start) / np.sum((end - start) ** 2, axis=1)
    closest = start + np.clip(along, 0.0, 1.0)[..., None] * (end - start)
    return np.linalg.norm(points[:, None] - closest, axis=-1).min(axis=1)


def test_reach_is_what_the_agent_can_cover_in_the_horizon() -> None:
    assert reach_m(10.0, 3.0, GOALS) == 10.0 * 3.0 + 0.5 * 2.5 * 9.0
    assert reach_m(0.0, 1.0, GOALS) == GOALS.min_reach_m
    assert path_points(GOALS) == 9  # goal j is point 2 j


def test_a_car_before_the_junction_gets_the_ray_and_every_branch() -> None:
    paths = LanePaths.from_lane_graph(junction_lane_graph())
    # heading east at 5 m/s from (-12, 0.4), horizon 3 s: reach 15 + 11.25 = 26.25 m
    points, valid, on_lane = agent_paths(paths, np.array([-12.0, 0.4]), 0.0, 5.0, CAR, 3.0, GOALS)
    assert valid.tolist() == [True, True, True, False] and on_lane.tolist() == [False, True, True, False]
    np.testing.assert_allclose(points[0], np.stack([np.linspace(0.0, 26.25, 9), np.zeros(9)], axis=1))
    for path in points[1:3]:
        np.testing.assert_allclose(path[0], [0.0, -0.4], atol=1e-9)  # enters lane 10 beside the car
        np.testing.assert_allclose(np.linalg.norm(np.diff(path, axis=0), axis=1).sum(), 26.25, rtol=0.02)
    straight_end, turn_end = sorted(points[1:3, -1].tolist(), key=lambda end: end[1])
    np.testing.assert_allclose(straight_end, [26.25, -0.4], atol=1e-6)
    # left turn: 12 m to the junction, then 14.25 m up the 10 m radius arc (1.425 rad)
    np.testing.assert_allclose(turn_end, [12.0 + 10.0 * math.sin(1.425), 10.0 - 10.0 * math.cos(1.425) - 0.4], atol=0.15)
    # the westbound lane 40 passes within reach but against a moving car's heading
    moving_west = agent_paths(paths, np.array([-12.0, 3.0]), math.pi, 5.0, CAR, 3.0, GOALS)
    assert moving_west[1].tolist() == [True, True, False, False]


def test_paths_are_in_the_agent_frame_and_stopped_agents_enter_any_direction() -> None:
    paths = LanePaths.from_lane_graph(junction_lane_graph())
    # stopped, facing north: lane 10 and (against its heading, allowed when stopped) lane 40 are both in reach
    points, valid, on_lane = agent_paths(paths, np.array([-20.0, 1.5]), math.pi / 2, 0.0, CAR, 3.0, GOALS)
    assert on_lane.sum() == 2
    directions = points[on_lane][:, 1] - points[on_lane][:, 0]
    # in the agent frame (+x = north) lane 10 (east) points to -y and lane 40 (west) to +y
    assert sorted(np.sign(directions[:, 1]).tolist()) == [-1.0, 1.0] and np.all(np.abs(directions[:, 0]) < 1e-6)


def test_agents_off_the_lanes_get_rays_around_them() -> None:
    paths = LanePaths.from_lane_graph(junction_lane_graph())
    points, valid, on_lane = agent_paths(paths, np.array([-20.0, 0.0]), 0.0, 1.2, PEDESTRIAN, 3.0, GOALS)
    assert valid.all() and not on_lane.any()
    angles = np.arctan2(points[:, -1, 1], points[:, -1, 0])
    np.testing.assert_allclose(np.sort(np.mod(angles, 2 * math.pi)), np.arange(4) * math.pi / 2, atol=1e-9)
    no_map = agent_paths(LanePaths.from_lane_graph(None), np.zeros(2), 0.0, 3.0, CAR, 3.0, GOALS)
    assert no_map[1].tolist() == [True, False, False, False]


def test_along_path_interpolates_and_extrapolates() -> None:
    path = torch.tensor([[[[0.0, 0.0], [2.0, 0.0], [2.0, 2.0]]]])
    arc = torch.tensor([[[0.0, 2.0, 4.0]]])
    position, direction = along_path(path, arc, torch.tensor([[[0.5, 3.0, 5.0, -1.0]]]))
    np.testing.assert_allclose(position[0, 0].numpy(), [[0.5, 0.0], [2.0, 1.0], [2.0, 3.0], [-1.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(direction[0, 0].numpy(), [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]], atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), speed=st.floats(0.0, 15.0))
def test_decoded_modes_stay_within_the_lateral_offset_of_their_paths(seed: int, speed: float) -> None:
    """Whatever the weights, a candidate's trajectory is its path plus at most `max_lateral_offset_m` sideways
    (and at most one goal spacing past the path's end)."""
    torch.manual_seed(seed)
    paths = LanePaths.from_lane_graph(junction_lane_graph())
    points, valid, on_lane = agent_paths(paths, np.array([-12.0, 0.4]), 0.0, speed, CAR, 3.0, GOALS)
    decoder = LaneGoalDecoder(16, 6, 10.0, GOALS, logit_bound=5.0)
    candidates = GoalCandidates(torch.tensor(points[None], dtype=torch.float32), torch.tensor(valid[None]), torch.tensor(on_lane[None]))
    out = decoder(torch.randn(1, 16), candidates, -3.0)
    trajectories = out.trajectories_m[0].detach().numpy().reshape(GOALS.max_paths, GOALS.goals_per_path, 6, 2)
    assert out.mask[0].tolist() == np.repeat(valid, GOALS.goals_per_path).tolist()
    assert np.all(out.logits[0][~out.mask[0]].detach().numpy() == MASKED_LOGIT)
    for path, trajectory in zip(points[valid], trajectories[valid], strict=True):
        spacing = np.linalg.norm(np.diff(path, axis=0), axis=1).sum() / (GOALS.goals_per_path - 1)
        extended = np.concatenate([path, path[-1:] + (path[-1] - path[-2]) / np.linalg.norm(path[-1] - path[-2]) * spacing])
        assert _distance_to_polyline(trajectory.reshape(-1, 2), extended).max() <= GOALS.max_lateral_offset_m + 1e-4


def test_select_modes_keeps_the_endpoints_that_gather_the_most_probability() -> None:
    ends = np.array([0.0, 0.5, 5.0, 5.5, 6.0, 10.0])
    trajectories = np.zeros((1, 6, 2, 2))
    trajectories[0, :, -1, 0] = ends
    probabilities = np.array([[0.3, 0.1, 0.2, 0.2, 0.15, 0.05]])
    chosen, scores = select_modes(trajectories, probabilities, 3, nms_distance_m=1.0)
    # 5.5 gathers 0.2 + 0.2 + 0.15 (5.0 and 6.0 are within 1 m; 5.0 comes first of the group's most probable), then
    # 0.0 gathers 0.3 + 0.1, then 10.0
    assert chosen.tolist() == [[2, 0, 5]]
    np.testing.assert_allclose(scores, [[0.55, 0.4, 0.05]])
    # with everything within 20 m, one group holds all the mass; the most probable others fill up with score 0
    chosen, scores = select_modes(trajectories, probabilities, 3, nms_distance_m=20.0)
    assert chosen.tolist() == [[0, 2, 3]]
    np.testing.assert_allclose(scores, [[1.0, 0.0, 0.0]])


def test_goal_logits_are_bounded_in_the_decoder_not_clamped_in_training() -> None:
    decoder = LaneGoalDecoder(8, 2, 10.0, GOALS, logit_bound=2.0)
    points, valid, on_lane = agent_paths(LanePaths.from_lane_graph(None), np.zeros(2), 0.0, 3.0, CAR, 1.0, GOALS)
    candidates = GoalCandidates(torch.tensor(points[None], dtype=torch.float32), torch.tensor(valid[None]), torch.tensor(on_lane[None]))
    logits = decoder(100.0 * torch.randn(1, 8), candidates, -3.0).logits.detach()
    assert torch.all(logits[0, : GOALS.goals_per_path].abs() <= 2.0) and torch.all(logits[0, GOALS.goals_per_path :] == MASKED_LOGIT)
    torch.testing.assert_close(training_logits(logits, 2.0, logits > MASKED_LOGIT), logits)


def _goal_config(method: str) -> ForecastingConfig:
    return ForecastingConfig(
        features=FeatureConfig(history_steps=4, horizon_steps=6, max_neighbors=3, max_lanes=4, lane_points=6, lane_goals=GOALS),
        model=ModelConfig(hidden_dim=16, num_modes=3),
        objective={"method": method, "mutual_information_weight": 0.0},
        optim=OptimConfig(epochs=1, batch_size=8),
    )


def test_goal_forecaster_overfits_a_batch_and_predicts_on_road_modes() -> None:
    cfg = _goal_config("cab")
    samples = build_samples(scenarios_from_tracks(straight_tracks(), junction_lane_graph(), cfg.features), cfg.features)
    assert samples.goal_paths_m.shape[1:] == (4, 9, 2) and samples.goal_path_on_lane.any()
    torch.manual_seed(0)
    network = ForecastNet(cfg.model, cfg.features, cfg.objective.logit_clip)
    batch = samples.select(np.arange(16)).to_torch()
    optimiser = torch.optim.Adam(network.parameters(), lr=3e-3)
    losses = []
    for _ in range(200):
        full, blind = network(batch, with_blind=True)
        loss, parts = objective_loss(full, blind, batch, cfg.objective)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(parts["nll"]))
    assert losses[-1] < losses[0] - 10.0
    trajectories, scores = Forecaster(cfg, network).predict(samples.select(np.arange(16)))
    assert trajectories.shape == (16, 3, 6, 2)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)
    assert np.all(np.diff(scores, axis=1) <= 0)
    truth = samples.select(np.arange(16)).to_city(samples.future_m[:16, None].astype(np.float64))[:, 0]
    assert np.median(np.linalg.norm(trajectories[:, 0, -1] - truth[:, -1], axis=1)) < 1.5


def test_a_cycle_of_zero_length_lanes_ends_the_search() -> None:
    """Lane 1 (10 m east) leads into lanes 2 and 3, two points that follow each other forever."""
    east = np.stack([np.linspace(0.0, 10.0, 4), np.zeros(4), np.zeros(4)], axis=1)
    point = np.tile([[10.0, 0.0, 0.0]], (4, 1))
    graph = LaneGraph("TEST", np.array([1, 2, 3]), np.stack([east, point, point]), ((2,), (3,), (2,)), np.full(3, -1),
                      np.full(3, -1), np.zeros(3, dtype=bool))  # fmt: skip
    points, valid, on_lane = agent_paths(LanePaths.from_lane_graph(graph), np.array([1.0, 0.5]), 0.0, 5.0, CAR, 3.0, GOALS)
    assert on_lane.tolist() == [False, True, False, False]
    # 9 m of lane, then straight on along its last direction to the reach
    np.testing.assert_allclose(points[1, -1], [reach_m(5.0, 3.0, GOALS), -0.5], atol=1e-6)


def test_a_config_with_fewer_goals_per_path_than_modes_is_refused() -> None:
    with pytest.raises(ValueError, match="goals_per_path"):
        ForecastingConfig(features=FeatureConfig(lane_goals=LaneGoalConfig(enabled=True, goals_per_path=3)), model=ModelConfig(num_modes=5))
