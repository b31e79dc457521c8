"""Forecasting quality on held-out synthetic logs: constant velocity, plain, Reweight, RUBiZ and CAB.

Reproduce the figures (written to benchmarks/results/quality_forecasting.json) with

    .venv/bin/python -m benchmarks.quality_forecasting --epochs 10 --seeds 0 1 2 --kl-weights 1 5 20 --held-out-logs 8

Protocol. The `train_logs` synthetic logs of `configs/forecasting/<variant>_synth.yaml` are split: the last
`--validation-logs` are the validation split and the others the training split. Every learned variant (same data and
network; only the objective differs) trains on the training split. CAB's lambda_KL is selected among `--kl-weights` by
minFDE_5 on the validation split (first seed only); the test logs are never used for a choice. Every variant is then
trained with each of `--seeds` and evaluated on the held-out logs `HELD_OUT_FIRST .. HELD_OUT_FIRST + held_out_logs - 1`
of the same city generator, forecasting every vehicle with a fully observed horizon every 0.5 s; the table gives the
mean and standard deviation over seeds. Metrics: minADE_k/minFDE_k (k = 1, 5), miss rate (k = 5, max pointwise error
>= 2 m), off-road rate of all modes against the drivable-area raster, and CAB's temporal consistency (section 4.4):
dispersion and convergence-to-range(tau) for tau in {0.2, 1, 5} m (see forecasting/metrics.py). `--ship` also copies
the first seed's CAB checkpoint to forecasting/checkpoints/cab_synth.pt.

Besides the paper's latent-mode variants, two rows use TNT-style lane-goal modes (forecasting/lane_goals.py) on the same
logs: the shipped objective (`lane_goals`, configs/forecasting/lane_goals_synth.yaml) and CAB over the same candidates
(`cab_lane_goals`, configs/forecasting/cab_synth_lane_goals.yaml, with that config's lambda_KL: the selection above is
made for the latent CAB only).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from forecasting.baselines import ConstantVelocityForecaster
from forecasting.config import FeatureConfig, ForecastingConfig
from forecasting.dataset import FeatureBatch, LaneSegments, build_samples, encode_scenario
from forecasting.forecaster import CAB_CHECKPOINT, Forecaster, GridForecaster
from forecasting.metrics import (
    CONVERGENCE_TAUS_M,
    DrivableArea,
    min_ade_k,
    min_fde_k,
    miss_rate_k,
    off_road_rate,
    temporal_consistency,
)
from forecasting.sources import STATIC_CATEGORY_IDS, synth_scenarios
from forecasting.train import fit
from scenes.categories import CATEGORY_ID
from scenes.config import load_config
from scenes.io import atomic_write_text
from scenes.records import Forecasts, Scenario

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
CONFIG_DIR: Final = REPO_ROOT / "configs" / "forecasting"
RESULTS_PATH: Final = Path(__file__).resolve().parent / "results" / "quality_forecasting.json"
CONFIG_NAMES: Final = {
    "plain": "plain_synth",
    "reweight": "reweight_synth",
    "rubiz": "rubiz_synth",
    "cab": "cab_synth",
    "lane_goals": "lane_goals_synth",
    "cab_lane_goals": "cab_synth_lane_goals",
}
VARIANTS: Final = tuple(CONFIG_NAMES)
HELD_OUT_FIRST: Final = 1000
VEHICLES: Final = frozenset(
    CATEGORY_ID[name] for name in ("REGULAR_VEHICLE", "LARGE_VEHICLE", "BUS", "BOX_TRUCK", "TRUCK", "SCHOOL_BUS", "ARTICULATED_BUS")
)


def evaluation_rows(scenario: Scenario, horizon: int) -> np.ndarray:
    current = scenario.current_index
    full_future = scenario.valid[:, current + 1 : current + 1 + horizon].all(axis=1)
    vehicle = np.isin(scenario.category, list(VEHICLES))
    return np.flatnonzero(scenario.valid[:, current] & full_future & vehicle)


def evaluation_batches(scenarios: list[Scenario], features: FeatureConfig) -> Iterator[tuple[Scenario, np.ndarray, FeatureBatch]]:
    """Each scenario with its fully observed vehicles (`evaluation_rows`) and their features; lane segments are built
    once per lane graph."""
    segments: dict[int, LaneSegments] = {}
    for scenario in scenarios:
        rows = evaluation_rows(scenario, features.horizon_steps)
        if not len(rows):
            continue
        key = id(scenario.lane_graph)
        if key not in segments:
            segments[key] = LaneSegments.from_lane_graph(scenario.lane_graph, features.lane_segment_length_m, features.lane_points)
        yield scenario, rows, encode_scenario(scenario, segments[key], features, rows)


def evaluate(forecaster: GridForecaster, scenarios: list[Scenario], k: int = 5) -> dict[str, float]:
    """Metrics of `forecaster` over every fully observed vehicle of `scenarios`: minADE/minFDE at 1 and `k` modes, miss
    rate and movers' minFDE at `k`, off-road rate, and the temporal-consistency figures."""
    features = forecaster.features
    trajectories, scores, truths, moving, forecasts = [], [], [], [], []
    off_road: list[float] = []
    ground_truth: dict[tuple[str, str, int], np.ndarray] = {}
    drivable_cache: dict[int, DrivableArea] = {}
    for scenario, rows, batch in evaluation_batches(scenarios, features):
        key = id(scenario.lane_graph)
        if key not in drivable_cache:
            assert scenario.lane_graph is not None
            drivable_cache[key] = DrivableArea.from_lane_graph(scenario.lane_graph)
        predicted, mode_scores = forecaster.predict(batch)
        truth = batch.to_city(batch.future_m[:, None].astype(np.float64))[:, 0]
        trajectories.append(predicted)
        scores.append(mode_scores)
        truths.append(truth)
        moving.append(np.linalg.norm(truth[:, -1] - batch.origin_xy_m, axis=1) > 2.0)
        off_road.extend([off_road_rate(predicted[i : i + 1], drivable_cache[key]) for i in range(len(rows))])
        current_ns = int(scenario.timestamps_ns[scenario.current_index])
        log_id = scenario.scenario_id.rsplit("_", 1)[0]
        for agent, path in zip(scenario.agent_ids[rows].tolist(), truth, strict=True):
            for step, point in enumerate(path):
                ground_truth[(log_id, agent, int(round(current_ns * 1e-6 + (step + 1) * features.step_s * 1000)))] = point
        forecasts.append(
            Forecasts(log_id, current_ns, scenario.agent_ids[rows], batch.origin_xy_m,
                      predicted, mode_scores, np.ones(len(rows)), scenario.category[rows])  # fmt: skip
        )
    all_trajectories = np.concatenate(trajectories)
    all_scores = np.concatenate(scores)
    all_truth = np.concatenate(truths)
    all_moving = np.concatenate(moving)
    result: dict[str, float] = {"agents": float(len(all_truth)), "moving_agents": float(all_moving.sum())}
    for modes in (1, k):
        result[f"minADE_{modes}"] = min_ade_k(all_trajectories, all_scores, all_truth, modes)
        result[f"minFDE_{modes}"] = min_fde_k(all_trajectories, all_scores, all_truth, modes)
    result[f"MR_{k}"] = miss_rate_k(all_trajectories, all_scores, all_truth, k)
    result[f"minFDE_{k}_moving"] = min_fde_k(all_trajectories[all_moving], all_scores[all_moving], all_truth[all_moving], k)
    result["off_road"] = float(np.mean(off_road))
    consistency = temporal_consistency(forecasts, features.step_s, ground_truth, CONVERGENCE_TAUS_M)
    result["consistency_groups"] = float(consistency.num_groups)
    result["dispersion_m"] = consistency.dispersion_m
    for tau, value in consistency.convergence_s.items():
        result[f"C({tau:g})_s"] = value
    return result


