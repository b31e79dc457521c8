"""KITTI raw-drive writer: a simulated log -> `<base>/<date>/<date>_drive_<NNNN>_sync/` as pykitti reads it, plus
KITTI depth ground truth (`proj_depth/groundtruth/image_0{2,3}/%010d.png`, uint16, depth * 256, 0 = none).

Frames and calibration (KITTI raw conventions):

- velodyne frame = the simulated LiDAR's frame (x forward, y left, z up); `.bin` = float32 x, y, z, reflectance [0, 1];
- camera 0 (the unrectified reference of `calib_velo_to_cam.txt`) coincides with the left colour camera (`image_02`),
  so `R_rect_00` is the identity and `P_rect_02 = [K | 0]`; the right colour camera (`image_03`) of a rectified pair
  has `P_rect_03 = [K | -fx * baseline]`; the grey cameras 00/01 share the colour cameras' calibration (no images);
- the IMU frame of `calib_imu_to_velo.txt` and the OXTS packets is the ego frame;
- OXTS latitude/longitude invert pykitti's Mercator projection about a reference point, so pykitti's `T_w_imu` is the
  city pose relative to the first frame; velocities, accelerations (specific force, gravity included) and angular
  rates are finite differences of the simulated poses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from scipy.spatial.transform import Rotation

from scenes.geometry import SE3
from scenes.io import atomic_write_bytes, atomic_write_text
from scenes.records import CameraFrame, Frame
from scenes.synth.writers.common import FrameCallback, SimulatedLog, WriterError, check_log, lidar_sensor_name, staged_directory, write_png

__all__ = ["write_kitti_drive", "stereo_pair", "drive_name", "kitti_date", "oxts_packets", "lidar_depth", "depth_to_png", "REFERENCE_LAT_LON_ALT"]

EARTH_RADIUS_M: Final = 6378137.0  # pykitti's Mercator radius
REFERENCE_LAT_LON_ALT: Final = (49.0, 8.4, 110.0)  # first packet of every drive (degrees, degrees, metres)
GRAVITY_M_PER_S2: Final = 9.81
DEPTH_SCALE: Final = 256.0
MAX_DEPTH_M: Final = 65535.0 / DEPTH_SCALE
# navstat numsats posmode velmode orimode: RTK-integer fix as in the KITTI recordings.
_OXTS_STATUS: Final = (4, 10, 5, 5, 6)
_POSE_ACCURACY: Final = (0.01, 0.01)

DepthSource = Literal["lidar", "camera"]


def kitti_date(timestamp_ns: int) -> str:
    """`YYYY_MM_DD` (UTC) of a timestamp, the name of KITTI's date folder."""
    return dt.datetime.fromtimestamp(timestamp_ns // 1_000_000_000, tz=dt.UTC).strftime("%Y_%m_%d")


def drive_name(date: str, drive_number: int) -> str:
    return f"{date}_drive_{drive_number:04d}_sync"


def _timestamp_line(timestamp_ns: int) -> str:
    seconds, nanoseconds = divmod(timestamp_ns, 1_000_000_000)
    stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp}.{nanoseconds:09d}\n"


def _matrix_line(key: str, values: npt.ArrayLike) -> str:
    return f"{key}: " + " ".join(f"{float(v):.12e}" for v in np.asarray(values).reshape(-1)) + "\n"


def stereo_pair(log: SimulatedLog) -> tuple[str, str | None]:
    """(left, right) cameras: the first camera by name that has a rectified partner to its right, else the first camera
    alone. Rectified = same intrinsics, same orientation, offset only along the camera x axis."""
    names = sorted({name for frame in log.frames for name in frame.cameras})
    if not names:
        raise WriterError(f"SynthLog.frames of log {log.log_id}: KITTI drives need at least one camera")
    first = next(frame for frame in log.frames if frame.cameras)
    for left in names:
        for right in names:
            if left == right or left not in first.cameras or right not in first.cameras:
                continue
            if not np.allclose(first.cameras[left].intrinsics, first.cameras[right].intrinsics):
                continue
            left_pose, right_pose = log.ego_SE3_sensors[left], log.ego_SE3_sensors[right]
            offset = left_pose.inverse().transform_points(right_pose.translation[None])[0]
            if np.allclose(left_pose.rotation, right_pose.rotation, atol=1e-9) and offset[0] > 0 and np.allclose(offset[1:], 0.0, atol=1e-6):
                return left, right
    return names[0], None


