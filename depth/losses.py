"""The three LiDARTouch losses: photometric reprojection, LiDAR reconstruction and edge-aware smoothness.

Following the official code (`models/lidartouch.py`, `losses/`):

- photometric: the target image is reconstructed from each source frame (t-1, t+1) by warping with the predicted
  depth and the relative pose; the error is `w * (1 - SSIM) / 2 + (1 - w) * L1` with a 3x3 SSIM and `w = 0.85`, the
  per-pixel minimum over source frames handles occlusions, and auto-masking (Monodepth2) drops pixels where an
  un-warped source already matches better than any warp (static scenes, objects moving with the ego vehicle, which
  would otherwise pull their depth to infinity). Pixels holding a LiDAR return are left to the LiDAR loss. Every scale
  is upsampled to the full resolution first (`upsample_scales`, the official code's choice) or, at about a third of
  the cost, compared at its own resolution (the original Monodepth's); the mean over scales is taken.
- LiDAR: L1 between the predicted inverse depth and the few-beam inverse depth where a return exists, every scale.
- smoothness: edge-aware (`kornia.losses.inverse_depth_smoothness_loss`) on mean-normalised inverse depth, scale `s`
  weighted by 1/2^s and evaluated at that scale's resolution.

SSIM, warping and image gradients are kornia's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from kornia.geometry.depth import warp_frame_depth
from kornia.losses import inverse_depth_smoothness_loss
from kornia.metrics import ssim
from torch.nn import functional as F

from depth.config import LossConfig

__all__ = ["identity_errors", "lidar_loss", "photometric_error", "reprojection_loss", "smoothness_loss", "total_loss"]

# Error given to pixels a source frame cannot explain (outside its view, or no pose): above any photometric error,
# so the per-pixel minimum picks another source or the identity (auto-mask) instead.
_UNEXPLAINED: float = 10.0
# Monodepth2 breaks ties between identical identity and reprojection errors with tiny noise on the identity ones.
_TIE_BREAK: float = 1e-5


def photometric_error(target: torch.Tensor, reconstructed: torch.Tensor, ssim_weight: float) -> torch.Tensor:
    """Per-pixel `w (1 - SSIM) / 2 + (1 - w) L1`, averaged over channels: `(B, 1, H, W)`; images in [0, 1]."""
    l1 = (target - reconstructed).abs().mean(dim=1, keepdim=True)
    structural = ((1.0 - ssim(reconstructed, target, window_size=3)) / 2.0).clamp(0.0, 1.0).mean(dim=1, keepdim=True)
    return ssim_weight * structural + (1.0 - ssim_weight) * l1


def identity_errors(target: torch.Tensor, sources: torch.Tensor, pose_valid: torch.Tensor, ssim_weight: float) -> torch.Tensor:
    """Auto-masking's photometric error of each un-warped source `(B, S, H, W)` (the same at every scale)."""
    batch, num_sources = sources.shape[:2]
    repeated = target.repeat_interleave(num_sources, dim=0)
    error = photometric_error(repeated, sources.flatten(0, 1), ssim_weight).view(batch, num_sources, *target.shape[-2:])
    error = torch.where(pose_valid.view(batch, num_sources, 1, 1), error, torch.full_like(error, _UNEXPLAINED))
    return error + _TIE_BREAK * torch.randn_like(error)


