"""Helpers shared by the dataset writers: the log protocol, input checks and deterministic, atomic file encoders.

Every file goes through `scenes.io.atomic_write`, and every encoder is configured so that the same records give the
same bytes (fixed PNG/JPEG settings, no timestamps or random ids in file metadata, ids derived by `uuid5`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import io
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
from PIL import Image

from scenes.errors import DrivestackError
from scenes.geometry import SE3
from scenes.io import atomic_write, atomic_write_bytes, atomic_write_text, current_umask
from scenes.records import Frame, LaneGraph, Tracks

__all__ = [
    "SimulatedLog",
    "FrameCallback",
    "WriterError",
    "OutputExistsError",
    "STAGING_MARK",
    "check_log",
    "staged_directory",
    "publish_entries",
    "replace_path",
    "lidar_sensor_name",
    "stable_uuid",
    "stable_token",
    "write_feather",
    "write_json",
    "write_npy",
    "write_png",
    "write_jpeg",
    "intensity_to_uint8",
]

# Fixed encoder settings: changing them changes the bytes of every written dataset.
JPEG_QUALITY: Final = 92
PNG_COMPRESS_LEVEL: Final = 1  # zlib level 1: a third of level 6's encoding time for ~15 % larger RGB files
FEATHER_COMPRESSION: Final = "lz4"

_NAMESPACE: Final = uuid.UUID("5f0c7f38-8a53-5a8e-9d6e-3c1c0a7d2b61")
_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

FrameCallback = Callable[[], None]


class SimulatedLog(Protocol):
    """What the writers read from a simulated log (`scenes.synth.world.SynthLog` satisfies it).

    The members are read-only properties: the writers never assign them, and a frozen dataclass such as `SynthLog`
    only satisfies read-only protocol members.
    """

    @property
    def log_id(self) -> str: ...
    @property
    def city_name(self) -> str: ...
    @property
    def style(self) -> str: ...
    @property
    def frames(self) -> Sequence[Frame]: ...
    @property
    def lane_graph(self) -> LaneGraph: ...
    @property
    def ego_SE3_sensors(self) -> Mapping[str, SE3]: ...

    def ground_truth_tracks(self) -> Tracks: ...


class WriterError(DrivestackError, ValueError):
    """A log cannot be written in the requested format; the message names the log and the field."""


class OutputExistsError(WriterError):
    """The output folder holds files already and overwriting was not asked for."""


# Temporary folders and set-aside old versions carry this in their (hidden) names: `.<item>.synth-partial-XXXX`.
STAGING_MARK: Final = ".synth-partial-"
_OLD_MARK: Final = ".synth-old-"
_RENAME_EXCHANGE: Final = 2  # renameat2 flag (Linux >= 3.15)
_AT_FDCWD: Final = -100


def _renameat2() -> Callable[..., int] | None:
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    return getattr(ctypes.CDLL(library, use_errno=True), "renameat2", None)


def _exchange(first: Path, second: Path) -> bool:
    """Swaps two existing paths in one atomic step where the OS can (Linux renameat2); False where it cannot."""
    function = _renameat2()
    if function is None:
        return False
    result = function(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    return bool(result == 0)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def replace_path(source: Path, destination: Path) -> None:
    """Moves `source` (a file or folder) onto `destination`, replacing what is there in one rename.

    A folder replaced by a folder is swapped atomically where the OS can (Linux `renameat2(RENAME_EXCHANGE)`); elsewhere
    the old version is first renamed aside, so a reader finds the old item, no item, or the new item, never a mix.
    """
    if not destination.exists() and not destination.is_symlink():
        os.replace(source, destination)
        return
    if destination.is_dir() and not destination.is_symlink():
        if source.is_dir() and _exchange(source, destination):
            _remove(source)  # now the old version
            return
        aside = Path(tempfile.mkdtemp(prefix=f".{destination.name}{_OLD_MARK}", dir=destination.parent))
        os.replace(destination, aside / destination.name)
        os.replace(source, destination)
        shutil.rmtree(aside, ignore_errors=True)
        return
    os.replace(source, destination)  # a file (or link) is replaced by rename, atomically


@contextlib.contextmanager
def staged_directory(destination: Path) -> Iterator[Path]:
    """Yields an empty temporary folder beside `destination`; when the block completes, the folder replaces
    `destination` (`replace_path`); when it raises (or is interrupted), the folder is removed and `destination` is left as
    it was. Nothing half-written is ever visible under the destination's name."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}{STAGING_MARK}", dir=destination.parent))
    os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes 0700; the item is a folder like any other
    try:
        yield staging
        replace_path(staging, destination)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def publish_entries(staging: Path, destination: Path, *, first: Iterable[str] = (), last: Iterable[str] = ()) -> list[Path]:
    """Moves each top-level entry of `staging` onto the same name in `destination` (`replace_path`), then removes
    `staging`. Entries in `last` are moved after the others and their old versions are set aside before any other
    entry moves, so that an index (a table folder, an image list) never points at files of another run; `first`
    entries move before the rest."""
    destination.mkdir(parents=True, exist_ok=True)
    last = [name for name in last if (staging / name).exists() or (staging / name).is_symlink()]
    first = [name for name in first if name not in last and (staging / name).exists()]
    for name in last:
        old = destination / name
        if old.exists() or old.is_symlink():
            aside = Path(tempfile.mkdtemp(prefix=f".{name}{_OLD_MARK}", dir=destination))
            os.replace(old, aside / name)
            shutil.rmtree(aside, ignore_errors=True)
    names = sorted(entry.name for entry in staging.iterdir())
    order = [*first, *(name for name in names if name not in first and name not in last), *last]
    moved = []
    for name in order:
        replace_path(staging / name, destination / name)
        moved.append(destination / name)
    shutil.rmtree(staging, ignore_errors=True)
    return moved


