"""Cityscapes adapter: train ids derived when absent, calibration JSON, clear errors on bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scenes.adapters.base import AdapterError
from scenes.adapters.cityscapes import CityscapesDataset

STEM = "aachen_000001_000019"


def _write(root: Path, labels: np.ndarray | None = None, image_size: tuple[int, int] = (8, 4)) -> Path:
    image_dir = root / "leftImg8bit" / "train" / "aachen"
    label_dir = root / "gtFine" / "train" / "aachen"
    image_dir.mkdir(parents=True)
    label_dir.mkdir(parents=True)
    width, height = image_size
    Image.fromarray(np.full((height, width, 3), 90, dtype=np.uint8)).save(image_dir / f"{STEM}_leftImg8bit.png")
    if labels is not None:
        Image.fromarray(labels).save(label_dir / f"{STEM}_gtFine_labelIds.png")
    return root


def test_train_ids_derived_from_label_ids_and_calibration_read(tmp_path: Path) -> None:
    labels = np.array([[7, 7, 26, 26, 23, 0, 33, 29]] * 4, dtype=np.uint8)
    root = _write(tmp_path, labels)
    camera_dir = root / "camera" / "train" / "aachen"
    camera_dir.mkdir(parents=True)
    calibration = {
        "intrinsic": {"fx": 2262.5, "fy": 2265.3, "u0": 1096.9, "v0": 513.1},
        "extrinsic": {"x": 1.7, "y": 0.1, "z": 1.2, "yaw": 0.0, "pitch": 0.05, "roll": 0.0, "baseline": 0.2},
    }
    (camera_dir / f"{STEM}_camera.json").write_text(json.dumps(calibration))
    (item,) = list(CityscapesDataset(root).items("train/aachen"))
    assert item.labels is not None
    assert item.labels.labels[0].tolist() == [0, 0, 13, 13, 10, 255, 18, 255]
    assert item.camera.timestamp_ns == 1_000_019
    np.testing.assert_allclose(item.camera.intrinsics[0], [2262.5, 0.0, 1096.9])
    # A camera pitched down by 0.05 rad looks forward and slightly down: its optical axis in the vehicle frame.
    axis = item.camera.ego_SE3_camera.rotation @ [0.0, 0.0, 1.0]
    np.testing.assert_allclose(axis, [np.cos(0.05), 0.0, -np.sin(0.05)], atol=1e-12)


def test_mask_size_mismatch_and_corrupt_png(tmp_path: Path) -> None:
    root = _write(tmp_path, np.zeros((3, 8), dtype=np.uint8))
    with pytest.raises(AdapterError, match=r"gtFine_labelIds.png: label size \(8, 3\) differs from the image's \(8, 4\)"):
        list(CityscapesDataset(root).items("train/aachen"))
    (root / "gtFine" / "train" / "aachen" / f"{STEM}_gtFine_labelIds.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(AdapterError, match="gtFine_labelIds.png: unreadable label PNG"):
        list(CityscapesDataset(root).items("train/aachen"))
    assert list(CityscapesDataset(root, skip_bad=True).items("train/aachen")) == []


def test_bad_names_and_layout(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="Cityscapes leftImg8bit directory not found"):
        CityscapesDataset(tmp_path)
    root = _write(tmp_path / "a")
    (root / "leftImg8bit" / "train" / "aachen" / f"{STEM}_leftImg8bit.png").rename(root / "leftImg8bit" / "train" / "aachen" / "photo_leftImg8bit.png")
    with pytest.raises(AdapterError, match="photo_leftImg8bit.png: file name is not <city>_<seq>_<frame>_leftImg8bit.png"):
        list(CityscapesDataset(root).frames("train/aachen"))