def _calib_files(log: SimulatedLog, left: str, right: str | None, camera: CameraFrame) -> dict[str, str]:
    lidar = log.ego_SE3_sensors[lidar_sensor_name(log)]
    left_pose = log.ego_SE3_sensors[left]
    cam0_SE3_velo = left_pose.inverse().compose(lidar)
    velo_SE3_imu = lidar.inverse()
    baseline = 0.0 if right is None else float(left_pose.inverse().transform_points(log.ego_SE3_sensors[right].translation[None])[0, 0])
    k = camera.intrinsics
    size = np.array([camera.width_px, camera.height_px], dtype=np.float64)
    lines = ["calib_time: 01-Jan-2000 00:00:00\n", "corner_dist: 0.000000e+00\n"]
    for index, offset in ((0, 0.0), (1, baseline), (2, 0.0), (3, baseline)):
        projection = np.column_stack([k, [-k[0, 0] * offset, 0.0, 0.0]])
        lines += [
            _matrix_line(f"S_{index:02d}", size),
            _matrix_line(f"K_{index:02d}", k),
            _matrix_line(f"D_{index:02d}", np.zeros(5)),
            _matrix_line(f"R_{index:02d}", np.eye(3)),
            _matrix_line(f"T_{index:02d}", [-offset, 0.0, 0.0]),
            _matrix_line(f"S_rect_{index:02d}", size),
            _matrix_line(f"R_rect_{index:02d}", np.eye(3)),
            _matrix_line(f"P_rect_{index:02d}", projection),
        ]

    def rigid(transform: SE3) -> str:
        return "calib_time: 01-Jan-2000 00:00:00\n" + _matrix_line("R", transform.rotation) + _matrix_line("T", transform.translation)

    return {"calib_cam_to_cam.txt": "".join(lines), "calib_velo_to_cam.txt": rigid(cam0_SE3_velo), "calib_imu_to_velo.txt": rigid(velo_SE3_imu)}


