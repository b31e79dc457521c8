"""KITTI tracking evaluation: TrackEval's HOTA / CLEAR / Identity on 2D boxes, and AB3DMOT's 3D MOT metrics.

Ground truth is `gt_dir/label_02/SEQ.txt`, results are `results_dir/SEQ.txt` (label lines with a score as 18th
field), both read by `scenes.adapters.kitti_tracking.read_tracking_rows`; every frame must lie in
`0 .. num_frames[SEQ] - 1`. Result rows with a negative track id are not tracks and are skipped.

TrackEval part (`trackeval.datasets.Kitti2DBox`: car and pedestrian only): matches need a 2D-box IoU >= 0.5; van
(for car) and person-sitting (for pedestrian) GT and GT with occluded > 2 or truncated > 0 are distractors, unmatched
results at most 25 px high or more than half inside a DontCare region are dropped. HOTA, DetA, AssA and LocA are
means over TrackEval's 19 localisation thresholds; MOTA, MOTP, IDSW, FP, FN, MT, ML come from CLEAR, IDF1 from
Identity.

AB3DMOT part (AB3DMOT's `evaluation/evaluate_kitti3dmot.py`, car / pedestrian / cyclist): per frame, Hungarian
matching of GT (the class and its neighbouring class) and results (the class) on 1 - 3D IoU, gated at 3D IoU >= 0.25,
with the same ignore rules (a result is only ignored when unmatched), and each result scored by its track's mean
score. As in AB3DMOT:
- a matched ignored GT is neither TP nor FP, but its IoU enters MOTP and its score the TP scores that set the recall
  thresholds, whose recall denominator is matched + FN;
- an ID switch is a GT object matched to different track ids in two consecutive appearances (an ignored appearance
  resets the last id);
- sAMOTA, AMOTA and AMOTP average sMOTA, MOTA and MOTP over the recall levels 1/40 .. 40/40 (`recall_thresholds`),
  each recomputed without the tracks whose mean score is below the level's threshold; unreached levels count 0.
A class enters each part's figures when its GT has at least one object that is not ignored (the scores of a class
without any are undefined), so the means are over the classes present.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from rich.table import Table
from scipy.optimize import linear_sum_assignment

from perception.detection.box_ops import bev_iou
from scenes.adapters.kitti_tracking import TrackingRow, read_tracking_rows
from scenes.errors import InputError, check_output_path
from scenes.io import atomic_write_bytes, atomic_write_text

TRACKEVAL_CLASSES: Final = ("car", "pedestrian")
AB3DMOT_CLASSES: Final = ("car", "pedestrian", "cyclist")
# GT of these kinds is ignored for the class (KITTI tracking labels name people sitting "Person" or "Person_sitting").
NEIGHBOUR_KINDS: Final[Mapping[str, frozenset[str]]] = {
    "car": frozenset({"van"}),
    "pedestrian": frozenset({"person", "person_sitting"}),
    "cyclist": frozenset(),
}
MIN_IOU_3D: Final = 0.25
RECALL_STEPS: Final = 40
MAX_OCCLUSION: Final = 2
MAX_TRUNCATION: Final = 0
MIN_HEIGHT_PX: Final = 25.0
MAX_DONTCARE_OVERLAP: Final = 0.5

_GATED_COST: Final = 1e9
_TRACKER: Final = "drivestack"
_SPLIT: Final = "training"
# KITTI kinds as TrackEval's Kitti2DBox names them (rows of other kinds would make it fail).
_TRACKEVAL_KINDS: Final[Mapping[str, str]] = {
    "car": "Car",
    "van": "Van",
    "truck": "Truck",
    "pedestrian": "Pedestrian",
    "person": "Person",
    "person_sitting": "Person",
    "cyclist": "Cyclist",
    "tram": "Tram",
    "misc": "Misc",
    "dontcare": "DontCare",
}
_SEQUENCE_NAME: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def kitti_iou_3d(
    location_cam_a_m: npt.ArrayLike,
    size_hwl_a_m: npt.ArrayLike,
    rotation_y_a_rad: npt.ArrayLike,
    location_cam_b_m: npt.ArrayLike,
    size_hwl_b_m: npt.ArrayLike,
    rotation_y_b_rad: npt.ArrayLike,
) -> np.ndarray:
    """`(N, M)` 3D IoU of KITTI camera boxes (bottom-centre location, size h/w/l, rotation about the camera y axis).

    The footprint is the rotated box in the camera x-z plane (`bev_iou`), the height span is `[y - h, y]` (y points
    down).
    """
    location_a = np.asarray(location_cam_a_m, dtype=np.float64).reshape(-1, 3)
    size_a = np.asarray(size_hwl_a_m, dtype=np.float64).reshape(-1, 3)
    yaw_a = -np.asarray(rotation_y_a_rad, dtype=np.float64).reshape(-1)
    location_b = np.asarray(location_cam_b_m, dtype=np.float64).reshape(-1, 3)
    size_b = np.asarray(size_hwl_b_m, dtype=np.float64).reshape(-1, 3)
    yaw_b = -np.asarray(rotation_y_b_rad, dtype=np.float64).reshape(-1)
    footprint_iou = bev_iou(location_a[:, [0, 2]], size_a[:, [2, 1]], yaw_a, location_b[:, [0, 2]], size_b[:, [2, 1]], yaw_b)
    area_a = size_a[:, 2] * size_a[:, 1]
    area_b = size_b[:, 2] * size_b[:, 1]
    intersection_area = footprint_iou * (area_a[:, None] + area_b[None, :]) / (1.0 + footprint_iou)
    bottom = np.minimum(location_a[:, None, 1], location_b[None, :, 1])
    top = np.maximum(location_a[:, None, 1] - size_a[:, None, 0], location_b[None, :, 1] - size_b[None, :, 0])
    intersection = intersection_area * np.clip(bottom - top, 0.0, None)
    union = (area_a * size_a[:, 0])[:, None] + (area_b * size_b[:, 0])[None, :] - intersection
    iou = np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)
    return np.clip(iou, 0.0, 1.0)


def recall_thresholds(tp_scores: Sequence[float], num_gt: int, steps: int = RECALL_STEPS) -> tuple[list[float], list[float]]:
    """AB3DMOT's `getThresholds`: score thresholds at the recall levels 1/steps, 2/steps, ... reachable by the TPs.

    Walking the TP scores from the highest, a score is taken for the current level (0 first) unless the next score's
    recall is nearer to it; each taken score moves to the next level; the last score is always taken. The level-0
    entry is dropped. Returns (thresholds, recall levels).
    """
    scores = sorted((float(score) for score in tp_scores), reverse=True)
    thresholds: list[float] = []
    recalls: list[float] = []
    for index, score in enumerate(scores):
        current = len(thresholds) / steps
        last = index == len(scores) - 1
        recall_here = (index + 1) / num_gt
        recall_next = recall_here if last else (index + 2) / num_gt
        if not last and recall_next - current < current - recall_here:
            continue
        thresholds.append(score)
        recalls.append(current)
    return thresholds[1:], recalls[1:]


def write_seqmap(path: Path, num_frames: Mapping[str, int]) -> None:
    """KITTI's `evaluate_tracking.seqmap.<split>`: one `SEQ empty 000000 NNNNNN` line per sequence (NNNNNN frames)."""
    atomic_write_text(path, "".join(f"{name} empty 000000 {count:06d}\n" for name, count in num_frames.items()))


