"""Training samples from a `--data` spec: the synthetic city, AV2 motion-forecasting or nuScenes prediction data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from rich.progress import track

from forecasting.config import ForecastingConfig
from forecasting.dataset import FeatureBatch, build_samples, resample_scenario, scenarios_from_tracks
from scenes.categories import CATEGORY_ID, STATIC_CATEGORIES
from scenes.records import Scenario

# Static objects (cones, signs...) never move: the synthetic city's forecasting samples leave them out.
STATIC_CATEGORY_IDS: Final = frozenset(CATEGORY_ID[name] for name in STATIC_CATEGORIES)


def synth_scenarios(cfg: ForecastingConfig, first_index: int, count: int, *, progress: bool = True) -> list[Scenario]:
    """Scenarios of synthetic logs `first_index .. first_index + count - 1` (agents and map only, no sensors)."""
    from scenes.synth.world import SynthConfig, simulate_log

    synth = SynthConfig(seconds=cfg.synth.seconds, lidar_beams=None, cameras=())
    scenarios: list[Scenario] = []
    for index in track(range(first_index, first_index + count), description="simulating logs", disable=not progress, transient=True):
        log = simulate_log(synth, cfg.synth.seed, index)
        tracks = log.ground_truth_tracks()
        scenarios.extend(scenarios_from_tracks(tracks, log.lane_graph, cfg.features, cfg.synth.sample_every_steps, log.traffic_signals))
    return scenarios


def training_samples(
    cfg: ForecastingConfig, data: str, *, progress: bool = True, dataset_options: Mapping[str, Any] | None = None
) -> FeatureBatch:
    """`data` is 'synth' (cfg.synth.train_logs logs from index 0) or 'av2-mf:PATH' / 'nuscenes:PATH', opened with
    `dataset_options` (e.g. `split`, `skip_bad`)."""
    if data == "synth":
        scenarios = synth_scenarios(cfg, 0, cfg.synth.train_logs, progress=progress)
        return build_samples(scenarios, cfg.features, exclude_categories=STATIC_CATEGORY_IDS, progress=progress)
    from scenes.adapters.registry import open_dataset

    dataset = open_dataset(data, **dict(dataset_options or {}))
    scenarios = [resample_scenario(scenario, cfg.features) for scenario in dataset.scenarios()]
    return build_samples(scenarios, cfg.features, progress=progress)

