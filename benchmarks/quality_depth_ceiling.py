"""How much the LiDARTouch training loss says about depth beyond the 4 beams, with no network in the way.

Reproduce benchmarks/results/quality_depth_ceiling.json with:

    .venv/bin/python -m benchmarks.quality_depth_ceiling

For each held-out synthetic sample (seed 1000, configs/depth/lidartouch_synth.yaml's rig and resolution) the depth map
itself is optimised: a free log-correction per pixel of the interpolated 4 beams, bounded as the network's
(`interpolated_prior`), fitted with Adam to the training loss (`depth.losses.total_loss`: photometric reprojection
from the previous and next frames with auto-masking, L1 on the 4 beams, edge-aware smoothness; full resolution only).
The table gives the loss of the interpolated prior, of the true depth (the renderer's) and of the optimum found, and
the AbsRel (metric, 80 m cap, Garg crop) of the prior and of the optimum, for each pose source and smoothness weight.

A network trained on this loss can only learn what the loss prefers. If the per-pixel optimum is no closer to the
truth than the prior, the learned model cannot beat interpolation by much either, whatever its capacity; if the truth's
loss is not below the optimum's, the loss has better-scoring wrong depths than the true one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from depth.config import DepthConfig
from depth.data import DepthSample, synth_samples
from depth.lidartouch import MAX_LOG_CORRECTION
from depth.losses import total_loss
from depth.metrics import depth_errors, garg_crop_mask
from depth.model import upsample_depth
from depth.train import augmented
from scenes.config import load_config
from scenes.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "depth" / "lidartouch_synth.yaml"
RESULTS = REPO / "benchmarks" / "results" / "quality_depth_ceiling.json"


def _loss_inputs(sample: DepthSample, config: DepthConfig) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The un-augmented batch of one sample exactly as training feeds `total_loss`, and its prior depth `(1, 1, H, W)`."""
    _, target, sources, lidar_depth_m, intrinsics, source_T_target, prior_depth_m = augmented(sample, None, config)
    inputs = {
        "target": torch.tensor(target).permute(2, 0, 1)[None],
        "sources": torch.tensor(sources).permute(0, 3, 1, 2)[None],
        "lidar_depth_m": torch.tensor(lidar_depth_m)[None, None],
        "intrinsics": torch.tensor(intrinsics)[None],
        "source_T_target": torch.tensor(source_T_target)[None],
        "pose_valid": torch.tensor(sample.pose_valid)[None],
    }
    return inputs, torch.tensor(prior_depth_m)[None, None]


def _abs_rel(depth_m: np.ndarray, sample: DepthSample) -> float:
    gt = sample.gt_depth_m
    assert gt is not None
    errors = depth_errors(upsample_depth(depth_m, *gt.shape), gt, mask=garg_crop_mask(*gt.shape))
    assert errors is not None
    return errors.abs_rel


def optimise_sample(sample: DepthSample, config: DepthConfig, steps: int, learning_rate: float) -> dict[str, float]:
    """Losses of the prior, the truth and the per-pixel optimum of one sample, and the AbsRel of prior and optimum."""
    inputs, prior = _loss_inputs(sample, config)
    network = config.network
    prior = prior.clamp(network.min_depth_m, network.max_depth_m)
    gt = sample.gt_depth_m
    assert gt is not None
    gt_small = torch.nn.functional.interpolate(torch.tensor(gt)[None, None], size=prior.shape[-2:], mode="nearest")
    truth = torch.where(gt_small > 0, gt_small.clamp(network.min_depth_m, network.max_depth_m), prior)

    def loss_of(inverse_depth: torch.Tensor) -> torch.Tensor:
        return total_loss([inverse_depth], config=config.loss, **inputs)[0]

    logit = torch.zeros_like(prior, requires_grad=True)
    optimiser = torch.optim.Adam([logit], lr=learning_rate)
    for _ in range(steps):
        loss = loss_of(torch.exp(MAX_LOG_CORRECTION * torch.tanh(logit)) / prior)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        optimum_inverse = torch.exp(MAX_LOG_CORRECTION * torch.tanh(logit)) / prior
        return {
            "loss_prior": float(loss_of(1.0 / prior)),
            "loss_truth": float(loss_of(1.0 / truth)),
            "loss_optimum": float(loss_of(optimum_inverse)),
            "abs_rel_prior": _abs_rel(sample.prior_depth_m, sample),
            "abs_rel_optimum": _abs_rel((1.0 / optimum_inverse)[0, 0].numpy(), sample),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=6, help="held-out samples (every other frame of one drive)")
    parser.add_argument("--steps", type=int, default=300, help="Adam steps per sample")
    parser.add_argument("--learning-rate", type=float, default=0.02)
    parser.add_argument("--smoothness", type=float, nargs="+", default=[0.01, 0.1, 1.0], help="smoothness weights to try")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    base = load_config(CONFIG, DepthConfig)
    seconds = 0.2 * args.samples + 0.2
    rows: list[dict[str, Any]] = []
    with Progress(transient=True) as progress:
        for pose in ("oracle", "pnp"):
            config = base.model_copy(
                update={"synth": base.synth.model_copy(update={"seconds": seconds}), "pose": base.pose.model_copy(update={"method": pose})}
            )
            samples = synth_samples(config, base.synth.validation_seed, 1, evaluation=True)[::2][: args.samples]
            for smoothness in args.smoothness:
                tuned = config.model_copy(update={"loss": config.loss.model_copy(update={"smoothness": smoothness, "scales": 1})})
                task = progress.add_task(f"{pose} poses, smoothness {smoothness}", total=len(samples))
                per_sample = []
                for sample in samples:
                    per_sample.append(optimise_sample(sample, tuned, args.steps, args.learning_rate))
                    progress.advance(task)
                means = {key: float(np.mean([row[key] for row in per_sample])) for key in per_sample[0]}
                rows.append({"pose": pose, "smoothness": smoothness, "samples": len(per_sample), **means})
    table = Table(title=f"per-pixel optimum of the training loss (held-out seed {base.synth.validation_seed}, means over samples)")
    for column in ("pose", "smoothness", "loss prior", "loss truth", "loss optimum", "AbsRel prior", "AbsRel optimum"):
        table.add_column(column, justify="left" if column == "pose" else "right")
    figures = ("loss_prior", "loss_truth", "loss_optimum", "abs_rel_prior", "abs_rel_optimum")
    for row in rows:
        table.add_row(row["pose"], f"{row['smoothness']:g}", *(f"{row[key]:.4f}" for key in figures))
    Console(width=200).print(table)
    settings = {"samples": args.samples, "steps": args.steps, "learning_rate": args.learning_rate, "seed": base.synth.validation_seed}
    atomic_write_text(args.out, json.dumps({"settings": settings, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