def _mercator_inverse(east_m: np.ndarray, north_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latitude/longitude whose pykitti Mercator position, relative to the reference, is (east, north)."""
    lat0, lon0, _ = REFERENCE_LAT_LON_ALT
    scale = np.cos(np.deg2rad(lat0))
    tx = scale * lon0 * np.pi * EARTH_RADIUS_M / 180.0 + east_m
    ty = scale * EARTH_RADIUS_M * np.log(np.tan((90.0 + lat0) * np.pi / 360.0)) + north_m
    lon = tx * 180.0 / (scale * np.pi * EARTH_RADIUS_M)
    lat = 360.0 / np.pi * np.arctan(np.exp(ty / (scale * EARTH_RADIUS_M))) - 90.0
    return lat, lon


def oxts_packets(frames: Sequence[Frame]) -> np.ndarray:
    """The 30 OXTS values `(T, 30)` of every frame (KITTI's dataformat order)."""
    timestamps_s = np.array([frame.timestamp_ns for frame in frames], dtype=np.float64) * 1e-9
    translations = np.array([frame.city_SE3_ego.translation for frame in frames])
    rotations = np.array([frame.city_SE3_ego.rotation for frame in frames])
    yaw, pitch, roll = Rotation.from_matrix(rotations).as_euler("ZYX").T
    relative = translations - translations[0]
    lat, lon = _mercator_inverse(relative[:, 0], relative[:, 1])
    alt = REFERENCE_LAT_LON_ALT[2] + relative[:, 2]
    if len(frames) > 1:
        velocity_city = np.gradient(translations, timestamps_s, axis=0)
        acceleration_city = np.gradient(velocity_city, timestamps_s, axis=0)
        angle_rates = np.gradient(np.unwrap(np.stack([roll, pitch, yaw], axis=1), axis=0), timestamps_s, axis=0)
    else:
        velocity_city = acceleration_city = angle_rates = np.zeros((1, 3))
    velocity_ego = np.einsum("tji,tj->ti", rotations, velocity_city)
    specific_force = np.einsum("tji,tj->ti", rotations, acceleration_city + [0.0, 0.0, GRAVITY_M_PER_S2])
    return np.column_stack(
        [
            lat, lon, alt, roll, pitch, yaw,
            velocity_city[:, 1], velocity_city[:, 0], velocity_ego,  # vn ve vf vl vu
            specific_force, specific_force,  # ax ay az af al au
            angle_rates, angle_rates,  # wx wy wz wf wl wu
            np.tile(_POSE_ACCURACY, (len(frames), 1)), np.tile(_OXTS_STATUS, (len(frames), 1)),
        ]
    )  # fmt: skip


def _oxts_line(values: np.ndarray) -> str:
    floats = " ".join(repr(float(v)) for v in values[:25])
    return floats + " " + " ".join(str(int(v)) for v in values[25:]) + "\n"


def depth_to_png(depth_m: np.ndarray) -> np.ndarray:
    """KITTI depth encoding: uint16 `round(depth * 256)`, 0 = no measurement, clipped at 255.996 m."""
    return np.rint(np.clip(depth_m, 0.0, MAX_DEPTH_M) * DEPTH_SCALE).astype(np.uint16)


def lidar_depth(frame: Frame, camera: CameraFrame) -> np.ndarray:
    """Sparse depth of the frame's sweep in `camera`: z of each return at its nearest pixel, nearest return kept."""
    depth = np.zeros((camera.height_px, camera.width_px), dtype=np.float32)
    if frame.lidar is None or not len(frame.lidar):
        return depth
    points = camera.ego_SE3_camera.inverse().transform_points(frame.lidar.points_xyz_m)
    in_front = points[:, 2] > 0.1
    points = points[in_front]
    uv = (points @ camera.intrinsics.T)[:, :2] / points[:, 2:3]
    pixel = np.rint(uv).astype(np.int64)
    inside = (pixel[:, 0] >= 0) & (pixel[:, 0] < camera.width_px) & (pixel[:, 1] >= 0) & (pixel[:, 1] < camera.height_px)
    pixel, z = pixel[inside], points[inside, 2]
    order = np.argsort(-z, kind="stable")  # far first, so the nearest return is written last
    depth[pixel[order, 1], pixel[order, 0]] = z[order]
    return depth


def write_kitti_drive(
    log: SimulatedLog,
    base_dir: Path,
    *,
    drive_number: int = 1,
    depth_source: DepthSource = "lidar",
    on_frame: FrameCallback | None = None,
) -> Path:
    """Writes `log` as a KITTI raw drive (synced) with depth ground truth and returns the drive directory.

    The drive folder is written into a temporary folder beside it and renamed into place when complete (replacing a
    previous version of the same drive); the date folder's calibration files, which every drive of that date reads, are
    written (each atomically) before, so a visible drive always has its calibration."""
    check_log(log)
    if not 0 <= drive_number <= 9999:
        raise WriterError(f"drive_number: must lie in [0, 9999], got {drive_number}")
    if depth_source not in ("lidar", "camera"):
        raise WriterError(f"depth_source: expected 'lidar' or 'camera', got {depth_source!r}")
    left, right = stereo_pair(log)
    for index, frame in enumerate(log.frames):
        missing = [name for name in (left, right) if name is not None and name not in frame.cameras]
        if frame.lidar is None or missing:
            raise WriterError(f"SynthLog.frames[{index}] of log {log.log_id}: KITTI drives need the LiDAR and cameras {missing or [left]} in every frame")
        if depth_source == "camera" and any(frame.cameras[n].depth_m is None for n in (left, right) if n is not None):
            raise WriterError(f"SynthLog.frames[{index}].cameras of log {log.log_id}: depth_source='camera' needs depth_m")
    date = kitti_date(log.frames[0].timestamp_ns)
    date_dir = Path(base_dir) / date
    destination = date_dir / drive_name(date, drive_number)
    for filename, text in _calib_files(log, left, right, log.frames[0].cameras[left]).items():
        atomic_write_text(date_dir / filename, text)
    with staged_directory(destination) as drive_dir:
        _write_drive_files(log, drive_dir, left, right, depth_source, on_frame)
    return destination


def _write_drive_files(
    log: SimulatedLog, drive_dir: Path, left: str, right: str | None, depth_source: DepthSource, on_frame: FrameCallback | None
) -> None:
    lidar_SE3_ego = log.ego_SE3_sensors[lidar_sensor_name(log)].inverse()
    folders = {"image_02": left, **({"image_03": right} if right is not None else {})}

    for index, frame in enumerate(log.frames):
        sweep = frame.lidar
        assert sweep is not None
        points = lidar_SE3_ego.transform_points(sweep.points_xyz_m)
        velodyne = np.column_stack([points, sweep.intensity]).astype("<f4")
        atomic_write_bytes(drive_dir / "velodyne_points" / "data" / f"{index:010d}.bin", velodyne.tobytes())
        for folder, name in folders.items():
            camera = frame.cameras[name]
            write_png(drive_dir / folder / "data" / f"{index:010d}.png", camera.image)
            depth = lidar_depth(frame, camera) if depth_source == "lidar" else camera.depth_m
            assert depth is not None  # checked above: depth_source="camera" needs depth_m in every frame
            write_png(drive_dir / "proj_depth" / "groundtruth" / folder / f"{index:010d}.png", depth_to_png(depth))
        if on_frame is not None:
            on_frame()

    packets = oxts_packets(log.frames)
    for index, packet in enumerate(packets):
        atomic_write_text(drive_dir / "oxts" / "data" / f"{index:010d}.txt", _oxts_line(packet))
    stamps = "".join(_timestamp_line(frame.timestamp_ns) for frame in log.frames)
    atomic_write_text(drive_dir / "oxts" / "timestamps.txt", stamps)
    for folder in folders:
        atomic_write_text(drive_dir / folder / "timestamps.txt", stamps)
    atomic_write_text(drive_dir / "velodyne_points" / "timestamps.txt", stamps)
    starts, ends = [], []
    for frame in log.frames:
        offsets = frame.lidar.offset_ns if frame.lidar is not None and frame.lidar.offset_ns is not None and len(frame.lidar) else np.zeros(1, dtype=np.int64)
        starts.append(_timestamp_line(frame.timestamp_ns + int(offsets.min())))
        ends.append(_timestamp_line(frame.timestamp_ns + int(offsets.max())))
    atomic_write_text(drive_dir / "velodyne_points" / "timestamps_start.txt", "".join(starts))
    atomic_write_text(drive_dir / "velodyne_points" / "timestamps_end.txt", "".join(ends))
