"""`drivestack train depth`, `evaluate depth` and `predict depth` end to end: on synthetic KITTI raw drives read back
through the KITTI adapter, and on the real KITTI object frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import app
from scenes.adapters.kitti import read_depth_png
from scenes.synth.writers.export import write_synthetic_dataset
from tests.depth.conftest import TINY

runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


@pytest.fixture(scope="module")
def kitti_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kitti_raw")
    write_synthetic_dataset("kitti", out, logs=1, seconds=0.5)
    return out


def test_train_then_evaluate_on_kitti_raw_drives(kitti_raw: Path, tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY.model_dump(mode="json")))
    code, output = _invoke("train", "depth", "--config", str(config), "--data", f"kitti:{kitti_raw}", "--out", str(tmp_path / "run"))
    assert code == 0, output
    checkpoint = tmp_path / "run" / "depth.pt"
    assert checkpoint.is_file() and (tmp_path / "run" / "loss_curve.png").is_file()
    report = tmp_path / "depth.json"
    code, output = _invoke("evaluate", "depth", "--data", f"kitti:{kitti_raw}", "--checkpoint", str(checkpoint), "--json", str(report))
    assert code == 0, output
    result = json.loads(report.read_text())
    assert set(result["rows"]) == {"lidartouch", "interpolation"} and result["images"] == 3 and result["beams"] == 4
    for row in result["rows"].values():
        assert 0.0 < row["abs_rel"] < 10.0 and 0.0 <= row["delta1"] <= 1.0 and row["median_scaled"]["abs_rel"] > 0.0
    # The interpolation row does not depend on the network: 4 beams of a synthetic 64-beam scan interpolated.
    assert result["rows"]["interpolation"]["abs_rel"] < 0.5


def test_evaluate_the_shipped_model_on_real_kitti(shared_data: Path, tmp_path: Path) -> None:
    report = tmp_path / "real.json"
    code, output = _invoke("evaluate", "depth", "--data", f"kitti-object:{shared_data / 'kitti' / 'object'}", "--json", str(report))
    assert code == 0, output
    result = json.loads(report.read_text())
    assert result["images"] == 3 and set(result["rows"]) == {"lidartouch", "interpolation"}
    # 4 of the 64 real beams (scanlines found by clustering elevations) interpolated against all 64: a strong baseline.
    assert result["rows"]["interpolation"]["abs_rel"] < 0.1 and result["rows"]["interpolation"]["delta1"] > 0.85
    assert result["rows"]["lidartouch"]["abs_rel"] < 0.2 and result["rows"]["lidartouch"]["delta1"] > 0.75
    assert "lidartouch" in output and "interpolation" in output


def test_predict_writes_a_kitti_depth_png_and_a_coloured_one(shared_data: Path, tmp_path: Path) -> None:
    training = shared_data / "kitti" / "object" / "training"
    code, output = _invoke(
        "predict", "depth", "--image", str(training / "image_2" / "000000.png"), "--lidar", str(training / "velodyne" / "000000.bin"),
        "--calib", str(training / "calib" / "000000.txt"), "--out", str(tmp_path / "pred"),
    )  # fmt: skip
    assert code == 0, output
    depth = read_depth_png(tmp_path / "pred" / "000000_depth.png")
    assert depth.shape == (370, 1224) and (depth > 0).all()
    assert 3.0 < float(np.median(depth)) < 60.0
    assert (tmp_path / "pred" / "000000_depth_color.png").is_file()


def test_bad_calibration_is_one_line_naming_the_file(shared_data: Path, tmp_path: Path) -> None:
    training = shared_data / "kitti" / "object" / "training"
    calib = tmp_path / "calib.txt"
    calib.write_text("P0: 1 0 0 0 0 1 0 0 0 0 1 0\n")
    result = runner.invoke(
        app, ["predict", "depth", "--image", str(training / "image_2" / "000000.png"), "--lidar", str(training / "velodyne" / "000000.bin"),
              "--calib", str(calib), "--out", str(tmp_path / "pred")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: {calib}: missing key(s) ['P1', 'P2', 'P3', 'R0_rect', 'Tr_velo_to_cam']"]
    assert not (tmp_path / "pred").exists()


def test_missing_checkpoint_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", "depth", "--data", "synth", "--checkpoint", str(tmp_path / "missing.pt")])
    assert result.exit_code == 2 and "missing.pt: checkpoint not found" in result.stderr
