"""Speed of the forecasting stage: `Forecaster.run` on one timestamp of a synthetic log (all agents present)."""

from __future__ import annotations

import torch

from benchmarks.harness import Result, measure
from forecasting.baselines import ConstantVelocityForecaster
from forecasting.config import ForecastingConfig
from forecasting.dataset import scenarios_from_tracks
from forecasting.forecaster import Forecaster
from scenes.synth.world import SynthConfig, simulate_log


def run() -> list[Result]:
    torch.set_num_threads(1)
    log = simulate_log(SynthConfig(seconds=10.0, lidar_beams=None, cameras=()), seed=0, index=0)
    tracks = log.ground_truth_tracks()
    cfg = ForecastingConfig()
    torch.manual_seed(0)
    forecaster = Forecaster(cfg)
    index = len(tracks) - 1
    agents = len(forecaster.run(tracks, log.lane_graph, index))
    constant_velocity = ConstantVelocityForecaster()
    return [
        measure("Forecaster.run (one timestamp)", lambda: forecaster.run(tracks, log.lane_graph, index), items=agents,
                unit="agents/s", repeats=5, target=">= 200 agents/s on one CPU thread"),  # fmt: skip
        measure("ConstantVelocityForecaster.run", lambda: constant_velocity.run(tracks, log.lane_graph, index), items=agents,
                unit="agents/s", repeats=5),  # fmt: skip
        measure("scenarios_from_tracks (10 s log)", lambda: scenarios_from_tracks(tracks, log.lane_graph, cfg.features),
                items=len(tracks), unit="frames/s", repeats=3),  # fmt: skip
    ]
