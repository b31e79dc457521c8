"""Semantic Palette configuration: resolution, the layout and image networks, loss weights, data and three phases.

The official code (`models/seg_generator`, `models/img_generator`, `models/seg_img_model.py`) trains a progressive
layout GAN to 128x256 (Adam 1e-3, betas (0, 0.99), WGAN-GP 10, entropy 1, spread 1), SPADE at 128x256 (ngf 64,
hinge, feature matching 10, VGG 10, TTUR: G 1e-4, D 4e-4, betas (0, 0.9)), then both jointly (layout generator lr
1e-4, a second image discriminator on images of generated layouts, weight 0.01). Departures, so that all three phases
train on 2 CPU cores: a fixed-resolution layout generator (every resolution of the progressive one, from 4x8 up,
built at once and trained together, each intermediate map fed to the next block as in the progressive model)
instead of progressive growing; 64x128 by default; narrower networks; the VGG perceptual loss (no pretrained weights
offline) replaced by an L1 loss between the real and generated images blurred and downsampled 4x, which anchors the
colours of regions while feature matching carries the texture.
"""

from __future__ import annotations

from typing import Final

from pydantic import Field, model_validator

from scenes.config import StrictConfig
from scenes.synth.styles import STYLES

__all__ = [
    "BASE_HEIGHT_PX",
    "BASE_WIDTH_PX",
    "DataConfig",
    "ImageNetworkConfig",
    "LayoutNetworkConfig",
    "LossConfig",
    "PaletteConfig",
    "PhaseConfig",
    "ScenegenConfig",
]

# The progressive generator's first resolution: every layout size is this times a power of two.
BASE_HEIGHT_PX: Final = 4
BASE_WIDTH_PX: Final = 8


class LayoutNetworkConfig(StrictConfig):
    """Layout generator (z and the proportion vector -> 4x8 -> ... -> full size) and its unconditional critic.

    `conditional: false` is the paper's baseline: no proportions at the input and a per-pixel softmax instead of the
    assisted activation."""

    conditional: bool = True
    latent_dim: int = Field(64, ge=1)
    block_channels: tuple[int, ...] = (96, 96, 64, 48, 32)  # one per resolution, from 4x8 up
    critic_channels: tuple[int, ...] = (32, 48, 64, 96, 128)  # one per stride-2 stage, from full size down
    # Sinkhorn-Knopp iterations of the assisted activation (1: the paper's) in training and when generating.
    balancing_iterations: int = Field(1, ge=1)
    generation_balancing_iterations: int = Field(10, ge=1)

    @model_validator(mode="after")
    def _widths(self) -> LayoutNetworkConfig:
        if len(self.block_channels) < 2 or min(self.block_channels) < 4:
            raise ValueError("layout_network.block_channels: at least 2 resolutions, each >= 4 channels")
        if not self.critic_channels or min(self.critic_channels) < 4:
            raise ValueError("layout_network.critic_channels: at least one stage, each >= 4 channels")
        return self


class ImageNetworkConfig(StrictConfig):
    """SPADE generator (noise -> 4x8 -> full size, each residual block normalised by the layout) and the multi-scale
    patch discriminator on (layout, image) pairs."""

    noise_dim: int = Field(64, ge=1)
    ngf: int = Field(24, ge=4)  # channels of the last block, doubled per halving of the resolution up to:
    top_width_factor: int = Field(4, ge=1)  # the widest blocks have top_width_factor * ngf channels (official 16)
    spade_hidden: int = Field(32, ge=4)  # the SPADE modulation network's shared hidden channels (official 128)
    ndf: int = Field(32, ge=4)
    discriminator_layers: int = Field(3, ge=1)
    num_discriminators: int = Field(2, ge=1)


