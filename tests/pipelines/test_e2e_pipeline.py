"""End-to-end forecasting pipeline: oracle detector, static mode, a run on a tiny synthetic split, the CLI job."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest
from av2.evaluation.forecasting.eval import evaluate as official_evaluate
from typer.testing import CliRunner

from forecasting.baselines import ConstantVelocityForecaster
from forecasting.config import FeatureConfig
from forecasting.dataset import FeatureBatch
from forecasting.forecaster import GridForecaster
from pipelines.cli import app
from pipelines.e2e_forecast import E2EForecastConfig, SynthSplitConfig, open_e2e_dataset, reforecast, run_e2e
from pipelines.e2e_postprocess import apply_static_mode
from pipelines.oracle_detector import OracleDetector, OracleDetectorConfig, OracleTracker
from scenes.categories import CATEGORY_ID
from scenes.geometry import SE3
from scenes.records import Boxes3D, Forecasts, Frame
from scenes.submissions.av2_e2e_forecasting import read_submission

TINY = SynthSplitConfig(logs=1, seconds=5.0, seed=7, lidar_beams=None)


def _annotated_frame(timestamp_ns: int, count: int = 200) -> Frame:
    rng = np.random.default_rng(0)
    boxes = Boxes3D(
        rng.uniform(-40, 40, size=(count, 3)),
        np.tile([4.0, 2.0, 1.5], (count, 1)),
        np.zeros(count),
        np.zeros(count, dtype=np.int64),
        track_id=np.array([f"t{i}" for i in range(count)]),
        num_interior_pts=np.where(np.arange(count) % 10 == 0, 0, 5),
    )
    return Frame("log", timestamp_ns, SE3.from_yaw(0.3, [100.0, 5.0, 0.0]), annotations=boxes)


def test_oracle_detector_is_exact_without_noise_and_seeded_with_it() -> None:
    frame = _annotated_frame(5)
    exact = OracleDetector().run(frame)
    assert frame.annotations is not None and frame.annotations.num_interior_pts is not None
    visible = frame.annotations.num_interior_pts > 0
    np.testing.assert_array_equal(exact.center_m, frame.annotations.center_m[visible])
    assert np.all(exact.score == 1.0)

    cfg = OracleDetectorConfig(center_noise_m=0.5, miss_rate=0.25, seed=3)
    first, again = OracleDetector(cfg).run(frame), OracleDetector(cfg).run(frame)
    np.testing.assert_array_equal(first.center_m, again.center_m)
    assert not np.array_equal(first.center_m, OracleDetector(cfg.model_copy(update={"seed": 4})).run(frame).center_m)
    assert 0.6 < len(first) / visible.sum() < 0.9  # about 75% kept
    assert frame.annotations.track_id is not None and first.track_id is not None
    kept = np.isin(frame.annotations.track_id, first.track_id)
    error = first.center_m[:, :2] - frame.annotations.center_m[kept, :2]
    assert 0.35 < error.std() < 0.65 and np.allclose(first.center_m[:, 2], frame.annotations.center_m[kept, 2])
    # Better-localised boxes get higher scores.
    assert np.corrcoef(np.linalg.norm(error, axis=1), first.score)[0, 1] < -0.9


def test_oracle_tracker_needs_identities() -> None:
    boxes = OracleDetector().run(_annotated_frame(5)).transformed(SE3(), "city")
    assert OracleTracker().step(boxes, 5) is boxes
    with pytest.raises(ValueError, match="track_id"):
        OracleTracker().step(Boxes3D.empty("city"), 5)


def test_static_mode_freezes_static_categories_only() -> None:
    categories = np.array([CATEGORY_ID["BOLLARD"], CATEGORY_ID["REGULAR_VEHICLE"], CATEGORY_ID["CONSTRUCTION_CONE"]])
    current = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    trajectories = current[:, None, None, :] + np.arange(1, 7)[None, None, :, None] * np.array([0.3, 0.0])
    trajectories = np.repeat(trajectories, 5, axis=1)
    forecasts = Forecasts("log", 1, np.array(["a", "b", "c"]), current, trajectories, np.full((3, 5), 0.2), np.ones(3), categories)
    frozen = apply_static_mode(forecasts)
    np.testing.assert_array_equal(frozen.trajectories_m[0], np.broadcast_to(current[0], (5, 6, 2)))
    np.testing.assert_array_equal(frozen.trajectories_m[2], np.broadcast_to(current[2], (5, 6, 2)))
    np.testing.assert_array_equal(frozen.trajectories_m[1], trajectories[1])
    np.testing.assert_array_equal(frozen.mode_scores, forecasts.mode_scores)
    assert apply_static_mode(forecasts, static_categories=()) is forecasts


@pytest.fixture(scope="module")
def tiny_runs():
    exact_cfg = E2EForecastConfig(detector="oracle", tracker="oracle", forecaster="constant_velocity", synth=TINY)
    noisy_cfg = exact_cfg.model_copy(update={"oracle": OracleDetectorConfig(center_noise_m=1.0, miss_rate=0.3)})
    dataset = open_e2e_dataset(None, "val", exact_cfg)
    return exact_cfg, run_e2e(exact_cfg, dataset, progress=False), run_e2e(noisy_cfg, dataset, progress=False)


def test_pipeline_on_a_tiny_synthetic_log(tiny_runs) -> None:
    cfg, exact, noisy = tiny_runs
    (log_id,) = exact.ground_truth
    gt_stamps = [frame["timestamp_ns"] for frame in exact.ground_truth[log_id]]
    assert list(exact.submission[log_id]) == gt_stamps  # one key per evaluated (log, timestamp), 2 Hz
    assert np.all(np.diff(gt_stamps) == 500_000_000)
    assert exact.num_sweeps == int(TINY.seconds * 10) and exact.timings.calls["forecasting"] == len(gt_stamps)
    agent = next(a for agents in exact.submission[log_id].values() for a in agents)
    assert agent["prediction_m"].shape == (5, 6, 2)
    official = official_evaluate(copy.deepcopy(exact.submission), copy.deepcopy(exact.ground_truth), 5, 50, None)
    scores = exact.evaluate(cfg)
    for profile, cells in scores.per_profile.items():
        for category, cell in cells.items():
            assert cell == pytest.approx(official[profile][category], nan_ok=True)
    # Detection noise and misses can only hurt end-to-end forecasting.
    assert noisy.evaluate(cfg).mean_mAP_F < scores.mean_mAP_F


class _StandStill(GridForecaster):
    """Every agent stays where it is (five equally likely modes)."""

    def __init__(self) -> None:
        super().__init__(FeatureConfig(history_steps=2, horizon_steps=6, step_s=0.5, max_neighbors=0, max_lanes=0))

    def predict(self, batch: FeatureBatch) -> tuple[np.ndarray, np.ndarray]:
        return np.broadcast_to(batch.origin_xy_m[:, None, None, :], (len(batch), 5, 6, 2)).copy(), np.full((len(batch), 5), 0.2)


def test_reforecast_equals_rerunning_the_stack_with_the_other_forecaster(tiny_runs) -> None:
    cfg, exact, _ = tiny_runs
    again = reforecast(cfg, exact, ConstantVelocityForecaster())
    assert again.submission.keys() == exact.submission.keys()
    for log_id, frames in exact.submission.items():
        for timestamp_ns, agents in frames.items():
            for mine, theirs in zip(again.submission[log_id][timestamp_ns], agents, strict=True):
                np.testing.assert_array_equal(mine["prediction_m"], theirs["prediction_m"])
    # Another forecaster on the same tracks gives exactly what a full run with it gives; detection is not rerun.
    still = reforecast(cfg, exact, _StandStill())
    rerun = run_e2e(cfg, open_e2e_dataset(None, "val", cfg), stages=(OracleDetector(), OracleTracker, _StandStill()), progress=False)
    assert "detection" not in still.timings.calls and still.timings.calls["forecasting"] == exact.timings.calls["forecasting"]
    (log_id,) = rerun.submission
    for timestamp_ns, agents in rerun.submission[log_id].items():
        still_agents = still.submission[log_id][timestamp_ns]
        assert [a["current_translation_m"].tolist() for a in still_agents] == [a["current_translation_m"].tolist() for a in agents]
        for a, b in zip(still_agents, agents, strict=True):
            np.testing.assert_array_equal(a["prediction_m"], b["prediction_m"])
            np.testing.assert_array_equal(a["prediction_m"][:, -1], np.broadcast_to(a["current_translation_m"], (5, 2)))
    assert still.evaluate(cfg).mean_mAP_F != exact.evaluate(cfg).mean_mAP_F


def test_cli_job_writes_submission_plot_and_scores(tmp_path) -> None:
    config = tmp_path / "e2e.yaml"
    config.write_text("detector: oracle\ntracker: oracle\nsynth:\n  logs: 1\n  seconds: 4.0\n  seed: 7\n  lidar_beams: null\n")
    out = tmp_path / "sub.pkl"
    result = CliRunner().invoke(app, ["e2e-forecast", "--out", str(out), "--evaluate", "--config", str(config)])
    assert result.exit_code == 0, result.output
    submission = read_submission(out)
    ((_, frames),) = submission.items()
    assert len(frames) == 8  # 4 s of 10 Hz sweeps, forecast at 2 Hz
    assert (tmp_path / "sub_bev.png").stat().st_size > 10_000
    scores = json.loads((tmp_path / "sub_scores.json").read_text())
    assert scores["settings"] == {"top_k": 5, "max_range_m": 50, "roi_filtered": True}
    cells = [cell["mAP_F"] for profile in ("static", "linear", "non-linear") for cell in scores[profile].values()]
    assert scores["mean_mAP_F"] == pytest.approx(np.mean([value for value in cells if value is not None]))
    assert scores["mean_mAP_F"] > 0.7  # oracle boxes and identities: only the learned forecaster's errors remain
    # constant velocity is scored on the same tracks beside the learned forecaster, as a run with it would score it
    baseline = scores["constant_velocity_same_tracks"]
    assert f"FDE {scores['mean_FDE']:.3f} vs {baseline['mean_FDE']:.3f}" in " ".join(result.output.split())
    config.write_text(config.read_text() + "forecaster: constant_velocity\n")
    assert CliRunner().invoke(app, ["e2e-forecast", "--out", str(out), "--evaluate", "--config", str(config)]).exit_code == 0
    alone = json.loads((tmp_path / "sub_scores.json").read_text())
    assert "constant_velocity_same_tracks" not in alone
    for metric in ("mean_mAP_F", "mean_ADE", "mean_FDE"):
        assert alone[metric] == pytest.approx(baseline[metric])
    assert alone["mean_FDE"] != pytest.approx(scores["mean_FDE"])
    config.write_text("tracker: oracle\nforecaster: kalman\n")
    bad = CliRunner().invoke(app, ["e2e-forecast", "--out", str(out), "--config", str(config)])
    assert bad.exit_code == 2  # an expected error: one line on stderr, no traceback
    assert re.fullmatch(r"error: .*e2e\.yaml: key 'forecaster': Input should be 'learned' or 'constant_velocity' \(got 'kalman'\)\n", bad.stderr)
