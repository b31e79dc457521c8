"""KITTI raw-drive writer, read back with pykitti (the loader monodepth2 and LiDARTouch build on)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pykitti
import pytest
from hypothesis import given, settings
from PIL import Image
from scipy.spatial.transform import Rotation

from scenes.ego_frame import KITTI_EGO
from scenes.geometry import SE3
from scenes.records import Frame
from scenes.synth.writers.common import WriterError
from scenes.synth.writers.kitti import kitti_date, lidar_depth, oxts_packets, stereo_pair, write_kitti_drive


@pytest.fixture(scope="module")
def drive(handmade_log, tmp_path_factory) -> tuple[Path, pykitti.raw]:
    base = tmp_path_factory.mktemp("kitti")
    drive_dir = write_kitti_drive(handmade_log, base, drive_number=7)
    date = kitti_date(handmade_log.frames[0].timestamp_ns)
    assert drive_dir == base / date / f"{date}_drive_0007_sync"
    return drive_dir, pykitti.raw(str(base), date, "0007")


def test_calibration_matches_the_rig(handmade_log, drive):
    _, data = drive
    assert stereo_pair(handmade_log) == ("ring_front_center", "stereo_front_right")
    calib = data.calib
    camera = handmade_log.frames[0].cameras["ring_front_center"]
    np.testing.assert_allclose(calib.K_cam2, camera.intrinsics)
    assert calib.b_rgb == pytest.approx(0.5)
    lidar = handmade_log.ego_SE3_sensors["up_lidar"]
    for name, velo_to_cam in (("ring_front_center", calib.T_cam2_velo), ("stereo_front_right", calib.T_cam3_velo)):
        expected = handmade_log.ego_SE3_sensors[name].inverse().compose(lidar).as_matrix()
        np.testing.assert_allclose(velo_to_cam, expected, atol=1e-9)
    np.testing.assert_allclose(calib.T_velo_imu, lidar.inverse().as_matrix(), atol=1e-9)


def test_sensor_data_and_timestamps(handmade_log, drive):
    _, data = drive
    assert len(data) == len(handmade_log.frames)
    lidar_SE3_ego = handmade_log.ego_SE3_sensors["up_lidar"].inverse()
    for index in (0, 6):
        frame = handmade_log.frames[index]
        velo = data.get_velo(index)
        np.testing.assert_allclose(velo[:, :3], lidar_SE3_ego.transform_points(frame.lidar.points_xyz_m), atol=1e-5)
        np.testing.assert_allclose(velo[:, 3], frame.lidar.intensity)
        np.testing.assert_array_equal(np.asarray(data.get_cam2(index)), frame.cameras["ring_front_center"].image)
        np.testing.assert_array_equal(np.asarray(data.get_cam3(index)), frame.cameras["stereo_front_right"].image)
        assert int(data.timestamps[index].timestamp() * 1e6) == frame.timestamp_ns // 1000


def test_oxts_poses_are_city_poses_relative_to_the_first(handmade_log, drive):
    _, data = drive
    origin = handmade_log.frames[0].city_SE3_ego.translation
    for index, frame in enumerate(handmade_log.frames):
        pose = data.oxts[index].T_w_imu
        np.testing.assert_allclose(pose[:3, :3], frame.city_SE3_ego.rotation, atol=1e-9)
        np.testing.assert_allclose(pose[:3, 3], frame.city_SE3_ego.translation - origin, atol=1e-6)
    packet = data.oxts[5].packet
    # Hand-computed from the fixture: the ego moves at (5, 0.2) m/s in the city and turns at 0.05 rad/s.
    assert (packet.ve, packet.vn) == (pytest.approx(5.0), pytest.approx(0.2))
    assert packet.wz == pytest.approx(0.05) and packet.az == pytest.approx(9.81)
    assert packet.vf == pytest.approx(np.hypot(5.0, 0.2) * np.cos(np.arctan2(0.2, 5.0) - 0.05 * 0.5))


def test_depth_ground_truth_png(handmade_log, drive):
    drive_dir, _ = drive
    frame = handmade_log.frames[3]
    camera = frame.cameras["ring_front_center"]
    png = np.asarray(Image.open(drive_dir / "proj_depth" / "groundtruth" / "image_02" / "0000000003.png"))
    assert png.dtype == np.uint16 and png.shape == (camera.height_px, camera.width_px)
    decoded = png.astype(np.float32) / 256.0
    expected = lidar_depth(frame, camera)
    assert (decoded > 0).sum() > 10
    np.testing.assert_array_equal(decoded > 0, expected > 0)
    np.testing.assert_allclose(decoded, expected, atol=1 / 512)
    # One return by hand: the nearest point that lands on its pixel.
    points = camera.ego_SE3_camera.inverse().transform_points(frame.lidar.points_xyz_m)
    front = points[points[:, 2] > 0.1]
    uv = (front @ camera.intrinsics.T)[:, :2] / front[:, 2:3]
    pixel = np.rint(uv).astype(int)
    inside = (pixel[:, 0] >= 0) & (pixel[:, 0] < camera.width_px) & (pixel[:, 1] >= 0) & (pixel[:, 1] < camera.height_px)
    u, v = pixel[inside][0]
    same = np.all(pixel == [u, v], axis=1)
    assert decoded[v, u] == pytest.approx(front[same, 2].min(), abs=1 / 512)


def test_camera_depth_source_and_bad_arguments(handmade_log, tmp_path):
    drive_dir = write_kitti_drive(handmade_log, tmp_path, drive_number=2, depth_source="camera")
    png = np.asarray(Image.open(drive_dir / "proj_depth" / "groundtruth" / "image_03" / "0000000000.png"))
    np.testing.assert_allclose(png / 256.0, handmade_log.frames[0].cameras["stereo_front_right"].depth_m, atol=1 / 512)
    with pytest.raises(WriterError, match="drive_number"):
        write_kitti_drive(handmade_log, tmp_path, drive_number=10_000)
    with pytest.raises(WriterError, match="depth_source"):
        write_kitti_drive(handmade_log, tmp_path, depth_source="stereo")  # type: ignore[arg-type]
    no_cameras = replace(handmade_log, frames=tuple(replace(f, cameras={}) for f in handmade_log.frames))
    with pytest.raises(WriterError, match="at least one camera"):
        write_kitti_drive(no_cameras, tmp_path / "none")


@settings(max_examples=40, deadline=None)
@given(
    translations=hnp.arrays(np.float64, (3, 3), elements=st.floats(-5_000.0, 5_000.0)),
    angles=hnp.arrays(np.float64, (3, 3), elements=st.floats(-1.2, 1.2)),
)
def test_oxts_packets_invert_pykitti_poses(translations, angles):
    """Any city poses -> OXTS packets -> pykitti's Mercator poses = the city poses relative to the first."""
    frames = [
        Frame("log", 1_000 + i * 100_000_000, SE3(Rotation.from_euler("ZYX", angles[i]).as_matrix(), translations[i]))
        for i in range(3)
    ]
    packets = [pykitti.utils.OxtsPacket(*(list(row[:25]) + [int(v) for v in row[25:]])) for row in oxts_packets(frames)]
    scale = np.cos(packets[0].lat * np.pi / 180.0)
    origin = pykitti.utils.pose_from_oxts_packet(packets[0], scale)[1]
    for frame, packet in zip(frames, packets, strict=True):
        rotation, translation = pykitti.utils.pose_from_oxts_packet(packet, scale)
        np.testing.assert_allclose(rotation, frame.city_SE3_ego.rotation, atol=1e-9)
        np.testing.assert_allclose(translation - origin, frame.city_SE3_ego.translation - translations[0], atol=1e-6)


