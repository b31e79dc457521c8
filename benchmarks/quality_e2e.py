"""Quality of sequential finetuning (Valeo4Cast) on held-out synthetic logs: mAP_F / ADE / FDE of the AV2 E2E metric.

Protocol (everything simulated from fixed seeds):
1. Pretrained forecaster: the shipped `forecasting/checkpoints/lane_goals_synth.pt`, trained on ground-truth tracks of
   seed-0 logs (`drivestack train forecasting --config configs/forecasting/lane_goals_synth.yaml --data synth`), or
   `--pretrained`.
2. Sequential finetuning, as `drivestack finetune forecasting --config configs/pipelines/finetune_forecasting.yaml`:
   the stack's detector and tracker run on the training logs of that config (seed 0) - by default the shipped LiDAR
   detector on simulated 32-beam sweeps, with `--detector oracle` ground-truth boxes with 0.4 m centre jitter, 1 m/s
   velocity noise and 10% misses - then the shipped AB3DMOT tracker; the pretrained forecaster is finetuned on their
   tracks with matched GT futures (`forecasting.finetune`, the config's matching, epochs and learning rate).
3. Evaluation: on held-out logs (seed 1000, never trained on nor used to choose settings; `--seed 500` gives the
   validation logs the finetuning settings were chosen on) the detector and tracker run once; three forecasters
   forecast from those same tracks (`pipelines.e2e_forecast.reforecast`): constant velocity, pretrained only,
   pretrained + finetuned. The official AV2 E2E forecasting evaluator scores each submission (top-5, 50 m, our ROI
   filter). mAP_F averages (profile, category) cells, some holding a handful of agents, so it is noisy on few logs;
   the table also gives, per ground-truth profile, the median best-of-5 FDE of the detected agents, which isolates
   the forecaster, and each mAP_F and each gap between consecutive rows with its leave-one-log-out jackknife
   standard error (the gaps are paired: every forecaster is scored on the same tracks of the same logs).

Reproduce (about 11 minutes on 2 CPU cores, most of it the detector on the 24 training logs):
`.venv/bin/python -m benchmarks.quality_e2e [--detector oracle]`
Writes benchmarks/results/quality_e2e_<detector>[_seed<seed>][_<logs>logs][_<pretrained run>].json.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from av2.evaluation.forecasting import utils as forecasting_utils
from av2.evaluation.forecasting.constants import CATEGORY_TO_VELOCITY_M_PER_S, VELOCITY_TYPES
from av2.evaluation.forecasting.eval import convert_forecast_labels, filter_max_dist
from rich.console import Console
from rich.table import Table

from forecasting.baselines import ConstantVelocityForecaster
from forecasting.config import ForecastingConfig
from forecasting.finetune import collect_finetune_samples, finetune
from forecasting.forecaster import SHIPPED_CHECKPOINT, Forecaster
from forecasting.train import load_checkpoint
from pipelines.e2e_forecast import E2EForecastConfig, E2EResult, SynthSplitConfig, build_stages, open_e2e_dataset, reforecast, run_e2e
from pipelines.evaluate_e2e import evaluate_submission
from pipelines.oracle_detector import OracleDetectorConfig
from pipelines.sequential_finetune import FinetuneJobConfig, tracker_outputs
from scenes.config import load_config
from scenes.io import atomic_write_text
from scenes.submissions.av2_e2e_forecasting import ForecastSequences, Sequences

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
FINETUNE_JOB = REPO / "configs" / "pipelines" / "finetune_forecasting.yaml"
HELD_OUT_SEED = 1000
HELD_OUT_LOGS, HELD_OUT_SECONDS = 8, 15.0
DETECTOR_NOISE = OracleDetectorConfig(center_noise_m=0.4, velocity_noise_m_per_s=1.0, miss_rate=0.1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector", choices=("lidar", "oracle"), default="lidar", help="detector whose tracks are used")
    parser.add_argument("--pretrained", type=Path, default=SHIPPED_CHECKPOINT, help="forecaster pretrained on GT tracks")
    parser.add_argument("--logs", type=int, default=HELD_OUT_LOGS, help="evaluation logs (of 15 s)")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help=f"seed of the evaluation logs ({HELD_OUT_SEED}: held out)")
    parser.add_argument("--keep-finetuned", type=Path, default=None, help="also copy the finetuned checkpoint to this file")
    args = parser.parse_args(argv)
    beams = 32 if args.detector == "lidar" else None
    job = load_config(FINETUNE_JOB, FinetuneJobConfig)
    train_split = job.train_split.model_copy(update={"lidar_beams": beams})
    evaluation_split = SynthSplitConfig(logs=args.logs, seconds=HELD_OUT_SECONDS, seed=args.seed, lidar_beams=beams)
    console = Console(width=160)  # the table has 10 columns; piped output would otherwise truncate them to 80
    start = time.perf_counter()
    features = ForecastingConfig.model_validate(load_checkpoint(args.pretrained)["config"]).features
    stack = job.stack.model_copy(update={"detector": args.detector, "oracle": DETECTOR_NOISE, "synth": train_split})

    train_logs = tracker_outputs(stack, open_e2e_dataset(None, "train", stack), progress=True)
    finetune_samples, counts = collect_finetune_samples(train_logs, features, job.finetune)
    console.print(f"finetuning on {len(finetune_samples)} tracker samples {counts}")
    with tempfile.TemporaryDirectory() as work:
        finetuned = finetune(args.pretrained, finetune_samples, Path(work) / "finetuned", job.finetune)
        if args.keep_finetuned is not None:
            args.keep_finetuned.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(finetuned, args.keep_finetuned)
        forecasters = {
            "constant velocity": ConstantVelocityForecaster(),
            "pretrained on GT tracks": Forecaster.from_checkpoint(args.pretrained),
            "+ finetuned on tracker outputs": Forecaster.from_checkpoint(finetuned),
        }
        evaluation = stack.model_copy(update={"synth": evaluation_split})
        detector, tracker, _ = build_stages(evaluation)
        tracked = run_e2e(evaluation, open_e2e_dataset(None, "val", evaluation), stages=(detector, tracker, forecasters["constant velocity"]))
        rows: dict[str, Any] = {}
        results: dict[str, E2EResult] = {}
        for name, forecaster in forecasters.items():
            result = results[name] = reforecast(evaluation, tracked, forecaster)
            scores = result.evaluate(evaluation)
            rows[name] = {
                "mAP_F": scores.mean_mAP_F,
                "ADE": scores.mean("ADE"),
                "FDE": scores.mean("FDE"),
                "per_profile_mAP_F": {
                    profile: _nanmean([cell["mAP_F"] for cell in cells.values()]) for profile, cells in scores.per_profile.items()
                },
                "detected_agents_median_FDE_m": detected_agents_fde(result.submission, result.ground_truth, evaluation.max_range_m),
            }
    left_out = leave_one_log_out_mAP_F(results, evaluation)
    for name, row in rows.items():
        row["mAP_F_jackknife_se"] = jackknife_standard_error(left_out[name])
    which = "held-out" if args.seed == HELD_OUT_SEED else "validation"
    table = Table(title=f"End-to-end forecasting on {which} synthetic logs (seed {args.seed}; same {args.detector} detector + tracker outputs)")
    for column in ("forecaster", "mAP_F", "ADE (m)", "FDE (m)", *(f"mAP_F {p}" for p in VELOCITY_TYPES), *(f"FDE {p} (m)" for p in VELOCITY_TYPES)):
        table.add_column(column, justify="left" if column == "forecaster" else "right")
    for name, row in rows.items():
        profiles, fde = row["per_profile_mAP_F"], row["detected_agents_median_FDE_m"]
        table.add_row(
            name, f"{row['mAP_F']:.3f} ± {row['mAP_F_jackknife_se']:.3f}", f"{row['ADE']:.3f}", f"{row['FDE']:.3f}",
            *(f"{profiles[p]:.3f}" for p in VELOCITY_TYPES), *(f"{fde[p]['median']:.2f}" for p in VELOCITY_TYPES),
        )  # fmt: skip
    console.print(table)
    console.print("FDE <profile>: median best-of-5 final error over ground-truth agents of that profile with a forecast agent within 2 m")
    console.print(f"mAP_F ± leave-one-log-out jackknife standard error over the {args.logs} logs; gaps between consecutive rows (paired):")
    names = list(rows)
    gaps = {}
    for before, after in itertools.pairwise(names):
        gap = rows[after]["mAP_F"] - rows[before]["mAP_F"]
        gap_se = jackknife_standard_error(left_out[after] - left_out[before])
        gaps[f"{after} - {before}"] = {"mAP_F": gap, "jackknife_se": gap_se}
        console.print(f"  {after} - {before}: {gap:+.3f} ± {gap_se:.3f}")
    command = f".venv/bin/python -m benchmarks.quality_e2e --detector {args.detector} --logs {args.logs}"
    if args.seed != HELD_OUT_SEED:
        command += f" --seed {args.seed}"
    if args.pretrained != SHIPPED_CHECKPOINT:
        command += f" --pretrained {args.pretrained}"
    payload = {
        "command": command,
        "protocol": {
            "pretrained": str(args.pretrained.relative_to(REPO) if args.pretrained.is_relative_to(REPO) else args.pretrained),
            "finetune_job": str(FINETUNE_JOB.relative_to(REPO)),
            "train": train_split.model_dump(),
            "evaluation": evaluation_split.model_dump(),
            "detector": {"kind": "oracle", **DETECTOR_NOISE.model_dump()} if args.detector == "oracle" else {"kind": "lidar (shipped checkpoint)"},
            "finetune": job.finetune.model_dump(),
            "finetune_match_counts": counts,
        },
        "results": rows,
        "gaps": gaps,
        "seconds": time.perf_counter() - start,
    }
    suffix = ("" if args.seed == HELD_OUT_SEED else f"_seed{args.seed}") + ("" if args.logs == HELD_OUT_LOGS else f"_{args.logs}logs")
    if args.pretrained != SHIPPED_CHECKPOINT:  # a run's forecaster.pt is named after its run folder
        suffix += f"_{args.pretrained.parent.name if args.pretrained.name == 'forecaster.pt' else args.pretrained.stem}"
    results_path = RESULTS_DIR / f"quality_e2e_{args.detector}{suffix}.json"
    atomic_write_text(results_path, json.dumps(payload, indent=2) + "\n")
    console.print(f"wrote {results_path} ({payload['seconds']:.0f} s)")
    return payload


def leave_one_log_out_mAP_F(results: dict[str, E2EResult], cfg: E2EForecastConfig) -> dict[str, np.ndarray]:
    """Each forecaster's mAP_F rescored with each log (in sorted order) left out in turn."""
    logs = sorted(next(iter(results.values())).ground_truth)
    left_out: dict[str, list[float]] = {name: [] for name in results}
    for dropped in logs:
        kept = [log_id for log_id in logs if log_id != dropped]
        for name, result in results.items():
            rois = {log_id: result.rois[log_id] for log_id in kept} if result.rois is not None else None
            scores = evaluate_submission(
                {log_id: result.submission[log_id] for log_id in kept}, {log_id: result.ground_truth[log_id] for log_id in kept},
                rois=rois, top_k=cfg.top_k, max_range_m=cfg.max_range_m,
            )  # fmt: skip
            left_out[name].append(scores.mean_mAP_F)
    return {name: np.array(values) for name, values in left_out.items()}