_FIGURES: Final = (
    # as_dict key, attribute, is a count (summed over classes, else averaged)
    ("HOTA", "hota", False),
    ("DetA", "det_a", False),
    ("AssA", "ass_a", False),
    ("LocA", "loc_a", False),
    ("MOTA", "mota", False),
    ("MOTP", "motp", False),
    ("IDF1", "idf1", False),
    ("IDSW", "idsw", True),
    ("FP", "fp", True),
    ("FN", "fn", True),
    ("MT", "mt", True),
    ("ML", "ml", True),
    ("sAMOTA", "samota", False),
    ("AMOTA", "amota", False),
    ("AMOTP", "amotp", False),
    ("MOTA_3D", "mota_3d", False),
    ("MOTP_3D", "motp_3d", False),
    ("TP_3D", "tp_3d", True),
    ("FP_3D", "fp_3d", True),
    ("FN_3D", "fn_3d", True),
    ("IDSW_3D", "idsw_3d", True),
)
_TABLE_COLUMNS: Final = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "sAMOTA", "AMOTA")


@dataclass(frozen=True)
class KittiTrackingMetrics:
    """Per-class KITTI tracking figures: TrackEval's on 2D boxes (car, pedestrian), AB3DMOT's on 3D boxes (`*_3d`,
    sAMOTA, AMOTA, AMOTP; MOTA_3D, MOTP_3D and the counts with every track kept). A class a part does not score is
    absent from its dicts."""

    classes: tuple[str, ...]
    hota: dict[str, float] = field(default_factory=dict)
    det_a: dict[str, float] = field(default_factory=dict)
    ass_a: dict[str, float] = field(default_factory=dict)
    loc_a: dict[str, float] = field(default_factory=dict)
    mota: dict[str, float] = field(default_factory=dict)
    motp: dict[str, float] = field(default_factory=dict)
    idf1: dict[str, float] = field(default_factory=dict)
    idsw: dict[str, int] = field(default_factory=dict)
    fp: dict[str, int] = field(default_factory=dict)
    fn: dict[str, int] = field(default_factory=dict)
    mt: dict[str, int] = field(default_factory=dict)
    ml: dict[str, int] = field(default_factory=dict)
    samota: dict[str, float] = field(default_factory=dict)
    amota: dict[str, float] = field(default_factory=dict)
    amotp: dict[str, float] = field(default_factory=dict)
    mota_3d: dict[str, float] = field(default_factory=dict)
    motp_3d: dict[str, float] = field(default_factory=dict)
    tp_3d: dict[str, int] = field(default_factory=dict)
    fp_3d: dict[str, int] = field(default_factory=dict)
    fn_3d: dict[str, int] = field(default_factory=dict)
    idsw_3d: dict[str, int] = field(default_factory=dict)

    def overall(self, key: str) -> float | int | None:
        """The figure `key` (an `as_dict` name) over the classes that have it: the mean of a rate, the sum of a count;
        None when no class has it."""
        for name, attribute, is_count in _FIGURES:
            if name == key:
                values = list(getattr(self, attribute).values())
                if not values:
                    return None
                return int(sum(values)) if is_count else float(np.mean(values))
        raise KeyError(f"unknown KITTI tracking figure {key!r}")

    def as_dict(self) -> dict[str, float | int]:
        """Flat `{"HOTA": ..., "car/HOTA": ..., "sAMOTA": ..., ...}`: overall figures, then per class."""
        out: dict[str, float | int] = {}
        for name, _, _ in _FIGURES:
            value = self.overall(name)
            if value is not None:
                out[name] = value
        for name, attribute, _ in _FIGURES:
            per_class: dict[str, float | int] = getattr(self, attribute)
            out.update({f"{cls}/{name}": value for cls, value in per_class.items()})
        return out

    def table(self) -> Table:
        """A rich table: one row per class and an "all" row, columns HOTA, DetA, AssA, MOTA, IDF1, IDSW, sAMOTA, AMOTA."""
        attributes = {name: attribute for name, attribute, _ in _FIGURES}
        table = Table(title="KITTI tracking")
        table.add_column("class", no_wrap=True)
        for name in _TABLE_COLUMNS:
            table.add_column(name, justify="right")
        for cls in self.classes:
            table.add_row(cls, *(_cell(getattr(self, attributes[name]).get(cls)) for name in _TABLE_COLUMNS))
        table.add_row("all", *(_cell(self.overall(name)) for name in _TABLE_COLUMNS))
        return table


