"""MTAF on the training harness: batches of B labelled source images plus B unlabelled images of each target.

The task's samples are the source images (an epoch visits each once); the target images of a step are drawn from
each target's pool by a generator seeded with (seed, epoch, source index, target), so batches do not depend on the
number of workers and a resumed run draws the same ones. Labelled augmentation pairs (`TrainingData.augmentation`,
such as Semantic Palette's generated scenes) are mixed 1:1 with the source as in Semantic Palette's segmenter
training: each source image brings one pair drawn from the pool the same seeded way, and both count as source.
Augmentation, seeded the same way per image: horizontal flip (image and labels together) and mild
brightness/contrast/saturation jitter. The official code uses neither (images resized to 640x320, no crop, no flip);
they help a small network trained from scratch on few drives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple

import numpy as np
import torch

from perception.segmentation.config import SegmentationConfig
from perception.segmentation.data import SegmentationSample, TrainingData
from perception.segmentation.mtaf import MTAFModel
from scenes.errors import InputError
from scenes.training.harness import LoopSettings, ParameterGroup, TrainingTask

__all__ = ["FINAL", "STAGE", "SegmentationBatch", "SegmentationTask"]

STAGE: Final = "segmentation"
FINAL: Final = "segmenter.pt"
_SOURCE_STREAM: Final = 0  # the target of index t uses stream t + 1
_AUGMENTATION_STREAM: Final = 1_000_000  # beyond any target's stream


class SegmentationBatch(NamedTuple):
    source_images: torch.Tensor  # (B, 3, H, W) in [0, 1]; 2B with augmentation pairs (the B source images first)
    source_labels: torch.Tensor  # (B or 2B, H, W) int64 class indices, 255 ignored
    target_images: torch.Tensor  # (T, B, 3, H, W) in [0, 1], T = 0 for source-only


def _jitter(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Brightness, contrast and saturation jitter of an `(H, W, 3)` image in [0, 1]."""
    brightness, contrast, saturation = rng.uniform(1.0 - strength, 1.0 + strength, 3)
    image = image * brightness
    mean = image.mean()
    image = (image - mean) * contrast + mean
    grey = image.mean(axis=2, keepdims=True)
    return np.clip((image - grey) * saturation + grey, 0.0, 1.0)


def _labels(samples: Sequence[SegmentationSample], kind: str, config_source: str) -> list[np.ndarray]:
    """The label maps of `samples`, all of which must have one."""
    labels = [sample.labels for sample in samples if sample.labels is not None]
    if len(labels) != len(samples):
        raise InputError(f"{config_source}: {len(samples) - len(labels)} {kind} samples have no labels")
    return labels


class SegmentationTask(TrainingTask):
    """Semantic segmentation adapted from a labelled source to unlabelled targets with the config's MTAF method."""

    stage = STAGE
    final_name = FINAL
    config: SegmentationConfig
    plot_title = "MTAF segmentation training"

    def __init__(self, config: SegmentationConfig, data: TrainingData, config_source: str = "this run's config") -> None:
        self.config = config
        self.config_source = config_source
        self.source = data.source
        self.targets = [data.targets.get(style, []) for style in config.data.target_styles] if config.uses_targets else []
        empty = [style for style, pool in zip(config.data.target_styles, self.targets, strict=False) if not pool]
        if empty:
            raise InputError(f"{config_source}: no images of target styles {empty}")
        self.source_labels = _labels(self.source, "source", config_source)
        self.augmentation = list(data.augmentation)
        self.augmentation_labels = _labels(self.augmentation, "augmentation", config_source)
        self.loop = LoopSettings.one_cycle(config.train, config.train.grad_clip_norm)

    def __len__(self) -> int:
        return len(self.source)

    def build_model(self) -> MTAFModel:
        return MTAFModel(self.config)

    def parameter_groups(self, model: torch.nn.Module) -> list[ParameterGroup] | None:
        """The segmenter at the learning rate, the discriminators (if any) at `train.discriminator_lr_factor` times it."""
        assert isinstance(model, MTAFModel)
        discriminators = list(model.discriminators.parameters())
        if not discriminators:
            return None
        return [ParameterGroup(list(model.segmenter.parameters())), ParameterGroup(discriminators, self.config.train.discriminator_lr_factor)]

    def _augmented(self, sample: SegmentationSample, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
        """`(3, H, W)` float image in [0, 1], augmented, and whether it was flipped."""
        train = self.config.train
        image = sample.image.astype(np.float32) / 255.0
        flipped = train.flip and bool(rng.random() < 0.5)
        if flipped:
            image = image[:, ::-1]
        if train.color_jitter > 0:
            image = _jitter(image, rng, train.color_jitter)
        return np.ascontiguousarray(image.transpose(2, 0, 1)), flipped

    def _labelled(self, sample: SegmentationSample, label: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        image, flipped = self._augmented(sample, rng)
        return image, np.ascontiguousarray(label[:, ::-1]) if flipped else label

    def make_batch(self, indices: np.ndarray, epoch: int, device: torch.device) -> SegmentationBatch:
        seed = self.config.train.seed
        images, labels = [], []
        for index in indices:
            rng = np.random.default_rng([seed, epoch, int(index), _SOURCE_STREAM])
            image, label = self._labelled(self.source[int(index)], self.source_labels[int(index)], rng)
            images.append(image)
            labels.append(label)
        for index in indices if self.augmentation else ():
            rng = np.random.default_rng([seed, epoch, int(index), _AUGMENTATION_STREAM])
            pair = int(rng.integers(len(self.augmentation)))
            image, label = self._labelled(self.augmentation[pair], self.augmentation_labels[pair], rng)
            images.append(image)
            labels.append(label)
        target_images = []
        for target_index, pool in enumerate(self.targets):
            drawn = []
            for index in indices:
                rng = np.random.default_rng([seed, epoch, int(index), target_index + 1])
                drawn.append(self._augmented(pool[int(rng.integers(len(pool)))], rng)[0])
            target_images.append(np.stack(drawn))
        height, width = images[0].shape[1:]
        targets = np.stack(target_images) if target_images else np.zeros((0, len(indices), 3, height, width), dtype=np.float32)
        return SegmentationBatch(
            source_images=torch.from_numpy(np.stack(images)).to(device),
            source_labels=torch.from_numpy(np.stack(labels)).to(device=device, dtype=torch.int64),
            target_images=torch.from_numpy(targets).to(device),
        )

    def loss(self, model: torch.nn.Module, batch: SegmentationBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, parts = model(batch.source_images, batch.source_labels, batch.target_images)
        return loss, parts
