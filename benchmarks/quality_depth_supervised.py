"""What the synthetic city can teach the LiDARTouch network at all: the same network trained on the renderer's dense
depth, scored on held-out synthetic drives and on the real KITTI object frames in ../shared/data/kitti.

Reproduce benchmarks/results/quality_depth_supervised.json with:

    .venv/bin/python -m benchmarks.quality_depth_supervised

The network of configs/depth/lidartouch_synth.yaml (image + 4-beam input, interpolated prior) is trained at the
budget of benchmarks.quality_depth's rows (`--logs` drives of seed 0, `--epochs`) with a loss that no self-supervised
method has: L1 on inverse depth at every pixel of the renderer's depth up to 80 m, every scale (flips off: the dense
maps are not flipped). This is not LiDARTouch; it bounds what any loss computed on the synthetic city can teach the
network. If this network beats interpolation on held-out synthetic drives but not on the real frames, what keeps the
self-supervised model from beating interpolation on KITTI is the gap between the city's images and scenes and real
ones, not the loss. AbsRel is also given per quarter of the Garg crop's rows (top first), the metric protocol of
depth/evaluate.py applied to each band.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from depth.config import DepthConfig
from depth.data import DepthSample, dataset_samples, synth_samples
from depth.evaluate import Predictor, depth_table, evaluate_depth, interpolation_predictor, network_predictor
from depth.losses import total_loss
from depth.metrics import MAX_DEPTH_M, depth_errors, garg_crop_mask
from depth.model import DepthEstimator, upsample_depth
from depth.train import DepthBatch, DepthTask
from scenes.adapters.kitti import KittiObjectDataset
from scenes.config import load_config
from scenes.io import atomic_write_text
from scenes.training.harness import fit

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "depth" / "lidartouch_synth.yaml"
RESULTS = REPO / "benchmarks" / "results" / "quality_depth_supervised.json"
KITTI_OBJECT = REPO.parent / "shared" / "data" / "kitti" / "object"
BANDS: Final = 4


def dense_config(config: DepthConfig) -> DepthConfig:
    """`config` for dense supervision only: no photometric or smoothness term, no flips, and the poses are not used
    (oracle: no PnP cost)."""
    data = config.model_dump()
    data["loss"].update(photometric=0.0, smoothness=0.0)
    data["train"]["flip"] = False
    data["pose"]["method"] = "oracle"
    return DepthConfig.model_validate(data)


def dense_target(sample: DepthSample, config: DepthConfig) -> np.ndarray:
    """The renderer's depth at the network resolution (nearest pixel), 0 beyond `MAX_DEPTH_M` or where there is none."""
    gt = sample.gt_depth_m
    assert gt is not None
    kept = np.where((gt > 0) & (gt <= MAX_DEPTH_M), gt, 0.0).astype(np.float32)
    return cv2.resize(kept, (config.network.width_px, config.network.height_px), interpolation=cv2.INTER_NEAREST)


class DenseDepthTask(DepthTask):
    """The LiDARTouch network and inputs, trained on dense depth instead of its self-supervised losses."""

    def __init__(self, config: DepthConfig, samples: Sequence[DepthSample]) -> None:
        super().__init__(config, samples, config_source=f"{CONFIG}, dense supervision (benchmarks.quality_depth_supervised.dense_config)")
        self.dense = [dense_target(sample, config) for sample in self.samples]

    def make_batch(self, indices: np.ndarray, epoch: int, device: torch.device) -> tuple[DepthBatch, torch.Tensor]:  # type: ignore[override]
        dense = torch.from_numpy(np.stack([self.dense[i] for i in indices]))[:, None].to(device)
        return super().make_batch(indices, epoch, device), dense

    def loss(self, model: torch.nn.Module, batch: tuple[DepthBatch, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:  # type: ignore[override]
        inputs, dense = batch
        inverse_depths, _ = model(inputs.network_image, inputs.lidar_depth_m, inputs.prior_depth_m, inputs.target, inputs.sources)
        return total_loss(inverse_depths, inputs.target, inputs.sources, dense, inputs.intrinsics, inputs.source_T_target, inputs.pose_valid, self.config.loss)


def predicted_once(predict: Predictor) -> Predictor:
    """`predict`, run at most once per sample (the metrics and the row bands score the same predictions)."""
    memo: dict[int, np.ndarray] = {}

    def run(samples: Sequence[DepthSample]) -> list[np.ndarray]:
        missing = [sample for sample in samples if id(sample) not in memo]
        if missing:
            memo.update(zip(map(id, missing), predict(missing), strict=True))
        return [memo[id(sample)] for sample in samples]

    return run


def band_abs_rel(samples: Sequence[DepthSample], predictors: Mapping[str, Predictor]) -> dict[str, list[float]]:
    """Mean AbsRel over images in each quarter of the Garg crop's rows (top first), per predictor."""
    result = {}
    for name, predict in predictors.items():
        per_band: list[list[float]] = [[] for _ in range(BANDS)]
        for sample, prediction in zip(samples, predict(samples), strict=True):
            gt = sample.gt_depth_m
            assert gt is not None
            crop = garg_crop_mask(*gt.shape)
            rows = np.flatnonzero(crop.any(axis=1))
            full = upsample_depth(prediction, *gt.shape)
            for band, band_rows in enumerate(np.array_split(rows, BANDS)):
                mask = np.zeros_like(crop)
                mask[band_rows] = crop[band_rows]
                errors = depth_errors(full, gt, mask=mask)
                if errors is not None:
                    per_band[band].append(errors.abs_rel)
        result[name] = [float(np.mean(values)) if values else float("nan") for values in per_band]
    return result


def band_table(bands: Mapping[str, Sequence[float]], title: str) -> Table:
    table = Table(title=title)
    table.add_column("model")
    for band in range(BANDS):
        table.add_column(f"rows {band + 1}/{BANDS}", justify="right")
    for name, values in bands.items():
        table.add_row(name, *(f"{value:.3f}" for value in values))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", type=int, default=4, help="training drives (seed 0)")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs")
    parser.add_argument("--eval-logs", type=int, default=2, help="held-out drives (seed 1000)")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "bench_depth" / "dense_supervision")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    config = dense_config(load_config(CONFIG, DepthConfig, {"synth.logs": args.logs, "train.epochs": args.epochs}))
    training = synth_samples(config, config.synth.seed, config.synth.logs, evaluation=True)
    checkpoint = fit(DenseDepthTask(config, training), args.runs)
    base = load_config(CONFIG, DepthConfig)
    predictors = {"dense supervision": network_predictor(DepthEstimator.from_checkpoint(checkpoint)), "interpolation": interpolation_predictor}
    sets = {"synthetic": synth_samples(base, base.synth.validation_seed, args.eval_logs, evaluation=True)}
    if KITTI_OBJECT.is_dir():
        sets["kitti_object"] = dataset_samples(KittiObjectDataset(KITTI_OBJECT), base, evaluation=True)
    console = Console(width=200)
    result: dict[str, Any] = {"settings": {"train_logs": args.logs, "epochs": args.epochs, "eval_logs": args.eval_logs}}
    for name, samples in sets.items():
        title = f"{name} ({len(samples)} images)"
        once = {predictor: predicted_once(predict) for predictor, predict in predictors.items()}
        result[name] = {"metrics": evaluate_depth(samples, once), "abs_rel_by_row_band": band_abs_rel(samples, once)}
        console.print(depth_table(result[name]["metrics"], title))
        console.print(band_table(result[name]["abs_rel_by_row_band"], f"{title}: AbsRel by quarter of the crop's rows, top first"))
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
