"""Layout-to-image: the SPADE generator and the multi-scale patch discriminator (Park et al. 2019).

As in the official SPADE code that Semantic Palette uses (`models/img_generator`, no VAE):
- the generator maps noise to a 4x8 map of `top_width_factor * ngf` channels (official 16 * 64) and upsamples it to full size through SPADE residual
  blocks; every normalisation is parameter-free batch norm modulated per pixel by `gamma(layout)` and
  `beta(layout)`, two 3x3 convolutions on a shared 3x3 convolution of the layout resized to the block;
- the discriminator is `num_discriminators` PatchGAN discriminators on the (layout, image) pair at full size, 1/2,
  1/4, ... (average pooling between scales); each returns its intermediate features for feature matching.

Departures: the layouts are soft (the layout generator's output; real layouts one-hot), which SPADE accepts
unchanged; instance norm without spectral norm in the discriminator (spectral norm's power iteration would run in
both the generator's and the discriminator's pass of the one-backward update, see `model.py`); narrower widths.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from scenegen.config import BASE_HEIGHT_PX, BASE_WIDTH_PX, ImageNetworkConfig

__all__ = ["MultiscaleDiscriminator", "PatchDiscriminator", "SPADE", "SPADEGenerator", "SPADEResBlock"]


class SPADE(nn.Module):
    """Batch norm without affine parameters, then `x * (1 + gamma(layout)) + beta(layout)`."""

    def __init__(self, channels: int, num_classes: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.shared = nn.Sequential(nn.Conv2d(num_classes, hidden, 3, padding=1), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
        features = self.shared(F.interpolate(layout, size=x.shape[2:], mode="nearest"))
        return self.norm(x) * (1.0 + self.gamma(features)) + self.beta(features)


class SPADEResBlock(nn.Module):
    """SPADE, LeakyReLU, 3x3 conv, twice; a learned SPADE + 1x1 shortcut when the width changes."""

    def __init__(self, in_channels: int, out_channels: int, num_classes: int, hidden: int) -> None:
        super().__init__()
        middle = min(in_channels, out_channels)
        self.norm_0 = SPADE(in_channels, num_classes, hidden)
        self.conv_0 = nn.Conv2d(in_channels, middle, 3, padding=1)
        self.norm_1 = SPADE(middle, num_classes, hidden)
        self.conv_1 = nn.Conv2d(middle, out_channels, 3, padding=1)
        self.shortcut: nn.ModuleList | None = None
        if in_channels != out_channels:
            self.shortcut = nn.ModuleList([SPADE(in_channels, num_classes, hidden), nn.Conv2d(in_channels, out_channels, 1, bias=False)])

    def forward(self, x: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut[1](self.shortcut[0](x, layout))
        y = self.conv_0(F.leaky_relu(self.norm_0(x, layout), 0.2))
        y = self.conv_1(F.leaky_relu(self.norm_1(y, layout), 0.2))
        return skip + y


class SPADEGenerator(nn.Module):
    """`(B, C, H, W)` layouts and `(B, noise_dim)` noise -> `(B, 3, H, W)` images in [-1, 1]."""

    def __init__(self, config: ImageNetworkConfig, num_classes: int, levels: int) -> None:
        super().__init__()
        self.noise_dim = config.noise_dim
        widths = [config.ngf * min(config.top_width_factor, 2 ** (levels - 1 - level)) for level in range(levels)]
        self.project = nn.Linear(config.noise_dim, widths[0] * BASE_HEIGHT_PX * BASE_WIDTH_PX)
        self.head = SPADEResBlock(widths[0], widths[0], num_classes, config.spade_hidden)
        self.blocks = nn.ModuleList(SPADEResBlock(widths[i - 1], widths[i], num_classes, config.spade_hidden) for i in range(1, levels))
        self.to_rgb = nn.Conv2d(widths[-1], 3, 3, padding=1)

    def forward(self, layout: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        x = self.project(noise).view(noise.shape[0], -1, BASE_HEIGHT_PX, BASE_WIDTH_PX)
        x = self.head(x, layout)
        for block in self.blocks:
            x = block(F.interpolate(x, scale_factor=2.0, mode="nearest"), layout)
        return torch.tanh(self.to_rgb(F.leaky_relu(x, 0.2)))


class PatchDiscriminator(nn.Module):
    """pix2pixHD's PatchGAN: 4x4 convolutions (stride 2, then 1), instance norm, LeakyReLU; every layer's output."""

    def __init__(self, in_channels: int, ndf: int, layers: int) -> None:
        super().__init__()
        stages: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, stride=2, padding=2), nn.LeakyReLU(0.2))]
        channels = ndf
        for index in range(1, layers + 1):
            width = min(channels * 2, 8 * ndf)
            stride = 2 if index < layers else 1
            stages.append(nn.Sequential(nn.Conv2d(channels, width, 4, stride=stride, padding=2), nn.InstanceNorm2d(width), nn.LeakyReLU(0.2)))
            channels = width
        stages.append(nn.Conv2d(channels, 1, 4, padding=2))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs


class MultiscaleDiscriminator(nn.Module):
    """`num_discriminators` patch discriminators on the (layout, image) pair at full, half, quarter... size; one list
    of layer outputs per scale (the last of each list is the patch logits)."""

    def __init__(self, config: ImageNetworkConfig, num_classes: int) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(num_classes + 3, config.ndf, config.discriminator_layers) for _ in range(config.num_discriminators)
        )

    def forward(self, layout: torch.Tensor, image: torch.Tensor) -> list[list[torch.Tensor]]:
        x = torch.cat([layout, image], dim=1)
        outputs = []
        for index, discriminator in enumerate(self.discriminators):
            if index > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(discriminator(x))
        return outputs
