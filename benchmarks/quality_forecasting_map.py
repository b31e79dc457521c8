"""Does the forecaster use the map? Off-road rate and accuracy of trained forecasters against constant velocity.

Reproduce the figures (written to benchmarks/results/quality_forecasting_map.json; the shipped checkpoints are the
default, CAB with lane goals and lane goals with tracker noise are trained first, about 8 minutes each) with

    drivestack train forecasting --data synth --config configs/forecasting/cab_synth_lane_goals.yaml --out runs/forecasting/cab_lane_goals
    drivestack train forecasting --data synth --config configs/forecasting/lane_goals_synth_tracker_noise.yaml --out runs/forecasting/lane_goals_tracker_noise
    .venv/bin/python -m benchmarks.quality_forecasting_map --checkpoints forecasting/checkpoints/cab_synth.pt \
        forecasting/checkpoints/lane_goals_synth.pt forecasting/checkpoints/lane_goals_synth_e2e.pt \
        runs/forecasting/cab_lane_goals/forecaster.pt runs/forecasting/lane_goals_tracker_noise/forecaster.pt

Protocol. Every forecaster (constant velocity, then each `--checkpoints` file, trained or shipped) forecasts every
vehicle with a fully observed horizon every 0.5 s on (a) the held-out synthetic logs `1000 .. 1000 + held_out_logs - 1`
(never trained on) and (b) the ground-truth tracks of the real AV2 log in `$DRIVESTACK_SHARED_DATA` (default
`../shared/data` beside the repository; skipped when absent), on its real map. Metrics as in
`benchmarks.quality_forecasting`: minADE/minFDE at k = 1 and K, miss rate (k = K, 2 m), minFDE_K of the agents that
move more than 2 m, and the off-road rate: the share of all K modes with a point off the drivable area (synthetic
polygons, AV2's drivable-area raster). The first checkpoint's features and K set the time grid and the metrics; every
checkpoint must share its horizon.

The AV2 motion-forecasting setting (K = 6, 6 s at 10 Hz; the shipped lane-goal model against the latent CAB model):

    drivestack train forecasting --data synth --config configs/forecasting/lane_goals_av2_mf.yaml --out runs/forecasting/lane_goals_av2_mf
    .venv/bin/python -m benchmarks.quality_forecasting_map --checkpoints forecasting/checkpoints/cab_av2_mf.pt \
        forecasting/checkpoints/lane_goals_av2_mf.pt --out benchmarks/results/quality_forecasting_map_av2_mf.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Final

import torch
from rich.console import Console
from rich.table import Table

from benchmarks.quality_forecasting import HELD_OUT_FIRST, evaluate
from forecasting.baselines import ConstantVelocityForecaster
from forecasting.dataset import scenarios_from_tracks
from forecasting.forecaster import CAB_CHECKPOINT, SHIPPED_CHECKPOINT, SHIPPED_E2E_CHECKPOINT, Forecaster, GridForecaster
from forecasting.sources import synth_scenarios
from pipelines.e2e_forecast import ground_truth_tracks
from scenes.io import atomic_write_text
from scenes.records import Scenario

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
RESULTS_PATH: Final = Path(__file__).resolve().parent / "results" / "quality_forecasting_map.json"


def columns(k: int) -> tuple[str, ...]:
    return ("agents", "minADE_1", "minFDE_1", f"minADE_{k}", f"minFDE_{k}", f"MR_{k}", f"minFDE_{k}_moving", "off_road")


def _shared_data() -> Path:
    return Path(os.environ.get("DRIVESTACK_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def real_av2_scenarios(forecaster: GridForecaster) -> list[Scenario]:
    """Scenarios of the real AV2 sample log's ground-truth tracks on the forecaster's grid ([] without the sample)."""
    root = _shared_data() / "av2" / "sensor"
    if not root.is_dir():
        return []
    from scenes.adapters.registry import open_dataset

    dataset = open_dataset(f"av2:{root}", split="val")
    scenarios: list[Scenario] = []
    for log_id in dataset.logs():
        annotated = [frame for frame in dataset.frames(log_id) if frame.annotations is not None]
        scenarios += scenarios_from_tracks(ground_truth_tracks(annotated), dataset.lane_graph(log_id), forecaster.features)
    return scenarios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=Path, nargs="+", default=[CAB_CHECKPOINT, SHIPPED_CHECKPOINT, SHIPPED_E2E_CHECKPOINT])
    parser.add_argument("--held-out-logs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    console = Console(width=200)
    forecasters: dict[str, GridForecaster] = {str(path): Forecaster.from_checkpoint(path) for path in args.checkpoints}
    reference = Forecaster.from_checkpoint(args.checkpoints[0])
    features = reference.features
    for name, forecaster in forecasters.items():
        if (forecaster.features.horizon_steps, forecaster.features.step_s) != (features.horizon_steps, features.step_s):
            raise ValueError(f"{name}: horizon differs from {args.checkpoints[0]}'s")
    cv = ConstantVelocityForecaster(features.horizon_steps, features.step_s, reference.cfg.model.num_modes, features.history_steps)
    forecasters = {"constant velocity": cv, **forecasters}
    splits = {
        f"synthetic held-out logs ({args.held_out_logs})": synth_scenarios(reference.cfg, HELD_OUT_FIRST, args.held_out_logs),
        "real AV2 log, ground-truth tracks": real_av2_scenarios(reference),
    }
    k = reference.cfg.model.num_modes
    results: dict[str, dict[str, dict[str, float]]] = {}
    for split, scenarios in splits.items():
        if not scenarios:
            console.print(f"{split}: not found, skipped")
            continue
        table = Table(title=f"{split}: vehicles, K = {k}, {features.horizon_steps} x {features.step_s} s")
        table.add_column("forecaster")
        for column in columns(k):
            table.add_column(column, justify="right")
        results[split] = {}
        for name, forecaster in forecasters.items():
            row = evaluate(forecaster, scenarios, k)
            results[split][name] = row
            table.add_row(name, *(f"{row[column]:.0f}" if column == "agents" else f"{row[column]:.3f}" for column in columns(k)))
        console.print(table)
    payload = {
        "command": " ".join([".venv/bin/python -m benchmarks.quality_forecasting_map", *(sys.argv[1:] if argv is None else argv)]),
        "checkpoints": [str(path) for path in args.checkpoints],
        "results": results,
    }
    atomic_write_text(args.out, json.dumps(payload, indent=2))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
