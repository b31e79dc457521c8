"""Argoverse 2 end-to-end forecasting: the submission pickle and the ground truth built from annotations.

Submission (`ForecastSequences`, FORMATS §2.2): `{log_id: {timestamp_ns: [agent, ...]}}` with, per agent,
`current_translation_m (2,)`, `detection_score`, `name`, `prediction_m (5, 6, 2)`, `score (5,)`, `size (3,)`, `yaw`,
`label`, `instance_id`, all in the city frame, at the 2 Hz evaluation timestamps. Every evaluated (log, timestamp)
gets a key, possibly with an empty list, or the official evaluator raises KeyError.

Ground truth (`Sequences`, FORMATS §2.0): one "unified" frame per evaluation timestamp, built as the challenge
organisers do (competition categories, `num_interior_pts > 0`, city frame, `ego_translation_m` as a Python list,
every 5th 10 Hz sweep, so that the evaluator's 6-entry future spans 3 s).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from av2.evaluation.forecasting.constants import AV2_CATEGORIES, NUM_TIMESTEPS, TIME_DELTA_S

from scenes.categories import CATEGORIES, CATEGORY_ID
from scenes.ego_frame import AV2_EGO
from scenes.errors import DrivestackError
from scenes.geometry import SE3, quat_wxyz_to_yaw
from scenes.io import atomic_write
from scenes.records import Boxes3D, Forecasts, Frame
from scenes.submissions.safe_pickle import load_pickle

__all__ = [
    "NUM_MODES",
    "NUM_STEPS",
    "STEP_S",
    "SubmissionError",
    "evaluation_timestamps",
    "ground_truth_frame",
    "ground_truth_from_frames",
    "ground_truth_from_av2_log",
    "submission_agents",
    "build_submission",
    "validate_submission",
    "write_submission",
    "read_submission",
]

NUM_MODES: Final = 5
NUM_STEPS: Final = NUM_TIMESTEPS
STEP_S: Final = TIME_DELTA_S
_STEP_NS: Final = int(round(STEP_S * 1e9))

Sequences = dict[str, list[dict[str, Any]]]
ForecastSequences = dict[str, dict[int, list[dict[str, Any]]]]


class SubmissionError(DrivestackError, ValueError):
    """A submission or ground-truth structure that the AV2 evaluator would reject or misread."""


def evaluation_timestamps(timestamps_ns: Sequence[int] | np.ndarray) -> np.ndarray:
    """The 2 Hz evaluation timestamps among sorted sensor timestamps: every `round(0.5 s / period)`-th one.

    Matches the organisers' `frames[::downsample_rate]` (first timestamp kept), so GT futures are 0.5 s apart.
    """
    stamps = np.asarray(timestamps_ns, dtype=np.int64)
    if stamps.ndim != 1 or np.any(np.diff(stamps) <= 0):
        raise SubmissionError("timestamps_ns: expected strictly increasing 1-D sensor timestamps")
    if len(stamps) < 2:
        return stamps.copy()
    period_ns = float(np.median(np.diff(stamps)))
    stride = max(1, int(round(_STEP_NS / period_ns)))
    return stamps[::stride]


def ground_truth_frame(log_id: str, timestamp_ns: int, city_SE3_ego: SE3, boxes_ego: Boxes3D) -> dict[str, Any]:
    """One unified-format GT frame from ego-frame annotated boxes (tracked, competition categories).

    Boxes with `num_interior_pts == 0` are dropped when the counts are known, as the organisers do.
    """
    if boxes_ego.frame != "ego":
        raise SubmissionError(f"{log_id}@{timestamp_ns}: annotations must be in the ego frame, got {boxes_ego.frame!r}")
    if boxes_ego.track_id is None:
        raise SubmissionError(f"{log_id}@{timestamp_ns}: annotations need track_id to build forecasting ground truth")
    boxes = boxes_ego.observed().transformed(city_SE3_ego, "city")
    assert boxes.track_id is not None  # checked above; `select` and `transformed` keep it
    count = len(boxes)
    return {
        "seq_id": log_id,
        "timestamp_ns": int(timestamp_ns),
        "translation_m": boxes.center_m.copy(),
        "size": boxes.size_lwh_m.copy(),
        "yaw": boxes.yaw_rad.copy(),
        "velocity_m_per_s": np.zeros((count, 3)),
        "label": boxes.category.copy(),
        "name": boxes.category_names.astype(object),
        "track_id": boxes.track_id.astype(object),
        # A list, not an ndarray: the evaluator indexes every ndarray per instance (G1).
        # AV2's ego origin (the rear axle, `AV2_EGO`), as the organisers read it from city_SE3_egovehicle.
        "ego_translation_m": [float(v) for v in AV2_EGO.pose_from_ego(city_SE3_ego).translation],
    }


def ground_truth_from_frames(frames: Sequence[Frame]) -> Sequences:
    """GT `Sequences` of annotated frames (one or more logs), at the 2 Hz evaluation timestamps of each log."""
    by_log: dict[str, list[tuple[Frame, Boxes3D]]] = {}
    for frame in frames:
        if frame.annotations is None:
            raise SubmissionError(f"{frame.log_id}@{frame.timestamp_ns}: frame has no annotations")
        by_log.setdefault(frame.log_id, []).append((frame, frame.annotations))
    sequences: Sequences = {}
    for log_id, log_frames in by_log.items():
        log_frames.sort(key=lambda item: item[0].timestamp_ns)
        keep = set(evaluation_timestamps([f.timestamp_ns for f, _ in log_frames]).tolist())
        sequences[log_id] = [
            ground_truth_frame(log_id, f.timestamp_ns, f.city_SE3_ego, annotations) for f, annotations in log_frames if f.timestamp_ns in keep
        ]
    return sequences


def _read_feather(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    if not path.is_file():
        raise SubmissionError(f"{path}: file not found")
    table = pd.read_feather(path)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise SubmissionError(f"{path}: missing column(s) {missing}")
    return table


def ground_truth_from_av2_log(log_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """GT frames of one AV2 sensor log from `annotations.feather` and `city_SE3_egovehicle.feather`.

    Uses every annotated timestamp (whether or not its sweep is on disk), keeps the 26 competition categories and
    boxes with LiDAR support, subsampled to 2 Hz.
    """
    log_path = Path(log_dir)
    log_id = log_path.name
    annotations = _read_feather(
        log_path / "annotations.feather",
        ["timestamp_ns", "track_uuid", "category", "length_m", "width_m", "height_m", "qw", "qx", "qy", "qz",
         "tx_m", "ty_m", "tz_m", "num_interior_pts"],
    )
    poses = _read_feather(log_path / "city_SE3_egovehicle.feather", ["timestamp_ns", "qw", "qx", "qy", "qz", "tx_m", "ty_m", "tz_m"])
    pose_by_ts = poses.set_index("timestamp_ns")
    timestamps = np.unique(annotations["timestamp_ns"].to_numpy(np.int64))
    annotations = annotations[annotations["category"].isin(CATEGORIES)]
    groups = dict(tuple(annotations.groupby("timestamp_ns")))
    frames = []
    for timestamp_ns in evaluation_timestamps(timestamps).tolist():
        if timestamp_ns not in pose_by_ts.index:
            raise SubmissionError(f"{log_path / 'city_SE3_egovehicle.feather'}: no pose at timestamp_ns={timestamp_ns}")
        row = pose_by_ts.loc[timestamp_ns]
        city_SE3_ego = SE3.from_quat_wxyz(row[["qw", "qx", "qy", "qz"]].to_numpy(float), row[["tx_m", "ty_m", "tz_m"]].to_numpy(float))
        group = groups.get(timestamp_ns, annotations.iloc[:0])
        boxes = Boxes3D(
            group[["tx_m", "ty_m", "tz_m"]].to_numpy(float).reshape(-1, 3),
            group[["length_m", "width_m", "height_m"]].to_numpy(float).reshape(-1, 3),
            quat_wxyz_to_yaw(group[["qw", "qx", "qy", "qz"]].to_numpy(float).reshape(-1, 4)),
            np.array([CATEGORY_ID[c] for c in group["category"]], dtype=np.int64),
            track_id=group["track_uuid"].to_numpy(str),
            num_interior_pts=group["num_interior_pts"].to_numpy(np.int64),
        )
        # The files are in AV2's ego frame; `ground_truth_frame` takes the records' (`AV2_EGO`).
        frames.append(ground_truth_frame(log_id, timestamp_ns, AV2_EGO.pose_to_ego(city_SE3_ego), AV2_EGO.boxes_to_ego(boxes)))
    return frames


def submission_agents(forecasts: Forecasts, boxes_city: Boxes3D) -> list[dict[str, Any]]:
    """Agent dicts of one (log, timestamp) from forecasts and the tracked boxes they start from (size, yaw)."""
    where = f"{forecasts.log_id}@{forecasts.timestamp_ns}"
    if not len(forecasts):
        return []
    if forecasts.trajectories_m.shape[1:] != (NUM_MODES, NUM_STEPS, 2):
        raise SubmissionError(
            f"{where}: Forecasts.trajectories_m must be (A, {NUM_MODES}, {NUM_STEPS}, 2) "
            f"(K=5 modes, 6 steps at 2 Hz), got {forecasts.trajectories_m.shape}"
        )
    if boxes_city.frame != "city" or boxes_city.track_id is None:
        raise SubmissionError(f"{where}: boxes_city must be city-frame boxes with track_id")
    row_of = {track: row for row, track in enumerate(boxes_city.track_id.tolist())}
    agents = []
    for index, agent_id in enumerate(forecasts.agent_ids.tolist()):
        if agent_id not in row_of:
            raise SubmissionError(f"{where}: forecast agent {agent_id!r} is not among the tracked boxes")
        row = row_of[agent_id]
        category = int(forecasts.category[index])
        agents.append(
            {
                "current_translation_m": forecasts.current_xy_m[index].astype(np.float64),
                "detection_score": float(forecasts.detection_score[index]),
                "name": CATEGORIES[category],
                "label": category,
                "instance_id": agent_id,
                "prediction_m": forecasts.trajectories_m[index].astype(np.float64),
                "score": forecasts.mode_scores[index].astype(np.float64),
                "size": boxes_city.size_lwh_m[row].astype(np.float64),
                "yaw": float(boxes_city.yaw_rad[row]),
            }
        )
    return agents


def build_submission(
    entries: Iterable[tuple[Forecasts, Boxes3D]], required_keys: Mapping[str, Iterable[int]] | None = None
) -> ForecastSequences:
    """The submission dict from `(forecasts, tracked boxes)` pairs; `required_keys` adds empty lists (G2)."""
    submission: ForecastSequences = {}
    for forecasts, boxes_city in entries:
        log = submission.setdefault(forecasts.log_id, {})
        if forecasts.timestamp_ns in log:
            raise SubmissionError(f"{forecasts.log_id}@{forecasts.timestamp_ns}: forecasts given twice")
        log[forecasts.timestamp_ns] = submission_agents(forecasts, boxes_city)
    for log_id, timestamps in (required_keys or {}).items():
        log = submission.setdefault(log_id, {})
        for timestamp_ns in timestamps:
            log.setdefault(int(timestamp_ns), [])
    for log_id in submission:
        submission[log_id] = dict(sorted(submission[log_id].items()))
    validate_submission(submission)
    return submission


_AGENT_ARRAYS: Final = {"current_translation_m": (2,), "prediction_m": (NUM_MODES, NUM_STEPS, 2), "score": (NUM_MODES,), "size": (3,)}


def validate_submission(submission: Any, source: str = "submission") -> None:
    """Raises `SubmissionError` naming the log, timestamp, agent and field of the first format violation."""
    if not isinstance(submission, dict):
        raise SubmissionError(f"{source}: expected a dict log_id -> {{timestamp_ns -> [agents]}}, got {type(submission).__name__}")
    for log_id, log in submission.items():
        if not isinstance(log_id, str) or not isinstance(log, dict):
            raise SubmissionError(f"{source}: log {log_id!r} must be a str key mapping to a dict of timestamps")
        for timestamp_ns, agents in log.items():
            where = f"{source}[{log_id!r}][{timestamp_ns!r}]"
            if not isinstance(timestamp_ns, (int, np.integer)) or isinstance(timestamp_ns, bool):
                raise SubmissionError(f"{where}: timestamp keys must be int nanoseconds")
            if not isinstance(agents, list):
                raise SubmissionError(f"{where}: expected a list of agents, got {type(agents).__name__}")
            for index, agent in enumerate(agents):
                if not isinstance(agent, dict):
                    raise SubmissionError(f"{where}[{index}]: expected an agent dict, got {type(agent).__name__}")
                for key, shape in _AGENT_ARRAYS.items():
                    value = agent.get(key)
                    if not isinstance(value, np.ndarray) or value.shape != shape or not np.all(np.isfinite(value)):
                        got = value.shape if isinstance(value, np.ndarray) else type(value).__name__
                        raise SubmissionError(f"{where}[{index}].{key}: expected a finite ndarray {shape}, got {got}")
                if agent.get("name") not in AV2_CATEGORIES:
                    raise SubmissionError(f"{where}[{index}].name: {agent.get('name')!r} is not a competition category")
                for key in ("detection_score", "yaw"):
                    if not isinstance(agent.get(key), float) or not np.isfinite(agent[key]):
                        raise SubmissionError(f"{where}[{index}].{key}: expected a finite float, got {agent.get(key)!r}")


def write_submission(path: str | os.PathLike[str], submission: ForecastSequences) -> Path:
    """Validates and pickles the submission atomically."""
    validate_submission(submission, str(path))
    target = Path(path)
    with atomic_write(target) as temporary:
        with open(temporary, "wb") as stream:
            pickle.dump(submission, stream, protocol=pickle.HIGHEST_PROTOCOL)
    return target


def read_submission(path: str | os.PathLike[str]) -> ForecastSequences:
    """Loads and validates a submission pickle."""
    source = Path(path)
    if not source.is_file():
        raise SubmissionError(f"{source}: file not found")
    try:
        submission = load_pickle(source)
    except pickle.UnpicklingError as error:
        raise SubmissionError(str(error)) from error
    validate_submission(submission, str(source))
    return submission
