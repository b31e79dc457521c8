"""Argoverse 2 sensor dataset (`av2:PATH`) -> `Frame`s with LiDAR, cameras, poses, annotations and the log's map.

Layout: `PATH` is a log dir, a split dir of log dirs, or a dataset dir of split dirs (`train/`, `val/`, `test/`).
Frames are yielded at every LiDAR timestamp on disk and every annotated timestamp (a log fragment may hold
annotations for sweeps that are not on disk: those frames carry annotations and no LiDAR). One frame reads one
sweep (and, when asked, the nearest image of each camera); a log's poses and annotations are read once per log.
Maps are read with `av2.map.map_api.ArgoverseStaticMap` and calibration with `av2.geometry.camera.PinholeCamera`.
Sweeps, boxes, poses and sensor extrinsics move from AV2's ego frame (rear axle, 0.33 m above the road) to the
canonical ego frame of the records (`scenes.ego_frame`).
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import pyarrow as pa

from scenes.adapters.base import (
    AdapterError,
    Dataset,
    guarded,
    read_feather_columns,
    require_dir,
    skip_or_raise,
)
from scenes.caching import per_instance_lru_cache
from scenes.categories import category_id, from_av2
from scenes.ego_frame import AV2_EGO
from scenes.geometry import SE3, Sim2, quat_wxyz_to_matrix, quat_wxyz_to_yaw
from scenes.records import Boxes3D, CameraFrame, Frame, LaneGraph, LidarSweep, MapRaster, source_file

if TYPE_CHECKING:
    from av2.map.map_api import ArgoverseStaticMap

POSE_COLUMNS: Final = {"timestamp_ns": "int", **{name: "float" for name in ("qw", "qx", "qy", "qz", "tx_m", "ty_m", "tz_m")}}
CALIBRATION_COLUMNS: Final = {"sensor_name": "str", **{name: "float" for name in ("qw", "qx", "qy", "qz", "tx_m", "ty_m", "tz_m")}}
INTRINSICS_COLUMNS: Final = {
    "sensor_name": "str",
    **{name: "float" for name in ("fx_px", "fy_px", "cx_px", "cy_px")},
    "height_px": "int",
    "width_px": "int",
}
ANNOTATION_COLUMNS: Final = {
    "timestamp_ns": "int",
    "track_uuid": "str",
    "category": "str",
    **{name: "float" for name in ("length_m", "width_m", "height_m", "qw", "qx", "qy", "qz", "tx_m", "ty_m", "tz_m")},
    "num_interior_pts": "int",
}
LIDAR_COLUMNS: Final = {"x": "float", "y": "float", "z": "float", "intensity": "int", "laser_number": "int", "offset_ns": "int"}
# Half the period of the 20 Hz ring cameras: an image farther than this from the sweep is not the sweep's image.
MAX_CAMERA_OFFSET_NS: Final = 25_000_000
CENTERLINE_POINTS: Final = 10
MAP_ARCHIVE_GLOB: Final = "log_map_archive_*.json"
GROUND_HEIGHT_GLOB: Final = "*_ground_height_surface____*.npy"
SIM2_GLOB: Final = "*___img_Sim2_city.json"
# Each `img_Sim2_city` JSON key and how many numbers it holds (`s` is a bare number).
SIM2_KEYS: Final = {"R": 4, "t": 2, "s": 1}


def is_log_dir(path: Path) -> bool:
    return (path / "city_SE3_egovehicle.feather").is_file()


def discover_logs(root: Path, split: str | None = None) -> dict[str, Path]:
    """log_id -> log dir under `root` (a log dir, a split dir or a dataset dir of split dirs)."""
    require_dir(root, "AV2 dataset directory")
    if is_log_dir(root):
        return {root.name: root}
    logs = {child.name: child for child in sorted(root.iterdir()) if child.is_dir() and is_log_dir(child)}
    if not logs:
        for split_dir in sorted(root.iterdir()):
            if split_dir.is_dir() and (split is None or split_dir.name == split):
                logs.update({child.name: child for child in sorted(split_dir.iterdir()) if child.is_dir() and is_log_dir(child)})
    if not logs:
        raise AdapterError(root, "no AV2 log found (a log dir holds city_SE3_egovehicle.feather)")
    return logs


def read_poses(path: Path) -> dict[int, SE3]:
    """`city_SE3_egovehicle.feather` -> {timestamp_ns: city_SE3_ego} of the canonical ego frame (exact-timestamp lookup,
    as in av2)."""
    table = read_feather_columns(path, POSE_COLUMNS)
    poses = [AV2_EGO.pose_to_ego(pose) for pose in _se3_rows(path, table)]
    return dict(zip(table.column("timestamp_ns").to_pylist(), poses, strict=True))


def read_calibration(log_dir: Path) -> dict[str, SE3]:
    """`calibration/egovehicle_SE3_sensor.feather` -> {sensor_name: ego_SE3_sensor} of the canonical ego frame."""
    path = log_dir / "calibration" / "egovehicle_SE3_sensor.feather"
    table = read_feather_columns(path, CALIBRATION_COLUMNS)
    poses = [AV2_EGO.sensor_to_ego(pose) for pose in _se3_rows(path, table)]
    return dict(zip(table.column("sensor_name").to_pylist(), poses, strict=True))


def _se3_rows(path: Path, table: pa.Table) -> list[SE3]:
    quats = np.stack([table.column(name).to_numpy().astype(np.float64) for name in ("qw", "qx", "qy", "qz")], axis=1)
    translations = np.stack([table.column(name).to_numpy().astype(np.float64) for name in ("tx_m", "ty_m", "tz_m")], axis=1)
    norms = np.linalg.norm(quats, axis=1)
    if np.any(norms < 1e-6):
        raise AdapterError(path, f"zero-norm quaternion at row {int(np.flatnonzero(norms < 1e-6)[0])}")
    rotations = quat_wxyz_to_matrix(quats)
    return [SE3(rotation, translation) for rotation, translation in zip(rotations, translations, strict=True)]


def read_lidar(path: Path) -> LidarSweep:
    """One `sensors/lidar/<timestamp_ns>.feather` sweep (AV2 ego frame, float16 on disk), in the canonical ego frame."""
    try:
        timestamp_ns = int(path.stem)
    except ValueError:
        raise AdapterError(path, "LiDAR file name is not an integer timestamp in nanoseconds") from None
    table = read_feather_columns(path, LIDAR_COLUMNS)
    xyz = AV2_EGO.points_to_ego(np.stack([table.column(axis).to_numpy() for axis in "xyz"], axis=1).astype(np.float32))
    intensity = table.column("intensity").to_numpy().astype(np.float32) / 255.0
    with source_file(path):
        return guarded(
            path,
            lambda: LidarSweep(
                timestamp_ns,
                xyz,
                intensity,
                table.column("laser_number").to_numpy().astype(np.int16),
                table.column("offset_ns").to_numpy().astype(np.int64),
            ),
        )


@dataclass(frozen=True)
class LogAnnotations:
    """A log's `annotations.feather`, sorted by timestamp, as column arrays."""

    path: Path
    timestamps_ns: np.ndarray
    track_uuid: np.ndarray
    category: np.ndarray
    size_lwh_m: np.ndarray
    quat_wxyz: np.ndarray
    center_m: np.ndarray
    num_interior_pts: np.ndarray

    @classmethod
    def read(cls, path: Path) -> LogAnnotations:
        table = read_feather_columns(path, ANNOTATION_COLUMNS)
        order = np.argsort(table.column("timestamp_ns").to_numpy(), kind="stable")

        def floats(*names: str) -> np.ndarray:
            return np.stack([table.column(name).to_numpy().astype(np.float64)[order] for name in names], axis=1)

        sizes = floats("length_m", "width_m", "height_m")
        if np.any(sizes <= 0):
            raise AdapterError(path, f"non-positive box size at row {int(order[np.flatnonzero((sizes <= 0).any(1))[0]])}")
        quats = floats("qw", "qx", "qy", "qz")
        if np.any(np.linalg.norm(quats, axis=1) < 1e-6):
            raise AdapterError(path, "zero-norm box quaternion")
        return cls(
            path=path,
            timestamps_ns=table.column("timestamp_ns").to_numpy()[order].astype(np.int64),
            track_uuid=np.asarray(table.column("track_uuid").to_pylist(), dtype=str)[order],
            category=np.asarray(table.column("category").to_pylist(), dtype=str)[order],
            size_lwh_m=sizes,
            quat_wxyz=quats,
            center_m=AV2_EGO.points_to_ego(floats("tx_m", "ty_m", "tz_m")),
            num_interior_pts=table.column("num_interior_pts").to_numpy().astype(np.int64)[order],
        )

    def unique_timestamps_ns(self) -> list[int]:
        return np.unique(self.timestamps_ns).tolist()

    def at(self, timestamp_ns: int) -> Boxes3D:
        start, stop = np.searchsorted(self.timestamps_ns, [timestamp_ns, timestamp_ns + 1])
        rows = slice(int(start), int(stop))
        category = self.category_ids[rows]
        keep = category >= 0
        with source_file(self.path):
            return guarded(
                self.path,
                lambda: Boxes3D(
                    center_m=self.center_m[rows][keep],
                    size_lwh_m=self.size_lwh_m[rows][keep],
                    yaw_rad=quat_wxyz_to_yaw(self.quat_wxyz[rows][keep]).reshape(-1),
                    category=category[keep],
                    track_id=self.track_uuid[rows][keep],
                    num_interior_pts=self.num_interior_pts[rows][keep],
                    frame="ego",
                ),
            )

    @functools.cached_property
    def category_ids(self) -> np.ndarray:
        """Canonical category id per row, -1 for AV2's non-competition categories; unknown names raise."""
        ids = {}
        for name in np.unique(self.category):
            canonical = guarded(self.path, functools.partial(from_av2, str(name)))
            ids[str(name)] = -1 if canonical is None else category_id(canonical)
        return np.array([ids[str(name)] for name in self.category], dtype=np.int64)


