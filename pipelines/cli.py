"""The `drivestack` command line (typer + rich).

Every command imports its implementation lazily, so `drivestack --help` stays fast and a plain run never imports Ray.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

from scenes import __version__

if TYPE_CHECKING:
    from scenes.training.harness import TrainingTask

app = typer.Typer(
    name="drivestack",
    help="Autonomous-driving perception and forecasting stack: detection, tracking, forecasting, depth, "
    "segmentation and scene generation on AV2, nuScenes, KITTI or the built-in synthetic city.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
train_app = typer.Typer(help="Train one module of the stack.", no_args_is_help=True)
finetune_app = typer.Typer(help="Sequential finetuning steps of the end-to-end stack.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(finetune_app, name="finetune")

console = Console(stderr=True)

DataOption = Annotated[
    str,
    typer.Option("--data", help="Dataset as NAME:PATH (av2:, av2-mf:, nuscenes:, kitti:, kitti-object:, cityscapes:) or 'synth'."),
]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="YAML config (see configs/).")]
WorkersOption = Annotated[
    int | None, typer.Option("--workers", min=1, help="Run under Ray Train with N workers (no Ray without it).")
]
AddressOption = Annotated[str | None, typer.Option("--address", help="Address of an existing Ray cluster.")]
OutOption = Annotated[Path, typer.Option("--out", help="Output file or directory.")]


class SynthFormat(StrEnum):
    av2 = "av2"
    av2_mf = "av2-mf"
    kitti = "kitti"
    nuscenes = "nuscenes"
    cityscapes = "cityscapes"


def not_available(command: str) -> NoReturn:
    """Exit non-zero for a command whose capability is not part of this release."""
    console.print(f"[bold red]drivestack {command}: not available yet[/] (not implemented in drivestack {__version__})", soft_wrap=True)
    raise typer.Exit(code=2)


def _version_callback(show: bool) -> None:
    if show:
        typer.echo(f"drivestack {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """drivestack command line."""


@app.command("e2e-forecast")
def e2e_forecast(
    data: DataOption = "synth",
    split: Annotated[str, typer.Option(help="Split to process.")] = "val",
    out: OutOption = Path("submission.pkl"),
    evaluate: Annotated[bool, typer.Option("--evaluate", help="Score with the official AV2 evaluator.")] = False,
    workers: WorkersOption = None,
    address: AddressOption = None,
    config: ConfigOption = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="BEV PNG of one frame (default: beside --out).")] = None,
) -> None:
    """Detection -> tracking -> forecasting on LiDAR logs; writes an AV2 E2E forecasting submission."""
    if address is not None and workers is None:
        console.print("[bold red]drivestack e2e-forecast:[/] --address connects to a Ray cluster: give --workers N too")
        raise typer.Exit(code=2)
    from pipelines.e2e_job import run_job

    run_job(data=data, split=split, out=out, evaluate=evaluate, config=config, plot=plot, console=console, workers=workers, address=address)


def _train(module: str) -> None:
    not_available(f"train {module}")


def run_training(
    command: str, task_factory: Callable[[Any], TrainingTask], dataset: Any, out_dir: Path, workers: int | None, address: str | None
) -> Path:
    """Runs a module's training task on the harness in this process or, with `--workers N`, under Ray Train."""
    from scenes.training.checkpoint import CheckpointError
    from scenes.training.launch import train

    where = "in-process" if workers is None else f"on {workers} Ray Train worker(s)" + (f" at {address}" if address else "")
    console.print(f"drivestack {command}: training {where}, checkpoints in {out_dir}", soft_wrap=True)
    try:
        final = train(task_factory, dataset, out_dir, workers=workers, address=address)
    except (CheckpointError, ValueError) as error:
        console.print(f"error: {error}", style="bold red", soft_wrap=True, markup=False)
        raise typer.Exit(code=2) from None
    console.print(f"wrote {final} (metrics per epoch: {out_dir / 'metrics.json'}, curve: {out_dir / 'loss_curve.png'})", soft_wrap=True)
    return final


def _config_source(config: Path | None) -> str:
    return str(config) if config is not None else "the default config"


