"""Training samples from a `--data` spec: the synthetic city, AV2 motion-forecasting or nuScenes prediction data."""

from __future__ import annotations

from pathlib import Path

from rich.progress import track

from forecasting.config import ForecastingConfig
from forecasting.dataset import FeatureBatch, build_samples, resample_scenario, scenarios_from_tracks
from forecasting.train import fit
from scenes.config import load_config
from scenes.io import atomic_write
from scenes.records import Scenario


def synth_scenarios(cfg: ForecastingConfig, first_index: int, count: int, *, progress: bool = True) -> list[Scenario]:
    """Scenarios of synthetic logs `first_index .. first_index + count - 1` (agents and map only, no sensors)."""
    from scenes.synth.world import SynthConfig, simulate_log

    synth = SynthConfig(seconds=cfg.synth.seconds, lidar_beams=None, cameras=())
    scenarios: list[Scenario] = []
    for index in track(range(first_index, first_index + count), description="simulating logs", disable=not progress, transient=True):
        log = simulate_log(synth, cfg.synth.seed, index)
        scenarios.extend(scenarios_from_tracks(log.ground_truth_tracks(), log.lane_graph, cfg.features, cfg.synth.sample_every_steps))
    return scenarios


def training_samples(cfg: ForecastingConfig, data: str, *, progress: bool = True) -> FeatureBatch:
    """`data` is 'synth' (cfg.synth.train_logs logs from index 0) or 'av2-mf:PATH' / 'nuscenes:PATH'."""
    if data == "synth":
        scenarios = synth_scenarios(cfg, 0, cfg.synth.train_logs, progress=progress)
    else:
        from scenes.adapters.registry import open_dataset

        dataset = open_dataset(data, skip_bad=True)
        scenarios = [resample_scenario(scenario, cfg.features) for scenario in dataset.scenarios()]
    return build_samples(scenarios, cfg.features, progress=progress)


def plot_training_curve(history: list[dict[str, float]], path: Path) -> None:
    """Per-epoch loss terms as a PNG (matplotlib, Agg backend), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    epochs = [entry["epoch"] for entry in history]
    for name in ("loss", "nll", "nll_blind", "kl"):
        if history and name in history[0]:
            axis.plot(epochs, [entry[name] for entry in history], marker="o", label=name)
    axis.set_xlabel("epoch")
    axis.set_ylabel("value (nll per step)")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_write(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)


def train_from_config(config_path: Path | None, data: str, out_dir: Path, *, progress: bool = True) -> Path:
    """`drivestack train forecasting`: loads the config, builds the samples of `data`, fits, plots the curve."""
    cfg = load_config(config_path, ForecastingConfig) if config_path is not None else ForecastingConfig()
    samples = training_samples(cfg, data, progress=progress)
    history: list[dict[str, float]] = []
    final = fit(cfg, samples, out_dir, on_checkpoint=lambda metrics, _: history.append(metrics), progress=progress)
    if history:
        plot_training_curve(history, out_dir / "training_curve.png")
    return final
