"""The KITTI object adapter on three real benchmark frames: boxes hold Velodyne points and project onto their 2D labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scenes.adapters.kitti import KittiObjectDataset, boxes_to_labels, read_labels
from scenes.adapters.registry import open_dataset
from scenes.categories import CATEGORY_ID, FROM_KITTI
from scenes.ego_frame import KITTI_EGO
from scenes.geometry import points_in_box_mask, project_to_image

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def dataset(shared_data: Path) -> KittiObjectDataset:
    dataset = open_dataset(f"kitti-object:{shared_data / 'kitti' / 'object'}")
    assert isinstance(dataset, KittiObjectDataset)
    return dataset


@pytest.fixture(scope="module")
def frames(dataset: KittiObjectDataset) -> list:
    return list(dataset.frames("training"))


def test_frames_and_labels_load(dataset: KittiObjectDataset, frames: list, shared_data: Path) -> None:
    assert dataset.logs() == ["training"]
    assert [f.timestamp_ns for f in frames] == [0, 1, 2]
    for frame in frames:
        labels = read_labels(shared_data / "kitti" / "object" / "training" / "label_2" / f"{frame.timestamp_ns:06d}.txt")
        kept = [label for label in labels if FROM_KITTI[label.kind] is not None]
        assert frame.annotations is not None and len(frame.annotations) == len(kept)
        expected = [CATEGORY_ID[name] for label in kept if (name := FROM_KITTI[label.kind]) is not None]
        assert frame.annotations.category.tolist() == expected
        # h, w, l on disk -> l, w, h.
        np.testing.assert_allclose(frame.annotations.size_lwh_m, [[lab.size_hwl_m[2], lab.size_hwl_m[1], lab.size_hwl_m[0]] for lab in kept])
        assert frame.lidar is not None


def test_beam_index_recovered_from_scan_order(frames: list) -> None:
    lidar = frames[0].lidar
    beams = np.unique(lidar.laser_number)
    assert 64 <= len(beams) <= 66  # 64 lasers; the scan may start and end mid-turn
    points = KITTI_EGO.points_from_ego(lidar.points_xyz_m.astype(np.float64))  # elevations are seen from the Velodyne
    elevation = np.arctan2(points[:, 2], np.hypot(points[:, 0], points[:, 1]))
    medians = np.array([np.median(elevation[lidar.laser_number == beam]) for beam in beams])
    assert np.mean(np.diff(medians) < 0) > 0.9  # beams go from the top laser down
    # The HDL-64E's field of view: about +2 deg down to -24.8 deg.
    assert np.degrees(medians[0]) > 1.0 and np.degrees(medians[-1]) < -22.0


def test_every_car_box_contains_velodyne_points(frames: list) -> None:
    cars = 0
    for frame in frames:
        boxes = frame.annotations
        for center, size, yaw, category in zip(boxes.center_m, boxes.size_lwh_m, boxes.yaw_rad, boxes.category, strict=True):
            if category != CATEGORY_ID["REGULAR_VEHICLE"]:
                continue
            cars += 1
            inside = points_in_box_mask(frame.lidar.points_xyz_m, center, size, yaw).sum()
            assert inside >= 5, f"car box at {center} holds {inside} points"
    assert cars == 2


def test_boxes_project_onto_their_2d_labels(frames: list, shared_data: Path) -> None:
    checked = 0
    for frame in frames:
        camera = frame.cameras["image_2"]
        label_path = shared_data / "kitti" / "object" / "training" / "label_2" / f"{frame.timestamp_ns:06d}.txt"
        labels = [lab for lab in read_labels(label_path) if FROM_KITTI[lab.kind]]
        corners = frame.annotations.corners()
        camera_SE3_ego = camera.ego_SE3_camera.inverse()
        for box_corners, label in zip(corners, labels, strict=True):
            uv, valid = project_to_image(camera_SE3_ego.transform_points(box_corners), camera.intrinsics, camera.width_px, camera.height_px)
            assert valid.all(), "a labelled box projects outside the image"
            if label.truncated == 0:
                projected = (uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max())
                np.testing.assert_allclose(projected, label.bbox_ltrb_px, atol=12.0)  # the 2D box hugs the object, the 3D box is a little wider
                checked += 1
    assert checked == 5


def test_labels_round_trip_through_the_rectified_camera_frame(dataset: KittiObjectDataset, frames: list, shared_data: Path) -> None:
    frame = frames[0]
    rect_SE3_ego, _, _ = dataset.calibration("training", "000000")
    (hwl, location, rotation_y), = boxes_to_labels(frame.annotations, rect_SE3_ego)
    label = read_labels(shared_data / "kitti" / "object" / "training" / "label_2" / "000000.txt")[0]
    np.testing.assert_allclose(hwl, label.size_hwl_m, atol=1e-9)
    np.testing.assert_allclose(location, label.location_cam_m, atol=1e-9)
    # Yaw is about the Velodyne z axis, which the rectified camera y axis tilts from by ~1e-4 rad.
    assert abs(np.sin(rotation_y - label.rotation_y_rad)) < 1e-3


def test_summary(dataset: KittiObjectDataset) -> None:
    summary = dataset.summary()
    assert summary.num_logs == 1 and summary.num_frames == 3
    assert summary.sensors == ("image_2", "velodyne")
    assert summary.category_counts == {"REGULAR_VEHICLE": 2, "PEDESTRIAN": 1, "TRUCK": 1, "BICYCLIST": 1}


def test_road_lies_at_zero_height_in_the_ego_frame(frames: list) -> None:
    """The records' ego frame has its origin on the ground: the lowest returns near the car are the road, at z ~ 0."""
    for frame in frames:
        points = frame.lidar.points_xyz_m
        near = np.hypot(points[:, 0], points[:, 1]) < 20.0
        assert abs(float(np.percentile(points[near, 2], 10))) < 0.2
