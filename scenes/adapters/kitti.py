"""KITTI raw drives (`kitti:PATH`, with depth ground truth) and the KITTI 3D object benchmark (`kitti-object:PATH`).

The ego frame of a KITTI frame is KITTI's (`scenes.ego_frame.KITTI_EGO`): the Velodyne's axes (x forward, y left,
z up) with the origin on the ground, 1.73 m below the Velodyne; the file readers below (`read_velodyne`,
`read_object_calibration`) stay in the Velodyne frame and the datasets convert. Labels live in the rectified
camera-0 frame with the box origin at the bottom face and dimensions `h w l`; they are converted to centre-origin
`l w h` boxes with a yaw about the Velodyne z axis. Raw-drive poses come from the OXTS packets (Mercator projection
relative to the drive's first packet, as in the KITTI raw devkit), so a drive's "city" frame is anchored at its start.
KITTI stores no beam index: `laser_number` is recovered from the scan order (a new beam starts at each azimuth wrap).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from scenes.adapters.base import AdapterError, Dataset, guarded, read_image, require_dir, require_file, skip_or_raise
from scenes.caching import per_instance_lru_cache
from scenes.categories import category_id, from_kitti
from scenes.ego_frame import KITTI_EGO
from scenes.geometry import SE3, wrap_angle
from scenes.records import Boxes3D, CameraFrame, Frame, LidarSweep, source_file

EARTH_RADIUS_M: Final = 6378137.0
OXTS_FIELDS: Final = 30
LABEL_FIELDS: Final = 15
OBJECT_CALIB_KEYS: Final = ("P0", "P1", "P2", "P3", "R0_rect", "Tr_velo_to_cam")
CAMERAS: Final = {"image_02": "P_rect_02", "image_03": "P_rect_03"}


def read_calib_file(path: Path, required: tuple[str, ...] = (), *, colon_optional: bool = False) -> dict[str, np.ndarray]:
    """`key: v1 v2 ...` lines -> {key: float array}; lines whose values are not numbers (e.g. calib_time) are skipped.

    With `colon_optional`, `key v1 v2 ...` lines are read too (the KITTI tracking calibration writes `R_rect`,
    `Tr_velo_cam` and `Tr_imu_velo` that way)."""
    require_file(path, "calibration file")
    values: dict[str, np.ndarray] = {}
    for line_number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        key, separator, rest = line.partition(":")
        tokens = line.split(maxsplit=1)
        if not separator and colon_optional and tokens and not _is_number(tokens[0]):
            key, separator, rest = tokens[0], " ", tokens[1] if len(tokens) > 1 else ""
        if not separator:
            if line.strip():
                expected = "'key: values' or 'key values'" if colon_optional else "'key: values'"
                raise AdapterError(path, f"line {line_number} is not {expected}")
            continue
        try:
            array = np.array([float(token) for token in rest.split()], dtype=np.float64)
        except ValueError:
            continue
        if not np.all(np.isfinite(array)):
            raise AdapterError(path, f"key {key.strip()!r} has NaN or inf")
        values[key.strip()] = array
    missing = [key for key in required if key not in values]
    if missing:
        raise AdapterError(path, f"missing key(s) {missing}")
    return values


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def calib_matrix(path: Path, calib: Mapping[str, np.ndarray], key: str, shape: tuple[int, int]) -> np.ndarray:
    value = calib[key]
    if value.size != shape[0] * shape[1]:
        raise AdapterError(path, f"key {key!r} has {value.size} values, expected {shape[0] * shape[1]}")
    return value.reshape(shape)


def rigid_from_calib(path: Path, key: str, matrix: np.ndarray) -> SE3:
    """A 3x4 or 4x4 calibration matrix -> SE3, re-orthonormalising the rotation printed with 7 digits."""
    u, _, vt = np.linalg.svd(matrix[:3, :3])
    rotation = u @ vt
    if np.linalg.det(rotation) < 0 or np.abs(rotation - matrix[:3, :3]).max() > 1e-3:
        raise AdapterError(path, f"key {key!r} is not a rigid transform")
    return SE3(rotation, matrix[:3, 3])


def camera_from_projection(path: Path, key: str, projection: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A rectified projection `P = K [I | t]` -> (K, t): intrinsics and the camera's offset from rectified camera 0."""
    intrinsics = projection[:, :3]
    if abs(intrinsics[0, 0]) < 1e-9 or abs(intrinsics[1, 1]) < 1e-9:
        raise AdapterError(path, f"key {key!r} has a zero focal length")
    return intrinsics.copy(), np.linalg.solve(intrinsics, projection[:, 3])