def _cell(value: float | int | None) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.4f}"


@dataclass(frozen=True)
class _Sequence:
    """One sequence's validated rows; `results` holds the rows of the evaluated classes with a track id, and their
    scores."""

    name: str
    num_frames: int
    gt: tuple[TrackingRow, ...]
    results: tuple[tuple[TrackingRow, float], ...]


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(name.lower() for name in classes))
    if not names:
        raise InputError("classes: no class to evaluate")
    unknown = [name for name in names if name not in AB3DMOT_CLASSES]
    if unknown:
        raise InputError(f"classes: {unknown} are not KITTI tracking classes ({', '.join(AB3DMOT_CLASSES)})")
    return names


def _check_rows(path: Path, rows: Sequence[TrackingRow], num_frames: int, classes: tuple[str, ...]) -> None:
    """Frames inside the sequence, and one row per (class, frame, track id) for the evaluated classes."""
    seen: set[tuple[str, int, int]] = set()
    for row in rows:
        if row.frame >= num_frames:
            raise InputError(f"{path}: frame {row.frame} is outside the sequence's {num_frames} frames (0..{num_frames - 1})")
        kind = row.kind.lower()
        if kind in classes and row.track_id >= 0:
            key = (kind, row.frame, row.track_id)
            if key in seen:
                raise InputError(f"{path}: frame {row.frame}: track id {row.track_id} appears twice for class {row.kind}")
            seen.add(key)


