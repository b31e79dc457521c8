"""nuScenes detection submission JSON (FORMATS §4.4) from city-frame boxes, one entry per sample token.

`{"meta": {...}, "results": {sample_token: [sample_result, ...]}}`; a sample result holds `translation` (global),
`size` as **w, l, h** (G12), `rotation` (wxyz), `velocity` (vx, vy), `detection_name`, `detection_score` and
`attribute_name`. Boxes of classes nuScenes does not evaluate are left out; every sample must be a key (possibly
with an empty list), at most 500 boxes per sample (the highest-scoring are kept).
`read_submission` checks a submission made elsewhere field by field before `DetectionEval` loads it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np

from scenes.categories import CATEGORIES, TO_NUSCENES_DETECTION
from scenes.errors import DrivestackError
from scenes.geometry import yaw_to_quat_wxyz
from scenes.io import atomic_write_text
from scenes.records import Boxes3D

MAX_BOXES_PER_SAMPLE: Final = 500
MOVING_SPEED_M_PER_S: Final = 0.5
LIDAR_META: Final = {"use_camera": False, "use_lidar": True, "use_radar": False, "use_map": False, "use_external": False}
DETECTION_KEYS: Final = ("sample_token", "translation", "size", "rotation", "velocity", "detection_name", "detection_score", "attribute_name")


class NuScenesFormatError(DrivestackError, ValueError):
    """Boxes that cannot be written as a nuScenes submission."""


def attribute_name(nuscenes_name: str, speed_m_per_s: float) -> str:
    """The attribute nuScenes scores for a class (its AAE), from the box's speed."""
    moving = speed_m_per_s > MOVING_SPEED_M_PER_S
    if nuscenes_name in ("car", "truck", "bus", "trailer", "construction_vehicle"):
        return "vehicle.moving" if moving else "vehicle.stopped"
    if nuscenes_name == "pedestrian":
        return "pedestrian.moving" if moving else "pedestrian.standing"
    if nuscenes_name in ("bicycle", "motorcycle"):
        return "cycle.with_rider"
    return ""


