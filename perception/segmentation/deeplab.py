"""DeepLab-v2-style segmenter at reduced width, trained from scratch, with 1 + T classifier heads for MTKT.

As in the official code (`model/deeplabv2.py`): a residual encoder whose last two stages are dilated instead of
strided (output stride 8), an ASPP classifier that sums four 3x3 convolutions of growing dilation, the main head on
the last stage and the auxiliary head on the penultimate one; the heads' weights start from N(0, 0.01).

Departures: ResNet-101 with ImageNet weights and frozen batch norm becomes a small residual encoder (basic or
bottleneck blocks, `NetworkConfig.stage_widths`) trained from scratch with batch norm in training mode, since no
pretrained weights are available offline; the ASPP dilations are scaled with the input height (`scaled_dilations`:
6, 12, 18, 24 at the official 320 px become 4, 7, 11, 14 at 192 px) so every branch covers the same share of the
feature map.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from perception.segmentation.config import NetworkConfig

__all__ = ["ASPPClassifier", "BasicBlock", "Bottleneck", "DeepLabV2", "HeadOutput"]


class HeadOutput(NamedTuple):
    """Logits of one classifier head at stride 8: `main` from the last stage, `aux` from the penultimate one."""

    main: torch.Tensor
    aux: torch.Tensor


def _conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel // 2)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, dilation=dilation, bias=False), nn.BatchNorm2d(out_channels)
    )


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    return nn.Identity() if in_channels == out_channels and stride == 1 else _conv_bn(in_channels, out_channels, 1, stride)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34 block)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv_bn(in_channels, out_channels, 3, stride, dilation)
        self.conv2 = _conv_bn(out_channels, out_channels, 3, 1, dilation)
        self.shortcut = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv2(torch.relu(self.conv1(x))) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce (to a quarter), 3x3 (strided or dilated), 1x1 expand, with a residual connection (ResNet-50/101)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        middle = out_channels // 4
        self.reduce = _conv_bn(in_channels, middle, 1)
        self.conv = _conv_bn(middle, middle, 3, stride, dilation)
        self.expand = _conv_bn(middle, out_channels, 1)
        self.shortcut = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(torch.relu(self.reduce(x))))
        return torch.relu(self.expand(y) + self.shortcut(x))


class ASPPClassifier(nn.Module):
    """DeepLab-v2's classifier: the sum of 3x3 convolutions (with bias) of the given dilations, one per branch."""

    def __init__(self, in_channels: int, num_classes: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        branches = [nn.Conv2d(in_channels, num_classes, 3, padding=d, dilation=d) for d in dilations]
        for branch in branches:
            nn.init.normal_(branch.weight, 0.0, 0.01)
            if branch.bias is not None:
                nn.init.zeros_(branch.bias)
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([branch(x) for branch in self.branches]).sum(dim=0)


class DeepLabV2(nn.Module):
    """Images `(B, 3, H, W)` in [0, 1] -> one `HeadOutput` per head, logits `(B, C, H/8, W/8)`."""

    def __init__(self, config: NetworkConfig, num_classes: int, num_heads: int = 1) -> None:
        super().__init__()
        if num_heads < 1:
            raise ValueError(f"num_heads must be >= 1, got {num_heads}")
        block = BasicBlock if config.block == "basic" else Bottleneck
        # stride 4 after the stem (3x3 stride-2 convolution, 3x3 max pool), as ResNet's 7x7 stem + pool
        self.stem = nn.Sequential(_conv_bn(3, config.stem_width, 3, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        # layer1: stride 1, layer2: stride 2 (-> 8), layer3 and layer4: dilation 2 and 4 instead of stride
        strides, dilations = (1, 2, 1, 1), (1, 1, 2, 4)
        stages = []
        in_channels = config.stem_width
        for width, count, stride, dilation in zip(config.stage_widths, config.blocks_per_stage, strides, dilations, strict=True):
            blocks = [block(in_channels, width, stride, dilation)] + [block(width, width, 1, dilation) for _ in range(count - 1)]
            stages.append(nn.Sequential(*blocks))
            in_channels = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.main_heads = nn.ModuleList(ASPPClassifier(config.stage_widths[3], num_classes, config.dilations) for _ in range(num_heads))
        self.aux_heads = nn.ModuleList(ASPPClassifier(config.stage_widths[2], num_classes, config.dilations) for _ in range(num_heads))

    @property
    def num_heads(self) -> int:
        return len(self.main_heads)

    def forward(self, images: torch.Tensor, detach_first_head: bool = False) -> list[HeadOutput]:
        """With `detach_first_head`, head 0 sees detached features: its losses train it and not the backbone."""
        x = self.layer2(self.layer1(self.stem((images - 0.5) / 0.25)))
        penultimate = self.layer3(x)
        last = self.layer4(penultimate)
        outputs = []
        for index, (main, aux) in enumerate(zip(self.main_heads, self.aux_heads, strict=True)):
            features = (last.detach(), penultimate.detach()) if detach_first_head and index == 0 else (last, penultimate)
            outputs.append(HeadOutput(main(features[0]), aux(features[1])))
        return outputs
