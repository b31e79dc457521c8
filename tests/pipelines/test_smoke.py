"""Smoke tests of the default path: every shipped checkpoint loads through its stage's public loader, and the
installed `drivestack e2e-forecast` with its default stages (shipped detector, tracker and finetuned forecaster)
scores a minimum mAP_F on a tiny synthetic split.

Only public entry points are used (the console script, `X.from_checkpoint(path)` and the `SHIPPED_*` constants), so
refactors of the checkpoint format or of the e2e modules do not touch these tests; a broken default path does.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from forecasting.forecaster import SHIPPED_CHECKPOINT as SHIPPED_FORECASTER
from forecasting.forecaster import SHIPPED_E2E_CHECKPOINT as SHIPPED_E2E_FORECASTER
from forecasting.forecaster import Forecaster
from perception.detection.detector import SHIPPED_CHECKPOINT as SHIPPED_DETECTOR
from perception.detection.detector import Detector
from perception.tracking.tracker import SHIPPED_CHECKPOINT as SHIPPED_TRACKER
from perception.tracking.tracker import Tracker, load_tracker_config
from scenes.submissions.av2_e2e_forecasting import read_submission

# The tiny split: one synthetic log of 3 s (30 LiDAR sweeps at 10 Hz, forecasts at 6 timestamps at 2 Hz); the default
# seed (1000) is held out from training. Every other setting is the CLI's default.
SPLIT_SECONDS = 3.0
SPLIT_YAML = f"synth:\n  logs: 1\n  seconds: {SPLIT_SECONDS}\n"
# Measured mean mAP_F on that split: 0.280 (the same in repeated runs: the split and the stages are deterministic);
# 0.314 on the same split without street clutter (`SynthConfig.street_clutter`), whose false positives cost the
# static pedestrian cell most (0.219 -> 0.083). Six cells are scored, one of them the static SIGN cell at 0 (the
# detector has no static-object task). Earlier, other seeds of the same size gave 0.31-0.59 without clutter, a randomly
# initialised forecaster 0.12-0.18 and an untrained detector 0.0. The floor sits under the measurement and above the
# broken stacks.
MIN_MEAN_MAP_F = 0.22


def installed_drivestack() -> Path:
    """The `drivestack` console script of the environment running the tests (fails, not skips, when absent)."""
    script = Path(sys.executable).parent / "drivestack"
    if not script.is_file() or not os.access(script, os.X_OK):
        pytest.fail(f"console script {script} is missing or not executable: install the package (`make install`)")
    return script


def test_shipped_detector_loads() -> None:
    detector = Detector.from_checkpoint(SHIPPED_DETECTOR)
    assert isinstance(detector, Detector)
    assert detector.past_sweeps >= 0  # the e2e job hands it this many previous sweeps


def test_shipped_tracker_loads() -> None:
    tracker = Tracker.from_checkpoint(SHIPPED_TRACKER)
    assert isinstance(tracker, Tracker) and len(tracker) == 0  # no tracks before the first step
    assert tracker.cfg == load_tracker_config()  # it is the tracker the e2e job uses by default


@pytest.mark.parametrize("path", [SHIPPED_FORECASTER, SHIPPED_E2E_FORECASTER], ids=["lane_goals_synth", "lane_goals_synth_e2e"])
def test_shipped_forecasters_load_with_the_av2_e2e_horizon(path: Path) -> None:
    forecaster = Forecaster.from_checkpoint(path)
    assert isinstance(forecaster, Forecaster)
    # AV2 end-to-end forecasting: K=5 trajectories of 6 steps 0.5 s apart.
    assert (forecaster.cfg.model.num_modes, forecaster.cfg.features.horizon_steps, forecaster.cfg.features.step_s) == (5, 6, 0.5)


def test_shipped_e2e_forecaster_is_the_finetuned_one_not_a_copy() -> None:
    pretrained, finetuned = Forecaster.from_checkpoint(SHIPPED_FORECASTER), Forecaster.from_checkpoint(SHIPPED_E2E_FORECASTER)
    assert finetuned.cfg.model == pretrained.cfg.model and finetuned.cfg.features == pretrained.cfg.features
    before, after = pretrained.network.state_dict(), finetuned.network.state_dict()
    assert before.keys() == after.keys() and any(not torch.equal(before[name], after[name]) for name in before)


@pytest.mark.slow
def test_default_e2e_forecast_job_reaches_a_minimum_map_f(tmp_path: Path) -> None:
    """About 10-15 s on 2 busy cores: simulation, 30 detector and tracker steps, 6 forecasts, the official evaluator."""
    config = tmp_path / "tiny.yaml"
    config.write_text(SPLIT_YAML)
    out = tmp_path / "submission.pkl"
    # One line per message in rich's output; one torch thread: `make test` runs two xdist workers on 2 cores, and two
    # intra-op threads per process there made detection ~14x slower (spinning OpenMP workers), with the same scores.
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [str(installed_drivestack()), "e2e-forecast", "--out", str(out), "--evaluate", "--config", str(config)],
        capture_output=True, text=True, check=False, env=env, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-4000:]
    # The job went through every simulated sweep of the split.
    assert re.search(rf"\b{int(SPLIT_SECONDS * 10)} sweeps processed\b", completed.stderr), completed.stderr[-4000:]

    submission = read_submission(out)
    ((_, frames),) = submission.items()
    stamps = sorted(frames)
    assert len(stamps) == int(SPLIT_SECONDS * 2) and np.all(np.diff(stamps) == 500_000_000)
    agents = [agent for timestamp in stamps for agent in frames[timestamp]]
    assert len(agents) > 0 and all(agent["prediction_m"].shape == (5, 6, 2) for agent in agents)
    assert (tmp_path / "submission_bev.png").is_file()

    scores_path = tmp_path / "submission_scores.json"  # `--evaluate` writes the scores beside the submission
    scores = json.loads(scores_path.read_text())
    assert scores["settings"] == {"top_k": 5, "max_range_m": 50, "roi_filtered": True}
    mean_map_f = scores["mean_mAP_F"]
    assert isinstance(mean_map_f, float) and math.isfinite(mean_map_f)
    assert mean_map_f >= MIN_MEAN_MAP_F, json.dumps(scores)
    assert scores["static"]["REGULAR_VEHICLE"]["mAP_F"] is not None  # the split has parked cars, and they were scored