def jackknife_standard_error(left_out: np.ndarray) -> float:
    """The jackknife standard error of a statistic from its leave-one-out values (NaN with fewer than 2)."""
    n = len(left_out)
    return float(np.sqrt((n - 1) / n * np.sum((left_out - left_out.mean()) ** 2))) if n > 1 else math.nan


def detected_agents_fde(submission: ForecastSequences, ground_truth: Sequences, max_range_m: float) -> dict[str, dict[str, float]]:
    """Per ground-truth profile: median best-of-K final error (over the GT's horizon) of the agents that were detected.

    A GT agent (within `max_range_m` of the ego) counts when a forecast agent of the same frame lies within 2 m of it;
    its nearest one is scored. Unlike mAP_F, this ignores detection scores, false positives and category cells, so it
    isolates the forecaster on the tracks it was given.
    """
    labels = filter_max_dist(convert_forecast_labels(copy.deepcopy(ground_truth)), max_range_m)
    errors: dict[str, list[float]] = {profile: [] for profile in VELOCITY_TYPES}
    for log_id, frames in labels.items():
        for timestamp_ns, agents in frames.items():
            predictions = submission.get(log_id, {}).get(timestamp_ns, [])
            centres = np.array([p["current_translation_m"] for p in predictions], dtype=np.float64).reshape(-1, 2)
            for agent in agents:
                agent["velocity_m_per_s"] = forecasting_utils.agent_velocity_m_per_s(agent)
                profile = forecasting_utils.trajectory_type(agent, CATEGORY_TO_VELOCITY_M_PER_S)
                if not len(centres):
                    continue
                distance = np.linalg.norm(centres - agent["current_translation_m"][:2], axis=1)
                nearest = int(np.argmin(distance))
                if distance[nearest] >= 2.0:
                    continue
                future = agent["future_translation_m"][:, :2]
                modes = predictions[nearest]["prediction_m"][:, : len(future)]
                errors[profile].append(float(np.linalg.norm(modes[:, -1] - future[-1], axis=-1).min()))
    return {
        profile: {"median": float(np.median(values)) if values else math.nan, "agents": len(values)}
        for profile, values in errors.items()
    }


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


if __name__ == "__main__":
    main()