def _scored(path: Path, rows: Sequence[TrackingRow], classes: tuple[str, ...]) -> tuple[tuple[TrackingRow, float], ...]:
    scored = []
    for row in rows:
        if row.kind.lower() in classes and row.track_id >= 0:
            if row.score is None:
                raise InputError(f"{path}: frame {row.frame}, track {row.track_id}: result rows need a score (18th field)")
            scored.append((row, row.score))
    return tuple(scored)


def _load_sequences(gt_dir: Path, results_dir: Path, num_frames: Mapping[str, int], classes: tuple[str, ...]) -> list[_Sequence]:
    if not num_frames:
        raise InputError(f"{gt_dir}: no sequence to evaluate (num_frames is empty)")
    sequences = []
    for name, count in num_frames.items():
        if not _SEQUENCE_NAME.fullmatch(name):
            raise InputError(f"{gt_dir}: {name!r} is not a sequence name (letters, digits, '_', '-', '.')")
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
            raise InputError(f"{gt_dir}: sequence {name}: the number of frames must be a positive integer, got {count!r}")
        gt_path = gt_dir / "label_02" / f"{name}.txt"
        results_path = results_dir / f"{name}.txt"
        if not gt_path.is_file():
            raise InputError(f"{gt_path}: label file of sequence {name} not found")
        if not results_path.is_file():
            raise InputError(f"{results_path}: results file of sequence {name} not found")
        gt = read_tracking_rows(gt_path)
        results = read_tracking_rows(results_path)
        _check_rows(gt_path, gt, int(count), classes)
        _check_rows(results_path, results, int(count), classes)
        sequences.append(_Sequence(name, int(count), tuple(gt), _scored(results_path, results, classes)))
    return sequences


def _format_row(row: TrackingRow, kind: str) -> str:
    values: list[object] = [row.frame, row.track_id, kind, row.truncated, row.occluded, row.alpha_rad]
    values += [*row.bbox_ltrb_px, *row.size_hwl_m, *row.location_cam_m, row.rotation_y_rad]
    if row.score is not None:
        values.append(row.score)
    return " ".join(str(value) for value in values) + "\n"


