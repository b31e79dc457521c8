"""How often real pedestrians stand beside another (the real AV2 log's annotations), which the city's groups follow
(`SynthConfig.pedestrian_groups`, `scenes/synth/agents.py`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scenes.adapters.registry import open_dataset
from scenes.synth.agents import AgentKind
from scenes.synth.world import SynthConfig, simulate_log

pytestmark = pytest.mark.real


def _beside_another(positions_m: list[np.ndarray]) -> tuple[int, int]:
    """Of pedestrian positions `(P, 2)` per timestamp: observations with another pedestrian within 1.4 m, and all."""
    beside = total = 0
    for xy in positions_m:
        distance = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
        np.fill_diagonal(distance, np.inf)
        beside += int(np.sum(distance.min(axis=1, initial=np.inf) < 1.4))
        total += len(xy)
    return beside, total


def test_the_grouped_city_puts_people_beside_each_other_as_often_as_the_real_log(shared_data: Path) -> None:
    dataset = open_dataset(f"av2:{shared_data / 'av2' / 'sensor' / 'val'}")
    real = [
        frame.annotations.center_m[np.asarray(frame.annotations.category_names) == "PEDESTRIAN", :2]
        for log_id in dataset.logs()
        for frame in dataset.frames(log_id)
        if frame.annotations is not None
    ]
    beside, total = _beside_another(real)
    assert (beside, total) == (1108, 3929)  # 28 % over the log's 156 annotated timestamps
    for groups, low, high in ((True, 0.2, 0.4), (False, 0.0, 0.08)):
        agents = simulate_log(SynthConfig(seconds=10.0, lidar_beams=None, cameras=(), pedestrian_groups=groups), seed=3).agents
        assert agents is not None
        people = agents.kind == AgentKind.PEDESTRIAN
        beside, total = _beside_another(list(agents.center_m[:, people, :2]))
        assert low < beside / total < high, (groups, beside / total)
