"""Quality of sequential finetuning (Valeo4Cast) on held-out synthetic logs: mAP_F / ADE / FDE of the AV2 E2E metric.

Protocol (everything simulated and trained here, from fixed seeds):
1. Pretraining: the forecaster of `configs/forecasting/cab_synth.yaml` (shortened: 15 epochs, batch 64, a prediction
   time every 1.5 s) learns from ground-truth tracks of training logs (seed 0).
2. Sequential finetuning: the stack's detector and tracker run on the same training logs - by default the oracle
   detector with 0.4 m centre jitter, 1 m/s velocity noise and 10% misses, with `--detector lidar` the shipped LiDAR
   detector on simulated 32-beam sweeps - then the AB3DMOT tracker, and the pretrained forecaster is finetuned on
   their tracks with matched GT futures (`forecasting.finetune`).
3. Evaluation: on held-out logs (seed 1000, never trained on) the same detector and tracker give the same tracks to
   three forecasters: constant velocity, pretrained only, pretrained + finetuned; the official AV2 E2E forecasting
   evaluator scores each submission (top-5, 50 m, our ROI filter).

Reproduce (about 10-15 minutes on 2 CPU cores): `.venv/bin/python -m benchmarks.quality_e2e [--detector lidar]`
Writes benchmarks/results/quality_e2e_<detector>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from forecasting.baselines import ConstantVelocityForecaster
from forecasting.config import ForecastingConfig
from forecasting.dataset import build_samples, scenarios_from_tracks
from forecasting.finetune import FinetuneConfig, collect_finetune_samples, finetune
from forecasting.forecaster import Forecaster
from forecasting.train import fit
from perception.tracking.tracker import Tracker
from pipelines.e2e_forecast import E2EForecastConfig, SynthSplitConfig, build_stages, open_e2e_dataset, run_e2e
from pipelines.oracle_detector import OracleDetectorConfig
from pipelines.sequential_finetune import tracker_outputs
from scenes.config import load_config
from scenes.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"

TRAIN = SynthSplitConfig(logs=4, seconds=20.0, seed=0, lidar_beams=None)
HELD_OUT = SynthSplitConfig(logs=3, seconds=15.0, seed=1000, lidar_beams=None)
DETECTOR_NOISE = OracleDetectorConfig(center_noise_m=0.4, velocity_noise_m_per_s=1.0, miss_rate=0.1)
SAMPLE_EVERY_STEPS = 3  # prediction times 1.5 s apart: fewer, less correlated samples (2 CPU cores)
PRETRAIN_EPOCHS = 15
BATCH_SIZE = 64
FINETUNE = FinetuneConfig(epochs=8, learning_rate=5e-4, batch_size=BATCH_SIZE, sample_every_steps=SAMPLE_EVERY_STEPS)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Sequential finetuning quality on held-out synthetic logs.")
    parser.add_argument("--detector", choices=("oracle", "lidar"), default="oracle", help="detector whose tracks are used")
    args = parser.parse_args(argv)
    beams = 32 if args.detector == "lidar" else None
    train_split = TRAIN.model_copy(update={"lidar_beams": beams})
    held_out = HELD_OUT.model_copy(update={"lidar_beams": beams})
    console = Console()
    start = time.perf_counter()
    forecasting_cfg = load_config(REPO / "configs/forecasting/cab_synth.yaml", ForecastingConfig)
    optim = forecasting_cfg.optim.model_copy(update={"epochs": PRETRAIN_EPOCHS, "batch_size": BATCH_SIZE})
    forecasting_cfg = forecasting_cfg.model_copy(update={"optim": optim})
    stack = E2EForecastConfig(detector=args.detector, oracle=DETECTOR_NOISE, tracker="tracker", forecaster="constant_velocity", synth=train_split)

    train_logs = tracker_outputs(stack, open_e2e_dataset(None, "train", stack), progress=True)
    scenarios = [
        scenario
        for _, ground_truth, lane_graph in train_logs
        for scenario in scenarios_from_tracks(ground_truth, lane_graph, forecasting_cfg.features, every_steps=SAMPLE_EVERY_STEPS)
    ]
    pretrain_samples = build_samples(scenarios, forecasting_cfg.features, progress=True)
    finetune_samples, counts = collect_finetune_samples(train_logs, forecasting_cfg.features, FINETUNE)
    console.print(f"pretraining on {len(pretrain_samples)} GT samples; finetuning on {len(finetune_samples)} tracker samples {counts}")
    with tempfile.TemporaryDirectory() as work:
        pretrained = fit(forecasting_cfg, pretrain_samples, Path(work) / "pretrained")
        finetuned = finetune(pretrained, finetune_samples, Path(work) / "finetuned", FINETUNE)
        forecasters = {
            "constant velocity": ConstantVelocityForecaster(),
            "pretrained on GT tracks": Forecaster.from_checkpoint(pretrained),
            "+ finetuned on tracker outputs": Forecaster.from_checkpoint(finetuned),
        }
        evaluation = stack.model_copy(update={"synth": held_out})
        dataset = open_e2e_dataset(None, "val", evaluation)
        detector, _, _ = build_stages(evaluation)
        rows: dict[str, Any] = {}
        for name, forecaster in forecasters.items():
            result = run_e2e(evaluation, dataset, stages=(detector, Tracker, forecaster), progress=False)
            scores = result.evaluate(evaluation)
            rows[name] = {
                "mAP_F": scores.mean_mAP_F,
                "ADE": scores.mean("ADE"),
                "FDE": scores.mean("FDE"),
                "per_profile_mAP_F": {
                    profile: _nanmean([cell["mAP_F"] for cell in cells.values()]) for profile, cells in scores.per_profile.items()
                },
            }
    table = Table(title="End-to-end forecasting on held-out synthetic logs (same detector + tracker outputs)")
    for column in ("forecaster", "mAP_F", "ADE (m)", "FDE (m)", "static", "linear", "non-linear"):
        table.add_column(column, justify="left" if column == "forecaster" else "right")
    for name, row in rows.items():
        profiles = row["per_profile_mAP_F"]
        table.add_row(name, f"{row['mAP_F']:.3f}", f"{row['ADE']:.3f}", f"{row['FDE']:.3f}", *(f"{profiles[p]:.3f}" for p in ("static", "linear", "non-linear")))
    console.print(table)
    payload = {
        "command": f".venv/bin/python -m benchmarks.quality_e2e --detector {args.detector}",
        "protocol": {
            "train": train_split.model_dump(),
            "held_out": held_out.model_dump(),
            "detector": {"kind": "oracle", **DETECTOR_NOISE.model_dump()} if args.detector == "oracle" else {"kind": "lidar (shipped checkpoint)"},
            "tracker": "AB3DMOT-style (perception.tracking, defaults)",
            "pretrain_epochs": PRETRAIN_EPOCHS,
            "batch_size": BATCH_SIZE,
            "sample_every_steps": SAMPLE_EVERY_STEPS,
            "finetune": FINETUNE.model_dump(),
            "pretrain_samples": len(pretrain_samples),
            "finetune_match_counts": counts,
        },
        "results": rows,
        "seconds": time.perf_counter() - start,
    }
    results_path = RESULTS_DIR / f"quality_e2e_{args.detector}.json"
    atomic_write_text(results_path, json.dumps(payload, indent=2) + "\n")
    console.print(f"wrote {results_path} ({payload['seconds']:.0f} s)")
    return payload


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


if __name__ == "__main__":
    main()
