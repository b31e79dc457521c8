"""Heading from motion: a moving box turned the wrong way round is turned back by its sweeps, a right one is kept."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perception.detection import detector as detector_module
from perception.detection.config import DetectionConfig
from perception.detection.detector import Detector
from perception.detection.motion_heading import resolve_headings
from scenes.categories import CATEGORY_ID
from scenes.geometry import SE3
from scenes.records import Boxes3D, Frame, LidarSweep

CAR = CATEGORY_ID["REGULAR_VEHICLE"]
LAGS_S = (0.0, 0.1, 0.2)


def _car_sweeps(center_xy: np.ndarray, heading_rad: float, speed_m_per_s: float) -> np.ndarray:
    """`(N, 5)` points of a 4.5 m x 1.8 m car seen from its left side and rear (an L), one sweep per lag, each where
    the car was `lag` seconds ago; plus a road patch under it."""
    along = np.array([math.cos(heading_rad), math.sin(heading_rad)])
    left = np.array([-along[1], along[0]])
    side = [(-2.25 + 4.5 * t, 0.9) for t in np.linspace(0, 1, 24)]
    rear = [(-2.25, -0.9 + 1.8 * t) for t in np.linspace(0, 1, 10)]
    rows = []
    for lag in LAGS_S:
        origin = center_xy - speed_m_per_s * lag * along
        for u, w in side + rear:
            for z in (0.5, 1.0):
                xy = origin + u * along + w * left
                rows.append([xy[0], xy[1], z, 0.3, lag])
        for x in np.arange(-4.0, 4.0, 0.5):
            for y in np.arange(-2.0, 2.0, 0.5):
                rows.append([center_xy[0] + x, center_xy[1] + y, 0.0, 0.1, lag])
    return np.array(rows, dtype=np.float32)


def _box(center_xy: np.ndarray, yaw_rad: float, velocity: np.ndarray) -> Boxes3D:
    return Boxes3D(
        np.array([[center_xy[0], center_xy[1], 0.75]]),
        np.array([[4.5, 1.8, 1.5]]),
        np.array([yaw_rad]),
        np.array([CAR]),
        np.array([0.9], dtype=np.float32),
        velocity_m_per_s=velocity[None, :],
    )


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
    detector = Detector(cfg)
    turned = detector.run(frames[-1], frames[:-1])
    assert abs(math.remainder(float(turned.yaw_rad[0]), 2 * math.pi)) < 1e-9
    assert turned.velocity_m_per_s is not None
    np.testing.assert_allclose(turned.velocity_m_per_s[0], [8.0, 0.0], atol=1e-9)
    assert detector.with_model(motion_heading_min_speed_m_per_s=None).run(frames[-1], frames[:-1]).yaw_rad[0] == math.pi
    assert detector.run(frames[-1]).yaw_rad[0] == math.pi  # one sweep: nothing tells