@dataclass(frozen=True)
class _TrackEvalClass:
    hota: float
    det_a: float
    ass_a: float
    loc_a: float
    mota: float
    motp: float
    idf1: float
    idsw: int
    fp: int
    fn: int
    mt: int
    ml: int

    @classmethod
    def from_combined(cls, result: Mapping[str, Mapping[str, Any]]) -> _TrackEvalClass:
        """From TrackEval's COMBINED_SEQ entry of one class (HOTA figures averaged over the alphas)."""
        hota, clear = result["HOTA"], result["CLEAR"]
        return cls(
            hota=float(np.mean(hota["HOTA"])),
            det_a=float(np.mean(hota["DetA"])),
            ass_a=float(np.mean(hota["AssA"])),
            loc_a=float(np.mean(hota["LocA"])),
            mota=float(clear["MOTA"]),
            motp=float(clear["MOTP"]),
            idf1=float(result["Identity"]["IDF1"]),
            idsw=int(clear["IDSW"]),
            fp=int(clear["CLR_FP"]),
            fn=int(clear["CLR_FN"]),
            mt=int(clear["MT"]),
            ml=int(clear["ML"]),
        )


def _run_trackeval(sequences: Sequence[_Sequence], classes: tuple[str, ...], scratch: Path) -> tuple[dict[str, _TrackEvalClass], Path]:
    """TrackEval's figures (from COMBINED_SEQ) per class with GT left after its preprocessing, and the folder of its
    summary files."""
    import trackeval

    gt_folder = scratch / "gt"
    trackers_folder = scratch / "trackers"
    output_folder = scratch / "output"
    for sequence in sequences:
        gt_lines = [_format_row(row, _TRACKEVAL_KINDS[row.kind.lower()]) for row in sequence.gt if row.kind.lower() in _TRACKEVAL_KINDS]
        result_lines = [_format_row(row, _TRACKEVAL_KINDS[row.kind.lower()]) for row, _ in sequence.results if row.kind.lower() in classes]
        atomic_write_text(gt_folder / "label_02" / f"{sequence.name}.txt", "".join(gt_lines))
        atomic_write_text(trackers_folder / _TRACKER / "data" / f"{sequence.name}.txt", "".join(result_lines))
    write_seqmap(gt_folder / f"evaluate_tracking.seqmap.{_SPLIT}", {sequence.name: sequence.num_frames for sequence in sequences})
    eval_config = {
        "USE_PARALLEL": False,
        "BREAK_ON_ERROR": True,
        "LOG_ON_ERROR": None,
        "PRINT_RESULTS": False,
        "PRINT_CONFIG": False,
        "TIME_PROGRESS": False,
        "OUTPUT_SUMMARY": True,
        "OUTPUT_DETAILED": True,
        "PLOT_CURVES": False,
    }
    dataset_config = {
        "GT_FOLDER": str(gt_folder),
        "TRACKERS_FOLDER": str(trackers_folder),
        "OUTPUT_FOLDER": str(output_folder),
        "TRACKERS_TO_EVAL": [_TRACKER],
        "CLASSES_TO_EVAL": list(classes),
        "SPLIT_TO_EVAL": _SPLIT,
        "PRINT_CONFIG": False,
    }
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        evaluator = trackeval.Evaluator(eval_config)
        dataset = trackeval.datasets.Kitti2DBox(dataset_config)
        metrics = [
            trackeval.metrics.HOTA(),
            trackeval.metrics.CLEAR({"THRESHOLD": 0.5, "PRINT_CONFIG": False}),
            trackeval.metrics.Identity({"THRESHOLD": 0.5, "PRINT_CONFIG": False}),
        ]
        results, _ = evaluator.evaluate([dataset], metrics)
    combined = results[dataset.get_name()][_TRACKER]["COMBINED_SEQ"]
    present = [cls for cls in classes if combined[cls]["Count"]["GT_Dets"] > 0]
    return {cls: _TrackEvalClass.from_combined(combined[cls]) for cls in present}, output_folder / _TRACKER


@dataclass(frozen=True)
class _Frame3D:
    """One frame of one class for the AB3DMOT part; `iou` is GT x results."""

    gt_track_id: np.ndarray
    gt_ignored: np.ndarray
    result_track_id: np.ndarray
    result_score: np.ndarray
    result_ignorable: np.ndarray
    iou: np.ndarray


