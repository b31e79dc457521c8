"""End-to-end forecasting on the real AV2 sample log (one sweep on disk, annotations at all 156 timestamps)."""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from av2.evaluation.forecasting.eval import convert_forecast_labels, filter_drivable_area, filter_max_dist
from av2.evaluation.forecasting.eval import evaluate as official_evaluate

from forecasting.baselines import ConstantVelocityForecaster
from pipelines.e2e_forecast import E2EForecastConfig, open_e2e_dataset, run_e2e
from pipelines.evaluate_e2e import E2EForecastingScores, roi_keep_mask
from scenes.records import Boxes3D
from scenes.submissions.av2_e2e_forecasting import Sequences, ground_truth_from_av2_log

pytestmark = pytest.mark.real

LOG_ID = "adcf7d18-0510-35b0-a2fa-b4cea13a6d76"


@pytest.fixture(scope="module")
def av2_dataset(shared_data):
    cfg = E2EForecastConfig(detector="oracle", tracker="oracle", forecaster="constant_velocity")
    return cfg, open_e2e_dataset(f"av2:{shared_data / 'av2' / 'sensor'}", "val", cfg)


@pytest.fixture(scope="module")
def oracle_result(av2_dataset):
    cfg, dataset = av2_dataset
    return run_e2e(cfg, dataset, progress=False)


def evaluated_cells(scores: E2EForecastingScores) -> dict[tuple[str, str], dict[str, float]]:
    """The (profile, category) cells the evaluator scored (the others are NaN: no such GT agent)."""
    return {(profile, category): cell for profile, cells in scores.per_profile.items() for category, cell in cells.items() if not math.isnan(cell["mAP_F"])}


def gt_agents(ground_truth: Sequences) -> list[tuple[str, int, list[str]]]:
    return [(log_id, frame["timestamp_ns"], sorted(frame["track_id"].tolist())) for log_id, frames in ground_truth.items() for frame in frames]


def test_ground_truth_from_adapter_frames_equals_the_organisers_construction(av2_dataset, oracle_result) -> None:
    cfg, dataset = av2_dataset
    result = oracle_result
    reference = ground_truth_from_av2_log(dataset.log_dir(LOG_ID))
    ours = result.ground_truth[LOG_ID]
    assert len(reference) == len(ours) == 32  # 156 sweeps at 10 Hz -> every 5th
    for mine, theirs in zip(ours, reference, strict=True):
        assert mine["timestamp_ns"] == theirs["timestamp_ns"]
        order_mine, order_theirs = np.argsort(mine["track_id"].astype(str)), np.argsort(theirs["track_id"].astype(str))
        np.testing.assert_array_equal(mine["track_id"][order_mine], theirs["track_id"][order_theirs])
        np.testing.assert_allclose(mine["translation_m"][order_mine], theirs["translation_m"][order_theirs], atol=1e-6)
        assert mine["ego_translation_m"] == pytest.approx(theirs["ego_translation_m"])
    # The official evaluator accepts the submission (our ROI filter included) and scores oracle tracks well.
    scores = result.evaluate(cfg)
    assert scores.roi_filtered and (scores.top_k, scores.max_range_m) == (5, 50)
    static_vehicle = scores.per_profile["static"]["REGULAR_VEHICLE"]
    assert static_vehicle["mAP_F"] > 0.9
    # Oracle boxes of parked cars under constant velocity stay put: decimetre errors, far from the 50 m miss penalty.
    assert static_vehicle["ADE"] < 0.25 and static_vehicle["FDE"] < 0.4
    # Constant velocity is exact on linear motion up to the annotations' jitter: most moving vehicles are matched.
    assert scores.per_profile["linear"]["REGULAR_VEHICLE"]["mAP_F"] > 0.5
    cells = evaluated_cells(scores)
    assert {("static", "REGULAR_VEHICLE"), ("linear", "REGULAR_VEHICLE"), ("static", "PEDESTRIAN")} <= cells.keys()
    assert all(0.0 <= cell["mAP_F"] <= 1.0 for cell in cells.values())
    assert scores.mean_mAP_F > 0.7  # perfect detections and identities: only the forecaster's errors remain
    official = official_evaluate(copy.deepcopy(result.submission), copy.deepcopy(result.ground_truth), 5, 50, None)
    assert official["static"]["REGULAR_VEHICLE"]["mAP_F"] > 0.9