@train_app.command("detection")
def train_detection(
    config: ConfigOption = None,
    data: DataOption = "synth",
    workers: WorkersOption = None,
    address: AddressOption = None,
    out: Annotated[Path, typer.Option("--out", help="Directory of the checkpoints (resumes from its last.pt).")] = Path(
        "runs/detection"
    ),
) -> None:
    """Train the CenterPoint-style LiDAR detector (loss curve: OUT/loss_curve.png, final weights: OUT/detector.pt)."""
    from perception.detection.config import DetectionConfig
    from perception.detection.train import DetectionTask, collect_samples, synth_samples
    from scenes.adapters.base import AdapterError
    from scenes.adapters.registry import open_dataset
    from scenes.config import ConfigError, load_config

    try:
        cfg = load_config(config, DetectionConfig) if config is not None else DetectionConfig()
        if data == "synth":
            samples = synth_samples(cfg)
        else:
            samples = collect_samples(open_dataset(data), cfg.model, cfg.synth.frame_stride)
    except (ConfigError, AdapterError, ValueError) as error:
        console.print(f"[bold red]drivestack train detection:[/] {error}")
        raise typer.Exit(code=2) from None
    run_training("train detection", partial(DetectionTask, cfg, config_source=_config_source(config)), samples, out, workers, address)


@train_app.command("tracking")
def train_tracking(
    config: ConfigOption = None,
    data: DataOption = "synth",
    out: Annotated[Path, typer.Option("--out", help="Directory of the fitted tracker checkpoint.")] = Path("runs/tracking"),
) -> None:
    """Fit the tracker's parameters (Kalman noise, association gates) on ground-truth tracks (one pass, no workers)."""
    from perception.tracking.config import TrackingConfig
    from perception.tracking.train import fit
    from scenes.adapters.base import AdapterError
    from scenes.adapters.registry import open_dataset
    from scenes.config import ConfigError, load_config

    try:
        cfg = load_config(config, TrackingConfig) if config is not None else TrackingConfig()
        path = fit(cfg, data if data == "synth" else open_dataset(data), out)
    except (ConfigError, AdapterError, ValueError) as error:
        console.print(f"[bold red]drivestack train tracking:[/] {error}")
        raise typer.Exit(code=2) from None
    console.print(f"wrote {path}")


@train_app.command("forecasting")
def train_forecasting(
    config: ConfigOption = None,
    data: DataOption = "synth",
    workers: WorkersOption = None,
    address: AddressOption = None,
    out: Annotated[Path, typer.Option("--out", help="Directory of the checkpoints (resumes from its last.pt).")] = Path(
        "runs/forecasting"
    ),
) -> None:
    """Train the CAB multimodal forecaster (plain, CAB, Reweight or RUBiZ objective, see configs/forecasting/)."""
    from forecasting.config import ForecastingConfig
    from forecasting.sources import training_samples
    from forecasting.train import ForecastingTask
    from scenes.adapters.base import AdapterError
    from scenes.config import ConfigError, load_config

    try:
        cfg = load_config(config, ForecastingConfig) if config is not None else ForecastingConfig()
        samples = training_samples(cfg, data)
    except (ConfigError, AdapterError, ValueError) as error:
        console.print(f"[bold red]drivestack train forecasting:[/] {error}")
        raise typer.Exit(code=2) from None
    run_training("train forecasting", partial(ForecastingTask, cfg, config_source=_config_source(config)), samples, out, workers, address)


@train_app.command("depth")
def train_depth(
    config: ConfigOption = None, data: DataOption = "synth", workers: WorkersOption = None, address: AddressOption = None
) -> None:
    """Train LiDARTouch monocular depth with few-beam LiDAR."""
    _train("depth")


@train_app.command("segmentation")
def train_segmentation(
    config: ConfigOption = None, data: DataOption = "synth", workers: WorkersOption = None, address: AddressOption = None
) -> None:
    """Train MTAF multi-target domain adaptation (Multi-Dis, MTKT)."""
    _train("segmentation")


@train_app.command("scenegen")
def train_scenegen(
    config: ConfigOption = None, data: DataOption = "synth", workers: WorkersOption = None, address: AddressOption = None
) -> None:
    """Train Semantic Palette (layout GAN + layout-to-image)."""
    _train("scenegen")


