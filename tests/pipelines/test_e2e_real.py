"""End-to-end forecasting on the real AV2 sample log (one sweep on disk, annotations at all 156 timestamps)."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
from av2.evaluation.forecasting.eval import convert_forecast_labels, filter_drivable_area, filter_max_dist
from av2.evaluation.forecasting.eval import evaluate as official_evaluate

from forecasting.baselines import ConstantVelocityForecaster
from pipelines.e2e_forecast import E2EForecastConfig, open_e2e_dataset, run_e2e
from pipelines.evaluate_e2e import Av2MapRegionOfInterest, roi_keep_mask
from scenes.records import Boxes3D
from scenes.submissions.av2_e2e_forecasting import ground_truth_from_av2_log

pytestmark = pytest.mark.real

LOG_ID = "adcf7d18-0510-35b0-a2fa-b4cea13a6d76"


@pytest.fixture(scope="module")
def av2_dataset(shared_data):
    cfg = E2EForecastConfig(detector="oracle", tracker="oracle", forecaster="constant_velocity")
    return cfg, open_e2e_dataset(f"av2:{shared_data / 'av2' / 'sensor'}", "val", cfg)


def test_ground_truth_from_adapter_frames_equals_the_organisers_construction(av2_dataset) -> None:
    cfg, dataset = av2_dataset
    result = run_e2e(cfg, dataset, progress=False)
    reference = ground_truth_from_av2_log(dataset.log_dir(LOG_ID))
    ours = result.ground_truth[LOG_ID]
    assert len(reference) == len(ours) == 32  # 156 sweeps at 10 Hz -> every 5th
    for mine, theirs in zip(ours, reference):
        assert mine["timestamp_ns"] == theirs["timestamp_ns"]
        order_mine, order_theirs = np.argsort(mine["track_id"].astype(str)), np.argsort(theirs["track_id"].astype(str))
        np.testing.assert_array_equal(mine["track_id"][order_mine], theirs["track_id"][order_theirs])
        np.testing.assert_allclose(mine["translation_m"][order_mine], theirs["translation_m"][order_theirs], atol=1e-6)
        assert mine["ego_translation_m"] == pytest.approx(theirs["ego_translation_m"])
    # The official evaluator accepts the submission (our ROI filter included) and scores oracle tracks well.
    scores = result.evaluate(cfg)
    assert scores.roi_filtered and scores.per_profile["static"]["REGULAR_VEHICLE"]["mAP_F"] > 0.9
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


def test_lidar_detector_path_processes_the_one_sweep(av2_dataset) -> None:
    """With a LiDAR detector only the frame with a sweep on disk runs; every GT timestamp still gets a key."""
    from perception.detection.config import DetectionConfig
    from perception.detection.detector import Detector

    cfg, dataset = av2_dataset
    lidar_cfg = cfg.model_copy(update={"detector": "lidar"})
    detector = Detector(DetectionConfig())
    result = run_e2e(lidar_cfg, dataset, stages=(detector, _FreshIdentities, ConstantVelocityForecaster()), progress=False)
    assert result.num_sweeps == 1 and result.timings.calls["detection"] == 1
    assert len(result.submission[LOG_ID]) == 32
    result.evaluate(lidar_cfg)


def test_our_roi_keeps_agents_the_official_filter_drops(av2_dataset, shared_data) -> None:
    """G6: the official filter misreads its cuboid columns; ours keeps every in-range GT agent near the road."""
    _, dataset = av2_dataset
    ground_truth = {LOG_ID: ground_truth_from_av2_log(dataset.log_dir(LOG_ID))}
    converted = filter_max_dist(convert_forecast_labels(ground_truth), 50)
    in_range = sum(len(agents) for agents in converted[LOG_ID].values())
    official = filter_drivable_area(copy.deepcopy(converted), str(shared_data / "av2" / "sensor" / "val"))
    official_kept = sum(len(agents) for agents in official[LOG_ID].values())
    roi = Av2MapRegionOfInterest(dataset.log_dir(LOG_ID) / "map")
    ours_kept = sum(int(roi_keep_mask(agents, roi).sum()) for agents in converted[LOG_ID].values())
    assert official_kept < 0.8 * in_range
    assert ours_kept > 0.95 * in_range
