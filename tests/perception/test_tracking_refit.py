"""The tracker refitted on detector outputs: matching to ground truth, robust noise, gates, and the oracle's noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from perception.tracking.config import TrackerConfig
from perception.tracking.refit import DetectedLog, RefitConfig, match_to_ground_truth, refit_tracker, robust_std
from perception.tracking.tracker import Tracker
from pipelines.oracle_detector import OracleDetector, OracleDetectorConfig
from pipelines.tracking_finetune import detected_logs, run_detector
from scenes.categories import CATEGORY_ID
from scenes.geometry import SE3
from scenes.records import Boxes3D

CAR, PEDESTRIAN = CATEGORY_ID["REGULAR_VEHICLE"], CATEGORY_ID["PEDESTRIAN"]


def _boxes(xy: list[tuple[float, float]], category: list[int], ids: list[str] | None = None, yaw: list[float] | None = None) -> Boxes3D:
    n = len(xy)
    return Boxes3D(
        np.column_stack([np.array(xy, dtype=np.float64).reshape(-1, 2), np.zeros(n)]),
        np.tile([4.0, 2.0, 1.5], (n, 1)),
        np.array(yaw if yaw is not None else [0.0] * n),
        np.array(category, dtype=np.int64),
        track_id=None if ids is None else np.array(ids),
    )


def test_matching_is_per_class_gated_and_one_to_one() -> None:
    truth = _boxes([(0, 0), (10, 0), (5, 5)], [CAR, CAR, PEDESTRIAN], ["a", "b", "p"])
    # A car near a, a car near b, a pedestrian far from p, and a car near p (wrong class for p).
    detections = _boxes([(0.5, 0), (9, 0.2), (20, 20), (5, 5.2)], [CAR, CAR, PEDESTRIAN, CAR])
    np.testing.assert_array_equal(match_to_ground_truth(detections, truth, 2.0), [[0, 0], [1, 1]])
    # Two detections of one car: only the nearer is matched.
    double = _boxes([(0.9, 0), (0.2, 0)], [CAR, CAR])
    np.testing.assert_array_equal(match_to_ground_truth(double, truth, 2.0), [[1, 0]])


def test_robust_std_ignores_outliers() -> None:
    rng = np.random.default_rng(0)
    clean = rng.normal(0.0, 0.3, 20_000)
    assert robust_std(clean) == pytest.approx(0.3, rel=0.03)
    polluted = np.concatenate([clean, rng.uniform(-20, 20, 2_000)])
    assert robust_std(polluted) == pytest.approx(0.3, rel=0.15)
    assert np.std(polluted) > 3.0


def _straight_log(noise_m: float, flip_rate: float, seed: int = 0, frames: int = 60) -> DetectedLog:
    """Two cars driving +x at 10 m/s (1 m per 0.1 s frame), detected with Gaussian jitter and heading flips; the ego
    drives +x at 5 m/s, so ego-frame positions differ from city ones."""
    rng = np.random.default_rng(seed)
    poses, detections, annotations = [], [], []
    for k in range(frames):
        poses.append(SE3(np.eye(3), np.array([0.5 * k, 0.0, 0.0])))
        ego = np.array([[k * 1.0, 0.0], [k * 1.0, 4.0]]) - [0.5 * k, 0.0]
        annotations.append(_boxes([tuple(p) for p in ego], [CAR, CAR], ["a", "b"]))
        flips = rng.random(2) < flip_rate
        measured = ego + rng.normal(0.0, noise_m, size=(2, 2))
        detections.append(_boxes([tuple(p) for p in measured], [CAR, CAR], yaw=list(np.pi * flips + rng.normal(0.0, 0.05, 2))))
    return DetectedLog("log", np.arange(frames, dtype=np.int64) * 100_000_000, tuple(poses), tuple(detections), tuple(annotations))


def test_refit_measures_detection_noise_flips_and_gates() -> None:
    log = _straight_log(noise_m=0.25, flip_rate=0.1)
    tracker, summary = refit_tracker(TrackerConfig(min_score=0.0), [log], RefitConfig(min_samples=20))
    assert tracker.noise.position_m == pytest.approx(0.25, rel=0.15)
    assert tracker.noise.yaw_rad == pytest.approx(0.05, rel=0.25)  # flips are not heading noise (modulo pi)
    assert summary["flip_rate"] == pytest.approx(0.1, abs=0.05)
    assert summary["recall"] == summary["precision"] == 1.0
    # Consecutive detections of one car are 1 m apart plus sqrt(2) x 0.25 m jitter per axis: the 99th percentile lies
    # well above 1 m and below 1 + 4 x 0.5 m; the configured gate (2 m) is a floor.
    assert 2.0 <= tracker.gate_m("REGULAR_VEHICLE") < 3.0
    # Process noise came from the ground truth: constant velocity, so the fitted acceleration is ~0.
    assert tracker.noise.acceleration_m_per_s2 < 0.01


def test_refit_recovers_the_oracle_detector_noise() -> None:
    from pipelines.e2e_forecast import E2EForecastConfig
    from scenes.adapters.registry import open_dataset

    noise = OracleDetectorConfig(center_noise_m=0.3, yaw_noise_rad=0.05, yaw_flip_rate=0.1, miss_rate=0.1, false_positives_per_frame=2.0, seed=3)
    stack = E2EForecastConfig(detector="oracle", oracle=noise)
    dataset = open_dataset("synth", logs=1, seed=5, seconds=4.0, lidar_beams=None, cameras=())
    outputs = run_detector(stack, dataset, progress=False)
    (log,) = detected_logs(outputs)
    tracker, summary = refit_tracker(TrackerConfig(min_score=0.0), [log], RefitConfig())
    assert tracker.noise.position_m == pytest.approx(0.3, rel=0.2)
    assert tracker.noise.yaw_rad == pytest.approx(0.05, rel=0.3)
    assert summary["flip_rate"] == pytest.approx(0.1, abs=0.05)
    assert summary["recall"] == pytest.approx(0.9, abs=0.06)
    assert summary["precision"] < 0.99  # the false boxes (2 per frame among dozens of objects)


def test_oracle_false_positives_and_noise_are_seeded() -> None:
    from scenes.adapters.registry import open_dataset

    dataset = open_dataset("synth", logs=1, seed=5, seconds=1.0, lidar_beams=None, cameras=())
    frame = next(iter(dataset.frames(dataset.logs()[0])))
    assert frame.annotations is not None and len(frame.annotations) > 0
    cfg = OracleDetectorConfig(false_positives_per_frame=5.0, size_noise_fraction=0.1, seed=1)
    first, again = OracleDetector(cfg).run(frame), OracleDetector(cfg).run(frame)
    np.testing.assert_array_equal(first.center_m, again.center_m)
    assert first.track_id is not None and first.score is not None
    false = np.char.startswith(first.track_id.astype(str), "false-")
    assert false.sum() == len(first) - len(frame.annotations) > 0
    assert np.all(np.linalg.norm(first.center_m[false, :2], axis=1) <= cfg.false_positive_range_m)
    assert np.all(first.score[false] < cfg.false_positive_max_score)
    assert not np.allclose(first.size_lwh_m[~false], frame.annotations.size_lwh_m)


def test_finetune_tracking_cli_writes_a_loadable_tracker(tmp_path: Path) -> None:
    from pipelines.cli import app

    config = tmp_path / "refit.yaml"
    config.write_text(
        "stack:\n  detector: oracle\n  oracle:\n    center_noise_m: 0.4\n    seed: 2\n"
        "train_split:\n  logs: 1\n  seconds: 3.0\n  seed: 4\n  lidar_beams: null\n"
    )
    result = CliRunner().invoke(app, ["finetune", "tracking", "--config", str(config), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert Tracker.from_checkpoint(tmp_path / "run" / "tracker.pt").cfg.noise.position_m == pytest.approx(0.4, rel=0.25)
