"""LiDARTouch quality: the shipped model, its baselines and the paper's ablation, on held-out synthetic drives and on
the real KITTI object frames in ../shared/data/kitti.

Reproduce benchmarks/results/quality_depth.json with:

    .venv/bin/python -m benchmarks.quality_depth

which
1. scores the shipped depth/checkpoints/lidartouch_synth.pt, trained by
       drivestack train depth --config configs/depth/lidartouch_synth.yaml --data synth --out runs/depth/lidartouch_synth
2. trains, at a reduced budget (`--logs` drives of seed 0, `--epochs`; the same for every row, so the rows compare
   methods at equal cost), the LiDARTouch config and its variants into runs/bench_depth/<row> (resumable):
   - lidartouch_paper_network: the published network (sparse LiDAR input, sigmoid output) instead of drivestack's
     default, which also feeds the interpolated 4 beams and predicts a correction of them (`interpolated_prior`);
   - camera_only: no LiDAR encoder, no LiDAR loss, pose network (Monodepth2-style self-supervision; its scale is
     arbitrary, so its median-scaled figures are the ones to read);
   - lidar_only: no image encoder (depth completion from the 4 beams; the image still drives the photometric loss);
   - the ablation: no_lidar_input, no_lidar_loss, no_lidar_pose (pose network instead of PnP with the LiDAR);
3. evaluates every model and the no-network baseline (the 4 beams interpolated to every pixel) on `--eval-logs`
   held-out drives of seed 1000 (ground truth: the renderer's depth; never used to train or to choose settings) and on
   the real KITTI object frames (input: 4 of the 64 beams, ground truth: all 64 beams), with the 80 m cap and the
   Garg crop, metric and median-scaled (see depth/evaluate.py). Moving-with-ego: AbsRel on pixels of vehicles moving
   with the ego vehicle (the synthetic city knows them), the paper's infinite-depth failure case.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from depth.config import DepthConfig
from depth.data import DepthSample, dataset_samples, synth_samples
from depth.evaluate import depth_table, evaluate_depth, interpolation_predictor, network_predictor
from depth.model import SHIPPED_CHECKPOINT, DepthEstimator
from depth.train import DepthTask
from scenes.adapters.kitti import KittiObjectDataset
from scenes.config import load_config
from scenes.io import atomic_write_text
from scenes.training.harness import fit

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "depth" / "lidartouch_synth.yaml"
RESULTS = REPO / "benchmarks" / "results" / "quality_depth.json"
KITTI_OBJECT = REPO.parent / "shared" / "data" / "kitti" / "object"
NO_LIDAR_INPUT: dict[str, Any] = {"network.use_lidar": False, "network.interpolated_prior": False}
VARIANTS: dict[str, dict[str, Any]] = {
    "lidartouch": {},
    "lidartouch_paper_network": {"network.interpolated_prior": False},
    "camera_only": {**NO_LIDAR_INPUT, "loss.lidar": 0.0, "pose.method": "posenet"},
    "lidar_only": {"network.use_image": False},
    "no_lidar_input": NO_LIDAR_INPUT,
    "no_lidar_loss": {"loss.lidar": 0.0},
    "no_lidar_pose": {"pose.method": "posenet"},
}


def variant_config(name: str, logs: int, epochs: int) -> DepthConfig:
    return load_config(CONFIG, DepthConfig, {**VARIANTS[name], "synth.logs": logs, "train.epochs": epochs})


def train_variants(logs: int, epochs: int, runs: Path) -> dict[str, Path]:
    """Trains every variant (samples built once per pose source); returns the final checkpoints."""
    samples: dict[str, list[DepthSample]] = {}
    checkpoints = {}
    for name in VARIANTS:
        config = variant_config(name, logs, epochs)
        if config.pose.method not in samples:
            samples[config.pose.method] = synth_samples(config, config.synth.seed, config.synth.logs)
        print(f"training {name}: {len(samples[config.pose.method])} samples, {epochs} epochs", flush=True)
        checkpoints[name] = fit(DepthTask(config, samples[config.pose.method], config_source=f"{CONFIG} + {VARIANTS[name]}"), runs / name)
    return checkpoints


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", type=int, default=4, help="training drives per variant (seed 0)")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs per variant")
    parser.add_argument("--eval-logs", type=int, default=2, help="held-out drives (seed 1000)")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "bench_depth")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    checkpoints = {"lidartouch (shipped)": SHIPPED_CHECKPOINT, **train_variants(args.logs, args.epochs, args.runs)}
    estimators = {name: DepthEstimator.from_checkpoint(path) for name, path in checkpoints.items()}
    base = load_config(CONFIG, DepthConfig)
    predictors = {name: network_predictor(estimator) for name, estimator in estimators.items()} | {"interpolation": interpolation_predictor}
    held_out = synth_samples(base, base.synth.validation_seed, args.eval_logs, evaluation=True)
    console = Console(width=200)
    result: dict[str, Any] = {"settings": {"train_logs": args.logs, "epochs": args.epochs, "eval_logs": args.eval_logs, "images": len(held_out)}}
    result["synthetic"] = evaluate_depth(held_out, predictors)
    console.print(depth_table(result["synthetic"], f"held-out synthetic drives (seed {base.synth.validation_seed}, {len(held_out)} images)"))
    if KITTI_OBJECT.is_dir():
        real = dataset_samples(KittiObjectDataset(KITTI_OBJECT), base, evaluation=True)
        result["kitti_object"] = evaluate_depth(real, predictors)
        console.print(depth_table(result["kitti_object"], f"real KITTI object frames ({len(real)} images, ground truth: 64 beams)"))
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
