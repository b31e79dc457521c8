"""Eigen depth metrics by hand on tiny arrays: the 80 m cap, masks, median scaling, per-image averaging and the crop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from depth.metrics import (
    MAX_DEPTH_M,
    METRIC_NAMES,
    MIN_DEPTH_M,
    DepthErrorAccumulator,
    DepthErrors,
    depth_errors,
    garg_crop_mask,
    median_scale,
    valid_mask,
)

GT_DEPTHS_M = arrays(np.float64, st.integers(1, 40), elements=st.floats(0.01, MAX_DEPTH_M))


def _continuous(errors: DepthErrors | None) -> tuple[float, ...]:
    assert errors is not None
    return errors.abs_rel, errors.sq_rel, errors.rmse, errors.rmse_log


def test_double_depth_by_hand() -> None:
    gt = np.array([[1.0, 2.0, 4.0]])
    errors = depth_errors(2.0 * gt, gt)
    assert errors is not None
    assert errors.abs_rel == pytest.approx(1.0)
    assert errors.sq_rel == pytest.approx((1.0 + 2.0 + 4.0) / 3)  # (2g - g)^2 / g = g
    assert errors.rmse == pytest.approx(math.sqrt((1.0 + 4.0 + 16.0) / 3))
    assert errors.rmse_log == pytest.approx(math.log(2.0))
    assert (errors.delta1, errors.delta2, errors.delta3) == (0.0, 0.0, 0.0)  # a ratio of 2 exceeds 1.25^3 = 1.953125
    assert errors.pixels == 3
    assert errors.scale_ratio is None


def test_median_scaling_makes_a_doubled_prediction_perfect() -> None:
    gt = np.array([[1.0, 2.0, 4.0]])
    assert median_scale(2.0 * gt, gt, np.ones(gt.shape, dtype=bool)) == pytest.approx(0.5)
    errors = depth_errors(2.0 * gt, gt, median_scaling=True)
    assert errors is not None
    assert _continuous(errors) == pytest.approx((0.0, 0.0, 0.0, 0.0), abs=1e-12)
    assert (errors.delta1, errors.delta2, errors.delta3) == (1.0, 1.0, 1.0)
    assert errors.scale_ratio == pytest.approx(0.5)


def test_median_scale_uses_only_masked_pixels() -> None:
    gt = np.array([1.0, 2.0, 3.0, 100.0])
    pred = np.array([4.0, 4.0, 4.0, 1.0])
    assert median_scale(pred, gt, np.array([True, True, True, False])) == pytest.approx(2.0 / 4.0)
    with pytest.raises(ValueError, match="at least one"):
        median_scale(pred, gt, np.zeros(4, dtype=bool))
    with pytest.raises(ValueError, match="positive median"):
        median_scale(np.zeros(4), gt, np.ones(4, dtype=bool))


def test_delta_thresholds() -> None:
    gt = np.full(4, 10.0)
    pred = np.array([12.0, 14.0, 18.0, 20.0])  # ratios 1.2, 1.4, 1.8, 2.0 against 1.25, 1.5625, 1.953125
    errors = depth_errors(pred, gt)
    assert errors is not None
    assert (errors.delta1, errors.delta2, errors.delta3) == (0.25, 0.5, 0.75)
    assert errors.abs_rel == pytest.approx((0.2 + 0.4 + 0.8 + 1.0) / 4)


def test_predictions_are_capped_at_80_m_and_floored_at_min_depth() -> None:
    errors = depth_errors(np.array([100.0]), np.array([50.0]))
    assert errors is not None
    assert errors.abs_rel == pytest.approx(30.0 / 50.0)  # the prediction counts as 80 m
    assert errors.rmse == pytest.approx(30.0)
    floored = depth_errors(np.array([0.0]), np.array([2.0]))
    assert floored is not None
    assert floored.abs_rel == pytest.approx((2.0 - MIN_DEPTH_M) / 2.0)
    assert floored.rmse_log == pytest.approx(math.log(2.0 / MIN_DEPTH_M))
    custom = depth_errors(np.array([100.0]), np.array([50.0]), max_depth_m=60.0)
    assert custom is not None
    assert custom.rmse == pytest.approx(10.0)


def test_valid_mask_keeps_ground_truth_in_the_half_open_range() -> None:
    gt = np.array([0.0, MIN_DEPTH_M, 0.5, MAX_DEPTH_M, 80.5, np.nan, np.inf])
    np.testing.assert_array_equal(valid_mask(gt), [False, False, True, True, False, False, False])
    np.testing.assert_array_equal(valid_mask(gt, min_depth_m=1.0, max_depth_m=90.0), [False, False, False, True, True, False, False])


def test_ground_truth_beyond_the_cap_and_masked_pixels_are_not_evaluated() -> None:
    gt = np.array([[10.0, 90.0], [0.0, 20.0]])
    pred = np.array([[10.0, 1.0], [5.0, 40.0]])
    errors = depth_errors(pred, gt)
    assert errors is not None
    assert errors.pixels == 2
    assert errors.abs_rel == pytest.approx((0.0 + 1.0) / 2)
    masked = depth_errors(pred, gt, mask=np.array([[True, True], [True, False]]))
    assert masked is not None
    assert masked.pixels == 1
    assert masked.abs_rel == 0.0


def test_none_when_no_pixel_is_evaluated() -> None:
    gt = np.array([[0.0, 90.0]])
    assert depth_errors(np.ones((1, 2)), gt) is None
    assert depth_errors(np.ones((1, 2)), np.array([[5.0, 5.0]]), mask=np.zeros((1, 2), dtype=bool)) is None
    assert depth_errors(np.ones((1, 2)), gt, median_scaling=True) is None


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        depth_errors(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"mask shape \(1, 2\)"):
        depth_errors(np.ones((2, 2)), np.ones((2, 2)), mask=np.ones((1, 2), dtype=bool))
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="NaN or infinite"):
            depth_errors(np.array([1.0, bad]), np.array([1.0, 0.0]))


def test_as_dict_has_the_metric_names_and_pixels() -> None:
    errors = depth_errors(np.array([2.0]), np.array([1.0]), median_scaling=True)
    assert errors is not None
    values = errors.as_dict()
    assert tuple(values) == (*METRIC_NAMES, "pixels")
    assert values["pixels"] == 1
    assert values["abs_rel"] == 0.0


def test_accumulator_averages_per_image_not_per_pixel() -> None:
    accumulator = DepthErrorAccumulator()
    assert accumulator.result() is None
    accumulator.add(depth_errors(np.array([2.0]), np.array([1.0])))  # one pixel, abs_rel 1
    accumulator.add(depth_errors(np.full(3, 5.0), np.full(3, 5.0)))  # three perfect pixels
    accumulator.add(None)
    assert accumulator.images == 2
    result = accumulator.result()
    assert result is not None
    assert result.abs_rel == pytest.approx(0.5)  # a per-pixel mean would give 0.25
    assert result.delta1 == pytest.approx(0.5)
    assert result.rmse == pytest.approx(0.5)  # mean of the per-image RMSEs 1 and 0
    assert result.pixels == 4
    assert result.scale_ratio is None
    assert accumulator.scale_ratios == ()
    assert accumulator.scale_ratio_median is None
    assert accumulator.scale_ratio_std is None


def test_accumulator_records_the_median_scaling_ratios() -> None:
    accumulator = DepthErrorAccumulator()
    gt = np.array([1.0, 2.0, 4.0])
    for factor in (2.0, 1.0, 0.5):
        accumulator.add(depth_errors(factor * gt, gt, median_scaling=True))
    assert accumulator.scale_ratios == pytest.approx((0.5, 1.0, 2.0))
    assert accumulator.scale_ratio_median == pytest.approx(1.0)
    # np.std of the ratios over their median [0.5, 1, 2]: mean 7/6, variance (4/9 + 1/36 + 25/36) / 3 = 7/18.
    assert accumulator.scale_ratio_std == pytest.approx(math.sqrt(7.0 / 18.0))
    result = accumulator.result()
    assert result is not None
    assert result.abs_rel == pytest.approx(0.0, abs=1e-12)


def test_garg_crop_on_a_kitti_image() -> None:
    mask = garg_crop_mask(375, 1242)
    # rows int(0.40810811 * 375) = 153 to int(0.99189189 * 375) = 371, cols int(44.65) = 44 to int(1197.35) = 1197.
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (153, 371, 44, 1197)
    assert mask.sum() == (371 - 153) * (1197 - 44)
    assert mask.dtype == np.bool_


@given(GT_DEPTHS_M)
def test_perfect_predictions(gt: np.ndarray) -> None:
    errors = depth_errors(gt.copy(), gt)
    assert errors is not None
    assert _continuous(errors) == (0.0, 0.0, 0.0, 0.0)
    assert errors.delta1 == 1.0
    assert errors.pixels == gt.size


@settings(max_examples=50)
@given(GT_DEPTHS_M, st.data(), st.floats(1e-2, 1e2))
def test_median_scaling_is_invariant_to_the_prediction_scale(gt: np.ndarray, data: st.DataObject, factor: float) -> None:
    pred = data.draw(arrays(np.float64, gt.shape, elements=st.floats(0.1, 100.0)))
    reference = depth_errors(pred, gt, median_scaling=True)
    scaled = depth_errors(factor * pred, gt, median_scaling=True)
    assert reference is not None and scaled is not None and reference.scale_ratio is not None
    assert _continuous(scaled) == pytest.approx(_continuous(reference), rel=1e-9, abs=1e-12)
    assert scaled.scale_ratio == pytest.approx(reference.scale_ratio / factor, rel=1e-12)


@settings(max_examples=50)
@given(GT_DEPTHS_M, st.data(), st.integers(-10, 10))
def test_median_scaling_by_a_power_of_two_gives_identical_metrics(gt: np.ndarray, data: st.DataObject, exponent: int) -> None:
    pred = data.draw(arrays(np.float64, gt.shape, elements=st.floats(0.1, 100.0)))
    reference = depth_errors(pred, gt, median_scaling=True)
    scaled = depth_errors(2.0**exponent * pred, gt, median_scaling=True)  # scaling by 2^k is exact in floating point
    assert reference is not None and scaled is not None
    assert scaled.as_dict() == reference.as_dict()
