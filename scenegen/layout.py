"""Semantic Palette's layout generator: class proportions in, a soft semantic layout out, with assisted activation.

As in the official code (`models/seg_generator/models/progressive.py`, `modules/cond_mask.py`):
- the input `[z, proportions]` becomes a 4x8 map; each block doubles the resolution (nearest upsampling, two 3x3
  convolutions, pixel norm, LeakyReLU 0.2);
- every block ends with a 1x1 convolution to one logit map per class and the **assisted activation**: class c's
  logits get a softmax over all H*W pixels, scaled so that its mass equals its requested share,
  `m_c = p_c * H * W * softmax(s_c)`, and the layout is `seg_c = m_c / sum_k m_k`;
- the map of every non-final block is fed back into the next block (concatenated to its features);
- the critic is unconditional: strided convolutions with LeakyReLU, no normalisation (WGAN-GP), a linear score.

If the masses `m_c` tile the image (sum to 1 at every pixel, which the spread loss asks for), the layout's class
proportions equal the request exactly. Where they do not, the layout drifts from the request; the assisted activation
is the first iteration of Sinkhorn-Knopp balancing (classes to their shares, then pixels to 1), and further
iterations (`balancing_iterations` in training, `generation_balancing_iterations` when generating; our extension, 1 is
the paper) pull the layout's proportions onto the request; the entropy loss pushes every pixel towards one class so the argmax layout
keeps them. The baseline (`conditional: false`) has no proportion input and a per-pixel softmax.

Partial editing (`LayoutGenerator.edit`): a masked region is regenerated with the proportions requested for it while
the rest of the layout is kept: the assisted activation runs over the region's pixels only, and the region's request
is what `PaletteEstimator.complete` makes of the classes the user named.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from scenegen.config import BASE_HEIGHT_PX, BASE_WIDTH_PX, LayoutNetworkConfig

__all__ = ["LayoutCritic", "LayoutGenerator", "LayoutOutput", "assisted_activation", "soften_layouts"]

_EPS = 1e-8


def assisted_activation(
    logits: torch.Tensor, proportions: torch.Tensor, region: torch.Tensor | None = None, iterations: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(B, C, H, W)` logits and `(B, C)` proportions -> (layout `seg`, masses `m`), both `(B, C, H, W)`.

    `m_c = p_c * N * softmax over the N pixels of the region (default: the whole image) of s_c`; outside the region
    `m` is 0; `seg = m / sum_k m_k`. That is one Sinkhorn-Knopp iteration (classes scaled to their share, then pixels
    to sum 1); each further iteration rescales every class of `seg` to its share again and renormalises the pixels,
    so the layout's proportions converge to the request even where the masses do not tile the image.
    """
    batch, classes, height, width = logits.shape
    flat = logits.reshape(batch, classes, height * width)
    if region is None:
        pixels = torch.full((batch, 1, 1), float(height * width), device=logits.device, dtype=logits.dtype)
        spatial = torch.softmax(flat, dim=2)
    else:
        inside = region.reshape(batch, 1, height * width).to(dtype=torch.bool)
        pixels = inside.sum(dim=2, keepdim=True).clamp(min=1).to(logits.dtype)
        spatial = torch.softmax(flat.masked_fill(~inside, float("-inf")), dim=2).nan_to_num(0.0)
    share = proportions.unsqueeze(2) * pixels
    masses = share * spatial
    layout = masses / masses.sum(dim=1, keepdim=True).clamp(min=_EPS)
    for _ in range(iterations - 1):
        masses = layout * (share / layout.sum(dim=2, keepdim=True).clamp(min=_EPS))
        layout = masses / masses.sum(dim=1, keepdim=True).clamp(min=_EPS)
    shape = (batch, classes, height, width)
    return layout.reshape(shape), masses.reshape(shape)


