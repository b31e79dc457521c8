"""The Cityscapes adapter on one real image with its labelIds / labelTrainIds / instanceIds masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scenes.adapters.cityscapes import TRAIN_CLASSES, CityscapesDataset, label_ids_to_train_ids, read_label_png
from scenes.adapters.registry import open_dataset

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def dataset(shared_data: Path) -> CityscapesDataset:
    dataset = open_dataset(f"cityscapes:{shared_data / 'cityscapes'}")
    assert isinstance(dataset, CityscapesDataset)
    return dataset


def test_image_and_masks_load(dataset: CityscapesDataset) -> None:
    assert dataset.logs() == ["val/frankfurt"]
    (item,) = list(dataset.items("val/frankfurt"))
    assert item.image_id == "frankfurt_000000_000294"
    assert item.camera.image.shape == (128, 256, 3) and item.camera.timestamp_ns == 294
    assert item.labels is not None and item.labels.class_table == "cityscapes-trainid"
    assert item.label_ids is not None and item.label_ids.class_table == "cityscapes-labelid"
    assert item.camera.instances is not None and item.camera.instances.max() == 26002
    assert item.camera.semantics is not None
    np.testing.assert_array_equal(item.camera.semantics, item.labels.labels)


def test_label_ids_map_to_the_released_train_ids(dataset: CityscapesDataset, shared_data: Path) -> None:
    folder = shared_data / "cityscapes" / "gtFine" / "val" / "frankfurt"
    label_ids = read_label_png(folder / "frankfurt_000000_000294_gtFine_labelIds.png")
    train_ids = read_label_png(folder / "frankfurt_000000_000294_gtFine_labelTrainIds.png")
    mapped = label_ids_to_train_ids(label_ids)
    # The sample's masks were downscaled one by one, so a few boundary pixels disagree; the table itself must not.
    assert np.mean(mapped == train_ids) > 0.995
    for label_id in np.unique(label_ids):
        values, counts = np.unique(train_ids[label_ids == label_id], return_counts=True)
        assert values[np.argmax(counts)] == label_ids_to_train_ids(np.array([label_id]))[0]
    # Instance ids are label_id * 1000 + k for "thing" classes and the plain label id elsewhere.
    instances = read_label_png(folder / "frankfurt_000000_000294_gtFine_instanceIds.png", np.int32)
    assert np.mean(np.where(instances >= 1000, instances // 1000, instances) == label_ids) > 0.995


def test_hand_checked_label_table() -> None:
    assert len(TRAIN_CLASSES) == 19 and TRAIN_CLASSES[0] == "road" and TRAIN_CLASSES[13] == "car" and TRAIN_CLASSES[18] == "bicycle"
    np.testing.assert_array_equal(label_ids_to_train_ids(np.array([[7, 26, 0, 33, 29]])), [[0, 13, 255, 18, 255]])


def test_summary_counts_pixels_per_class(dataset: CityscapesDataset) -> None:
    summary = dataset.summary()
    assert summary.num_logs == 1 and summary.num_frames == 1
    assert set(summary.category_counts) == {"road", "sidewalk", "building", "fence", "pole", "traffic sign", "vegetation", "sky", "person", "car"}
    assert sum(summary.category_counts.values()) < 128 * 256
    assert any("nominal pinhole" in note for note in summary.notes)
