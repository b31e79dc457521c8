"""Speed of the detector's kernels and network: voxelization (target < 5 ms for 100k points), points in boxes,
rotated-box NMS, one forward pass of the shipped configuration; mmcv's ops side by side when importable."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from benchmarks.harness import Result, measure
from perception.detection.box_ops import points_in_boxes, rotated_nms
from perception.detection.config import DetectionConfig
from perception.detection.model import CenterPointNet, make_pillar_batch
from perception.detection.voxelize import VoxelGrid, voxelize_dynamic, voxelize_hard
from scenes.config import load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "detection" / "centerpoint_synth.yaml"


def run() -> list[Result]:
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(-60, 60, (100_000, 2)), rng.uniform(-3, 5, (100_000, 1)), rng.uniform(0, 1, (100_000, 2))]).astype(np.float32)
    cfg = load_config(CONFIG, DetectionConfig)
    pillars = cfg.model.grid
    voxels = VoxelGrid((-48.0, -48.0, -2.0, 48.0, 48.0, 4.0), (0.2, 0.2, 0.2))
    centers = np.column_stack([rng.uniform(-40, 40, (200, 2)), np.ones(200)])
    sizes = rng.uniform(0.5, 5.0, (200, 3))
    yaws = rng.uniform(-np.pi, np.pi, 200)
    scores = rng.random(200)
    results = [
        measure("dynamic pillars, 100k points", lambda: voxelize_dynamic(points, pillars), items=100_000, unit="pts/s", repeats=21, target="< 5 ms"),
        measure("hard voxels 0.2 m, 100k points", lambda: voxelize_hard(points, voxels, 10, 60_000), items=100_000, unit="pts/s", repeats=11),
        measure("points in 200 boxes, 100k points", lambda: points_in_boxes(points[:, :3], centers, sizes, yaws), items=100_000, unit="pts/s"),
        measure("rotated NMS, 200 boxes", lambda: rotated_nms(centers[:, :2], sizes[:, :2], yaws, scores, 0.2), items=200, unit="boxes/s"),
    ]
    net = CenterPointNet(cfg.model).eval()
    cloud = points[np.abs(points[:, :2]).max(axis=1) < 48]

    def forward() -> object:
        with torch.no_grad():
            return net(make_pillar_batch([cloud], cfg.model))

    results.append(measure(f"CenterPoint forward, {len(cloud)} points", forward, items=1, unit="sweeps/s", repeats=5))
    if importlib.util.find_spec("mmcv") is not None:
        from mmcv.ops import Voxelization

        layer = Voxelization(list(voxels.voxel_size_m), list(voxels.range_m), 10, 60_000)
        tensor = torch.from_numpy(points)
        results.append(measure("mmcv Voxelization 0.2 m, 100k points", lambda: layer(tensor), items=100_000, unit="pts/s", repeats=11))
    return results