def box_entries(sample_token: str, boxes_city: Boxes3D, name_table: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """The common part of detection and tracking entries, by decreasing score: pose, size (w, l, h), velocity, and
    the fields each caller renames or drops: mapped class `name`, `score`, `index` of the box in `boxes_city`."""
    if boxes_city.frame != "city":
        raise NuScenesFormatError(f"sample {sample_token}: nuScenes boxes must be in the global (city) frame, got {boxes_city.frame!r}")
    velocity = boxes_city.velocity_m_per_s if boxes_city.velocity_m_per_s is not None else np.zeros((len(boxes_city), 2))
    quat = yaw_to_quat_wxyz(boxes_city.yaw_rad).reshape(-1, 4)
    scores = boxes_city.score
    assert scores is not None  # Boxes3D fills a missing score with ones
    entries = []
    for k in np.argsort(-scores, kind="stable"):
        name = name_table.get(CATEGORIES[int(boxes_city.category[k])])
        if name is None:
            continue
        length, width, height = boxes_city.size_lwh_m[k]
        entries.append(
            {
                "sample_token": sample_token,
                "translation": [float(v) for v in boxes_city.center_m[k]],
                "size": [float(width), float(length), float(height)],
                "rotation": [float(v) for v in quat[k]],
                "velocity": [float(v) for v in velocity[k]],
                "name": name,
                "score": float(scores[k]),
                "index": int(k),
            }
        )
    return entries[:MAX_BOXES_PER_SAMPLE]


def detection_submission(results: Mapping[str, Boxes3D], meta: Mapping[str, bool] = LIDAR_META) -> dict[str, Any]:
    """`{sample_token: city-frame boxes with scores}` -> the submission dict."""
    payload: dict[str, list[dict[str, Any]]] = {}
    for sample_token, boxes in results.items():
        entries = []
        for entry in box_entries(sample_token, boxes, TO_NUSCENES_DETECTION):
            name, score = entry.pop("name"), entry.pop("score")
            del entry["index"]
            entry.update(
                detection_name=name,
                detection_score=score,
                attribute_name=attribute_name(name, float(np.hypot(*entry["velocity"]))),
            )
            entries.append(entry)
        payload[sample_token] = entries
    return {"meta": dict(meta), "results": payload}


def write_submission(path: str | os.PathLike[str], submission: Mapping[str, Any]) -> Path:
    """Writes a detection or tracking submission JSON atomically."""
    if set(submission) != {"meta", "results"}:
        raise NuScenesFormatError(f"{path}: a submission has exactly the keys 'meta' and 'results', got {sorted(submission)}")
    atomic_write_text(path, json.dumps(submission))
    return Path(path)


def _numbers(value: Any, count: int) -> np.ndarray | None:
    """`value` as `count` finite floats, or None."""
    if not isinstance(value, list) or len(value) != count:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return None
    array = np.asarray(value, dtype=np.float64)
    return array if np.all(np.isfinite(array)) else None


def _check_box(where: str, token: str, box: Any) -> None:
    from nuscenes.eval.detection.constants import ATTRIBUTE_NAMES, DETECTION_NAMES

    if not isinstance(box, dict):
        raise NuScenesFormatError(f"{where}: expected a box object, got {type(box).__name__}")
    missing = [key for key in DETECTION_KEYS if key not in box]
    if missing:
        raise NuScenesFormatError(f"{where}: missing key(s) {missing}")
    if box["sample_token"] != token:
        raise NuScenesFormatError(f"{where}.sample_token: {box['sample_token']!r} differs from its results key {token!r}")
    for key, count in (("translation", 3), ("size", 3), ("rotation", 4), ("velocity", 2)):
        values = _numbers(box[key], count)
        if values is None:
            raise NuScenesFormatError(f"{where}.{key}: expected a list of {count} finite numbers, got {box[key]!r}")
        if key == "size" and np.any(values <= 0):
            raise NuScenesFormatError(f"{where}.size: sizes must be positive, got {box[key]!r}")
        if key == "rotation" and not np.any(values):
            raise NuScenesFormatError(f"{where}.rotation: the quaternion is zero")
    if box["detection_name"] not in DETECTION_NAMES:
        raise NuScenesFormatError(f"{where}.detection_name: {box['detection_name']!r} is not one of {list(DETECTION_NAMES)}")
    score = box["detection_score"]
    if not isinstance(score, int | float) or isinstance(score, bool) or not np.isfinite(score):
        raise NuScenesFormatError(f"{where}.detection_score: expected a finite number, got {score!r}")
    if box["attribute_name"] not in ("", *ATTRIBUTE_NAMES):
        raise NuScenesFormatError(f"{where}.attribute_name: {box['attribute_name']!r} is not '' or one of {list(ATTRIBUTE_NAMES)}")


def read_submission(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Reads a detection submission JSON and checks it as `DetectionEval` will load it: the `meta` flags, and per sample
    at most `MAX_BOXES_PER_SAMPLE` boxes with every field of the right type and count. Errors name the file and field."""
    source = Path(path)
    if not source.is_file():
        raise NuScenesFormatError(f"{source}: file not found")
    try:
        submission = json.loads(source.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NuScenesFormatError(f"{source}: not a JSON document ({error})") from None
    if not isinstance(submission, dict) or set(submission) != {"meta", "results"}:
        keys = sorted(submission) if isinstance(submission, dict) else type(submission).__name__
        raise NuScenesFormatError(f"{source}: a submission is an object with exactly the keys 'meta' and 'results', got {keys}")
    meta = submission["meta"]
    if not isinstance(meta, dict):
        raise NuScenesFormatError(f"{source}: meta: expected an object of flags {sorted(LIDAR_META)}")
    for key in LIDAR_META:
        if not isinstance(meta.get(key), bool):
            raise NuScenesFormatError(f"{source}: meta.{key}: expected true or false, got {meta.get(key)!r}")
    results = submission["results"]
    if not isinstance(results, dict):
        raise NuScenesFormatError(f"{source}: results: expected an object sample_token -> [boxes], got {type(results).__name__}")
    for token, boxes in results.items():
        if not isinstance(boxes, list):
            raise NuScenesFormatError(f"{source}: results[{token!r}]: expected a list of boxes, got {type(boxes).__name__}")
        if len(boxes) > MAX_BOXES_PER_SAMPLE:
            raise NuScenesFormatError(f"{source}: results[{token!r}]: {len(boxes)} boxes, at most {MAX_BOXES_PER_SAMPLE} are allowed")
        for index, box in enumerate(boxes):
            _check_box(f"{source}: results[{token!r}][{index}]", token, box)
    return submission
