"""The nuScenes version is found under PATH when there is one, and can be named everywhere a nuScenes dataset is read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perception.tracking.tracker import Tracker
from pipelines.cli import app
from scenes.adapters.base import AdapterError
from scenes.adapters.nuscenes import NuScenesDataset, detect_version
from scenes.synth.writers.export import write_synthetic_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def synth_nuscenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nusc")
    write_synthetic_dataset("nuscenes", root, logs=1, seconds=2.0, seed=4)
    return root


def test_the_only_version_is_read_without_naming_it(synth_nuscenes: Path) -> None:
    assert detect_version(synth_nuscenes) == "v1.0-synth"
    assert NuScenesDataset(synth_nuscenes).version == "v1.0-synth"


def test_train_reads_a_synthetic_nuscenes_database(synth_nuscenes: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "tracking", "--data", f"nuscenes:{synth_nuscenes}", "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    Tracker.from_checkpoint(tmp_path / "t" / "tracker.pt")
    named = runner.invoke(app, ["train", "tracking", "--data", f"nuscenes:{synth_nuscenes}", "--nuscenes-version", "v1.0-synth", "--out", str(tmp_path / "n")])
    assert named.exit_code == 0, named.output


def test_several_versions_must_be_named(synth_nuscenes: Path, tmp_path: Path) -> None:
    root = tmp_path / "two"
    shutil.copytree(synth_nuscenes, root)
    shutil.copytree(root / "v1.0-synth", root / "v1.0-mini")
    with pytest.raises(AdapterError, match=r"several nuScenes versions \['v1.0-mini', 'v1.0-synth'\]"):
        NuScenesDataset(root)
    assert NuScenesDataset(root, version="v1.0-synth").version == "v1.0-synth"
    result = runner.invoke(app, ["inspect", "--data", f"nuscenes:{root}"])
    assert result.exit_code == 2 and "--nuscenes-version" in result.output


def test_a_version_for_other_data_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "tracking", "--data", "synth", "--nuscenes-version", "v1.0-mini", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "only nuscenes:PATH data has versions" in result.output
