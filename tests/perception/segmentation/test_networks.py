"""DeepLab-v2-style segmenter and ADVENT discriminator: shapes, output stride, dilations, entropy maps."""

from __future__ import annotations

import math

import pytest
import torch

from perception.segmentation.config import NetworkConfig, scaled_dilations
from perception.segmentation.deeplab import ASPPClassifier, DeepLabV2
from perception.segmentation.discriminators import Discriminator, weighted_self_information


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_deeplab_has_output_stride_8_and_one_output_per_head(block: str) -> None:
    config = NetworkConfig(block=block, stem_width=8, stage_widths=(8, 8, 16, 16), height_px=64, width_px=96)
    net = DeepLabV2(config, num_classes=7, num_heads=3)
    heads = net(torch.rand(2, 3, 64, 96))
    assert len(heads) == 3 == net.num_heads
    for head in heads:
        assert head.main.shape == (2, 7, 8, 12)
        assert head.aux.shape == (2, 7, 8, 12)


def test_aspp_sums_four_dilated_branches() -> None:
    aspp = ASPPClassifier(4, 3, (1, 2, 3, 4))
    assert [branch.dilation for branch in aspp.branches] == [(1, 1), (2, 2), (3, 3), (4, 4)]
    x = torch.rand(1, 4, 10, 10)
    torch.testing.assert_close(aspp(x), sum(branch(x) for branch in aspp.branches))


def test_dilations_scale_with_the_input_height() -> None:
    assert scaled_dilations(320) == (6, 12, 18, 24)
    assert scaled_dilations(192) == (4, 7, 11, 14)
    assert NetworkConfig(height_px=64, width_px=64, loss_stride=1).dilations == (1, 2, 4, 5)
    assert NetworkConfig(aspp_dilations=(2, 3)).dilations == (2, 3)


def test_discriminator_on_an_entropy_map() -> None:
    logits = torch.randn(2, 7, 64, 96)
    maps = weighted_self_information(logits)
    assert maps.shape == logits.shape
    assert float(maps.min()) >= 0 and float(maps.max()) <= 1 / (math.e * math.log(2)) + 1e-6
    uniform = weighted_self_information(torch.zeros(1, 7, 2, 2))
    torch.testing.assert_close(uniform.sum(dim=1), torch.ones(1, 2, 2))  # a uniform softmax has entropy log2(C)
    out = Discriminator(7, (4, 8, 8, 16))(maps)
    assert out.shape == (2, 1, 2, 3)