def same_inputs_but_goals(features: FeatureConfig, reference: FeatureConfig) -> bool:
    """Whether two feature configs encode the same inputs, whatever their lane-goal settings (modes, not inputs)."""
    return features.model_copy(update={"lane_goals": reference.lane_goals}) == reference


def _config(variant: str, epochs: int | None, train_logs: int | None, seed: int | None = None) -> ForecastingConfig:
    cfg = load_config(CONFIG_DIR / f"{CONFIG_NAMES[variant]}.yaml", ForecastingConfig)
    if seed is not None:
        cfg = cfg.model_copy(update={"seed": seed})
    if epochs is not None:
        cfg = cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"epochs": epochs})})
    if train_logs is not None:
        cfg = cfg.model_copy(update={"synth": cfg.synth.model_copy(update={"train_logs": train_logs})})
    return cfg


def _with_kl_weight(cfg: ForecastingConfig, kl_weight: float) -> ForecastingConfig:
    return cfg.model_copy(update={"objective": cfg.objective.model_copy(update={"kl_weight": kl_weight})})


def _summary(per_seed: list[dict[str, float]]) -> dict[str, float]:
    """Mean and (population) standard deviation over seeds of every metric."""
    summary: dict[str, float] = {}
    for name in per_seed[0]:
        values = np.array([row[name] for row in per_seed], dtype=np.float64)
        summary[name] = float(values.mean())
        summary[f"{name}_std"] = float(values.std())
    return summary