def soften_layouts(one_hot: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Real layouts as the critic sees them: 0.5 one-hot + 0.5 one-hot blurred with a Gaussian of `sigma_px`."""
    if sigma_px <= 0:
        return one_hot
    radius = max(1, round(3 * sigma_px))
    offsets = torch.arange(-radius, radius + 1, dtype=one_hot.dtype, device=one_hot.device)
    kernel = torch.exp(-0.5 * (offsets / sigma_px) ** 2)
    kernel = kernel / kernel.sum()
    classes = one_hot.shape[1]
    blurred = F.conv2d(F.pad(one_hot, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1).expand(classes, 1, 1, -1), groups=classes)
    blurred = F.conv2d(F.pad(blurred, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1).expand(classes, 1, -1, 1), groups=classes)
    return 0.5 * one_hot + 0.5 * blurred


class _PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        _PixelNorm(),
        nn.LeakyReLU(0.2),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        _PixelNorm(),
        nn.LeakyReLU(0.2),
    )


class LayoutOutput(NamedTuple):
    """The final layout and masses `(B, C, H, W)`, and those of every lower resolution (coarse to fine)."""

    layout: torch.Tensor
    masses: torch.Tensor
    intermediate_layouts: list[torch.Tensor]
    intermediate_masses: list[torch.Tensor]


class LayoutGenerator(nn.Module):
    """`(B, latent_dim)` noise and `(B, C)` proportions -> `LayoutOutput` at `4 * 2^(L-1) x 8 * 2^(L-1)`."""

    def __init__(self, config: LayoutNetworkConfig, num_classes: int) -> None:
        super().__init__()
        self.config = config
        self.num_classes = num_classes
        channels = config.block_channels
        inputs = config.latent_dim + (num_classes if config.conditional else 0)
        self.project = nn.Linear(inputs, channels[0] * BASE_HEIGHT_PX * BASE_WIDTH_PX)
        self.first = _conv_block(channels[0], channels[0])
        self.blocks = nn.ModuleList(_conv_block(channels[i - 1] + num_classes, channels[i]) for i in range(1, len(channels)))
        self.to_logits = nn.ModuleList(nn.Conv2d(width, num_classes, 1) for width in channels)

    def _activate(self, logits: torch.Tensor, proportions: torch.Tensor, region: torch.Tensor | None, iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.config.conditional:
            layout = torch.softmax(logits, dim=1)
            return layout, layout
        if region is not None:
            region = F.interpolate(region, size=logits.shape[2:], mode="nearest")
        return assisted_activation(logits, proportions, region, iterations)

    def forward(self, noise: torch.Tensor, proportions: torch.Tensor, region: torch.Tensor | None = None, iterations: int | None = None) -> LayoutOutput:
        """`region` `(B, 1, H, W)` (1 inside) restricts the assisted activation to it (see `edit`); `iterations`
        of the assisted activation (default: `balancing_iterations` of the config, 1 as the paper)."""
        steps = self.config.balancing_iterations if iterations is None else iterations
        inputs = torch.cat([noise, proportions], dim=1) if self.config.conditional else noise
        x = self.project(inputs).view(noise.shape[0], -1, BASE_HEIGHT_PX, BASE_WIDTH_PX)
        x = self.first(x)
        layouts: list[torch.Tensor] = []
        masses: list[torch.Tensor] = []
        for level, to_logits in enumerate(self.to_logits):
            if level > 0:
                x = self.blocks[level - 1](
                    torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"), F.interpolate(layouts[-1], scale_factor=2.0, mode="nearest")], dim=1)
                )
            layout, mass = self._activate(to_logits(x), proportions, region, steps)
            layouts.append(layout)
            masses.append(mass)
        return LayoutOutput(layouts[-1], masses[-1], layouts[:-1], masses[:-1])

    def edit(self, layout: torch.Tensor, region: torch.Tensor, proportions: torch.Tensor, noise: torch.Tensor, iterations: int | None = None) -> torch.Tensor:
        """Regenerates the pixels of `region` `(B, 1, H, W)` of the soft or one-hot `layout` `(B, C, H, W)` with
        `proportions` `(B, C)` for the region alone; the layout outside the region is returned unchanged."""
        generated = self(noise, proportions, region, iterations).layout
        return region * generated + (1.0 - region) * layout


class LayoutCritic(nn.Module):
    """WGAN critic: `(B, C, H, W)` layouts -> `(B,)` scores (unconditional, as the official ProGAN discriminator)."""

    def __init__(self, config: LayoutNetworkConfig, num_classes: int, height_px: int, width_px: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = num_classes
        for width in config.critic_channels:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(width, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            channels = width
        self.features = nn.Sequential(*layers)
        stages = len(config.critic_channels)
        self.score = nn.Linear(channels * (height_px >> stages) * (width_px >> stages), 1)

    def forward(self, layouts: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(layouts).flatten(1)).squeeze(1)
