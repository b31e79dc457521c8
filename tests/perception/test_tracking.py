"""Kalman filter steps by hand, association cases, birth/death, interpolation and whole-log tracking."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perception.tracking.associate import center_distance_cost, greedy_match, hungarian_match, iou_cost
from perception.tracking.config import TrackerConfig, TrackingConfig
from perception.tracking.interpolate import TrackState, interpolate_track
from perception.tracking.kalman import BoxKalmanFilter, NoiseModel
from perception.tracking.tracker import SHIPPED_CHECKPOINT, Tracker, load_tracker_config
from perception.tracking.train import fit
from scenes.records import Boxes3D, Tracks
from scenes.training.checkpoint import CheckpointError

NOISE = NoiseModel(
    acceleration_m_per_s2=1.0,
    vertical_acceleration_m_per_s2=1.0,
    yaw_rate_rad_per_s=0.1,
    size_m=0.0,
    position_m=0.5,
    yaw_rad=0.1,
    measured_size_m=0.1,
    velocity_m_per_s=1.0,
    initial_velocity_m_per_s=2.0,
)


def test_constant_velocity_predict_and_update_by_hand() -> None:
    kf = BoxKalmanFilter("cv", NOISE)
    pose = np.array([[1.0, 2.0, 0.5, 0.0, 4.0, 2.0, 1.5]])
    state, cov = kf.initial_state(pose, np.array([[3.0, -1.0]]))
    assert cov[0, 0, 0] == pytest.approx(0.25) and cov[0, 7, 7] == pytest.approx(1.0)
    dt = 0.5
    state, cov = kf.predict(state, cov, dt)
    np.testing.assert_allclose(state[0, :3], [1.0 + 1.5, 2.0 - 0.5, 0.5])
    # x variance: P_xx + dt^2 P_vv + q dt^4/4 = 0.25 + 0.25 * 1 + 0.0625 / 4; covariance x-vx: dt P_vv + q dt^3/2.
    assert cov[0, 0, 0] == pytest.approx(0.25 + 0.25 + 0.0625 / 4)
    assert cov[0, 0, 7] == pytest.approx(0.5 + 0.125 / 2)
    prior_x, prior_var = state[0, 0], cov[0, 0, 0]
    measured = np.array([[3.0, 1.5, 0.5, 0.0, 4.0, 2.0, 1.5]])
    posterior, post_cov = kf.update(state, cov, measured, with_velocity=False)
    # Pose-only measurement: x and vx are decoupled from the other axes, so x's gain is P_xx / (P_xx + R_xx).
    gain = prior_var / (prior_var + 0.25)
    assert posterior[0, 0] == pytest.approx(prior_x + gain * (3.0 - prior_x))
    assert post_cov[0, 0, 0] == pytest.approx((1 - gain) * prior_var)
    velocity_gain = cov[0, 7, 0] / (prior_var + 0.25)
    assert posterior[0, 7] == pytest.approx(3.0 + velocity_gain * (3.0 - prior_x))


def test_update_flips_opposite_heading_and_wraps() -> None:
    kf = BoxKalmanFilter("cv", NOISE)
    state, cov = kf.initial_state(np.array([[0, 0, 0, 3.1, 4, 2, 1.5]]), None)
    # A measurement pointing backwards (3.1 - pi ~ -0.04) is read as 3.1 + ~0: the heading stays near 3.1.
    posterior, _ = kf.update(state, cov, np.array([[0, 0, 0, 3.1 - np.pi, 4, 2, 1.5]]), with_velocity=False)
    assert abs(np.cos(posterior[0, 3] - 3.1) - 1) < 1e-9
    # Across the +-pi seam, the innovation is the short way round.
    posterior, _ = kf.update(state, cov, np.array([[0, 0, 0, -3.1, 4, 2, 1.5]]), with_velocity=False)
    assert posterior[0, 3] > 3.1 or posterior[0, 3] < -3.1


def test_ctrv_follows_a_circle() -> None:
    kf = BoxKalmanFilter("ctrv", NOISE)
    state, cov = kf.initial_state(np.array([[10.0, 0, 0, np.pi / 2, 4, 2, 1.5]]), np.array([[0.0, 10.0 * np.pi / 2]]))
    state[0, 8] = np.pi / 2  # quarter turn per second around the origin, radius 10 m
    predicted, _ = kf.predict(state, cov, 1.0)
    np.testing.assert_allclose(predicted[0, :2], [0.0, 10.0], atol=1e-9)
    assert np.cos(predicted[0, 3]) == pytest.approx(-1.0)
    np.testing.assert_allclose(kf.velocity_xy(predicted), [[-np.pi * 5, 0.0]], atol=1e-9)


def test_greedy_and_hungarian_differ_where_greedy_is_myopic() -> None:
    cost = np.array([[1.0, 2.0], [1.5, np.inf]])
    greedy = greedy_match(cost)
    assert greedy.matches.tolist() == [[0, 0]] and greedy.unmatched_tracks.tolist() == [1]
    optimal = hungarian_match(cost)
    assert optimal.matches.tolist() == [[0, 1], [1, 0]]
    ordered = greedy_match(cost, detection_order=np.array([1, 0]))
    assert ordered.matches.tolist() == [[0, 1], [1, 0]]


def test_costs_gate_and_separate_classes() -> None:
    tracks = np.array([[0.0, 0.0], [10.0, 0.0]])
    dets = np.array([[0.5, 0.0], [10.0, 3.0], [0.2, 0.0]])
    cost = center_distance_cost(tracks, np.array([0, 0]), dets, np.array([0, 0, 1]), np.array([2.0, 2.0, 2.0]))
    assert cost[0, 0] == pytest.approx(0.5)
    assert np.isinf(cost[1, 1]) and np.isinf(cost[0, 2])
    iou = iou_cost(
        np.array([[0.0, 0, 0]]), np.array([[2.0, 1, 1]]), np.array([0.0]), np.array([0]),
        np.array([[0.5, 0, 0], [0, 0, 0]]), np.array([[2.0, 1, 1], [2.0, 1, 1]]), np.array([0.0, 0.0]), np.array([0, 1]), 0.1,
    )  # fmt: skip
    assert iou[0, 0] == pytest.approx(1 - 1.5 / 2.5) and np.isinf(iou[0, 1])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(0, 7), st.integers(0, 7))
def test_hungarian_is_never_worse_than_greedy(seed: int, n: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    cost = rng.uniform(0, 5, (n, m))
    cost[rng.random((n, m)) < 0.3] = np.inf
    greedy, optimal = greedy_match(cost), hungarian_match(cost)
    for a in (greedy, optimal):
        assert len(set(a.matches[:, 0])) == len(a.matches) and len(set(a.matches[:, 1])) == len(a.matches)
        assert np.all(np.isfinite(cost[a.matches[:, 0], a.matches[:, 1]])) if len(a.matches) else True
    # Both are maximal among allowed pairs; Hungarian maximises the number of matches first.
    assert len(optimal.matches) >= len(greedy.matches)


def _track_ids(boxes: Boxes3D) -> np.ndarray:
    assert boxes.track_id is not None
    return boxes.track_id


def _boxes(xy: list[list[float]], category: list[int] | None = None, velocity: np.ndarray | None = None) -> Boxes3D:
    n = len(xy)
    return Boxes3D(
        np.column_stack([np.array(xy, dtype=float).reshape(n, 2), np.ones(n)]),
        np.tile([4.0, 2.0, 1.5], (n, 1)),
        np.zeros(n),
        np.array(category or [0] * n, dtype=np.int64),
        np.full(n, 0.9, np.float32),
        velocity,
        frame="city",
    )


def test_birth_confirmation_and_death() -> None:
    tracker = Tracker(TrackerConfig(min_hits=3, max_age=1))
    stamps = [k * 100_000_000 for k in range(8)]
    outputs = [tracker.step(_boxes([[k * 1.0, 0.0]] if k not in (4, 5) else []), stamps[k]) for k in range(4)]
    # AB3DMOT: output while the log is younger than min_hits, then only confirmed tracks.
    assert [len(o) for o in outputs] == [1, 1, 1, 1]
    assert len({_track_ids(o)[0] for o in outputs}) == 1
    assert len(tracker.step(_boxes([]), stamps[4])) == 0 and len(tracker) == 1  # coasting
    tracker.step(_boxes([]), stamps[5])
    assert len(tracker) == 0  # dropped after max_age missed steps
    late = Tracker(TrackerConfig(min_hits=3))
    for k in range(4):
        late.step(_boxes([]), stamps[k])
    assert [len(late.step(_boxes([[5.0 + 0.1 * k, 0.0]]), stamps[4] + k * 100_000_000)) for k in range(3)] == [0, 0, 1]


def test_crossing_objects_keep_their_ids_with_detector_velocity() -> None:
    stamps = [k * 100_000_000 for k in range(30)]
    velocity = np.array([[10.0, 0.0], [-10.0, 0.0]])
    frames = [_boxes([[-15.0 + k, 0.4], [15.0 - k, -0.4]], velocity=velocity) for k in range(30)]
    tracks = Tracker(TrackerConfig(distance_gate_m=1.5)).run("log", frames, stamps)
    ids = [tuple(_track_ids(b)[np.argsort(-b.center_m[:, 1])]) for b in tracks.boxes]
    assert len(set(ids)) == 1 and len(tracks.track_ids) == 2


def test_heading_from_motion_turns_backward_boxes() -> None:
    stamps = np.arange(6) * 100_000_000
    # Detections flipped by pi (yaw pi) for a car driving +x at 10 m/s, and a parked car (yaw pi) next to it.
    frames = [replace(_boxes([[k * 1.0, 0.0], [0.0, 5.0]]), yaw_rad=np.full(2, np.pi)) for k in range(6)]
    plain = Tracker(TrackerConfig(min_hits=2)).run("log", frames, stamps)
    fixed = Tracker(TrackerConfig(min_hits=2, heading_from_motion_min_speed_m_per_s=1.0)).run("log", frames, stamps)
    for boxes in plain.boxes[2:]:
        np.testing.assert_allclose(np.cos(boxes.yaw_rad), -1.0, atol=1e-6)
    for boxes in fixed.boxes[2:]:
        moving = boxes.center_m[:, 1] < 2.5
        np.testing.assert_allclose(np.cos(boxes.yaw_rad[moving]), 1.0, atol=1e-6)
        np.testing.assert_allclose(np.cos(boxes.yaw_rad[~moving]), -1.0, atol=1e-6)  # parked: below the speed, kept


def test_run_interpolates_gaps_and_backfills() -> None:
    stamps = np.arange(10) * 100_000_000
    frames = [_boxes([[k * 1.0, 0.0]] if k not in (4, 5) else []) for k in range(10)]
    tracks = Tracker(TrackerConfig(min_hits=2, max_age=3)).run("log", frames, stamps)
    assert all(len(b) == 1 for b in tracks.boxes)
    np.testing.assert_allclose([b.center_m[0, 0] for b in tracks.boxes], np.arange(10.0), atol=0.1)
    without = Tracker(TrackerConfig(min_hits=2, max_age=3, interpolate_gaps=False)).run("log", frames, stamps)
    assert [len(b) for b in without.boxes] == [1, 1, 1, 1, 0, 0, 1, 1, 1, 1]


def test_interpolation_takes_the_short_way_round() -> None:
    def state(x: float, yaw: float) -> TrackState:
        return TrackState(np.array([x, 0.0, 0.0]), np.array([4.0, 2.0, 1.5]), yaw, np.array([1.0, 0.0]), 0, 0.8)

    filled = interpolate_track({0: state(0.0, 3.0), 2: state(2.0, -3.0)}, np.array([0, 100, 200]), max_gap_frames=3)
    assert list(filled) == [1]
    assert filled[1].center_m[0] == pytest.approx(1.0)
    assert abs(abs(filled[1].yaw_rad) - np.pi) < 0.2
    assert interpolate_track({0: state(0.0, 0.0), 5: state(5.0, 0.0)}, np.arange(6), max_gap_frames=3) == {}


def test_step_rejects_bad_input() -> None:
    tracker = Tracker()
    tracker.step(Boxes3D.empty(frame="city"), 10)
    with pytest.raises(ValueError, match="'ego' frame, earlier ones in the 'city' frame"):
        tracker.step(Boxes3D.empty(), 20)
    with pytest.raises(ValueError, match="not after"):
        tracker.step(Boxes3D.empty(frame="city"), 10)


def test_tracks_stay_in_the_frame_of_their_detections() -> None:
    """A log without poses is tracked in its sensor ("ego") frame, and the tracks say so; a new run may switch."""
    stamps = np.arange(5) * 100_000_000
    ego = [replace(_boxes([[k * 1.0, 0.0]]), frame="ego") for k in range(5)]
    tracker = Tracker(TrackerConfig(min_hits=2))
    tracks = tracker.run("seq", ego, stamps)
    assert tracks.frame == "ego" and all(b.frame == "ego" for b in tracks.boxes)
    np.testing.assert_allclose([b.center_m[0, 0] for b in tracks.boxes], np.arange(5.0), atol=0.1)
    assert tracker.run("log", [_boxes([[0.0, 0.0]])], stamps[:1]).frame == "city"


def test_greedy_order_cost_is_ab3dmot_lowest_cost_first() -> None:
    """Two tracks at x = 0 and x = 1.5; detections at x = 1.0 (score 0.9) and x = 1.6 (score 0.5). By score, the
    first detection takes its cheapest track (x = 1.5, cost 0.5) and the second is left with x = 0 (cost 1.6, beyond
    the 1.55 m gate): one match. Lowest cost first takes (1.5, 1.6) at 0.1, then (0, 1.0) at 1.0: two matches."""
    tracks_after = {}
    for order in ("score", "cost"):
        tracker = Tracker(TrackerConfig(min_hits=1, distance_gate_m=1.55, greedy_order=order))
        tracker.step(_boxes([[0.0, 0.0], [1.5, 0.0]]), 0)
        tracker.step(replace(_boxes([[1.0, 0.0], [1.6, 0.0]]), score=np.array([0.9, 0.5], np.float32)), 1)
        tracks_after[order] = len(tracker)
    assert tracks_after == {"score": 3, "cost": 2}  # by score, the second detection starts a new track


def test_fit_measures_noise_and_gates(tmp_path: Path) -> None:
    stamps = np.arange(30) * 100_000_000
    boxes = []
    for k in range(30):
        t = k * 0.1
        # A car at 40 m/s (4 m per frame) and a pedestrian accelerating at 1 m/s^2 along y.
        b = _boxes([[40.0 * t, 0.0], [0.0, 0.5 * t * t]], category=[0, 1])
        boxes.append(replace(b, track_id=np.array(["car", "ped"])))
    cfg = TrackingConfig(min_track_samples=5)
    path = fit(cfg, [Tracks("log", stamps, tuple(boxes))], tmp_path, show_progress=False)
    tracker = Tracker.from_checkpoint(path)
    assert tracker.cfg.gate_m("REGULAR_VEHICLE") == pytest.approx(4.0)
    assert tracker.cfg.gate_m("PEDESTRIAN") == pytest.approx(2.0)  # never below the configured gate
    # Accelerations (x, y pooled): car 0, pedestrian (0, 1): std of [0,0,0,1] repeated = sqrt(3)/4.
    assert tracker.cfg.noise.acceleration_m_per_s2 == pytest.approx(np.sqrt(3) / 4, rel=1e-6)
    with pytest.raises(CheckpointError, match=r"nope\.pt: checkpoint not found"):
        Tracker.from_checkpoint(tmp_path / "nope.pt")
    assert load_tracker_config(path) == tracker.cfg


def test_load_tracker_config_reads_yaml_and_the_shipped_checkpoint(tmp_path: Path) -> None:
    yaml_path = tmp_path / "tracking.yaml"
    yaml_path.write_text("tracker:\n  min_hits: 4\n  heading_from_motion_min_speed_m_per_s: 2.0\n")
    from_yaml = load_tracker_config(yaml_path)
    assert from_yaml.min_hits == 4 and from_yaml.heading_from_motion_min_speed_m_per_s == 2.0
    assert SHIPPED_CHECKPOINT.stat().st_size < 5_000_000
    shipped = load_tracker_config()
    assert shipped == load_tracker_config(SHIPPED_CHECKPOINT)
    assert shipped.min_score > 0 and shipped.gate_m("PEDESTRIAN") < shipped.gate_m("REGULAR_VEHICLE")


def test_shipped_tracking_configs_validate() -> None:
    from pipelines.tracking_finetune import TrackingFinetuneConfig
    from scenes.config import load_config

    repo = Path(__file__).resolve().parents[2]
    paths = sorted((repo / "configs" / "tracking").glob("*.yaml"))
    fits = [path for path in paths if not path.name.startswith("refit_")]
    models = {load_config(path, TrackingConfig).tracker.motion_model for path in fits}
    assert models == {"cv", "ctrv"}
    refits = [load_config(path, TrackingFinetuneConfig) for path in paths if path.name.startswith("refit_")]
    assert len(refits) == 2
    for refit in refits:  # the tracker each refit starts from exists (paths are relative to the repository root)
        assert refit.stack.tracker_config is None or (repo / refit.stack.tracker_config).is_file()


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 9))
def test_batched_spd_inverse_matches_numpy(seed: int, dim: int) -> None:
    from perception.tracking.kalman import _batched_spd_inverse

    rng = np.random.default_rng(seed)
    a = rng.normal(size=(4, dim, dim))
    spd = np.einsum("tij,tkj->tik", a, a) + 0.1 * np.eye(dim)
    np.testing.assert_allclose(_batched_spd_inverse(spd), np.linalg.inv(spd), rtol=1e-7, atol=1e-7)


def test_train_tracking_command_writes_a_loadable_checkpoint(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    config = tmp_path / "tracking.yaml"
    config.write_text("synth:\n  num_logs: 1\n  seconds: 2.0\nmin_track_samples: 5\n")
    result = CliRunner().invoke(app, ["train", "tracking", "--config", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    tracker = Tracker.from_checkpoint(tmp_path / "out" / "tracker.pt")
    assert tracker.cfg.noise.acceleration_m_per_s2 != NoiseModel().acceleration_m_per_s2
    bad = tmp_path / "bad.yaml"
    bad.write_text("tracker:\n  matcher: auction\n")
    failed = CliRunner().invoke(app, ["train", "tracking", "--config", str(bad), "--out", str(tmp_path / "out")])
    assert failed.exit_code == 2 and "tracker.matcher" in failed.output
