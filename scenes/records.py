"""Typed scene records: the only currency between adapters, stages, writers and evaluators.

Every record is a frozen dataclass of numpy arrays validated at construction: a wrong shape, dtype or a NaN raises
`RecordError` (a `ValueError`) naming the record, the field and, inside `source_file(path)`, the file it came from.
Units and frames are part of field names. Records round-trip losslessly through `.npz` (all records, `serialize.py`)
and `.feather` (the tabular ones).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import IntEnum
from types import MappingProxyType
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from scenes.categories import CATEGORIES, category_names
from scenes.errors import DrivestackError
from scenes.geometry import SE3, Sim2, box_corners

__all__ = [
    "SE3",
    "Sim2",
    "RecordError",
    "source_file",
    "LidarSweep",
    "CameraFrame",
    "Boxes3D",
    "Frame",
    "LaneGraph",
    "MapRaster",
    "Tracks",
    "TrackHistory",
    "Forecasts",
    "SignalState",
    "TrafficSignalStates",
    "Scenario",
    "DepthMap",
    "SegMask",
    "SemanticLayout",
]

_SOURCE: contextvars.ContextVar[str | None] = contextvars.ContextVar("record_source", default=None)

BoxFrame = Literal["ego", "city"]
# What `select` takes: whatever numpy indexes the first axis with (a boolean mask, integer indices, a slice).
RowIndex = slice | int | Sequence[int] | Sequence[bool] | npt.NDArray[np.integer[Any]] | npt.NDArray[np.bool_]
_BOX_FRAMES: Final = ("ego", "city")


class RecordError(DrivestackError, ValueError):
    """A record field failed validation."""


@contextlib.contextmanager
def source_file(path: object) -> Iterator[None]:
    """Records built inside this block name `path` in their validation errors."""
    token = _SOURCE.set(str(path))
    try:
        yield
    finally:
        _SOURCE.reset(token)


def _fail(record: str, field_name: str, message: str) -> RecordError:
    source = _SOURCE.get()
    where = f" (from {source})" if source else ""
    return RecordError(f"{record}.{field_name}: {message}{where}")


_KIND_NAMES: Final = {"f": "floating", "i": "integer", "u": "integer", "b": "bool", "U": "string"}


def _check_array(
    record: object,
    name: str,
    dims: dict[str, int],
    shape: tuple[int | str, ...],
    dtype: npt.DTypeLike,
    *,
    finite: bool = True,
) -> np.ndarray:
    """Validates `record.name` against `shape` (ints fixed, strings bound consistently via `dims`) and casts it."""
    record_name = type(record).__name__
    value = getattr(record, name)
    target = np.dtype(dtype)
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise _fail(record_name, name, f"not convertible to an array ({error})") from None
    kind = array.dtype.kind
    if target.kind == "f" and kind not in "fiub":
        raise _fail(record_name, name, f"expected a numeric dtype, got {array.dtype}")
    if target.kind in "iu" and kind not in "iub":
        raise _fail(record_name, name, f"expected an integer dtype, got {array.dtype}")
    if target.kind == "b" and kind != "b":
        raise _fail(record_name, name, f"expected a bool dtype, got {array.dtype}")
    if target.kind == "U" and kind not in "UO" and array.size:
        raise _fail(record_name, name, f"expected strings, got {array.dtype}")
    if array.ndim != len(shape):
        raise _fail(record_name, name, f"expected {len(shape)} dimensions {shape}, got shape {array.shape}")
    for axis, (expected, actual) in enumerate(zip(shape, array.shape, strict=True)):
        if isinstance(expected, int):
            if expected != actual:
                raise _fail(record_name, name, f"expected shape {shape}, got {array.shape} (axis {axis})")
        elif dims.setdefault(expected, actual) != actual:
            raise _fail(record_name, name, f"dimension {expected}={actual} disagrees with {dims[expected]} of another field")
    # A copy the record owns, read-only: the caller's array (or a view of it) changing later cannot reach a validated record.
    array = array.astype(str) if target.kind == "U" else np.array(array, dtype=target, copy=True)
    if finite and target.kind == "f" and not np.all(np.isfinite(array)):
        raise _fail(record_name, name, "contains NaN or inf")
    array.flags.writeable = False
    object.__setattr__(record, name, array)
    return array


def _frozen(array: np.ndarray) -> np.ndarray:
    """`array` copied and made read-only (for fields validated outside `_check_array`)."""
    owned = np.array(array, copy=True)
    owned.flags.writeable = False
    return owned


def _check_optional(record: object, name: str, dims: dict[str, int], shape: tuple[int | str, ...], dtype: npt.DTypeLike) -> None:
    if getattr(record, name) is not None:
        _check_array(record, name, dims, shape, dtype)


def _check_int(record: object, name: str, minimum: int | None = 0) -> None:
    value = getattr(record, name)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise _fail(type(record).__name__, name, f"expected an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise _fail(type(record).__name__, name, f"must be >= {minimum}, got {value}")
    object.__setattr__(record, name, int(value))


def _check_str(record: object, name: str) -> None:
    value = getattr(record, name)
    if not isinstance(value, str) or not value:
        raise _fail(type(record).__name__, name, f"expected a non-empty string, got {value!r}")


def _check_type(record: object, name: str, expected: type, optional: bool = False) -> None:
    value = getattr(record, name)
    if value is None and optional:
        return
    if not isinstance(value, expected):
        raise _fail(type(record).__name__, name, f"expected {expected.__name__}, got {type(value).__name__}")


def _check_categories(record: object, name: str) -> None:
    category = getattr(record, name)
    if category.size and (category.min() < 0 or category.max() >= len(CATEGORIES)):
        raise _fail(type(record).__name__, name, f"category ids must lie in [0, {len(CATEGORIES)})")


@dataclass(frozen=True, eq=False)
class LidarSweep:
    """One LiDAR sweep in the ego frame at `timestamp_ns` (motion-compensated), intensity scaled to [0, 1]."""

    timestamp_ns: int
    points_xyz_m: np.ndarray
    intensity: np.ndarray
    laser_number: np.ndarray
    offset_ns: np.ndarray | None = None

    def __post_init__(self) -> None:
        dims: dict[str, int] = {}
        _check_int(self, "timestamp_ns")
        _check_array(self, "points_xyz_m", dims, ("N", 3), np.float32)
        _check_array(self, "intensity", dims, ("N",), np.float32)
        _check_array(self, "laser_number", dims, ("N",), np.int16)
        _check_optional(self, "offset_ns", dims, ("N",), np.int64)

    def __len__(self) -> int:
        return int(self.points_xyz_m.shape[0])

    def select(self, mask: RowIndex) -> LidarSweep:
        offsets = None if self.offset_ns is None else self.offset_ns[mask]
        return LidarSweep(self.timestamp_ns, self.points_xyz_m[mask], self.intensity[mask], self.laser_number[mask], offsets)


@dataclass(frozen=True, eq=False)
class CameraFrame:
    """A pinhole camera image with its calibration; optional dense depth (m, 0 = none) and semantic/instance maps."""

    timestamp_ns: int
    name: str
    image: np.ndarray
    intrinsics: np.ndarray
    ego_SE3_camera: SE3
    depth_m: np.ndarray | None = None
    semantics: np.ndarray | None = None
    instances: np.ndarray | None = None

    def __post_init__(self) -> None:
        dims: dict[str, int] = {}
        _check_int(self, "timestamp_ns")
        _check_str(self, "name")
        _check_array(self, "image", dims, ("H", "W", 3), np.uint8)
        _check_array(self, "intrinsics", dims, (3, 3), np.float64)
        _check_type(self, "ego_SE3_camera", SE3)
        _check_optional(self, "depth_m", dims, ("H", "W"), np.float32)
        _check_optional(self, "semantics", dims, ("H", "W"), np.uint8)
        _check_optional(self, "instances", dims, ("H", "W"), np.int32)
        if self.depth_m is not None and np.any(self.depth_m < 0):
            raise _fail("CameraFrame", "depth_m", "negative depth")

    @property
    def height_px(self) -> int:
        return int(self.image.shape[0])

    @property
    def width_px(self) -> int:
        return int(self.image.shape[1])


@dataclass(frozen=True, eq=False)
class Boxes3D:
    """An array of yawed 3D boxes in the `frame` ("ego" or "city") frame; `category` indexes `CATEGORIES`."""

    center_m: np.ndarray
    size_lwh_m: np.ndarray
    yaw_rad: np.ndarray
    category: np.ndarray
    score: np.ndarray | None = None
    velocity_m_per_s: np.ndarray | None = None
    track_id: np.ndarray | None = None
    num_interior_pts: np.ndarray | None = None
    frame: BoxFrame = "ego"

    def __post_init__(self) -> None:
        dims: dict[str, int] = {}
        _check_array(self, "center_m", dims, ("N", 3), np.float64)
        _check_array(self, "size_lwh_m", dims, ("N", 3), np.float64)
        _check_array(self, "yaw_rad", dims, ("N",), np.float64)
        _check_array(self, "category", dims, ("N",), np.int64)
        if self.score is None:
            object.__setattr__(self, "score", np.ones(dims["N"], dtype=np.float32))
        _check_array(self, "score", dims, ("N",), np.float32)
        _check_optional(self, "velocity_m_per_s", dims, ("N", 2), np.float64)
        _check_optional(self, "track_id", dims, ("N",), np.str_)
        _check_optional(self, "num_interior_pts", dims, ("N",), np.int64)
        if np.any(self.size_lwh_m <= 0):
            raise _fail("Boxes3D", "size_lwh_m", "sizes must be positive")
        _check_categories(self, "category")
        if self.frame not in _BOX_FRAMES:
            raise _fail("Boxes3D", "frame", f"expected one of {_BOX_FRAMES}, got {self.frame!r}")

    def __len__(self) -> int:
        return int(self.center_m.shape[0])

    @classmethod
    def empty(cls, frame: BoxFrame = "ego", with_tracks: bool = False) -> Boxes3D:
        return cls(
            np.zeros((0, 3)),
            np.zeros((0, 3)),
            np.zeros(0),
            np.zeros(0, dtype=np.int64),
            track_id=np.zeros(0, dtype=str) if with_tracks else None,
            frame=frame,
        )

    @property
    def category_names(self) -> npt.NDArray[np.str_]:
        return category_names(self.category)

    def corners(self) -> np.ndarray:
        return box_corners(self.center_m, self.size_lwh_m, self.yaw_rad)

    def select(self, index: RowIndex) -> Boxes3D:
        def pick(value: np.ndarray | None) -> np.ndarray | None:
            return None if value is None else value[index]

        return Boxes3D(
            self.center_m[index],
            self.size_lwh_m[index],
            self.yaw_rad[index],
            self.category[index],
            pick(self.score),
            pick(self.velocity_m_per_s),
            pick(self.track_id),
            pick(self.num_interior_pts),
            self.frame,
        )

    def observed(self, min_points: int = 1) -> Boxes3D:
        """The boxes with at least `min_points` LiDAR returns inside (the AV2 evaluators score those with one), or all
        of them when the counts are unknown (`num_interior_pts` is None)."""
        if self.num_interior_pts is None:
            return self
        return self.select(self.num_interior_pts >= min_points)

    def transformed(self, dst_SE3_src: SE3, frame: BoxFrame) -> Boxes3D:
        """The boxes in another frame (`dst_SE3_src` maps this record's frame to `frame`)."""
        center, yaw = dst_SE3_src.transform_boxes(self.center_m, self.yaw_rad)
        velocity = None
        if self.velocity_m_per_s is not None:
            velocity = self.velocity_m_per_s @ dst_SE3_src.rotation[:2, :2].T
        return replace(self, center_m=center, yaw_rad=yaw, velocity_m_per_s=velocity, frame=frame)

    @staticmethod
    def concatenate(parts: list[Boxes3D]) -> Boxes3D:
        if not parts:
            raise ValueError("Boxes3D.concatenate: nothing to concatenate")
        frames = {part.frame for part in parts}
        if len(frames) != 1:
            raise ValueError(f"Boxes3D.concatenate: boxes in different frames {sorted(frames)}")

        def cat(name: str) -> np.ndarray | None:
            values = [getattr(part, name) for part in parts]
            if any(value is None for value in values):
                return None
            return np.concatenate(values)

        def cat_required(name: str) -> np.ndarray:
            values = [getattr(part, name) for part in parts]
            return np.concatenate(values)

        return Boxes3D(
            cat_required("center_m"),
            cat_required("size_lwh_m"),
            cat_required("yaw_rad"),
            cat_required("category"),
            cat_required("score"),  # never None once constructed: __post_init__ fills it with ones
            cat("velocity_m_per_s"),
            cat("track_id"),
            cat("num_interior_pts"),
            frame=parts[0].frame,
        )


@dataclass(frozen=True, eq=False)
class MapRaster:
    """A raster layer of a map (drivable area, region of interest, ground height) and its city->pixel transform."""

    name: str
    values: np.ndarray
    img_Sim2_city: Sim2

    def __post_init__(self) -> None:
        _check_str(self, "name")
        values = np.asarray(self.values)
        if values.ndim != 2:
            raise _fail("MapRaster", "values", f"expected a 2-D raster, got shape {values.shape}")
        if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            raise _fail("MapRaster", "values", "contains NaN or inf")
        object.__setattr__(self, "values", _frozen(values))
        _check_type(self, "img_Sim2_city", Sim2)

    def lookup(self, points_xy_city_m: npt.ArrayLike, outside: float = 0) -> np.ndarray:
        """Raster values at city points (nearest pixel; `outside` beyond the raster)."""
        pixels = np.round(self.img_Sim2_city.transform_points(points_xy_city_m)).astype(np.int64)
        height, width = self.values.shape
        inside = (pixels[:, 0] >= 0) & (pixels[:, 0] < width) & (pixels[:, 1] >= 0) & (pixels[:, 1] < height)
        result = np.full(len(pixels), outside, dtype=self.values.dtype)
        result[inside] = self.values[pixels[inside, 1], pixels[inside, 0]]
        return result


@dataclass(frozen=True, eq=False)
class LaneGraph:
    """Lane centerlines (city frame), their topology, drivable areas and crossings of one map.

    `successors[i]` lists lane ids (not indices) following lane `lane_ids[i]`; neighbour ids are -1 when absent.
    """

    city_name: str
    lane_ids: np.ndarray
    centerlines_m: np.ndarray
    successors: tuple[tuple[int, ...], ...]
    left_neighbor_id: np.ndarray
    right_neighbor_id: np.ndarray
    is_intersection: np.ndarray
    drivable_areas_m: tuple[np.ndarray, ...] = ()
    left_boundaries_m: np.ndarray | None = None
    right_boundaries_m: np.ndarray | None = None
    crosswalks_m: np.ndarray | None = None
    rasters: Mapping[str, MapRaster] = field(default_factory=dict)

    def __post_init__(self) -> None:
        dims: dict[str, int] = {}
        _check_str(self, "city_name")
        _check_array(self, "lane_ids", dims, ("L",), np.int64)
        _check_array(self, "centerlines_m", dims, ("L", "P", 3), np.float64)
        _check_array(self, "left_neighbor_id", dims, ("L",), np.int64)
        _check_array(self, "right_neighbor_id", dims, ("L",), np.int64)
        _check_array(self, "is_intersection", dims, ("L",), np.bool_)
        _check_optional(self, "left_boundaries_m", dims, ("L", "P", 3), np.float64)
        _check_optional(self, "right_boundaries_m", dims, ("L", "P", 3), np.float64)
        _check_optional(self, "crosswalks_m", dims, ("C", 4, 3), np.float64)
        if len(np.unique(self.lane_ids)) != len(self.lane_ids):
            raise _fail("LaneGraph", "lane_ids", "duplicate lane ids")
        successors = tuple(tuple(int(s) for s in succ) for succ in self.successors)
        if len(successors) != dims["L"]:
            raise _fail("LaneGraph", "successors", f"expected {dims['L']} entries, got {len(successors)}")
        object.__setattr__(self, "successors", successors)
        areas = []
        for index, polygon in enumerate(self.drivable_areas_m):
            area = np.asarray(polygon, dtype=np.float64)
            if area.ndim != 2 or area.shape[1] != 3 or len(area) < 3 or not np.all(np.isfinite(area)):
                raise _fail("LaneGraph", f"drivable_areas_m[{index}]", f"expected a finite (M>=3, 3) polygon, got {area.shape}")
            areas.append(_frozen(area))
        object.__setattr__(self, "drivable_areas_m", tuple(areas))
        for name, raster in self.rasters.items():
            if not isinstance(raster, MapRaster):
                raise _fail("LaneGraph", f"rasters[{name!r}]", f"expected MapRaster, got {type(raster).__name__}")
        object.__setattr__(self, "rasters", MappingProxyType(dict(self.rasters)))

    def __len__(self) -> int:
        return int(self.lane_ids.shape[0])

    def index_of(self, lane_id: int) -> int:
        matches = np.flatnonzero(self.lane_ids == lane_id)
        if not len(matches):
            raise KeyError(f"lane id {lane_id} is not in the lane graph")
        return int(matches[0])


@dataclass(frozen=True, eq=False)
class Frame:
    """Everything recorded at one LiDAR timestamp of a log; annotations are in the ego frame."""

    log_id: str
    timestamp_ns: int
    city_SE3_ego: SE3
    lidar: LidarSweep | None = None
    cameras: Mapping[str, CameraFrame] = field(default_factory=dict)
    annotations: Boxes3D | None = None

    def __post_init__(self) -> None:
        _check_str(self, "log_id")
        _check_int(self, "timestamp_ns")
        _check_type(self, "city_SE3_ego", SE3)
        _check_type(self, "lidar", LidarSweep, optional=True)
        _check_type(self, "annotations", Boxes3D, optional=True)
        for name, camera in self.cameras.items():
            if not isinstance(camera, CameraFrame):
                raise _fail("Frame", f"cameras[{name!r}]", f"expected CameraFrame, got {type(camera).__name__}")
        object.__setattr__(self, "cameras", MappingProxyType(dict(self.cameras)))
        if self.annotations is not None and self.annotations.frame != "ego":
            raise _fail("Frame", "annotations", "annotations must be in the ego frame")


@dataclass(frozen=True, eq=False)
class TrackHistory:
    """The last `n` states of one track, right-aligned; `valid` is False where the track was not observed."""

    timestamps_ns: np.ndarray
    center_m: np.ndarray
    yaw_rad: np.ndarray
    valid: np.ndarray

    def __post_init__(self) -> None:
        dims: dict[str, int] = {}
        _check_array(self, "timestamps_ns", dims, ("T",), np.int64)
        _check_array(self, "center_m", dims, ("T", 3), np.float64)
        _check_array(self, "yaw_rad", dims, ("T",), np.float64)
        _check_array(self, "valid", dims, ("T",), np.bool_)
        if np.any(self.timestamps_ns < 0):
            raise _fail("TrackHistory", "timestamps_ns", "negative timestamp")
        observed = self.timestamps_ns[self.valid]
        if np.any(np.diff(observed) <= 0):
            raise _fail("TrackHistory", "timestamps_ns", "must be strictly increasing at valid steps")


@dataclass(frozen=True, eq=False)
class Tracks:
    """Per-timestamp boxes carrying `track_id`, for one log, timestamps strictly increasing, all in one frame: "city",
    or "ego" for a log without poses, whose sensor frame then stands for the world."""

    log_id: str
    timestamps_ns: np.ndarray
    boxes: tuple[Boxes3D, ...]

    def __post_init__(self) -> None:
        dims: dict[str, int] = {}
        _check_str(self, "log_id")
        _check_array(self, "timestamps_ns", dims, ("T",), np.int64)
        if np.any(np.diff(self.timestamps_ns) <= 0):
            raise _fail("Tracks", "timestamps_ns", "must be strictly increasing")
        boxes = tuple(self.boxes)
        if len(boxes) != dims["T"]:
            raise _fail("Tracks", "boxes", f"expected {dims['T']} Boxes3D (one per timestamp), got {len(boxes)}")
        for index, frame_boxes in enumerate(boxes):
            if not isinstance(frame_boxes, Boxes3D) or frame_boxes.track_id is None:
                raise _fail("Tracks", f"boxes[{index}]", "expected Boxes3D with track_id")
            if frame_boxes.frame != boxes[0].frame:
                raise _fail("Tracks", f"boxes[{index}]", f"in the {frame_boxes.frame!r} frame, boxes[0] in the {boxes[0].frame!r} frame")
            if len(np.unique(frame_boxes.track_id)) != len(frame_boxes):
                raise _fail("Tracks", f"boxes[{index}]", "a track id appears twice at one timestamp")
        object.__setattr__(self, "boxes", boxes)

    def __len__(self) -> int:
        return int(self.timestamps_ns.shape[0])

    @property
    def frame(self) -> BoxFrame:
        """The frame of every box ("city" for a log without timestamps)."""
        return self.boxes[0].frame if self.boxes else "city"

    @property
    def track_ids(self) -> np.ndarray:
        ids = [b.track_id for b in self.boxes if b.track_id is not None and len(b)]
        return np.unique(np.concatenate(ids)) if ids else np.zeros(0, dtype=str)

    def history(self, track_id: str, n: int, until_index: int = -1) -> TrackHistory:
        """States of `track_id` at the `n` timestamps ending at `until_index` (inclusive)."""
        end = until_index % len(self) + 1
        start = max(0, end - n)
        pad = n - (end - start)
        timestamps = np.zeros(n, dtype=np.int64)
        center = np.zeros((n, 3))
        yaw = np.zeros(n)
        valid = np.zeros(n, dtype=bool)
        timestamps[pad:] = self.timestamps_ns[start:end]
        for slot, frame_boxes in enumerate(self.boxes[start:end], start=pad):
            hits = np.flatnonzero(frame_boxes.track_id == track_id)
            if len(hits):
                center[slot] = frame_boxes.center_m[hits[0]]
                yaw[slot] = frame_boxes.yaw_rad[hits[0]]
                valid[slot] = True
        return TrackHistory(timestamps, center, yaw, valid)


@dataclass(frozen=True, eq=False)
class Forecasts:
    """Multimodal city-frame forecasts of the agents present at `timestamp_ns`."""

    log_id: str
    timestamp_ns: int
    agent_ids: np.ndarray
    current_xy_m: np.ndarray
    trajectories_m: np.ndarray
    mode_scores: np.ndarray
    detection_score: np.ndarray
    category: np.ndarray

    def __post_init__(self) -> None:
        dims: dict[str, int] = {}
        _check_str(self, "log_id")
        _check_int(self, "timestamp_ns")
        _check_array(self, "agent_ids", dims, ("A",), np.str_)
        _check_array(self, "current_xy_m", dims, ("A", 2), np.float64)
        _check_array(self, "trajectories_m", dims, ("A", "K", "T", 2), np.float64)
        _check_array(self, "mode_scores", dims, ("A", "K"), np.float64)
        _check_array(self, "detection_score", dims, ("A",), np.float64)
        _check_array(self, "category", dims, ("A",), np.int64)
        _check_categories(self, "category")

    def __len__(self) -> int:
        return int(self.agent_ids.shape[0])


class SignalState(IntEnum):
    """State of the signal controlling a lane, as the Waymo Open Motion Dataset's lane states (arrows not separated)."""

    UNKNOWN = 0
    STOP = 1
    CAUTION = 2
    GO = 3


@dataclass(frozen=True, eq=False)
class TrafficSignalStates:
    """Traffic signals as dynamic map elements: the state of each controlled lane at each timestamp (city frame).

    `lane_ids[s]` is the lane the signal controls (the lane that crosses its stop line, as in the Waymo Open Motion
    Dataset), `stop_points_m[s]` where vehicles on it must stop, `state[t, s]` a `SignalState` value.
    """

    timestamps_ns: np.ndarray
    lane_ids: np.ndarray
    stop_points_m: np.ndarray
    state: np.ndarray

    def __post_init__(self) -> None:
        dims: dict[str, int] = {}
        _check_array(self, "timestamps_ns", dims, ("T",), np.int64)
        _check_array(self, "lane_ids", dims, ("S",), np.int64)
        _check_array(self, "stop_points_m", dims, ("S", 3), np.float64)
        state = _check_array(self, "state", dims, ("T", "S"), np.int8)
        if np.any(np.diff(self.timestamps_ns) <= 0):
            raise _fail("TrafficSignalStates", "timestamps_ns", "must be strictly increasing")
        if len(np.unique(self.lane_ids)) != len(self.lane_ids):
            raise _fail("TrafficSignalStates", "lane_ids", "a lane appears twice")
        known = np.array([member.value for member in SignalState])
        if not np.all(np.isin(state, known)):
            raise _fail("TrafficSignalStates", "state", f"values must be SignalState values {known.tolist()}")

    def at(self, timestamp_ns: int, tolerance_ns: int) -> dict[int, SignalState]:
        """The state of every controlled lane at the recorded time nearest `timestamp_ns`; empty beyond `tolerance_ns`."""
        if not len(self.timestamps_ns):
            return {}
        index = int(np.argmin(np.abs(self.timestamps_ns - timestamp_ns)))
        if abs(int(self.timestamps_ns[index]) - timestamp_ns) > tolerance_ns:
            return {}
        return {int(lane): SignalState(int(value)) for lane, value in zip(self.lane_ids, self.state[index], strict=True)}


@dataclass(frozen=True, eq=False)
class Scenario:
    """Agent trajectories around one prediction time (`current_index`), city frame, for motion forecasting."""

    scenario_id: str
    city_name: str
    timestamps_ns: np.ndarray
    agent_ids: np.ndarray
    category: np.ndarray
    xy_m: np.ndarray
    heading_rad: np.ndarray
    velocity_m_per_s: np.ndarray
    valid: np.ndarray
    current_index: int
    focal_agent_ids: np.ndarray
    lane_graph: LaneGraph | None = None
    traffic_signals: TrafficSignalStates | None = None

    def __post_init__(self) -> None:
        dims: dict[str, int] = {}
        _check_str(self, "scenario_id")
        _check_str(self, "city_name")
        _check_array(self, "timestamps_ns", dims, ("T",), np.int64)
        _check_array(self, "agent_ids", dims, ("A",), np.str_)
        _check_array(self, "category", dims, ("A",), np.int64)
        _check_categories(self, "category")
        _check_array(self, "valid", dims, ("A", "T"), np.bool_)
        valid = self.valid
        for name, shape in (("xy_m", ("A", "T", 2)), ("heading_rad", ("A", "T")), ("velocity_m_per_s", ("A", "T", 2))):
            array = _check_array(self, name, dims, shape, np.float64, finite=False)
            observed = array[valid]
            if not np.all(np.isfinite(observed)):
                raise _fail("Scenario", name, "NaN or inf at a valid step")
        _check_int(self, "current_index")
        if self.current_index >= dims["T"]:
            raise _fail("Scenario", "current_index", f"{self.current_index} is beyond the {dims['T']} timestamps")
        _check_array(self, "focal_agent_ids", {}, ("F",), np.str_)
        missing = set(self.focal_agent_ids.tolist()) - set(self.agent_ids.tolist())
        if missing:
            raise _fail("Scenario", "focal_agent_ids", f"ids not among agent_ids: {sorted(missing)[:5]}")
        _check_type(self, "lane_graph", LaneGraph, optional=True)
        _check_type(self, "traffic_signals", TrafficSignalStates, optional=True)


@dataclass(frozen=True, eq=False)
class DepthMap:
    """Dense depth along the camera z axis in metres; 0 marks pixels with no measurement."""

    timestamp_ns: int
    camera_name: str
    depth_m: np.ndarray

    def __post_init__(self) -> None:
        _check_int(self, "timestamp_ns")
        _check_str(self, "camera_name")
        depth = _check_array(self, "depth_m", {}, ("H", "W"), np.float32)
        if np.any(depth < 0):
            raise _fail("DepthMap", "depth_m", "negative depth")

    @property
    def valid(self) -> np.ndarray:
        return self.depth_m > 0


SEGMENTATION_TABLES: Final = ("cityscapes-labelid", "cityscapes-trainid")


@dataclass(frozen=True, eq=False)
class SegMask:
    """Per-pixel class ids of `class_table`; `ignore_index` marks unlabelled pixels."""

    labels: np.ndarray
    class_table: str = "cityscapes-trainid"
    ignore_index: int = 255

    def __post_init__(self) -> None:
        _check_array(self, "labels", {}, ("H", "W"), np.uint8)
        if self.class_table not in SEGMENTATION_TABLES:
            raise _fail("SegMask", "class_table", f"expected one of {SEGMENTATION_TABLES}, got {self.class_table!r}")
        _check_int(self, "ignore_index")


@dataclass(frozen=True, eq=False)
class SemanticLayout:
    """A semantic layout (class id per pixel) and its class proportions, as generated by Semantic Palette."""

    labels: np.ndarray
    num_classes: int
    class_table: str = "cityscapes-trainid"

    def __post_init__(self) -> None:
        _check_int(self, "num_classes", minimum=1)
        labels = _check_array(self, "labels", {}, ("H", "W"), np.uint8)
        if labels.size and labels.max() >= self.num_classes:
            raise _fail("SemanticLayout", "labels", f"class id {labels.max()} >= num_classes {self.num_classes}")
        if self.class_table not in SEGMENTATION_TABLES:
            raise _fail("SemanticLayout", "class_table", f"expected one of {SEGMENTATION_TABLES}, got {self.class_table!r}")

    @property
    def proportions(self) -> np.ndarray:
        counts = np.bincount(self.labels.reshape(-1), minlength=self.num_classes).astype(np.float64)
        return counts / max(1, self.labels.size)


RECORD_TYPES: Final[dict[str, type]] = {
    cls.__name__: cls
    for cls in (
        SE3,
        Sim2,
        LidarSweep,
        CameraFrame,
        Boxes3D,
        MapRaster,
        LaneGraph,
        Frame,
        TrackHistory,
        Tracks,
        Forecasts,
        TrafficSignalStates,
        Scenario,
        DepthMap,
        SegMask,
        SemanticLayout,
    )
}


def record_fields(record: Any) -> dict[str, Any]:
    """Field values of a record, by name."""
    return {f.name: getattr(record, f.name) for f in fields(record)}
