"""Constant-velocity baseline: the agent keeps its current velocity (speed and direction) over the horizon.

Its first mode is exact constant velocity; further modes (when `num_modes > 1`) vary the speed and the direction
around it, and the sixth stops, so that minADE_k/minFDE_k compare like with like against multimodal forecasters
(K = 6 for AV2 motion forecasting).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from forecasting.config import FeatureConfig
from forecasting.dataset import FeatureBatch
from forecasting.forecaster import GridForecaster

# (speed factor, heading offset in radians, relative score) of the modes, in order of decreasing score.
_MODE_VARIANTS: Final = ((1.0, 0.0, 8.0), (0.75, 0.0, 2.0), (1.25, 0.0, 2.0), (1.0, 0.2, 1.0), (1.0, -0.2, 1.0), (0.0, 0.0, 0.5))


class ConstantVelocityForecaster(GridForecaster):
    def __init__(self, horizon_steps: int = 6, step_s: float = 0.5, num_modes: int = 5, history_steps: int = 5) -> None:
        if not 1 <= num_modes <= len(_MODE_VARIANTS):
            raise ValueError(f"ConstantVelocityForecaster: num_modes must lie in [1, {len(_MODE_VARIANTS)}], got {num_modes}")
        super().__init__(
            FeatureConfig(history_steps=history_steps, horizon_steps=horizon_steps, step_s=step_s, max_neighbors=0, max_lanes=0)
        )
        self.num_modes = num_modes

    def predict(self, batch: FeatureBatch) -> tuple[np.ndarray, np.ndarray]:
        velocity = batch.history[:, -1, 2:4].astype(np.float64) * self.features.position_scale_m  # agent frame, m/s
        times = self.features.step_s * np.arange(1, self.features.horizon_steps + 1)
        modes = []
        for factor, offset, _ in _MODE_VARIANTS[: self.num_modes]:
            cos, sin = np.cos(offset), np.sin(offset)
            turned = factor * np.stack([cos * velocity[:, 0] - sin * velocity[:, 1], sin * velocity[:, 0] + cos * velocity[:, 1]], -1)
            modes.append(turned[:, None, :] * times[None, :, None])
        trajectories = batch.to_city(np.stack(modes, axis=1))
        weights = np.array([weight for _, _, weight in _MODE_VARIANTS[: self.num_modes]])
        scores = np.broadcast_to(weights / weights.sum(), (len(batch), self.num_modes)).copy()
        return trajectories, scores
