"""Cityscapes-style writer: file layout and PNG modes of the real release, values read back exactly."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from scenes.adapters.cityscapes import CityscapesDataset, label_ids_to_train_ids
from scenes.synth.writers.cityscapes import instance_ids, write_cityscapes
from scenes.synth.writers.common import WriterError


def test_instance_ids_hand_computed():
    labels = np.array([[26, 26, 26, 7], [24, 24, 26, 23]], dtype=np.uint8)
    instances = np.array([[9, 9, 4, 0], [5, 0, 0, 0]], dtype=np.int32)
    # cars: instance 4 -> k=0, instance 9 -> k=1; the car pixel without an instance keeps its label id.
    assert instance_ids(labels, instances).tolist() == [[26001, 26001, 26000, 7], [24000, 24, 26, 23]]
    assert instance_ids(labels, None).tolist() == labels.tolist()


def test_layout_modes_and_values(handmade_log, tmp_path, shared_data):
    image_dir = write_cityscapes(handmade_log, tmp_path, split="val", sequence=3)
    assert image_dir == tmp_path / "default" / "leftImg8bit" / "val" / "syn"
    stem = "syn_000003_000004"
    camera = handmade_log.frames[4].cameras["ring_front_center"]
    label_dir = tmp_path / "default" / "gtFine" / "val" / "syn"
    real = shared_data / "cityscapes" / "gtFine" / "val" / "frankfurt" / "frankfurt_000000_000294"
    for suffix in ("labelIds", "labelTrainIds", "instanceIds"):
        ours = Image.open(label_dir / f"{stem}_gtFine_{suffix}.png")
        assert ours.mode == Image.open(f"{real}_gtFine_{suffix}.png").mode
    np.testing.assert_array_equal(np.asarray(Image.open(image_dir / f"{stem}_leftImg8bit.png")), camera.image)
    labels = np.asarray(Image.open(label_dir / f"{stem}_gtFine_labelIds.png"))
    np.testing.assert_array_equal(labels, camera.semantics)
    np.testing.assert_array_equal(np.asarray(Image.open(label_dir / f"{stem}_gtFine_labelTrainIds.png")), label_ids_to_train_ids(camera.semantics))
    instances = np.asarray(Image.open(label_dir / f"{stem}_gtFine_instanceIds.png"))
    assert sorted(np.unique(instances).tolist()) == [7, 23, 24000, 26000]


def test_read_back_by_the_cityscapes_adapter(handmade_log, tmp_path):
    write_cityscapes(handmade_log, tmp_path, split="train")
    dataset = CityscapesDataset(tmp_path / "default", split="train")
    (log_id,) = dataset.logs()
    items = list(dataset.items(log_id))
    assert len(items) == len(handmade_log.frames)
    camera = handmade_log.frames[0].cameras["ring_front_center"]
    item = items[0]
    np.testing.assert_array_equal(item.camera.image, camera.image)
    assert item.labels is not None
    np.testing.assert_array_equal(item.labels.labels, label_ids_to_train_ids(camera.semantics))
    np.testing.assert_allclose(item.camera.intrinsics, camera.intrinsics)
    np.testing.assert_allclose(item.camera.ego_SE3_camera.as_matrix(), camera.ego_SE3_camera.as_matrix(), atol=1e-9)


def test_bad_arguments(handmade_log, tmp_path):
    with pytest.raises(WriterError, match="camera_name"):
        write_cityscapes(handmade_log, tmp_path, camera_name="ring_rear_left")
    with pytest.raises(WriterError, match="sequence"):
        write_cityscapes(handmade_log, tmp_path, sequence=-1)
    frames = list(handmade_log.frames)
    bad_camera = replace(frames[2].cameras["ring_front_center"], semantics=np.full((24, 40), 40, dtype=np.uint8))
    frames[2] = replace(frames[2], cameras={**frames[2].cameras, "ring_front_center": bad_camera})
    with pytest.raises(WriterError, match=r"frames\[2\].*label id 40"):
        write_cityscapes(replace(handmade_log, frames=tuple(frames)), tmp_path)
    assert not any(tmp_path.iterdir())
