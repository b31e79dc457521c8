"""Lossless record serialization: any record to/from `.npz`; LidarSweep and Boxes3D to/from `.feather`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any, Final, cast

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather

from scenes.io import atomic_write
from scenes.records import RECORD_TYPES, Boxes3D, BoxFrame, LidarSweep, RecordError

_MANIFEST: Final = "__manifest__"


def _flatten(value: Any, path: str, manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    if is_dataclass(value) and type(value).__name__ in RECORD_TYPES:
        manifest[path] = {"record": type(value).__name__}
        for item in fields(value):
            _flatten(getattr(value, item.name), f"{path}/{item.name}", manifest, arrays)
    elif isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            raise TypeError(f"{path}: object arrays cannot be serialized")
        manifest[path] = {"array": True}
        arrays[path] = value
    elif value is None:
        manifest[path] = {"none": True}
    elif isinstance(value, (bool, int, float, str, np.integer, np.floating)):
        scalar = value.item() if isinstance(value, np.generic) else value
        manifest[path] = {"scalar": scalar}
    elif isinstance(value, Mapping):
        keys = [str(key) for key in value]
        manifest[path] = {"mapping": keys}
        for index, key in enumerate(keys):
            _flatten(value[key], f"{path}/{index}", manifest, arrays)
    elif isinstance(value, (tuple, list)):
        manifest[path] = {"sequence": len(value)}
        for index, item in enumerate(value):
            _flatten(item, f"{path}/{index}", manifest, arrays)
    else:
        raise TypeError(f"{path}: cannot serialize a {type(value).__name__}")


def _rebuild(path: str, manifest: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> Any:
    entry = manifest[path]
    if "record" in entry:
        cls = RECORD_TYPES[entry["record"]]
        kwargs = {item.name: _rebuild(f"{path}/{item.name}", manifest, arrays) for item in fields(cls)}
        return cls(**kwargs)
    if "array" in entry:
        return arrays[path]
    if "none" in entry:
        return None
    if "scalar" in entry:
        return entry["scalar"]
    if "mapping" in entry:
        return {key: _rebuild(f"{path}/{index}", manifest, arrays) for index, key in enumerate(entry["mapping"])}
    return tuple(_rebuild(f"{path}/{index}", manifest, arrays) for index in range(entry["sequence"]))


def save_npz(record: Any, path: str | os.PathLike[str]) -> None:
    """Writes any record (nested records included) to one `.npz`, atomically."""
    manifest: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    _flatten(record, "root", manifest, arrays)
    payload = {f"a{index}": array for index, array in enumerate(arrays.values())}
    keys = dict(zip(arrays, payload, strict=True))
    payload[_MANIFEST] = np.array(json.dumps({"entries": manifest, "keys": keys}))
    with atomic_write(path) as temporary:
        with open(temporary, "wb") as stream:
            np.savez(stream, **payload)


def load_npz(path: str | os.PathLike[str]) -> Any:
    """Reads a record written by `save_npz`; a damaged file raises RecordError naming it."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(str(archive[_MANIFEST]))
            arrays = {name: archive[key] for name, key in header["keys"].items()}
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        raise RecordError(f"{path}: not a drivestack record archive ({error})") from None
    return _rebuild("root", header["entries"], arrays)


_SWEEP_META: Final = b"drivestack.LidarSweep"
_BOXES_META: Final = b"drivestack.Boxes3D"


def _write_table(table: pa.Table, path: str | os.PathLike[str]) -> None:
    with atomic_write(path) as temporary:
        feather.write_feather(table, temporary, compression="uncompressed")


def _read_table(path: str | os.PathLike[str], kind: bytes) -> tuple[pa.Table, dict[bytes, bytes]]:
    try:
        table = feather.read_table(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise RecordError(f"{path}: unreadable feather file ({error})") from None
    metadata = table.schema.metadata or {}
    if metadata.get(b"record") != kind:
        raise RecordError(f"{path}: not a {kind.decode()} feather file")
    return table, metadata


def save_sweep_feather(sweep: LidarSweep, path: str | os.PathLike[str]) -> None:
    columns = {
        "x_m": sweep.points_xyz_m[:, 0],
        "y_m": sweep.points_xyz_m[:, 1],
        "z_m": sweep.points_xyz_m[:, 2],
        "intensity": sweep.intensity,
        "laser_number": sweep.laser_number,
    }
    if sweep.offset_ns is not None:
        columns["offset_ns"] = sweep.offset_ns
    metadata = {b"record": _SWEEP_META, b"timestamp_ns": str(sweep.timestamp_ns).encode()}
    _write_table(pa.table(columns).replace_schema_metadata(metadata), path)


def load_sweep_feather(path: str | os.PathLike[str]) -> LidarSweep:
    table, metadata = _read_table(path, _SWEEP_META)
    data = {name: table.column(name).to_numpy() for name in table.column_names}
    offsets = data.get("offset_ns")
    return LidarSweep(
        int(metadata[b"timestamp_ns"]),
        np.stack([data["x_m"], data["y_m"], data["z_m"]], axis=1),
        data["intensity"],
        data["laser_number"],
        offsets,
    )


_BOX_VECTORS: Final = {"center_m": ("x", "y", "z"), "size_lwh_m": ("l", "w", "h"), "velocity_m_per_s": ("vx", "vy")}
_BOX_OPTIONAL: Final = ("score", "track_id", "num_interior_pts")


def save_boxes_feather(boxes: Boxes3D, path: str | os.PathLike[str]) -> None:
    columns: dict[str, np.ndarray] = {}
    for name, suffixes in _BOX_VECTORS.items():
        value = getattr(boxes, name)
        if value is not None:
            for axis, suffix in enumerate(suffixes):
                columns[f"{name}.{suffix}"] = value[:, axis]
    columns["yaw_rad"] = boxes.yaw_rad
    columns["category"] = boxes.category
    for name in _BOX_OPTIONAL:
        value = getattr(boxes, name)
        if value is not None:
            columns[name] = value
    metadata = {b"record": _BOXES_META, b"frame": boxes.frame.encode()}
    _write_table(pa.table(columns).replace_schema_metadata(metadata), path)


def load_boxes_feather(path: str | os.PathLike[str]) -> Boxes3D:
    table, metadata = _read_table(path, _BOXES_META)
    names = set(table.column_names)
    kwargs: dict[str, Any] = {}
    for name, suffixes in _BOX_VECTORS.items():
        keys = [f"{name}.{suffix}" for suffix in suffixes]
        if all(key in names for key in keys):
            kwargs[name] = np.stack([table.column(key).to_numpy() for key in keys], axis=1)
    for name in ("yaw_rad", "category", *_BOX_OPTIONAL):
        if name in names:
            column = table.column(name)
            kwargs[name] = np.asarray(column.to_pylist(), dtype=str) if pa.types.is_string(column.type) else column.to_numpy()
    if "center_m" not in kwargs or "size_lwh_m" not in kwargs or "yaw_rad" not in kwargs or "category" not in kwargs:
        raise RecordError(f"{path}: missing box columns (have {sorted(names)})")
    # Boxes3D checks that the stored frame name is one of BoxFrame's.
    return Boxes3D(frame=cast(BoxFrame, metadata[b"frame"].decode()), **kwargs)