def read_velodyne(path: Path, timestamp_ns: int) -> LidarSweep:
    """A Velodyne `.bin` (float32 x, y, z, reflectance per point) -> `LidarSweep` in the Velodyne (ego) frame."""
    require_file(path, "Velodyne scan")
    raw = path.read_bytes()
    if not raw:
        raise AdapterError(path, "empty Velodyne scan: 0 bytes (a corrupt frame; a scan holds x, y, z, reflectance float32 per point)")
    if len(raw) % 16:
        raise AdapterError(path, f"truncated Velodyne scan: {len(raw)} bytes is not a multiple of 16 (x, y, z, reflectance float32 per point)")
    points = np.frombuffer(raw, dtype=np.float32).reshape(-1, 4)
    if not np.all(np.isfinite(points)):
        raise AdapterError(path, "Velodyne scan holds NaN or inf")
    with source_file(path):
        return guarded(
            path,
            lambda: LidarSweep(timestamp_ns, points[:, :3].copy(), np.clip(points[:, 3], 0.0, 1.0), beam_index_from_scan_order(points[:, :3])),
        )


def beam_index_from_scan_order(points_xyz_m: np.ndarray) -> np.ndarray:
    """Beam index of each point of a KITTI scan: points are stored beam by beam, each a full turn, so a new beam starts
    wherever the azimuth wraps from +pi back to -pi."""
    if not len(points_xyz_m):
        return np.zeros(0, dtype=np.int16)
    azimuth = np.arctan2(points_xyz_m[:, 1], points_xyz_m[:, 0])
    wraps = np.diff(azimuth) < -np.pi
    return np.concatenate([[0], np.cumsum(wraps)]).astype(np.int16)


def read_depth_png(path: Path) -> np.ndarray:
    """KITTI depth PNG (uint16, depth_m * 256, 0 = no measurement) -> float32 metres."""
    from PIL import Image, UnidentifiedImageError

    require_file(path, "depth PNG")
    try:
        with Image.open(path) as image:
            values = np.asarray(image)
    except (OSError, UnidentifiedImageError) as error:
        raise AdapterError(path, f"unreadable depth PNG ({error})") from None
    if values.ndim != 2 or values.dtype not in (np.uint16, np.int32):
        raise AdapterError(path, f"expected a single-channel 16-bit PNG, got {values.dtype} {values.shape}")
    return values.astype(np.float32) / 256.0


@dataclass(frozen=True)
class KittiLabel:
    """One `label_2` line in KITTI's own terms (rectified camera 0 frame, bottom-centre location, h w l)."""

    kind: str
    truncated: float
    occluded: int
    alpha_rad: float
    bbox_ltrb_px: tuple[float, float, float, float]
    size_hwl_m: tuple[float, float, float]
    location_cam_m: tuple[float, float, float]
    rotation_y_rad: float
    score: float | None = None


def read_labels(path: Path) -> list[KittiLabel]:
    require_file(path, "label file")
    labels = []
    for line_number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) not in (LABEL_FIELDS, LABEL_FIELDS + 1):
            raise AdapterError(path, f"line {line_number}: expected {LABEL_FIELDS} or {LABEL_FIELDS + 1} fields, got {len(tokens)}")
        try:
            numbers = [float(token) for token in tokens[1:]]
        except ValueError:
            raise AdapterError(path, f"line {line_number}: non-numeric field") from None
        if not np.all(np.isfinite(numbers)):
            raise AdapterError(path, f"line {line_number}: NaN or inf")
        labels.append(
            KittiLabel(
                kind=tokens[0],
                truncated=numbers[0],
                occluded=int(numbers[1]),
                alpha_rad=numbers[2],
                bbox_ltrb_px=(numbers[3], numbers[4], numbers[5], numbers[6]),
                size_hwl_m=(numbers[7], numbers[8], numbers[9]),
                location_cam_m=(numbers[10], numbers[11], numbers[12]),
                rotation_y_rad=numbers[13],
                score=numbers[14] if len(numbers) > 14 else None,
            )
        )
    return labels


