"""The `synth` dataset simulates each log once when its logs are walked in order, as the pipelines walk them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pipelines.e2e_forecast import E2EForecastConfig, SynthSplitConfig, open_e2e_dataset, run_e2e
from pipelines.e2e_parallel import run_one_log
from scenes.adapters.base import AdapterError
from scenes.adapters.registry import open_dataset
from scenes.synth import world
from scenes.synth.world import SynthConfig, SynthLog

LOGS = 3
OPTIONS: dict[str, Any] = {
    "seconds": 0.5, "lidar_beams": None, "cameras": (), "warmup_s": 0.0,
    "num_vehicles": 3, "num_pedestrians": 1, "num_cyclists": 0, "num_static_objects": 1,
}  # fmt: skip
E2E = E2EForecastConfig(
    detector="oracle", tracker="oracle", forecaster="constant_velocity",
    synth=SynthSplitConfig(logs=LOGS, seconds=0.5, lidar_beams=None),
)  # fmt: skip


@pytest.fixture
def simulated(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The indices `simulate_log` is called with, in call order, from the datasets opened after this fixture."""
    indices: list[int] = []
    simulate: Callable[[SynthConfig, int, int], SynthLog] = world.simulate_log

    def counting(config: SynthConfig, seed: int, index: int = 0) -> SynthLog:
        indices.append(index)
        return simulate(config, seed, index)

    monkeypatch.setattr(world, "simulate_log", counting)
    return indices


def test_listing_the_logs_simulates_nothing_and_names_the_simulated_logs(simulated: list[int]) -> None:
    dataset = open_dataset("synth", logs=LOGS, seed=5, **OPTIONS)
    log_ids = dataset.logs()
    assert simulated == []
    assert log_ids == [world.simulate_log(SynthConfig(**OPTIONS), 5, index).log_id for index in range(LOGS)]
    with pytest.raises(AdapterError, match="no simulated log 'elsewhere'"):
        dataset.lane_graph("elsewhere")


def test_the_e2e_pipeline_simulates_each_log_once(simulated: list[int]) -> None:
    result = run_e2e(E2E, open_e2e_dataset(None, "val", E2E), progress=False)
    assert len(result.logs) == LOGS
    assert simulated == list(range(LOGS))


def test_parallel_workers_simulate_each_log_once(simulated: list[int]) -> None:
    # Each Ray task of `run_e2e_parallel` opens the dataset and runs `run_one_log` on its own log.
    results = [run_one_log(E2E, None, None, False, index) for index in range(LOGS)]
    assert [result.logs[0].log_id for result in results] == open_e2e_dataset(None, "val", E2E).logs()
    assert simulated == list(range(LOGS))


def test_summary_simulates_each_log_once(simulated: list[int]) -> None:
    summary = open_dataset("synth", logs=LOGS, seed=5, **OPTIONS).summary()
    assert summary.num_logs == LOGS and summary.num_frames == LOGS * 5
    assert simulated == list(range(LOGS))


def test_a_log_read_again_after_another_is_simulated_again(simulated: list[int]) -> None:
    dataset = open_dataset("synth", logs=LOGS, seed=5, **OPTIONS)
    first, second = dataset.logs()[:2]
    stamps = dataset.timestamps_ns(first)
    dataset.lane_graph(second)
    assert dataset.timestamps_ns(first) == stamps
    assert simulated == [0, 1, 0]
