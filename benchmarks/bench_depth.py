"""Speed of LiDARTouch inference on 2 CPU cores (target >= 10 frames/s at 640x192): the network alone at 640x192 and
at its training resolution, and the whole `DepthEstimator.predict` on a KITTI-sized frame (resize, projection of the
4-beam points, their interpolation, network, upsampling)."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.harness import Result, measure
from depth.lidartouch import LidarTouchNet
from depth.model import SHIPPED_CHECKPOINT, DepthEstimator

KITTI_HW = (375, 1242)


def _network(height_px: int, width_px: int, estimator: DepthEstimator) -> Result:
    config = estimator.config.network.model_copy(update={"height_px": height_px, "width_px": width_px})
    net = LidarTouchNet(config, estimator.config.loss.scales).eval()
    net.load_state_dict(estimator.net.state_dict())
    image = torch.randint(0, 256, (1, 3, height_px, width_px), dtype=torch.uint8)
    sparse = torch.zeros(1, 1, height_px, width_px)
    sparse[:, :, height_px // 2 :: 12, ::2] = 15.0
    prior = torch.full_like(sparse, 15.0)

    def forward() -> object:
        with torch.inference_mode():
            return net(image, sparse, prior)

    target = ">= 10 frames/s" if width_px == 640 else ""
    return measure(f"network {width_px}x{height_px}", forward, items=1, unit="frames/s", repeats=21, warmup=2, target=target)


def run() -> list[Result]:
    torch.set_num_threads(2)
    estimator = DepthEstimator.from_checkpoint(SHIPPED_CHECKPOINT)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*KITTI_HW, 3), dtype=np.uint8)
    points = np.column_stack([rng.uniform(-10, 10, 6000), rng.uniform(0.5, 1.6, 6000), rng.uniform(3, 60, 6000)])
    intrinsics = np.array([[721.5, 0.0, 609.6], [0.0, 721.5, 172.9], [0.0, 0.0, 1.0]])
    network = estimator.config.network
    return [
        _network(192, 640, estimator),
        _network(network.height_px, network.width_px, estimator),
        measure(
            "DepthEstimator.predict, 1242x375 frame",
            lambda: estimator.predict(image, points, intrinsics),
            items=1,
            unit="frames/s",
            repeats=21,
            warmup=2,
        ),
    ]
