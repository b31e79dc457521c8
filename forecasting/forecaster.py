"""Forecasters as pipeline stages: `run(tracks, lane_graph, index=-1) -> Forecasts` in the city frame.

`run` works on tracker outputs as well as ground truth: the agents present at `tracks.timestamps_ns[index]` are
forecast from whatever history the tracks hold on the forecaster's time grid (short or gappy histories are padded
and masked), and modes come out sorted by decreasing score.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch

from forecasting.config import FeatureConfig, ForecastingConfig
from forecasting.dataset import FeatureBatch, LaneSegments, encode_scenario, scenario_from_tracks
from forecasting.lane_goals import select_modes
from forecasting.model import ForecastNet
from forecasting.train import build_network, load_checkpoint
from scenes.config import ConfigError, validate_config
from scenes.records import Forecasts, LaneGraph, Tracks
from scenes.training.checkpoint import CheckpointError

# Forecaster of the AV2 end-to-end setting (K=5, 6 steps at 2 Hz), trained on simulated logs' ground-truth tracks:
# TNT-style lane-goal modes (`configs/forecasting/lane_goals_synth.yaml`); `benchmarks/quality_forecasting_map.py`
# compares it with constant velocity and CAB.
SHIPPED_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "lane_goals_synth.pt"
# The same forecaster after Valeo4Cast's sequential finetuning on the shipped detector and tracker's outputs, written
# by `benchmarks/quality_e2e.py --keep-finetuned` (which compares the two; `drivestack finetune forecasting` runs the
# same finetuning after refitting the tracker): the default of `drivestack e2e-forecast`.
SHIPPED_E2E_CHECKPOINT = SHIPPED_CHECKPOINT.with_name("lane_goals_synth_e2e.pt")
# The paper's CAB (latent modes, `configs/forecasting/cab_synth.yaml`) in the same setting, the reference of
# `benchmarks/quality_forecasting.py`.
CAB_CHECKPOINT = SHIPPED_CHECKPOINT.with_name("cab_synth.pt")
# Forecaster of the motion-forecasting benchmarks (K=6, 60 steps at 10 Hz, 2 s of history at 10 Hz), trained on
# simulated logs by `drivestack train forecasting --data synth --config configs/forecasting/lane_goals_av2_mf.yaml`
# (lane-goal modes): the default of `drivestack evaluate forecasting` (AV2 motion forecasting; every 5th step for
# nuScenes prediction).
# `cab_av2_mf.pt` beside it is the paper's CAB (latent modes, `configs/forecasting/cab_av2_mf.yaml`) in the same
# setting, compared with it by `benchmarks/quality_forecasting_map.py`.
SHIPPED_MOTION_CHECKPOINT = SHIPPED_CHECKPOINT.with_name("lane_goals_av2_mf.pt")

__all__ = [
    "SHIPPED_CHECKPOINT", "SHIPPED_E2E_CHECKPOINT", "CAB_CHECKPOINT", "SHIPPED_MOTION_CHECKPOINT", "GridForecaster", "Forecaster",
]  # fmt: skip


class GridForecaster(ABC):
    """A forecaster over agent-centric feature batches; `run` adapts it to `Tracks` records."""

    def __init__(self, features: FeatureConfig) -> None:
        self.features = features
        self._segments: tuple[int, LaneSegments] | None = None

    @abstractmethod
    def predict(self, batch: FeatureBatch) -> tuple[np.ndarray, np.ndarray]:
        """City-frame trajectories `(B, K, T, 2)` and mode scores `(B, K)` (summing to 1), best mode first."""

    def lane_segments(self, lane_graph: LaneGraph | None) -> LaneSegments:
        key = id(lane_graph)
        if self._segments is None or self._segments[0] != key:
            segments = LaneSegments.from_lane_graph(lane_graph, self.features.lane_segment_length_m, self.features.lane_points)
            self._segments = (key, segments)
        return self._segments[1]

    def run(self, tracks: Tracks, lane_graph: LaneGraph | None, index: int = -1) -> Forecasts:
        """Forecasts of every agent present at `tracks.timestamps_ns[index]`."""
        scenario = scenario_from_tracks(tracks, lane_graph, index, self.features)
        timestamp_ns = int(tracks.timestamps_ns[index])
        boxes = tracks.boxes[index]
        if not len(scenario.agent_ids):
            return Forecasts(
                tracks.log_id, timestamp_ns, np.zeros(0, dtype=str), np.zeros((0, 2)),
                np.zeros((0, 1, self.features.horizon_steps, 2)), np.zeros((0, 1)), np.zeros(0), np.zeros(0, dtype=np.int64),
            )  # fmt: skip
        batch = encode_scenario(scenario, self.lane_segments(lane_graph), self.features)
        trajectories, scores = self.predict(batch)
        assert boxes.track_id is not None  # Tracks requires track ids
        lookup = {agent: row for row, agent in enumerate(boxes.track_id.tolist())}
        rows = np.array([lookup[agent] for agent in scenario.agent_ids.tolist()], dtype=np.int64)
        assert boxes.score is not None
        return Forecasts(
            tracks.log_id,
            timestamp_ns,
            scenario.agent_ids,
            batch.origin_xy_m,
            trajectories,
            scores,
            boxes.score[rows].astype(np.float64),
            boxes.category[rows],
        )


class Forecaster(GridForecaster):
    """The trained categorical-latent forecaster (plain, CAB, Reweight or RUBiZ training; same inference)."""

    def __init__(self, cfg: ForecastingConfig, network: ForecastNet | None = None) -> None:
        super().__init__(cfg.features)
        self.cfg = cfg
        self.network = network if network is not None else build_network(cfg)
        self.network.eval()

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> Forecaster:
        payload = load_checkpoint(path)
        try:
            cfg = validate_config(payload["config"], ForecastingConfig, f"{path}:config")
        except ConfigError as error:
            raise CheckpointError(str(error)) from None
        network = build_network(cfg)
        try:
            network.load_state_dict(payload["state_dict"])
        except RuntimeError as error:
            raise CheckpointError(f"{path}: weights do not fit the stored config ({str(error).splitlines()[0]})") from None
        return cls(cfg, network)

    @torch.no_grad()
    def predict(self, batch: FeatureBatch) -> tuple[np.ndarray, np.ndarray]:
        prediction, _ = self.network(batch.to_torch())
        scores = torch.softmax(prediction.logits.double(), dim=-1).numpy()
        trajectories = prediction.trajectories_m.double().numpy()
        if prediction.mode_mask is not None:  # lane-goal candidates: TNT's selection of num_modes of them
            goals = self.features.lane_goals
            chosen, scores = select_modes(trajectories, scores, self.cfg.model.num_modes, goals.nms_distance_m)
            return batch.to_city(np.take_along_axis(trajectories, chosen[:, :, None, None], axis=1)), scores
        trajectories = batch.to_city(trajectories)
        order = np.argsort(-scores, axis=1, kind="stable")
        return (
            np.take_along_axis(trajectories, order[:, :, None, None], axis=1),
            np.take_along_axis(scores, order, axis=1),
        )
