"""LiDARTouch on the training harness: batches of (target, sources, few-beam depth, poses), the three losses.

Augmentation, seeded by (seed, epoch, sample): colour jitter of the network input only (the losses compare the
un-jittered images, as Monodepth2 and the official code do), and horizontal flips of every image, the few-beam depth,
the intrinsics and the relative poses together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple

import numpy as np
import torch

from depth.config import DepthConfig
from depth.data import DepthSample
from depth.losses import total_loss
from depth.model import STAGE, LidarTouchModel
from scenes.training.harness import LoopSettings, TrainingTask

__all__ = ["FINAL", "DepthBatch", "DepthTask"]

FINAL: Final = "depth.pt"
GRAD_CLIP_NORM: Final = 10.0
# Mirror about the camera's vertical plane: x -> -x in the camera frame.
_FLIP: Final = np.diag([-1.0, 1.0, 1.0, 1.0]).astype(np.float32)


class DepthBatch(NamedTuple):
    network_image: torch.Tensor  # (B, 3, H, W) in [0, 1], colour-jittered
    target: torch.Tensor  # (B, 3, H, W) in [0, 1]
    sources: torch.Tensor  # (B, S, 3, H, W) in [0, 1]
    lidar_depth_m: torch.Tensor  # (B, 1, H, W)
    prior_depth_m: torch.Tensor  # (B, 1, H, W)
    intrinsics: torch.Tensor  # (B, 3, 3)
    source_T_target: torch.Tensor  # (B, S, 4, 4)
    pose_valid: torch.Tensor  # (B, S)


def _jitter(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Brightness, contrast and saturation jitter of an `(H, W, 3)` image in [0, 1]."""
    if strength <= 0:
        return image
    brightness, contrast, saturation = rng.uniform(1.0 - strength, 1.0 + strength, 3)
    image = image * brightness
    image = (image - image.mean()) * contrast + image.mean()
    grey = image.mean(axis=2, keepdims=True)
    return np.clip((image - grey) * saturation + grey, 0.0, 1.0)


def augmented(sample: DepthSample, rng: np.random.Generator | None, config: DepthConfig) -> tuple[np.ndarray, ...]:
    """(network image, target, sources, few-beam depth, intrinsics, poses, prior depth) of one sample, augmented when
    `rng` is given."""
    target = sample.image.astype(np.float32) / 255.0
    sources = sample.source_images.astype(np.float32) / 255.0
    lidar, prior = sample.lidar_depth_m, sample.prior_depth_m
    intrinsics = sample.intrinsics.copy()
    poses = sample.source_T_target
    network_image = target
    if rng is not None:
        if config.train.flip and rng.random() < 0.5:
            target, sources, lidar, prior = target[:, ::-1], sources[:, :, ::-1], lidar[:, ::-1], prior[:, ::-1]
            intrinsics[0, 2] = target.shape[1] - 1 - intrinsics[0, 2]
            poses = _FLIP @ poses @ _FLIP
        network_image = _jitter(target, rng, config.train.color_jitter)
    return network_image, target, sources, lidar, intrinsics, poses, prior


class DepthTask(TrainingTask):
    """Self-supervised depth with few-beam LiDAR as input, as loss and (optionally) for pose."""

    stage = STAGE
    final_name = FINAL
    config: DepthConfig
    plot_title = "LiDARTouch depth training"

    def __init__(self, config: DepthConfig, samples: Sequence[DepthSample], config_source: str = "this run's config") -> None:
        self.config = config
        self.samples = [sample for sample in samples if len(sample.source_images) > 0 or config.loss.photometric == 0]
        self.config_source = config_source
        self.loop = LoopSettings.one_cycle(config.train, GRAD_CLIP_NORM)

    def __len__(self) -> int:
        return len(self.samples)

    def build_model(self) -> LidarTouchModel:
        return LidarTouchModel(self.config)

    def make_batch(self, indices: np.ndarray, epoch: int, device: torch.device) -> DepthBatch:
        seed = self.config.train.seed
        parts = [augmented(self.samples[i], np.random.default_rng([seed, epoch, int(i)]), self.config) for i in indices]

        def stack(index: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.from_numpy(np.stack([np.ascontiguousarray(part[index]) for part in parts])).to(device=device, dtype=dtype)

        return DepthBatch(
            network_image=stack(0).permute(0, 3, 1, 2),
            target=stack(1).permute(0, 3, 1, 2),
            sources=stack(2).permute(0, 1, 4, 2, 3),
            lidar_depth_m=stack(3)[:, None],
            prior_depth_m=stack(6)[:, None],
            intrinsics=stack(4),
            source_T_target=stack(5),
            pose_valid=torch.from_numpy(np.stack([self.samples[i].pose_valid for i in indices])).to(device),
        )

    def loss(self, model: torch.nn.Module, batch: DepthBatch) -> tuple[torch.Tensor, dict[str, float]]:
        inverse_depths, predicted_poses = model(batch.network_image, batch.lidar_depth_m, batch.prior_depth_m, batch.target, batch.sources)
        poses = predicted_poses if predicted_poses is not None else batch.source_T_target
        return total_loss(inverse_depths, batch.target, batch.sources, batch.lidar_depth_m, batch.intrinsics, poses, batch.pose_valid, self.config.loss)
