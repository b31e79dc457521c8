"""MTAF configuration: method, classes, network, loss weights, synthetic source/target data and the training loop.

One group per swappable part, as in the official code's `domain_adaptation/config.py`. Loss weights default to the
paper's baseline (seg 1 / aux 0.1, adversarial 1e-3 / 2e-4, distillation 4); the paper's Multi-Dis/MTKT setting
(seg 4 / 0.4, adversarial 4e-3 / 8e-4 at batch 4+4) is the same set times 4, which AdamW's per-parameter step size
makes equivalent. Widths are reduced from ResNet-101 and ADVENT's discriminator so training runs on 2 CPU cores.

Departures from the official optimisation (the harness has one AdamW over all parameters, see `mtaf.py`): one
learning rate for segmenter and discriminators (officially SGD 2.5e-4 with 10x on the heads, and Adam 1e-4), and
the harness's one-cycle schedule instead of the poly schedule.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field, model_validator

from perception.segmentation.classes import ClassTable
from scenes.config import StrictConfig
from scenes.synth.styles import STYLES

__all__ = [
    "Method",
    "DataConfig",
    "LossConfig",
    "NetworkConfig",
    "SegmentationConfig",
    "TrainConfig",
    "scaled_dilations",
]

Method = Literal["source_only", "advent", "advent_merged", "multi_dis", "mtkt"]
# The official code's ASPP dilations at its 640x320 input (a 40-pixel-high stride-8 feature map).
OFFICIAL_DILATIONS: Final = (6, 12, 18, 24)
OFFICIAL_HEIGHT_PX: Final = 320
OUTPUT_STRIDE: Final = 8


def scaled_dilations(height_px: int) -> tuple[int, ...]:
    """ASPP dilations scaled with the input height relative to the official 320 px, so each branch covers the same
    fraction of the feature map (192 px -> 4, 7, 11, 14); at least 1."""
    return tuple(max(1, round(d * height_px / OFFICIAL_HEIGHT_PX)) for d in OFFICIAL_DILATIONS)


class NetworkConfig(StrictConfig):
    """DeepLab-v2-style segmenter (residual encoder, output stride 8, ASPP heads) and ADVENT's discriminator."""

    block: Literal["basic", "bottleneck"] = "basic"
    stem_width: int = Field(16, ge=4)
    stage_widths: tuple[int, int, int, int] = (24, 32, 48, 64)
    blocks_per_stage: tuple[int, int, int, int] = (1, 1, 2, 1)
    aspp_dilations: tuple[int, ...] | None = None  # None: `scaled_dilations(height_px)`
    discriminator_widths: tuple[int, int, int, int] = (8, 16, 32, 64)  # ADVENT: 64, 128, 256, 512
    # The losses see the logits upsampled to the input size / loss_stride (labels subsampled): the official code
    # uses the full input size (1); 2 makes the 12 discriminators of Multi-Dis 4x cheaper on 2 CPU cores.
    loss_stride: int = Field(2, ge=1, le=4)
    height_px: int = Field(192, ge=32)
    width_px: int = Field(320, ge=32)

    @model_validator(mode="after")
    def _consistent(self) -> NetworkConfig:
        if self.height_px % OUTPUT_STRIDE or self.width_px % OUTPUT_STRIDE:
            raise ValueError(f"network: height_px and width_px must be multiples of {OUTPUT_STRIDE}, got {self.width_px}x{self.height_px}")
        if self.height_px // self.loss_stride < 32 or self.width_px // self.loss_stride < 32:
            raise ValueError(f"network: the loss maps ({self.width_px}x{self.height_px} / loss_stride {self.loss_stride}) must be >= 32 px")
        if min(self.stage_widths) < 4 or min(self.discriminator_widths) < 1 or min(self.blocks_per_stage) < 1:
            raise ValueError("network: stage_widths must be >= 4, discriminator_widths and blocks_per_stage >= 1")
        if self.block == "bottleneck" and any(width % 4 for width in self.stage_widths):
            raise ValueError(f"network: bottleneck stage_widths must be multiples of 4, got {list(self.stage_widths)}")
        if self.aspp_dilations is not None and (not self.aspp_dilations or min(self.aspp_dilations) < 1):
            raise ValueError(f"network: aspp_dilations must be a non-empty list of positive ints, got {self.aspp_dilations}")
        return self

    @property
    def dilations(self) -> tuple[int, ...]:
        return self.aspp_dilations if self.aspp_dilations is not None else scaled_dilations(self.height_px)


