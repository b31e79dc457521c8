"""The trainable LiDARTouch model (depth network + optional pose network) and the inference wrapper.

`DepthEstimator.from_checkpoint(path)` loads any depth checkpoint (the shipped one is
`depth/checkpoints/lidartouch_synth.pt`) and predicts metric depth from an image and its few-beam
LiDAR depth at any input size: the image is resized to the network resolution and the depth upsampled back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from depth.config import DepthConfig
from depth.data import prior_depth
from depth.lidartouch import LidarTouchNet, PoseNet
from depth.projection import project_points, scale_intrinsics
from scenes.training.checkpoint import load_stage

__all__ = ["STAGE", "SHIPPED_CHECKPOINT", "DepthEstimator", "LidarTouchModel"]

STAGE: Final = "depth"
SHIPPED_CHECKPOINT: Final = Path(__file__).resolve().parent / "checkpoints" / "lidartouch_synth.pt"


class LidarTouchModel(nn.Module):
    """Depth network, plus the pose network when the config's pose method is `posenet` (one forward, so DDP sees
    every parameter used)."""

    def __init__(self, config: DepthConfig) -> None:
        super().__init__()
        self.depth = LidarTouchNet(config.network, config.loss.scales)
        self.pose = PoseNet(config.pose.posenet_widths, config.pose.posenet_scale) if config.pose.method == "posenet" else None

    def forward(
        self,
        image: torch.Tensor,
        sparse_depth_m: torch.Tensor,
        prior_depth_m: torch.Tensor | None = None,
        target: torch.Tensor | None = None,
        sources: torch.Tensor | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Inverse depths at every scale of the (possibly colour-jittered) `image`; with the pose network, the
        un-jittered `target (B, 3, H, W)` and `sources (B, S, 3, H, W)`, also `source_T_target (B, S, 4, 4)`."""
        inverse_depths = self.depth(image, sparse_depth_m, prior_depth_m)
        poses = None
        if self.pose is not None and target is not None and sources is not None and sources.shape[1] > 0:
            poses = torch.stack([self.pose(target, sources[:, s]) for s in range(sources.shape[1])], dim=1)
        return inverse_depths, poses


class DepthEstimator:
    """Metric depth from an RGB image and the few-beam LiDAR points seen by its camera."""

    def __init__(self, config: DepthConfig, net: LidarTouchNet, device: torch.device | str = "cpu") -> None:
        self.config = config
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str] = SHIPPED_CHECKPOINT, device: torch.device | str = "cpu") -> DepthEstimator:
        config, net = load_stage(path, STAGE, DepthConfig, lambda config: LidarTouchNet(config.network, config.loss.scales), prefix="depth.")
        return cls(config, net, device)

    @torch.inference_mode()
    def predict_batch(self, images: np.ndarray, lidar_depth_m: np.ndarray, prior_depth_m: np.ndarray | None = None) -> np.ndarray:
        """`images (B, H, W, 3)` uint8 and sparse depth `(B, H, W)`, both at the network resolution -> depth `(B, H, W)` m.

        `prior_depth_m`: the sparse depth interpolated (`depth.data.prior_depth`), computed here when not given."""
        image = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(self.device)
        sparse = torch.from_numpy(np.ascontiguousarray(lidar_depth_m, dtype=np.float32))[:, None].to(self.device)
        prior = None
        if self.config.network.interpolated_prior:
            if prior_depth_m is None:
                prior_depth_m = np.stack([prior_depth(depth, self.config.network.max_depth_m) for depth in lidar_depth_m])
            prior = torch.from_numpy(np.ascontiguousarray(prior_depth_m, dtype=np.float32))[:, None].to(self.device)
        inverse_depth = self.net(image, sparse, prior)[0]
        return (1.0 / inverse_depth[:, 0]).cpu().numpy()

    def predict(self, image: np.ndarray, points_camera_m: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
        """Depth `(H, W)` float32 at the image's own size from an `(H, W, 3)` uint8 image, the few-beam LiDAR points in
        the camera frame `(N, 3)` and the camera intrinsics."""
        height, width = self.config.network.height_px, self.config.network.width_px
        resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        sparse = project_points(points_camera_m, scale_intrinsics(intrinsics, (image.shape[0], image.shape[1]), (height, width)), height, width)
        depth = self.predict_batch(resized[None], sparse[None])[0]
        return upsample_depth(depth, image.shape[0], image.shape[1])


def upsample_depth(depth_m: np.ndarray, height_px: int, width_px: int) -> np.ndarray:
    """Bilinear upsampling of inverse depth (as Monodepth2 evaluates), back to depth, float32."""
    inverse = torch.from_numpy(1.0 / np.asarray(depth_m, dtype=np.float32))[None, None]
    upsampled = F.interpolate(inverse, size=(height_px, width_px), mode="bilinear", align_corners=False)[0, 0]
    return (1.0 / upsampled).numpy().astype(np.float32)
