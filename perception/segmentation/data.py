"""Samples for MTAF: labelled source images, unlabelled target images per style, labelled evaluation images.

Sources of images:
- the synthetic city (`--data synth`), simulated in memory with the front camera only (no LiDAR) and rendered at
  the network size: the source style (`default`) with labels, each target style (`night`, `fog`, `desert`, ...)
  without; logs of domain `k` use seed `data.seed + k`, so domains never share a drive. The held-out source split
  (`data.validation_seed`) is the model-selection set: target labels are never used for training or selection.
  Synthetic target labels exist and `synth_target_eval_samples` returns them, for evaluation only;
- Cityscapes-style folders (`cityscapes:PATH`) through the adapter, for evaluation and as a labelled source.

Frames of a log are strongly correlated, so every `data.frame_stride`-th frame is kept. Labels are Cityscapes
`labelIds` mapped through `classes.py`; images are resized with area interpolation, labels with nearest neighbour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from perception.segmentation.classes import ClassTable, label_ids_to_classes
from perception.segmentation.config import SegmentationConfig
from scenes.adapters.cityscapes import CityscapesDataset
from scenes.synth.styles import style_names

__all__ = [
    "SYNTH_CAMERA",
    "SegmentationSample",
    "TrainingData",
    "cityscapes_samples",
    "resize_image",
    "resize_labels",
    "synth_samples",
    "synth_target_eval_samples",
    "synth_training_data",
    "training_data",
    "validation_samples",
]

SYNTH_CAMERA = "ring_front_center"


@dataclass(frozen=True)
class SegmentationSample:
    """One image `(H, W, 3)` uint8 with its class indices `(H, W)` uint8 (None when unlabelled) and its domain."""

    image: np.ndarray
    labels: np.ndarray | None
    domain: str


@dataclass(frozen=True)
class TrainingData:
    """Labelled source samples, unlabelled samples per target style (in `data.target_styles` order) and labelled
    augmentation pairs (such as Semantic Palette's generated scenes) mixed 1:1 with the source in every batch."""

    source: list[SegmentationSample]
    targets: Mapping[str, list[SegmentationSample]]
    augmentation: Sequence[SegmentationSample] = ()


def resize_image(image: np.ndarray, height_px: int, width_px: int) -> np.ndarray:
    """`(H, W, 3)` uint8 resized to `height_px x width_px` with area interpolation (unchanged when already that size)."""
    if image.shape[:2] == (height_px, width_px):
        return image
    return cv2.resize(image, (width_px, height_px), interpolation=cv2.INTER_AREA)


def resize_labels(labels: np.ndarray, height_px: int, width_px: int) -> np.ndarray:
    """`(H, W)` uint8 labels resized to `height_px x width_px` with nearest neighbour (unchanged when already that size)."""
    if labels.shape == (height_px, width_px):
        return labels
    return cv2.resize(labels, (width_px, height_px), interpolation=cv2.INTER_NEAREST)


def synth_samples(config: SegmentationConfig, style: str, seed: int, logs: int, *, labelled: bool, workers: int | None = None) -> list[SegmentationSample]:
    """Every `frame_stride`-th front-camera frame of `logs` simulated drives of `style` and `seed`."""
    from scenes.synth.world import SynthConfig, simulate_logs

    data, network = config.data, config.network
    sim = SynthConfig(
        style=style,
        cameras=(SYNTH_CAMERA,),
        image_width_px=network.width_px,
        image_height_px=network.height_px,
        lidar_beams=None,
        seconds=data.seconds,
        rate_hz=data.rate_hz,
    )
    samples = []
    for log in simulate_logs(sim, seed, logs, workers=workers):
        for frame in log.frames[:: data.frame_stride]:
            camera = frame.cameras[SYNTH_CAMERA]
            labels = label_ids_to_classes(camera.semantics, config.classes) if labelled and camera.semantics is not None else None
            samples.append(SegmentationSample(camera.image, labels, style))
    return samples


def synth_training_data(config: SegmentationConfig, workers: int | None = None) -> TrainingData:
    """The labelled source style and, unless the method is source-only, the unlabelled target styles."""
    data = config.data
    source = synth_samples(config, data.source_style, data.seed, data.logs, labelled=True, workers=workers)
    return TrainingData(source, _synth_targets(config, workers))


def _synth_targets(config: SegmentationConfig, workers: int | None) -> dict[str, list[SegmentationSample]]:
    data = config.data
    if not config.uses_targets:
        return {}
    return {
        style: synth_samples(config, style, data.seed + 1 + index, data.logs, labelled=False, workers=workers) for index, style in enumerate(data.target_styles)
    }


def training_data(config: SegmentationConfig, source: str | Path = "synth", *, split: str | None = None, workers: int | None = None) -> TrainingData:
    """`source = "synth"`: the synthetic source style; else a Cityscapes-style folder (its `split`) as the labelled
    source. The targets are the synthetic target styles either way."""
    if source == "synth":
        return synth_training_data(config, workers)
    return TrainingData(cityscapes_samples(Path(source), config, split=split), _synth_targets(config, workers))


def validation_samples(config: SegmentationConfig, workers: int | None = None) -> list[SegmentationSample]:
    """The held-out labelled source split (seed `data.validation_seed`) used for model selection."""
    data = config.data
    return synth_samples(config, data.source_style, data.validation_seed, data.validation_logs, labelled=True, workers=workers)


def synth_target_eval_samples(config: SegmentationConfig, seed: int, logs: int, workers: int | None = None) -> dict[str, list[SegmentationSample]]:
    """Labelled samples of every target style from drives of `seed` (evaluation only; never used in training). A
    style's drives come from `seed` + its place among all styles, so they do not depend on which other targets are
    listed."""
    places = style_names()
    return {style: synth_samples(config, style, seed + places.index(style), logs, labelled=True, workers=workers) for style in config.data.target_styles}


def cityscapes_samples(
    root: Path, config: SegmentationConfig, *, split: str | None = None, table: ClassTable | None = None, resize: bool = True
) -> list[SegmentationSample]:
    """Labelled images of a Cityscapes-style folder (`labelIds` mapped to `table`, default the config's classes),
    resized to the network size unless `resize` is false (evaluation at native size); images without labels are
    skipped."""
    dataset = CityscapesDataset(root, split=split)
    height, width = config.network.height_px, config.network.width_px
    samples = []
    for log_id in dataset.logs():
        for item in dataset.items(log_id):
            if item.label_ids is None:
                continue
            image, label_ids = item.camera.image, item.label_ids.labels
            if resize:
                image, label_ids = resize_image(image, height, width), resize_labels(label_ids, height, width)
            samples.append(SegmentationSample(image, label_ids_to_classes(label_ids, table or config.classes), "cityscapes"))
    return samples