class LossConfig(StrictConfig):
    """Loss weights (main / auxiliary head); MTKT's teacher adversarial scale, distillation weights and warm-up."""

    seg_main: float = Field(1.0, ge=0)
    seg_aux: float = Field(0.1, ge=0)
    adversarial_main: float = Field(1e-3, ge=0)
    adversarial_aux: float = Field(2e-4, ge=0)
    discriminator: float = Field(1.0, gt=0)
    # Multi-Dis's target-vs-target discriminator pairs (false: only its source-vs-target pairs, an ablation)
    target_vs_target: bool = True
    mtkt_teacher_adversarial_scale: float = Field(0.5, ge=0)
    # the shared backbone gets the teachers' source cross-entropies summed (the official code) or averaged
    mtkt_teacher_cross_entropy: Literal["sum", "mean"] = "sum"
    distillation_main: float = Field(4.0, ge=0)
    # the aux KL weight is this x distillation_main / number of targets (the official code uses its LAMBDA_SEG_AUX here)
    distillation_aux_factor: float = Field(0.4, ge=0)
    distillation_warmup_steps: int = Field(0, ge=0)
    # the student's KL reaches the shared backbone (true) or only the student head (false)
    distillation_into_backbone: bool = True


class DataConfig(StrictConfig):
    """Synthetic source (labelled) and targets (unlabelled) simulated in memory; a held-out source split of another
    seed for model selection. Frames of a log are strongly correlated, hence `frame_stride`."""

    seed: int = 0
    logs: int = Field(4, ge=1)  # per domain
    seconds: float = Field(6.0, gt=0)
    rate_hz: float = Field(5.0, gt=0)
    frame_stride: int = Field(2, ge=1)
    source_style: str = "default"
    target_styles: tuple[str, ...] = ("night", "fog", "desert")
    validation_seed: int = 1000
    validation_logs: int = Field(1, ge=0)

    @model_validator(mode="after")
    def _known_styles(self) -> DataConfig:
        unknown = [style for style in (self.source_style, *self.target_styles) if style not in STYLES]
        if unknown:
            raise ValueError(f"data: unknown styles {unknown}; known: {', '.join(STYLES)}")
        if len(set(self.target_styles)) != len(self.target_styles):
            raise ValueError(f"data: a target style is listed twice: {list(self.target_styles)}")
        if self.seed == self.validation_seed:
            raise ValueError(f"data: validation_seed must differ from seed ({self.seed})")
        return self


class TrainConfig(StrictConfig):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(2, ge=1)  # source images per step; each target adds as many
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    grad_clip_norm: float | None = Field(None, gt=0)
    # the discriminators' learning rate over the segmenter's (the official code: Adam 1e-4 for them)
    discriminator_lr_factor: float = Field(1.0, gt=0)
    seed: int = 0
    flip: bool = True
    color_jitter: float = Field(0.2, ge=0, le=1)
    num_threads: int | None = Field(None, ge=1)


class SegmentationConfig(StrictConfig):
    method: Method = "source_only"
    classes: ClassTable = "super7"
    network: NetworkConfig = NetworkConfig()
    loss: LossConfig = LossConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _targets_fit_method(self) -> SegmentationConfig:
        targets = len(self.data.target_styles)
        if self.method == "advent" and targets != 1:
            raise ValueError(f"data.target_styles: method 'advent' adapts to one target, got {targets}; use 'advent_merged' for several")
        if self.method == "multi_dis" and targets < 2:
            raise ValueError(f"data.target_styles: method 'multi_dis' needs at least 2 targets, got {targets}")
        if self.method != "source_only" and targets < 1:
            raise ValueError(f"data.target_styles: method '{self.method}' needs at least one target")
        return self

    @property
    def num_heads(self) -> int:
        """1 + T classifier heads for MTKT (head 0 = student), 1 otherwise."""
        return 1 + len(self.data.target_styles) if self.method == "mtkt" else 1

    @property
    def uses_targets(self) -> bool:
        return self.method != "source_only"
