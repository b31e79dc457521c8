"""Forecasting quality on held-out synthetic logs: constant velocity, plain, Reweight, RUBiZ and CAB.

Reproduce the figures (written to benchmarks/results/quality_forecasting.json) with

    .venv/bin/python -m benchmarks.quality_forecasting

Each learned variant trains on the synthetic logs `0 .. train_logs-1` of `configs/forecasting/<variant>_synth.yaml`
(same seed, data and network; only the objective differs) and is evaluated on the held-out logs
`HELD_OUT_FIRST .. HELD_OUT_FIRST + held_out_logs - 1` of the same city generator, forecasting every vehicle with a fully observed
horizon every 0.5 s. Metrics: minADE_k/minFDE_k (k = 1, 5), miss rate (k = 5, max pointwise error >= 2 m),
off-road rate of all modes against the drivable-area raster, and CAB's temporal consistency: dispersion and
convergence-to-range(tau) for tau in {0.2, 1, 5} m (see forecasting/metrics.py). `--ship` also copies the CAB
checkpoint to forecasting/checkpoints/cab_synth.pt.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from forecasting.baselines import ConstantVelocityForecaster
from forecasting.config import ForecastingConfig
from forecasting.dataset import FeatureBatch, LaneSegments, build_samples, encode_scenario
from forecasting.forecaster import Forecaster, GridForecaster
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
SHIPPED_CHECKPOINT: Final = REPO_ROOT / "forecasting" / "checkpoints" / "cab_synth.pt"
VARIANTS: Final = ("plain", "reweight", "rubiz", "cab")
HELD_OUT_FIRST: Final = 1000
VEHICLES: Final = frozenset(
    CATEGORY_ID[name] for name in ("REGULAR_VEHICLE", "LARGE_VEHICLE", "BUS", "BOX_TRUCK", "TRUCK", "SCHOOL_BUS", "ARTICULATED_BUS")
)


def _evaluation_rows(scenario: Scenario, horizon: int) -> np.ndarray:
    current = scenario.current_index
    full_future = scenario.valid[:, current + 1 : current + 1 + horizon].all(axis=1)
    vehicle = np.isin(scenario.category, list(VEHICLES))
    return np.flatnonzero(scenario.valid[:, current] & full_future & vehicle)


def evaluate(forecaster: GridForecaster, scenarios: list[Scenario], k_values: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    features = forecaster.features
    trajectories, scores, truths, moving, forecasts = [], [], [], [], []
    off_road: list[float] = []
    segments_cache: dict[int, LaneSegments] = {}
    drivable_cache: dict[int, DrivableArea] = {}
    for scenario in scenarios:
        rows = _evaluation_rows(scenario, features.horizon_steps)
        if not len(rows):
            continue
        key = id(scenario.lane_graph)
        if key not in segments_cache:
            segments_cache[key] = LaneSegments.from_lane_graph(scenario.lane_graph, features.lane_segment_length_m, features.lane_points)
            assert scenario.lane_graph is not None
            drivable_cache[key] = DrivableArea.from_lane_graph(scenario.lane_graph)
        batch = encode_scenario(scenario, segments_cache[key], features, rows)
        predicted, mode_scores = forecaster.predict(batch)
        truth = batch.to_city(batch.future_m[:, None].astype(np.float64))[:, 0]
        trajectories.append(predicted)
        scores.append(mode_scores)
        truths.append(truth)
        moving.append(np.linalg.norm(truth[:, -1] - batch.origin_xy_m, axis=1) > 2.0)
        off_road.extend([off_road_rate(predicted[i : i + 1], drivable_cache[key]) for i in range(len(rows))])
        current_ns = int(scenario.timestamps_ns[scenario.current_index])
        forecasts.append(
            Forecasts(scenario.scenario_id.rsplit("_", 1)[0], current_ns, scenario.agent_ids[rows], batch.origin_xy_m,
                      predicted, mode_scores, np.ones(len(rows)), scenario.category[rows])  # fmt: skip
        )
    all_trajectories = np.concatenate(trajectories)
    all_scores = np.concatenate(scores)
    all_truth = np.concatenate(truths)
    all_moving = np.concatenate(moving)
    result: dict[str, float] = {"agents": float(len(all_truth)), "moving_agents": float(all_moving.sum())}
    for k in k_values:
        result[f"minADE_{k}"] = min_ade_k(all_trajectories, all_scores, all_truth, k)
        result[f"minFDE_{k}"] = min_fde_k(all_trajectories, all_scores, all_truth, k)
    result["MR_5"] = miss_rate_k(all_trajectories, all_scores, all_truth, 5)
    result["minFDE_5_moving"] = min_fde_k(all_trajectories[all_moving], all_scores[all_moving], all_truth[all_moving], 5)
    result["off_road"] = float(np.mean(off_road))
    consistency = temporal_consistency(forecasts, features.step_s, CONVERGENCE_TAUS_M)
    result["dispersion_m"] = consistency.dispersion_m
    for tau, value in consistency.convergence_s.items():
        result[f"C({tau:g})_s"] = value
    return result


def _config(variant: str, epochs: int | None, train_logs: int | None, seed: int | None = None) -> ForecastingConfig:
    cfg = load_config(CONFIG_DIR / f"{variant}_synth.yaml", ForecastingConfig)
    if seed is not None:
        cfg = cfg.model_copy(update={"seed": seed})
    if epochs is not None:
        cfg = cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"epochs": epochs})})
    if train_logs is not None:
        cfg = cfg.model_copy(update={"synth": cfg.synth.model_copy(update={"train_logs": train_logs})})
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--held-out-logs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=None, help="override every config's epochs (smoke runs)")
    parser.add_argument("--train-logs", type=int, default=None, help="override every config's train_logs (smoke runs)")
    parser.add_argument("--seed", type=int, default=None, help="override the training seed (initialisation, batch order)")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--ship", action="store_true", help=f"copy the CAB checkpoint to {SHIPPED_CHECKPOINT}")
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    console = Console(width=200)
    reference = _config("cab", args.epochs, args.train_logs)
    started = time.perf_counter()
    train_scenarios = synth_scenarios(reference, 0, reference.synth.train_logs)
    held_out = synth_scenarios(reference, HELD_OUT_FIRST, args.held_out_logs)
    samples: FeatureBatch = build_samples(train_scenarios, reference.features, exclude_categories=STATIC_CATEGORY_IDS, progress=True)
    console.print(
        f"{len(samples)} training samples from {reference.synth.train_logs} logs, {len(held_out)} held-out scenarios "
        f"from {args.held_out_logs} logs ({time.perf_counter() - started:.0f} s)"
    )
    rows: dict[str, dict[str, float]] = {}
    curves: dict[str, list[dict[str, float]]] = {}
    features = reference.features
    rows["constant velocity"] = evaluate(
        ConstantVelocityForecaster(features.horizon_steps, features.step_s, reference.model.num_modes, features.history_steps),
        held_out,
    )
    with tempfile.TemporaryDirectory() as scratch:
        for variant in args.variants:
            cfg = _config(variant, args.epochs, args.train_logs, args.seed)
            if cfg.features != reference.features or cfg.synth != reference.synth:
                raise ValueError(f"{variant}: features/synth data differ from the CAB config; the comparison needs the same data")
            tic = time.perf_counter()
            history: list[dict[str, float]] = []
            checkpoint = fit(cfg, samples, Path(scratch) / variant, on_checkpoint=lambda metrics, _: history.append(metrics))
            console.print(f"{variant} last epoch: " + ", ".join(f"{name} {value:.3f}" for name, value in history[-1].items()))
            train_s = time.perf_counter() - tic
            rows[variant] = evaluate(Forecaster.from_checkpoint(checkpoint), held_out)
            rows[variant]["train_s"] = train_s
            curves[variant] = history
            console.print(f"{variant}: trained in {train_s:.0f} s, minFDE_5 {rows[variant]['minFDE_5']:.3f} m")
            if variant == "cab" and args.ship:
                SHIPPED_CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(checkpoint, SHIPPED_CHECKPOINT)
    columns = ["minADE_1", "minFDE_1", "minADE_5", "minFDE_5", "MR_5", "minFDE_5_moving", "off_road", "dispersion_m"]
    columns += [f"C({tau:g})_s" for tau in CONVERGENCE_TAUS_M]
    table = Table(title=f"Forecasting on {args.held_out_logs} held-out synthetic logs (vehicles, K=5, 6 x 0.5 s)")
    table.add_column("method")
    for column in columns:
        table.add_column(column, justify="right")
    for name, values in rows.items():
        table.add_row(name, *(f"{values[column]:.3f}" for column in columns))
    console.print(table)
    payload = {
        "command": " ".join([".venv/bin/python -m benchmarks.quality_forecasting", *(sys.argv[1:] if argv is None else argv)]),
        "held_out_logs": args.held_out_logs,
        "train_samples": len(samples),
        "config": reference.model_dump(mode="json"),
        "results": rows,
        "training_curves": curves,
    }
    atomic_write_text(args.out, json.dumps(payload, indent=2))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
