"""Scores of Semantic Palette: control, FSD, semantic fidelity, and a Fréchet distance on segmenter features.

- Control: the paper measures how well a generated layout follows the requested class proportions by the absolute
  difference between requested and realised proportions, over the classes the user named (`control_error`).
  Proportions of a hard layout are per-image pixel fractions with ignored pixels left out (`class_proportions`), of
  a soft layout the mean class probability over its pixels (`soft_proportions`).
- FSD (Fréchet Semantic Distance, the official `tools/fsd/fsd_score.py`): the Fréchet distance between Gaussians
  fitted to the class-proportion vectors of real and generated layouts (`fsd`).
- Semantic fidelity: a segmenter's mIoU on generated images against the layouts they were generated from, as
  SPADE and its successors are scored (`semantic_fidelity`). The layouts (Cityscapes train ids) are first mapped to
  the segmenter's class table, so the shipped `super7` segmenter scores 7 super-classes.
- Image realism: FID's Inception network is not available offline, so `feature_frechet_distance` is the same
  Fréchet distance on the globally pooled last-stage encoder features of the shipped segmenter. Those features are
  trained on the synthetic city only: this is a domain-specific substitute, and its values are not comparable to the
  FID numbers reported in papers.

The Fréchet distance follows pytorch-fid's `calculate_frechet_distance`: ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)),
retried with eps * I added to both covariances when the square root of the product is not finite (a singular
product, as with proportion vectors, which sum to 1), and keeping the real part of the square root.
"""

from __future__ import annotations

import warnings
from typing import Final, Protocol, TypedDict

import cv2
import numpy as np
import torch
from scipy import linalg

from perception.segmentation.classes import IGNORE_INDEX, ClassTable, class_names, label_ids_to_classes
from perception.segmentation.evaluate import SegmentationScores, confusion_matrix
from perception.segmentation.segmenter import Segmenter
from scenes.adapters.cityscapes import LABELS, TRAIN_CLASSES
from scenes.errors import InputError

__all__ = [
    "LabelPredictor",
    "SemanticFidelity",
    "class_proportions",
    "control_error",
    "encoder_features",
    "feature_frechet_distance",
    "frechet_distance",
    "frechet_distance_of",
    "fsd",
    "semantic_fidelity",
    "soft_proportions",
    "train_ids_to_classes",
]

_FRECHET_EPS: Final = 1e-6


class _ClassTableConfig(Protocol):
    @property
    def classes(self) -> ClassTable: ...


class LabelPredictor(Protocol):
    """What `semantic_fidelity` needs of a segmenter (`perception.segmentation.segmenter.Segmenter` is one)."""

    @property
    def config(self) -> _ClassTableConfig: ...

    def predict(self, images: np.ndarray) -> np.ndarray:
        """`(B, H, W, 3)` uint8 RGB -> class indices `(B, H, W)` of `config.classes`."""
        ...


class SemanticFidelity(TypedDict):
    """mIoU over the classes present in the layouts or the predictions, per-class IoU (NaN = absent from both) and the
    fraction of non-ignored layout pixels predicted right."""

    miou: float
    per_class_iou: dict[str, float]
    pixel_accuracy: float


def _train_id_lut(table: ClassTable) -> np.ndarray:
    """256-entry lookup train id -> class index of `table`: train id -> its Cityscapes label id -> `table`."""
    label_ids = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for label_id, _, train_id in LABELS:
        if train_id != IGNORE_INDEX:
            label_ids[train_id] = label_id
    return label_ids_to_classes(label_ids, table)


def train_ids_to_classes(train_ids: np.ndarray, table: ClassTable) -> np.ndarray:
    """Cityscapes train ids (any shape, 0..18 or `IGNORE_INDEX`) -> class indices of `table` (uint8, ignored kept)."""
    values = np.asarray(train_ids)
    valid = (values >= 0) & ((values < len(TRAIN_CLASSES)) | (values == IGNORE_INDEX))
    if not valid.all():
        raise InputError(f"train ids must lie in 0..{len(TRAIN_CLASSES) - 1} or be {IGNORE_INDEX}, got {np.unique(values[~valid]).tolist()}")
    return _train_id_lut(table)[values.astype(np.uint8)]


def class_proportions(layouts: np.ndarray, num_classes: int) -> np.ndarray:
    """Class indices `(B, H, W)` -> `(B, C)` float64 fraction of each image's non-ignored pixels in each class."""
    if layouts.ndim != 3 or not np.issubdtype(layouts.dtype, np.integer):
        raise ValueError(f"expected (B, H, W) integer layouts, got shape {layouts.shape} and dtype {layouts.dtype}")
    values = layouts.reshape(len(layouts), -1).astype(np.int64)
    keep = values != IGNORE_INDEX
    if ((values[keep] < 0) | (values[keep] >= num_classes)).any():
        raise InputError(f"layout values must lie in 0..{num_classes - 1} or be {IGNORE_INDEX}")
    image_index = np.broadcast_to(np.arange(len(values))[:, None], values.shape)
    counts = np.bincount((image_index[keep] * num_classes + values[keep]), minlength=len(values) * num_classes).reshape(len(values), num_classes)
    totals = counts.sum(axis=1, keepdims=True)
    if (totals == 0).any():
        raise InputError(f"layouts {np.flatnonzero(totals[:, 0] == 0).tolist()} have only ignored pixels")
    return counts / totals