class AV2SensorDataset(Dataset):
    """The AV2 sensor dataset; `cameras` names the ring/stereo cameras to load with each frame (none by default)."""

    name = "av2"

    def __init__(
        self,
        root: Path,
        *,
        split: str | None = None,
        cameras: Sequence[str] = (),
        with_map: bool = True,
        skip_bad: bool = False,
    ) -> None:
        super().__init__(root, skip_bad=skip_bad)
        self.cameras = tuple(cameras)
        self.with_map = with_map
        self._logs = discover_logs(self.root, split)

    def logs(self) -> list[str]:
        return list(self._logs)

    def log_dir(self, log_id: str) -> Path:
        try:
            return self._logs[log_id]
        except KeyError:
            raise AdapterError(self.root, f"no log {log_id!r}; logs: {sorted(self._logs)[:5]}") from None

    def sensors(self) -> tuple[str, ...]:
        names: set[str] = set()
        for log_dir in self._logs.values():
            if (log_dir / "sensors" / "lidar").is_dir():
                names.add("lidar")
            cameras_dir = log_dir / "sensors" / "cameras"
            if cameras_dir.is_dir():
                names.update(child.name for child in cameras_dir.iterdir() if child.is_dir())
        return tuple(sorted(names))

    def map_dir(self, log_id: str) -> Path:
        """The log's `map/` dir; every AV2 sensor log has one (the writer puts it last: without it the log is cut short)."""
        log_dir = self.log_dir(log_id)
        map_dir = log_dir / "map"
        if not map_dir.is_dir():
            raise AdapterError(log_dir, "incomplete AV2 log: no map/ folder (every AV2 sensor log carries its map; an interrupted writer?)")
        return map_dir

    @per_instance_lru_cache(maxsize=16)
    def check_log(self, log_id: str) -> None:
        """Log-level checks, once per log: the `map/` folder exists and every `calibration/*.feather` on disk is readable
        with its columns (sensor poses, intrinsics), even when no camera is asked for."""
        self.map_dir(log_id)
        for path in sorted((self.log_dir(log_id) / "calibration").glob("*.feather")):
            if path.name == "egovehicle_SE3_sensor.feather":
                self.calibration(log_id)
            elif path.name == "intrinsics.feather":
                self.intrinsics(log_id)
            else:
                read_feather_columns(path, {})

    @per_instance_lru_cache(maxsize=4)
    def poses(self, log_id: str) -> dict[int, SE3]:
        return read_poses(self.log_dir(log_id) / "city_SE3_egovehicle.feather")

    @per_instance_lru_cache(maxsize=4)
    def calibration(self, log_id: str) -> dict[str, SE3]:
        return read_calibration(self.log_dir(log_id))

    @per_instance_lru_cache(maxsize=4)
    def annotations(self, log_id: str) -> LogAnnotations | None:
        path = self.log_dir(log_id) / "annotations.feather"
        return LogAnnotations.read(path) if path.exists() else None

    @per_instance_lru_cache(maxsize=4)
    def lidar_paths(self, log_id: str) -> dict[int, Path]:
        """{timestamp_ns: sweep file} of a log (listed once per log)."""
        lidar_dir = self.log_dir(log_id) / "sensors" / "lidar"
        if not lidar_dir.is_dir():
            return {}
        paths = {}
        for path in lidar_dir.glob("*.feather"):
            if not path.stem.isdigit():
                raise AdapterError(path, "LiDAR file name is not an integer timestamp in nanoseconds")
            paths[int(path.stem)] = path
        return dict(sorted(paths.items()))

    @per_instance_lru_cache(maxsize=16)
    def camera_paths(self, log_id: str, camera: str) -> tuple[np.ndarray, tuple[Path, ...]]:
        camera_dir = require_dir(self.log_dir(log_id) / "sensors" / "cameras" / camera, f"camera {camera!r} directory")
        paths = sorted((path for path in camera_dir.glob("*.jpg") if path.stem.isdigit()), key=lambda p: int(p.stem))
        return np.array([int(path.stem) for path in paths], dtype=np.int64), tuple(paths)

    def timestamps_ns(self, log_id: str) -> list[int]:
        self.check_log(log_id)
        stamps = set(self.lidar_paths(log_id))
        annotations = self.annotations(log_id)
        if annotations is not None:
            stamps.update(annotations.unique_timestamps_ns())
        return sorted(stamps)

    def category_counts(self, log_id: str) -> Counter[str]:
        annotations = self.annotations(log_id)
        if annotations is None:
            return Counter()
        return Counter(annotations.category[annotations.category_ids >= 0].tolist())

    def frames(self, log_id: str, *, lidar_only: bool = False) -> Iterator[Frame]:
        """Frames of a log in time order; `lidar_only` keeps only the timestamps with a sweep on disk."""
        try:
            self.check_log(log_id)
            lidar_paths = self.lidar_paths(log_id)
            stamps = list(lidar_paths) if lidar_only else self.timestamps_ns(log_id)
            self.poses(log_id)
        except AdapterError as error:
            skip_or_raise(error, self.skip_bad, f"log {log_id}")
            return
        for timestamp_ns in stamps:
            try:
                yield self.frame(log_id, timestamp_ns)
            except AdapterError as error:
                skip_or_raise(error, self.skip_bad, f"frame {log_id}/{timestamp_ns}")

    def frame(self, log_id: str, timestamp_ns: int) -> Frame:
        """The frame at one timestamp (reads only that sweep and the cameras' nearest images)."""
        lidar_path = self.lidar_paths(log_id).get(timestamp_ns)
        log_dir = self.log_dir(log_id)
        pose_path = log_dir / "city_SE3_egovehicle.feather"
        city_SE3_ego = self.poses(log_id).get(timestamp_ns)
        if city_SE3_ego is None:
            raise AdapterError(pose_path, f"no pose at timestamp_ns {timestamp_ns}")
        lidar = read_lidar(lidar_path) if lidar_path is not None else None
        annotations = self.annotations(log_id)
        boxes = annotations.at(timestamp_ns) if annotations is not None else None
        cameras = {camera: self.camera_frame(log_id, camera, timestamp_ns) for camera in self.cameras}
        return Frame(log_id, timestamp_ns, city_SE3_ego, lidar, {k: v for k, v in cameras.items() if v is not None}, boxes)

    def camera_frame(self, log_id: str, camera: str, lidar_timestamp_ns: int) -> CameraFrame | None:
        """The image of `camera` nearest to a sweep timestamp (None when none lies within half a camera period)."""
        from av2.utils.io import read_img

        stamps, paths = self.camera_paths(log_id, camera)
        if not len(stamps):
            return None
        index = int(np.argmin(np.abs(stamps - lidar_timestamp_ns)))
        if abs(int(stamps[index]) - lidar_timestamp_ns) > MAX_CAMERA_OFFSET_NS:
            return None
        path = paths[index]
        try:
            image = read_img(path, channel_order="RGB")
        except (OSError, ValueError) as error:
            raise AdapterError(path, f"unreadable image ({error})") from None
        if image is None:
            raise AdapterError(path, "unreadable image")
        calibration = self.calibration(log_id)
        if camera not in calibration:
            raise AdapterError(self.log_dir(log_id) / "calibration" / "egovehicle_SE3_sensor.feather", f"no row for {camera!r}")
        intrinsics = self.intrinsics(log_id)
        if camera not in intrinsics:
            raise AdapterError(self.log_dir(log_id) / "calibration" / "intrinsics.feather", f"no row for {camera!r}")
        with source_file(path):
            return guarded(path, lambda: CameraFrame(int(stamps[index]), camera, image, intrinsics[camera], calibration[camera]))

    @per_instance_lru_cache(maxsize=4)
    def intrinsics(self, log_id: str) -> dict[str, np.ndarray]:
        path = self.log_dir(log_id) / "calibration" / "intrinsics.feather"
        table = read_feather_columns(path, INTRINSICS_COLUMNS)
        result = {}
        for row in table.to_pylist():
            result[row["sensor_name"]] = np.array(
                [[row["fx_px"], 0.0, row["cx_px"]], [0.0, row["fy_px"], row["cy_px"]], [0.0, 0.0, 1.0]]
            )
        return result

    @per_instance_lru_cache(maxsize=4)
    def lane_graph(self, log_id: str) -> LaneGraph | None:
        if not self.with_map:
            return None
        try:
            return read_map_dir(self.map_dir(log_id))
        except AdapterError as error:
            skip_or_raise(error, self.skip_bad, f"map of log {log_id}")
            return None

    def region_of_interest(self, log_id: str) -> Av2MapRegionOfInterest | None:
        """The official ROI of the log's map (`Av2MapRegionOfInterest`); a log without `map/` dir is an incomplete log
        (`AdapterError`, or None with `skip_bad`)."""
        try:
            return Av2MapRegionOfInterest.read(self.map_dir(log_id))
        except AdapterError as error:
            skip_or_raise(error, self.skip_bad, f"region of interest of log {log_id}")
            return None


