"""AV2 adapter on a hand-built log: values, streaming, and clear errors on every kind of bad input (hypothesis fuzzing)."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenes.adapters.av2 import AV2SensorDataset
from scenes.adapters.base import AdapterError
from scenes.adapters.registry import open_dataset
from scenes.categories import CATEGORY_ID

from .conftest import ANNOTATED_NS, LOG_ID, SWEEPS_NS, write_tiny_av2_log

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_frames_values(tiny_av2: Path) -> None:
    dataset = open_dataset(f"av2:{tiny_av2}")
    frames = list(dataset.frames(LOG_ID))
    assert [f.timestamp_ns for f in frames] == list(ANNOTATED_NS)
    assert [f.lidar is not None for f in frames] == [True, True, False]
    first = frames[0]
    # Pose row 1 is AV2's rear axle at (1, 0, 0); the records' ego origin lies 0.33 m below it, on the ground.
    np.testing.assert_allclose(first.city_SE3_ego.translation, [1.0, 0.0, -0.33])
    boxes = first.annotations
    assert boxes is not None and boxes.track_id is not None
    # ANIMAL is not a competition category: dropped.
    assert boxes.track_id.tolist() == ["track-0", "track-1"]
    assert boxes.category.tolist() == [CATEGORY_ID["REGULAR_VEHICLE"], CATEGORY_ID["PEDESTRIAN"]]
    np.testing.assert_allclose(boxes.yaw_rad, [0.3, -1.0])
    np.testing.assert_allclose(boxes.center_m[:, 0], [1.0, 6.0])
    np.testing.assert_allclose(boxes.size_lwh_m[0], [4.0, 2.0, 1.5])
    assert first.lidar is not None
    assert len(first.lidar) == 200 and first.lidar.intensity.max() <= 1.0


def _frames(split_dir: Path, **options: Any) -> list:
    return list(AV2SensorDataset(split_dir, **options).frames(LOG_ID))


def _rewrite(path: Path, column: str, values: object) -> None:
    table = feather.read_table(path)
    index = table.column_names.index(column)
    feather.write_feather(table.set_column(index, column, pa.array(values)), path)


@FUZZ
@given(fraction=st.floats(0.0, 0.99))
def test_truncated_lidar_feather_names_the_file(tiny_av2: Path, fraction: float) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        split = Path(scratch) / "val"
        shutil.copytree(tiny_av2, split)
        path = split / LOG_ID / "sensors" / "lidar" / f"{SWEEPS_NS[1]}.feather"
        payload = path.read_bytes()
        path.write_bytes(payload[: int(len(payload) * fraction)])
        with pytest.raises(AdapterError, match=str(SWEEPS_NS[1])) as error:
            _frames(split)
        assert error.value.path == str(path)


@FUZZ
@given(position=st.integers(0, 10_000), value=st.integers(0, 255))
def test_corrupted_annotations_either_load_or_fail_clearly(tiny_av2: Path, position: int, value: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        split = Path(scratch) / "val"
        shutil.copytree(tiny_av2, split)
        path = split / LOG_ID / "annotations.feather"
        payload = bytearray(path.read_bytes())
        payload[position % len(payload)] = value
        path.write_bytes(bytes(payload))
        try:
            frames = _frames(split)
        except AdapterError as error:
            assert error.path in (str(path), str(split / LOG_ID / "city_SE3_egovehicle.feather"))
        else:
            assert all(f.annotations is not None for f in frames)


def test_nan_pose(tiny_av2: Path) -> None:
    path = tiny_av2 / LOG_ID / "city_SE3_egovehicle.feather"
    _rewrite(path, "tx_m", [0.0, np.nan, 2.0, 3.0])
    with pytest.raises(AdapterError, match=r"city_SE3_egovehicle.feather: column 'tx_m' has NaN or inf at row 1"):
        _frames(tiny_av2)


def test_timestamp_without_pose_and_skip_bad(tiny_av2: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tiny_av2 / LOG_ID / "city_SE3_egovehicle.feather"
    _rewrite(path, "timestamp_ns", np.array([500_000_000, 1_000_000_000, 1_100_000_000, 1_300_000_000], dtype=np.int64))
    with pytest.raises(AdapterError, match="no pose at timestamp_ns 1200000000"):
        _frames(tiny_av2)
    with caplog.at_level(logging.WARNING, logger="scenes.adapters"):
        frames = _frames(tiny_av2, skip_bad=True)
    assert [f.timestamp_ns for f in frames] == list(SWEEPS_NS)
    assert "skipping frame" in caplog.text and "no pose at timestamp_ns 1200000000" in caplog.text


def test_unknown_category(tiny_av2: Path) -> None:
    path = tiny_av2 / LOG_ID / "annotations.feather"
    table = feather.read_table(path)
    categories = table.column("category").to_pylist()
    categories[4] = "FLYING_CAR"
    _rewrite(path, "category", categories)
    with pytest.raises(AdapterError, match="annotations.feather: unknown AV2 category 'FLYING_CAR'"):
        _frames(tiny_av2)


def test_missing_column_and_missing_files(tiny_av2: Path) -> None:
    path = tiny_av2 / LOG_ID / "annotations.feather"
    feather.write_feather(feather.read_table(path).drop(["qz"]), path)
    with pytest.raises(AdapterError, match=r"annotations.feather: missing column\(s\) \['qz'\]"):
        _frames(tiny_av2)
    (tiny_av2 / LOG_ID / "city_SE3_egovehicle.feather").unlink()
    with pytest.raises(AdapterError, match="no AV2 log found"):
        AV2SensorDataset(tiny_av2)
    with pytest.raises(AdapterError, match="not found"):
        AV2SensorDataset(tiny_av2 / "nowhere")


def test_bad_lidar_file_name(tiny_av2: Path) -> None:
    lidar = tiny_av2 / LOG_ID / "sensors" / "lidar"
    (lidar / f"{SWEEPS_NS[0]}.feather").rename(lidar / "first.feather")
    with pytest.raises(AdapterError, match="first.feather: LiDAR file name is not an integer timestamp"):
        _frames(tiny_av2)


def test_skip_bad_skips_a_truncated_sweep_and_keeps_the_rest(tiny_av2: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tiny_av2 / LOG_ID / "sensors" / "lidar" / f"{SWEEPS_NS[0]}.feather"
    path.write_bytes(path.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="scenes.adapters"):
        frames = _frames(tiny_av2, skip_bad=True)
    assert [f.timestamp_ns for f in frames] == list(ANNOTATED_NS[1:])
    assert "truncated or corrupt" in caplog.text


def test_split_layout_and_registry_errors(tmp_path: Path) -> None:
    write_tiny_av2_log(tmp_path / "sensor" / "train")
    assert open_dataset(f"av2:{tmp_path / 'sensor'}").logs() == [LOG_ID]
    assert open_dataset(f"av2:{tmp_path / 'sensor'}", split="train").logs() == [LOG_ID]
    with pytest.raises(AdapterError, match="no AV2 log found"):
        open_dataset(f"av2:{tmp_path / 'sensor'}", split="val")
    with pytest.raises(AdapterError, match="expected NAME:PATH"):
        open_dataset("av2")
