"""nuScenes map expansion -> LaneGraph, on a hand-written expansion file (two straight lanes joined by a connector)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scenes.adapters.base import AdapterError
from scenes.adapters.nuscenes import read_map_expansion

LOCATION = "boston-seaport"


def _straight(start: tuple[float, float], end: tuple[float, float]) -> list[dict[str, object]]:
    length = float(np.hypot(end[0] - start[0], end[1] - start[1]))
    heading = float(np.arctan2(end[1] - start[1], end[0] - start[0]))
    return [{"start_pose": [*start, heading], "end_pose": [*end, heading], "shape": "LSR", "radius": 999.0, "segment_length": [0.0, length, 0.0]}]


def write_expansion(dataroot: Path) -> Path:
    nodes = [{"token": f"n{i}", "x": x, "y": y} for i, (x, y) in enumerate([(0, 0), (30, 0), (30, 4), (0, 4)])]
    lanes: list[dict[str, object]] = [
        {"token": token, "polygon_token": "p0", "left_lane_divider_segments": [], "right_lane_divider_segments": []} for token in ("lane-a", "lane-b")
    ]
    payload = {
        "version": "1.3",
        "canvas_edge": [100.0, 100.0],
        "node": nodes,
        "polygon": [{"token": "p0", "exterior_node_tokens": [n["token"] for n in nodes], "holes": []}],
        "line": [],
        "drivable_area": [{"token": "d0", "polygon_tokens": ["p0"]}],
        "road_segment": [],
        "road_block": [],
        "lane": lanes,
        "ped_crossing": [],
        "walkway": [],
        "stop_line": [],
        "carpark_area": [],
        "road_divider": [],
        "lane_divider": [],
        "traffic_light": [],
        "lane_connector": [{"token": "joint", "polygon_token": "p0"}],
        "arcline_path_3": {"lane-a": _straight((0, 2), (10, 2)), "joint": _straight((10, 2), (20, 2)), "lane-b": _straight((20, 2), (30, 2))},
        "connectivity": {
            "lane-a": {"incoming": [], "outgoing": ["joint"]},
            "joint": {"incoming": ["lane-a"], "outgoing": ["lane-b"]},
            "lane-b": {"incoming": ["joint"], "outgoing": []},
        },
    }
    path = dataroot / "maps" / "expansion" / f"{LOCATION}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(payload))
    return path


def test_lanes_connectors_and_drivable_area(tmp_path: Path) -> None:
    path = write_expansion(tmp_path)
    graph = read_map_expansion(tmp_path, LOCATION, path)
    assert len(graph) == 3 and graph.city_name == LOCATION
    # Lanes first, then connectors; successors follow the connectivity table.
    assert graph.successors == ((2,), (), (1,))
    assert graph.is_intersection.tolist() == [False, False, True]
    np.testing.assert_allclose(graph.centerlines_m[0, [0, -1], :2], [[0.0, 2.0], [10.0, 2.0]], atol=0.3)
    np.testing.assert_allclose(graph.centerlines_m[1, [0, -1], :2], [[20.0, 2.0], [30.0, 2.0]], atol=0.3)
    np.testing.assert_allclose(graph.centerlines_m[:, :, 1], 2.0, atol=1e-9)
    (area,) = graph.drivable_areas_m
    assert {tuple(p) for p in area[:, :2]} >= {(0.0, 0.0), (30.0, 0.0), (30.0, 4.0), (0.0, 4.0)}


def test_lane_without_arcline_is_a_clear_error(tmp_path: Path) -> None:
    path = write_expansion(tmp_path)
    payload = json.loads(path.read_text())
    del payload["arcline_path_3"]["lane-b"]
    path.write_text(json.dumps(payload))
    with pytest.raises(AdapterError, match="boston-seaport.json: lane lane-b has no arcline_path_3 entry"):
        read_map_expansion(tmp_path, LOCATION, path)


def test_finite_difference_velocity_by_hand() -> None:
    from scenes.adapters.nuscenes import finite_difference_velocity

    xy = np.array([[[0.0, 0.0], [1.0, 0.0], [3.0, 1.0], [9.0, 9.0], [5.0, 5.0]]])
    valid = np.array([[True, True, True, False, True]])
    velocity = finite_difference_velocity(xy, valid, 0.5)
    np.testing.assert_allclose(velocity[0, :3], [[2.0, 0.0], [3.0, 1.0], [4.0, 2.0]])
    assert np.isnan(velocity[0, 3]).all()  # not observed
    np.testing.assert_allclose(velocity[0, 4], [0.0, 0.0])  # observed alone: no motion to measure