def labels_to_boxes(path: Path, labels: list[KittiLabel], rect_SE3_ego: SE3) -> Boxes3D:
    """KITTI labels -> boxes of canonical categories in the frame `rect_SE3_ego` maps from (classes outside the canonical
    table are dropped)."""
    kept = []
    for label in labels:
        canonical = guarded(path, functools.partial(from_kitti, label.kind))
        if canonical is not None:
            kept.append((label, category_id(canonical)))
    if not kept:
        return Boxes3D.empty()
    ego_SE3_rect = rect_SE3_ego.inverse()
    hwl = np.array([label.size_hwl_m for label, _ in kept])
    bottom = np.array([label.location_cam_m for label, _ in kept])
    center_rect = bottom - np.stack([np.zeros(len(kept)), hwl[:, 0] / 2, np.zeros(len(kept))], axis=1)  # camera y is down
    rotation_y = np.array([label.rotation_y_rad for label, _ in kept])
    heading_rect = np.stack([np.cos(rotation_y), np.zeros_like(rotation_y), -np.sin(rotation_y)], axis=1)
    heading_ego = heading_rect @ ego_SE3_rect.rotation.T
    scores = [label.score for label, _ in kept]
    with source_file(path):
        return guarded(
            path,
            lambda: Boxes3D(
                center_m=ego_SE3_rect.transform_points(center_rect),
                size_lwh_m=hwl[:, [2, 1, 0]],
                yaw_rad=wrap_angle(np.arctan2(heading_ego[:, 1], heading_ego[:, 0])),
                category=np.array([cid for _, cid in kept], dtype=np.int64),
                score=None if any(s is None for s in scores) else np.array(scores, dtype=np.float32),
            ),
        )


def boxes_to_labels(boxes: Boxes3D, rect_SE3_ego: SE3) -> list[tuple[tuple[float, float, float], tuple[float, float, float], float]]:
    """Inverse of `labels_to_boxes` for the geometry: (h w l, bottom-centre location in rect. camera 0, rotation_y)."""
    center_rect = rect_SE3_ego.transform_points(boxes.center_m)
    heading_ego = np.stack([np.cos(boxes.yaw_rad), np.sin(boxes.yaw_rad), np.zeros(len(boxes))], axis=1)
    heading_rect = heading_ego @ rect_SE3_ego.rotation.T
    rotation_y = wrap_angle(np.arctan2(-heading_rect[:, 2], heading_rect[:, 0]))
    result = []
    for center, size, ry in zip(center_rect, boxes.size_lwh_m, rotation_y, strict=True):
        bottom = (float(center[0]), float(center[1] + size[2] / 2), float(center[2]))
        result.append(((float(size[2]), float(size[1]), float(size[0])), bottom, float(ry)))
    return result


def read_object_calibration(path: Path) -> tuple[SE3, np.ndarray, SE3]:
    """A KITTI object calibration file -> (rect_SE3_velo, K of image_2, velo_SE3_camera2)."""
    calib = read_calib_file(path, OBJECT_CALIB_KEYS)
    rect_R = rigid_from_calib(path, "R0_rect", np.pad(calib_matrix(path, calib, "R0_rect", (3, 3)), ((0, 0), (0, 1))))
    cam0_SE3_velo = rigid_from_calib(path, "Tr_velo_to_cam", calib_matrix(path, calib, "Tr_velo_to_cam", (3, 4)))
    rect_SE3_velo = rect_R.compose(cam0_SE3_velo)
    intrinsics, offset = camera_from_projection(path, "P2", calib_matrix(path, calib, "P2", (3, 4)))
    camera2_SE3_velo = SE3(np.eye(3), offset).compose(rect_SE3_velo)
    return rect_SE3_velo, intrinsics, camera2_SE3_velo.inverse()