COLUMNS: Final = ["minADE_1", "minFDE_1", "minADE_5", "minFDE_5", "MR_5", "minFDE_5_moving", "off_road", "dispersion_m"] + [
    f"C({tau:g})_s" for tau in CONVERGENCE_TAUS_M
]


def _table(title: str, rows: dict[str, dict[str, float]]) -> Table:
    table = Table(title=title)
    table.add_column("method")
    for column in COLUMNS:
        table.add_column(column, justify="right")
    for name, values in rows.items():
        cells = []
        for column in COLUMNS:
            spread = values.get(f"{column}_std")
            cells.append(f"{values[column]:.3f}" + (f" ± {spread:.3f}" if spread is not None else ""))
        table.add_row(name, *cells)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--held-out-logs", type=int, default=4)
    parser.add_argument("--validation-logs", type=int, default=2, help="last training logs kept out for model selection")
    parser.add_argument("--epochs", type=int, default=None, help="override every config's epochs")
    parser.add_argument("--train-logs", type=int, default=None, help="override every config's train_logs (validation included)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds (initialisation, batch order)")
    parser.add_argument("--kl-weights", type=float, nargs="+", default=[1.0, 5.0, 20.0], help="CAB lambda_KL candidates")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--ship", action="store_true", help=f"copy the first seed's CAB checkpoint to {CAB_CHECKPOINT}")
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    console = Console(width=240)
    reference = _config("cab", args.epochs, args.train_logs)
    fit_logs = reference.synth.train_logs - args.validation_logs
    if fit_logs < 1 or args.validation_logs < 1:
        raise ValueError(f"--validation-logs {args.validation_logs} must leave >= 1 of the {reference.synth.train_logs} training logs")
    started = time.perf_counter()
    train_scenarios = synth_scenarios(reference, 0, fit_logs)
    validation = synth_scenarios(reference, fit_logs, args.validation_logs)
    held_out = synth_scenarios(reference, HELD_OUT_FIRST, args.held_out_logs)
    samples: dict[str, FeatureBatch] = {}

    def training_samples(features: FeatureConfig) -> FeatureBatch:
        key = features.model_dump_json()
        if key not in samples:
            samples[key] = build_samples(train_scenarios, features, exclude_categories=STATIC_CATEGORY_IDS, progress=True)
        return samples[key]

    console.print(
        f"{len(training_samples(reference.features))} training samples from logs 0-{fit_logs - 1}, validation logs {fit_logs}-{reference.synth.train_logs - 1} "
        f"({len(validation)} scenarios), {len(held_out)} held-out scenarios from logs {HELD_OUT_FIRST}-"
        f"{HELD_OUT_FIRST + args.held_out_logs - 1} ({time.perf_counter() - started:.0f} s)"
    )
    features = reference.features
    constant_velocity = ConstantVelocityForecaster(features.horizon_steps, features.step_s, reference.model.num_modes, features.history_steps)
    curves: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as scratch:

        def train(variant: str, cfg: ForecastingConfig, tag: str) -> Path:
            if not same_inputs_but_goals(cfg.features, reference.features) or cfg.synth != reference.synth:
                raise ValueError(f"{variant}: features/synth data differ from the CAB config; the comparison needs the same data")
            history: list[dict[str, float]] = []
            tic = time.perf_counter()
            checkpoint = fit(cfg, training_samples(cfg.features), Path(scratch) / tag, on_checkpoint=lambda metrics, _: history.append(metrics))
            curves[tag] = history
            console.print(f"{tag}: {time.perf_counter() - tic:.0f} s, last epoch " + ", ".join(f"{k} {v:.3f}" for k, v in history[-1].items()))
            return checkpoint

        # Model selection on the validation logs (first seed only): CAB's lambda_KL.
        selection: dict[str, dict[str, float]] = {"constant velocity": evaluate(constant_velocity, validation)}
        cab_checkpoints: dict[float, Path] = {}
        if "cab" in args.variants:
            for kl_weight in args.kl_weights:
                tag = f"cab_kl{kl_weight:g}_seed{args.seeds[0]}"
                cab_checkpoints[kl_weight] = train("cab", _with_kl_weight(_config("cab", args.epochs, args.train_logs, args.seeds[0]), kl_weight), tag)
                selection[f"cab lambda_KL={kl_weight:g}"] = evaluate(Forecaster.from_checkpoint(cab_checkpoints[kl_weight]), validation)
        chosen_kl = min(cab_checkpoints, key=lambda w: selection[f"cab lambda_KL={w:g}"]["minFDE_5"]) if cab_checkpoints else None
        console.print(_table(f"Validation (logs {fit_logs}-{reference.synth.train_logs - 1}, seed {args.seeds[0]})", selection))
        console.print(f"selected lambda_KL = {chosen_kl} (lowest validation minFDE_5)")

        per_seed: dict[str, list[dict[str, float]]] = {"constant velocity": [evaluate(constant_velocity, held_out)]}
        for seed in args.seeds:
            for variant in args.variants:
                cfg = _config(variant, args.epochs, args.train_logs, seed)
                if variant == "cab" and chosen_kl is not None:
                    cfg = _with_kl_weight(cfg, chosen_kl)
                    checkpoint = cab_checkpoints[chosen_kl] if seed == args.seeds[0] else train(variant, cfg, f"cab_seed{seed}")
                else:
                    checkpoint = train(variant, cfg, f"{variant}_seed{seed}")
                per_seed.setdefault(variant, []).append(evaluate(Forecaster.from_checkpoint(checkpoint), held_out))
                console.print(f"{variant} seed {seed}: held-out minFDE_5 {per_seed[variant][-1]['minFDE_5']:.3f} m")
                if variant == "cab" and seed == args.seeds[0] and args.ship:
                    CAB_CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(checkpoint, CAB_CHECKPOINT)
    rows = {name: _summary(results) for name, results in per_seed.items()}
    console.print(_table(f"Held-out logs ({args.held_out_logs}), mean ± std over seeds {args.seeds} (vehicles, K=5, 6 x 0.5 s)", rows))
    payload = {
        "command": " ".join([".venv/bin/python -m benchmarks.quality_forecasting", *(sys.argv[1:] if argv is None else argv)]),
        "held_out_logs": args.held_out_logs,
        "validation_logs": args.validation_logs,
        "seeds": args.seeds,
        "train_samples": len(training_samples(reference.features)),
        "selected_kl_weight": chosen_kl,
        "config": reference.model_dump(mode="json"),
        "validation": selection,
        "results": rows,
        "results_per_seed": per_seed,
        "training_curves": curves,
    }
    atomic_write_text(args.out, json.dumps(payload, indent=2))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
