"""nuScenes prediction writer + the devkit's `compute_metrics` on a tiny hand-built nuScenes DB."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forecasting.evaluate import evaluate_predictions
from forecasting.metrics import DrivableArea
from scenes.records import Forecasts, LaneGraph
from scenes.submissions.nuscenes_prediction import prediction_records, read_predictions, write_predictions

VERSION = "v1.0-mini"
NUM_SAMPLES = 16
SPEED_M_PER_S = 4.0


def _write_db(root: Path) -> dict[str, np.ndarray]:
    """One scene of 16 key frames at 2 Hz; two cars drive along +x at 4 m/s from y = 0 and y = 10."""
    tables: dict[str, list[dict]] = {name: [] for name in (
        "category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor", "ego_pose", "log", "scene",
        "sample", "sample_data", "sample_annotation", "map")}  # fmt: skip
    tables["category"].append({"token": "cat", "name": "vehicle.car", "description": ""})
    tables["log"].append({"token": "log", "logfile": "l", "vehicle": "v", "date_captured": "2020-01-01", "location": "boston-seaport"})
    (root / "maps").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "maps" / "m.png")
    tables["map"].append({"token": "map", "log_tokens": ["log"], "category": "semantic_prior", "filename": "maps/m.png"})
    samples = [f"s{i}" for i in range(NUM_SAMPLES)]
    tables["scene"].append({"token": "scene", "name": "scene-0001", "description": "", "log_token": "log",
                            "nbr_samples": NUM_SAMPLES, "first_sample_token": samples[0], "last_sample_token": samples[-1]})
    for i, token in enumerate(samples):
        tables["sample"].append({"token": token, "timestamp": 1_000_000 + i * 500_000, "scene_token": "scene",
                                 "prev": samples[i - 1] if i else "", "next": samples[i + 1] if i + 1 < NUM_SAMPLES else ""})
    truth = {}
    for instance, y in (("car_a", 0.0), ("car_b", 10.0)):
        annotations = [f"{instance}_{i}" for i in range(NUM_SAMPLES)]
        tables["instance"].append({"token": instance, "category_token": "cat", "nbr_annotations": NUM_SAMPLES,
                                   "first_annotation_token": annotations[0], "last_annotation_token": annotations[-1]})
        xy = np.stack([SPEED_M_PER_S * 0.5 * np.arange(NUM_SAMPLES), np.full(NUM_SAMPLES, y)], axis=1)
        truth[instance] = xy
        for i, token in enumerate(annotations):
            tables["sample_annotation"].append({
                "token": token, "sample_token": samples[i], "instance_token": instance, "attribute_tokens": [],
                "visibility_token": "", "translation": [xy[i, 0], xy[i, 1], 0.0], "size": [1.9, 4.5, 1.6],
                "rotation": [1.0, 0.0, 0.0, 0.0], "num_lidar_pts": 10, "num_radar_pts": 0,
                "prev": annotations[i - 1] if i else "", "next": annotations[i + 1] if i + 1 < NUM_SAMPLES else ""})
    (root / VERSION).mkdir()
    for name, records in tables.items():
        (root / VERSION / f"{name}.json").write_text(json.dumps(records))
    return truth


def _forecasts(truth: dict[str, np.ndarray], offset_m: float) -> Forecasts:
    """Three modes per agent at sample s1: the truth shifted along y by +offset (best score), 0 (middle), +5 m."""
    agents = sorted(truth)
    future = np.stack([truth[agent][2:14] for agent in agents])  # (A, 12, 2): samples s2..s13
    shift = np.array([[0.0, offset_m], [0.0, 0.0], [0.0, 5.0]])
    trajectories = future[:, None] + shift[None, :, None, :]
    return Forecasts(
        "log", 1_500_000_000, np.array(agents), np.stack([truth[a][1] for a in agents]), trajectories,
        np.tile([0.5, 0.3, 0.2], (len(agents), 1)), np.ones(len(agents)), np.zeros(len(agents), dtype=np.int64),
    )  # fmt: skip


def test_writer_and_official_metrics_on_a_tiny_db(tmp_path: Path) -> None:
    truth = _write_db(tmp_path / "nuscenes")
    records = prediction_records(_forecasts(truth, offset_m=3.0), "s1")
    assert [record["instance"] for record in records] == ["car_a", "car_b"]
    assert np.array(records[0]["prediction"]).shape == (3, 12, 2)
    path = write_predictions(records, tmp_path / "submission.json")
    loaded = read_predictions(path)
    assert loaded == records
    drivable = DrivableArea.from_lane_graph(_road_lane_graph())
    metrics = evaluate_predictions(loaded, tmp_path / "nuscenes", VERSION, drivable_areas={"boston-seaport": drivable})
    # Top-1 mode is 3 m off everywhere: ADE = FDE = 3, a miss; with k >= 2 the exact middle mode is found.
    assert metrics["MinADEK"]["RowMean"] == pytest.approx([3.0, 0.0, 0.0])
    assert metrics["MinFDEK"]["RowMean"] == pytest.approx([3.0, 0.0, 0.0])
    assert metrics["MissRateTopK_2"]["RowMean"] == pytest.approx([1.0, 0.0, 0.0])
    # The road spans y in [-2, 12]: car_a's +5 m mode stays on it, car_b's +3 m and +5 m modes leave it.
    assert metrics["OffRoadRate"]["RowMean"] == pytest.approx([(0 + 2) / 6])


def test_writer_rejects_wrong_horizon_and_short_futures(tmp_path: Path) -> None:
    truth = _write_db(tmp_path / "nuscenes")
    forecasts = _forecasts(truth, offset_m=0.0)
    short = Forecasts(
        forecasts.log_id, forecasts.timestamp_ns, forecasts.agent_ids, forecasts.current_xy_m,
        forecasts.trajectories_m[:, :, :6], forecasts.mode_scores, forecasts.detection_score, forecasts.category,
    )  # fmt: skip
    with pytest.raises(ValueError, match="12"):
        prediction_records(short, "s1")
    late = prediction_records(forecasts, "s10")  # only 5 future key frames remain after s10
    with pytest.raises(ValueError, match="future annotations"):
        evaluate_predictions(late, tmp_path / "nuscenes", VERSION)
    with pytest.raises(ValueError, match="prediction 0 is invalid"):
        write_predictions([{"instance": "a", "sample": "s1", "prediction": [[[0, 0]]], "probabilities": 0.5}], tmp_path / "x.json")


def _road_lane_graph() -> LaneGraph:
    lane = np.array([[[-100.0, 0.0, 0.0], [100.0, 0.0, 0.0]]])
    road = np.array([[-100.0, -2.0, 0.0], [100.0, -2.0, 0.0], [100.0, 12.0, 0.0], [-100.0, 12.0, 0.0]])
    return LaneGraph("boston-seaport", np.array([1]), lane, ((),), np.array([-1]), np.array([-1]), np.array([False]), (road,))


def test_training_samples_from_the_nuscenes_adapter(tmp_path: Path) -> None:
    from forecasting.config import FeatureConfig, ForecastingConfig
    from forecasting.sources import training_samples

    _write_db(tmp_path / "nuscenes")
    cfg = ForecastingConfig(features=FeatureConfig(history_steps=5, horizon_steps=12, step_s=0.5))
    samples = training_samples(cfg, f"nuscenes:{tmp_path / 'nuscenes'}", progress=False)
    # Key frames 0..3 leave a full 6 s future for both cars (16 key frames); 4 m/s = 2 m per 0.5 s step along +x.
    assert len(samples) == 8
    np.testing.assert_allclose(samples.future_m, np.broadcast_to(np.stack([2.0 * np.arange(1, 13), np.zeros(12)], 1), (8, 12, 2)), atol=1e-5)
    assert samples.neighbor_mask[:, 0].all()  # each car sees the other one, 10 m away
