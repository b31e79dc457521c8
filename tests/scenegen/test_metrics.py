"""Semantic Palette scores on hand-computed cases, and the encoder features of the shipped segmenter."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from perception.segmentation.classes import ClassTable
from perception.segmentation.segmenter import SHIPPED_CHECKPOINT, Segmenter
from scenegen.metrics import (
    class_proportions,
    control_error,
    encoder_features,
    feature_frechet_distance,
    frechet_distance,
    frechet_distance_of,
    fsd,
    semantic_fidelity,
    soft_proportions,
    train_ids_to_classes,
)
from scenes.errors import InputError


def test_class_proportions_leave_out_ignored_pixels() -> None:
    layouts = np.array([[[0, 0, 1], [2, 255, 255]], [[3, 3, 3], [3, 1, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(class_proportions(layouts, 4), [[2 / 4, 1 / 4, 1 / 4, 0], [0, 1 / 5, 0, 4 / 5]])
    with pytest.raises(InputError, match=r"layouts \[1\] have only ignored pixels"):
        class_proportions(np.array([[[0, 1]], [[255, 255]]], dtype=np.uint8), 4)
    with pytest.raises(InputError, match="0..3"):
        class_proportions(np.array([[[0, 4]]], dtype=np.int64), 4)


def test_soft_proportions_average_the_pixels() -> None:
    first = torch.tensor([[1.0, 1.0], [0.5, 0.5]])
    layouts = torch.stack([first, 1 - first])[None]
    torch.testing.assert_close(soft_proportions(layouts), torch.tensor([[0.75, 0.25]]))


def test_control_error_over_the_named_classes() -> None:
    requested = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
    realised = np.array([[0.4, 0.3, 0.3], [0.1, 0.2, 0.7]])
    mask = np.array([[True, False, False], [False, True, False]])
    assert math.isclose(control_error(requested, realised, mask), (0.1 + 0.4) / 2)
    assert math.isclose(control_error(requested, realised), (0.1 + 0.0 + 0.1 + 0.0 + 0.4 + 0.4) / 6)
    with pytest.raises(ValueError, match="must both be"):
        control_error(requested, realised[:, :2])
    with pytest.raises(ValueError, match="mask must be"):
        control_error(requested, realised, mask[:, :2])


def test_frechet_distance_closed_forms() -> None:
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 with standard deviations 2 and 0.5
    assert math.isclose(frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-0.5]), np.array([[0.25]])), 1.5**2 + 1.5**2)
    # diagonal covariances: the sum of the 1-D distances per dimension
    mean1, mean2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    std1, std2 = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 1.0])
    expected = float(((mean1 - mean2) ** 2 + (std1 - std2) ** 2).sum())
    assert math.isclose(frechet_distance(mean1, np.diag(std1**2), mean2, np.diag(std2**2)), expected)
    # a singular product (each covariance flat in the other's direction) has the same closed form
    assert math.isclose(frechet_distance(np.zeros(2), np.diag([1.0, 0.0]), np.zeros(2), np.diag([0.0, 4.0])), 1.0 + 4.0)
    with pytest.raises(ValueError, match="alike"):
        frechet_distance(mean1, np.diag(std1), mean2[:2], np.diag(std2[:2]))


def test_frechet_distance_of_samples_is_zero_on_itself_and_symmetric() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.2], [0.0, 0.0, 0.5]])
    b = rng.normal(loc=0.3, size=(150, 3))
    assert abs(frechet_distance_of(a, a)) < 1e-9
    assert frechet_distance_of(a, b) > 0.1
    assert math.isclose(frechet_distance_of(a, b), frechet_distance_of(b, a), rel_tol=1e-9)
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance_of(a, b[:1])


def test_fsd_grows_with_the_shift_of_the_proportions() -> None:
    rng = np.random.default_rng(1)
    # proportions sum to 1 (singular covariances) and class 3 never occurs (a zero row and column)
    real = np.pad(rng.dirichlet([4.0, 2.0, 1.0], size=300), ((0, 0), (0, 1)))
    resampled = np.pad(rng.dirichlet([4.0, 2.0, 1.0], size=300), ((0, 0), (0, 1)))
    towards_sky = [(1 - t) * real + t * np.array([0.0, 0.0, 1.0, 0.0]) for t in (0.2, 0.5)]
    distances = [fsd(real, real), fsd(real, resampled), *(fsd(real, shifted) for shifted in towards_sky)]
    assert all(math.isfinite(d) for d in distances)
    assert abs(distances[0]) < 1e-9
    assert distances[1] < distances[2] < distances[3]


def test_train_ids_to_classes() -> None:
    train_ids = np.array([*range(19), 255])
    super7 = [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 5, 6, 6, 6, 6, 6, 6, 255]
    np.testing.assert_array_equal(train_ids_to_classes(train_ids, "super7"), super7)
    np.testing.assert_array_equal(train_ids_to_classes(train_ids, "cityscapes19"), train_ids)
    with pytest.raises(InputError, match=r"got \[19\]"):
        train_ids_to_classes(np.array([0, 19]), "super7")


@dataclass(frozen=True)
class FakeConfig:
    classes: ClassTable


class FakeSegmenter:
    """Predicts one fixed map of `classes` for every image."""

    def __init__(self, prediction: np.ndarray, classes: ClassTable) -> None:
        self.prediction = prediction
        self.config = FakeConfig(classes)

    def predict(self, images: np.ndarray) -> np.ndarray:
        assert images.ndim == 4 and images.shape[1:3] == self.prediction.shape
        return np.repeat(self.prediction[None], len(images), axis=0)


def test_semantic_fidelity_in_the_segmenter_table() -> None:
    # road, sidewalk, building, car / sky, ignored, person, vegetation -> flat, flat, construction, vehicle / sky, -, human, nature
    layouts = np.array([[[0, 1, 2, 13], [10, 255, 11, 8]]], dtype=np.uint8)
    prediction = np.array([[0, 1, 1, 6], [4, 4, 0, 3]], dtype=np.uint8)
    images = np.zeros((1, 2, 4, 3), dtype=np.uint8)
    scores = semantic_fidelity(FakeSegmenter(prediction, "super7"), images, layouts)
    # flat: TP 1, FN 1, FP 1; construction: TP 1, FP 1; object absent; nature, sky (its FP is ignored), vehicle exact; human missed
    expected = {"flat": 1 / 3, "construction": 1 / 2, "nature": 1.0, "sky": 1.0, "human": 0.0, "vehicle": 1.0}
    assert set(scores["per_class_iou"]) == {*expected, "object"} and math.isnan(scores["per_class_iou"]["object"])
    for name, iou in expected.items():
        assert math.isclose(scores["per_class_iou"][name], iou), name
    assert math.isclose(scores["miou"], 23 / 36)
    assert math.isclose(scores["pixel_accuracy"], 5 / 7)
    # the same layout scored by a 19-class segmenter that is right everywhere
    exact = semantic_fidelity(FakeSegmenter(np.where(layouts[0] == 255, 0, layouts[0]), "cityscapes19"), images, layouts)
    assert exact["miou"] == 1.0 and exact["pixel_accuracy"] == 1.0 and sum(not math.isnan(v) for v in exact["per_class_iou"].values()) == 7
    with pytest.raises(ValueError, match="differ"):
        semantic_fidelity(FakeSegmenter(prediction, "super7"), images[:, :1], layouts)


@pytest.fixture(scope="module")
def shipped() -> Segmenter:
    return Segmenter.from_checkpoint(SHIPPED_CHECKPOINT)


def street_images(count: int) -> np.ndarray:
    """Sky over buildings over road, the horizon at a different height in each image."""
    images = np.empty((count, 96, 160, 3), dtype=np.uint8)
    for index in range(count):
        horizon = 30 + 4 * index
        images[index, :horizon] = (70, 130, 180)
        images[index, horizon : horizon + 20] = (90, 80, 70)
        images[index, horizon + 20 :] = (128, 64, 128)
    return images


def test_encoder_features_of_the_shipped_segmenter(shipped: Segmenter) -> None:
    noise = np.random.default_rng(2).integers(0, 256, (6, 96, 160, 3), dtype=np.uint8)
    streets = street_images(6)
    features = encoder_features(shipped, noise)
    assert features.shape == (6, shipped.config.network.stage_widths[3]) and features.dtype == np.float64
    np.testing.assert_allclose(encoder_features(shipped, noise, batch_size=4), features, rtol=1e-5, atol=1e-6)
    same = feature_frechet_distance(shipped, noise, noise)
    different = feature_frechet_distance(shipped, noise, streets)
    assert abs(same) < 1e-6 * different and different > 0
    with pytest.raises(InputError, match="uint8"):
        encoder_features(shipped, noise.astype(np.float32))
