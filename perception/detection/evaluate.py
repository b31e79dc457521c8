"""Detection scores from the official evaluators: `av2.evaluation.detection` (AP, ATE, ASE, AOE, CDS) and nuScenes
`DetectionEval` (mAP, NDS).

Evaluator quirks handled here (FORMATS §7), never by patching the package:
- G9: detections lying on a ground-truth box with `num_interior_pts == 0` are counted as false positives (the GT is
  dropped, the detection is not); we drop such detections first (an empty box is unobservable, so neither side counts).
- G9: the AVERAGE_METRICS row averages all configured categories, present or not; we configure only the categories
  that are evaluated and report their mean as `mAP`.
- `DetectionCfg` needs a dataset directory for ROI filtering; logs without map rasters (synthetic ones) are scored
  with `eval_only_roi_instances=False`.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scenes.submissions.av2_detection import BOX_COLUMNS


@dataclass(frozen=True)
class AV2DetectionMetrics:
    """Per-category AP, ATE, ASE, AOE, CDS and their means over the evaluated categories."""

    per_category: pd.DataFrame
    mean_ap: float
    mean_cds: float

    def as_dict(self) -> dict[str, float]:
        out = {"mAP": self.mean_ap, "mCDS": self.mean_cds}
        for category, row in self.per_category.iterrows():
            for metric, value in row.items():
                out[f"{category}/{metric}"] = float(value)
        return out


def drop_detections_on_empty_ground_truth(dts: pd.DataFrame, gts: pd.DataFrame, radius_m: float) -> pd.DataFrame:
    """Detections whose nearest same-category GT box of their sweep is empty and closer than `radius_m` removed."""
    if not len(dts) or not len(gts) or not (gts["num_interior_pts"] == 0).any():
        return dts
    keep = np.ones(len(dts), dtype=bool)
    gts_groups = {key: group for key, group in gts.groupby(["log_id", "timestamp_ns", "category"], sort=False)}
    positions = {index: k for k, index in enumerate(dts.index)}
    for key, group in dts.groupby(["log_id", "timestamp_ns", "category"], sort=False):
        truth = gts_groups.get(key)
        if truth is None:
            continue
        empty = truth["num_interior_pts"].to_numpy() == 0
        if not empty.any():
            continue
        distance = np.linalg.norm(
            group[["tx_m", "ty_m", "tz_m"]].to_numpy()[:, None, :] - truth[["tx_m", "ty_m", "tz_m"]].to_numpy()[None], axis=2
        )
        nearest = distance.argmin(axis=1)
        drop = empty[nearest] & (distance[np.arange(len(group)), nearest] < radius_m)
        for index in group.index[drop]:
            keep[positions[index]] = False
    return dts.loc[keep]


def evaluate_av2_detection(
    dts: pd.DataFrame,
    gts: pd.DataFrame,
    categories: Sequence[str],
    *,
    max_range_m: float = 150.0,
    n_jobs: int = 2,
) -> AV2DetectionMetrics:
    """Scores detection/ground-truth tables (scenes.submissions.av2_detection) with `av2.evaluation.detection`."""
    from av2.evaluation.detection.eval import evaluate
    from av2.evaluation.detection.utils import DetectionCfg

    if not categories:
        raise ValueError("evaluate_av2_detection: no categories to evaluate")
    cfg = DetectionCfg(categories=tuple(categories), eval_only_roi_instances=False, max_range_m=max_range_m)
    for name, table in (("detections", dts), ("ground truth", gts)):
        missing = [c for c in ("log_id", "timestamp_ns", "category", *BOX_COLUMNS) if c not in table.columns]
        if missing:
            raise ValueError(f"evaluate_av2_detection: {name} table lacks columns {missing}")
    dts = drop_detections_on_empty_ground_truth(dts, gts, cfg.tp_threshold_m)
    dts = dts.loc[dts["category"].isin(categories)].reset_index(drop=True)
    gts = gts.loc[gts["category"].isin(categories)].reset_index(drop=True)
    _, _, metrics = evaluate(dts, gts, cfg, n_jobs=n_jobs)
    per_category = metrics.loc[list(categories)]
    return AV2DetectionMetrics(per_category, float(per_category["AP"].mean()), float(per_category["CDS"].mean()))


@dataclass(frozen=True)
class NuScenesDetectionMetrics:
    """The devkit's headline numbers: mAP, NDS, per-class AP (averaged over the distance thresholds) and TP errors."""

    mean_ap: float
    nd_score: float
    label_aps: dict[str, float]
    tp_errors: dict[str, float]


def evaluate_nuscenes_detection(
    submission_path: str | Path, dataroot: str | Path, version: str, eval_set: str, output_dir: str | Path
) -> NuScenesDetectionMetrics:
    """Scores a submission (scenes.submissions.nuscenes_detection) with nuScenes `DetectionEval`, config
    `detection_cvpr_2019`. `eval_set` may be a custom split listed in `<dataroot>/<version>/splits.json` (G13)."""
    from nuscenes import NuScenes
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.detection.evaluate import DetectionEval

    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        nusc = NuScenes(version=version, dataroot=str(dataroot), verbose=False)
        evaluator = DetectionEval(
            nusc, config_factory("detection_cvpr_2019"), str(submission_path), eval_set, str(output_dir), verbose=False
        )
        summary = evaluator.main(plot_examples=0, render_curves=False)
    label_aps = {name: float(np.mean(list(by_threshold.values()))) for name, by_threshold in summary["label_aps"].items()}
    return NuScenesDetectionMetrics(float(summary["mean_ap"]), float(summary["nd_score"]), label_aps, dict(summary["tp_errors"]))
