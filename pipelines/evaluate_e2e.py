"""Scoring an AV2 end-to-end forecasting submission with the official evaluator, corrected where it is broken.

`evaluate_submission` calls `av2.evaluation.forecasting.eval.evaluate` itself (matching, AP_F, ADE/FDE, trajectory
profiles are all the official code) with two of its helper filters replaced for the duration of the call:

- Region of interest (G6). The official `filter_drivable_area` builds cuboids from a 2-D, unrotated city offset, so
  its columns are misaligned (length read as z, quaternion shifted) and it keeps the wrong agents. Ours keeps an
  agent when any BEV corner of its city-frame box lies in the ROI raster (the drivable area dilated by 5 m), which is
  what `compute_objects_in_roi_mask` does for detection. It runs on GT and predictions, after the range filter.
- Range filter (G2). The official `filter_max_dist` may leave a GT frame with no agent, and the next step then
  crashes with IndexError; ours filters identically and drops such empty GT frames (they hold nothing to score, and
  predictions are only ever scored at GT frames).

Missing (log, timestamp) keys in the submission (G2) are reported as a `SubmissionError`; `top_k` must be 1 or 5 (G3);
GT must already be at 2 Hz (G4, see `scenes.submissions.av2_e2e_forecasting`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from av2.evaluation.forecasting import eval as av2_forecasting_eval
from av2.evaluation.forecasting.constants import AV2_CATEGORIES, VELOCITY_TYPES
from rich.console import Console
from rich.table import Table

from scenes.geometry import bev_box_corners
from scenes.io import atomic_write_text
from scenes.regions import RegionOfInterest
from scenes.submissions.av2_e2e_forecasting import ForecastSequences, Sequences, SubmissionError, validate_submission

__all__ = [
    "E2EForecastingScores",
    "evaluate_submission",
    "roi_keep_mask",
]

TOP_K_SUPPORTED: Final = (1, 5)
DEFAULT_MAX_RANGE_M: Final = 50
METRICS: Final = ("mAP_F", "ADE", "FDE")


def roi_keep_mask(agents: list[dict[str, Any]], roi: RegionOfInterest) -> np.ndarray:
    """True for agents whose city-frame BEV box (current position, size, yaw) touches the ROI."""
    if not agents:
        return np.zeros(0, dtype=bool)
    centers = np.array([np.asarray(a["current_translation_m"], dtype=np.float64)[:2] for a in agents])
    sizes = np.array([np.asarray(a["size"], dtype=np.float64)[:2] for a in agents])
    yaws = np.array([float(a["yaw"]) for a in agents])
    corners = bev_box_corners(centers, sizes, yaws)
    return roi.contains_xy(corners.reshape(-1, 2)).reshape(len(agents), -1).any(axis=1)


def _filter_roi(forecasts: ForecastSequences, rois: Mapping[str, RegionOfInterest]) -> ForecastSequences:
    for log_id, log in forecasts.items():
        if log_id not in rois:
            raise SubmissionError(f"no region of interest given for log {log_id!r}")
        for timestamp_ns, agents in log.items():
            keep = roi_keep_mask(agents, rois[log_id])
            log[timestamp_ns] = [agent for agent, kept in zip(agents, keep, strict=True) if kept]
    return forecasts


@contextlib.contextmanager
def _corrected_filters(rois: Mapping[str, RegionOfInterest] | None) -> Iterator[None]:
    """Within the block, the official evaluator uses our range and ROI filters (see the module docstring)."""
    original = (av2_forecasting_eval.filter_max_dist, av2_forecasting_eval.filter_drivable_area)

    def filter_max_dist(forecasts: ForecastSequences, max_range_m: int) -> ForecastSequences:
        ground_truth_logs = {
            log_id for log_id, log in forecasts.items() if any("future_translation_m" in a for f in log.values() for a in f)
        }
        filtered = original[0](forecasts, max_range_m)
        for log_id in ground_truth_logs:
            filtered[log_id] = {ts: agents for ts, agents in filtered[log_id].items() if agents}
        return filtered

    def filter_drivable_area(forecasts: ForecastSequences, dataset_dir: str) -> ForecastSequences:
        return _filter_roi(forecasts, rois or {})

    av2_forecasting_eval.filter_max_dist = filter_max_dist
    av2_forecasting_eval.filter_drivable_area = filter_drivable_area
    try:
        yield
    finally:
        av2_forecasting_eval.filter_max_dist, av2_forecasting_eval.filter_drivable_area = original


def _no_progress_bar(iterable: Any, *args: Any, **kwargs: Any) -> Any:
    return iterable


@contextlib.contextmanager
def _quiet_progress_bars() -> Iterator[None]:
    """The official evaluator draws tqdm bars on stderr at every call; our callers print their own table instead."""
    original = av2_forecasting_eval.tqdm
    av2_forecasting_eval.tqdm = _no_progress_bar
    try:
        yield
    finally:
        av2_forecasting_eval.tqdm = original


@dataclass(frozen=True)
class E2EForecastingScores:
    """Official per-(profile, category) metrics plus their NaN-means (as the official CLI reports them)."""

    per_profile: dict[str, dict[str, dict[str, float]]]
    top_k: int
    max_range_m: int
    roi_filtered: bool

    def mean(self, metric: str) -> float:
        values = [cell[metric] for profile in self.per_profile.values() for cell in profile.values()]
        finite = [v for v in values if not math.isnan(v)]
        return float(np.mean(finite)) if finite else math.nan

    @property
    def mean_mAP_F(self) -> float:
        return self.mean("mAP_F")

    def evaluated_categories(self) -> list[str]:
        return [
            category
            for category in AV2_CATEGORIES
            if any(not math.isnan(self.per_profile[p][category]["mAP_F"]) for p in VELOCITY_TYPES)
        ]

    def as_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {p: self.per_profile[p] for p in VELOCITY_TYPES}
        payload.update({f"mean_{metric}": self.mean(metric) for metric in METRICS})
        payload["settings"] = {"top_k": self.top_k, "max_range_m": self.max_range_m, "roi_filtered": self.roi_filtered}
        return payload

    def save_json(self, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
        """The figures of `as_dict` (NaN as null), plus `extra` keys, written atomically to `path`."""

        def clean(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, float) and math.isnan(value):
                return None
            return value

        atomic_write_text(path, json.dumps(clean({**self.as_dict(), **(extra or {})}), indent=2) + "\n")
        return Path(path)

    def table(self, title: str = "AV2 end-to-end forecasting") -> Table:
        """One row per evaluated (category, profile), then the per-profile means."""
        roi = ", ROI" if self.roi_filtered else ""
        table = Table(title=f"{title} (top-{self.top_k}, {self.max_range_m} m{roi})")
        table.add_column("category")
        table.add_column("profile")
        for metric in METRICS:
            table.add_column(metric if metric == "mAP_F" else f"{metric} (m)", justify="right")

        def fmt(value: float) -> str:
            return "-" if math.isnan(value) else f"{value:.3f}"

        for category in self.evaluated_categories():
            for profile in VELOCITY_TYPES:
                cell = self.per_profile[profile][category]
                if not math.isnan(cell["mAP_F"]):
                    table.add_row(category, profile, *(fmt(cell[m]) for m in METRICS))
        table.add_section()
        for profile in VELOCITY_TYPES:
            table.add_row("mean", profile, *(fmt(_nanmean([self.per_profile[profile][c][m] for c in AV2_CATEGORIES])) for m in METRICS))
        table.add_row("mean", "all", *(fmt(self.mean(m)) for m in METRICS), style="bold")
        return table

    def print(self, console: Console | None = None, title: str = "AV2 end-to-end forecasting") -> None:
        (console or Console()).print(self.table(title))


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def evaluate_submission(
    submission: ForecastSequences,
    ground_truth: Sequences,
    *,
    rois: Mapping[str, RegionOfInterest] | None = None,
    top_k: int = 5,
    max_range_m: int = DEFAULT_MAX_RANGE_M,
) -> E2EForecastingScores:
    """Scores `submission` against unified-format 2 Hz GT with the official evaluator (inputs are not modified).

    With `rois` (one per log), GT and predictions are restricted to the region of interest by our corrected filter.
    """
    if top_k not in TOP_K_SUPPORTED:
        raise ValueError(f"top_k: the official evaluator supports only {TOP_K_SUPPORTED}, got {top_k}")
    validate_submission(submission)
    missing = [
        (log_id, frame["timestamp_ns"])
        for log_id, frames in ground_truth.items()
        for frame in frames
        if frame["timestamp_ns"] not in submission.get(log_id, {})
    ]
    if missing:
        raise SubmissionError(f"submission lacks {len(missing)} evaluated (log, timestamp) key(s), e.g. {missing[:3]}")
    predictions = copy.deepcopy(submission)
    labels = copy.deepcopy(ground_truth)
    with _corrected_filters(rois), _quiet_progress_bars():
        results = av2_forecasting_eval.evaluate(
            predictions, labels, top_k, max_range_m, "region-of-interest" if rois is not None else None
        )
    per_profile = {
        profile: {category: {m: float(results[profile][category][m]) for m in METRICS} for category in AV2_CATEGORIES}
        for profile in VELOCITY_TYPES
    }
    return E2EForecastingScores(per_profile, top_k, max_range_m, rois is not None)
