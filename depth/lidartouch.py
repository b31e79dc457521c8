"""LiDARTouch networks: a Monodepth2-style U-Net with an image encoder and a LiDAR encoder fused at every level, and
the optional pose network.

As in the official code (`networks/depth_nets/monodepth2_lidar.py`): residual encoders with 5 feature levels at 1/2 ...
1/32 of the input; the LiDAR encoder reads the few-beam depth as inverse depth (0 where there is no return), has no
batch norm on its first convolution (a mostly-zero input would make its statistics meaningless) and no max-pool (its
first residual stage strides instead); features are concatenated per level; the decoder (reflection-padded 3x3
convolutions, ELU, nearest upsampling, skip connections) predicts a sigmoid at 4 scales mapped to inverse depth in
[1/max_depth, 1/min_depth]. No ImageNet weights exist offline: both encoders train from scratch (the official code
also loads none), with narrow widths so the whole model stays around 1 M parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from kornia.geometry.conversions import axis_angle_to_rotation_matrix
from torch import nn
from torch.nn import functional as F

from depth.config import NetworkConfig

__all__ = ["BasicBlock", "DepthDecoder", "LidarTouchNet", "PoseNet", "ResidualEncoder", "image_to_network", "lidar_to_network"]

IMAGE_MEAN: float = 0.45
IMAGE_STD: float = 0.225
# Initial output logit: sigmoid(-3) = 0.047, i.e. about 10 m in the default [0.5, 100] m range. A zero logit starts at
# 1 m, and the first LiDAR-loss steps then overshoot into the flat tail of the sigmoid (everything at the maximum depth),
# where the gradient vanishes.
INITIAL_LOGIT: float = -3.0
# Largest log-factor by which the prior variant may move the interpolated inverse depth (e^2: x0.14 .. x7.4).
MAX_LOG_CORRECTION: float = 2.0


def image_to_network(images: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 1] RGB `(B, 3, H, W)` -> the normalised input of the image encoder (Monodepth2's constants)."""
    images = images.float() / 255.0 if images.dtype == torch.uint8 else images
    return (images - IMAGE_MEAN) / IMAGE_STD