def reprojection_loss(
    target: torch.Tensor,
    sources: torch.Tensor,
    depth_m: torch.Tensor,
    intrinsics: torch.Tensor,
    source_T_target: torch.Tensor,
    pose_valid: torch.Tensor,
    lidar_pixels: torch.Tensor,
    config: LossConfig,
    identity: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Photometric loss of one scale (already at full resolution) and the fraction of pixels it supervised.

    `target (B, 3, H, W)` and `sources (B, S, 3, H, W)` in [0, 1]; `depth_m (B, 1, H, W)`; `intrinsics (B, 3, 3)`;
    `source_T_target (B, S, 4, 4)` maps target-camera points into each source camera; `pose_valid (B, S)`;
    `lidar_pixels (B, 1, H, W)` bool; `identity`: the auto-masking errors (`identity_errors`), required with
    `config.automask`. The sources are warped in one batch of `B * S` images.
    """
    batch, num_sources = sources.shape[:2]
    height, width = target.shape[-2:]
    with_ones = torch.cat([sources, torch.ones_like(sources[:, :, :1])], dim=2).flatten(0, 1)
    warped = warp_frame_depth(
        with_ones, depth_m.repeat_interleave(num_sources, dim=0), source_T_target.flatten(0, 1), intrinsics.repeat_interleave(num_sources, dim=0)
    )
    error = photometric_error(target.repeat_interleave(num_sources, dim=0), warped[:, :3], config.ssim_weight).view(batch, num_sources, height, width)
    explained = (warped[:, 3] > 0.999).view(batch, num_sources, height, width) & pose_valid.view(batch, num_sources, 1, 1)
    candidates = torch.where(explained, error, torch.full_like(error, _UNEXPLAINED))
    if config.automask:
        if identity is None:
            raise ValueError("reprojection_loss: automask needs the identity errors")
        candidates = torch.cat([identity, candidates], dim=1)
    best, choice = candidates.min(dim=1, keepdim=True)
    supervised = (choice >= (num_sources if config.automask else 0)) & (best < _UNEXPLAINED)
    if config.exclude_lidar_pixels:
        supervised &= ~lidar_pixels
    weight = supervised.float()
    return (best * weight).sum() / weight.sum().clamp(min=1.0), weight.mean()


def lidar_loss(inverse_depth: torch.Tensor, lidar_depth_m: torch.Tensor) -> torch.Tensor:
    """L1 on inverse depth at pixels with a LiDAR return (0 when the batch has none)."""
    valid = lidar_depth_m > 0
    if not bool(valid.any()):
        return inverse_depth.sum() * 0.0
    return (inverse_depth[valid] - 1.0 / lidar_depth_m[valid]).abs().mean()


def smoothness_loss(inverse_depth: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Edge-aware smoothness of mean-normalised inverse depth at the inverse depth's own resolution."""
    if image.shape[-2:] != inverse_depth.shape[-2:]:
        image = F.interpolate(image, size=inverse_depth.shape[-2:], mode="area")
    normalised = inverse_depth / inverse_depth.mean(dim=(2, 3), keepdim=True).clamp(min=1e-6)
    return inverse_depth_smoothness_loss(normalised, image)


def _reprojection_at_scale(
    inverse_depth: torch.Tensor,
    target: torch.Tensor,
    sources: torch.Tensor,
    intrinsics: torch.Tensor,
    source_T_target: torch.Tensor,
    pose_valid: torch.Tensor,
    lidar_depth_m: torch.Tensor,
    config: LossConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The photometric term at a coarse scale's own resolution (original Monodepth): images area-downsampled,
    intrinsics scaled, LiDAR pixels max-pooled."""
    size = inverse_depth.shape[-2:]
    factor = target.shape[-1] / size[-1]
    small_target = F.interpolate(target, size=size, mode="area")
    small_sources = F.interpolate(sources.flatten(0, 1), size=size, mode="area").view(*sources.shape[:3], *size)
    small_intrinsics = intrinsics.clone()
    small_intrinsics[:, :2, :2] /= factor
    small_intrinsics[:, :2, 2] = (small_intrinsics[:, :2, 2] + 0.5) / factor - 0.5
    small_lidar = F.max_pool2d((lidar_depth_m > 0).float(), kernel_size=int(round(factor))) > 0
    identity = identity_errors(small_target, small_sources, pose_valid, config.ssim_weight) if config.automask else None
    return reprojection_loss(small_target, small_sources, 1.0 / inverse_depth, small_intrinsics, source_T_target, pose_valid, small_lidar, config, identity)


def total_loss(
    inverse_depths: Sequence[torch.Tensor],
    target: torch.Tensor,
    sources: torch.Tensor,
    lidar_depth_m: torch.Tensor,
    intrinsics: torch.Tensor,
    source_T_target: torch.Tensor,
    pose_valid: torch.Tensor,
    config: LossConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """photometric + smoothness + LiDAR over `config.scales` scales; returns the loss and its parts for logging."""
    height, width = target.shape[-2:]
    lidar_pixels = lidar_depth_m > 0
    zero = target.sum() * 0.0
    photometric, lidar, smooth, supervised = zero, zero, zero, zero
    scales = list(inverse_depths)[: config.scales]
    photometric_on = config.photometric > 0 and sources.shape[1] > 0
    identity = identity_errors(target, sources, pose_valid, config.ssim_weight) if photometric_on and config.automask else None
    for scale, inverse_depth in enumerate(scales):
        full = inverse_depth if scale == 0 else F.interpolate(inverse_depth, size=(height, width), mode="bilinear", align_corners=False)
        if photometric_on:
            if config.upsample_scales or scale == 0:
                term, fraction = reprojection_loss(target, sources, 1.0 / full, intrinsics, source_T_target, pose_valid, lidar_pixels, config, identity)
            else:
                term, fraction = _reprojection_at_scale(inverse_depth, target, sources, intrinsics, source_T_target, pose_valid, lidar_depth_m, config)
            photometric = photometric + term / len(scales)
            supervised = supervised + fraction.detach() / len(scales)
        if config.lidar > 0:
            lidar = lidar + lidar_loss(full, lidar_depth_m) / len(scales)
        if config.smoothness > 0:
            smooth = smooth + smoothness_loss(inverse_depth, target) / 2**scale / len(scales)
    loss = config.photometric * photometric + config.lidar * lidar + config.smoothness * smooth
    named = {"photometric": photometric, "lidar": lidar, "smoothness": smooth, "supervised_fraction": supervised}
    parts = {name: float(value.detach()) for name, value in named.items()}
    return loss, parts
