"""Depth evaluation: Eigen metrics of each predictor over samples with ground truth, metric and median-scaled, plus
the error on vehicles moving with the ego vehicle (LiDARTouch's infinite-depth failure case) when the data knows them.

Protocol (monodepth2's KITTI protocol, applied to every dataset): predictions are upsampled to the ground truth's
resolution, pixels are evaluated inside the Garg crop where ground truth lies in (0, 80] m, predictions are clipped to
80 m, and each metric is the mean over images. "Metric" rows use the prediction as it is (LiDARTouch's claim: metric
depth without scaling); "median-scaled" rows rescale each image by median(gt) / median(pred), as camera-only
self-supervised methods are reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from rich.progress import Progress
from rich.table import Table

from depth.data import DepthSample
from depth.metrics import METRIC_NAMES, DepthErrorAccumulator, depth_errors, garg_crop_mask, valid_mask
from depth.model import DepthEstimator, upsample_depth

__all__ = ["Predictor", "depth_table", "evaluate_depth", "interpolation_predictor", "network_predictor"]

Predictor = Callable[[Sequence[DepthSample]], list[np.ndarray]]
BATCH: int = 8


def network_predictor(estimator: DepthEstimator) -> Predictor:
    """Predicts a batch of samples at the network resolution."""

    def predict(samples: Sequence[DepthSample]) -> list[np.ndarray]:
        stack = np.stack
        depth = estimator.predict_batch(stack([s.image for s in samples]), stack([s.lidar_depth_m for s in samples]), stack([s.prior_depth_m for s in samples]))
        return list(depth)

    return predict


def interpolation_predictor(samples: Sequence[DepthSample]) -> list[np.ndarray]:
    """The no-network baseline: the few-beam depth interpolated to every pixel (`depth.interpolation`)."""
    return [sample.prior_depth_m for sample in samples]


def _row(metric: DepthErrorAccumulator, scaled: DepthErrorAccumulator, moving: DepthErrorAccumulator) -> dict[str, Any]:
    result = metric.result()
    if result is None:
        raise ValueError("no evaluated pixel: the samples have no ground truth inside the crop")
    row: dict[str, Any] = {**result.as_dict(), "images": metric.images}
    scaled_result = scaled.result()
    assert scaled_result is not None
    row["median_scaled"] = {**scaled_result.as_dict(), "scale_ratio_median": scaled.scale_ratio_median, "scale_ratio_std": scaled.scale_ratio_std}
    moving_result = moving.result()
    row["moving_with_ego"] = None if moving_result is None else {**moving_result.as_dict(), "images": moving.images}
    return row


def evaluate_depth(samples: Sequence[DepthSample], predictors: Mapping[str, Predictor], *, show_progress: bool = True) -> dict[str, dict[str, Any]]:
    """`{predictor: {metric: value, ..., "images", "median_scaled": {...}, "moving_with_ego": {...} | None}}`."""
    evaluated = [sample for sample in samples if sample.gt_depth_m is not None]
    if not evaluated:
        raise ValueError("no sample has ground-truth depth")
    accumulators = {name: (DepthErrorAccumulator(), DepthErrorAccumulator(), DepthErrorAccumulator()) for name in predictors}
    with Progress(disable=not show_progress, transient=True) as progress:
        bar = progress.add_task("evaluating depth", total=len(evaluated))
        for start in range(0, len(evaluated), BATCH):
            batch = evaluated[start : start + BATCH]
            for name, predict in predictors.items():
                metric, scaled, moving = accumulators[name]
                for sample, prediction in zip(batch, predict(batch), strict=True):
                    gt = sample.gt_depth_m
                    assert gt is not None
                    pred = upsample_depth(prediction, *gt.shape)
                    crop = garg_crop_mask(*gt.shape)
                    metric.add(depth_errors(pred, gt, mask=crop))
                    scaled.add(depth_errors(pred, gt, mask=crop, median_scaling=True))
                    if sample.moving_with_ego is not None and (sample.moving_with_ego & valid_mask(gt)).any():
                        moving.add(depth_errors(pred, gt, mask=sample.moving_with_ego))
            progress.advance(bar, len(batch))
    return {name: _row(*accumulators[name]) for name in predictors}


def depth_table(rows: Mapping[str, Mapping[str, Any]], title: str) -> Table:
    """One table, a column per model (so it fits a terminal): the metric errors, median-scaled AbsRel and the spread of
    the scale ratios, AbsRel on vehicles moving with the ego vehicle."""
    table = Table(title=title)
    table.add_column("metric")
    for model in rows:
        table.add_column(model, justify="right")

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    for name in METRIC_NAMES:
        table.add_row(name, *(cell(row[name]) for row in rows.values()))
    table.add_row("abs_rel, median-scaled", *(cell(row["median_scaled"]["abs_rel"]) for row in rows.values()))
    table.add_row("scale ratio std", *(cell(row["median_scaled"]["scale_ratio_std"]) for row in rows.values()))
    table.add_row("abs_rel, moving with ego", *(cell(row["moving_with_ego"]["abs_rel"] if row.get("moving_with_ego") else None) for row in rows.values()))
    return table