@dataclass(frozen=True)
class Av2MapRegionOfInterest:
    """The ROI raster of an AV2 log map (drivable area dilated by 5 m), looked up by `ArgoverseStaticMap` itself."""

    map_dir: Path
    avm: ArgoverseStaticMap

    @classmethod
    def read(cls, map_dir: Path) -> Av2MapRegionOfInterest:
        """Reads the map of an AV2 `map/` dir with its rasters (they need the ground-height raster and Sim(2) files)."""
        from av2.map.map_api import ArgoverseStaticMap

        require_dir(map_dir, "AV2 map directory")
        check_map_rasters(map_dir)
        try:
            avm = ArgoverseStaticMap.from_map_dir(map_dir, build_raster=True)
        except (OSError, RuntimeError, ValueError, KeyError, TypeError, AssertionError) as error:
            raise AdapterError(map_dir, f"unreadable AV2 map rasters ({type(error).__name__}: {error})") from None
        return cls(map_dir, avm)

    def contains_xy(self, points_xy_city_m: np.ndarray) -> np.ndarray:
        from av2.map.map_api import RasterLayerType

        points = np.asarray(points_xy_city_m, dtype=np.float64).reshape(-1, 2)
        return np.asarray(self.avm.get_raster_layer_points_boolean(points, RasterLayerType.ROI), dtype=bool)


