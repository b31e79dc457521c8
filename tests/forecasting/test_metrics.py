"""Forecasting metrics on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.metrics import (
    DrivableArea,
    convergence_to_range_s,
    dispersion_m,
    min_ade_k,
    min_fde_k,
    miss_rate_k,
    off_road_rate,
    temporal_consistency,
)
from scenes.geometry import Sim2
from scenes.records import Forecasts, LaneGraph, MapRaster

TRUTH = np.array([[[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]])  # one agent, three steps


def _modes() -> tuple[np.ndarray, np.ndarray]:
    # mode 0 (score 0.6): 1 m to the left all along; mode 1 (score 0.3): exact but the last step 3 m short;
    # mode 2 (score 0.1): exact.
    modes = np.stack([TRUTH[0] + [0.0, 1.0], TRUTH[0] - [[0.0, 0.0], [0.0, 0.0], [3.0, 0.0]], TRUTH[0]])[None]
    return modes, np.array([[0.6, 0.3, 0.1]])


def test_min_ade_fde_and_miss_rate_by_hand() -> None:
    modes, scores = _modes()
    assert min_ade_k(modes, scores, TRUTH, 1) == pytest.approx(1.0)
    assert min_ade_k(modes, scores, TRUTH, 2) == pytest.approx(1.0)  # mode 1: (0 + 0 + 3) / 3
    assert min_ade_k(modes, scores, TRUTH, 3) == pytest.approx(0.0)
    assert min_fde_k(modes, scores, TRUTH, 1) == pytest.approx(1.0)
    assert min_fde_k(modes, scores, TRUTH, 2) == pytest.approx(1.0)
    assert min_fde_k(modes, scores, TRUTH, 5) == pytest.approx(0.0)
    assert miss_rate_k(modes, scores, TRUTH, 1) == 0.0  # max error 1 m < 2 m
    assert miss_rate_k(modes, scores, TRUTH, 1, threshold_m=1.0) == 1.0  # >= threshold is a miss
    far = modes + [0.0, 2.5]
    assert miss_rate_k(far, scores, TRUTH, 3) == 1.0
    with pytest.raises(ValueError, match="mode_scores"):
        min_ade_k(modes, scores[:, :2], TRUTH, 1)


def _lane_graph(with_raster: bool) -> LaneGraph:
    road = np.array([[0.0, -2.0, 0.0], [20.0, -2.0, 0.0], [20.0, 2.0, 0.0], [0.0, 2.0, 0.0]])
    rasters = {}
    if with_raster:
        values = np.zeros((40, 200), np.uint8)  # 10 px/m, city (0, -2) at pixel (0, 0)
        values[:, :] = 1  # the raster covers exactly the road
        rasters["drivable_area"] = MapRaster("drivable_area", values, Sim2(np.eye(2), np.array([0.0, 2.0]), 10.0))
    return LaneGraph("C", np.array([1]), np.array([[[0.0, 0.0, 0.0], [20.0, 0.0, 0.0]]]), ((),), np.array([-1]),
                     np.array([-1]), np.array([False]), (road,), rasters=rasters)  # fmt: skip


@pytest.mark.parametrize("with_raster", [False, True])
def test_off_road_rate_counts_modes_with_any_point_off_the_road(with_raster: bool) -> None:
    drivable = DrivableArea.from_lane_graph(_lane_graph(with_raster))
    on = np.array([[1.0, 0.0], [5.0, 1.0], [10.0, -1.5]])
    off_once = np.array([[1.0, 0.0], [5.0, 3.0], [10.0, 0.0]])
    off_end = np.array([[18.0, 0.0], [19.0, 0.0], [25.0, 0.0]])
    trajectories = np.stack([np.stack([on, off_once]), np.stack([on, off_end])])  # (2 agents, 2 modes, 3, 2)
    assert off_road_rate(trajectories, drivable) == pytest.approx(0.5)
    assert off_road_rate(trajectories[:, :1], drivable) == 0.0


def test_dispersion_and_convergence_by_hand() -> None:
    # Barycenter (2, 0): distances 2, 0, 0, 2 -> mean 1, standard deviation 1 (CAB section 4.4).
    points = np.array([[4.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    assert dispersion_m(points) == pytest.approx(1.0)
    assert dispersion_m(points[:1]) == 0.0
    # Equidistant from their barycenter: spread out, yet zero dispersion by the paper's definition.
    assert dispersion_m(np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])) == pytest.approx(0.0)
    # Issued 0.5, 1, 1.5, 2 s before the target; the ground truth is (0, 0): distances 4, 2, 2, 0 m by lead.
    leads = np.array([0.5, 1.0, 1.5, 2.0])
    by_lead = np.array([[4.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    truth = np.zeros(2)
    assert convergence_to_range_s(by_lead, leads, truth, 0.2) == 0.0  # the 0.5 s prediction is already 4 m off
    assert convergence_to_range_s(by_lead, leads, truth, 4.0) == pytest.approx(2.0)  # all of them
    assert convergence_to_range_s(by_lead[::-1], leads, truth, 0.2) == pytest.approx(0.5)  # only the shortest lead
    assert convergence_to_range_s(by_lead[::-1], leads, truth, 2.0) == pytest.approx(1.5)  # leads 0.5 .. 1.5 s
    jump = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    assert convergence_to_range_s(jump, leads, truth, 1.0) == pytest.approx(0.5)  # the 1 s miss stops it
    with pytest.raises(ValueError, match="increasing"):
        convergence_to_range_s(by_lead, leads[::-1], truth, 1.0)
    with pytest.raises(ValueError, match="ground_truth_xy_m"):
        convergence_to_range_s(by_lead, leads, np.zeros(3), 1.0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(-50, 50), st.floats(-50, 50)), min_size=1, max_size=8), st.floats(0.0, 10.0))
def test_convergence_is_monotone_in_tau_and_dispersion_translation_invariant(points: list, tau: float) -> None:
    array = np.array(points)
    leads = (np.arange(len(array)) + 1) * 0.5
    truth = np.array([1.0, -2.0])
    assert convergence_to_range_s(array, leads, truth, tau) <= convergence_to_range_s(array, leads, truth, tau + 1.0)
    assert 0.0 <= convergence_to_range_s(array, leads, truth, tau) <= leads[-1]
    assert dispersion_m(array + [3.0, -7.0]) == pytest.approx(dispersion_m(array), abs=1e-6)


def _forecast(issue_s: float, path: np.ndarray) -> Forecasts:
    other = path + 100.0  # a second, low-score mode that must be ignored
    return Forecasts("log", int(round(issue_s * 1e9)), np.array(["a"]), path[:1], np.stack([path, other])[None],
                     np.array([[0.9, 0.1]]), np.ones(1), np.zeros(1, dtype=np.int64))  # fmt: skip


def test_temporal_consistency_groups_forecasts_by_target_time() -> None:
    # Two steps of 0.5 s. Forecast at 0 s predicts t=0.5 -> (1,0), t=1 -> (2,0); at 0.5 s: t=1 -> (4,0), t=1.5 -> (5,0).
    forecasts = [_forecast(0.0, np.array([[1.0, 0.0], [2.0, 0.0]])), _forecast(0.5, np.array([[4.0, 0.0], [5.0, 0.0]]))]
    truth = {("log", "a", 1000): np.array([3.5, 0.0]), ("log", "a", 1500): np.array([5.0, 0.0])}
    result = temporal_consistency(forecasts, step_s=0.5, ground_truth_xy_m=truth, taus_m=(1.0, 2.0))
    assert result.num_groups == 1  # only t = 1 s is predicted at both lead times (0.5 s and 1 s)
    assert result.dispersion_m == pytest.approx(0.0)  # two points are always equidistant from their barycenter
    assert result.convergence_s[1.0] == pytest.approx(0.5)  # (4,0) is 0.5 m off, (2,0) 1.5 m off
    assert result.convergence_s[2.0] == pytest.approx(1.0)  # both within 2 m
    unknown = temporal_consistency(forecasts, step_s=0.5, ground_truth_xy_m={})
    assert unknown.num_groups == 0 and np.isnan(unknown.dispersion_m)
