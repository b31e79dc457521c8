"""Layout/image pairs for Semantic Palette: the synthetic city's labelled front-camera views, or Cityscapes folders.

Layouts are the 19 Cityscapes train classes (`perception.segmentation.classes`, table `cityscapes19`), the table the
generator produces and `drivestack generate` writes back as `labelIds`/`labelTrainIds`. Ignored pixels (255: the
ego vehicle, "static", rectification borders) take the class of the nearest labelled pixel, since a generated layout
assigns every pixel a class and the critic would otherwise tell real layouts by their holes. Images are resized with
area interpolation, labels with nearest neighbour (`perception.segmentation.data`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from scipy import ndimage

from perception.segmentation.classes import IGNORE_INDEX, class_names, label_ids_to_classes
from perception.segmentation.data import SYNTH_CAMERA, resize_image, resize_labels
from scenegen.config import ScenegenConfig
from scenes.adapters.cityscapes import CityscapesDataset
from scenes.errors import InputError

__all__ = ["CLASS_NAMES", "CLASS_TABLE", "LayoutSample", "cityscapes_samples", "fill_ignored", "one_hot", "proportions_of", "synth_samples", "training_samples"]

CLASS_TABLE: Final = "cityscapes19"
CLASS_NAMES: Final = class_names(CLASS_TABLE)


@dataclass(frozen=True)
class LayoutSample:
    """An `(H, W, 3)` uint8 image and its `(H, W)` uint8 layout of train ids (no ignored pixel)."""

    image: np.ndarray
    labels: np.ndarray


def fill_ignored(labels: np.ndarray) -> np.ndarray:
    """`labels` with every ignored pixel set to the class of the nearest labelled one; all-ignored maps are errors."""
    ignored = labels == IGNORE_INDEX
    if not ignored.any():
        return labels
    if ignored.all():
        raise InputError("a layout has no labelled pixel")
    nearest = ndimage.distance_transform_edt(ignored, return_distances=False, return_indices=True)
    return labels[tuple(nearest)]


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """`(..., H, W)` class indices -> `(..., C, H, W)` float32 one-hot."""
    return np.moveaxis(np.eye(num_classes, dtype=np.float32)[labels], -1, -3)


def proportions_of(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Class proportions `(..., C)` float64 of `(..., H, W)` layouts without ignored pixels."""
    flat = labels.reshape(*labels.shape[:-2], -1)
    counts = np.stack([(flat == index).sum(axis=-1) for index in range(num_classes)], axis=-1)
    return counts / flat.shape[-1]


def synth_samples(config: ScenegenConfig, seed: int, logs: int, workers: int | None = None) -> list[LayoutSample]:
    """Every `data.frame_stride`-th front-camera frame of `logs` drives of each style (style `k` uses `seed + k`),
    rendered at the generator's size."""
    from scenes.synth.world import SynthConfig, simulate_logs

    data = config.data
    samples = []
    for index, style in enumerate(data.styles):
        sim = SynthConfig(
            style=style,
            cameras=(SYNTH_CAMERA,),
            image_width_px=config.width_px,
            image_height_px=config.height_px,
            lidar_beams=None,
            seconds=data.seconds,
            rate_hz=data.rate_hz,
        )
        for log in simulate_logs(sim, seed + index, logs, workers=workers):
            for frame in log.frames[:: data.frame_stride]:
                camera = frame.cameras[SYNTH_CAMERA]
                if camera.semantics is None:
                    raise InputError(f"synthetic log {log.log_id}: the front camera has no semantics")
                samples.append(LayoutSample(camera.image, fill_ignored(label_ids_to_classes(camera.semantics, CLASS_TABLE))))
    return samples


def cityscapes_samples(root: Path, config: ScenegenConfig, split: str | None = None) -> list[LayoutSample]:
    """Labelled images of a Cityscapes-style folder at the generator's size (images without labels skipped)."""
    dataset = CityscapesDataset(root, split=split)
    samples = []
    for log_id in dataset.logs():
        for item in dataset.items(log_id):
            if item.label_ids is None:
                continue
            image = resize_image(item.camera.image, config.height_px, config.width_px)
            labels = resize_labels(item.label_ids.labels, config.height_px, config.width_px)
            samples.append(LayoutSample(image, fill_ignored(label_ids_to_classes(labels, CLASS_TABLE))))
    return samples


def training_samples(config: ScenegenConfig, source: str | Path = "synth", *, split: str | None = None, workers: int | None = None) -> list[LayoutSample]:
    """The training pairs: the synthetic city (`"synth"`) or a Cityscapes-style folder."""
    if source == "synth":
        return synth_samples(config, config.data.seed, config.data.logs, workers)
    samples = cityscapes_samples(Path(source), config, split)
    if not samples:
        raise InputError(f"{source}: no image with gtFine labelIds to train on")
    return samples
