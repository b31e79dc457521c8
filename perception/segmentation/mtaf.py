"""MTAF's methods as one `nn.Module` whose forward returns the whole training loss: segmenter and discriminators.

Methods (`SegmentationConfig.method`):
- `source_only`: cross-entropy on the labelled source, main head x seg_main (1) + auxiliary head x seg_aux (0.1).
- `advent`: ADVENT with one target; `advent_merged`: the paper's baseline, one discriminator pair for all targets
  merged. Each discriminator tells source (label 0) from target (label 1) on the weighted self-information maps;
  the segmenter is trained to make the target maps look like source ones (target label 0), x adversarial_main
  (1e-3) / adversarial_aux (2e-4).
- `multi_dis`: one source-vs-target pair per target, plus target-vs-target pairs: with 2 targets one pair tells
  target 0 (label 0) from target 1 (label 1) and the segmenter gets the flipped labels; with more, the pair of
  target j tells the other targets (label 0) from target j (label 1) and the segmenter pushes target j to label 0.
  Both kinds use the same adversarial weights; `loss.target_vs_target: false` drops the target-vs-target pairs
  (an ablation: one source-vs-target pair per target on a single head).
- `mtkt`: a shared backbone with 1 + T heads. Teacher head j+1 gets source cross-entropy (the backbone gets the sum
  over teachers, as in the official code, or with `mtkt_teacher_cross_entropy: mean` their average) and ADVENT
  against its own target j (its own discriminator pair, adversarial x mtkt_teacher_adversarial_scale, 1/2 in the
  official code); the student head 0 gets no source cross-entropy, only
  sum_j KL(teacher_j || student) on target j's images (teacher detached) x distillation_main for the main output and
  x distillation_aux_factor * distillation_main / T for the auxiliary output, once `distillation_warmup_steps`
  training steps have passed. As in the official code the KL is averaged over pixels and classes, i.e. the per-pixel
  KL / number of classes. Inference uses the student. With `distillation_into_backbone: false` the student head reads
  detached features, so the KL trains the student head and leaves the shared backbone to the teachers' losses.

One optimizer, one loss: the harness makes one AdamW over all parameters and calls `loss(model, batch)` once per
step, so the GAN's two updates are folded into one backward whose gradients equal those of the two separate updates:

    loss = segmenter terms (CE, KL, adversarial through `frozen_call(D, map)`) + discriminator terms on `map.detach()`

`frozen_call` evaluates the discriminator with detached parameters (`torch.func.functional_call`), so the
segmenter's adversarial term sends gradients to the segmenter only; the discriminator's term sees detached maps, so
it sends gradients to the discriminator only. Both terms use the same forward pass, as the official code computes
the discriminator step on the predictions of the segmenter step.

Departures: every loss sees the logits upsampled to the input size / `network.loss_stride` (2 by default; the
official code uses the input size) with the labels subsampled to match; one AdamW for segmenter and
discriminators, the discriminators at `train.discriminator_lr_factor` times the segmenter's learning rate (AdamW is
invariant to the loss scale per parameter, so `loss.discriminator` only matters under gradient clipping, which is off
by default because the harness clips all parameters together); segmenter and
discriminators are updated simultaneously rather than one after the other; source and target images go through one
forward (batch norm is trained here, so its statistics mix the domains as at inference).

DDP: all losses are computed in `forward`, so the harness's DDP wrapper sees them. Every parameter gets a gradient
in every step: the student head's KL is always computed and weighted 0 before the warm-up (an exact zero gradient,
so AdamW's weight decay does shrink it meanwhile). `steps_done` is a buffer, so a resumed run and every worker count
the same steps.
"""

from __future__ import annotations

from typing import Final

import torch
from torch import nn
from torch.nn import functional as F

from perception.segmentation.classes import IGNORE_INDEX, num_classes
from perception.segmentation.config import SegmentationConfig
from perception.segmentation.deeplab import DeepLabV2, HeadOutput
from perception.segmentation.discriminators import (
    SOURCE_LABEL,
    TARGET_LABEL,
    DiscriminatorPair,
    adversarial_bce,
    weighted_self_information,
)
from scenes.training.frozen import frozen_call

