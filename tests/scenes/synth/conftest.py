"""Fixtures of the synthetic-city tests."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from scenes.categories import CATEGORY_ID
from scenes.geometry import SE3, Sim2
from scenes.records import Boxes3D, CameraFrame, Frame, LaneGraph, LidarSweep, MapRaster
from scenes.synth.world import SynthLog

HANDMADE_LOG_ID = "0f3c2a1e-5b7d-4e9a-8c61-2d4f6a8b0c13"
HANDMADE_FRAMES = 11
HANDMADE_START_NS = 1_600_000_000_000_000_000

# Camera axes (x right, y down, z forward) expressed in the ego frame (x forward, y left, z up).
_EGO_R_CAMERA = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def _lane_graph() -> LaneGraph:
    """Two parallel eastbound lanes (10 | 11 in a row, 20 to the left of 10), a crosswalk and a sloped ground."""
    xs = np.linspace(-40.0, 0.0, 5)

    def line(x: np.ndarray, y: float) -> np.ndarray:
        return np.stack([x, np.full_like(x, y), np.zeros_like(x)], axis=1)

    centers = np.stack([line(xs, 0.0), line(xs + 40.0, 0.0), line(xs, 3.5)])
    left = centers + [0.0, 1.75, 0.0]
    right = centers - [0.0, 1.75, 0.0]
    height = np.tile(np.linspace(-0.6, 0.6, 121, dtype=np.float32), (121, 1))  # 0.01 m per metre of x
    return LaneGraph(
        "SYN",
        np.array([10, 11, 20]),
        centers,
        ((11,), (), ()),
        np.array([20, -1, -1]),
        np.array([-1, -1, 10]),
        np.array([False, False, False]),
        drivable_areas_m=(np.array([[-45.0, -2.0, 0.0], [45.0, -2.0, 0.0], [45.0, 5.5, 0.0], [-45.0, 5.5, 0.0]]),),
        left_boundaries_m=left,
        right_boundaries_m=right,
        crosswalks_m=np.array([[[10.0, -2.0, 0.0], [10.0, 5.5, 0.0], [13.0, 5.5, 0.0], [13.0, -2.0, 0.0]]]),
        rasters={"ground_height": MapRaster("ground_height", height, Sim2(np.eye(2), np.array([60.0, 60.0]), 1.0))},
    )


def _camera(rng: np.random.Generator, name: str, timestamp_ns: int, pose: SE3) -> CameraFrame:
    height, width = 24, 40
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[..., 0] = np.linspace(0, 250, width, dtype=np.uint8)[None, :]
    image[..., 1] = np.linspace(0, 250, height, dtype=np.uint8)[:, None]
    image[..., 2] = rng.integers(100, 120, (height, width))
    semantics = np.full((height, width), 7, dtype=np.uint8)  # road
    semantics[:10] = 23  # sky
    semantics[12:18, 5:15] = 26  # a car
    semantics[12:20, 25:28] = 24  # a person
    instances = np.zeros((height, width), dtype=np.int32)
    instances[12:18, 5:15] = 3
    instances[12:20, 25:28] = 5
    depth = np.linspace(80.0, 2.0, height, dtype=np.float32)[:, None].repeat(width, axis=1)
    depth[:10] = 0.0
    intrinsics = np.array([[30.0, 0.0, 20.0], [0.0, 30.0, 12.0], [0.0, 0.0, 1.0]])
    return CameraFrame(timestamp_ns, name, image, intrinsics, pose, depth_m=depth, semantics=semantics, instances=instances)


def build_handmade_log() -> SynthLog:
    """A small log with every sensor: LiDAR with points inside the boxes, two rectified cameras, moving agents."""
    rng = np.random.default_rng(7)
    sensors = {
        "up_lidar": SE3(np.eye(3), np.array([1.0, 0.0, 1.8])),
        "ring_front_center": SE3(_EGO_R_CAMERA, np.array([1.5, 0.0, 1.4])),
        "stereo_front_right": SE3(_EGO_R_CAMERA, np.array([1.5, -0.5, 1.4])),
    }
    track_ids = np.array(["car-1", "ped-2", "cone-3"])
    categories = np.array([CATEGORY_ID["REGULAR_VEHICLE"], CATEGORY_ID["PEDESTRIAN"], CATEGORY_ID["CONSTRUCTION_CONE"]])
    sizes = np.array([[4.5, 1.9, 1.6], [0.6, 0.6, 1.8], [0.4, 0.4, 0.7]])
    frames = []
    for step in range(HANDMADE_FRAMES):
        t = step * 0.1
        timestamp_ns = HANDMADE_START_NS + step * 100_000_000
        city_SE3_ego = SE3.from_yaw(0.05 * t, [5.0 * t - 20.0, 0.2 * t, 0.1])
        centers_city = np.array([[10.0 * t - 5.0, 0.0, 0.8], [5.0, 4.0 - 1.2 * t, 0.9], [8.0, -1.5, 0.35]])
        yaw_city = np.array([0.0, -np.pi / 2, 0.3])
        velocity_city = np.array([[10.0, 0.0], [0.0, -1.2], [0.0, 0.0]])
        boxes = Boxes3D(centers_city, sizes, yaw_city, categories, velocity_m_per_s=velocity_city, track_id=track_ids, frame="city")
        boxes = boxes.transformed(city_SE3_ego.inverse(), "ego")
        inside = [boxes.center_m[i] + rng.uniform(-0.4, 0.4, (20 - 6 * i, 3)) * sizes[i] for i in range(3)]
        background = rng.uniform([-30.0, -30.0, -1.0], [30.0, 30.0, 3.0], (300, 3))
        points = np.concatenate([*inside, background]).astype(np.float32)
        lidar = LidarSweep(
            timestamp_ns,
            points,
            rng.uniform(0.0, 1.0, len(points)).astype(np.float32),
            rng.integers(0, 32, len(points)).astype(np.int16),
            rng.integers(0, 100_000_000, len(points)),
        )
        cameras = {name: _camera(rng, name, timestamp_ns, sensors[name]) for name in ("ring_front_center", "stereo_front_right")}
        frames.append(Frame(HANDMADE_LOG_ID, timestamp_ns, city_SE3_ego, lidar, cameras, boxes))
    return SynthLog(HANDMADE_LOG_ID, "SYN", "default", tuple(frames), _lane_graph(), sensors)


@pytest.fixture(scope="session")
def handmade_log() -> SynthLog:
    return build_handmade_log()



def _tree_digest(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture(scope="session")
def tree_digest() -> Callable[[Path], dict[str, str]]:
    """SHA-256 of every file under a directory, by relative path."""
    return _tree_digest