@dataclass(frozen=True)
class _Clear3D:
    """AB3DMOT's CLEAR counts at one score threshold; `matched` includes matched ignored GT, `tp` does not."""

    tp: int
    matched: int
    fp: int
    fn: int
    idsw: int
    num_gt: int
    iou_sum: float
    matched_scores: tuple[float, ...]

    @property
    def mota(self) -> float:
        return 1.0 - (self.fn + self.fp + self.idsw) / self.num_gt

    @property
    def motp(self) -> float:
        return self.iou_sum / self.matched if self.matched else 0.0

    def smota(self, recall: float) -> float:
        """Scaled MOTA at `recall`: min(1, max(0, 1 - (FN + FP + IDS - (1 - r) num_gt) / (r num_gt)))."""
        errors = self.fn + self.fp + self.idsw - (1.0 - recall) * self.num_gt
        return min(1.0, max(0.0, 1.0 - errors / (recall * self.num_gt)))


def _gt_ignored(row: TrackingRow, cls: str) -> bool:
    return row.occluded > MAX_OCCLUSION or int(row.truncated) > MAX_TRUNCATION or row.kind.lower() in NEIGHBOUR_KINDS[cls]


def _ignorable(boxes_ltrb_px: np.ndarray, dontcare_ltrb_px: np.ndarray) -> np.ndarray:
    """Results at most 25 px high or more than half (of their own area) inside a DontCare region."""
    too_small = np.abs(boxes_ltrb_px[:, 3] - boxes_ltrb_px[:, 1]) <= MIN_HEIGHT_PX
    if len(dontcare_ltrb_px) == 0:
        return too_small
    width = np.minimum(boxes_ltrb_px[:, None, 2], dontcare_ltrb_px[None, :, 2]) - np.maximum(boxes_ltrb_px[:, None, 0], dontcare_ltrb_px[None, :, 0])
    height = np.minimum(boxes_ltrb_px[:, None, 3], dontcare_ltrb_px[None, :, 3]) - np.maximum(boxes_ltrb_px[:, None, 1], dontcare_ltrb_px[None, :, 1])
    intersection = np.where((width > 0) & (height > 0), width * height, 0.0)
    area = ((boxes_ltrb_px[:, 2] - boxes_ltrb_px[:, 0]) * (boxes_ltrb_px[:, 3] - boxes_ltrb_px[:, 1]))[:, None]
    overlap = np.divide(intersection, area, out=np.zeros_like(intersection), where=area != 0)
    return too_small | np.any(overlap > MAX_DONTCARE_OVERLAP, axis=1)


def _frames_3d(sequence: _Sequence, cls: str) -> list[_Frame3D]:
    """The sequence's frames holding GT or results of `cls`, in order."""
    gt: defaultdict[int, list[TrackingRow]] = defaultdict(list)
    dontcare: defaultdict[int, list[tuple[float, float, float, float]]] = defaultdict(list)
    results: defaultdict[int, list[TrackingRow]] = defaultdict(list)
    track_scores: defaultdict[int, list[float]] = defaultdict(list)
    for row in sequence.gt:
        kind = row.kind.lower()
        if kind == "dontcare":
            dontcare[row.frame].append(row.bbox_ltrb_px)
        elif (kind == cls or kind in NEIGHBOUR_KINDS[cls]) and row.track_id >= 0:
            gt[row.frame].append(row)
    for row, score in sequence.results:
        if row.kind.lower() == cls:
            results[row.frame].append(row)
            track_scores[row.track_id].append(score)
    mean_score = {track_id: float(np.mean(scores)) for track_id, scores in track_scores.items()}
    frames = []
    for frame in sorted(set(gt) | set(results)):
        g, t = gt[frame], results[frame]
        frames.append(
            _Frame3D(
                gt_track_id=np.array([row.track_id for row in g], dtype=np.int64),
                gt_ignored=np.array([_gt_ignored(row, cls) for row in g], dtype=bool),
                result_track_id=np.array([row.track_id for row in t], dtype=np.int64),
                result_score=np.array([mean_score[row.track_id] for row in t], dtype=np.float64),
                result_ignorable=_ignorable(
                    np.array([row.bbox_ltrb_px for row in t], dtype=np.float64).reshape(-1, 4),
                    np.array(dontcare[frame], dtype=np.float64).reshape(-1, 4),
                ),
                iou=kitti_iou_3d(
                    [row.location_cam_m for row in g],
                    [row.size_hwl_m for row in g],
                    [row.rotation_y_rad for row in g],
                    [row.location_cam_m for row in t],
                    [row.size_hwl_m for row in t],
                    [row.rotation_y_rad for row in t],
                ),
            )
        )
    return frames