__all__ = ["LEVELS", "MTAFModel", "discriminator_names"]

LEVELS: Final = ("main", "aux")


def discriminator_names(config: SegmentationConfig) -> tuple[str, ...]:
    """The discriminator pairs `config.method` trains, by name."""
    targets = config.data.target_styles
    if config.method == "source_only":
        return ()
    if config.method in ("advent", "advent_merged"):
        return ("source_vs_target",)
    source_vs = tuple(f"source_vs_{style}" for style in targets)
    if config.method == "mtkt" or not config.loss.target_vs_target:
        return source_vs
    if len(targets) == 2:
        return (*source_vs, "target_vs_target")
    return (*source_vs, *(f"others_vs_{style}" for style in targets))


def _kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) with the teacher detached, averaged over pixels and classes as in the official code
    (`F.kl_div`'s mean over all elements): the per-pixel KL divided by the number of classes."""
    teacher = F.log_softmax(teacher_logits.detach(), dim=1)
    student = F.log_softmax(student_logits, dim=1)
    return F.kl_div(student, teacher, log_target=True, reduction="none").mean()


class _Losses:
    """The weighted terms of one step and their unweighted, detached values by name (summed over repeats)."""

    def __init__(self) -> None:
        self.terms: list[torch.Tensor] = []
        self.parts: dict[str, torch.Tensor] = {}

    def add(self, name: str, value: torch.Tensor, weight: float) -> None:
        self.terms.append(weight * value)
        self.parts[name] = self.parts.get(name, torch.zeros((), device=value.device)) + value.detach()


class MTAFModel(nn.Module):
    """The segmenter (`DeepLabV2`, 1 + T heads for MTKT) and the method's discriminator pairs."""

    steps_done: torch.Tensor

    def __init__(self, config: SegmentationConfig) -> None:
        super().__init__()
        self.config = config
        classes = num_classes(config.classes)
        self.segmenter = DeepLabV2(config.network, classes, config.num_heads)
        widths = config.network.discriminator_widths
        self.discriminators = nn.ModuleDict({name: DiscriminatorPair(classes, widths) for name in discriminator_names(config)})
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.int64))

    def forward(self, source_images: torch.Tensor, source_labels: torch.Tensor, target_images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The step's loss and its parts (unweighted, detached) from `source_images (B, 3, H, W)` in [0, 1], their
        class indices `source_labels (B, H, W)` and `target_images (T, B', 3, H, W)` (T = 0 for source-only; B' may
        differ from B, as when augmentation pairs join the source images)."""
        config = self.config
        batch = source_images.shape[0]
        stride = config.network.loss_stride
        size = (source_images.shape[-2] // stride, source_images.shape[-1] // stride)
        source_labels = source_labels[:, ::stride, ::stride]
        uses_targets = config.uses_targets
        if uses_targets and target_images.shape[0] != len(config.data.target_styles):
            raise ValueError(f"expected images of {len(config.data.target_styles)} targets, got {target_images.shape[0]}")
        images = torch.cat([source_images, target_images.flatten(0, 1)]) if uses_targets else source_images
        detach_student = config.method == "mtkt" and not config.loss.distillation_into_backbone
        outputs = self.segmenter(images, detach_first_head=detach_student)
        heads = [HeadOutput(*(F.interpolate(logits, size, mode="bilinear", align_corners=False) for logits in head)) for head in outputs]
        losses = _Losses()
        if config.method == "mtkt":
            self._mtkt(losses, heads, source_labels, batch, target_images.shape[1])
        else:
            self._cross_entropy(losses, heads[0], source_labels, batch)
            if uses_targets:
                self._adversarial(losses, heads[0], batch, target_images.shape[0])
        if self.training:
            self.steps_done += 1
        return torch.stack(losses.terms).sum(), losses.parts

    def _cross_entropy(self, losses: _Losses, head: HeadOutput, labels: torch.Tensor, batch: int, prefix: str = "", scale: float = 1.0) -> None:
        weights = self.config.loss
        losses.add(f"{prefix}seg_main", F.cross_entropy(head.main[:batch], labels, ignore_index=IGNORE_INDEX), scale * weights.seg_main)
        losses.add(f"{prefix}seg_aux", F.cross_entropy(head.aux[:batch], labels, ignore_index=IGNORE_INDEX), scale * weights.seg_aux)

    def _align(
        self, losses: _Losses, name: str, level: str, first: torch.Tensor, second: torch.Tensor, fooled: list[tuple[torch.Tensor, float]], scale: float = 1.0
    ) -> None:
        """The `level` discriminator of pair `name` tells the maps `first` (label 0) from `second` (label 1); the
        segmenter is trained so that each map of `fooled` gets its label."""
        weights = self.config.loss
        discriminator: nn.Module = getattr(self.discriminators[name], level)
        adversarial = torch.stack([adversarial_bce(frozen_call(discriminator, maps), label) for maps, label in fooled]).sum()
        losses.add(f"adv_{level}", adversarial, scale * (weights.adversarial_main if level == "main" else weights.adversarial_aux))
        domain = (adversarial_bce(discriminator(first.detach()), SOURCE_LABEL) + adversarial_bce(discriminator(second.detach()), TARGET_LABEL)) / 2
        losses.add(f"dis_{level}", domain, weights.discriminator)

    def _adversarial(self, losses: _Losses, head: HeadOutput, batch: int, targets: int) -> None:
        method = self.config.method
        styles = self.config.data.target_styles
        for level in LEVELS:
            maps = weighted_self_information(getattr(head, level))
            source, target = maps[:batch], maps[batch:]
            if method != "multi_dis":
                self._align(losses, "source_vs_target", level, source, target, [(target, SOURCE_LABEL)])
                continue
            per_target = target.unflatten(0, (targets, -1))
            for index, style in enumerate(styles):
                self._align(losses, f"source_vs_{style}", level, source, per_target[index], [(per_target[index], SOURCE_LABEL)])
            if not self.config.loss.target_vs_target:
                continue
            if targets == 2:
                fooled = [(per_target[0], TARGET_LABEL), (per_target[1], SOURCE_LABEL)]
                self._align(losses, "target_vs_target", level, per_target[0], per_target[1], fooled)
                continue
            for index, style in enumerate(styles):
                others = torch.cat([per_target[other] for other in range(targets) if other != index])
                self._align(losses, f"others_vs_{style}", level, others, per_target[index], [(per_target[index], SOURCE_LABEL)])

    def _mtkt(self, losses: _Losses, heads: list[HeadOutput], labels: torch.Tensor, batch: int, target_batch: int) -> None:
        weights = self.config.loss
        styles = self.config.data.target_styles
        distilling = int(self.steps_done) >= weights.distillation_warmup_steps
        student = heads[0]
        cross_entropy_scale = 1.0 / len(styles) if weights.mtkt_teacher_cross_entropy == "mean" else 1.0
        for index, style in enumerate(styles):
            teacher = heads[index + 1]
            self._cross_entropy(losses, teacher, labels, batch, "teacher_", cross_entropy_scale)
            target = slice(batch + target_batch * index, batch + target_batch * (index + 1))
            for level in LEVELS:
                maps = weighted_self_information(getattr(teacher, level))
                source, own_target = maps[:batch], maps[target]
                fooled = [(own_target, SOURCE_LABEL)]
                self._align(losses, f"source_vs_{style}", level, source, own_target, fooled, weights.mtkt_teacher_adversarial_scale)
            main_weight = weights.distillation_main if distilling else 0.0
            aux_weight = weights.distillation_aux_factor * weights.distillation_main / len(styles) if distilling else 0.0
            losses.add("kl_main", _kl(teacher.main[target], student.main[target]), main_weight)
            losses.add("kl_aux", _kl(teacher.aux[target], student.aux[target]), aux_weight)
