"""`drivestack train/evaluate/predict segmentation` end to end on a tiny config: trained on the synthetic city,
scored on the real Cityscapes image, one image predicted; bad data is a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()
TINY = {
    "method": "source_only",
    "network": {"stem_width": 8, "stage_widths": [8, 8, 16, 16], "blocks_per_stage": [1, 1, 1, 1], "height_px": 64, "width_px": 128, "loss_stride": 1},
    "data": {"logs": 1, "seconds": 0.8, "rate_hz": 5.0, "frame_stride": 1, "validation_logs": 1, "target_styles": ["night", "fog"]},
    "train": {"epochs": 1, "batch_size": 2},
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("segmentation")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    result = runner.invoke(app, ["train", "segmentation", "--config", str(config), "--data", "synth", "--out", str(root / "run")])
    assert result.exit_code == 0, result.output + result.stderr
    return root / "run" / "segmenter.pt"


def test_evaluate_on_the_real_cityscapes_image(checkpoint: Path, shared_data: Path, tmp_path: Path) -> None:
    report = tmp_path / "seg.json"
    data = f"cityscapes:{shared_data / 'cityscapes'}"
    result = runner.invoke(app, ["evaluate", "segmentation", "--data", data, "--checkpoint", str(checkpoint), "--json", str(report)])
    assert result.exit_code == 0, result.output + result.stderr
    scores = json.loads(report.read_text())
    assert set(scores["iou"]) == {"flat", "construction", "object", "nature", "sky", "human", "vehicle"}
    assert 0.0 <= scores["miou"] <= 1.0 and set(scores["domains"]) == {"cityscapes"}


def test_predict_writes_labels_and_overlay(checkpoint: Path, tmp_path: Path) -> None:
    image = tmp_path / "frame.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 160, 3), dtype=np.uint8)).save(image)
    result = runner.invoke(app, ["predict", "segmentation", "--image", str(image), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "pred")])
    assert result.exit_code == 0, result.output + result.stderr
    for name in ("frame_labels.png", "frame_overlay.png"):
        with Image.open(tmp_path / "pred" / name) as written:
            assert written.size == (160, 90) and written.mode == "RGB"


def test_data_that_is_not_cityscapes_is_one_line(checkpoint: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", "segmentation", "--data", f"kitti:{tmp_path}", "--checkpoint", str(checkpoint)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: --data kitti:{tmp_path}: segmentation reads Cityscapes-style folders (cityscapes:PATH) or 'synth'"]
