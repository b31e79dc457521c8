"""Argoverse 2 sensor-dataset writer: one simulated log -> `<split_dir>/<log_id>/` exactly as AV2 lays it out.

Files and dtypes follow the AV2 sensor dataset (read back by `av2.datasets.sensor.av2_sensor_dataloader.
AV2SensorDataLoader`, `av2.structures.sweep.Sweep.from_feather`, `av2.structures.cuboid.CuboidList.from_feather` and
`av2.map.map_api.ArgoverseStaticMap.from_map_dir(build_raster=True)`):

- `sensors/lidar/<ts>.feather`: x, y, z float16, intensity uint8, laser_number uint8, offset_ns int32;
- `annotations.feather`: box centres and scalar-first quaternions in the ego frame at each sweep, `num_interior_pts`;
- `city_SE3_egovehicle.feather`, `calibration/egovehicle_SE3_sensor.feather` (with `up_lidar` and `down_lidar`, which
  `Sweep.from_feather` requires) and `calibration/intrinsics.feather`;
- `sensors/cameras/<name>/<ts>.jpg`;
- `map/`: vector map JSON, float16 ground-height raster and its `img_Sim2_city` JSON.

Points, boxes, poses and extrinsics are in AV2's ego frame (the rear axle: the records' ego frame raised by 0.33 m,
`scenes.ego_frame.AV2_EGO`).
"""

from __future__ import annotations

import uuid
import zlib
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

from scenes.categories import CATEGORIES
from scenes.ego_frame import AV2_EGO
from scenes.geometry import SE3, points_in_box_mask, yaw_to_quat_wxyz
from scenes.records import Boxes3D, CameraFrame, LaneGraph
from scenes.synth.writers.common import (
    FrameCallback,
    SimulatedLog,
    WriterError,
    camera_names,
    check_log,
    intensity_to_uint8,
    lidar_sensor_name,
    stable_uuid,
    staged_directory,
    write_feather,
    write_jpeg,
    write_json,
    write_npy,
)

__all__ = ["write_av2_log", "write_av2_map", "av2_track_uuid", "count_interior_points"]

LIDAR_SCHEMA: Final = pa.schema(
    [
        ("x", pa.float16()),
        ("y", pa.float16()),
        ("z", pa.float16()),
        ("intensity", pa.uint8()),
        ("laser_number", pa.uint8()),
        ("offset_ns", pa.int32()),
    ]
)
_POSE_FIELDS: Final = [(name, pa.float64()) for name in ("qw", "qx", "qy", "qz", "tx_m", "ty_m", "tz_m")]
ANNOTATIONS_SCHEMA: Final = pa.schema(
    [
        ("timestamp_ns", pa.int64()),
        ("track_uuid", pa.string()),
        ("category", pa.string()),
        ("length_m", pa.float64()),
        ("width_m", pa.float64()),
        ("height_m", pa.float64()),
        *_POSE_FIELDS,
        ("num_interior_pts", pa.int64()),
    ]
)
CITY_SE3_EGO_SCHEMA: Final = pa.schema([("timestamp_ns", pa.int64()), *_POSE_FIELDS])
EGO_SE3_SENSOR_SCHEMA: Final = pa.schema([("sensor_name", pa.string()), *_POSE_FIELDS])
INTRINSICS_SCHEMA: Final = pa.schema(
    [
        ("sensor_name", pa.string()),
        *[(name, pa.float64()) for name in ("fx_px", "fy_px", "cx_px", "cy_px", "k1", "k2", "k3")],
        ("height_px", pa.uint16()),
        ("width_px", pa.uint16()),
    ]
)

# Half a lane width, used for lane boundaries when the lane graph carries only centerlines.
DEFAULT_HALF_LANE_WIDTH_M: Final = 1.75
# `laser_number` is uint8 in AV2; the two stacked 32-beam sensors number their beams 0..63.
MAX_LASER_NUMBER: Final = 255


def av2_track_uuid(log_id: str, track_id: str) -> str:
    """The `track_uuid` written for a record track id: the id itself when it is a UUID, else a UUID derived from it."""
    try:
        return str(uuid.UUID(track_id))
    except ValueError:
        return stable_uuid("av2-track", log_id, track_id)


def count_interior_points(points_xyz_m: np.ndarray, boxes: Boxes3D) -> np.ndarray:
    """LiDAR points inside each box (boundary included), both in the same frame."""
    return np.array(
        [int(points_in_box_mask(points_xyz_m, boxes.center_m[i], boxes.size_lwh_m[i], boxes.yaw_rad[i]).sum()) for i in range(len(boxes))],
        dtype=np.int64,
    )