def soft_proportions(layouts: torch.Tensor) -> torch.Tensor:
    """Soft layouts `(B, C, H, W)` of class probabilities -> `(B, C)` mean probability of each class over the pixels."""
    if layouts.ndim != 4:
        raise ValueError(f"expected (B, C, H, W) soft layouts, got shape {tuple(layouts.shape)}")
    return layouts.mean(dim=(2, 3))


def control_error(requested: np.ndarray, realised: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute difference of requested and realised proportions `(B, C)` over the entries `mask` `(B, C)`
    selects (the classes the user named), or over all entries."""
    if requested.ndim != 2 or requested.shape != realised.shape:
        raise ValueError(f"requested and realised proportions must both be (B, C), got {requested.shape} and {realised.shape}")
    selected = np.ones(requested.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if selected.shape != requested.shape:
        raise ValueError(f"mask must be {requested.shape} like the proportions, got {selected.shape}")
    if not selected.any():
        raise ValueError("mask selects no entries")
    return float(np.abs(requested - realised)[selected].mean())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2): means `(D,)`, covariances `(D, D)`."""
    mean1, mean2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    cov1, cov2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mean1.shape != mean2.shape or cov1.shape != cov2.shape or cov1.shape != (mean1.size, mean1.size):
        raise ValueError(f"means must be (D,) and covariances (D, D) alike, got {mean1.shape}, {cov1.shape}, {mean2.shape}, {cov2.shape}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(cov1 @ cov2)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(cov1)) * _FRECHET_EPS
            covmean = linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    diff = mean1 - mean2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(np.real(covmean)))


def frechet_distance_of(samples_a: np.ndarray, samples_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted (mean, sample covariance) to `(N, D)` and `(M, D)` samples."""
    if samples_a.ndim != 2 or samples_b.ndim != 2 or samples_a.shape[1] != samples_b.shape[1]:
        raise ValueError(f"expected (N, D) and (M, D) samples, got {samples_a.shape} and {samples_b.shape}")
    if len(samples_a) < 2 or len(samples_b) < 2:
        raise ValueError(f"a covariance needs at least 2 samples per set, got {len(samples_a)} and {len(samples_b)}")
    a, b = samples_a.astype(np.float64), samples_b.astype(np.float64)
    return frechet_distance(a.mean(axis=0), np.cov(a, rowvar=False), b.mean(axis=0), np.cov(b, rowvar=False))


def fsd(real_proportions: np.ndarray, generated_proportions: np.ndarray) -> float:
    """Fréchet Semantic Distance between real `(N, C)` and generated `(M, C)` class-proportion vectors."""
    return frechet_distance_of(real_proportions, generated_proportions)


def semantic_fidelity(segmenter: LabelPredictor, images: np.ndarray, layouts: np.ndarray) -> SemanticFidelity:
    """Scores of `segmenter` on generated images `(B, H, W, 3)` uint8 against their layouts `(B, H, W)` (Cityscapes
    train ids, `IGNORE_INDEX` not counted), in the segmenter's class table; the confusion matrix sums every image."""
    if images.shape[:3] != layouts.shape:
        raise ValueError(f"images {images.shape} and layouts {layouts.shape} differ in batch or size")
    table = segmenter.config.classes
    names = class_names(table)
    truth = train_ids_to_classes(layouts, table)
    if (truth == IGNORE_INDEX).all():
        raise InputError("the layouts have no pixel of the segmenter's classes to score")
    confusion = confusion_matrix(segmenter.predict(images), truth, len(names))
    scores = SegmentationScores.from_confusion(confusion, names)
    return {
        "miou": scores.miou,
        "per_class_iou": {name: float(iou) for name, iou in zip(names, scores.iou, strict=True)},
        "pixel_accuracy": float(np.trace(confusion) / confusion.sum()),
    }


@torch.inference_mode()
def encoder_features(segmenter: Segmenter, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """`(B, H, W, 3)` uint8 RGB -> `(B, D)` float64 global average of the network's last-stage (`layer4`) features,
    with the preprocessing of `Segmenter.predict` (resized to the network size, scaled to [0, 1]); D is the last
    stage width (64 for the shipped segmenter)."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise InputError(f"expected (B, H, W, 3) uint8 images, got shape {images.shape} and dtype {images.dtype}")
    if not len(images):
        raise InputError("no images to encode")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    network = segmenter.config.network
    captured: list[torch.Tensor] = []
    hook = segmenter.net.layer4.register_forward_hook(lambda _module, _inputs, output: captured.append(output.mean(dim=(2, 3))))
    try:
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            resized = np.stack([cv2.resize(image, (network.width_px, network.height_px), interpolation=cv2.INTER_AREA) for image in chunk])
            segmenter.net(torch.from_numpy(resized).to(segmenter.device).permute(0, 3, 1, 2).float() / 255.0)
    finally:
        hook.remove()
    return torch.cat(captured).double().cpu().numpy()


def feature_frechet_distance(segmenter: Segmenter, real_images: np.ndarray, generated_images: np.ndarray, batch_size: int = 16) -> float:
    """Fréchet distance between the segmenter's encoder features of real and generated images (the FID substitute)."""
    return frechet_distance_of(encoder_features(segmenter, real_images, batch_size), encoder_features(segmenter, generated_images, batch_size))