def check_sim2_json(path: Path) -> None:
    """Checks an `*___img_Sim2_city.json` as `av2.geometry.sim2.Sim2.from_json` reads it: an object with `R` (4 numbers,
    a 2-D rotation), `t` (2 numbers) and `s` (a non-zero number), all finite."""
    try:
        payload = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AdapterError(path, f"not valid JSON (truncated or corrupt: {error})") from None
    except OSError as error:
        raise AdapterError(path, f"unreadable Sim(2) file ({error})") from None
    if not isinstance(payload, dict):
        raise AdapterError(path, f"expected a JSON object with keys {list(SIM2_KEYS)}, got {type(payload).__name__}")
    for key, size in SIM2_KEYS.items():
        if key not in payload:
            raise AdapterError(path, f"missing key {key!r}; found {sorted(payload)}")
        value = payload[key]
        expected = "a number" if size == 1 else f"a list of {size} numbers"
        if size == 1:
            items = None if isinstance(value, list) else [value]
        else:
            items = value if isinstance(value, list) else None
        if items is None or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
            raise AdapterError(path, f"key {key!r} must be {expected}, got {value!r}")
        if len(items) != size:
            raise AdapterError(path, f"key {key!r} has {len(items)} values, expected {size}")
        try:
            values = np.array(items, dtype=np.float64)
        except OverflowError:
            raise AdapterError(path, f"key {key!r} has a number out of float64 range") from None
        if not np.all(np.isfinite(values)):
            raise AdapterError(path, f"key {key!r} has NaN or inf")
    rotation = np.array(payload["R"], dtype=np.float64).reshape(2, 2)
    if not np.allclose(rotation @ rotation.T, np.eye(2), atol=1e-5):  # the tolerance of `scenes.geometry.Sim2`
        raise AdapterError(path, f"key 'R' is not a 2-D rotation: {payload['R']}")
    if abs(float(payload["s"])) < 1e-12:
        raise AdapterError(path, "key 's' (scale) is zero")


