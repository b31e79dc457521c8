"""The AV2 adapter on the real log fragment in ../shared/data, checked against the `av2` devkit's own readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scenes.adapters import av2 as av2_adapter
from scenes.adapters.registry import open_dataset
from scenes.categories import AV2_NON_COMPETITION, CATEGORIES
from scenes.ego_frame import AV2_EGO
from scenes.records import LidarSweep

pytestmark = pytest.mark.real

LOG_ID = "adcf7d18-0510-35b0-a2fa-b4cea13a6d76"
SWEEP_NS = 315973157959879000


@pytest.fixture(scope="module")
def split_dir(shared_data: Path) -> Path:
    return shared_data / "av2" / "sensor" / "val"


@pytest.fixture(scope="module")
def dataset(split_dir: Path) -> av2_adapter.AV2SensorDataset:
    dataset = open_dataset(f"av2:{split_dir}")
    assert isinstance(dataset, av2_adapter.AV2SensorDataset)
    return dataset


def test_logs_found_from_split_log_and_dataset_dirs(split_dir: Path) -> None:
    for root in (split_dir, split_dir / LOG_ID, split_dir.parent):
        assert open_dataset(f"av2:{root}").logs() == [LOG_ID]


def test_frames_cover_annotated_timestamps_without_sweeps(dataset: av2_adapter.AV2SensorDataset, split_dir: Path) -> None:
    from av2.utils.io import read_feather

    annotations = read_feather(split_dir / LOG_ID / "annotations.feather")
    frames = list(dataset.frames(LOG_ID))
    assert [f.timestamp_ns for f in frames] == sorted(annotations["timestamp_ns"].unique().tolist())
    with_lidar = [f.timestamp_ns for f in frames if f.lidar is not None]
    assert with_lidar == [SWEEP_NS]
    assert [f.timestamp_ns for f in dataset.frames(LOG_ID, lidar_only=True)] == [SWEEP_NS]


def test_boxes_agree_with_av2_cuboids(dataset: av2_adapter.AV2SensorDataset, split_dir: Path) -> None:
    from av2.structures.cuboid import CuboidList

    cuboids = [
        c
        for c in CuboidList.from_feather(split_dir / LOG_ID / "annotations.feather").cuboids
        if c.timestamp_ns == SWEEP_NS and c.category not in AV2_NON_COMPETITION
    ]
    frame = dataset.frame(LOG_ID, SWEEP_NS)
    boxes = frame.annotations
    assert boxes is not None and len(boxes) == len(cuboids) == 47
    # av2's cuboids carry no track id: pair boxes by sorting both sides on their centres.
    expected_centers = np.array([c.dst_SE3_object.translation for c in cuboids])
    expected_sizes = np.array([[c.length_m, c.width_m, c.height_m] for c in cuboids])
    expected_yaw = np.array([np.arctan2(c.dst_SE3_object.rotation[1, 0], c.dst_SE3_object.rotation[0, 0]) for c in cuboids])
    theirs = np.lexsort(expected_centers.T)
    mine = np.lexsort(boxes.center_m.T)
    expected_centers, expected_sizes, expected_yaw = expected_centers[theirs], expected_sizes[theirs], expected_yaw[theirs]
    # The records' ego frame is AV2's lowered by 0.33 m onto the ground.
    np.testing.assert_allclose(boxes.center_m[mine], expected_centers + [0.0, 0.0, AV2_EGO.origin_height_m], atol=1e-9)
    np.testing.assert_allclose(boxes.size_lwh_m[mine], expected_sizes, atol=1e-9)
    np.testing.assert_allclose(np.cos(boxes.yaw_rad[mine] - expected_yaw), 1.0, atol=1e-9)
    assert set(boxes.category_names) <= set(CATEGORIES)
    # The corners of our boxes are av2's cuboid vertices (same order convention).
    vertices = np.array([c.vertices_m for c in cuboids]) + [0.0, 0.0, AV2_EGO.origin_height_m]
    mine_corners = boxes.corners()[mine]
    np.testing.assert_allclose(mine_corners, vertices[theirs], atol=1e-6)


def test_lidar_matches_feather_rows_and_points_fall_in_boxes(dataset: av2_adapter.AV2SensorDataset, split_dir: Path) -> None:
    from av2.utils.io import read_lidar_sweep

    path = split_dir / LOG_ID / "sensors" / "lidar" / f"{SWEEP_NS}.feather"
    xyz = read_lidar_sweep(path, attrib_spec="xyz")
    frame = dataset.frame(LOG_ID, SWEEP_NS)
    assert frame.lidar is not None and len(frame.lidar) == len(xyz) == 100660
    np.testing.assert_array_equal(frame.lidar.points_xyz_m, AV2_EGO.points_to_ego(xyz.astype(np.float32)))
    near = np.hypot(xyz[:, 0], xyz[:, 1]) < 20.0
    assert abs(float(np.percentile(frame.lidar.points_xyz_m[near, 2], 10))) < 0.1  # the road lies at z ~ 0
    assert 0.0 <= frame.lidar.intensity.min() and frame.lidar.intensity.max() <= 1.0
    # num_interior_pts of the annotations is reproduced by counting the sweep's points inside each box.
    from scenes.geometry import points_in_box_mask

    boxes = frame.annotations
    assert boxes is not None and boxes.num_interior_pts is not None
    counts = np.array(
        [points_in_box_mask(frame.lidar.points_xyz_m, c, s, y).sum() for c, s, y in zip(boxes.center_m, boxes.size_lwh_m, boxes.yaw_rad, strict=True)]
    )
    busy = boxes.num_interior_pts > 20
    assert busy.sum() > 5
    np.testing.assert_allclose(counts[busy], boxes.num_interior_pts[busy], rtol=0.1)


def test_poses_agree_with_av2(dataset: av2_adapter.AV2SensorDataset, split_dir: Path) -> None:
    from av2.utils.io import read_city_SE3_ego

    theirs = read_city_SE3_ego(split_dir / LOG_ID)
    mine = dataset.poses(LOG_ID)
    assert set(mine) == set(theirs)
    pose = dataset.frame(LOG_ID, SWEEP_NS).city_SE3_ego
    np.testing.assert_allclose(pose.rotation, theirs[SWEEP_NS].rotation, atol=1e-12)
    # Same city position of AV2's ego origin (the rear axle), which sits 0.33 m above the records' ego origin.
    np.testing.assert_allclose(pose.transform_points([[0.0, 0.0, AV2_EGO.origin_height_m]])[0], theirs[SWEEP_NS].translation, atol=1e-9)
    graph = dataset.lane_graph(LOG_ID)
    assert graph is not None
    # ... and the records' ego origin lies on the map's ground surface.
    height = graph.rasters["ground_height"].lookup(pose.translation[None, :2])[0]
    assert abs(pose.translation[2] - height) < 0.05


def test_one_frame_reads_one_sweep(dataset: av2_adapter.AV2SensorDataset, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    original = av2_adapter.read_lidar

    def counting(path: Path) -> LidarSweep:
        calls.append(path)
        return original(path)

    monkeypatch.setattr(av2_adapter, "read_lidar", counting)
    frame = next(iter(dataset.frames(LOG_ID)))
    assert frame.timestamp_ns == SWEEP_NS and len(calls) == 1


def test_map_lanes_and_rasters_load(dataset: av2_adapter.AV2SensorDataset, split_dir: Path) -> None:
    from av2.map.map_api import ArgoverseStaticMap

    avm = ArgoverseStaticMap.from_map_dir(split_dir / LOG_ID / "map", build_raster=False)
    graph = dataset.lane_graph(LOG_ID)
    assert graph is not None and graph.city_name == "PIT"
    assert len(graph) == len(avm.vector_lane_segments) == 199
    lane_id = int(graph.lane_ids[0])
    np.testing.assert_allclose(graph.centerlines_m[0], avm.get_lane_segment_centerline(lane_id))
    assert graph.successors[0] == tuple(avm.vector_lane_segments[lane_id].successors)
    assert set(graph.rasters) == {"drivable_area", "roi", "ground_height"}
    # Lane centerlines lie on the drivable area and the ROI (which dilates it).
    points = graph.centerlines_m[:, :, :2].reshape(-1, 2)
    assert graph.rasters["drivable_area"].lookup(points).mean() > 0.95
    assert graph.rasters["roi"].lookup(points).mean() > 0.99
    # The ground height under the lanes matches their z within a few decimetres.
    heights = graph.rasters["ground_height"].lookup(points)
    assert np.median(np.abs(heights - graph.centerlines_m[:, :, 2].reshape(-1))) < 0.3


def test_summary_counts(dataset: av2_adapter.AV2SensorDataset) -> None:
    summary = dataset.summary()
    assert summary.num_logs == 1 and summary.num_frames == 156
    assert summary.category_counts["REGULAR_VEHICLE"] == 4471
    assert summary.sensors == ("lidar",)
    assert 15.0 < summary.duration_s < 16.0
