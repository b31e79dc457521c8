"""LiDARTouch networks: shapes and ranges of every output scale, the LiDAR encoder's structure, the pose network."""

from __future__ import annotations

import pytest
import torch

from depth.config import NetworkConfig
from depth.lidartouch import LidarTouchNet, PoseNet, ResidualEncoder, lidar_to_network

SMALL = NetworkConfig(height_px=64, width_px=128, image_widths=(8, 8, 16, 16, 32), lidar_widths=(4, 4, 8, 8, 16), decoder_widths=(4, 8, 8, 16, 16))


@pytest.mark.parametrize(
    ("use_image", "use_lidar", "interpolated_prior"), [(True, True, False), (True, False, False), (False, True, False), (True, True, True), (False, True, True)]
)
def test_four_scales_in_the_inverse_depth_range(use_image: bool, use_lidar: bool, interpolated_prior: bool) -> None:
    config = SMALL.model_copy(update={"use_image": use_image, "use_lidar": use_lidar, "interpolated_prior": interpolated_prior})
    net = LidarTouchNet(config).eval()
    image = torch.randint(0, 256, (2, 3, 64, 128), dtype=torch.uint8)
    sparse = torch.zeros(2, 1, 64, 128)
    sparse[:, :, 40, ::3] = 12.0
    with torch.no_grad():
        outputs = net(image, sparse, torch.full_like(sparse, 12.0))
    assert [tuple(o.shape) for o in outputs] == [(2, 1, 64 // 2**s, 128 // 2**s) for s in range(4)]
    for output in outputs:
        assert float(output.min()) >= 1.0 / config.max_depth_m and float(output.max()) <= 1.0 / config.min_depth_m


def test_initial_prediction_is_about_ten_metres() -> None:
    net = LidarTouchNet(SMALL.model_copy(update={"interpolated_prior": False})).eval()
    with torch.no_grad():
        depth = 1.0 / net(torch.zeros(1, 3, 64, 128, dtype=torch.uint8), torch.zeros(1, 1, 64, 128))[0]
    assert 4.0 < float(depth.median()) < 25.0  # not saturated at either end of the sigmoid


def test_prior_network_starts_from_the_interpolated_depth_and_needs_it() -> None:
    torch.manual_seed(0)
    net = LidarTouchNet(SMALL).eval()
    prior = 5.0 + 20.0 * torch.rand(1, 1, 64, 128)
    with torch.no_grad():
        outputs = net(torch.randint(0, 256, (1, 3, 64, 128), dtype=torch.uint8), torch.zeros(1, 1, 64, 128), prior)
    # The output heads start at a zero correction, so every scale starts as the prior (averaged in inverse depth).
    torch.testing.assert_close(outputs[0], 1.0 / prior)
    torch.testing.assert_close(outputs[2], torch.nn.functional.avg_pool2d(1.0 / prior, 4))
    with pytest.raises(ValueError, match="needs prior_depth_m"):
        net(torch.zeros(1, 3, 64, 128, dtype=torch.uint8), torch.zeros(1, 1, 64, 128))


def test_lidar_input_is_inverse_depth_with_zero_where_no_return() -> None:
    sparse = torch.tensor([[[[0.0, 2.0], [4.0, 0.0]]]])
    torch.testing.assert_close(lidar_to_network(sparse), torch.tensor([[[[0.0, 0.5], [0.25, 0.0]]]]))


def test_lidar_encoder_has_no_stem_norm_nor_pool_and_matches_image_scales() -> None:
    image_encoder = ResidualEncoder(3, (8, 8, 16, 16, 32), 1)
    lidar_encoder = ResidualEncoder(1, (4, 4, 8, 8, 16), 1, lidar=True)
    assert isinstance(lidar_encoder.stem[1], torch.nn.Identity) and isinstance(lidar_encoder.pool, torch.nn.Identity)
    assert isinstance(image_encoder.stem[1], torch.nn.BatchNorm2d) and isinstance(image_encoder.pool, torch.nn.MaxPool2d)
    image_sizes = [f.shape[-2:] for f in image_encoder(torch.zeros(1, 3, 64, 128))]
    lidar_sizes = [f.shape[-2:] for f in lidar_encoder(torch.zeros(1, 1, 64, 128))]
    assert image_sizes == lidar_sizes == [(64 // 2**s, 128 // 2**s) for s in range(1, 6)]


def test_pose_network_outputs_rigid_transforms_scaled_down() -> None:
    torch.manual_seed(0)
    net = PoseNet((8, 8, 16, 16, 32), 0.01).eval()
    pose = net(torch.rand(3, 3, 64, 128), torch.rand(3, 3, 64, 128))
    assert pose.shape == (3, 4, 4)
    rotation = pose[:, :3, :3]
    torch.testing.assert_close(rotation @ rotation.transpose(1, 2), torch.eye(3).expand(3, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(pose[:, 3], torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(3, 4))
    assert float(pose[:, :3, 3].detach().abs().max()) < 1.0  # the 0.01 output scale keeps the initial motion small


def test_network_config_rejects_no_input_and_bad_sizes() -> None:
    with pytest.raises(ValueError, match="cannot both be false"):
        NetworkConfig(use_image=False, use_lidar=False)
    with pytest.raises(ValueError, match="multiples of 32"):
        NetworkConfig(height_px=100)
    with pytest.raises(ValueError, match="interpolated_prior needs use_lidar"):
        NetworkConfig(use_lidar=False)
