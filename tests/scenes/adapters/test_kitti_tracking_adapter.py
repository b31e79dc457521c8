"""KITTI tracking adapter on a hand-written two-frame sequence: boxes, ids, poses, splits and clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from scenes.adapters.base import AdapterError
from scenes.adapters.kitti import EARTH_RADIUS_M
from scenes.adapters.kitti_tracking import (
    KittiTrackingDataset,
    TrackingRow,
    format_tracking_row,
    parse_tracking_line,
    read_tracking_calibration,
)
from scenes.adapters.registry import open_dataset
from scenes.categories import CATEGORY_ID
from scenes.records import Boxes3D, Frame

# Velodyne (x forward, y left, z up) -> camera 0 (x right, y down, z forward), with a lever arm:
# x_cam = -y_velo, y_cam = -z_velo - 0.1, z_cam = x_velo - 0.3.
CALIB = (
    "P0: 100 0 50 0 0 100 40 0 0 0 1 0\n"
    "P1: 100 0 50 -54 0 100 40 0 0 0 1 0\n"
    "P2: 100 0 50 10 0 100 40 0 0 0 1 0\n"
    "P3: 100 0 50 -44 0 100 40 0 0 0 1 0\n"
    "R_rect 1 0 0 0 1 0 0 0 1\n"
    "Tr_velo_cam 0 -1 0 0 0 0 -1 -0.1 1 0 0 -0.3\n"
    "Tr_imu_velo 0 -1 0 0 1 0 0 0 0 0 1 0\n"  # velo_SE3_imu: a 90 degree turn about z
)
LABELS = (
    "0 3 Car 0 0 -1.57 10 20 30 40 1.5 1.6 4.0 2.0 1.7 20.0 0.0\n"
    "0 -1 DontCare -1 -1 -10 100 100 120 120 -1 -1 -1 -1000 -1000 -1000 -10\n"
    "0 5 Pedestrian 0 1 0.5 1 2 3 4 1.8 0.6 0.8 -1.0 1.8 10.0 1.5707963267948966\n"
    "\n"
    "1 3 Car 0 0 -1.57 10 20 30 40 1.5 1.6 4.0 2.0 1.7 21.0 0.0\n"
    "1 7 Tram 0 0 0 1 2 3 4 3.5 2.6 15.9 5.0 1.5 40.0 0.0\n"
    "1 8 Person 0 0 0 1 2 3 4 1.2 0.6 0.8 -3.0 1.3 12.0 0.0\n"
)


def labels_of(frame: Frame) -> Boxes3D:
    assert frame.annotations is not None and frame.annotations.track_id is not None
    return frame.annotations


def ids(boxes: Boxes3D) -> list[str]:
    assert boxes.track_id is not None
    return boxes.track_id.tolist()


def write_sequence(split_dir: Path, sequence: str = "0000", *, labels: str = LABELS, calib: str = CALIB, scans: int = 2) -> Path:
    for folder in ("calib", "label_02"):
        (split_dir / folder).mkdir(parents=True, exist_ok=True)
    (split_dir / "calib" / f"{sequence}.txt").write_text(calib)
    (split_dir / "label_02" / f"{sequence}.txt").write_text(labels)
    if scans:
        velodyne = split_dir / "velodyne" / sequence
        velodyne.mkdir(parents=True)
        for index in range(scans):
            points = np.array([[5.0 + index, 0.0, 0.0, 0.5], [0.0, 5.0, 1.0, 0.25]], dtype=np.float32)
            (velodyne / f"{index:06d}.bin").write_bytes(points.tobytes())
    return split_dir


def test_boxes_ids_and_timestamps_by_hand(tmp_path: Path) -> None:
    dataset = open_dataset(f"kitti-tracking:{write_sequence(tmp_path / 'training').parent}")
    assert isinstance(dataset, KittiTrackingDataset)
    assert dataset.logs() == ["0000"] and dataset.num_frames("0000") == 2
    assert not dataset.has_poses("0000") and dataset.sensors() == ("velodyne",)
    first, second = list(dataset.frames("0000"))
    assert (first.timestamp_ns, second.timestamp_ns) == (0, 100_000_000)
    assert first.city_SE3_ego.allclose(second.city_SE3_ego) and first.city_SE3_ego.allclose(first.city_SE3_ego.identity())
    assert second.lidar is not None
    # The ego frame is KITTI's: the Velodyne's axes, origin 1.73 m below it on the ground.
    np.testing.assert_allclose(second.lidar.points_xyz_m[0], [6.0, 0.0, 1.73])
    boxes = labels_of(first)
    # Car: bottom (2, 1.7, 20) -> centre (2, 0.95, 20) in camera 0 -> Velodyne (20.3, -2, -1.05) -> ego (20.3, -2, 0.68);
    # DontCare dropped.
    assert ids(boxes) == ["3", "5"]
    assert boxes.category.tolist() == [CATEGORY_ID["REGULAR_VEHICLE"], CATEGORY_ID["PEDESTRIAN"]]
    np.testing.assert_allclose(boxes.center_m, [[20.3, -2.0, 0.68], [10.3, 1.0, 0.73]], atol=1e-9)
    np.testing.assert_allclose(boxes.size_lwh_m, [[4.0, 1.6, 1.5], [0.8, 0.6, 1.8]])
    # rotation_y = 0 faces camera +x = Velodyne -y; rotation_y = pi/2 faces camera -z = Velodyne -x.
    np.testing.assert_allclose(np.cos(boxes.yaw_rad), [0.0, -1.0], atol=1e-9)
    np.testing.assert_allclose(np.sin(boxes.yaw_rad), [-1.0, 0.0], atol=1e-9)
    # Frame 1: the Tram is dropped, the tracking labels' "Person" (sitting) is a pedestrian.
    assert ids(labels_of(second)) == ["3", "8"]
    assert labels_of(second).category_names.tolist() == ["REGULAR_VEHICLE", "PEDESTRIAN"]
    np.testing.assert_allclose(labels_of(second).center_m[0], [21.3, -2.0, 0.68], atol=1e-9)
    assert dataset.category_counts("0000") == {"REGULAR_VEHICLE": 2, "PEDESTRIAN": 2}
    summary = dataset.summary()
    assert (summary.num_frames, summary.end_timestamp_ns) == (2, 100_000_000) and "10 Hz" in summary.notes[0]


def test_frame_count_without_velodyne_and_frames_without_labels(tmp_path: Path) -> None:
    labels = "3 1 Van 0 0 0 1 2 3 4 1.5 1.6 4.0 2.0 1.7 20.0 0.0\n"
    dataset = KittiTrackingDataset(write_sequence(tmp_path / "training", labels=labels, scans=0))
    assert dataset.num_frames("0000") == 4 and dataset.sensors() == ()
    frames = list(dataset.frames("0000"))
    assert [len(labels_of(frame)) for frame in frames] == [0, 0, 0, 1]
    assert frames[0].lidar is None
    assert labels_of(frames[3]).category_names.tolist() == ["REGULAR_VEHICLE"]


def test_calibration_and_image(tmp_path: Path) -> None:
    split = write_sequence(tmp_path / "training")
    calib = read_tracking_calibration(split / "calib" / "0000.txt")
    np.testing.assert_allclose(calib.intrinsics, [[100, 0, 50], [0, 100, 40], [0, 0, 1]])
    assert calib.projection_p2.shape == (3, 4) and calib.projection_p2[0, 3] == 10.0
    # P2 = K [I | (0.1, 0, 0)]: camera 2 sits at x = -0.1 in camera 0, i.e. Velodyne (0.3, 0.1, -0.1), ego (0.3, 0.1, 1.63).
    np.testing.assert_allclose(calib.ego_SE3_camera2.translation, [0.3, 0.1, 1.63], atol=1e-12)
    np.testing.assert_allclose(calib.ego_SE3_camera2.rotation @ [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], atol=1e-12)
    assert calib.imu_SE3_ego is not None
    np.testing.assert_allclose(calib.imu_SE3_ego.rotation, [[0, 1, 0], [-1, 0, 0], [0, 0, 1]], atol=1e-12)
    images = split / "image_02" / "0000"
    images.mkdir(parents=True)
    for index in range(2):
        Image.fromarray(np.full((6, 8, 3), 40 * index, dtype=np.uint8)).save(images / f"{index:06d}.png")
    dataset = KittiTrackingDataset(split, with_image=True)
    assert dataset.image_size_px("0000") == (8, 6) and dataset.sensors() == ("velodyne", "image_02")
    camera = list(dataset.frames("0000"))[1].cameras["image_02"]
    assert camera.image.shape == (6, 8, 3) and int(camera.image[0, 0, 0]) == 40
    assert camera.ego_SE3_camera.allclose(calib.ego_SE3_camera2)
    assert list(KittiTrackingDataset(split).frames("0000"))[0].cameras == {}
    (images / "000000.png").unlink()
    (images / "000001.png").unlink()
    assert dataset.image_size_px("0000") == (1242, 375)


def test_rect_rotation_and_object_benchmark_keys(tmp_path: Path) -> None:
    path = tmp_path / "calib.txt"
    path.write_text(
        "P2: 100 0 50 0 0 100 40 0 0 0 1 0\nR0_rect: 0 -1 0 1 0 0 0 0 1\nTr_velo_to_cam: 0 -1 0 0 0 0 -1 0 1 0 0 0\n"
    )
    calib = read_tracking_calibration(path)
    velo_to_cam = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]])
    np.testing.assert_allclose(calib.rect_SE3_ego.rotation, np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]]) @ velo_to_cam, atol=1e-12)
    assert calib.imu_SE3_ego is None


def test_oxts_poses_relative_to_the_first_frame(tmp_path: Path) -> None:
    split = write_sequence(tmp_path / "training")
    yaw = 0.3
    packets = np.zeros((2, 30))
    packets[:, 0], packets[:, 1], packets[:, 2], packets[:, 5] = 49.0, [8.0, 8.001], 100.0, yaw
    (split / "oxts").mkdir()
    (split / "oxts" / "0000.txt").write_text("".join(" ".join(str(v) for v in packet) + "\n" for packet in packets))
    dataset = KittiTrackingDataset(split)
    assert dataset.has_poses("0000")
    first, second = (frame.city_SE3_ego for frame in dataset.frames("0000"))
    assert first.allclose(first.identity(), atol=1e-12)
    # The IMU moved `east` metres east while heading `yaw`: in the first IMU frame that is (e cos yaw, -e sin yaw);
    # Velodyne = IMU turned by -90 degrees about z, so in the first Velodyne frame it is (e sin yaw, e cos yaw).
    east = np.cos(np.deg2rad(49.0)) * np.deg2rad(0.001) * EARTH_RADIUS_M
    np.testing.assert_allclose(second.translation, [east * np.sin(yaw), east * np.cos(yaw), 0.0], atol=1e-6)
    np.testing.assert_allclose(second.rotation, np.eye(3), atol=1e-12)
    (split / "oxts" / "0000.txt").write_text(" ".join(["49.0", "8.0"] + ["0"] * 27) + "\n")
    with pytest.raises(AdapterError, match=r"oxts/0000.txt: line 1: expected 30 OXTS values, got 29"):
        list(KittiTrackingDataset(split).frames("0000"))


def test_splits(tmp_path: Path) -> None:
    write_sequence(tmp_path / "training", "0000")
    write_sequence(tmp_path / "training", "0002", scans=0)
    write_sequence(tmp_path / "testing", "0001", scans=0)
    assert KittiTrackingDataset(tmp_path).logs() == ["0000", "0002"]
    assert KittiTrackingDataset(tmp_path, split="test").logs() == ["0001"]
    assert KittiTrackingDataset(tmp_path / "testing", split="testing").logs() == ["0001"]
    with pytest.raises(AdapterError, match=r"no split 'val'; splits: \['training', 'testing'\]"):
        KittiTrackingDataset(tmp_path, split="val")
    with pytest.raises(AdapterError, match=r"testing: is the split folder 'testing', not split 'training'"):
        KittiTrackingDataset(tmp_path / "testing", split="training")
    with pytest.raises(AdapterError, match="no sequence '0001'"):
        KittiTrackingDataset(tmp_path).num_frames("0001")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdapterError, match="empty: no KITTI tracking split"):
        KittiTrackingDataset(tmp_path / "empty")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("0 3 Car 0 0 -1.57 10 20 30 40 1.5 1.6", "line 1: expected 17 or 18 fields, got 12"),
        ("0 3 Car 0 0 -1.57 10 20 30 40 tall 1.6 4.0 2.0 1.7 20.0 0.0", "line 1: field 'h' is not a number: 'tall'"),
        ("0 3.5 Car 0 0 -1.57 10 20 30 40 1.5 1.6 4.0 2.0 1.7 20.0 0.0", "line 1: field 'track_id' is not an integer: '3.5'"),
        ("0 3 Car 0 0 -1.57 10 20 30 40 1.5 1.6 4.0 2.0 inf 20.0 0.0", "line 1: field 'y' is NaN or inf"),
        ("0 3 Spaceship 0 0 0 10 20 30 40 1.5 1.6 4.0 2.0 1.7 20.0 0.0", "line 1: field 'type': unknown KITTI class 'Spaceship'"),
        ("0 3 Car 0 0 0 10 20 30 40 1.5 0 4.0 2.0 1.7 20.0 0.0", "line 1: field 'w' must be positive, got 0.0"),
        ("5 3 Car 0 0 0 10 20 30 40 1.5 1.6 4.0 2.0 1.7 20.0 0.0", "line 1: field 'frame' is 5, beyond the sequence's 2 frames"),
    ],
)
def test_bad_label_lines(tmp_path: Path, line: str, problem: str) -> None:
    dataset = KittiTrackingDataset(write_sequence(tmp_path / "training", labels=line + "\n"))
    with pytest.raises(AdapterError, match=f"label_02/0000.txt: {problem}"):
        list(dataset.frames("0000"))


def test_repeated_track_and_skip_bad(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    labels = "0 3 Car 0 0 0 1 2 3 4 1.5 1.6 4.0 2.0 1.7 20.0 0.0\n0 3 Car 0 0 0 1 2 3 4 1.5 1.6 4.0 5.0 1.7 20.0 0.0\n"
    split = write_sequence(tmp_path / "training", labels=labels)
    with pytest.raises(AdapterError, match="0000.txt: line 2: track 3 appears twice in frame 0"):
        list(KittiTrackingDataset(split).frames("0000"))
    with caplog.at_level(logging.WARNING, logger="scenes.adapters"):
        assert list(KittiTrackingDataset(split, skip_bad=True).frames("0000")) == []
    assert "skipping sequence 0000" in caplog.text
    (split / "label_02" / "0000.txt").write_text(LABELS)
    (split / "velodyne" / "0000" / "000001.bin").write_bytes(b"\x00" * 20)
    with caplog.at_level(logging.WARNING, logger="scenes.adapters"):
        frames = list(KittiTrackingDataset(split, skip_bad=True).frames("0000"))
    assert [frame.timestamp_ns for frame in frames] == [0] and "truncated Velodyne scan" in caplog.text


@pytest.mark.parametrize(
    ("calib", "problem"),
    [
        (CALIB.replace("Tr_velo_cam 0 -1 0 0 0 0 -1 -0.1 1 0 0 -0.3\n", ""), "missing key 'Tr_velo_cam'"),
        (CALIB.replace("R_rect 1 0 0 0 1 0 0 0 1", "R_rect 1 0 0 0 1 0 0 0"), "key 'R_rect' has 8 values, expected 9"),
        (CALIB.replace("R_rect 1 0 0 0 1 0 0 0 1", "R_rect 2 0 0 0 1 0 0 0 1"), "key 'R_rect' is not a rigid transform"),
        (CALIB + "1 2 3\n", "line 8 is not 'key: values' or 'key values'"),
    ],
)
def test_bad_calibration(tmp_path: Path, calib: str, problem: str) -> None:
    dataset = KittiTrackingDataset(write_sequence(tmp_path / "training", calib=calib))
    with pytest.raises(AdapterError, match=f"calib/0000.txt: {problem}"):
        list(dataset.frames("0000"))


def test_oxts_without_imu_calibration(tmp_path: Path) -> None:
    split = write_sequence(tmp_path / "training", calib=CALIB.replace("Tr_imu_velo 0 -1 0 0 1 0 0 0 0 0 1 0\n", ""))
    (split / "oxts").mkdir()
    (split / "oxts" / "0000.txt").write_text(("49.0 8.0 100.0 " + "0 " * 27 + "\n") * 2)
    with pytest.raises(AdapterError, match="calib/0000.txt: missing key 'Tr_imu_velo'"):
        list(KittiTrackingDataset(split).frames("0000"))


@settings(max_examples=50, deadline=None)
@given(
    frame=st.integers(0, 9999),
    track=st.integers(-1, 10_000),
    hwl=st.tuples(st.floats(0.3, 4.0), st.floats(0.3, 3.0), st.floats(0.3, 15.0)),
    location=st.tuples(st.floats(-40, 40), st.floats(-3, 3), st.floats(-10, 80)),
    rotation_y=st.floats(-np.pi, np.pi),
    score=st.none() | st.floats(0.0, 1.0),
)
def test_rows_format_and_parse_back(frame, track, hwl, location, rotation_y, score) -> None:
    row = TrackingRow(frame, track, "Cyclist", 0.25, 1, 0.5, (1.0, 2.0, 30.5, 40.25), hwl, location, rotation_y, score)
    back = parse_tracking_line(Path("0000.txt"), 1, format_tracking_row(row))
    assert (back.frame, back.track_id, back.kind, back.occluded, back.bbox_ltrb_px) == (frame, track, "Cyclist", 1, row.bbox_ltrb_px)
    np.testing.assert_allclose([*back.size_hwl_m, *back.location_cam_m, back.rotation_y_rad], [*hwl, *location, rotation_y], atol=5e-7)
    assert (back.score is None) == (score is None)


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("Car DontCare 0123456789.-e:naif\n\t")), max_size=300))
def test_arbitrary_label_text_reads_or_fails_clearly(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    split = write_sequence(tmp_path_factory.mktemp("fuzz") / "training", labels=text, scans=0)
    label_path = split / "label_02" / "0000.txt"
    try:
        dataset = KittiTrackingDataset(split)
        frames = list(dataset.frames("0000"))
    except AdapterError as error:
        assert error.path == str(label_path)
        return
    assert len(frames) == dataset.num_frames("0000")
    assert all(np.all(labels_of(frame).size_lwh_m > 0) for frame in frames)