class _FreshIdentities:
    """A stand-in tracker giving every detection a new identity (this test checks frame plumbing, not association)."""

    def __init__(self) -> None:
        self.count = 0

    def step(self, detections_city: Boxes3D, timestamp_ns: int) -> Boxes3D:
        ids = np.array([f"det-{self.count + i}" for i in range(len(detections_city))], dtype=str)
        self.count += len(detections_city)
        return replace(detections_city, track_id=ids)


def test_lidar_detector_path_processes_the_one_sweep(av2_dataset, oracle_result) -> None:
    """With a LiDAR detector only the frame with a sweep on disk runs; every GT timestamp still gets a key."""
    from perception.detection.config import DetectionConfig
    from perception.detection.detector import Detector

    cfg, dataset = av2_dataset
    lidar_cfg = cfg.model_copy(update={"detector": "lidar"})
    torch.manual_seed(0)
    detector = Detector(DetectionConfig())  # untrained: heatmaps sit near their 0.01 prior, under the 0.1 score threshold
    result = run_e2e(lidar_cfg, dataset, stages=(detector, _FreshIdentities, ConstantVelocityForecaster()), progress=False)
    assert result.num_sweeps == 1 and result.timings.calls["detection"] == 1
    (sweep_ns,) = [frame.timestamp_ns for frame in dataset.frames(LOG_ID) if frame.lidar is not None]
    assert [set(log.forecasts) for log in result.logs] == [{sweep_ns}]
    assert len(result.submission[LOG_ID]) == 32
    assert sum(len(agents) for agents in result.submission[LOG_ID].values()) == 0
    # The annotations enter the GT whether or not a sweep exists: the same agents at the same timestamps as the oracle's.
    assert gt_agents(result.ground_truth) == gt_agents(oracle_result.ground_truth) and len(gt_agents(result.ground_truth)) == 32
    # An empty submission against that GT: every agent is a miss, so mAP_F is 0 and ADE = FDE = the 50 m miss penalty,
    # on exactly the (profile, category) cells the oracle run was scored on (the GT decides which cells exist).
    scores = result.evaluate(lidar_cfg)
    cells = evaluated_cells(scores)
    assert cells.keys() == evaluated_cells(oracle_result.evaluate(cfg)).keys()
    assert all(cell == {"mAP_F": 0.0, "ADE": 50.0, "FDE": 50.0} for cell in cells.values()), cells
    assert scores.roi_filtered and scores.mean_mAP_F == 0.0


def test_our_roi_keeps_agents_the_official_filter_drops(av2_dataset, shared_data) -> None:
    """G6: the official filter misreads its cuboid columns; ours keeps every in-range GT agent near the road."""
    _, dataset = av2_dataset
    ground_truth = {LOG_ID: ground_truth_from_av2_log(dataset.log_dir(LOG_ID))}
    converted = filter_max_dist(convert_forecast_labels(ground_truth), 50)
    in_range = sum(len(agents) for agents in converted[LOG_ID].values())
    official = filter_drivable_area(copy.deepcopy(converted), str(shared_data / "av2" / "sensor" / "val"))
    official_kept = sum(len(agents) for agents in official[LOG_ID].values())
    roi = dataset.region_of_interest(LOG_ID)
    assert roi is not None
    ours_kept = sum(int(roi_keep_mask(agents, roi).sum()) for agents in converted[LOG_ID].values())
    assert official_kept < 0.8 * in_range
    assert ours_kept > 0.95 * in_range
