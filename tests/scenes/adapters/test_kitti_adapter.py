"""KITTI adapter: label geometry (hypothesis), OXTS poses by hand, and clear errors on corrupted files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenes.adapters.base import AdapterError
from scenes.adapters.kitti import (
    EARTH_RADIUS_M,
    KittiLabel,
    beam_index_from_scan_order,
    boxes_to_labels,
    labels_to_boxes,
    oxts_to_poses,
    read_calib_file,
    read_labels,
    read_timestamps,
    read_velodyne,
)
from scenes.geometry import SE3

# The rectified camera of KITTI: x right, y down, z forward, i.e. a fixed rotation of the Velodyne frame, plus a lever arm.
RECT_R_VELO = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


@settings(max_examples=60, deadline=None)
@given(
    hwl=st.tuples(st.floats(0.5, 4.0), st.floats(0.3, 3.0), st.floats(0.3, 15.0)),
    location=st.tuples(st.floats(-30, 30), st.floats(-2, 3), st.floats(1, 70)),
    rotation_y=st.floats(-np.pi, np.pi),
    lever=st.tuples(st.floats(-0.5, 0.5), st.floats(-0.5, 0.5), st.floats(-0.5, 0.5)),
)
def test_labels_round_trip_and_bottom_centre(hwl, location, rotation_y, lever) -> None:
    rect_SE3_velo = SE3(RECT_R_VELO, np.array(lever))
    label = KittiLabel("Car", 0.0, 0, 0.0, (0, 0, 1, 1), hwl, location, rotation_y)
    boxes = labels_to_boxes(Path("label.txt"), [label], rect_SE3_velo)
    # Hand-checked conventions: l,w,h order; the centre sits h/2 above the label's bottom-centre (camera y is down).
    np.testing.assert_allclose(boxes.size_lwh_m[0], [hwl[2], hwl[1], hwl[0]])
    bottom_velo = rect_SE3_velo.inverse().transform_points(np.array([location]))[0]
    np.testing.assert_allclose(boxes.center_m[0], bottom_velo + [0.0, 0.0, hwl[0] / 2], atol=1e-9)
    # rotation_y = 0 faces camera +x (= Velodyne -y): yaw = -rotation_y - pi/2.
    assert abs(np.sin(boxes.yaw_rad[0] - (-rotation_y - np.pi / 2))) < 1e-9
    ((hwl_back, location_back, ry_back),) = boxes_to_labels(boxes, rect_SE3_velo)
    np.testing.assert_allclose(hwl_back, hwl, atol=1e-9)
    np.testing.assert_allclose(location_back, location, atol=1e-9)
    assert abs(np.sin(ry_back - rotation_y)) < 1e-9 and np.cos(ry_back - rotation_y) > 0


def test_unmapped_classes_dropped_unknown_class_fails(tmp_path: Path) -> None:
    path = tmp_path / "000000.txt"
    path.write_text(
        "Car 0.00 0 -1.57 599.41 156.40 629.75 189.25 1.5 1.6 3.9 0.47 1.49 20.0 -1.56\n"
        "DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10\n"
        "Tram 0.00 0 -1.57 599.41 156.40 629.75 189.25 3.5 2.6 15.9 5.47 1.49 40.0 -1.56\n"
    )
    boxes = labels_to_boxes(path, read_labels(path), SE3(RECT_R_VELO, np.zeros(3)))
    assert len(boxes) == 1 and boxes.category_names.tolist() == ["REGULAR_VEHICLE"]
    path.write_text("Spaceship 0.00 0 -1.57 599.41 156.40 629.75 189.25 1.5 1.6 3.9 0.47 1.49 20.0 -1.56\n")
    with pytest.raises(AdapterError, match="000000.txt: unknown KITTI category 'Spaceship'"):
        labels_to_boxes(path, read_labels(path), SE3(RECT_R_VELO, np.zeros(3)))


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("Car 0.00 0 -1.57 599.41 156.40 629.75 189.25 1.5 1.6 3.9 0.47 1.49 20.0", "line 1: expected 15 or 16 fields, got 14"),
        ("Car 0.00 0 -1.57 599.41 156.40 629.75 189.25 1.5 nan 3.9 0.47 1.49 20.0 0.1", "line 1: NaN or inf"),
        ("Car 0.00 zero -1.57 599.41 156.40 629.75 189.25 1.5 1.6 3.9 0.47 1.49 20.0 0.1", "line 1: non-numeric field"),
    ],
)
def test_bad_label_lines(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "000007.txt"
    path.write_text(line + "\n")
    with pytest.raises(AdapterError, match=f"000007.txt: {problem}"):
        read_labels(path)


def test_negative_size_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "000008.txt"
    path.write_text("Car 0.00 0 -1.57 599.41 156.40 629.75 189.25 -1.5 1.6 3.9 0.47 1.49 20.0 -1.56\n")
    with pytest.raises(AdapterError, match="000008.txt: Boxes3D.size_lwh_m: sizes must be positive"):
        labels_to_boxes(path, read_labels(path), SE3(RECT_R_VELO, np.zeros(3)))


@settings(max_examples=30, deadline=None)
@given(num_bytes=st.integers(1, 400).filter(lambda n: n % 16 != 0))
def test_truncated_velodyne_scan(tmp_path_factory: pytest.TempPathFactory, num_bytes: int) -> None:
    path = tmp_path_factory.mktemp("velodyne") / "000000.bin"
    path.write_bytes(np.arange(100, dtype=np.float32).tobytes()[:num_bytes])
    with pytest.raises(AdapterError, match=r"000000.bin: truncated Velodyne scan"):
        read_velodyne(path, 0)


def test_velodyne_values_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "000001.bin"
    points = np.array([[1.0, 0.0, 0.5, 0.25], [0.0, 1.0, 0.0, 0.5], [-1.0, -0.01, 0.0, 1.0], [1.0, 0.01, -0.2, 0.0]], dtype=np.float32)
    path.write_bytes(points.tobytes())
    sweep = read_velodyne(path, 42)
    np.testing.assert_array_equal(sweep.points_xyz_m, points[:, :3])
    np.testing.assert_array_equal(sweep.intensity, points[:, 3])
    # Azimuths 0, 90, -179.4 (wrap: a new beam), 0.6 degrees.
    assert sweep.laser_number.tolist() == [0, 0, 1, 1]
    with pytest.raises(AdapterError, match="000002.bin: Velodyne scan not found"):
        read_velodyne(tmp_path / "000002.bin", 0)
    assert beam_index_from_scan_order(np.zeros((0, 3))).shape == (0,)


def test_calib_missing_key_and_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "calib.txt"
    path.write_text("calib_time: 09-Jan-2012 13:57:47\nP2: 1 0 0 0 0 1 0 0 0 0 1 0\n")
    assert read_calib_file(path, ("P2",))["P2"].shape == (12,)
    with pytest.raises(AdapterError, match=r"calib.txt: missing key\(s\) \['R0_rect'\]"):
        read_calib_file(path, ("P2", "R0_rect"))
    path.write_text("P2: 1 0 0 0 0 inf 0 0 0 0 1 0\n")
    with pytest.raises(AdapterError, match="key 'P2' has NaN or inf"):
        read_calib_file(path)


def test_oxts_poses_by_hand() -> None:
    packets = np.zeros((3, 30))
    packets[:, 0] = 49.0  # latitude
    packets[:, 1] = [8.0, 8.001, 8.001]  # longitude
    packets[:, 2] = [100.0, 100.0, 102.0]
    packets[2, 5] = np.pi / 2  # yaw: facing north
    poses = oxts_to_poses(packets)
    east = np.cos(np.deg2rad(49.0)) * np.deg2rad(0.001) * EARTH_RADIUS_M
    np.testing.assert_allclose(poses[0].translation, 0.0, atol=1e-9)
    np.testing.assert_allclose(poses[1].translation, [east, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(poses[2].translation, [east, 0.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(poses[2].rotation @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)


def test_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "timestamps.txt"
    path.write_text("2011-09-26 13:02:25.964389445\n2011-09-26 13:02:26.074398975\n")
    first, second = read_timestamps(path)
    assert second - first == 110_009_530
    assert first == 1317042145964389445
    path.write_text("yesterday\n")
    with pytest.raises(AdapterError, match="timestamps.txt: line 1: not a timestamp"):
        read_timestamps(path)


def test_raw_drive_skip_bad_on_a_missing_oxts_packet(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from scenes.adapters.kitti import KittiRawDataset

    date = tmp_path / "2011_09_26"
    drive = date / "2011_09_26_drive_0001_sync"
    (drive / "velodyne_points" / "data").mkdir(parents=True)
    (drive / "oxts" / "data").mkdir(parents=True)
    rigid = "R: 1 0 0 0 1 0 0 0 1\nT: 0 0 0\n"
    (date / "calib_velo_to_cam.txt").write_text(rigid)
    (date / "calib_imu_to_velo.txt").write_text(rigid)
    (date / "calib_cam_to_cam.txt").write_text("R_rect_00: 1 0 0 0 1 0 0 0 1\n")
    (drive / "velodyne_points" / "timestamps.txt").write_text("2011-09-26 13:02:25.0\n2011-09-26 13:02:25.1\n")
    for index in range(2):
        (drive / "velodyne_points" / "data" / f"{index:010d}.bin").write_bytes(np.ones((5, 4), dtype=np.float32).tobytes())
    (drive / "oxts" / "data" / "0000000000.txt").write_text(" ".join(["49.0", "8.0", "100.0"] + ["0"] * 27))
    dataset = KittiRawDataset(tmp_path)
    with pytest.raises(AdapterError, match="no OXTS packet for frame 1"):
        list(dataset.frames("2011_09_26_drive_0001_sync"))
    with caplog.at_level(logging.WARNING, logger="scenes.adapters"):
        frames = list(KittiRawDataset(tmp_path, skip_bad=True).frames("2011_09_26_drive_0001_sync"))
    assert len(frames) == 1 and frames[0].cameras == {} and "no OXTS packet for frame 1" in caplog.text
    (drive / "oxts" / "data" / "0000000000.txt").write_text(" ".join(["nan", "8.0", "100.0"] + ["0"] * 27))
    with pytest.raises(AdapterError, match="0000000000.txt: NaN or inf in the OXTS position/orientation"):
        list(KittiRawDataset(tmp_path).frames("2011_09_26_drive_0001_sync"))


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("Car 0123456789.-e:naif\n\t")), max_size=200))
def test_arbitrary_label_and_calib_text_parses_or_fails_clearly(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    label_path, calib_path = folder / "000000.txt", folder / "calib.txt"
    label_path.write_text(text)
    calib_path.write_text(text)
    try:
        labels_to_boxes(label_path, read_labels(label_path), SE3(RECT_R_VELO, np.zeros(3)))
    except AdapterError as error:
        assert error.path == str(label_path)
    try:
        read_calib_file(calib_path, ("P2",))
    except AdapterError as error:
        assert error.path == str(calib_path)
