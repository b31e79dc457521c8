"""LiDARTouch losses on hand-built cases: a textured plane seen from two camera positions is explained by the true
depth and pose and not by a wrong depth; auto-masking; the LiDAR term; smoothness; the pixels each term covers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depth.config import LossConfig
from depth.losses import identity_errors, lidar_loss, photometric_error, reprojection_loss, smoothness_loss, total_loss

H, W = 48, 64
K = torch.tensor([[40.0, 0.0, 31.5], [0.0, 40.0, 23.5], [0.0, 0.0, 1.0]])


def _scene(translation_x_m: float = 0.3, depth_m: float = 5.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fronto-parallel textured wall at `depth_m`: target image, source image from a camera `translation_x_m` to the
    right (it sees the wall shifted left by fx * t / z pixels), the true depth and `source_T_target`."""
    generator = torch.Generator().manual_seed(0)
    wide = torch.nn.functional.interpolate(torch.rand(1, 3, H // 4, W, generator=generator), size=(H, 2 * W), mode="bilinear", align_corners=False)
    offset_px = int(round(float(K[0, 0]) * translation_x_m / depth_m))
    target = wide[..., W // 2 : W // 2 + W]
    source = wide[..., W // 2 + offset_px : W // 2 + offset_px + W]
    source_T_target = torch.eye(4)[None]
    source_T_target[0, 0, 3] = -translation_x_m
    return target, source, torch.full((1, 1, H, W), depth_m), source_T_target


def test_identical_images_have_zero_photometric_error() -> None:
    image = torch.rand(2, 3, H, W)
    assert float(photometric_error(image, image, 0.85).abs().max()) < 1e-6


def test_photometric_error_is_the_weighted_l1_for_a_constant_offset() -> None:
    image = torch.full((1, 3, H, W), 0.5)
    error = photometric_error(image, image + 0.1, 0.0)
    torch.testing.assert_close(error, torch.full((1, 1, H, W), 0.1))


def test_true_depth_and_pose_explain_the_source_better_than_wrong_depth() -> None:
    target, source, depth, pose = _scene(translation_x_m=0.5, depth_m=5.0)  # a 4-pixel shift
    config = LossConfig(automask=False)
    no_lidar = torch.zeros(1, 1, H, W, dtype=torch.bool)
    valid = torch.ones(1, 1, dtype=torch.bool)
    right, fraction = reprojection_loss(target, source[:, None], depth, K[None], pose[:, None], valid, no_lidar, config)
    wrong, _ = reprojection_loss(target, source[:, None], depth * 4.0, K[None], pose[:, None], valid, no_lidar, config)
    assert float(right) < 0.02 < float(wrong)
    assert 0.8 < float(fraction) <= 1.0  # all pixels but the border that leaves the source view


def test_automask_drops_pixels_a_static_source_explains() -> None:
    target, _, depth, pose = _scene()
    config = LossConfig()
    sources = target[:, None].clone()  # nothing moved: the identity explains every pixel
    valid = torch.ones(1, 1, dtype=torch.bool)
    identity = identity_errors(target, sources, valid, config.ssim_weight)
    loss, fraction = reprojection_loss(target, sources, depth, K[None], pose[:, None], valid, torch.zeros(1, 1, H, W, dtype=torch.bool), config, identity)
    assert float(fraction) < 0.05 and float(loss) < 1e-3


def test_lidar_pixels_and_invalid_poses_are_not_photometrically_supervised() -> None:
    target, source, depth, pose = _scene(translation_x_m=0.5)
    config = LossConfig(automask=False)
    lidar = torch.zeros(1, 1, H, W, dtype=torch.bool)
    lidar[:, :, ::2] = True
    _, half = reprojection_loss(target, source[:, None], depth, K[None], pose[:, None], torch.ones(1, 1, dtype=torch.bool), lidar, config)
    _, none = reprojection_loss(target, source[:, None], depth, K[None], pose[:, None], torch.zeros(1, 1, dtype=torch.bool), lidar, config)
    assert 0.4 < float(half) <= 0.5 and float(none) == 0.0


def test_lidar_loss_is_l1_on_inverse_depth_at_returns_only() -> None:
    inverse = torch.full((1, 1, 2, 2), 0.1)
    lidar = torch.tensor([[[[0.0, 5.0], [20.0, 0.0]]]])
    assert float(lidar_loss(inverse, lidar)) == pytest.approx((abs(0.1 - 0.2) + abs(0.1 - 0.05)) / 2)
    assert float(lidar_loss(inverse, torch.zeros_like(lidar))) == 0.0


def test_smoothness_ignores_scale_and_is_zero_for_constant_depth() -> None:
    image = torch.rand(1, 3, H, W)
    assert float(smoothness_loss(torch.full((1, 1, H, W), 0.3), image)) == 0.0
    ramp = torch.linspace(0.1, 0.5, W).expand(1, 1, H, W).contiguous()
    assert float(smoothness_loss(ramp, image)) == pytest.approx(float(smoothness_loss(3.0 * ramp, image)), rel=1e-5)


@pytest.mark.parametrize("upsample_scales", [True, False])
def test_total_loss_prefers_the_true_depth_at_every_scale(upsample_scales: bool) -> None:
    target, source, depth, pose = _scene(translation_x_m=0.5)
    config = LossConfig(upsample_scales=upsample_scales, smoothness=0.0)
    lidar = torch.zeros(1, 1, H, W)
    lidar[:, :, 30, ::4] = 5.0

    def pyramid(depth_m: float) -> list[torch.Tensor]:
        return [torch.full((1, 1, H // 2**s, W // 2**s), 1.0 / depth_m) for s in range(4)]

    args = (target, source[:, None], lidar, K[None], pose[:, None], torch.ones(1, 1, dtype=torch.bool), config)
    right, parts = total_loss(pyramid(5.0), *args)
    wrong, wrong_parts = total_loss(pyramid(20.0), *args)
    assert parts["lidar"] == pytest.approx(0.0, abs=1e-6) and wrong_parts["lidar"] == pytest.approx(0.15, rel=1e-4)
    assert parts["photometric"] < wrong_parts["photometric"]
    assert float(right) < float(wrong)
    assert np.isfinite([float(right), *parts.values()]).all()