class KittiObjectDataset(Dataset):
    """KITTI 3D object benchmark: `PATH` holds `training/` and/or `testing/` (or is one of them).

    Each split is a log; its frames are the benchmark's independent frames, whose `timestamp_ns` is the frame index
    (KITTI object frames carry no time stamp). The left colour camera is `image_2`.
    """

    name = "kitti-object"

    def __init__(self, root: Path, *, with_image: bool = True, skip_bad: bool = False) -> None:
        super().__init__(root, skip_bad=skip_bad)
        require_dir(self.root, "KITTI object directory")
        self.with_image = with_image
        if (self.root / "velodyne").is_dir() or (self.root / "calib").is_dir():
            self._splits = {self.root.name: self.root}
        else:
            self._splits = {name: self.root / name for name in ("training", "testing") if (self.root / name).is_dir()}
        if not self._splits:
            raise AdapterError(self.root, "no KITTI object split (expected training/ or testing/ with calib/ and velodyne/)")

    def logs(self) -> list[str]:
        return list(self._splits)

    def notes(self) -> tuple[str, ...]:
        return ("KITTI object frames carry no time stamp: timestamp_ns is the frame index",)

    def split_dir(self, log_id: str) -> Path:
        if log_id not in self._splits:
            raise AdapterError(self.root, f"no split {log_id!r}; splits: {list(self._splits)}")
        return self._splits[log_id]

    def frame_ids(self, log_id: str) -> list[str]:
        calib_dir = require_dir(self.split_dir(log_id) / "calib", "calib directory")
        return sorted(path.stem for path in calib_dir.glob("*.txt"))

    def timestamps_ns(self, log_id: str) -> list[int]:
        return [int(frame_id) for frame_id in self.frame_ids(log_id)]

    def sensors(self) -> tuple[str, ...]:
        names = set()
        for split in self._splits.values():
            if (split / "velodyne").is_dir():
                names.add("velodyne")
            if (split / "image_2").is_dir():
                names.add("image_2")
        return tuple(sorted(names))

    def calibration(self, log_id: str, frame_id: str) -> tuple[SE3, np.ndarray, SE3]:
        """(rect_SE3_ego, K of image_2, ego_SE3_camera2) of one frame, in the records' ego frame."""
        rect_SE3_velo, intrinsics, velo_SE3_camera = read_object_calibration(self.split_dir(log_id) / "calib" / f"{frame_id}.txt")
        return rect_SE3_velo.compose(KITTI_EGO.dataset_SE3_ego), intrinsics, KITTI_EGO.sensor_to_ego(velo_SE3_camera)

    def frames(self, log_id: str) -> Iterator[Frame]:
        for frame_id in self.frame_ids(log_id):
            try:
                yield self.frame(log_id, frame_id)
            except AdapterError as error:
                skip_or_raise(error, self.skip_bad, f"frame {log_id}/{frame_id}")

    def frame(self, log_id: str, frame_id: str) -> Frame:
        split = self.split_dir(log_id)
        timestamp_ns = int(frame_id)
        rect_SE3_ego, intrinsics, ego_SE3_camera = self.calibration(log_id, frame_id)
        velodyne = split / "velodyne" / f"{frame_id}.bin"
        lidar = KITTI_EGO.sweep_to_ego(read_velodyne(velodyne, timestamp_ns)) if (split / "velodyne").is_dir() else None
        label_path = split / "label_2" / f"{frame_id}.txt"
        boxes = labels_to_boxes(label_path, read_labels(label_path), rect_SE3_ego) if (split / "label_2").is_dir() else None
        cameras = {}
        if self.with_image and (split / "image_2").is_dir():
            image_path = split / "image_2" / f"{frame_id}.png"
            image = read_image(image_path)
            with source_file(image_path):
                cameras["image_2"] = guarded(image_path, lambda: CameraFrame(timestamp_ns, "image_2", image, intrinsics, ego_SE3_camera))
        return Frame(log_id, timestamp_ns, SE3.identity(), lidar, cameras, boxes)


def oxts_to_poses(packets: np.ndarray) -> list[SE3]:
    """OXTS packets `(T, 30)` -> world_SE3_imu per packet: Mercator position relative to the first packet, rotation
    Rz(yaw) Ry(pitch) Rx(roll) (the KITTI raw devkit's `convertOxtsToPose`)."""
    lat, lon, alt = packets[:, 0], packets[:, 1], packets[:, 2]
    roll, pitch, yaw = packets[:, 3], packets[:, 4], packets[:, 5]
    scale = np.cos(np.deg2rad(lat[0]))
    x = scale * np.deg2rad(lon) * EARTH_RADIUS_M
    y = scale * EARTH_RADIUS_M * np.log(np.tan(np.deg2rad(90.0 + lat) / 2.0))
    translation = np.stack([x, y, alt], axis=1)
    translation -= translation[0]
    from scipy.spatial.transform import Rotation

    rotations = Rotation.from_euler("ZYX", np.stack([yaw, pitch, roll], axis=1)).as_matrix()
    return [SE3(rotation, t) for rotation, t in zip(rotations, translation, strict=True)]