def lidar_to_network(sparse_depth_m: torch.Tensor) -> torch.Tensor:
    """Sparse depth `(B, 1, H, W)` (0 = no return) -> inverse depth with 0 where there is no return."""
    return torch.where(sparse_depth_m > 0, 1.0 / sparse_depth_m.clamp(min=1e-3), torch.zeros_like(sparse_depth_m))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions with batch norm, identity or 1x1 projection shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResidualEncoder(nn.Module):
    """ResNet-style encoder: a 7x7 stride-2 stem, then 4 residual stages; returns the 5 feature maps at 1/2 ... 1/32.

    `lidar=True` builds the LiDAR variant: no batch norm on the stem, no max-pool, the first stage strides by 2."""

    def __init__(self, in_channels: int, widths: Sequence[int], blocks_per_stage: int, *, lidar: bool = False) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=lidar),
            nn.Identity() if lidar else nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        self.pool: nn.Module = nn.Identity() if lidar else nn.MaxPool2d(3, 2, 1)
        stages = []
        in_width = widths[0]
        for index, width in enumerate(widths[1:]):
            stride = 2 if index > 0 or lidar else 1
            blocks = [BasicBlock(in_width, width, stride)] + [BasicBlock(width, width, 1) for _ in range(blocks_per_stage - 1)]
            stages.append(nn.Sequential(*blocks))
            in_width = width
        self.stages = nn.ModuleList(stages)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.stem(x)]
        x = self.pool(features[0])
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class ConvBlock(nn.Module):
    """Reflection-padded 3x3 convolution followed by ELU (Monodepth2's decoder unit)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(self.conv(x))


class DepthDecoder(nn.Module):
    """U-Net decoder over 5 encoder levels; one logit map at each of scales 0..3 (full, 1/2, 1/4, 1/8 resolution)."""

    def __init__(self, encoder_widths: Sequence[int], widths: Sequence[int], scales: int = 4) -> None:
        super().__init__()
        self.scales = scales
        self.upconv_in = nn.ModuleList()
        self.upconv_out = nn.ModuleList()
        for level in range(4, -1, -1):
            in_width = encoder_widths[-1] if level == 4 else widths[level + 1]
            self.upconv_in.append(ConvBlock(in_width, widths[level]))
            skip = encoder_widths[level - 1] if level > 0 else 0
            self.upconv_out.append(ConvBlock(widths[level] + skip, widths[level]))
        self.heads = nn.ModuleList(nn.Conv2d(widths[scale], 1, 3, padding=1, padding_mode="reflect") for scale in range(scales))

    def init_outputs(self, logit: float, *, zero_weights: bool) -> None:
        """Every head starts at `logit` (exactly, with `zero_weights`: a residual output that starts at no correction)."""
        for head in self.heads:
            assert isinstance(head, nn.Conv2d) and head.bias is not None
            nn.init.constant_(head.bias, logit)
            if zero_weights:
                nn.init.zeros_(head.weight)

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        x = features[-1]
        outputs: dict[int, torch.Tensor] = {}
        for step, level in enumerate(range(4, -1, -1)):
            x = F.interpolate(self.upconv_in[step](x), scale_factor=2.0, mode="nearest")
            if level > 0:
                x = torch.cat([x, features[level - 1]], dim=1)
            x = self.upconv_out[step](x)
            if level < self.scales:
                outputs[level] = self.heads[level](x)
        return [outputs[scale] for scale in range(self.scales)]


class LidarTouchNet(nn.Module):
    """Image + few-beam LiDAR -> inverse depth at 4 scales, each `(B, 1, H / 2^s, W / 2^s)`, in [1/max, 1/min] m^-1.

    As published (`interpolated_prior: false`), the LiDAR encoder reads the sparse inverse depth and each output is a
    sigmoid scaled to the inverse-depth range. With `interpolated_prior: true` (drivestack's default, see
    `NetworkConfig`), the LiDAR encoder also reads the few-beam depth interpolated to every pixel
    (`depth.interpolation`) and each output is that prior's inverse depth times `exp(r)`, `r` a bounded learned
    log-correction that starts at 0: the network starts from the no-network baseline and learns where to depart from it.
    """

    def __init__(self, config: NetworkConfig, scales: int = 4) -> None:
        super().__init__()
        self.config = config
        widths = [0] * 5
        lidar_channels = 2 if config.interpolated_prior else 1
        self.image_encoder = ResidualEncoder(3, config.image_widths, config.blocks_per_stage) if config.use_image else None
        self.lidar_encoder = ResidualEncoder(lidar_channels, config.lidar_widths, config.blocks_per_stage, lidar=True) if config.use_lidar else None
        for encoder in (self.image_encoder, self.lidar_encoder):
            if encoder is not None:
                widths = [total + width for total, width in zip(widths, encoder.widths, strict=True)]
        self.decoder = DepthDecoder(widths, config.decoder_widths, scales)
        if config.interpolated_prior:
            self.decoder.init_outputs(0.0, zero_weights=True)
        else:
            self.decoder.init_outputs(INITIAL_LOGIT, zero_weights=False)
        self.min_inverse_depth = 1.0 / config.max_depth_m
        self.max_inverse_depth = 1.0 / config.min_depth_m

    def forward(self, image: torch.Tensor, sparse_depth_m: torch.Tensor, prior_depth_m: torch.Tensor | None = None) -> list[torch.Tensor]:
        """`image` uint8/[0,1] `(B, 3, H, W)`, `sparse_depth_m` `(B, 1, H, W)` (0 = no return), `prior_depth_m`
        `(B, 1, H, W)` the interpolated few-beam depth (required with `interpolated_prior`)."""
        prior_inverse = None
        if self.config.interpolated_prior:
            if prior_depth_m is None:
                raise ValueError("LidarTouchNet: this network (interpolated_prior) needs prior_depth_m")
            prior_inverse = 1.0 / prior_depth_m.clamp(min=self.config.min_depth_m, max=self.config.max_depth_m)
        encoded = []
        if self.image_encoder is not None:
            encoded.append(self.image_encoder(image_to_network(image)))
        if self.lidar_encoder is not None:
            lidar = lidar_to_network(sparse_depth_m)
            encoded.append(self.lidar_encoder(lidar if prior_inverse is None else torch.cat([lidar, prior_inverse], dim=1)))
        features = [torch.cat(level, dim=1) for level in zip(*encoded, strict=True)]
        logits = self.decoder(features)
        if prior_inverse is None:
            return [self.min_inverse_depth + (self.max_inverse_depth - self.min_inverse_depth) * torch.sigmoid(logit) for logit in logits]
        outputs = []
        for logit in logits:
            prior = prior_inverse if logit.shape[-2:] == prior_inverse.shape[-2:] else F.adaptive_avg_pool2d(prior_inverse, logit.shape[-2:])
            correction = torch.exp(MAX_LOG_CORRECTION * torch.tanh(logit))
            outputs.append((prior * correction).clamp(self.min_inverse_depth, self.max_inverse_depth))
        return outputs


class PoseNet(nn.Module):
    """Relative pose from an image pair: residual encoder on the 6-channel (target, source) stack, global pooling, a
    6-d output (axis-angle, translation) scaled by `scale` -> `source_T_target` `(B, 4, 4)` in the camera frame."""

    def __init__(self, widths: Sequence[int], scale: float) -> None:
        super().__init__()
        self.encoder = ResidualEncoder(6, widths, 1)
        self.head = nn.Conv2d(widths[-1], 6, 1)
        assert self.head.bias is not None
        nn.init.zeros_(self.head.bias)
        self.scale = scale

    def forward(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        x = torch.cat([image_to_network(target), image_to_network(source)], dim=1)
        motion = self.scale * self.head(F.relu(self.encoder(x)[-1])).mean(dim=(2, 3))
        transform = torch.eye(4, dtype=motion.dtype, device=motion.device).repeat(len(motion), 1, 1)
        transform[:, :3, :3] = axis_angle_to_rotation_matrix(motion[:, :3])
        transform[:, :3, 3] = motion[:, 3:]
        return transform