def check_log(log: SimulatedLog) -> None:
    """Validates the parts of a log every writer relies on, naming the offending field."""
    if not isinstance(log.log_id, str) or not _SAFE_NAME.fullmatch(log.log_id):
        raise WriterError(f"SynthLog.log_id: {log.log_id!r} is not usable as a directory name ([A-Za-z0-9._-])")
    if not isinstance(log.city_name, str) or not re.fullmatch(r"[A-Za-z0-9]+", log.city_name):
        raise WriterError(f"SynthLog.city_name of log {log.log_id}: {log.city_name!r} must be alphanumeric (no '_')")
    if not log.frames:
        raise WriterError(f"SynthLog.frames of log {log.log_id}: no frames to write")
    timestamps = np.array([frame.timestamp_ns for frame in log.frames], dtype=np.int64)
    if np.any(np.diff(timestamps) <= 0):
        raise WriterError(f"SynthLog.frames of log {log.log_id}: timestamps must be strictly increasing")
    for index, frame in enumerate(log.frames):
        if frame.log_id != log.log_id:
            raise WriterError(f"SynthLog.frames[{index}].log_id: {frame.log_id!r} differs from the log's {log.log_id!r}")
        if frame.lidar is not None and frame.lidar.timestamp_ns != frame.timestamp_ns:
            raise WriterError(
                f"SynthLog.frames[{index}].lidar.timestamp_ns of log {log.log_id}: "
                f"{frame.lidar.timestamp_ns} differs from the frame's {frame.timestamp_ns}"
            )
        for name in frame.cameras:
            if name not in log.ego_SE3_sensors:
                raise WriterError(f"SynthLog.ego_SE3_sensors of log {log.log_id}: no calibration for camera {name!r}")


def lidar_sensor_name(log: SimulatedLog) -> str:
    """Name of the (first, by name) LiDAR among the log's calibrated sensors."""
    names = sorted(name for name in log.ego_SE3_sensors if "lidar" in name.lower())
    if not names:
        raise WriterError(
            f"SynthLog.ego_SE3_sensors of log {log.log_id}: no LiDAR calibration (expected a sensor named '*lidar*', "
            f"got {sorted(log.ego_SE3_sensors)})"
        )
    return "up_lidar" if "up_lidar" in names else names[0]


def camera_names(log: SimulatedLog) -> tuple[str, ...]:
    """Cameras present in the log, in a fixed order (sorted by name)."""
    return tuple(sorted({name for frame in log.frames for name in frame.cameras}))


def stable_uuid(*parts: object) -> str:
    """A UUID string derived from `parts` (same parts, same id)."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(str(part) for part in parts)))


def stable_token(*parts: object) -> str:
    """A 32-hex-digit token derived from `parts` (the nuScenes token format)."""
    return uuid.uuid5(_NAMESPACE, "/".join(str(part) for part in parts)).hex


def intensity_to_uint8(intensity: np.ndarray) -> np.ndarray:
    """[0, 1] intensities -> uint8 [0, 255] (rounded)."""
    return np.clip(np.rint(np.asarray(intensity, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def write_feather(path: Path, columns: Mapping[str, np.ndarray | Sequence[Any]], schema: pa.Schema) -> None:
    """Writes `columns` with the exact arrow `schema` (no pandas metadata) as a Feather v2 file."""
    arrays = [pa.array(columns[field.name], type=field.type) for field in schema]
    table = pa.Table.from_arrays(arrays, schema=schema)
    with atomic_write(path) as temporary:
        feather.write_feather(table, temporary, compression=FEATHER_COMPRESSION)


def write_json(path: Path, payload: Any, *, indent: int | None = None) -> None:
    atomic_write_text(path, json.dumps(payload, indent=indent, allow_nan=False) + ("\n" if indent is not None else ""))


def write_npy(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def write_png(path: Path, array: np.ndarray) -> None:
    """Lossless PNG of a uint8 (H,W) / (H,W,3) image or a uint16 (H,W) map."""
    array = np.ascontiguousarray(array)
    if array.dtype == np.uint16 and array.ndim == 2:
        image = Image.fromarray(array.astype("<u2"))
    elif array.dtype == np.uint8 and array.ndim in (2, 3):
        image = Image.fromarray(array)
    else:
        raise WriterError(f"{path}: cannot encode an array of dtype {array.dtype} and shape {array.shape} as PNG")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    atomic_write_bytes(path, buffer.getvalue())


def write_jpeg(path: Path, image: np.ndarray) -> None:
    """Baseline JPEG of a uint8 (H,W,3) image at a fixed quality, without EXIF or JFIF density metadata."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    atomic_write_bytes(path, buffer.getvalue())
