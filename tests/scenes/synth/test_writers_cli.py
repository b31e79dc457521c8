"""`drivestack synth` end to end on the simulator: every format is written and read back by its devkit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pykitti
from av2.datasets.sensor.av2_sensor_dataloader import AV2SensorDataLoader
from av2.structures.sweep import Sweep
from nuscenes import NuScenes
from PIL import Image
from typer.testing import CliRunner

from pipelines.cli import app
from scenes.adapters.cityscapes import CityscapesDataset
from scenes.adapters.registry import open_dataset
from tests.conftest import intensity_ranks


def run_synth(out: Path, *arguments: str, seconds: float = 0.2) -> str:
    result = CliRunner().invoke(app, ["synth", "--out", str(out), "--seconds", str(seconds), *arguments])
    assert result.exit_code == 0, result.output
    return result.output


def test_av2_same_seed_same_bytes(tmp_path, tree_digest):
    run_synth(tmp_path / "a", "--format", "av2", "--seed", "2", "--split", "val", "--preview")
    run_synth(tmp_path / "b", "--format", "av2", "--seed", "2", "--split", "val", "--preview")
    digest = tree_digest(tmp_path / "a")
    assert digest == tree_digest(tmp_path / "b")
    (preview,) = (tmp_path / "a" / "preview").iterdir()
    assert Image.open(preview).size[0] > 500
    assert any(name.endswith(".feather") and "/sensors/lidar/" in name for name in digest)
    loader = AV2SensorDataLoader(tmp_path / "a" / "val", tmp_path / "a" / "val")
    (log_id,) = loader.get_log_ids()
    timestamps = loader.get_ordered_log_lidar_timestamps(log_id)
    assert len(timestamps) == 2
    sweep = Sweep.from_feather(loader.get_lidar_fpath(log_id, timestamps[0]))
    assert len(sweep) > 1000 and loader.get_closest_img_fpath(log_id, "ring_front_center", timestamps[0]) is not None


def test_kitti_nuscenes_cityscapes(tmp_path):
    run_synth(tmp_path / "kitti", "--format", "kitti")
    (date_dir,) = (tmp_path / "kitti").iterdir()
    drive = pykitti.raw(str(tmp_path / "kitti"), date_dir.name, "0001")
    assert len(drive) == 2 and drive.calib.b_rgb > 0.1
    assert np.asarray(drive.get_cam2(0)).shape == np.asarray(drive.get_cam3(0)).shape
    assert drive.get_velo(1).shape[1] == 4

    run_synth(tmp_path / "nuscenes", "--format", "nuscenes", "--logs", "2")
    nusc = NuScenes(version="v1.0-synth", dataroot=str(tmp_path / "nuscenes"), verbose=False)
    assert [scene["name"] for scene in nusc.scene] == ["scene-0001", "scene-0002"]
    assert all("LIDAR_TOP" in sample["data"] and "CAM_FRONT" in sample["data"] for sample in nusc.sample)

    run_synth(tmp_path / "cityscapes", "--format", "cityscapes", "--style", "night", "--split", "val")
    dataset = CityscapesDataset(tmp_path / "cityscapes" / "night", split="val")
    (log_id,) = dataset.logs()
    item = next(iter(dataset.items(log_id)))
    assert item.labels is not None and item.camera.image.ndim == 3


def test_bright_people_and_vehicle_paint_flags_write_people_brighter_than_most_and_vehicles_spread(tmp_path):
    medians, vehicles = {}, {}
    for flags in ((), ("--bright-people", "--vehicle-paint")):
        out = tmp_path / ("bright" if flags else "default")
        run_synth(out, "--format", "av2", "--seed", "1000", *flags, seconds=1.0)
        dataset = open_dataset(f"av2:{out / 'train'}")
        (log_id,) = dataset.logs()
        frames = list(dataset.frames(log_id))[::2]
        people = [rank for frame in frames for rank in intensity_ranks(frame, "PEDESTRIAN")]
        assert len(people) >= 5
        medians[bool(flags)] = float(np.median(people))
        vehicles[bool(flags)] = np.array([rank for frame in frames for rank in intensity_ranks(frame, "REGULAR_VEHICLE")])
    # As on the real sweeps (tests/real/test_synth_intensity_real.py); the default city's people are darker than most,
    # and its vehicles all alike.
    assert medians[False] < 0.5 < 0.6 <= medians[True]
    assert np.ptp(vehicles[False]) < 0.25 and vehicles[True].min() < 0.12 and vehicles[True].max() > 0.5


def test_pedestrian_groups_flag_writes_people_walking_beside_each_other(tmp_path):
    beside = {}
    for flags in ((), ("--pedestrian-groups",)):
        out = tmp_path / ("groups" if flags else "alone")
        run_synth(out, "--format", "av2", "--seed", "3", *flags, seconds=0.3)
        dataset = open_dataset(f"av2:{out / 'train'}")
        (log_id,) = dataset.logs()
        frame = next(iter(dataset.frames(log_id)))
        assert frame.annotations is not None
        xy = frame.annotations.center_m[np.asarray(frame.annotations.category_names) == "PEDESTRIAN", :2]
        distance = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
        np.fill_diagonal(distance, np.inf)
        beside[bool(flags)] = int(np.sum(distance.min(axis=1) < 1.4))
    # A third of the people walk with others (tests/real/test_synth_pedestrian_groups_real.py), within the 100 m
    # the writer annotates.
    assert beside[False] <= 1 and beside[True] >= 3
