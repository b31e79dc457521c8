"""Tracking scores from the official `av2.evaluation.tracking` (HOTA, MOTA via TrackEval) and nuScenes
`TrackingEval` (AMOTA).

The steps of av2's `evaluate` are run here with its own functions, so that two quirks are avoided (FORMATS §7):
- G8: `evaluate` derives TrackEval's output directory from `out` by joining path parts with dots; we pass a real one.
- G7: ego positions are copied from labels to predictions by zip order; `validate_pair` checks that both cover the
  same (log, timestamp) keys and `align_to_labels` puts the prediction logs in the labels' order.
Only the requested classes are scored (TrackEval raises on a name outside its class list, so other boxes are dropped).
Per-class score thresholds are tuned on recall levels by av2 (`objective_metric`), then HOTA/MOTA are computed.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scenes.submissions.av2_tracking import Sequences, align_to_labels, validate_pair


@dataclass(frozen=True)
class AV2TrackingMetrics:
    """Per-class HOTA, MOTA (at the tuned score threshold) and their means."""

    hota: dict[str, float]
    mota: dict[str, float]
    score_thresholds: dict[str, float]

    @property
    def mean_hota(self) -> float:
        return float(np.mean(list(self.hota.values())))

    @property
    def mean_mota(self) -> float:
        return float(np.mean(list(self.mota.values())))

    def as_dict(self) -> dict[str, float]:
        out = {"HOTA": self.mean_hota, "MOTA": self.mean_mota}
        out.update({f"{name}/HOTA": value for name, value in self.hota.items()})
        out.update({f"{name}/MOTA": value for name, value in self.mota.items()})
        return out


def _only_classes(sequences: Sequences, classes: Sequence[str]) -> Sequences:
    from av2.evaluation.tracking import utils

    wanted = set(classes)
    return {
        log_id: [utils.index_array_values(frame, np.array([name in wanted for name in frame["name"]], dtype=bool)) for frame in frames]
        for log_id, frames in sequences.items()
    }


def evaluate_av2_tracking(
    predictions: Sequences,
    labels: Sequences,
    classes: Sequence[str],
    *,
    max_range_m: int = 50,
    objective_metric: str = "HOTA",
    output_dir: str | Path | None = None,
) -> AV2TrackingMetrics:
    """HOTA and MOTA of `predictions` against `labels` (both from scenes.submissions.av2_tracking)."""
    with warnings.catch_warnings():  # av2's numpy shim warns about np.str / np.long on import
        warnings.simplefilter("ignore", FutureWarning)
        from av2.evaluation.tracking import utils
        from av2.evaluation.tracking.eval import _tune_score_thresholds, evaluate_tracking, filter_max_dist

    if not classes:
        raise ValueError("evaluate_av2_tracking: no classes to evaluate")
    validate_pair(predictions, labels)
    predictions = align_to_labels(predictions, labels)
    classes = list(classes)
    labels = filter_max_dist(_only_classes(labels, classes), max_range_m)
    predictions = _only_classes(predictions, classes)
    utils.annotate_frame_metadata(utils.ungroup_frames(predictions), utils.ungroup_frames(labels), ["ego_translation_m"])
    predictions = filter_max_dist(predictions, max_range_m)
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        thresholds, _, _ = _tune_score_thresholds(labels, predictions, objective_metric, classes, num_thresholds=10, match_distance_m=2)
        filtered = utils.filter_by_class_thresholds(predictions, thresholds)
        with tempfile.TemporaryDirectory() as scratch:
            result: dict[str, Any] = evaluate_tracking(labels, filtered, classes, "TRACKER", str(output_dir or scratch))
    combined = result["TrackEvalDataset"]["TRACKER"]["COMBINED_SEQ"]
    hota = {name: float(np.mean(combined[name]["HOTA"]["HOTA"])) for name in classes}
    mota = {name: float(combined[name]["CLEAR"]["MOTA"]) for name in classes}
    return AV2TrackingMetrics(hota, mota, {name: float(value) for name, value in thresholds.items()})


@dataclass(frozen=True)
class NuScenesTrackingMetrics:
    """The devkit's headline numbers: AMOTA, AMOTP, MOTA and per-class AMOTA."""

    amota: float
    amotp: float
    mota: float
    label_amota: dict[str, float]


def evaluate_nuscenes_tracking(
    submission_path: str | Path, dataroot: str | Path, version: str, eval_set: str, output_dir: str | Path
) -> NuScenesTrackingMetrics:
    """Scores a submission (scenes.submissions.nuscenes_tracking) with nuScenes `TrackingEval`, config
    `tracking_nips_2019`; `eval_set` may be a custom split of `<dataroot>/<version>/splits.json`."""
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.tracking.evaluate import TrackingEval

    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        evaluator = TrackingEval(
            config_factory("tracking_nips_2019"), str(submission_path), eval_set, str(output_dir), version, str(dataroot), verbose=False
        )
        summary = evaluator.main(render_curves=False)
    label_amota = {name: float(value) for name, value in summary["label_metrics"]["amota"].items()}
    return NuScenesTrackingMetrics(float(summary["amota"]), float(summary["amotp"]), float(summary["mota"]), label_amota)
