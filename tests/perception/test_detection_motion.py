"""Motion from the sweeps: a box's velocity searched from how its past points moved (`sweep_velocity`), and the heading
from motion with the heads' velocity (`motion_heading`): a moving box turned the wrong way round is turned back."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perception.detection import detector as detector_module
from perception.detection.config import DetectionConfig
from perception.detection.detector import Detector
from perception.detection.motion_heading import resolve_headings
from perception.detection.sweep_velocity import velocity_from_sweeps
from scenes.categories import CATEGORY_ID
from scenes.geometry import SE3
from scenes.records import Boxes3D, Frame, LidarSweep

CAR = CATEGORY_ID["REGULAR_VEHICLE"]
PEDESTRIAN = CATEGORY_ID["PEDESTRIAN"]
LAGS_S = (0.0, 0.1, 0.2)


def _car_sweeps(center_xy: np.ndarray, heading_rad: float, speed_m_per_s: float) -> np.ndarray:
    """`(N, 5)` points of a 4.5 m x 1.8 m car seen from its left side and rear (an L), one sweep per lag, each where
    the car was `lag` seconds ago, with 1 cm of range noise; plus a road patch under it. The LiDAR's rays hit the side
    every 0.1 m at fixed places on the road, so the returns move along the car as it drives past them."""
    along = np.array([math.cos(heading_rad), math.sin(heading_rad)])
    left = np.array([-along[1], along[0]])
    rear = [(-2.25, -0.9 + 1.8 * t) for t in np.linspace(0, 1, 19)]
    noise = np.random.default_rng(0)
    rows = []
    for lag in LAGS_S:
        shift = speed_m_per_s * lag
        side = [(u, 0.9) for u in np.arange(-2.25 + shift % 0.1, 2.25, 0.1)]
        origin = center_xy - shift * along
        for u, w in side + rear:
            u, w = u + noise.normal(0.0, 0.01), w + noise.normal(0.0, 0.01)
            for z in (0.5, 1.0):
                xy = origin + u * along + w * left
                rows.append([xy[0], xy[1], z, 0.3, lag])
        for x in np.arange(-4.0, 4.0, 0.5):
            for y in np.arange(-2.0, 2.0, 0.5):
                rows.append([center_xy[0] + x, center_xy[1] + y, 0.0, 0.1, lag])
    return np.array(rows, dtype=np.float32)


def _walker_sweeps(center_xy: np.ndarray, velocity_m_per_s: np.ndarray) -> np.ndarray:
    """`(N, 5)` points of a 0.5 m x 0.4 m walker seen from -x and -y (two of its sides), one sweep per lag, each where
    it was `lag` seconds ago; plus a road patch under it."""
    outline = [(-0.25 + 0.5 * t, -0.2) for t in np.linspace(0, 1, 6)] + [(-0.25, -0.2 + 0.4 * t) for t in np.linspace(0, 1, 5)[1:]]
    rows = []
    for lag in LAGS_S:
        origin = center_xy - lag * velocity_m_per_s
        for u, w in outline:
            for z in (0.4, 0.9, 1.4):
                rows.append([origin[0] + u, origin[1] + w, z, 0.2, lag])
        for x in np.arange(-2.0, 2.0, 0.25):
            for y in np.arange(-2.0, 2.0, 0.25):
                rows.append([center_xy[0] + x, center_xy[1] + y, 0.0, 0.1, lag])
    return np.array(rows, dtype=np.float32)


def _box(center_xy: np.ndarray, yaw_rad: float, velocity: np.ndarray | None, category: int = CAR) -> Boxes3D:
    size = [4.5, 1.8, 1.5] if category == CAR else [0.6, 0.6, 1.7]
    return Boxes3D(
        np.array([[center_xy[0], center_xy[1], size[2] / 2]]),
        np.array([size]),
        np.array([yaw_rad]),
        np.array([category]),
        np.array([0.9], dtype=np.float32),
        velocity_m_per_s=None if velocity is None else velocity[None, :],
    )


@settings(max_examples=40, deadline=None)
@given(
    heading=st.floats(-math.pi, math.pi),
    # Parked, or driving: slower than about 1.5 m/s the 0.1 m cells cannot tell a crawl from standing.
    speed=st.one_of(st.just(0.0), st.floats(2.0, 20.0)),
    backwards=st.booleans(),
    x=st.floats(-30, 30),
    y=st.floats(-30, 30),
)
def test_the_sweeps_give_a_car_its_velocity_and_turn_it_to_face_its_motion(heading: float, speed: float, backwards: bool, x: float, y: float) -> None:
    center = np.array([x, y])
    points = _car_sweeps(center, heading, speed)
    # The heads' velocity is about 0 and their heading may be either end: the sweeps settle both.
    found = velocity_from_sweeps(points, _box(center, heading + math.pi * backwards, np.zeros(2)), turn_min_speed_m_per_s=1.0)
    assert found.velocity_m_per_s is not None
    truth = speed * np.array([math.cos(heading), math.sin(heading)])
    assert np.linalg.norm(found.velocity_m_per_s[0] - truth) < 0.5  # 0.1 m cells over 0.2 s
    facing = heading if speed > 0 else heading + math.pi * backwards  # a parked car keeps its heading
    assert abs(math.remainder(float(found.yaw_rad[0]) - facing, 2 * math.pi)) < 1e-9


@pytest.mark.parametrize("velocity", [(1.4, 0.0), (0.0, 1.4), (-1.0, 1.0), (0.0, 0.0)])
def test_the_sweeps_give_a_walker_its_velocity_across_its_heading_too(velocity: tuple[float, float]) -> None:
    center = np.array([6.0, 9.0])
    truth = np.array(velocity)
    points = _walker_sweeps(center, truth)
    found = velocity_from_sweeps(points, _box(center, 0.0, None, PEDESTRIAN), turn_min_speed_m_per_s=None)
    assert found.velocity_m_per_s is not None
    np.testing.assert_allclose(found.velocity_m_per_s[0], truth, atol=0.3)
    assert found.yaw_rad[0] == 0.0  # no turning asked for
    # Turning asked for: a walker faces its velocity's direction, a still one keeps the heads' heading.
    turned = velocity_from_sweeps(points, _box(center, 0.0, None, PEDESTRIAN), turn_min_speed_m_per_s=1.0)
    facing = math.atan2(truth[1], truth[0]) if np.linalg.norm(truth) > 0 else 0.0
    assert abs(math.remainder(float(turned.yaw_rad[0]) - facing, 2 * math.pi)) < 0.25


def test_single_sweeps_boxes_without_points_and_categories_without_a_top_speed_keep_their_velocity() -> None:
    center = np.array([10.0, 5.0])
    points = _car_sweeps(center, 0.0, 8.0)
    head = np.array([0.5, -0.25])
    single = points[points[:, 4] == 0.0]
    kept = velocity_from_sweeps(single, _box(center, 0.0, head), turn_min_speed_m_per_s=1.0)
    assert kept.velocity_m_per_s is not None
    np.testing.assert_array_equal(kept.velocity_m_per_s[0], head)
    far = velocity_from_sweeps(points, _box(center + 30.0, 0.0, None), turn_min_speed_m_per_s=1.0)
    assert far.velocity_m_per_s is not None
    np.testing.assert_array_equal(far.velocity_m_per_s[0], [0.0, 0.0])
    cone = replace(_box(center, 0.0, head), category=np.array([CATEGORY_ID["CONSTRUCTION_CONE"]]))
    assert cone.velocity_m_per_s is not None
    cone_after = velocity_from_sweeps(points, cone, turn_min_speed_m_per_s=1.0)
    assert cone_after.velocity_m_per_s is not None
    np.testing.assert_array_equal(cone_after.velocity_m_per_s, cone.velocity_m_per_s)


@settings(max_examples=40, deadline=None)
@given(heading=st.floats(-math.pi, math.pi), speed=st.floats(3.0, 15.0), x=st.floats(-30, 30), y=st.floats(-30, 30))
def test_a_flipped_moving_car_is_turned_back_and_a_right_one_kept(heading: float, speed: float, x: float, y: float) -> None:
    center = np.array([x, y])
    points = _car_sweeps(center, heading, speed)
    velocity = speed * np.array([math.cos(heading), math.sin(heading)])
    flipped = resolve_headings(points, _box(center, heading + math.pi, -velocity), min_speed_m_per_s=1.0)
    assert abs(math.remainder(float(flipped.yaw_rad[0]) - heading, 2 * math.pi)) < 1e-9
    assert flipped.velocity_m_per_s is not None
    np.testing.assert_allclose(flipped.velocity_m_per_s[0], velocity, atol=1e-9)
    kept = resolve_headings(points, _box(center, heading, velocity), min_speed_m_per_s=1.0)
    assert abs(math.remainder(float(kept.yaw_rad[0]) - heading, 2 * math.pi)) < 1e-9


def test_slow_boxes_single_sweeps_and_boxes_without_velocity_are_kept() -> None:
    center = np.array([10.0, 5.0])
    points = _car_sweeps(center, 0.0, 8.0)
    backwards = _box(center, math.pi, np.array([-0.8, 0.0]))  # wrong way round, but slower than the threshold
    assert resolve_headings(points, backwards, min_speed_m_per_s=1.0).yaw_rad[0] == math.pi
    # The same box faster than the threshold is turned; on the current sweep alone nothing tells.
    fast = _box(center, math.pi, np.array([-8.0, 0.0]))
    assert abs(resolve_headings(points, fast, min_speed_m_per_s=1.0).yaw_rad[0]) < 1e-9
    single = points[points[:, 4] == 0.0]
    assert resolve_headings(single, fast, min_speed_m_per_s=1.0).yaw_rad[0] == math.pi
    unknown = Boxes3D(fast.center_m, fast.size_lwh_m, fast.yaw_rad, fast.category, fast.score)
    assert resolve_headings(points, unknown, min_speed_m_per_s=1.0) is unknown


def test_the_detector_turns_a_moving_box_its_heads_decode_backwards(monkeypatch: pytest.MonkeyPatch) -> None:
    # A car driving +x at 8 m/s, seen in 3 sweeps 0.1 s apart; the heads (stubbed) decode it facing -x.
    center = np.array([10.0, 4.0])
    points = _car_sweeps(center, 0.0, 8.0)
    frames = []
    for lag_s in LAGS_S[::-1]:
        sweep = points[points[:, 4] == lag_s]
        timestamp_ns = int(round((0.2 - lag_s) * 1e9))
        frames.append(
            Frame("log", timestamp_ns, SE3.identity(), LidarSweep(timestamp_ns, sweep[:, :3].copy(), sweep[:, 3].copy(), np.zeros(len(sweep), np.int16)))
        )
    backwards = _box(center, math.pi, np.array([-8.0, 0.0]))
    monkeypatch.setattr(detector_module, "decode", lambda outputs, model: [backwards])
    cfg = DetectionConfig.model_validate({"model": {"range_m": (-16.0, -16.0, -3.0, 16.0, 16.0, 3.0), "num_sweeps": 3}})
    heads_velocity = Detector(cfg).with_model(velocity_from_sweeps=False)
    turned = heads_velocity.run(frames[-1], frames[:-1])
    assert abs(math.remainder(float(turned.yaw_rad[0]), 2 * math.pi)) < 1e-9
    assert turned.velocity_m_per_s is not None
    np.testing.assert_allclose(turned.velocity_m_per_s[0], [8.0, 0.0], atol=1e-9)
    assert heads_velocity.with_model(motion_heading_min_speed_m_per_s=None).run(frames[-1], frames[:-1]).yaw_rad[0] == math.pi
    assert heads_velocity.run(frames[-1]).yaw_rad[0] == math.pi  # one sweep: nothing tells
    # By default the velocity comes from the sweeps and the box is turned to face it.
    monkeypatch.setattr(detector_module, "decode", lambda outputs, model: [_box(center, math.pi, np.zeros(2))])
    found = Detector(cfg).run(frames[-1], frames[:-1])
    assert found.velocity_m_per_s is not None
    np.testing.assert_allclose(found.velocity_m_per_s[0], [8.0, 0.0], atol=0.3)
    assert abs(math.remainder(float(found.yaw_rad[0]), 2 * math.pi)) < 1e-9
    assert heads_velocity.run(frames[-1], frames[:-1]).yaw_rad[0] == math.pi  # the heads' 0 m/s: too slow to be turned