def check_ground_height_npy(path: Path) -> None:
    """Checks an `*_ground_height_surface____*.npy` without trusting its header: a 2-D float array whose data is all there."""
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(file)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(file)
            data_offset = file.tell()
    except Exception as error:  # numpy parses the header text with tokenize and ast: a corrupt one raises many kinds
        raise AdapterError(path, f"not a readable .npy array (truncated or corrupt header: {error})") from None
    if dtype.hasobject or dtype.kind != "f" or len(shape) != 2 or 0 in shape:
        raise AdapterError(path, f"ground-height raster: expected a non-empty 2-D float array, header says {dtype} {shape}")
    expected = math.prod(shape) * dtype.itemsize
    if size - data_offset != expected:
        raise AdapterError(
            path, f"not a readable .npy array (truncated or corrupt: header says {dtype} {shape}, {expected} data bytes; {size - data_offset} follow)"
        )


def check_map_rasters(map_dir: Path) -> None:
    """Checks the raster files of an AV2 `map/` dir (one ground-height `.npy` and one Sim(2) JSON) before av2 reads them,
    so that a bad one is named (av2 itself reports every map problem as a problem of the map)."""
    for pattern in (GROUND_HEIGHT_GLOB, SIM2_GLOB):
        found = sorted(map_dir.glob(pattern))
        if len(found) != 1:
            raise AdapterError(map_dir, f"unreadable AV2 map rasters: expected exactly one {pattern}, found {len(found)}")
    check_ground_height_npy(next(map_dir.glob(GROUND_HEIGHT_GLOB)))
    check_sim2_json(next(map_dir.glob(SIM2_GLOB)))


