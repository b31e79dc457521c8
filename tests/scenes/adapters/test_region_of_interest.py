"""`Dataset.region_of_interest`: an AV2 log's map gives the official ROI; other datasets take their lane graph's."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from scenes.adapters.av2 import Av2MapRegionOfInterest, AV2SensorDataset
from scenes.adapters.base import AdapterError
from scenes.adapters.registry import SynthDataset, open_dataset
from scenes.regions import RasterRegionOfInterest
from scenes.synth.writers.av2 import write_av2_log

SYNTH_OPTIONS = {
    "seconds": 0.3, "lidar_beams": 16, "cameras": (), "warmup_s": 0.0,
    "num_vehicles": 2, "num_pedestrians": 0, "num_cyclists": 0, "num_static_objects": 0,
}  # fmt: skip
FAR_AWAY_XY = np.array([[1e6, 1e6]])


@pytest.fixture(scope="module")
def synth() -> SynthDataset:
    dataset = open_dataset("synth", logs=1, **SYNTH_OPTIONS)
    assert isinstance(dataset, SynthDataset)
    return dataset


@pytest.fixture(scope="module")
def av2_split(synth: SynthDataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    split_dir = tmp_path_factory.mktemp("av2") / "val"
    write_av2_log(synth.simulated(0), split_dir)
    return split_dir


def _ego_xy(dataset: SynthDataset | AV2SensorDataset, log_id: str) -> np.ndarray:
    return np.array([frame.city_SE3_ego.translation[:2] for frame in dataset.frames(log_id)])


def test_synthetic_city_roi_is_its_lane_graph_roi_layer(synth: SynthDataset) -> None:
    (log_id,) = synth.logs()
    roi = synth.region_of_interest(log_id)
    assert isinstance(roi, RasterRegionOfInterest)
    graph = synth.lane_graph(log_id)
    assert graph is not None
    layer = graph.rasters["roi"]
    points = np.random.default_rng(0).uniform(-100.0, 500.0, size=(2000, 2))
    inside = roi.contains_xy(points)
    np.testing.assert_array_equal(inside, layer.lookup(points, outside=0).astype(bool))
    assert 0 < inside.mean() < 1
    assert roi.contains_xy(_ego_xy(synth, log_id)).all()


def test_av2_roi_is_read_from_the_log_map(av2_split: Path) -> None:
    dataset = AV2SensorDataset(av2_split)
    (log_id,) = dataset.logs()
    roi = dataset.region_of_interest(log_id)
    assert isinstance(roi, Av2MapRegionOfInterest) and roi.map_dir == av2_split / log_id / "map"
    assert roi.contains_xy(_ego_xy(dataset, log_id)).all()
    assert not roi.contains_xy(FAR_AWAY_XY).any()


def test_av2_roi_without_a_map_or_with_a_broken_one(av2_split: Path, tmp_path: Path) -> None:
    (log_id,) = AV2SensorDataset(av2_split).logs()
    split_dir = Path(shutil.copytree(av2_split, tmp_path / "val"))
    map_dir = split_dir / log_id / "map"
    for raster in map_dir.glob("*_ground_height_surface____*.npy"):
        raster.unlink()
    with pytest.raises(AdapterError, match="unreadable AV2 map rasters") as error:
        AV2SensorDataset(split_dir).region_of_interest(log_id)
    assert error.value.path == str(map_dir)
    assert AV2SensorDataset(split_dir, skip_bad=True).region_of_interest(log_id) is None
    for path in map_dir.iterdir():
        path.unlink()
    map_dir.rmdir()
    # A log without its map/ folder is an incomplete log (the writer puts the map last), not a log without ROI.
    with pytest.raises(AdapterError, match="incomplete AV2 log: no map/ folder") as error:
        AV2SensorDataset(split_dir).region_of_interest(log_id)
    assert error.value.path == str(split_dir / log_id)
    assert AV2SensorDataset(split_dir, skip_bad=True).region_of_interest(log_id) is None