def _id_switches(appearances: Sequence[tuple[int, bool]]) -> int:
    """AB3DMOT's count over one GT trajectory's (matched track id or -1, ignored) appearances."""
    if all(ignored for _, ignored in appearances):
        return 0
    switches = 0
    last_id = appearances[0][0]
    for index in range(1, len(appearances)):
        track_id, ignored = appearances[index]
        if ignored:
            last_id = -1
            continue
        if last_id not in (-1, track_id) and track_id != -1 and appearances[index - 1][0] != -1:
            switches += 1
        if track_id != -1:
            last_id = track_id
    return switches


def _clear_3d(sequences: Sequence[Sequence[_Frame3D]], threshold: float) -> _Clear3D:
    """AB3DMOT's CLEAR counts with the tracks whose mean score is below `threshold` removed."""
    tp = matched = fp = fn = idsw = num_gt = 0
    iou_sum = 0.0
    matched_scores: list[float] = []
    for frames in sequences:
        trajectories: defaultdict[int, list[tuple[int, bool]]] = defaultdict(list)
        for frame in frames:
            kept = np.flatnonzero(frame.result_score >= threshold)
            cost = 1.0 - frame.iou[:, kept]
            allowed = cost <= 1.0 - MIN_IOU_3D
            rows, columns = linear_sum_assignment(np.where(allowed, cost, _GATED_COST))
            pairs = allowed[rows, columns]
            rows, columns = rows[pairs], columns[pairs]
            assigned = np.full(len(frame.gt_track_id), -1, dtype=np.int64)
            assigned[rows] = frame.result_track_id[kept[columns]]
            ignored_tp = int(np.count_nonzero(frame.gt_ignored[rows]))
            unmatched_results = np.ones(len(kept), dtype=bool)
            unmatched_results[columns] = False
            matched += len(rows)
            tp += len(rows) - ignored_tp
            iou_sum += float(np.sum(1.0 - cost[rows, columns]))
            matched_scores.extend(frame.result_score[kept[columns]].tolist())
            fn += int(np.count_nonzero((assigned == -1) & ~frame.gt_ignored))
            fp += int(np.count_nonzero(unmatched_results & ~frame.result_ignorable[kept]))
            num_gt += int(np.count_nonzero(~frame.gt_ignored))
            for track_id, gt_id, ignored in zip(assigned.tolist(), frame.gt_track_id.tolist(), frame.gt_ignored.tolist(), strict=True):
                trajectories[gt_id].append((track_id, ignored))
        idsw += sum(_id_switches(appearances) for appearances in trajectories.values())
    return _Clear3D(tp, matched, fp, fn, idsw, num_gt, iou_sum, tuple(matched_scores))


@dataclass(frozen=True)
class _Ab3dmotClass:
    everything: _Clear3D
    samota: float
    amota: float
    amotp: float


def _ab3dmot_class(sequences: Sequence[Sequence[_Frame3D]]) -> _Ab3dmotClass | None:
    """All-track CLEAR and the recall-averaged figures of one class; None without GT that is not ignored."""
    everything = _clear_3d(sequences, -math.inf)
    if everything.num_gt == 0:
        return None
    thresholds, recalls = recall_thresholds(everything.matched_scores, everything.matched + everything.fn)
    at_threshold: dict[float, _Clear3D] = {}
    samota = amota = amotp = 0.0
    for threshold, recall in zip(thresholds, recalls, strict=True):
        if threshold not in at_threshold:
            at_threshold[threshold] = _clear_3d(sequences, threshold)
        counts = at_threshold[threshold]
        samota += counts.smota(recall)
        amota += counts.mota
        amotp += counts.motp
    return _Ab3dmotClass(everything, samota / RECALL_STEPS, amota / RECALL_STEPS, amotp / RECALL_STEPS)


