"""Eigen et al. depth metrics as the KITTI monocular-depth papers report them.

The definitions follow monodepth2's `compute_errors` and its evaluation loop so that the numbers are comparable with the
literature: ground truth is evaluated in (`MIN_DEPTH_M`, `MAX_DEPTH_M`], an optional per-image median scaling aligns the
scale of a self-supervised prediction with the ground truth, predictions are clipped to the same depth range (the 80 m
cap), and the benchmark score is the mean over images of the per-image metrics, not a mean over all pixels. The Garg/Eigen
crop restricts KITTI evaluation to the image region the LiDAR ground truth covers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Final

import numpy as np

__all__ = [
    "MAX_DEPTH_M",
    "METRIC_NAMES",
    "MIN_DEPTH_M",
    "DepthErrorAccumulator",
    "DepthErrors",
    "depth_errors",
    "garg_crop_mask",
    "median_scale",
    "valid_mask",
]

MAX_DEPTH_M: Final = 80.0
MIN_DEPTH_M: Final = 1e-3
METRIC_NAMES: Final = ("abs_rel", "sq_rel", "rmse", "rmse_log", "delta1", "delta2", "delta3")
DELTA_BASE: Final = 1.25
# Fractions of the image height and width bounding the Garg/Eigen crop, as monodepth2 defines them.
GARG_CROP_ROWS: Final = (0.40810811, 0.99189189)
GARG_CROP_COLS: Final = (0.03594771, 0.96405229)


@dataclass(frozen=True)
class DepthErrors:
    """Eigen metrics of one image (or their per-image mean): errors in metres (`sq_rel` in metres too, as squared metres
    over metres), `delta*` the fraction of pixels whose ratio max(pred/gt, gt/pred) is below 1.25, 1.25^2, 1.25^3.

    `scale_ratio` is the median-scaling ratio applied to the prediction, None when no median scaling was applied.
    """

    abs_rel: float
    sq_rel: float
    rmse: float
    rmse_log: float
    delta1: float
    delta2: float
    delta3: float
    pixels: int
    scale_ratio: float | None = None

    def as_dict(self) -> dict[str, float]:
        """The metrics by name, plus the number of evaluated pixels under "pixels"."""
        values = asdict(self)
        return {name: values[name] for name in (*METRIC_NAMES, "pixels")}


def valid_mask(gt_m: np.ndarray, *, min_depth_m: float = MIN_DEPTH_M, max_depth_m: float = MAX_DEPTH_M) -> np.ndarray:
    """Pixels with a ground-truth depth in (`min_depth_m`, `max_depth_m`]; 0 (no ground truth), NaN and inf are invalid."""
    gt = np.asarray(gt_m)
    return (gt > min_depth_m) & (gt <= max_depth_m)


def median_scale(pred_m: np.ndarray, gt_m: np.ndarray, mask: np.ndarray) -> float:
    """Ratio median(gt) / median(pred) over the masked pixels: the factor that aligns a scale-ambiguous prediction."""
    selected = np.asarray(mask, dtype=bool)
    if not selected.any():
        raise ValueError("median scaling needs at least one masked pixel")
    pred_median = float(np.median(np.asarray(pred_m, dtype=np.float64)[selected]))
    if not pred_median > 0.0:
        raise ValueError(f"median scaling needs a positive median prediction, got {pred_median}")
    return float(np.median(np.asarray(gt_m, dtype=np.float64)[selected])) / pred_median


def depth_errors(
    pred_m: np.ndarray,
    gt_m: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    median_scaling: bool = False,
    min_depth_m: float = MIN_DEPTH_M,
    max_depth_m: float = MAX_DEPTH_M,
) -> DepthErrors | None:
    """Eigen metrics of one predicted depth map against its ground truth, None when no pixel is evaluated.

    Evaluated pixels are those with valid ground truth (see `valid_mask`) inside `mask` (e.g. `garg_crop_mask`). With
    `median_scaling` the prediction is first multiplied by `median_scale` over those pixels. Predictions are then
    clipped to [`min_depth_m`, `max_depth_m`]. Raises ValueError on mismatched shapes, NaN or infinite predictions, and
    (with median scaling) a non-positive median prediction.
    """
    pred = np.asarray(pred_m, dtype=np.float64)
    gt = np.asarray(gt_m, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
    if not np.isfinite(pred).all():
        raise ValueError("the predicted depth has NaN or infinite values")
    evaluated = valid_mask(gt, min_depth_m=min_depth_m, max_depth_m=max_depth_m)
    if mask is not None:
        mask_array = np.asarray(mask, dtype=bool)
        if mask_array.shape != gt.shape:
            raise ValueError(f"mask shape {mask_array.shape} differs from ground-truth shape {gt.shape}")
        evaluated &= mask_array
    if not evaluated.any():
        return None
    scale_ratio = median_scale(pred, gt, evaluated) if median_scaling else None
    pred, gt = pred[evaluated], gt[evaluated]
    if scale_ratio is not None:
        pred = pred * scale_ratio
    pred = np.clip(pred, min_depth_m, max_depth_m)

    ratio = np.maximum(gt / pred, pred / gt)
    squared_error = (gt - pred) ** 2
    return DepthErrors(
        abs_rel=float(np.mean(np.abs(gt - pred) / gt)),
        sq_rel=float(np.mean(squared_error / gt)),
        rmse=float(np.sqrt(np.mean(squared_error))),
        rmse_log=float(np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2))),
        delta1=float(np.mean(ratio < DELTA_BASE)),
        delta2=float(np.mean(ratio < DELTA_BASE**2)),
        delta3=float(np.mean(ratio < DELTA_BASE**3)),
        pixels=int(gt.size),
        scale_ratio=scale_ratio,
    )


class DepthErrorAccumulator:
    """Per-image metrics of a benchmark averaged the Eigen way: every image with evaluated pixels weighs the same.

    It also records the median-scaling ratios of the images that used median scaling; `scale_ratio_std` is the spread
    monodepth2 reports (std of the ratios divided by their median), which says whether the predicted scale is consistent
    across images.
    """

    def __init__(self) -> None:
        self._metrics: list[tuple[float, ...]] = []
        self._pixels = 0
        self._scale_ratios: list[float] = []

    def add(self, errors: DepthErrors | None) -> None:
        """Add the metrics of one image; None (no evaluated pixel) is skipped."""
        if errors is None:
            return
        self._metrics.append(tuple(getattr(errors, name) for name in METRIC_NAMES))
        self._pixels += errors.pixels
        if errors.scale_ratio is not None:
            self._scale_ratios.append(errors.scale_ratio)

    @property
    def images(self) -> int:
        """Number of images added with at least one evaluated pixel."""
        return len(self._metrics)

    @property
    def scale_ratios(self) -> tuple[float, ...]:
        """Median-scaling ratios of the added images, in the order they were added."""
        return tuple(self._scale_ratios)

    @property
    def scale_ratio_median(self) -> float | None:
        """Median of the scaling ratios, None without any."""
        return float(np.median(self._scale_ratios)) if self._scale_ratios else None

    @property
    def scale_ratio_std(self) -> float | None:
        """Standard deviation of the scaling ratios relative to their median (monodepth2's "std"), None without any."""
        median = self.scale_ratio_median
        return float(np.std(np.asarray(self._scale_ratios) / median)) if median is not None else None

    def result(self) -> DepthErrors | None:
        """Per-image mean of each metric with the evaluated pixels summed, None when no image had evaluated pixels."""
        if not self._metrics:
            return None
        means = np.mean(np.asarray(self._metrics, dtype=np.float64), axis=0)
        return DepthErrors(**{name: float(value) for name, value in zip(METRIC_NAMES, means, strict=True)}, pixels=self._pixels)


def garg_crop_mask(height_px: int, width_px: int) -> np.ndarray:
    """Boolean `(H, W)` mask of the Garg/Eigen crop used on KITTI, with monodepth2's bounds (fractions truncated to pixels)."""
    top, bottom = (int(fraction * height_px) for fraction in GARG_CROP_ROWS)
    left, right = (int(fraction * width_px) for fraction in GARG_CROP_COLS)
    mask = np.zeros((height_px, width_px), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask
