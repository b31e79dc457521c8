"""Segmentation scores: confusion matrix -> per-class IoU and mIoU, per domain and averaged over the targets.

IoU of class c = TP / (TP + FP + FN) from the confusion matrix accumulated over every image of a domain (as the
official code's `per_class_iu`). A class absent from both the prediction and the ground truth of a domain has no
IoU: it is NaN and left out of that domain's mIoU (the official code would count it as 0 there, which on small
evaluation sets penalises a class that simply never occurs). Pixels labelled `IGNORE_INDEX` are not counted.
The score averaged over targets is the mean of each target's mIoU, and per class the mean of the defined IoUs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.table import Table

from perception.segmentation.classes import IGNORE_INDEX
from perception.segmentation.data import SegmentationSample
from perception.segmentation.segmenter import Segmenter

__all__ = ["SegmentationScores", "average_scores", "confusion_matrix", "evaluate_domains", "evaluate_samples", "iou_from_confusion", "scores_table"]

_EVAL_BATCH = 8


def confusion_matrix(predicted: np.ndarray, ground_truth: np.ndarray, num_classes: int) -> np.ndarray:
    """`(C, C)` int64 counts, rows = ground truth, columns = prediction; ignored ground-truth pixels are skipped."""
    truth = np.asarray(ground_truth).ravel().astype(np.int64)
    prediction = np.asarray(predicted).ravel().astype(np.int64)
    if truth.shape != prediction.shape:
        raise ValueError(f"prediction and ground truth differ in size: {np.shape(predicted)} vs {np.shape(ground_truth)}")
    keep = (truth != IGNORE_INDEX) & (truth < num_classes)
    return np.bincount(truth[keep] * num_classes + prediction[keep], minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """Per-class IoU `(C,)`; NaN for a class absent from both prediction and ground truth."""
    true_positives = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - true_positives
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, true_positives / union, np.nan)


@dataclass(frozen=True)
class SegmentationScores:
    """Per-class IoU (NaN = class absent) and their mean over the defined classes."""

    class_names: tuple[str, ...]
    iou: np.ndarray

    @property
    def miou(self) -> float:
        defined = self.iou[~np.isnan(self.iou)]
        return float(defined.mean()) if defined.size else math.nan

    @classmethod
    def from_confusion(cls, confusion: np.ndarray, class_names: Sequence[str]) -> SegmentationScores:
        return cls(tuple(class_names), iou_from_confusion(confusion))

    def to_dict(self) -> dict[str, Any]:
        """`{"miou": ..., "iou": {class_name: ...}}`, NaN written as None so the dict is valid JSON."""
        return {"miou": _json_float(self.miou), "iou": {name: _json_float(value) for name, value in zip(self.class_names, self.iou, strict=True)}}


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def evaluate_samples(segmenter: Segmenter, samples: Iterable[SegmentationSample]) -> SegmentationScores:
    """Scores of `segmenter` over labelled samples (predicted at each sample's own size)."""
    names = segmenter.class_names
    confusion = np.zeros((len(names), len(names)), dtype=np.int64)
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []

    def flush() -> None:
        for prediction, truth in zip(segmenter.predict(np.stack(images)), labels, strict=True):
            confusion[:] += confusion_matrix(prediction, truth, len(names))
        images.clear()
        labels.clear()

    for sample in samples:
        if sample.labels is None:
            raise ValueError(f"cannot evaluate on an unlabelled sample of domain {sample.domain!r}")
        if images and (len(images) == _EVAL_BATCH or images[0].shape != sample.image.shape):
            flush()
        images.append(sample.image)
        labels.append(sample.labels)
    if images:
        flush()
    return SegmentationScores.from_confusion(confusion, names)


def average_scores(scores: Iterable[SegmentationScores]) -> SegmentationScores:
    """Per-class mean of the defined IoUs over domains (NaN where no domain defines the class)."""
    listed = list(scores)
    if not listed:
        raise ValueError("no scores to average")
    stacked = np.stack([score.iou for score in listed])
    defined = (~np.isnan(stacked)).sum(axis=0)
    total = np.nansum(stacked, axis=0)
    return SegmentationScores(listed[0].class_names, np.where(defined > 0, total / np.maximum(defined, 1), np.nan))


def evaluate_domains(segmenter: Segmenter, domains: Mapping[str, Iterable[SegmentationSample]]) -> dict[str, SegmentationScores]:
    """Scores per domain, plus `"mean"`, the per-class average over the domains when there are several."""
    scores = {name: evaluate_samples(segmenter, samples) for name, samples in domains.items()}
    if len(scores) > 1:
        scores["mean"] = average_scores(scores.values())
    return scores


def scores_table(scores: Mapping[str, SegmentationScores], title: str = "Segmentation IoU (%)") -> Table:
    """A rich table: one row per class and an mIoU row, one column per domain."""
    table = Table(title=title)
    table.add_column("class")
    for domain in scores:
        table.add_column(domain, justify="right")
    first = next(iter(scores.values()), None)
    names = first.class_names if first is not None else ()
    for index, name in enumerate(names):
        table.add_row(name, *(_percent(score.iou[index]) for score in scores.values()))
    table.add_row("[bold]mIoU[/]", *(f"[bold]{_percent(score.miou)}[/]" for score in scores.values()))
    return table


def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}"