def _pose_columns(poses: list[SE3]) -> dict[str, np.ndarray]:
    quats = np.array([pose.quat_wxyz for pose in poses]).reshape(-1, 4)
    translations = np.array([pose.translation for pose in poses]).reshape(-1, 3)
    return {
        "qw": quats[:, 0],
        "qx": quats[:, 1],
        "qy": quats[:, 2],
        "qz": quats[:, 3],
        "tx_m": translations[:, 0],
        "ty_m": translations[:, 1],
        "tz_m": translations[:, 2],
    }


def _polyline(points: np.ndarray) -> list[dict[str, float]]:
    return [{"x": float(x), "y": float(y), "z": float(z)} for x, y, z in np.asarray(points, dtype=np.float64)]


def _lane_boundaries(lane_graph: LaneGraph) -> tuple[np.ndarray, np.ndarray]:
    """Left and right boundaries `(L, P, 3)`: the graph's own, else the centerlines offset by half a lane."""
    if lane_graph.left_boundaries_m is not None and lane_graph.right_boundaries_m is not None:
        return lane_graph.left_boundaries_m, lane_graph.right_boundaries_m
    centerlines = lane_graph.centerlines_m
    tangent = np.gradient(centerlines[..., :2], axis=1)
    norm = np.linalg.norm(tangent, axis=-1, keepdims=True)
    if np.any(norm < 1e-9):
        raise WriterError(f"LaneGraph.centerlines_m of city {lane_graph.city_name}: repeated centerline points")
    normal = np.stack([-tangent[..., 1], tangent[..., 0]], axis=-1) / norm
    offset = np.concatenate([normal * DEFAULT_HALF_LANE_WIDTH_M, np.zeros((*normal.shape[:2], 1))], axis=-1)
    return centerlines + offset, centerlines - offset


def av2_map_payload(lane_graph: LaneGraph, lane_ids: np.ndarray | None = None) -> dict[str, Any]:
    """The AV2 vector-map JSON of `lane_graph` (optionally restricted to `lane_ids`)."""
    left, right = _lane_boundaries(lane_graph)
    keep = set(lane_graph.lane_ids.tolist() if lane_ids is None else np.asarray(lane_ids).tolist())
    predecessors: dict[int, list[int]] = {int(lane_id): [] for lane_id in lane_graph.lane_ids}
    for lane_id, successors in zip(lane_graph.lane_ids.tolist(), lane_graph.successors, strict=True):
        for successor in successors:
            if successor in predecessors:
                predecessors[successor].append(int(lane_id))
    lane_segments: dict[str, Any] = {}
    for index, lane_id in enumerate(lane_graph.lane_ids.tolist()):
        if lane_id not in keep:
            continue
        left_id = int(lane_graph.left_neighbor_id[index])
        right_id = int(lane_graph.right_neighbor_id[index])
        in_intersection = bool(lane_graph.is_intersection[index])
        lane_segments[str(lane_id)] = {
            "id": int(lane_id),
            "is_intersection": in_intersection,
            "lane_type": "VEHICLE",
            "left_lane_boundary": _polyline(left[index]),
            "left_lane_mark_type": "NONE" if in_intersection else ("DASHED_WHITE" if left_id >= 0 else "SOLID_WHITE"),
            "right_lane_boundary": _polyline(right[index]),
            "right_lane_mark_type": "NONE" if in_intersection else ("DASHED_WHITE" if right_id >= 0 else "SOLID_WHITE"),
            "successors": [s for s in lane_graph.successors[index] if s in keep],
            "predecessors": sorted(p for p in predecessors[lane_id] if p in keep),
            "left_neighbor_id": left_id if left_id in keep else None,
            "right_neighbor_id": right_id if right_id in keep else None,
        }
    drivable_areas = {
        str(index + 1): {"id": index + 1, "area_boundary": _polyline(polygon)}
        for index, polygon in enumerate(lane_graph.drivable_areas_m)
    }
    crossings: dict[str, Any] = {}
    if lane_graph.crosswalks_m is not None:
        first_id = len(drivable_areas) + 1
        for index, corners in enumerate(lane_graph.crosswalks_m):
            crossing_id = first_id + index
            # AV2 closes the polygon as edge1[0], edge1[1], edge2[1], edge2[0].
            crossings[str(crossing_id)] = {
                "id": crossing_id,
                "edge1": _polyline(corners[[0, 1]]),
                "edge2": _polyline(corners[[3, 2]]),
            }
    return {"pedestrian_crossings": crossings, "lane_segments": lane_segments, "drivable_areas": drivable_areas}


def map_number(city_name: str, lane_graph: LaneGraph) -> int:
    """A 5-digit map number (the `<CITY>_city_<N>` suffix) fixed by the city's lane geometry."""
    return zlib.crc32(city_name.encode() + lane_graph.centerlines_m.tobytes()) % 100_000


def write_av2_map(lane_graph: LaneGraph, map_dir: Path, log_id: str, *, with_rasters: bool = True) -> None:
    """Writes AV2's `map/` folder: the vector JSON and, with `with_rasters`, the ground-height raster and its Sim(2)."""
    city = lane_graph.city_name
    write_json(
        map_dir / f"log_map_archive_{log_id}____{city}_city_{map_number(city, lane_graph)}.json",
        av2_map_payload(lane_graph),
    )
    if not with_rasters:
        return
    raster = lane_graph.rasters.get("ground_height")
    if raster is None:
        raise WriterError(
            f"LaneGraph.rasters of log {log_id}: AV2 sensor logs need a 'ground_height' raster "
            f"(got {sorted(lane_graph.rasters)})"
        )
    write_npy(map_dir / f"{log_id}_ground_height_surface____{city}.npy", np.asarray(raster.values, dtype=np.float16))
    write_json(map_dir / f"{log_id}___img_Sim2_city.json", raster.img_Sim2_city.to_json_dict())


def _write_lidar(path: Path, points_xyz_m: np.ndarray, intensity: np.ndarray, laser_number: np.ndarray, offset_ns: np.ndarray | None) -> None:
    if len(laser_number) and (laser_number.min() < 0 or laser_number.max() > MAX_LASER_NUMBER):
        raise WriterError(f"{path}: laser_number must lie in [0, {MAX_LASER_NUMBER}]")
    points16 = points_xyz_m.astype(np.float16)
    offsets = np.zeros(len(points_xyz_m), dtype=np.int32) if offset_ns is None else offset_ns
    if len(offsets) and (offsets.min() < np.iinfo(np.int32).min or offsets.max() > np.iinfo(np.int32).max):
        raise WriterError(f"{path}: offset_ns does not fit int32")
    write_feather(
        path,
        {
            "x": points16[:, 0],
            "y": points16[:, 1],
            "z": points16[:, 2],
            "intensity": intensity_to_uint8(intensity),
            "laser_number": laser_number.astype(np.uint8),
            "offset_ns": offsets.astype(np.int32),
        },
        LIDAR_SCHEMA,
    )


def _annotation_columns(log: SimulatedLog) -> dict[str, Any]:
    columns: dict[str, list[Any]] = {field.name: [] for field in ANNOTATIONS_SCHEMA}
    for index, frame in enumerate(log.frames):
        boxes = frame.annotations
        if boxes is None or not len(boxes):
            continue
        if boxes.track_id is None:
            raise WriterError(f"SynthLog.frames[{index}].annotations.track_id of log {log.log_id}: AV2 needs track ids")
        counts = boxes.num_interior_pts
        if counts is None:
            if frame.lidar is None:
                raise WriterError(
                    f"SynthLog.frames[{index}] of log {log.log_id}: annotations without num_interior_pts and no LiDAR to count them"
                )
            counts = count_interior_points(frame.lidar.points_xyz_m, boxes)
        quats = yaw_to_quat_wxyz(boxes.yaw_rad)
        columns["timestamp_ns"] += [frame.timestamp_ns] * len(boxes)
        columns["track_uuid"] += [av2_track_uuid(log.log_id, str(t)) for t in boxes.track_id]
        columns["category"] += [CATEGORIES[c] for c in boxes.category]
        for column, values in zip(("length_m", "width_m", "height_m"), boxes.size_lwh_m.T, strict=True):
            columns[column] += values.tolist()
        for column, values in zip(("qw", "qx", "qy", "qz"), quats.T, strict=True):
            columns[column] += values.tolist()
        for column, values in zip(("tx_m", "ty_m", "tz_m"), AV2_EGO.points_from_ego(boxes.center_m).T, strict=True):
            columns[column] += values.tolist()
        columns["num_interior_pts"] += counts.tolist()
    return columns


