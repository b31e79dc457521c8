"""Confusion matrices and IoU on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np

from perception.segmentation.evaluate import SegmentationScores, average_scores, confusion_matrix, iou_from_confusion, scores_table


def test_confusion_matrix_counts_and_skips_ignored_pixels() -> None:
    truth = np.array([[0, 0, 1], [1, 2, 255]], dtype=np.uint8)
    prediction = np.array([[0, 1, 1], [1, 1, 0]], dtype=np.uint8)
    confusion = confusion_matrix(prediction, truth, 4)
    expected = np.zeros((4, 4), dtype=np.int64)
    expected[0, 0], expected[0, 1], expected[1, 1], expected[2, 1] = 1, 1, 2, 1
    np.testing.assert_array_equal(confusion, expected)


def test_iou_and_miou_leave_out_absent_classes() -> None:
    # class 0: TP 1, FP 0, FN 1 -> 1/2; class 1: TP 2, FP 2, FN 0 -> 1/2; class 2: TP 0, FN 1 -> 0; class 3 absent
    confusion = np.array([[1, 1, 0, 0], [0, 2, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    iou = iou_from_confusion(confusion)
    np.testing.assert_allclose(iou[:3], [0.5, 0.5, 0.0])
    assert math.isnan(iou[3])
    scores = SegmentationScores.from_confusion(confusion, ("a", "b", "c", "d"))
    assert math.isclose(scores.miou, 1 / 3)
    assert scores.to_dict() == {"miou": scores.miou, "iou": {"a": 0.5, "b": 0.5, "c": 0.0, "d": None}}


def test_average_over_targets_uses_the_defined_ious() -> None:
    first = SegmentationScores(("a", "b", "c"), np.array([0.2, np.nan, np.nan]))
    second = SegmentationScores(("a", "b", "c"), np.array([0.4, 0.6, np.nan]))
    mean = average_scores([first, second])
    np.testing.assert_allclose(mean.iou[:2], [0.3, 0.6])
    assert math.isnan(mean.iou[2])
    assert scores_table({"night": first, "fog": second, "mean": mean}).row_count == 4