def read_timestamps(path: Path) -> list[int]:
    """A KITTI `timestamps.txt` ("YYYY-MM-DD HH:MM:SS.fffffffff" per line) -> int nanoseconds since the epoch."""
    require_file(path, "timestamps file")
    stamps = []
    for line_number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            stamps.append(int(np.datetime64(line.strip().replace(" ", "T"), "ns").astype(np.int64)))
        except ValueError:
            raise AdapterError(path, f"line {line_number}: not a timestamp: {line.strip()!r}") from None
    return stamps


class KittiRawDataset(Dataset):
    """KITTI raw: `PATH/<date>/<date>_drive_<NNNN>_sync/` drives with `calib_*.txt` beside them in `PATH/<date>/`.

    Each synchronized drive is a log; frames carry the Velodyne scan, `image_02`/`image_03` (with the depth ground
    truth as `CameraFrame.depth_m` when present) and the OXTS pose. Depth ground truth is looked for in the drive's
    `proj_depth/groundtruth/image_0X/` (monodepth2's merged layout) and, with `depth_root`, in the release layout
    `depth_root/{train,val}/<drive>/proj_depth/groundtruth/image_0X/`.
    """

    name = "kitti"

    def __init__(
        self, root: Path, *, cameras: tuple[str, ...] | None = None, depth_root: Path | None = None, skip_bad: bool = False
    ) -> None:
        super().__init__(root, skip_bad=skip_bad)
        self.depth_root = None if depth_root is None else require_dir(Path(depth_root), "KITTI depth directory")
        require_dir(self.root, "KITTI raw directory")
        unknown = set(cameras or ()) - set(CAMERAS)
        if unknown:
            raise AdapterError(self.root, f"unknown KITTI camera(s) {sorted(unknown)}; expected {sorted(CAMERAS)}")
        self.requested_cameras = None if cameras is None else tuple(cameras)
        self._drives = {
            drive.name: drive
            for date in sorted(self.root.iterdir())
            if date.is_dir()
            for drive in sorted(date.iterdir())
            if drive.is_dir() and drive.name.endswith("_sync") and (drive / "velodyne_points").is_dir()
        }
        if not self._drives:
            raise AdapterError(self.root, "no KITTI raw drive found (expected <date>/<date>_drive_<NNNN>_sync/velodyne_points)")

    def logs(self) -> list[str]:
        return list(self._drives)

    def drive_dir(self, log_id: str) -> Path:
        if log_id not in self._drives:
            raise AdapterError(self.root, f"no drive {log_id!r}")
        return self._drives[log_id]

    def cameras(self, log_id: str) -> tuple[str, ...]:
        """The requested cameras, or by default those the drive has on disk."""
        if self.requested_cameras is not None:
            return self.requested_cameras
        return tuple(camera for camera in CAMERAS if (self.drive_dir(log_id) / camera / "data").is_dir())

    def sensors(self) -> tuple[str, ...]:
        return tuple(sorted({"velodyne", *(camera for log_id in self._drives for camera in self.cameras(log_id))}))

    @per_instance_lru_cache(maxsize=4)
    def calibration(self, log_id: str) -> tuple[SE3, dict[str, tuple[np.ndarray, SE3]]]:
        """(imu_SE3_ego, {camera: (K, ego_SE3_camera)}) of a drive's date, in the records' ego frame."""
        date_dir = self.drive_dir(log_id).parent
        velo_path = date_dir / "calib_velo_to_cam.txt"
        velo = read_calib_file(velo_path, ("R", "T"))
        cam0_SE3_velo = rigid_from_calib(velo_path, "R|T", np.hstack([calib_matrix(velo_path, velo, "R", (3, 3)), calib_matrix(velo_path, velo, "T", (3, 1))]))
        cam_path = date_dir / "calib_cam_to_cam.txt"
        keys = {camera: CAMERAS[camera] for camera in self.cameras(log_id)}
        cam = read_calib_file(cam_path, ("R_rect_00", *keys.values()))
        rect_R = rigid_from_calib(cam_path, "R_rect_00", np.pad(calib_matrix(cam_path, cam, "R_rect_00", (3, 3)), ((0, 0), (0, 1))))
        rect_SE3_velo = rect_R.compose(cam0_SE3_velo)
        cameras = {}
        for camera, key in keys.items():
            intrinsics, offset = camera_from_projection(cam_path, key, calib_matrix(cam_path, cam, key, (3, 4)))
            cameras[camera] = (intrinsics, KITTI_EGO.sensor_to_ego(SE3(np.eye(3), offset).compose(rect_SE3_velo).inverse()))
        imu_path = date_dir / "calib_imu_to_velo.txt"
        imu = read_calib_file(imu_path, ("R", "T"))
        velo_SE3_imu = rigid_from_calib(imu_path, "R|T", np.hstack([calib_matrix(imu_path, imu, "R", (3, 3)), calib_matrix(imu_path, imu, "T", (3, 1))]))
        return velo_SE3_imu.inverse().compose(KITTI_EGO.dataset_SE3_ego), cameras

    @per_instance_lru_cache(maxsize=4)
    def poses(self, log_id: str) -> list[SE3]:
        """city_SE3_ego per frame, from the OXTS packets."""
        oxts_dir = self.drive_dir(log_id) / "oxts" / "data"
        paths = sorted(require_dir(oxts_dir, "OXTS directory").glob("*.txt"))
        packets = []
        for path in paths:
            values = path.read_text(errors="replace").split()
            if len(values) != OXTS_FIELDS:
                raise AdapterError(path, f"expected {OXTS_FIELDS} OXTS values, got {len(values)}")
            try:
                packet = np.array([float(value) for value in values])
            except ValueError:
                raise AdapterError(path, "non-numeric OXTS value") from None
            if not np.all(np.isfinite(packet[:6])):
                raise AdapterError(path, "NaN or inf in the OXTS position/orientation")
            packets.append(packet)
        if not packets:
            raise AdapterError(oxts_dir, "no OXTS packet")
        imu_SE3_ego, _ = self.calibration(log_id)
        return [world_SE3_imu.compose(imu_SE3_ego) for world_SE3_imu in oxts_to_poses(np.array(packets))]

    def timestamps_ns(self, log_id: str) -> list[int]:
        return read_timestamps(self.drive_dir(log_id) / "velodyne_points" / "timestamps.txt")

    def frames(self, log_id: str) -> Iterator[Frame]:
        try:
            stamps = self.timestamps_ns(log_id)
            poses = self.poses(log_id)
        except AdapterError as error:
            skip_or_raise(error, self.skip_bad, f"drive {log_id}")
            return
        for index, timestamp_ns in enumerate(stamps):
            try:
                if index >= len(poses):
                    raise AdapterError(self.drive_dir(log_id) / "oxts" / "data", f"no OXTS packet for frame {index} (timestamp_ns {timestamp_ns})")
                yield self.frame(log_id, index, timestamp_ns, poses[index])
            except AdapterError as error:
                skip_or_raise(error, self.skip_bad, f"frame {log_id}/{index:010d}")

    def depth_path(self, log_id: str, camera: str, index: int) -> Path | None:
        """The depth ground-truth PNG of a frame, if any (the drive's own folder first, then `depth_root`)."""
        relative = Path("proj_depth") / "groundtruth" / camera / f"{index:010d}.png"
        candidates = [self.drive_dir(log_id) / relative]
        if self.depth_root is not None:
            candidates += [self.depth_root / split / log_id / relative for split in ("train", "val")]
        return next((path for path in candidates if path.is_file()), None)

    def frame(self, log_id: str, index: int, timestamp_ns: int, city_SE3_ego: SE3) -> Frame:
        drive = self.drive_dir(log_id)
        lidar = KITTI_EGO.sweep_to_ego(read_velodyne(drive / "velodyne_points" / "data" / f"{index:010d}.bin", timestamp_ns))
        _, calibration = self.calibration(log_id)
        cameras = {}
        for camera in self.cameras(log_id):
            image_path = drive / camera / "data" / f"{index:010d}.png"
            image = read_image(image_path)
            depth_path = self.depth_path(log_id, camera, index)
            depth = read_depth_png(depth_path) if depth_path is not None else None
            intrinsics, ego_SE3_camera = calibration[camera]
            with source_file(depth_path or image_path):
                cameras[camera] = guarded(
                    image_path, functools.partial(CameraFrame, timestamp_ns, camera, image, intrinsics, ego_SE3_camera, depth_m=depth)
                )
        return Frame(log_id, timestamp_ns, city_SE3_ego, lidar, cameras, None)
