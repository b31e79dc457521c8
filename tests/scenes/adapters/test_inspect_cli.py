"""`drivestack inspect`: summary table, BEV preview PNG, clear failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from pipelines.cli import app


@pytest.mark.real
def test_inspect_prints_summary_and_writes_preview(shared_data: Path, tmp_path: Path) -> None:
    preview = tmp_path / "bev.png"
    result = CliRunner().invoke(app, ["inspect", "--data", f"kitti-object:{shared_data / 'kitti' / 'object'}", "--preview", str(preview)])
    assert result.exit_code == 0, result.output
    for expected in ("frames", "velodyne", "REGULAR_VEHICLE 2", "frame index"):
        assert expected in result.output
    image = np.asarray(Image.open(preview))
    assert image.ndim == 3 and image.shape[0] > 400
    assert len(np.unique(image.reshape(-1, image.shape[2]), axis=0)) > 50  # points were drawn, not a blank canvas
    assert not list(tmp_path.glob(".*.tmp"))


def test_inspect_fails_clearly_on_unknown_dataset_and_missing_path(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["inspect", "--data", "foo:/nowhere"])
    assert result.exit_code == 2 and "unknown dataset 'foo'" in result.output
    result = runner.invoke(app, ["inspect", "--data", f"av2:{tmp_path / 'missing'}"])
    assert result.exit_code == 2 and "not found" in result.output