def _camera_intrinsics(log: SimulatedLog) -> dict[str, CameraFrame]:
    """The first frame of every camera, after checking that its calibration never changes within the log."""
    first: dict[str, CameraFrame] = {}
    for index, frame in enumerate(log.frames):
        for name, camera in frame.cameras.items():
            reference = first.setdefault(name, camera)
            if not np.array_equal(reference.intrinsics, camera.intrinsics) or reference.image.shape != camera.image.shape:
                raise WriterError(f"SynthLog.frames[{index}].cameras[{name!r}] of log {log.log_id}: intrinsics or image size change within the log")
    return first


def _sensor_poses(log: SimulatedLog) -> dict[str, SE3]:
    """AV2 extrinsics (`egovehicle_SE3_sensor`, AV2's ego frame) of every sensor of the log."""
    poses = dict(log.ego_SE3_sensors)
    lidar = lidar_sensor_name(log)
    poses.setdefault("up_lidar", poses[lidar])
    poses.setdefault("down_lidar", poses[lidar])
    return {name: AV2_EGO.sensor_from_ego(pose) for name, pose in poses.items()}


def write_av2_log(log: SimulatedLog, split_dir: Path, *, on_frame: FrameCallback | None = None) -> Path:
    """Writes `log` as an AV2 sensor-dataset log under `split_dir/<log_id>/` and returns that directory.

    Every frame needs a LiDAR sweep (AV2 logs are indexed by sweep); cameras are written at the sweep timestamps.
    The log is written into a temporary folder beside its destination and renamed into place when complete (replacing
    a previous version of the same log), so an interrupted write leaves nothing under `split_dir/<log_id>`.
    """
    check_log(log)
    for index, frame in enumerate(log.frames):
        if frame.lidar is None:
            raise WriterError(f"SynthLog.frames[{index}].lidar of log {log.log_id}: AV2 sensor logs need a LiDAR sweep per frame")
    destination = Path(split_dir) / log.log_id
    with staged_directory(destination) as log_dir:
        _write_av2_log_files(log, log_dir, on_frame)
    return destination


def _write_av2_log_files(log: SimulatedLog, log_dir: Path, on_frame: FrameCallback | None) -> None:
    sensor_poses = _sensor_poses(log)
    cameras = _camera_intrinsics(log)

    for frame in log.frames:
        sweep = frame.lidar
        assert sweep is not None
        _write_lidar(
            log_dir / "sensors" / "lidar" / f"{frame.timestamp_ns}.feather",
            AV2_EGO.points_from_ego(sweep.points_xyz_m),
            sweep.intensity,
            sweep.laser_number,
            sweep.offset_ns,
        )
        for name in sorted(frame.cameras):
            write_jpeg(log_dir / "sensors" / "cameras" / name / f"{frame.timestamp_ns}.jpg", frame.cameras[name].image)
        if on_frame is not None:
            on_frame()

    write_feather(log_dir / "annotations.feather", _annotation_columns(log), ANNOTATIONS_SCHEMA)
    write_feather(
        log_dir / "city_SE3_egovehicle.feather",
        {
            "timestamp_ns": np.array([f.timestamp_ns for f in log.frames], dtype=np.int64),
            **_pose_columns([AV2_EGO.pose_from_ego(f.city_SE3_ego) for f in log.frames]),
        },
        CITY_SE3_EGO_SCHEMA,
    )
    names = sorted(sensor_poses)
    write_feather(
        log_dir / "calibration" / "egovehicle_SE3_sensor.feather",
        {"sensor_name": names, **_pose_columns([sensor_poses[name] for name in names])},
        EGO_SE3_SENSOR_SCHEMA,
    )
    camera_list = list(camera_names(log))
    intrinsics = np.array([cameras[name].intrinsics for name in camera_list]).reshape(-1, 3, 3)
    write_feather(
        log_dir / "calibration" / "intrinsics.feather",
        {
            "sensor_name": camera_list,
            "fx_px": intrinsics[:, 0, 0],
            "fy_px": intrinsics[:, 1, 1],
            "cx_px": intrinsics[:, 0, 2],
            "cy_px": intrinsics[:, 1, 2],
            "k1": np.zeros(len(camera_list)),
            "k2": np.zeros(len(camera_list)),
            "k3": np.zeros(len(camera_list)),
            "height_px": np.array([cameras[name].height_px for name in camera_list], dtype=np.uint16),
            "width_px": np.array([cameras[name].width_px for name in camera_list], dtype=np.uint16),
        },
        INTRINSICS_SCHEMA,
    )
    write_av2_map(log.lane_graph, log_dir / "map", log.log_id, with_rasters=True)
