"""Two Ray Train workers against one worker: loss curves of the real forecaster (same global batch).

Reproduce the figures (written to benchmarks/results/quality_distributed.json) with

    .venv/bin/python -m benchmarks.quality_distributed

The forecasters of `configs/forecasting/{plain,cab}_synth.yaml`, shrunk to a few epochs on a few synthetic logs (see
`OVERRIDES`), are trained once in-process and once with `--workers 2` (Ray Train, gloo) through
`scenes.training.launch.train`, on the same samples. The tables give each epoch's loss of both runs and their relative
difference. DDP averages the gradients of equal halves of every global batch, so both runs take the same steps up to
floating-point summation order. A control run (one worker, one intra-op thread instead of the default) changes only
that summation order: its difference from the default run shows how much this training amplifies last-bit
differences over the epochs, the scale against which the 2-worker difference is to be read.
"""

from __future__ import annotations

import json
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, Final

import torch
from rich.console import Console
from rich.table import Table

from forecasting.config import ForecastingConfig
from forecasting.sources import training_samples
from forecasting.train import ForecastingTask
from scenes.config import load_config
from scenes.io import atomic_write_text
from scenes.training.history import read_history
from scenes.training.launch import train

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
CONFIGS: Final = ("plain_synth.yaml", "cab_synth.yaml")
RESULTS_PATH: Final = Path(__file__).resolve().parent / "results" / "quality_distributed.json"
OVERRIDES: Final = {"optim.epochs": 4, "optim.batch_size": 64, "synth.train_logs": 2, "synth.seconds": 12.0}
WORKERS: Final = 2


def compare(config: Path, console: Console) -> dict[str, Any]:
    """Trains the forecaster of `config` with 1 and 2 workers; prints and returns both loss curves."""
    cfg = load_config(config, ForecastingConfig, overrides=OVERRIDES)
    samples = training_samples(cfg, "synth", progress=False)
    curves: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    runs = (
        ("1 worker (in-process)", None, torch.get_num_threads()),
        (f"{WORKERS} Ray Train workers", WORKERS, torch.get_num_threads()),
        ("control: 1 worker, 1 thread", None, 1),
    )
    default_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="quality-distributed-") as scratch:
        for index, (name, workers, threads) in enumerate(runs):
            out_dir = Path(scratch) / str(index)
            torch.set_num_threads(threads)
            start = time.perf_counter()
            train(partial(ForecastingTask, cfg), samples, out_dir, workers=workers)
            seconds[name] = time.perf_counter() - start
            torch.set_num_threads(default_threads)
            curves[name] = [row["loss"] for row in read_history(out_dir)]
    single, double, control = curves.values()
    relative = [abs(a - b) / abs(a) for a, b in zip(single, double, strict=True)]
    relative_control = [abs(a - b) / abs(a) for a, b in zip(single, control, strict=True)]
    table = Table(title=f"{config.name}: loss per epoch ({len(samples)} samples, global batch {cfg.optim.batch_size})")
    table.add_column("epoch", justify="right")
    for name in curves:
        table.add_column(name, justify="right")
    table.add_column("rel. diff. 2 workers", justify="right")
    table.add_column("rel. diff. control", justify="right")
    for epoch, row in enumerate(zip(single, double, control, relative, relative_control, strict=True)):
        table.add_row(str(epoch), *(f"{value:.6f}" for value in row[:3]), *(f"{value:.2e}" for value in row[3:]))
    console.print(table)
    console.print(", ".join(f"{name}: {value:.1f} s" for name, value in seconds.items()))
    return {
        "num_samples": len(samples),
        "loss_curves": curves,
        "relative_difference_2_workers": relative,
        "relative_difference_control_1_thread": relative_control,
        "wall_time_s": seconds,
    }


def main() -> dict[str, Any]:
    console = Console()
    report: dict[str, Any] = {"overrides": OVERRIDES}
    for name in CONFIGS:
        config = REPO_ROOT / "configs" / "forecasting" / name
        report[str(config.relative_to(REPO_ROOT))] = compare(config, console)
    atomic_write_text(RESULTS_PATH, json.dumps(report, indent=1))
    console.print(f"wrote {RESULTS_PATH}")
    return report


if __name__ == "__main__":
    main()
