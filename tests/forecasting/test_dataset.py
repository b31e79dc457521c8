"""Records -> grid scenarios -> agent-centric features, by hand and by property."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.config import FeatureConfig
from forecasting.dataset import LaneSegments, build_samples, encode_scenario, resample_scenario, scenario_from_tracks
from scenes.records import Boxes3D, Scenario, Tracks

from .conftest import crossing_lane_graph

FEATURES = FeatureConfig(history_steps=3, horizon_steps=2, step_s=0.5, max_neighbors=2, max_lanes=3, lane_points=4,
                         lane_segment_length_m=12.0)  # fmt: skip


def _tracks(yaw_rad: float, drop_index: int | None = None, box_yaw_error_rad: float = 0.0) -> Tracks:
    """Car 'a' drives at 2 m/s along `yaw_rad` from (10, 20); car 'b' stands 3 m to its left; 10 Hz for 3 s.

    Both boxes carry the yaw `yaw_rad + box_yaw_error_rad` (a tracker's flipped or skewed box heading).
    """
    direction = np.array([np.cos(yaw_rad), np.sin(yaw_rad)])
    boxes = []
    for step in range(31):
        centers = np.array([[*(np.array([10.0, 20.0]) + 2.0 * step / 10 * direction), 0.0],
                            [*(np.array([10.0, 20.0]) + 3.0 * np.array([-direction[1], direction[0]])), 0.0]])  # fmt: skip
        frame = Boxes3D(centers, np.ones((2, 3)), np.full(2, yaw_rad + box_yaw_error_rad), np.zeros(2, dtype=np.int64),
                        track_id=np.array(["a", "b"]), frame="city")  # fmt: skip
        boxes.append(frame.select(np.array([False, True])) if step == drop_index else frame)
    return Tracks("log", np.arange(31, dtype=np.int64) * 100_000_000, tuple(boxes))


def test_grid_resampling_and_gaps() -> None:
    tracks = _tracks(0.0, drop_index=15)
    scenario = scenario_from_tracks(tracks, None, index=20, features=FEATURES)
    assert scenario.current_index == 2
    np.testing.assert_array_equal(scenario.timestamps_ns, np.array([1.0, 1.5, 2.0, 2.5, 3.0]) * 1e9)
    row = scenario.agent_ids.tolist().index("a")
    np.testing.assert_array_equal(scenario.valid[row], [True, False, True, True, True])  # t = 1.5 s was dropped
    np.testing.assert_allclose(scenario.xy_m[row, [0, 2, 4], 0], [12.0, 14.0, 16.0])
    np.testing.assert_allclose(scenario.velocity_m_per_s[row, 2], [2.0, 0.0])  # finite difference (no measured one)
    late = scenario_from_tracks(tracks, None, index=-1, features=FEATURES)
    assert not late.valid[:, 3:].any()  # nothing observed after the last timestamp


@pytest.mark.parametrize("yaw_rad", [0.0, np.pi / 2, -2.5])
def test_agent_frame_features(yaw_rad: float) -> None:
    scenario = scenario_from_tracks(_tracks(yaw_rad), crossing_lane_graph(), index=20, features=FEATURES)
    segments = LaneSegments.from_lane_graph(crossing_lane_graph(), FEATURES.lane_segment_length_m, FEATURES.lane_points)
    row = scenario.agent_ids.tolist().index("a")
    batch = encode_scenario(scenario, segments, FEATURES, [row])
    # In its own frame the car drives along +x at 2 m/s: 1 m per 0.5 s step; history behind it.
    np.testing.assert_allclose(batch.future_m[0], [[1.0, 0.0], [2.0, 0.0]], atol=1e-5)
    np.testing.assert_allclose(batch.history[0, :, 0] * FEATURES.position_scale_m, [-2.0, -1.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(batch.history[0, -1, 2:6], [0.2, 0.0, 1.0, 0.0], atol=1e-6)
    # The standing neighbour waits where the car started (4 m behind now), 3 m to its left.
    assert batch.neighbor_mask[0].tolist() == [True, False]
    np.testing.assert_allclose(batch.neighbors[0, 0, -1, :2] * FEATURES.position_scale_m, [-4.0, 3.0], atol=1e-5)
    assert batch.lane_mask[0].sum() >= 1
    np.testing.assert_allclose(batch.to_city(batch.future_m[:, None].astype(float))[0, 0], scenario.xy_m[row, 3:5], atol=1e-5)


@pytest.mark.parametrize("yaw_rad", [0.0, 2.0])
def test_motion_heading_replaces_a_flipped_box_yaw(yaw_rad: float) -> None:
    tracks = _tracks(yaw_rad, box_yaw_error_rad=np.pi)  # both boxes face backwards
    by_yaw = scenario_from_tracks(tracks, None, index=20, features=FEATURES)
    motion = FEATURES.model_copy(update={"heading_source": "motion", "motion_heading_min_speed_m_per_s": 1.0})
    by_motion = scenario_from_tracks(tracks, None, index=20, features=motion)
    moving, standing = by_yaw.agent_ids.tolist().index("a"), by_yaw.agent_ids.tolist().index("b")
    no_lanes = LaneSegments.from_lane_graph(None, FEATURES.lane_segment_length_m, FEATURES.lane_points)
    # The box yaw puts the car's future behind it; its 2 m/s motion gives the frame it drives in.
    np.testing.assert_allclose(encode_scenario(by_yaw, no_lanes, FEATURES, [moving]).future_m[0], [[-1.0, 0.0], [-2.0, 0.0]], atol=1e-5)
    batch = encode_scenario(by_motion, no_lanes, motion, [moving])
    np.testing.assert_allclose(batch.future_m[0], [[1.0, 0.0], [2.0, 0.0]], atol=1e-5)
    np.testing.assert_allclose(batch.history[0, :, 4:6], [[1.0, 0.0]] * 3, atol=1e-6)  # heading features follow the motion
    np.testing.assert_allclose(by_motion.heading_rad[moving, :3], np.full(3, yaw_rad), atol=1e-9)
    # The standing car (speed 0 < 1 m/s) keeps its box yaw.
    np.testing.assert_allclose(by_motion.heading_rad[standing], by_yaw.heading_rad[standing])


def test_lane_segments_cut_lanes_evenly() -> None:
    segments = LaneSegments.from_lane_graph(crossing_lane_graph(), 12.0, 4)
    straight = segments.points_m[~segments.is_intersection]
    assert len(straight) == 10  # 120 m in 12 m pieces
    np.testing.assert_allclose(straight[0], [[-60.0, 0.0], [-56.0, 0.0], [-52.0, 0.0], [-48.0, 0.0]])
    near = segments.near(np.array([-59.0, 1.0]), radius_m=5.0, count=3)
    assert near.tolist() == [0]
    assert LaneSegments.from_lane_graph(None, 12.0, 4).near(np.zeros(2), 10.0, 3).size == 0


def test_resample_scenario_from_10_hz() -> None:
    times = np.arange(0, 41, dtype=np.int64) * 100_000_000
    xy = np.stack([np.arange(41) * 0.1, np.zeros(41)], axis=1)[None]
    valid = np.ones((1, 41), bool)
    scenario = Scenario("s", "C", times, np.array(["a"]), np.zeros(1, dtype=np.int64), xy, np.zeros((1, 41)),
                        np.tile([1.0, 0.0], (1, 41, 1)), valid, 20, np.array(["a"]))  # fmt: skip
    grid = resample_scenario(scenario, FEATURES)
    np.testing.assert_allclose(grid.xy_m[0, :, 0], [1.0, 1.5, 2.0, 2.5, 3.0])
    assert grid.focal_agent_ids.tolist() == ["a"]
    assert len(build_samples([grid], FEATURES)) == 1
    unnamed = replace(scenario, focal_agent_ids=np.zeros(0, dtype=str))
    assert len(build_samples([resample_scenario(unnamed, FEATURES)], FEATURES)) == 1  # no focal agent named: all of them
    with pytest.raises(ValueError, match="no agent"):
        build_samples([resample_scenario(unnamed, FEATURES)], FEATURES, exclude_categories={0})
    with pytest.raises(ValueError, match="resample_scenario"):
        encode_scenario(scenario, LaneSegments.from_lane_graph(None, 12.0, 4), FEATURES)


@settings(max_examples=25, deadline=None)
@given(st.floats(-np.pi, np.pi), st.floats(-100, 100), st.floats(-100, 100))
def test_agent_frame_round_trip(yaw_rad: float, x: float, y: float) -> None:
    tracks = _tracks(yaw_rad)
    shifted = Tracks(tracks.log_id, tracks.timestamps_ns, tuple(
        Boxes3D(b.center_m + [x, y, 0.0], b.size_lwh_m, b.yaw_rad, b.category, track_id=b.track_id, frame="city") for b in tracks.boxes))  # fmt: skip
    scenario = scenario_from_tracks(shifted, None, index=20, features=FEATURES)
    batch = encode_scenario(scenario, LaneSegments.from_lane_graph(None, 12.0, 4), FEATURES)
    city = batch.to_city(batch.future_m[:, None].astype(np.float64))[:, 0]
    np.testing.assert_allclose(city, scenario.xy_m[:, 3:5], atol=1e-4)