class LossConfig(StrictConfig):
    gradient_penalty: float = Field(10.0, ge=0)
    drift: float = Field(1e-3, ge=0)  # ProGAN's epsilon * D(real)^2, keeps the critic's scores near 0
    entropy: float = Field(1.0, ge=0)
    spread: float = Field(1.0, ge=0)
    feature_matching: float = Field(10.0, ge=0)
    low_pass_l1: float = Field(10.0, ge=0)  # stands in for the VGG loss (weight 10 officially)
    joint_generated_layouts: float = Field(0.01, ge=0)  # the second image discriminator of joint fine-tuning
    soften_sigma_px: float = Field(1.0, ge=0)  # real layouts seen by the critic: 0.5 one-hot + 0.5 blurred one-hot


class DataConfig(StrictConfig):
    """Labelled views of the synthetic city's front camera (every `frame_stride`-th frame of `logs` drives per
    style), or a Cityscapes-style folder; a held-out split of another seed for the metrics."""

    seed: int = 0
    logs: int = Field(40, ge=1)
    seconds: float = Field(12.0, gt=0)
    rate_hz: float = Field(1.0, gt=0)
    frame_stride: int = Field(1, ge=1)
    styles: tuple[str, ...] = ("default",)
    validation_seed: int = 1000
    validation_logs: int = Field(8, ge=1)

    @model_validator(mode="after")
    def _known_styles(self) -> DataConfig:
        unknown = [style for style in self.styles if style not in STYLES]
        if unknown or not self.styles:
            raise ValueError(f"data.styles: unknown or empty {list(self.styles)}; known: {', '.join(STYLES)}")
        if self.seed == self.validation_seed:
            raise ValueError(f"data: validation_seed must differ from seed ({self.seed})")
        return self


class PaletteConfig(StrictConfig):
    max_components: int = Field(30, ge=1)  # components 1..max, lowest AIC


class PhaseConfig(StrictConfig):
    """One training phase: Adam(W) with GAN betas, the generator at `learning_rate`, the discriminators at
    `learning_rate * discriminator_lr_factor`, a constant learning rate."""

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    discriminator_lr_factor: float = Field(1.0, gt=0)
    betas: tuple[float, float] = (0.0, 0.99)
    weight_decay: float = Field(0.0, ge=0)
    seed: int = 0
    num_threads: int | None = Field(None, ge=1)


class ScenegenConfig(StrictConfig):
    height_px: int = Field(64, ge=BASE_HEIGHT_PX)
    width_px: int = Field(128, ge=BASE_WIDTH_PX)
    layout_network: LayoutNetworkConfig = LayoutNetworkConfig()
    image_network: ImageNetworkConfig = ImageNetworkConfig()
    loss: LossConfig = LossConfig()
    data: DataConfig = DataConfig()
    palette: PaletteConfig = PaletteConfig()
    layout_train: PhaseConfig = PhaseConfig()
    image_train: PhaseConfig = PhaseConfig(batch_size=8, learning_rate=1e-4, discriminator_lr_factor=4.0, betas=(0.0, 0.9))
    joint_train: PhaseConfig = PhaseConfig(epochs=2, batch_size=4, learning_rate=1e-4, discriminator_lr_factor=4.0, betas=(0.0, 0.9))

    @model_validator(mode="after")
    def _resolution(self) -> ScenegenConfig:
        levels = len(self.layout_network.block_channels)
        expected = (BASE_HEIGHT_PX << (levels - 1), BASE_WIDTH_PX << (levels - 1))
        if (self.height_px, self.width_px) != expected:
            raise ValueError(
                f"height_px x width_px: {levels} layout resolutions from {BASE_HEIGHT_PX}x{BASE_WIDTH_PX} end at "
                f"{expected[0]}x{expected[1]}, got {self.height_px}x{self.width_px}; add or remove layout_network.block_channels"
            )
        if self.height_px >> len(self.layout_network.critic_channels) < 1:
            raise ValueError(f"layout_network.critic_channels: {len(self.layout_network.critic_channels)} stride-2 stages exceed height_px {self.height_px}")
        return self

    @property
    def levels(self) -> int:
        """Number of layout resolutions (4x8 ... height_px x width_px)."""
        return len(self.layout_network.block_channels)
