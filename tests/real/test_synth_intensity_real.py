"""The real sweeps' brightness order, which the simulator's reflectivities follow (`scenes/synth/lidar.py`): people
brighter than most of a sweep, vehicles spread from darker than most to brighter, whatever the dataset's intensity
scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scenes.adapters.registry import open_dataset
from tests.conftest import intensity_ranks

pytestmark = pytest.mark.real


def ranks(spec: str, category: str) -> list[float]:
    dataset = open_dataset(spec)
    frames = [frame for log_id in dataset.logs() for frame in dataset.frames(log_id) if frame.lidar is not None and frame.annotations is not None]
    return [rank for frame in frames for rank in intensity_ranks(frame, category)]


def test_real_pedestrians_are_brighter_than_most_returns(shared_data: Path) -> None:
    av2 = ranks(f"av2:{shared_data / 'av2' / 'sensor' / 'val'}", "PEDESTRIAN")
    kitti = ranks(f"kitti-object:{shared_data / 'kitti' / 'object'}", "PEDESTRIAN")
    assert len(av2) == 5 and len(kitti) == 1
    # Median ranks 0.45-0.87 (median 0.84) on the AV2 sweep and 0.64 on KITTI's first frame.
    assert float(np.median(av2)) > 0.8 and kitti[0] > 0.6


def test_real_vehicles_spread_from_darker_than_most_returns_to_brighter_than_most(shared_data: Path) -> None:
    # The spread `SynthConfig.vehicle_paint` gives the city's vehicles (tests/scenes/synth/test_lidar_rigs.py).
    av2 = np.array(ranks(f"av2:{shared_data / 'av2' / 'sensor' / 'val'}", "REGULAR_VEHICLE"))
    kitti = ranks(f"kitti-object:{shared_data / 'kitti' / 'object'}", "REGULAR_VEHICLE")
    assert len(av2) == 15 and len(kitti) == 1
    # Median ranks 0.01-0.72: 5 of 15 under 0.12, median 0.42, 4 over 0.6; KITTI's car 0.05.
    assert int(np.sum(av2 < 0.12)) == 5 and int(np.sum(av2 > 0.6)) == 4 and kitti[0] < 0.12
