"""LiDARTouch configuration: network, losses, pose source, few-beam input, synthetic training data and the loop.

One group per swappable part, as in the official code's Hydra configs. Values default to the paper's
(`configs/depth/lidartouch_synth.yaml` lists them all); widths are reduced so training runs on 2 CPU cores and the
shipped checkpoint stays small.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from scenes.config import StrictConfig

PoseMethod = Literal["posenet", "pnp", "icp", "oracle"]


class NetworkConfig(StrictConfig):
    """Monodepth2-style U-Net: residual image encoder and/or LiDAR encoder, fused by concatenation at every level."""

    use_image: bool = True
    use_lidar: bool = True
    # drivestack's addition (false = the paper's network): the LiDAR encoder also reads the few-beam depth interpolated
    # to every pixel, and the network predicts a bounded log-correction of it. A from-scratch network on 2 CPU cores
    # does not learn to densify 4 beams as well as interpolation does; starting from it, it learns where to depart.
    interpolated_prior: bool = True
    image_widths: tuple[int, int, int, int, int] = (16, 16, 32, 64, 96)
    lidar_widths: tuple[int, int, int, int, int] = (8, 8, 16, 32, 48)
    decoder_widths: tuple[int, int, int, int, int] = (8, 12, 24, 48, 96)
    blocks_per_stage: int = Field(2, ge=1, le=4)
    min_depth_m: float = Field(0.5, gt=0)
    max_depth_m: float = Field(100.0, gt=0)
    height_px: int = Field(96, ge=32)
    width_px: int = Field(320, ge=32)

    @model_validator(mode="after")
    def _consistent(self) -> NetworkConfig:
        if not (self.use_image or self.use_lidar):
            raise ValueError("network: use_image and use_lidar cannot both be false")
        if self.interpolated_prior and not self.use_lidar:
            raise ValueError("network: interpolated_prior needs use_lidar (the prior is the LiDAR's)")
        if self.min_depth_m >= self.max_depth_m:
            raise ValueError(f"network: min_depth_m ({self.min_depth_m}) must be below max_depth_m ({self.max_depth_m})")
        if self.height_px % 32 or self.width_px % 32:
            raise ValueError(f"network: height_px and width_px must be multiples of 32, got {self.height_px}x{self.width_px}")
        return self


class LossConfig(StrictConfig):
    """Weights of the three LiDARTouch losses (photometric + smoothness + LiDAR)."""

    photometric: float = Field(1.0, ge=0)
    ssim_weight: float = Field(0.85, ge=0, le=1)
    lidar: float = Field(1.0, ge=0)
    smoothness: float = Field(0.01, ge=0)
    automask: bool = True
    exclude_lidar_pixels: bool = True
    scales: int = Field(4, ge=1, le=4)
    upsample_scales: bool = True


class PoseConfig(StrictConfig):
    """Where the relative pose between the target and its source frames comes from."""

    method: PoseMethod = "pnp"
    posenet_widths: tuple[int, int, int, int, int] = (16, 16, 32, 64, 96)
    posenet_scale: float = Field(0.01, gt=0)
    pnp_max_keypoints: int = Field(1000, ge=8)
    pnp_ratio: float = Field(0.8, gt=0, le=1)
    pnp_reprojection_px: float = Field(2.0, gt=0)
    pnp_min_translation_m: float = Field(0.15, ge=0)
    # A PnP pose that moves the camera faster than this between the two frames is rejected as a wrong consensus.
    pnp_max_speed_m_per_s: float = Field(40.0, gt=0)
    # ... or one whose motion leaves the vehicle's forward-backward axis by more than this (cars do not move sideways;
    # turning at 0.5 rad/s with the camera 2 m ahead of the rear axle gives about 11 degrees at 5 m/s).
    pnp_max_sideslip_deg: float = Field(25.0, gt=0, le=90)


class BeamConfig(StrictConfig):
    """Few-beam input: `keep` scanlines out of the scan's `scanlines` (every scanlines/keep-th line)."""

    scanlines: int = Field(64, ge=1)
    keep: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> BeamConfig:
        if self.keep > self.scanlines:
            raise ValueError(f"beams: keep ({self.keep}) exceeds scanlines ({self.scanlines})")
        return self


class SynthDataConfig(StrictConfig):
    """The synthetic city's KITTI-like rig used when training with `--data synth`."""

    seed: int = 0
    logs: int = Field(8, ge=1)
    seconds: float = Field(6.0, gt=0)
    rate_hz: float = Field(10.0, gt=0)
    camera: str = "kitti_left"
    styles: tuple[str, ...] = ("default",)
    validation_seed: int = 1000
    validation_logs: int = Field(2, ge=0)


class TrainConfig(StrictConfig):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(8, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    seed: int = 0
    frame_stride: int = Field(1, ge=1)
    color_jitter: float = Field(0.2, ge=0, le=1)
    flip: bool = True
    num_threads: int | None = Field(None, ge=1)


class DepthConfig(StrictConfig):
    network: NetworkConfig = NetworkConfig()
    loss: LossConfig = LossConfig()
    pose: PoseConfig = PoseConfig()
    beams: BeamConfig = BeamConfig()
    synth: SynthDataConfig = SynthDataConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _something_to_learn(self) -> DepthConfig:
        if self.loss.photometric == 0 and self.loss.lidar == 0:
            raise ValueError("loss: photometric and lidar weights cannot both be 0")
        return self