def test_round_trip_through_the_kitti_adapter(handmade_log, drive):
    """The KITTI adapter's ego frame lies 1.73 m below the Velodyne and its world the first OXTS position: both map back exactly."""
    from scenes.adapters.kitti import KittiRawDataset

    drive_dir, _ = drive
    dataset = KittiRawDataset(drive_dir.parent.parent)
    assert dataset.logs() == [drive_dir.name]
    ego_SE3_velo = handmade_log.ego_SE3_sensors["up_lidar"].compose(KITTI_EGO.dataset_SE3_ego)  # KITTI's ego frame
    origin = SE3(np.eye(3), -handmade_log.frames[0].city_SE3_ego.translation)
    frames = list(dataset.frames(drive_dir.name))
    assert [f.timestamp_ns for f in frames] == [f.timestamp_ns for f in handmade_log.frames]
    for read, written in zip(frames, handmade_log.frames, strict=True):
        assert read.city_SE3_ego.allclose(origin.compose(written.city_SE3_ego).compose(ego_SE3_velo), atol=1e-6)
        assert read.lidar is not None and written.lidar is not None
        np.testing.assert_allclose(read.lidar.points_xyz_m, ego_SE3_velo.inverse().transform_points(written.lidar.points_xyz_m), atol=1e-5)
        for folder, name in (("image_02", "ring_front_center"), ("image_03", "stereo_front_right")):
            camera, truth = read.cameras[folder], written.cameras[name]
            np.testing.assert_array_equal(camera.image, truth.image)
            np.testing.assert_allclose(camera.intrinsics, truth.intrinsics)
            assert camera.ego_SE3_camera.allclose(ego_SE3_velo.inverse().compose(truth.ego_SE3_camera), atol=1e-9)
            assert camera.depth_m is not None
            np.testing.assert_allclose(camera.depth_m, lidar_depth(written, truth), atol=1 / 512)
