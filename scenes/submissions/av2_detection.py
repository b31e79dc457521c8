"""Argoverse 2 3D detection: detection and ground-truth tables in the evaluator's format (FORMATS §2.5).

Both are pandas DataFrames, one row per box, AV2's ego frame (rear axle: the records' ego frame raised by 0.33 m,
`scenes.ego_frame`) at the sweep timestamp, box centre:
`log_id, timestamp_ns, category, tx_m, ty_m, tz_m, length_m, width_m, height_m, qw, qx, qy, qz` plus `score`
(detections) or `num_interior_pts` (ground truth). Written as feather (the format of `annotations.feather`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather

from scenes.categories import CATEGORIES, CATEGORY_ID
from scenes.ego_frame import AV2_EGO
from scenes.errors import DrivestackError
from scenes.geometry import quat_wxyz_to_yaw, yaw_to_quat_wxyz
from scenes.io import atomic_write
from scenes.records import Boxes3D, Frame

BOX_COLUMNS: Final = ("tx_m", "ty_m", "tz_m", "length_m", "width_m", "height_m", "qw", "qx", "qy", "qz")
DETECTION_COLUMNS: Final = ("log_id", "timestamp_ns", "category", *BOX_COLUMNS, "score")
GROUND_TRUTH_COLUMNS: Final = ("log_id", "timestamp_ns", "category", *BOX_COLUMNS, "num_interior_pts")


class DetectionFormatError(DrivestackError, ValueError):
    """Boxes that cannot be written in the AV2 detection format."""


def _rows(log_id: str, timestamp_ns: int, boxes: Boxes3D) -> pd.DataFrame:
    if boxes.frame != "ego":
        raise DetectionFormatError(f"{log_id}@{timestamp_ns}: AV2 detection boxes must be in the ego frame, got {boxes.frame!r}")
    quat = yaw_to_quat_wxyz(boxes.yaw_rad).reshape(-1, 4)
    center = AV2_EGO.points_from_ego(boxes.center_m)
    return pd.DataFrame(
        {
            "log_id": np.full(len(boxes), log_id, dtype=object),
            "timestamp_ns": np.full(len(boxes), timestamp_ns, dtype=np.int64),
            "category": boxes.category_names.astype(object),
            "tx_m": center[:, 0],
            "ty_m": center[:, 1],
            "tz_m": center[:, 2],
            "length_m": boxes.size_lwh_m[:, 0],
            "width_m": boxes.size_lwh_m[:, 1],
            "height_m": boxes.size_lwh_m[:, 2],
            "qw": quat[:, 0],
            "qx": quat[:, 1],
            "qy": quat[:, 2],
            "qz": quat[:, 3],
        }
    )


def detections_table(items: Iterable[tuple[str, int, Boxes3D]]) -> pd.DataFrame:
    """Detections `(log_id, timestamp_ns, ego-frame boxes with scores)` -> the evaluator's `dts` table."""
    parts = []
    for log_id, timestamp_ns, boxes in items:
        rows = _rows(log_id, timestamp_ns, boxes)
        assert boxes.score is not None  # Boxes3D fills a missing score with ones
        rows["score"] = boxes.score.astype(np.float64)
        parts.append(rows)
    if not parts:
        return pd.DataFrame({column: [] for column in DETECTION_COLUMNS})
    return pd.concat(parts, ignore_index=True).loc[:, list(DETECTION_COLUMNS)]


def ground_truth_table(frames: Iterable[Frame]) -> pd.DataFrame:
    """Annotated frames -> the evaluator's `gts` table (boxes without interior counts are given 1 point)."""
    parts = []
    for frame in frames:
        if frame.annotations is None:
            continue
        rows = _rows(frame.log_id, frame.timestamp_ns, frame.annotations)
        counts = frame.annotations.num_interior_pts
        rows["num_interior_pts"] = counts if counts is not None else np.ones(len(frame.annotations), dtype=np.int64)
        parts.append(rows)
    if not parts:
        return pd.DataFrame({column: [] for column in GROUND_TRUTH_COLUMNS})
    return pd.concat(parts, ignore_index=True).loc[:, list(GROUND_TRUTH_COLUMNS)]