def evaluate_kitti_tracking(
    gt_dir: Path,
    results_dir: Path,
    num_frames: Mapping[str, int],
    *,
    classes: Sequence[str] = TRACKEVAL_CLASSES,
    output_dir: Path | None = None,
) -> KittiTrackingMetrics:
    """Scores `results_dir/SEQ.txt` against `gt_dir/label_02/SEQ.txt` for the sequences of `num_frames` (name ->
    number of frames) with TrackEval (car, pedestrian) and AB3DMOT's 3D definition (car, pedestrian, cyclist).

    With `output_dir`, TrackEval's `<class>_summary.txt` / `<class>_detailed.csv` and `metrics.json` (`as_dict`) are
    written there; nothing else is written outside a temporary directory.
    """
    wanted = _check_classes(classes)
    if output_dir is not None:
        check_output_path(output_dir, directory=True, option="output_dir")
    sequences = _load_sequences(gt_dir, results_dir, num_frames, wanted)
    ab3dmot = {}
    for cls in wanted:
        scores = _ab3dmot_class([_frames_3d(sequence, cls) for sequence in sequences])
        if scores is not None:
            ab3dmot[cls] = scores
    trackeval_classes = tuple(cls for cls in wanted if cls in TRACKEVAL_CLASSES)
    with tempfile.TemporaryDirectory(prefix="kitti-tracking-eval-") as scratch:
        trackeval: dict[str, _TrackEvalClass] = {}
        summaries: Path | None = None
        if trackeval_classes:
            trackeval, summaries = _run_trackeval(sequences, trackeval_classes, Path(scratch))
        metrics = KittiTrackingMetrics(
            classes=wanted,
            hota={cls: figures.hota for cls, figures in trackeval.items()},
            det_a={cls: figures.det_a for cls, figures in trackeval.items()},
            ass_a={cls: figures.ass_a for cls, figures in trackeval.items()},
            loc_a={cls: figures.loc_a for cls, figures in trackeval.items()},
            mota={cls: figures.mota for cls, figures in trackeval.items()},
            motp={cls: figures.motp for cls, figures in trackeval.items()},
            idf1={cls: figures.idf1 for cls, figures in trackeval.items()},
            idsw={cls: figures.idsw for cls, figures in trackeval.items()},
            fp={cls: figures.fp for cls, figures in trackeval.items()},
            fn={cls: figures.fn for cls, figures in trackeval.items()},
            mt={cls: figures.mt for cls, figures in trackeval.items()},
            ml={cls: figures.ml for cls, figures in trackeval.items()},
            samota={cls: scores.samota for cls, scores in ab3dmot.items()},
            amota={cls: scores.amota for cls, scores in ab3dmot.items()},
            amotp={cls: scores.amotp for cls, scores in ab3dmot.items()},
            mota_3d={cls: scores.everything.mota for cls, scores in ab3dmot.items()},
            motp_3d={cls: scores.everything.motp for cls, scores in ab3dmot.items()},
            tp_3d={cls: scores.everything.tp for cls, scores in ab3dmot.items()},
            fp_3d={cls: scores.everything.fp for cls, scores in ab3dmot.items()},
            fn_3d={cls: scores.everything.fn for cls, scores in ab3dmot.items()},
            idsw_3d={cls: scores.everything.idsw for cls, scores in ab3dmot.items()},
        )
        if output_dir is not None:
            if summaries is not None:
                for produced in sorted(summaries.iterdir()):
                    atomic_write_bytes(output_dir / produced.name, produced.read_bytes())
            atomic_write_text(output_dir / "metrics.json", json.dumps(metrics.as_dict(), indent=2) + "\n")
    return metrics
