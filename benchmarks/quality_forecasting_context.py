"""How much does the context tell about the future? The likelihood gap between forecasters that see it and one that
does not.

Reproduce benchmarks/results/quality_forecasting_context.json with

    .venv/bin/python -m benchmarks.quality_forecasting_context --seeds 0 1 2 --epochs 8

Protocol. The plain latent forecaster of configs/forecasting/plain_synth.yaml (same training logs, network, objective
and budget for every row) is trained with four inputs: the agent's past with the whole context (neighbours' histories
and lane segments), with each of the two alone, and the past only (`max_neighbors: 0`, `max_lanes: 0`: those encodings
are then zero). A fifth row trains the lane-goal forecaster (configs/forecasting/lane_goals_synth.yaml: the same
inputs, but its modes are goals on the lanes the agent can reach) on the same logs at the same budget: a second way to
extract what the map tells. Two more rows add the traffic signals' states to the lanes (`traffic_signals: true`: each
lane point carries the state of the signal at its lane's end, as the city records them), to the whole-context latent
model and to the lane-goal model; their gap over the row without signals is what the signals tell. Each is scored on
the held-out synthetic logs of `benchmarks.quality_forecasting` (every vehicle with a fully observed horizon, every
0.5 s) and, when `../shared/data` has it, on the real AV2 log's
ground-truth tracks: the exact negative log-likelihood of the true future under the predicted mixture
(`-log sum_z p(z) p(Y | z)`, over every candidate for the lane-goal model, the prior as in training; nats per agent,
the whole horizon's 2-D positions), over all vehicles and over those that move more than 2 m, and minFDE at 1 and K.

Reading it. Each NLL is a cross-entropy, an upper bound on the entropy of the future given what that model sees. The
gap `NLL(past only) - NLL(row)` therefore estimates the information that the context carries about the future beyond
the agent's own past, I(Y; C | X), in nats per agent, as far as that row's model extracts it (an underestimate when it
underfits or overfits; the rows are different estimators of the same quantity). A method that rewards using the
context, such as CAB, can only show an effect where this gap is large. Rerun it after any change of the simulated
traffic to measure what the change added. The real-log rows are models trained on the synthetic city, so they mix the
context's information with the sim-to-real gap; read them as a reference, not as the real world's gap.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from benchmarks.quality_forecasting import CONFIG_DIR, HELD_OUT_FIRST, evaluate, evaluation_batches, same_inputs_but_goals
from benchmarks.quality_forecasting_map import real_av2_scenarios
from forecasting.cab import training_logits
from forecasting.config import LANE_POINT_DIM, ForecastingConfig
from forecasting.dataset import FeatureBatch, build_samples
from forecasting.forecaster import Forecaster
from forecasting.losses import mixture_nll
from forecasting.sources import STATIC_CATEGORY_IDS, synth_scenarios
from forecasting.train import fit
from scenes.config import load_config
from scenes.io import atomic_write_text
from scenes.records import Scenario

RESULTS_PATH: Final = Path(__file__).resolve().parent / "results" / "quality_forecasting_context.json"
FULL: Final = "past + neighbours + lanes"
PAST_ONLY: Final = "past only"
LANE_GOALS: Final = "past + neighbours + lanes, lane-goal modes"
WITH_SIGNALS: Final = " + signals"
# What each latent-mode row sees: (neighbours, lanes).
INPUTS: Final = {FULL: (True, True), "past + lanes": (False, True), "past + neighbours": (True, False), PAST_ONLY: (False, False)}
MOVING_M: Final = 2.0


def input_config(base: ForecastingConfig, neighbours: bool, lanes: bool, seed: int, epochs: int | None) -> ForecastingConfig:
    """`base` seeing only the chosen parts of the context (a part left out has no elements, so its encoding is 0)."""
    features = base.features.model_copy(
        update={"max_neighbors": base.features.max_neighbors if neighbours else 0, "max_lanes": base.features.max_lanes if lanes else 0}
    )
    return _run_config(base.model_copy(update={"features": features}), seed, epochs)


def _run_config(cfg: ForecastingConfig, seed: int, epochs: int | None) -> ForecastingConfig:
    optim = cfg.optim if epochs is None else cfg.optim.model_copy(update={"epochs": epochs})
    return cfg.model_copy(update={"optim": optim, "seed": seed})


def with_signals(cfg: ForecastingConfig) -> ForecastingConfig:
    return cfg.model_copy(update={"features": cfg.features.model_copy(update={"traffic_signals": True})})


def restricted(samples: FeatureBatch, neighbours: bool, lanes: bool, signals: bool = False) -> FeatureBatch:
    """`samples` (encoded with the signals) without the neighbours, lanes and/or signals, as `encode_scenario` gives
    them with `max_neighbors` / `max_lanes` set to 0 or `traffic_signals` off."""
    lane_points = samples.lanes if signals else samples.lanes[..., :LANE_POINT_DIM]
    return replace(
        samples,
        neighbors=samples.neighbors if neighbours else samples.neighbors[:, :0],
        neighbor_mask=samples.neighbor_mask if neighbours else samples.neighbor_mask[:, :0],
        lanes=lane_points if lanes else lane_points[:, :0],
        lane_mask=samples.lane_mask if lanes else samples.lane_mask[:, :0],
    )


@torch.no_grad()
def negative_log_likelihoods(forecaster: Forecaster, scenarios: list[Scenario]) -> tuple[np.ndarray, np.ndarray]:
    """`-log p(Y | inputs)` `(N,)` in nats of every vehicle with a fully observed horizon in `scenarios` (the rows of
    `benchmarks.quality_forecasting.evaluate`), and whether each moves more than 2 m over the horizon."""
    nlls, moving = [], []
    for _, _, features_batch in evaluation_batches(scenarios, forecaster.features):
        batch = features_batch.to_torch()
        prediction, _ = forecaster.network(batch)
        log_prior = F.log_softmax(training_logits(prediction.logits, forecaster.cfg.objective.logit_clip, prediction.mode_mask), dim=-1)
        nll = mixture_nll(log_prior, prediction.trajectories_m, prediction.log_scale, batch["future_m"], batch["future_valid"])
        nlls.append(nll.double().numpy())
        moving.append(torch.linalg.vector_norm(batch["future_m"][:, -1], dim=-1).numpy() > MOVING_M)
    return np.concatenate(nlls), np.concatenate(moving)


def score(forecaster: Forecaster, scenarios: list[Scenario]) -> dict[str, float]:
    nll, moving = negative_log_likelihoods(forecaster, scenarios)
    k = forecaster.cfg.model.num_modes
    metrics = evaluate(forecaster, scenarios, k)
    return {
        "agents": float(len(nll)),
        "nll": float(nll.mean()),
        "nll_moving": float(nll[moving].mean()),
        "minFDE_1": metrics["minFDE_1"],
        f"minFDE_{k}": metrics[f"minFDE_{k}"],
        f"minFDE_{k}_moving": metrics[f"minFDE_{k}_moving"],
    }


def summary(per_seed: list[dict[str, float]]) -> dict[str, float]:
    """Mean and (population) standard deviation over seeds of every figure."""
    result: dict[str, float] = {}
    for name in per_seed[0]:
        values = np.array([row[name] for row in per_seed])
        result[name], result[f"{name}_std"] = float(values.mean()), float(values.std())
    return result


def context_gaps(per_seed: dict[str, list[dict[str, float]]]) -> dict[str, float]:
    """NLL(past only) - NLL(row), per seed then averaged: the information (nats per agent) each input adds to the past."""
    gaps: dict[str, float] = {}
    for name, rows in per_seed.items():
        for column in ("nll", "nll_moving"):
            differences = np.array([blind[column] - row[column] for blind, row in zip(per_seed[PAST_ONLY], rows, strict=True)])
            gaps[f"{name}: {column}"], gaps[f"{name}: {column}_std"] = float(differences.mean()), float(differences.std())
    return gaps


def _table(title: str, rows: dict[str, dict[str, float]], gaps: dict[str, float]) -> Table:
    columns = [column for column in next(iter(rows.values())) if not column.endswith("_std")]
    table = Table(title=title)
    for column in ("input", *columns, "gap (nats)", "gap moving"):
        table.add_column(column, justify="left" if column == "input" else "right")
    for name, values in rows.items():
        cells = [f"{values[c]:.0f}" if c == "agents" else f"{values[c]:.3f} ± {values[c + '_std']:.3f}" for c in columns]
        gap = [f"{gaps[f'{name}: {c}']:.3f} ± {gaps[f'{name}: {c}_std']:.3f}" for c in ("nll", "nll_moving")]
        table.add_row(name, *cells, *gap)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=CONFIG_DIR / "plain_synth.yaml", help="the latent-mode forecaster")
    parser.add_argument("--goal-config", type=Path, default=CONFIG_DIR / "lane_goals_synth.yaml", help="the lane-goal forecaster")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs (the same for every row)")
    parser.add_argument("--train-logs", type=int, default=None, help="override the config's synthetic training logs")
    parser.add_argument("--held-out-logs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 when another benchmark shares the 2 cores)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    console = Console(width=220)
    overrides = {} if args.train_logs is None else {"synth.train_logs": args.train_logs}
    base = load_config(args.config, ForecastingConfig, overrides)
    goals = load_config(args.goal_config, ForecastingConfig, overrides)
    if base.features.lane_goals.enabled:
        raise ValueError(f"{args.config}: lane-goal modes are drawn from the map, so the past-only row would still see it; use a latent-mode config")
    if not goals.features.lane_goals.enabled or not same_inputs_but_goals(goals.features, base.features):
        raise ValueError(f"{args.goal_config}: must be {args.config}'s features with lane goals enabled")
    if base.features.traffic_signals:
        raise ValueError(f"{args.config}: must leave traffic_signals off (the benchmark adds the rows with signals itself)")
    if goals.synth != base.synth:
        raise ValueError(f"{args.goal_config}: its synthetic training data differ from {args.config}'s")
    started = time.perf_counter()
    scenarios = synth_scenarios(base, 0, base.synth.train_logs)
    samples = build_samples(scenarios, with_signals(base).features, exclude_categories=STATIC_CATEGORY_IDS, progress=True)
    goal_samples = build_samples(scenarios, with_signals(goals).features, exclude_categories=STATIC_CATEGORY_IDS, progress=True)
    splits = {f"synthetic held-out logs ({args.held_out_logs})": synth_scenarios(base, HELD_OUT_FIRST, args.held_out_logs)}
    real = real_av2_scenarios(Forecaster(base))
    if real:
        splits["real AV2 log, ground-truth tracks"] = real
    console.print(f"{len(samples)} training samples from {base.synth.train_logs} logs ({time.perf_counter() - started:.0f} s)")
    per_seed: dict[str, dict[str, list[dict[str, float]]]] = {split: {} for split in splits}
    with tempfile.TemporaryDirectory() as scratch:
        for seed in args.seeds:
            runs = {name: (input_config(base, *sees, seed, args.epochs), restricted(samples, *sees)) for name, sees in INPUTS.items()}
            runs[FULL + WITH_SIGNALS] = (input_config(with_signals(base), True, True, seed, args.epochs), samples)
            runs[LANE_GOALS] = (_run_config(goals, seed, args.epochs), restricted(goal_samples, True, True))
            runs[LANE_GOALS + WITH_SIGNALS] = (_run_config(with_signals(goals), seed, args.epochs), goal_samples)
            for name, (cfg, data) in runs.items():
                tic = time.perf_counter()
                forecaster = Forecaster.from_checkpoint(fit(cfg, data, Path(scratch) / f"{name}_{seed}", progress=False))
                for split, split_scenarios in splits.items():
                    per_seed[split].setdefault(name, []).append(score(forecaster, split_scenarios))
                first = next(iter(splits))
                console.print(f"seed {seed}, {name}: {time.perf_counter() - tic:.0f} s, held-out NLL {per_seed[first][name][-1]['nll']:.3f}")
    results: dict[str, Any] = {}
    for split, rows in per_seed.items():
        gaps = context_gaps(rows)
        results[split] = {"rows": {name: summary(values) for name, values in rows.items()}, "gap_to_past_only": gaps, "per_seed": rows}
        console.print(_table(f"{split}: NLL of the true future (nats per agent), mean ± std over seeds {args.seeds}", results[split]["rows"], gaps))
    payload = {
        "command": " ".join([".venv/bin/python -m benchmarks.quality_forecasting_context", *(sys.argv[1:] if argv is None else argv)]),
        "config": base.model_dump(mode="json"),
        "epochs": args.epochs or base.optim.epochs,
        "train_samples": len(samples),
        "results": results,
    }
    atomic_write_text(args.out, json.dumps(payload, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
