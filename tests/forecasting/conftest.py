"""Tiny hand-made scenes shared by the forecasting tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forecasting.config import FeatureConfig, ForecastingConfig, ModelConfig, OptimConfig
from forecasting.dataset import FeatureBatch, build_samples, scenarios_from_tracks
from scenes.categories import CATEGORY_ID
from scenes.records import Boxes3D, LaneGraph, Tracks

RATE_HZ = 10.0


@pytest.fixture(autouse=True)
def _single_thread() -> None:
    torch.set_num_threads(1)


def crossing_lane_graph() -> LaneGraph:
    """A straight east-west road and a lane that turns left (north) at x = 0."""
    xs = np.linspace(-60.0, 60.0, 25)
    straight = np.stack([xs, np.zeros_like(xs), np.zeros_like(xs)], axis=1)
    angles = np.linspace(-np.pi / 2, 0.0, 25)
    turn = np.stack([10.0 * np.cos(angles) - 10.0, 10.0 + 10.0 * np.sin(angles), np.zeros(25)], axis=1)
    turn[:, 0] += 10.0  # starts at (0, 0) heading east, ends at (10, 10) heading north
    road = np.array([[-60.0, -4.0, 0.0], [60.0, -4.0, 0.0], [60.0, 4.0, 0.0], [14.0, 4.0, 0.0], [14.0, 60.0, 0.0],
                     [6.0, 60.0, 0.0], [6.0, 4.0, 0.0], [-60.0, 4.0, 0.0]])  # fmt: skip
    return LaneGraph("TEST", np.array([1, 2]), np.stack([straight, turn]), ((), ()), np.array([-1, -1]),
                     np.array([-1, -1]), np.array([False, True]), (road,))  # fmt: skip


def straight_tracks(num_agents: int = 4, seconds: float = 8.0, seed: int = 0) -> Tracks:
    """Cars on the straight road at constant speeds (10 Hz), one track id per car."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(-50.0, -20.0, num_agents)
    speed = rng.uniform(4.0, 9.0, num_agents)
    lane_y = np.where(np.arange(num_agents) % 2 == 0, -1.5, 1.5)
    steps = int(seconds * RATE_HZ)
    boxes = []
    for step in range(steps):
        t = step / RATE_HZ
        centers = np.stack([start + speed * t, lane_y, np.full(num_agents, 0.8)], axis=1)
        boxes.append(Boxes3D(centers, np.tile([4.5, 1.9, 1.6], (num_agents, 1)), np.zeros(num_agents),
                             np.full(num_agents, CATEGORY_ID["REGULAR_VEHICLE"]), np.linspace(0.5, 0.9, num_agents).astype(np.float32),
                             np.stack([speed, np.zeros(num_agents)], axis=1), np.array([f"car{i}" for i in range(num_agents)]),
                             frame="city"))  # fmt: skip
    timestamps = (np.arange(steps) * 1e9 / RATE_HZ).astype(np.int64) + 10**9
    return Tracks("log-test", timestamps, tuple(boxes))


def tiny_config(method: str = "cab", epochs: int = 2, **optim: float) -> ForecastingConfig:
    return ForecastingConfig(
        features=FeatureConfig(history_steps=4, horizon_steps=6, max_neighbors=3, max_lanes=4, lane_points=6),
        model=ModelConfig(hidden_dim=16, num_modes=3),
        objective={"method": method},
        optim=OptimConfig(epochs=epochs, batch_size=8, **optim),
    )


def tiny_samples(cfg: ForecastingConfig) -> FeatureBatch:
    tracks = straight_tracks()
    return build_samples(scenarios_from_tracks(tracks, crossing_lane_graph(), cfg.features), cfg.features)
