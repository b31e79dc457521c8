"""ADVENT's fully-convolutional domain discriminator, its input (the weighted self-information map) and its loss.

As in the official code (`model/discriminator.py`, `utils/func.py`): four 4x4 stride-2 convolutions with LeakyReLU
0.2 and a fifth to one channel, applied to `-p * log2(p) / log2(C)` of the segmenter's softmax; binary cross-entropy
with source label 0 and target label 1. The widths are ADVENT's 64, 128, 256, 512 divided by 8 by default
(`NetworkConfig.discriminator_widths`) so the Multi-Dis model with 12 discriminators stays a few MB.

The segmenter's adversarial term evaluates a discriminator through `scenes.training.frozen.frozen_call`, so it
flows back into the segmenter only (see `mtaf.py`).
"""

from __future__ import annotations

import math
from typing import Final

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["SOURCE_LABEL", "TARGET_LABEL", "Discriminator", "DiscriminatorPair", "adversarial_bce", "weighted_self_information"]

SOURCE_LABEL: Final = 0.0
TARGET_LABEL: Final = 1.0


class Discriminator(nn.Module):
    """`(B, C, H, W)` map -> `(B, 1, H/32, W/32)` logits of "target" (4x4 stride-2 convolutions, LeakyReLU 0.2)."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for width in widths:
            layers += [nn.Conv2d(channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            channels = width
        layers.append(nn.Conv2d(channels, 1, 4, stride=2, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DiscriminatorPair(nn.Module):
    """Separate discriminators for the main and the auxiliary output, as ADVENT."""

    def __init__(self, num_classes: int, widths: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.main = Discriminator(num_classes, widths)
        self.aux = Discriminator(num_classes, widths)


def weighted_self_information(logits: torch.Tensor) -> torch.Tensor:
    """`-p * log2(p) / log2(C)` of the softmax over dim 1 of `(B, C, H, W)` logits (values in [0, 1/e/ln 2])."""
    num_classes = logits.shape[1]
    log_p = F.log_softmax(logits, dim=1)
    return -log_p.exp() * log_p / math.log(num_classes)


def adversarial_bce(discriminator_logits: torch.Tensor, label: float) -> torch.Tensor:
    """Mean binary cross-entropy of every output against one domain label (`SOURCE_LABEL` or `TARGET_LABEL`)."""
    return F.binary_cross_entropy_with_logits(discriminator_logits, torch.full_like(discriminator_logits, label))