def read_map_dir(map_dir: Path, build_raster: bool | None = None) -> LaneGraph:
    """An AV2 `map/` dir (vector JSON, and when present the ground-height raster and Sim(2)) -> `LaneGraph`."""
    from av2.map.map_api import ArgoverseStaticMap

    archives = sorted(map_dir.glob(MAP_ARCHIVE_GLOB))
    if len(archives) != 1:
        raise AdapterError(map_dir, f"expected exactly one {MAP_ARCHIVE_GLOB}, found {len(archives)}")
    if build_raster is None:
        build_raster = any(map_dir.glob(GROUND_HEIGHT_GLOB)) and any(map_dir.glob(SIM2_GLOB))
    if build_raster:
        check_map_rasters(map_dir)
    try:
        avm = ArgoverseStaticMap.from_map_dir(map_dir, build_raster=build_raster)
    except (OSError, ValueError, KeyError, TypeError, AssertionError, AttributeError, IndexError, RuntimeError) as error:
        raise AdapterError(archives[0], f"unreadable AV2 map ({type(error).__name__}: {error})") from None
    city_name = archives[0].stem.split("____")[1].split("_")[0] if "____" in archives[0].stem else "unknown"
    return lane_graph_from_avm(avm, city_name, archives[0])


def fill_unknown_heights(heights_m: np.ndarray) -> np.ndarray:
    """AV2 ground-height rasters are NaN off the mapped area: take the nearest mapped cell's height there."""
    from scipy.ndimage import distance_transform_edt

    unknown = ~np.isfinite(heights_m)
    if not unknown.any():
        return heights_m
    if unknown.all():
        return np.zeros_like(heights_m)
    nearest = distance_transform_edt(unknown, return_distances=False, return_indices=True)
    return heights_m[tuple(nearest)]