def write_table(path: str | os.PathLike[str], table: pd.DataFrame) -> Path:
    """Writes a detection or ground-truth table as feather, atomically."""
    columns = set(table.columns)
    if not (columns >= set(DETECTION_COLUMNS) or columns >= set(GROUND_TRUTH_COLUMNS)):
        raise DetectionFormatError(f"{path}: table lacks the AV2 detection columns; has {sorted(columns)}")
    with atomic_write(path) as temporary:
        feather.write_feather(pa.Table.from_pandas(table.reset_index(drop=True), preserve_index=False), temporary)
    return Path(path)


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Reads a table written by `write_table` (or an AV2 `annotations.feather` with a `log_id` column)."""
    table_path = Path(path)
    if not table_path.is_file():
        raise FileNotFoundError(f"{table_path}: detection table not found")
    try:
        table = feather.read_feather(table_path)
    except (pa.ArrowException, OSError) as error:
        raise DetectionFormatError(f"{table_path}: not a readable feather table ({type(error).__name__}: {error})") from None
    missing = [c for c in ("log_id", "timestamp_ns", "category", *BOX_COLUMNS) if c not in table.columns]
    if missing:
        raise DetectionFormatError(f"{table_path}: missing column(s) {missing}")
    return table


def read_detections(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Reads a detection table (`detections_table` written by `write_table`) and checks what the evaluator relies on:
    every column of `DETECTION_COLUMNS`, string log ids, integer timestamps, competition categories, finite box values
    and scores, positive sizes and non-zero quaternions. Errors name the file, the column and the first bad row."""
    table = read_table(path)
    missing = [column for column in DETECTION_COLUMNS if column not in table.columns]
    if missing:
        raise DetectionFormatError(f"{path}: missing column(s) {missing}")
    if not len(table):
        return table

    def fail(column: str, rows: np.ndarray, what: str) -> DetectionFormatError:
        row = int(np.flatnonzero(rows)[0])
        return DetectionFormatError(f"{path}: column {column!r}: {what} (row {row}: {table[column].iloc[row]!r})")

    for column in ("log_id", "category"):
        not_text = ~table[column].map(lambda value: isinstance(value, str)).to_numpy(bool)
        if not_text.any():
            raise fail(column, not_text, "expected strings")
    unknown = ~table["category"].isin(CATEGORIES).to_numpy(bool)
    if unknown.any():
        raise fail("category", unknown, "not an AV2 competition category")
    if not pd.api.types.is_integer_dtype(table["timestamp_ns"]):
        raise DetectionFormatError(f"{path}: column 'timestamp_ns': expected integer nanoseconds, got dtype {table['timestamp_ns'].dtype}")
    for column in (*BOX_COLUMNS, "score"):
        if not pd.api.types.is_numeric_dtype(table[column]) or pd.api.types.is_bool_dtype(table[column]):
            raise DetectionFormatError(f"{path}: column {column!r}: expected numbers, got dtype {table[column].dtype}")
        not_finite = ~np.isfinite(table[column].to_numpy(np.float64))
        if not_finite.any():
            raise fail(column, not_finite, "expected finite numbers")
    for column in ("length_m", "width_m", "height_m"):
        not_positive = table[column].to_numpy(np.float64) <= 0
        if not_positive.any():
            raise fail(column, not_positive, "box sizes must be positive")
    zero_quaternion = np.linalg.norm(table[["qw", "qx", "qy", "qz"]].to_numpy(np.float64), axis=1) == 0
    if zero_quaternion.any():
        raise fail("qw", zero_quaternion, "the quaternion (qw, qx, qy, qz) is zero")
    return table


def boxes_by_frame(table: pd.DataFrame) -> dict[tuple[str, int], Boxes3D]:
    """An AV2 detection table (`read_detections`) -> boxes in the records' ego frame per (log, timestamp)."""
    result: dict[tuple[str, int], Boxes3D] = {}
    for (log_id, timestamp_ns), group in table.groupby(["log_id", "timestamp_ns"], sort=True):
        quat = group[["qw", "qx", "qy", "qz"]].to_numpy(np.float64)
        result[(str(log_id), int(timestamp_ns))] = Boxes3D(
            AV2_EGO.points_to_ego(group[["tx_m", "ty_m", "tz_m"]].to_numpy(np.float64)),
            group[["length_m", "width_m", "height_m"]].to_numpy(np.float64),
            quat_wxyz_to_yaw(quat / np.linalg.norm(quat, axis=1, keepdims=True)).reshape(-1),
            np.array([CATEGORY_ID[name] for name in group["category"]], dtype=np.int64),
            group["score"].to_numpy(np.float32),
        )
    return result
