"""nuScenes-format writer: simulated logs -> one nuScenes database (13 tables, LIDAR_TOP point clouds, camera JPEGs,
map PNG), loadable with `nuscenes.NuScenes(version=..., dataroot=...)` and `nuscenes.prediction.PredictHelper`.

Conventions (nuScenes schema): the global frame is the simulated city frame; poses, boxes and calibrations carry
scalar-first quaternions; box sizes are `w, l, h`; timestamps are microseconds. Every log becomes one scene named
`scene-NNNN`; key frames ("samples") are taken at 2 Hz, the other LiDAR sweeps and images are non-key-frame sample
data. Point clouds are float32 `x, y, z, intensity (0..255), ring` in the LIDAR_TOP sensor frame. Custom splits go
to `<dataroot>/<version>/splits.json`, which the devkit's evaluators read for any split name it does not hard-code.
The map PNG is the drivable area at 0.1 m per pixel with the global origin at its bottom-left corner (the devkit's
`MapMask` convention), so it covers the city's non-negative quadrant.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Final

import numpy as np
from PIL import Image, ImageDraw

from scenes.categories import CATEGORIES, STATIC_CATEGORIES, TO_NUSCENES_GENERAL
from scenes.geometry import SE3, yaw_to_quat_wxyz
from scenes.io import atomic_write_bytes, current_umask
from scenes.records import Boxes3D, LaneGraph
from scenes.synth.writers.av2 import count_interior_points
from scenes.synth.writers.common import (
    STAGING_MARK,
    FrameCallback,
    SimulatedLog,
    WriterError,
    check_log,
    lidar_sensor_name,
    publish_entries,
    stable_token,
    write_jpeg,
    write_json,
    write_png,
)

__all__ = ["NuScenesWriter", "write_nuscenes", "CAMERA_CHANNELS", "NUSCENES_RESERVED_SPLITS"]

TABLES: Final = (
    "attribute",
    "calibrated_sensor",
    "category",
    "ego_pose",
    "instance",
    "log",
    "map",
    "sample",
    "sample_annotation",
    "sample_data",
    "scene",
    "sensor",
    "visibility",
)
# Split names the devkit resolves from its own hard-coded scene lists instead of splits.json.
NUSCENES_RESERVED_SPLITS: Final = frozenset({"train", "val", "test", "mini_train", "mini_val", "train_detect", "train_track"})
KEYFRAME_RATE_HZ: Final = 2.0
MAP_RESOLUTION_M: Final = 0.1
MOVING_SPEED_M_PER_S: Final = 0.5
LIDAR_CHANNEL: Final = "LIDAR_TOP"

# Simulated camera name -> nuScenes channel (AV2 ring cameras to their nuScenes counterparts).
CAMERA_CHANNELS: Final[dict[str, str]] = {
    "ring_front_center": "CAM_FRONT",
    "ring_front_left": "CAM_FRONT_LEFT",
    "ring_front_right": "CAM_FRONT_RIGHT",
    "ring_rear_left": "CAM_BACK_LEFT",
    "ring_rear_right": "CAM_BACK_RIGHT",
    "ring_side_left": "CAM_SIDE_LEFT",
    "ring_side_right": "CAM_SIDE_RIGHT",
    "stereo_front_left": "CAM_STEREO_LEFT",
    "stereo_front_right": "CAM_STEREO_RIGHT",
}
ATTRIBUTES: Final[dict[str, str]] = {
    "vehicle.moving": "Vehicle is moving.",
    "vehicle.stopped": "Vehicle, with a driver/rider in/on it, is currently stationary but has an intent to move.",
    "vehicle.parked": "Vehicle is stationary (usually for longer duration) with no immediate intent to move.",
    "cycle.with_rider": "There is a rider on the bicycle or motorcycle.",
    "cycle.without_rider": "There is NO rider on the bicycle or motorcycle.",
    "pedestrian.moving": "The human is moving.",
    "pedestrian.standing": "The human is standing.",
    "pedestrian.sitting_lying_down": "The human is sitting or lying down.",
}
VISIBILITY: Final = (("1", "v0-40"), ("2", "v40-60"), ("3", "v60-80"), ("4", "v80-100"))


def _channel(camera_name: str) -> str:
    return CAMERA_CHANNELS.get(camera_name, "CAM_" + camera_name.upper())


def _attribute(category: str, speed_m_per_s: float) -> str | None:
    general = TO_NUSCENES_GENERAL[category]
    moving = speed_m_per_s > MOVING_SPEED_M_PER_S
    if category in ("BICYCLIST", "MOTORCYCLIST"):
        return "cycle.with_rider"
    if category in ("BICYCLE", "MOTORCYCLE"):
        return "cycle.without_rider"
    if general.startswith("human.pedestrian"):
        return "pedestrian.moving" if moving else "pedestrian.standing"
    if general.startswith("vehicle."):
        return "vehicle.moving" if moving else ("vehicle.parked" if category in STATIC_CATEGORIES else "vehicle.stopped")
    return None


def _pose(se3: SE3) -> dict[str, list[float]]:
    return {"translation": se3.translation.tolist(), "rotation": se3.quat_wxyz.tolist()}


def _render_map(lane_graphs: list[LaneGraph]) -> np.ndarray:
    """Drivable area at `MAP_RESOLUTION_M` per pixel, global origin at the bottom-left pixel corner."""
    polygons = [polygon[:, :2] for graph in lane_graphs for polygon in graph.drivable_areas_m]
    if not polygons:
        return np.zeros((1, 1), dtype=np.uint8)
    extent = np.max(np.concatenate(polygons), axis=0)
    width, height = (max(1, int(np.ceil(value / MAP_RESOLUTION_M)) + 1) for value in np.maximum(extent, 0.0))
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for polygon in polygons:
        pixels = np.stack([polygon[:, 0] / MAP_RESOLUTION_M, height - polygon[:, 1] / MAP_RESOLUTION_M], axis=1)
        draw.polygon([(float(u), float(v)) for u, v in pixels], fill=255)
    return np.asarray(canvas)


class NuScenesWriter:
    """Accumulates logs into one nuScenes database under `dataroot`; `close()` writes the tables and maps.

    Sensor files are written as each log is added, so only the (small) table rows stay in memory. Everything goes to
    a hidden temporary folder inside `dataroot` first; `close()` moves its `samples/`, `sweeps/`, `maps/` and
    `<version>/` onto those names in `dataroot` (each replaced in one rename, the table folder removed first and moved
    last, so the devkit never loads tables of one run with files of another), and `abort()` (or leaving a `with` block
    on an error) removes it: an interrupted write leaves `dataroot` as it was.
    """

    def __init__(self, dataroot: Path, version: str = "v1.0-synth") -> None:
        if not version or "/" in version:
            raise WriterError(f"version: {version!r} is not a usable directory name")
        self.dataroot = Path(dataroot)
        self.version = version
        self.tables: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
        self.splits: dict[str, list[str]] = defaultdict(list)
        self._sensors: dict[str, str] = {}
        self._lane_graphs: dict[str, LaneGraph] = {}
        self._city_logs: dict[str, list[str]] = defaultdict(list)
        self._log_ids: set[str] = set()
        self._categories: set[str] = set()
        self._staging: Path | None = None

    def __enter__(self) -> NuScenesWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: object) -> None:
        if kind is not None:
            self.abort()

    @property
    def _root(self) -> Path:
        """The temporary folder the database is written into until `close()`."""
        if self._staging is None:
            self.dataroot.mkdir(parents=True, exist_ok=True)
            self._staging = Path(tempfile.mkdtemp(prefix=f".{self.version}{STAGING_MARK}", dir=self.dataroot))
            os.chmod(self._staging, 0o777 & ~current_umask())
        return self._staging

    def abort(self) -> None:
        """Drops everything written so far; `dataroot` keeps what it held before."""
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None

    def _sensor_token(self, channel: str, modality: str) -> str:
        if channel not in self._sensors:
            self._sensors[channel] = stable_token("sensor", channel)
            self.tables["sensor"].append({"token": self._sensors[channel], "channel": channel, "modality": modality})
        return self._sensors[channel]

    def add(self, log: SimulatedLog, split: str, *, on_frame: FrameCallback | None = None) -> str:
        """Writes the sensor files of `log`, records its rows, and returns its scene name."""
        check_log(log)
        if split in NUSCENES_RESERVED_SPLITS:
            raise WriterError(
                f"split: {split!r} is one of the devkit's hard-coded nuScenes splits {sorted(NUSCENES_RESERVED_SPLITS)}; "
                "use a custom name (for example 'synth_val'), which goes to splits.json"
            )
        if log.log_id in self._log_ids:
            raise WriterError(f"SynthLog.log_id: log {log.log_id} was already added")
        if log.city_name in self._lane_graphs and self._lane_graphs[log.city_name] is not log.lane_graph:
            same = np.array_equal(self._lane_graphs[log.city_name].centerlines_m, log.lane_graph.centerlines_m)
            if not same:
                raise WriterError(f"SynthLog.lane_graph of log {log.log_id}: city {log.city_name} already has another map")
        self._lane_graphs.setdefault(log.city_name, log.lane_graph)
        self._log_ids.add(log.log_id)
        self._city_logs[log.city_name].append(log.log_id)
        tables = self.tables
        scene_name = f"scene-{len(tables['scene']) + 1:04d}"
        log_token = stable_token("log", log.log_id)
        date = np.datetime64(log.frames[0].timestamp_ns, "ns").astype("datetime64[D]")
        tables["log"].append(
            {"token": log_token, "logfile": log.log_id, "vehicle": "synth", "date_captured": str(date), "location": log.city_name}
        )

        lidar_name = lidar_sensor_name(log)
        ego_SE3_lidar = log.ego_SE3_sensors[lidar_name]
        lidar_SE3_ego = ego_SE3_lidar.inverse()
        calibrations = {LIDAR_CHANNEL: stable_token("calibrated_sensor", log.log_id, LIDAR_CHANNEL)}
        tables["calibrated_sensor"].append(
            {"token": calibrations[LIDAR_CHANNEL], "sensor_token": self._sensor_token(LIDAR_CHANNEL, "lidar"), **_pose(ego_SE3_lidar), "camera_intrinsic": []}
        )

        timestamps_ns = np.array([frame.timestamp_ns for frame in log.frames], dtype=np.int64)
        rate_hz = 1e9 / np.median(np.diff(timestamps_ns)) if len(timestamps_ns) > 1 else KEYFRAME_RATE_HZ
        keyframe_every = max(1, int(round(rate_hz / KEYFRAME_RATE_HZ)))
        key_indices = list(range(0, len(log.frames), keyframe_every))
        sample_tokens = {index: stable_token("sample", log.log_id, index) for index in key_indices}
        scene_token = stable_token("scene", log.log_id)
        for position, index in enumerate(key_indices):
            tables["sample"].append(
                {
                    "token": sample_tokens[index],
                    "timestamp": int(timestamps_ns[index] // 1000),
                    "scene_token": scene_token,
                    "prev": sample_tokens[key_indices[position - 1]] if position > 0 else "",
                    "next": sample_tokens[key_indices[position + 1]] if position + 1 < len(key_indices) else "",
                }
            )
        key_array = np.array(key_indices)

        channel_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for index, frame in enumerate(log.frames):
            timestamp_us = int(frame.timestamp_ns // 1000)
            is_key = index in sample_tokens
            sample_token = sample_tokens[int(key_array[np.argmin(np.abs(key_array - index))])]
            ego_token = stable_token("ego_pose", log.log_id, index)
            tables["ego_pose"].append({"token": ego_token, "timestamp": timestamp_us, **_pose(frame.city_SE3_ego)})
            folder = "samples" if is_key else "sweeps"
            if frame.lidar is not None:
                points = lidar_SE3_ego.transform_points(frame.lidar.points_xyz_m)
                cloud = np.column_stack([points, frame.lidar.intensity * 255.0, frame.lidar.laser_number]).astype("<f4")
                filename = f"{folder}/{LIDAR_CHANNEL}/{log.log_id}__{LIDAR_CHANNEL}__{timestamp_us}.pcd.bin"
                atomic_write_bytes(self._root / filename, cloud.tobytes())
                channel_rows[LIDAR_CHANNEL].append(
                    self._sample_data(
                        log.log_id, LIDAR_CHANNEL, index, sample_token, ego_token, calibrations[LIDAR_CHANNEL], filename, "pcd", 0, 0, timestamp_us, is_key
                    )
                )
            for name in sorted(frame.cameras):
                camera = frame.cameras[name]
                channel = _channel(name)
                if channel not in calibrations:
                    calibrations[channel] = stable_token("calibrated_sensor", log.log_id, channel)
                    tables["calibrated_sensor"].append(
                        {
                            "token": calibrations[channel],
                            "sensor_token": self._sensor_token(channel, "camera"),
                            **_pose(log.ego_SE3_sensors[name]),
                            "camera_intrinsic": camera.intrinsics.tolist(),
                        }
                    )
                filename = f"{folder}/{channel}/{log.log_id}__{channel}__{timestamp_us}.jpg"
                write_jpeg(self._root / filename, camera.image)
                channel_rows[channel].append(
                    self._sample_data(
                        log.log_id, channel, index, sample_token, ego_token, calibrations[channel], filename, "jpg",
                        camera.width_px, camera.height_px, timestamp_us, is_key,
                    )  # fmt: skip
                )
            if on_frame is not None:
                on_frame()
        for rows in channel_rows.values():
            for position, row in enumerate(rows):
                row["prev"] = rows[position - 1]["token"] if position > 0 else ""
                row["next"] = rows[position + 1]["token"] if position + 1 < len(rows) else ""
            tables["sample_data"].extend(rows)

        self._add_annotations(log, key_indices, sample_tokens)
        tables["scene"].append(
            {
                "token": scene_token,
                "name": scene_name,
                "description": f"synthetic city {log.city_name}, style {log.style}, log {log.log_id}",
                "log_token": log_token,
                "nbr_samples": len(key_indices),
                "first_sample_token": sample_tokens[key_indices[0]],
                "last_sample_token": sample_tokens[key_indices[-1]],
            }
        )
        self.splits[split].append(scene_name)
        return scene_name

    @staticmethod
    def _sample_data(
        log_id: str, channel: str, index: int, sample_token: str, ego_token: str, calibration: str, filename: str,
        fileformat: str, width: int, height: int, timestamp_us: int, is_key: bool,
    ) -> dict[str, Any]:  # fmt: skip
        return {
            "token": stable_token("sample_data", log_id, channel, index),
            "sample_token": sample_token,
            "ego_pose_token": ego_token,
            "calibrated_sensor_token": calibration,
            "filename": filename,
            "fileformat": fileformat,
            "width": width,
            "height": height,
            "timestamp": timestamp_us,
            "is_key_frame": is_key,
            "prev": "",
            "next": "",
        }

    def _add_annotations(self, log: SimulatedLog, key_indices: list[int], sample_tokens: dict[int, str]) -> None:
        per_track: dict[str, list[dict[str, Any]]] = defaultdict(list)
        track_category: dict[str, str] = {}
        for index in key_indices:
            frame = log.frames[index]
            boxes = frame.annotations
            if boxes is None or not len(boxes):
                continue
            if boxes.track_id is None:
                raise WriterError(f"SynthLog.frames[{index}].annotations.track_id of log {log.log_id}: nuScenes needs track ids")
            counts = boxes.num_interior_pts
            if counts is None:
                counts = count_interior_points(frame.lidar.points_xyz_m, boxes) if frame.lidar is not None else np.zeros(len(boxes), dtype=np.int64)
            city: Boxes3D = boxes.transformed(frame.city_SE3_ego, "city")
            speed = np.zeros(len(city)) if city.velocity_m_per_s is None else np.linalg.norm(city.velocity_m_per_s, axis=1)
            quats = yaw_to_quat_wxyz(city.yaw_rad)
            for box in range(len(city)):
                track_id = str(boxes.track_id[box])  # `transformed` keeps the boxes' order
                category = CATEGORIES[int(city.category[box])]
                if track_category.setdefault(track_id, category) != category:
                    raise WriterError(f"SynthLog.frames[{index}].annotations.category of log {log.log_id}: track {track_id} changes category")
                attribute = _attribute(category, float(speed[box]))
                length, width, height = city.size_lwh_m[box]
                per_track[track_id].append(
                    {
                        "token": stable_token("sample_annotation", log.log_id, track_id, index),
                        "sample_token": sample_tokens[index],
                        "instance_token": stable_token("instance", log.log_id, track_id),
                        "visibility_token": VISIBILITY[-1][0],
                        "attribute_tokens": [stable_token("attribute", attribute)] if attribute else [],
                        "translation": city.center_m[box].tolist(),
                        "size": [float(width), float(length), float(height)],
                        "rotation": quats[box].tolist(),
                        "num_lidar_pts": int(counts[box]),
                        "num_radar_pts": 0,
                        "prev": "",
                        "next": "",
                    }
                )
        for track_id in sorted(per_track):
            rows = per_track[track_id]
            for position, row in enumerate(rows):
                row["prev"] = rows[position - 1]["token"] if position > 0 else ""
                row["next"] = rows[position + 1]["token"] if position + 1 < len(rows) else ""
            general = TO_NUSCENES_GENERAL[track_category[track_id]]
            self._categories.add(general)
            self.tables["instance"].append(
                {
                    "token": rows[0]["instance_token"],
                    "category_token": stable_token("category", general),
                    "nbr_annotations": len(rows),
                    "first_annotation_token": rows[0]["token"],
                    "last_annotation_token": rows[-1]["token"],
                }
            )
            self.tables["sample_annotation"].extend(rows)

    def close(self) -> Path:
        """Writes the 13 tables, splits.json and one map PNG per city; returns `<dataroot>/<version>`."""
        if not self.tables["scene"]:
            raise WriterError(f"{self.dataroot}: no log was added to the nuScenes database")
        tables = self.tables
        tables["category"] = [
            {"token": stable_token("category", name), "name": name, "description": f"nuScenes category {name}"}
            for name in sorted(self._categories)
        ]
        tables["attribute"] = [{"token": stable_token("attribute", name), "name": name, "description": text} for name, text in ATTRIBUTES.items()]
        tables["visibility"] = [
            {"token": token, "level": level, "description": f"visibility of the instance is {level[1:]} %"} for token, level in VISIBILITY
        ]
        tables["map"] = []
        for city in sorted(self._city_logs):
            token = stable_token("map", city)
            filename = f"maps/{token}.png"
            write_png(self._root / filename, _render_map([self._lane_graphs[city]]))
            tables["map"].append(
                {
                    "token": token,
                    "log_tokens": [stable_token("log", log_id) for log_id in self._city_logs[city]],
                    "category": "semantic_prior",
                    "filename": filename,
                }
            )
        table_dir = self._root / self.version
        for name in TABLES:
            write_json(table_dir / f"{name}.json", tables[name], indent=0)
        write_json(table_dir / "splits.json", {name: list(scenes) for name, scenes in sorted(self.splits.items())}, indent=0)
        publish_entries(self._root, self.dataroot, last=[self.version])
        self._staging = None
        return self.dataroot / self.version


def write_nuscenes(
    logs: list[SimulatedLog], dataroot: Path, *, split: str = "synth_val", version: str = "v1.0-synth", on_frame: FrameCallback | None = None
) -> Path:
    """Writes `logs` as one nuScenes database (all in `split`) and returns `<dataroot>/<version>`."""
    with NuScenesWriter(dataroot, version) as writer:
        for log in logs:
            writer.add(log, split, on_frame=on_frame)
        return writer.close()