@finetune_app.command("forecasting")
def finetune_forecasting(
    on_tracks: Annotated[Path | None, typer.Option("--on-tracks", help="Tracker outputs to finetune on.")] = None,
    config: ConfigOption = None,
    data: DataOption = "synth",
    split: Annotated[str, typer.Option(help="Split to finetune on (AV2 data).")] = "train",
    out: OutOption = Path("runs/finetune_forecasting"),
) -> None:
    """Finetune the forecaster on tracker outputs matched to ground-truth futures."""
    if config is None:
        console.print("[bold red]drivestack finetune forecasting: --config is required[/] (e.g. configs/pipelines/finetune_forecasting.yaml)")
        raise typer.Exit(code=2)
    from pipelines.sequential_finetune import run_finetune_job

    run_finetune_job(config, data, out, on_tracks=on_tracks, split=split, console=console)


@app.command("generate")
def generate(
    num: Annotated[int, typer.Option("--num", min=1, help="Number of scenes.")] = 8,
    proportions: Annotated[str | None, typer.Option(help="Class proportions, e.g. 'road=0.4,car=0.1'.")] = None,
    out: OutOption = Path("generated"),
) -> None:
    """Generate synthetic urban scenes conditioned on class proportions (Semantic Palette)."""
    not_available("generate")


@app.command("synth")
def synth(
    out: OutOption = Path("synth"),
    logs: Annotated[int, typer.Option("--logs", min=1, help="Number of logs.")] = 1,
    seconds: Annotated[float, typer.Option("--seconds", min=0.1, help="Duration of each log.")] = 15.0,
    format: Annotated[SynthFormat, typer.Option("--format", help="On-disk format.")] = SynthFormat.av2,
    style: Annotated[str, typer.Option("--style", help="Domain style name.")] = "default",
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bytes).")] = 0,
    preview: Annotated[bool, typer.Option("--preview", help="Also write a preview PNG per log.")] = False,
    split: Annotated[
        str, typer.Option("--split", help="Split folder (av2, av2-mf, cityscapes); nuScenes lists the scenes as split synth_<split>.")
    ] = "train",
) -> None:
    """Simulate urban driving logs and write them in a real dataset format."""
    from scenes.synth.writers.common import WriterError
    from scenes.synth.writers.export import write_synthetic_dataset

    try:
        written = write_synthetic_dataset(
            format.value, out, logs=logs, seconds=seconds, style=style, seed=seed, split=split, preview=preview, console=console
        )
    except (WriterError, ValueError) as error:
        console.print(f"[bold red]drivestack synth:[/] {error}")
        raise typer.Exit(code=1) from None
    console.print(f"wrote {len(written)} {format.value} item(s) under {out}")


@app.command("evaluate")
def evaluate(
    task: Annotated[str, typer.Argument(help="detection | tracking | forecasting | e2e-forecasting | depth | segmentation")],
    predictions: Annotated[Path, typer.Option("--predictions", help="Predictions file.")],
    data: DataOption = "synth",
) -> None:
    """Score predictions with the official evaluator of the task (or ours where none exists)."""
    not_available(f"evaluate {task}")


@app.command("inspect")
def inspect(
    data: DataOption,
    preview: Annotated[Path | None, typer.Option("--preview", help="Write a BEV preview PNG of one frame.")] = None,
    version: Annotated[str | None, typer.Option("--version", help="nuScenes version, e.g. v1.0-mini.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Log and skip bad frames/logs instead of failing.")] = False,
) -> None:
    """Summarise a dataset on disk (logs, frames, sensors, categories, time span)."""
    from scenes.adapters.base import AdapterError
    from scenes.adapters.preview import preview_frame, summary_table, write_bev_preview
    from scenes.adapters.registry import open_dataset

    options: dict[str, object] = {"skip_bad": skip_bad}
    if version is not None:
        options["version"] = version
    try:
        dataset = open_dataset(data, **options)
        Console().print(summary_table(dataset.summary(progress=True)))
        if preview is not None:
            frame, lane_graph = preview_frame(dataset)
            write_bev_preview(frame, lane_graph, preview)
            console.print(f"BEV preview of {frame.log_id} @ {frame.timestamp_ns} written to {preview}")
    except AdapterError as error:
        console.print(f"[bold red]drivestack inspect: {error}[/]")
        raise typer.Exit(code=1) from None


def main() -> None:
    app()


if __name__ == "__main__":
    main()