def lane_graph_from_avm(avm: object, city_name: str, source: Path) -> LaneGraph:
    """An `ArgoverseStaticMap` -> `LaneGraph` (10-point centerlines and boundaries, rasters when built)."""
    from av2.geometry.interpolate import interp_arc

    segments = list(avm.vector_lane_segments.values())  # type: ignore[attr-defined]
    lane_ids = np.array([segment.id for segment in segments], dtype=np.int64)
    centerlines = np.array([avm.get_lane_segment_centerline(segment.id) for segment in segments]).reshape(-1, CENTERLINE_POINTS, 3)  # type: ignore[attr-defined]

    def boundary(points: np.ndarray) -> np.ndarray:
        return interp_arc(CENTERLINE_POINTS, points)

    left = np.array([boundary(s.left_lane_boundary.xyz) for s in segments]).reshape(-1, CENTERLINE_POINTS, 3)
    right = np.array([boundary(s.right_lane_boundary.xyz) for s in segments]).reshape(-1, CENTERLINE_POINTS, 3)
    crossings = [
        np.concatenate([crossing.edge1.xyz, crossing.edge2.xyz[::-1]])
        for crossing in avm.vector_pedestrian_crossings.values()  # type: ignore[attr-defined]
    ]
    rasters: dict[str, MapRaster] = {}
    layers = {
        "drivable_area": getattr(avm, "raster_drivable_area_layer", None),
        "roi": getattr(avm, "raster_roi_layer", None),
        "ground_height": getattr(avm, "raster_ground_height_layer", None),
    }
    for name, layer in layers.items():
        if layer is not None:
            sim2 = layer.array_Sim2_city
            values = fill_unknown_heights(layer.array.astype(np.float32)) if name == "ground_height" else layer.array
            rasters[name] = MapRaster(name, values, Sim2(np.asarray(sim2.R), np.asarray(sim2.t, dtype=np.float64), float(sim2.s)))

    def neighbor(value: int | None) -> int:
        return -1 if value is None else int(value)

    with source_file(source):
        return guarded(
            source,
            lambda: LaneGraph(
                city_name=city_name,
                lane_ids=lane_ids,
                centerlines_m=centerlines,
                successors=tuple(tuple(segment.successors) for segment in segments),
                left_neighbor_id=np.array([neighbor(s.left_neighbor_id) for s in segments], dtype=np.int64),
                right_neighbor_id=np.array([neighbor(s.right_neighbor_id) for s in segments], dtype=np.int64),
                is_intersection=np.array([bool(s.is_intersection) for s in segments]),
                drivable_areas_m=tuple(area.xyz for area in avm.vector_drivable_areas.values()),  # type: ignore[attr-defined]
                left_boundaries_m=left,
                right_boundaries_m=right,
                crosswalks_m=np.array(crossings).reshape(-1, 4, 3),
                rasters=rasters,
            ),
        )
