"""Argoverse 2 tracking: predictions and labels in the unified `Sequences` format (FORMATS §2.0, §2.4).

`{log_id: [frame, ...]}`, frames sorted by timestamp, city frame; per frame `seq_id`, `timestamp_ns`,
`translation_m (I,3)`, `size (I,3)`, `yaw (I,)`, `velocity_m_per_s (I,3)`, `label (I,)`, `name (I,)`, `track_id (I,)`,
`score (I,)` and, on label frames, `ego_translation_m` as a Python list (G1). Both sides are grouped with av2's own
`group_frames`, so their log order agrees: the evaluator copies ego positions between them by zip order (G7).
"""

from __future__ import annotations

import itertools
import os
import pickle
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from av2.evaluation.tracking.utils import group_frames

from scenes.categories import CATEGORIES, CATEGORY_ID
from scenes.ego_frame import AV2_EGO
from scenes.errors import DrivestackError
from scenes.io import atomic_write
from scenes.records import Boxes3D, Frame, Tracks
from scenes.submissions.safe_pickle import load_pickle

Sequences = dict[str, list[dict[str, Any]]]
COMPETITION = set(CATEGORIES)


class TrackingFormatError(DrivestackError, ValueError):
    """Tracks or labels that the AV2 tracking evaluator would reject or misread."""


def unified_frame(log_id: str, timestamp_ns: int, boxes_city: Boxes3D) -> dict[str, Any]:
    """One unified frame from city-frame boxes carrying `track_id`."""
    if boxes_city.frame != "city" or boxes_city.track_id is None:
        raise TrackingFormatError(f"{log_id}@{timestamp_ns}: expected city-frame boxes with track ids")
    assert boxes_city.score is not None  # Boxes3D fills a missing score with ones
    velocity = np.zeros((len(boxes_city), 3))
    if boxes_city.velocity_m_per_s is not None:
        velocity[:, :2] = boxes_city.velocity_m_per_s
    return {
        "seq_id": log_id,
        "timestamp_ns": int(timestamp_ns),
        "translation_m": boxes_city.center_m.copy(),
        "size": boxes_city.size_lwh_m.copy(),
        "yaw": boxes_city.yaw_rad.copy(),
        "velocity_m_per_s": velocity,
        "label": boxes_city.category.copy(),
        "name": boxes_city.category_names.astype(object),
        "track_id": boxes_city.track_id.astype(object),
        "score": boxes_city.score.astype(np.float64),
    }


def predictions_from_tracks(tracks: Iterable[Tracks]) -> Sequences:
    """Tracker outputs of one or more logs -> prediction `Sequences` (grouped by av2's `group_frames`)."""
    frames = [
        unified_frame(log.log_id, int(stamp), boxes) for log in tracks for stamp, boxes in zip(log.timestamps_ns, log.boxes, strict=True)
    ]
    return group_frames(frames)


def labels_from_frames(frames: Iterable[Frame]) -> Sequences:
    """Annotated frames -> label `Sequences`: city frame, competition categories, boxes with points only (as the
    organisers build them), `ego_translation_m` a Python list."""
    unified = []
    for frame in frames:
        if frame.annotations is None or frame.annotations.track_id is None:
            raise TrackingFormatError(f"{frame.log_id}@{frame.timestamp_ns}: frame has no tracked annotations")
        boxes = frame.annotations.observed()
        item = unified_frame(frame.log_id, frame.timestamp_ns, boxes.transformed(frame.city_SE3_ego, "city"))
        # AV2's ego origin (the rear axle, `AV2_EGO`), as the organisers read it from city_SE3_egovehicle.
        item["ego_translation_m"] = [float(v) for v in AV2_EGO.pose_from_ego(frame.city_SE3_ego).translation]
        unified.append(item)
    return group_frames(unified)


def validate_pair(predictions: Sequences, labels: Sequences) -> None:
    """The (log, timestamp) sets must agree, timestamps increase within each log, names are known."""
    label_keys = [(f["seq_id"], f["timestamp_ns"]) for frames in labels.values() for f in frames]
    prediction_keys = [(f["seq_id"], f["timestamp_ns"]) for frames in predictions.values() for f in frames]
    if set(label_keys) != set(prediction_keys):
        missing = sorted(set(label_keys) - set(prediction_keys))[:3]
        extra = sorted(set(prediction_keys) - set(label_keys))[:3]
        raise TrackingFormatError(f"predictions and labels cover different (log, timestamp) keys: missing {missing}, extra {extra}")
    for frames in (*labels.values(), *predictions.values()):
        stamps = [f["timestamp_ns"] for f in frames]
        if any(b <= a for a, b in itertools.pairwise(stamps)):
            raise TrackingFormatError(f"log {frames[0]['seq_id']}: timestamps not strictly increasing")
        for f in frames:
            unknown = set(f["name"]) - COMPETITION
            if unknown:
                raise TrackingFormatError(f"{f['seq_id']}@{f['timestamp_ns']}: unknown category names {sorted(unknown)}")


def align_to_labels(predictions: Sequences, labels: Sequences) -> Sequences:
    """Predictions with their logs in the labels' order: the evaluator pairs the two by zip order (G7)."""
    missing = sorted(set(labels) - set(predictions))
    if missing:
        raise TrackingFormatError(f"predictions lack logs {missing[:3]}")
    return {log_id: predictions[log_id] for log_id in labels}


def write_sequences(path: str | os.PathLike[str], sequences: Sequences) -> Path:
    """Pickles `Sequences` (the file the av2 tracking CLI reads), atomically."""
    with atomic_write(path) as temporary:
        temporary.write_bytes(pickle.dumps(sequences, protocol=pickle.HIGHEST_PROTOCOL))
    return Path(path)


def read_sequences(path: str | os.PathLike[str]) -> Sequences:
    sequence_path = Path(path)
    if not sequence_path.is_file():
        raise FileNotFoundError(f"{sequence_path}: tracking sequences not found")
    try:
        payload = load_pickle(sequence_path)  # restricted: a pickle from outside may name any callable
    except pickle.UnpicklingError as error:
        raise TrackingFormatError(str(error)) from error
    if not isinstance(payload, dict):
        raise TrackingFormatError(f"{sequence_path}: expected a dict of log id -> frames, got {type(payload).__name__}")
    return payload


def tracks_from_sequences(sequences: Sequences) -> list[Tracks]:
    """Inverse of `predictions_from_tracks` (velocity z and the `label` column are dropped)."""
    logs = []
    for log_id, frames in sequences.items():
        boxes: list[Boxes3D] = []
        for f in frames:
            names: Sequence[str] = list(f["name"])
            boxes.append(
                Boxes3D(
                    np.asarray(f["translation_m"], dtype=np.float64).reshape(-1, 3),
                    np.asarray(f["size"], dtype=np.float64).reshape(-1, 3),
                    np.asarray(f["yaw"], dtype=np.float64).reshape(-1),
                    np.array([CATEGORY_ID[n] for n in names], dtype=np.int64),
                    np.asarray(f.get("score", np.ones(len(names))), dtype=np.float32),
                    np.asarray(f["velocity_m_per_s"], dtype=np.float64).reshape(-1, 3)[:, :2],
                    np.asarray(f["track_id"]).astype(str),
                    frame="city",
                )
            )
        logs.append(Tracks(log_id, np.array([f["timestamp_ns"] for f in frames], dtype=np.int64), tuple(boxes)))
    return logs
