"""Class tables: the 7 super-classes and the 19 Cityscapes train ids from Cityscapes labelIds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from perception.segmentation.classes import IGNORE_INDEX, class_names, colorize, label_ids_to_classes, num_classes, palette
from perception.segmentation.config import SegmentationConfig
from perception.segmentation.data import cityscapes_samples
from scenes.adapters.cityscapes import CityscapesDataset
from scenes.errors import InputError


def test_super7_follows_the_official_table() -> None:
    ids = np.array([7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 29, 30, 33, 0, 6, 9, 14, 18, 34, 255])
    expected = [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 5, 6, 6, 6, 6] + [IGNORE_INDEX] * 7
    mapped = label_ids_to_classes(ids, "super7")
    assert mapped.dtype == np.uint8
    assert mapped.tolist() == expected
    assert class_names("super7") == ("flat", "construction", "object", "nature", "sky", "human", "vehicle")


def test_cityscapes19_uses_the_train_ids() -> None:
    ids = np.array([[7, 8, 26], [33, 29, 0]])
    assert label_ids_to_classes(ids, "cityscapes19").tolist() == [[0, 1, 13], [18, 255, 255]]
    assert num_classes("cityscapes19") == 19
    assert palette("cityscapes19").shape == (19, 3)


def test_bad_input_is_refused() -> None:
    with pytest.raises(InputError, match="unknown class table"):
        label_ids_to_classes(np.zeros(3), "super8")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="0..255"):
        label_ids_to_classes(np.array([256]), "super7")


def test_colorize_blacks_out_ignored_pixels() -> None:
    image = colorize(np.array([[0, 255]], dtype=np.uint8), "super7")
    assert image.shape == (1, 2, 3)
    assert image[0, 0].tolist() == palette("super7")[0].tolist()
    assert image[0, 1].tolist() == [0, 0, 0]


@pytest.mark.real
def test_real_cityscapes_image_maps_to_super7(shared_data: Path) -> None:
    root = shared_data / "cityscapes"
    if not root.is_dir():
        pytest.skip(f"no Cityscapes sample at {root}")
    item = next(CityscapesDataset(root, split="val").items("val/frankfurt"))
    assert item.label_ids is not None
    label_ids = item.label_ids.labels
    super7 = label_ids_to_classes(label_ids, "super7")
    assert super7.shape == label_ids.shape
    np.testing.assert_array_equal(super7 == 0, np.isin(label_ids, (7, 8)))
    np.testing.assert_array_equal(super7 == 6, np.isin(label_ids, range(26, 34)))
    present = set(np.unique(super7).tolist()) - {IGNORE_INDEX}
    assert {0, 1, 4} <= present  # a street scene has flat, construction and sky
    samples = cityscapes_samples(root, SegmentationConfig(), split="val")
    assert len(samples) == 1 and samples[0].image.shape == (192, 320, 3) and samples[0].labels is not None
    assert samples[0].labels.shape == (192, 320)
