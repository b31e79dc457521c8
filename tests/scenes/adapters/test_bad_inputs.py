"""Bad inputs written by the synthetic city's writers, one corrupt file each: the adapters raise an `AdapterError` whose
message starts with the bad file (or log folder) and names the field, and with `skip_bad=True` log and skip instead.

One small log is simulated per module and written once per format; each test copies the format's files into its
`tmp_path` and corrupts one file there.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.feather as feather
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenes.adapters.av2 import AV2SensorDataset
from scenes.adapters.base import AdapterError
from scenes.adapters.kitti import KittiRawDataset
from scenes.adapters.nuscenes import NuScenesDataset
from scenes.synth.world import SynthConfig, SynthLog, simulate_log
from scenes.synth.writers.av2 import write_av2_log
from scenes.synth.writers.kitti import write_kitti_drive
from scenes.synth.writers.nuscenes import write_nuscenes

NUSCENES_VERSION = "v1.0-synth"
CONFIG = SynthConfig(
    seconds=0.3, lidar_beams=4, lidar_azimuth_steps=64, cameras=("ring_front_center", "stereo_front_right"),
    image_width_px=32, image_height_px=16, warmup_s=0.0,
    num_vehicles=2, num_pedestrians=1, num_cyclists=0, num_static_objects=0,
)  # fmt: skip
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def log() -> SynthLog:
    return simulate_log(CONFIG, 0, 0)


@pytest.fixture(scope="module")
def written(log: SynthLog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The log written once in each format: `av2/val/<log_id>/`, `kitti/<date>/<drive>/`, `nuscenes/`."""
    root = tmp_path_factory.mktemp("written")
    write_av2_log(log, root / "av2" / "val")
    write_kitti_drive(log, root / "kitti")
    write_nuscenes([log], root / "nuscenes", version=NUSCENES_VERSION)
    return root


@pytest.fixture()
def av2_split(written: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(written / "av2" / "val", tmp_path / "val"))


@pytest.fixture()
def kitti_root(written: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(written / "kitti", tmp_path / "kitti"))


@pytest.fixture()
def nuscenes_root(written: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(written / "nuscenes", tmp_path / "nuscenes"))


def _only_log(split_dir: Path) -> Path:
    (log_dir,) = [child for child in split_dir.iterdir() if child.is_dir()]
    return log_dir


def _map_file(split_dir: Path, pattern: str) -> Path:
    (path,) = (_only_log(split_dir) / "map").glob(pattern)
    return path


def _raises_naming(path: Path, match: str, call: Callable[[], object]) -> AdapterError:
    """`call()` raises an AdapterError on `path` whose message starts with the path and matches `match`."""
    with pytest.raises(AdapterError, match=match) as error:
        call()
    assert error.value.path == str(path)
    assert str(error.value).startswith(f"{path}: ")
    return error.value


# --- AV2: the map folder's Sim(2) JSON and ground-height raster, not the vector map, are named -----------------------

SIM2_CORRUPTIONS = {
    "not JSON": ("{not json", r"not valid JSON"),
    "truncated": ('{"R": [1.0, 0.0, 0.0, 1.0], "t": [3', r"not valid JSON"),
    "no t": (json.dumps({"R": [1.0, 0.0, 0.0, 1.0], "s": 3.3}), r"missing key 't'"),
    "R of 3 values": (json.dumps({"R": [1.0, 0.0, 1.0], "t": [0.0, 0.0], "s": 3.3}), r"key 'R' has 3 values, expected 4"),
    "R not a rotation": (json.dumps({"R": [2.0, 0.0, 0.0, 1.0], "t": [0.0, 0.0], "s": 3.3}), r"key 'R' is not a 2-D rotation"),
    "s zero": (json.dumps({"R": [1.0, 0.0, 0.0, 1.0], "t": [0.0, 0.0], "s": 0.0}), r"key 's' \(scale\) is zero"),
    "s a string": (json.dumps({"R": [1.0, 0.0, 0.0, 1.0], "t": [0.0, 0.0], "s": "3.3"}), r"key 's' must be a number"),
    "a list": ("[1, 2, 3]", r"expected a JSON object with keys \['R', 't', 's'\]"),
    "huge t": ('{"R": [1.0, 0.0, 0.0, 1.0], "t": [1' + "0" * 400 + ', 0.0], "s": 3.3}', r"key 't' has a number out of float64 range"),
    "inf t": ('{"R": [1.0, 0.0, 0.0, 1.0], "t": [1e999, 0.0], "s": 3.3}', r"key 't' has NaN or inf"),
}


@pytest.mark.parametrize("case", list(SIM2_CORRUPTIONS))
def test_av2_corrupt_sim2_json_names_the_sim2_file(av2_split: Path, case: str) -> None:
    text, match = SIM2_CORRUPTIONS[case]
    path = _map_file(av2_split, "*___img_Sim2_city.json")
    path.write_text(text)
    log_id = _only_log(av2_split).name
    _raises_naming(path, match, lambda: AV2SensorDataset(av2_split).lane_graph(log_id))
    _raises_naming(path, match, lambda: AV2SensorDataset(av2_split).region_of_interest(log_id))


def test_av2_corrupt_ground_height_npy_names_the_npy(av2_split: Path) -> None:
    path = _map_file(av2_split, "*_ground_height_surface____*.npy")
    log_id = _only_log(av2_split).name
    payload = path.read_bytes()
    path.write_bytes(payload[:100])  # inside the header
    _raises_naming(path, r"not a readable \.npy array \(truncated or corrupt header", lambda: AV2SensorDataset(av2_split).lane_graph(log_id))
    path.write_bytes(payload[: len(payload) // 2])  # inside the data
    _raises_naming(path, r"not a readable \.npy array \(truncated or corrupt: header says float16", lambda: AV2SensorDataset(av2_split).lane_graph(log_id))
    _raises_naming(path, r"truncated or corrupt", lambda: AV2SensorDataset(av2_split).region_of_interest(log_id))
    np.save(path, np.zeros((2, 3, 4), dtype=np.float16))
    match = r"ground-height raster: expected a non-empty 2-D float array, header says float16 \(2, 3, 4\)"
    _raises_naming(path, match, lambda: AV2SensorDataset(av2_split).lane_graph(log_id))


def test_av2_map_errors_with_skip_bad_are_logged_and_skipped(av2_split: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _map_file(av2_split, "*___img_Sim2_city.json")
    path.write_text("{")
    log_id = _only_log(av2_split).name
    dataset = AV2SensorDataset(av2_split, skip_bad=True)
    with caplog.at_level(logging.WARNING, logger="scenes.adapters"):
        assert dataset.lane_graph(log_id) is None
        assert dataset.region_of_interest(log_id) is None
        assert len(list(dataset.frames(log_id))) == len(_sweeps(av2_split))
    assert f"skipping map of log {log_id}: {path}: not valid JSON" in caplog.text
    assert f"skipping region of interest of log {log_id}: {path}: not valid JSON" in caplog.text


def _sweeps(split_dir: Path) -> list[Path]:
    """The log's sweeps on disk (one frame each)."""
    return sorted((_only_log(split_dir) / "sensors" / "lidar").glob("*.feather"))


# --- AV2: calibration feathers are checked once per log, cameras asked for or not ------------------------------------


@pytest.mark.parametrize("name", ["egovehicle_SE3_sensor.feather", "intrinsics.feather"])
def test_av2_truncated_calibration_feather_is_an_error(av2_split: Path, name: str, caplog: pytest.LogCaptureFixture) -> None:
    log_id = _only_log(av2_split).name
    path = _only_log(av2_split) / "calibration" / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    match = r"not a readable feather file \(truncated or corrupt"
    _raises_naming(path, match, lambda: list(AV2SensorDataset(av2_split).frames(log_id)))
    _raises_naming(path, match, lambda: AV2SensorDataset(av2_split).summary())
    dataset = AV2SensorDataset(av2_split, skip_bad=True)
    with caplog.at_level(logging.WARNING, logger="scenes.adapters"):
        assert list(dataset.frames(log_id)) == []
        assert dataset.summary().num_frames == 0
    assert f"skipping log {log_id}: {path}: not a readable feather file" in caplog.text


def test_av2_calibration_feather_missing_a_column_names_the_column(av2_split: Path) -> None:
    path = _only_log(av2_split) / "calibration" / "egovehicle_SE3_sensor.feather"
    feather.write_feather(feather.read_table(path).drop(["tz_m"]), path)
    _raises_naming(path, r"missing column\(s\) \['tz_m'\]", lambda: list(AV2SensorDataset(av2_split).frames(_only_log(av2_split).name)))


# --- AV2: a log folder without its map/ folder is an incomplete log -------------------------------------------------


def test_av2_log_without_map_folder_names_the_log_folder(av2_split: Path, caplog: pytest.LogCaptureFixture) -> None:
    log_dir = _only_log(av2_split)
    shutil.rmtree(log_dir / "map")
    match = r"incomplete AV2 log: no map/ folder"
    _raises_naming(log_dir, match, lambda: list(AV2SensorDataset(av2_split).frames(log_dir.name)))
    _raises_naming(log_dir, match, lambda: list(AV2SensorDataset(av2_split, with_map=False).frames(log_dir.name)))
    _raises_naming(log_dir, match, lambda: AV2SensorDataset(av2_split).lane_graph(log_dir.name))
    _raises_naming(log_dir, match, lambda: AV2SensorDataset(av2_split).region_of_interest(log_dir.name))
    _raises_naming(log_dir, match, lambda: AV2SensorDataset(av2_split).summary())
    dataset = AV2SensorDataset(av2_split, skip_bad=True)
    with caplog.at_level(logging.WARNING, logger="scenes.adapters"):
        assert list(dataset.frames(log_dir.name)) == []
        assert dataset.lane_graph(log_dir.name) is None
        assert dataset.summary().num_frames == 0
    assert f"skipping log {log_dir.name}: {log_dir}: incomplete AV2 log" in caplog.text


def test_av2_intact_log_still_loads(av2_split: Path) -> None:
    """Also what keeps the fuzz tests below from passing vacuously: an intact log reads every file they corrupt."""
    log_id = _only_log(av2_split).name
    assert "ring_front_center" in feather.read_table(_only_log(av2_split) / "calibration" / "intrinsics.feather").column("sensor_name").to_pylist()
    dataset = AV2SensorDataset(av2_split, cameras=("ring_front_center",))
    frames = list(dataset.frames(log_id))
    assert len(frames) == len(_sweeps(av2_split)) and all(f.lidar is not None and "ring_front_center" in f.cameras for f in frames)
    assert dataset.lane_graph(log_id) is not None and dataset.region_of_interest(log_id) is not None


# --- nuScenes: annotation fields ------------------------------------------------------------------------------------

ANNOTATION_CORRUPTIONS = {
    "no translation": (lambda a: a.pop("translation"), r"missing key 'translation'"),
    "no size": (lambda a: a.pop("size"), r"missing key 'size'"),
    "no rotation": (lambda a: a.pop("rotation"), r"missing key 'rotation'"),
    "2-D translation": (lambda a: a.update(translation=[1.0, 2.0]), r"key 'translation' has 2 values, expected 3"),
    "text size": (lambda a: a.update(size="big"), r"key 'size' must be a list of 3 numbers"),
    "null rotation": (lambda a: a.update(rotation=None), r"key 'rotation' must be a list of 4 numbers"),
}


def _corrupt_first_annotation(nuscenes_root: Path, corrupt: Callable[[dict], object]) -> tuple[Path, dict]:
    path = nuscenes_root / NUSCENES_VERSION / "sample_annotation.json"
    annotations = json.loads(path.read_text())
    corrupt(annotations[0])
    path.write_text(json.dumps(annotations))
    return path, annotations[0]


@pytest.mark.parametrize("case", list(ANNOTATION_CORRUPTIONS))
def test_nuscenes_bad_annotation_names_the_table_record_and_key(nuscenes_root: Path, case: str) -> None:
    corrupt, match = ANNOTATION_CORRUPTIONS[case]
    path, annotation = _corrupt_first_annotation(nuscenes_root, corrupt)
    dataset = NuScenesDataset(nuscenes_root, version=NUSCENES_VERSION)
    (scene,) = dataset.logs()
    error = _raises_naming(path, match, lambda: list(dataset.frames(scene)))
    assert f"annotation {annotation['token']}: " in str(error)
    _raises_naming(path, match, lambda: dataset.scenario(scene, annotation["sample_token"]))


def test_nuscenes_bad_annotation_with_skip_bad_skips_that_key_frame(nuscenes_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    path, annotation = _corrupt_first_annotation(nuscenes_root, lambda a: a.pop("translation"))
    dataset = NuScenesDataset(nuscenes_root, version=NUSCENES_VERSION, skip_bad=True)
    (scene,) = dataset.logs()
    samples = dataset.samples(scene)
    with caplog.at_level(logging.WARNING, logger="scenes.adapters"):
        frames = list(dataset.frames(scene))
    bad = {sample["token"] for sample in samples if annotation["token"] in sample["anns"]}
    assert len(bad) == 1 and len(frames) == len(samples) - 1
    assert f"{path}: annotation {annotation['token']}: missing key 'translation'" in caplog.text


# --- KITTI: Velodyne scans ------------------------------------------------------------------------------------------


def _drive_and_scans(kitti_root: Path) -> tuple[str, list[Path]]:
    (drive,) = kitti_root.glob("*/*_sync")
    return drive.name, sorted((drive / "velodyne_points" / "data").glob("*.bin"))


@pytest.mark.parametrize(
    ("size", "match"),
    [(0, r"empty Velodyne scan: 0 bytes \(a corrupt frame"), (17, r"truncated Velodyne scan: 17 bytes is not a multiple of 16")],
)
def test_kitti_empty_or_ragged_velodyne_scan_is_a_corrupt_frame(kitti_root: Path, size: int, match: str, caplog: pytest.LogCaptureFixture) -> None:
    drive, scans = _drive_and_scans(kitti_root)
    scans[1].write_bytes(scans[1].read_bytes()[:size])
    _raises_naming(scans[1], match, lambda: list(KittiRawDataset(kitti_root).frames(drive)))
    with caplog.at_level(logging.WARNING, logger="scenes.adapters"):
        frames = list(KittiRawDataset(kitti_root, skip_bad=True).frames(drive))
    assert len(frames) == len(scans) - 1
    assert f"skipping frame {drive}/{1:010d}: {scans[1]}: " in caplog.text


# --- fuzzing: random truncations and byte flips of one file give an AdapterError naming that file, or load ------------


def _mutate(payload: bytes, cut: float | None, flips: list[tuple[int, int]]) -> bytes:
    data = bytearray(payload)
    for position, value in flips:
        data[position % len(data)] = value
    return bytes(data[: int(len(data) * cut)] if cut is not None else data)


MUTATIONS = {
    "cut": st.one_of(st.none(), st.floats(0.0, 0.999)),
    "flips": st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=3),
}


def _load_or_blame(path: Path, call: Callable[[], object], *, must_fail: bool = False) -> None:
    try:
        call()
    except AdapterError as error:
        assert error.path == str(path), str(error)
        assert str(error).startswith(f"{path}: ")
    else:
        assert not must_fail, f"{path} was accepted"


@pytest.mark.parametrize("name", ["egovehicle_SE3_sensor.feather", "intrinsics.feather"])
def test_fuzz_av2_calibration_feather(av2_split: Path, name: str) -> None:
    log_id = _only_log(av2_split).name
    path = _only_log(av2_split) / "calibration" / name
    original = path.read_bytes()

    @FUZZ
    @given(**MUTATIONS)
    def check(cut: float | None, flips: list[tuple[int, int]]) -> None:
        path.write_bytes(_mutate(original, cut, flips))
        # No camera is asked for: the log-level check alone must read the calibration, and a cut one (its Arrow footer
        # gone) must fail.
        _load_or_blame(path, lambda: list(AV2SensorDataset(av2_split).frames(log_id)), must_fail=cut is not None)

    check()


@pytest.mark.parametrize("pattern", ["*___img_Sim2_city.json", "*_ground_height_surface____*.npy"])
def test_fuzz_av2_map_rasters(av2_split: Path, pattern: str) -> None:
    log_id = _only_log(av2_split).name
    path = _map_file(av2_split, pattern)
    original = path.read_bytes()
    # Flips land in the small JSON anywhere, in the raster's 128-byte header (its float16 heights may be anything).
    flips = st.lists(st.tuples(st.integers(0, len(original) - 1 if pattern.endswith("json") else 127), st.integers(0, 255)), max_size=3)

    @FUZZ
    @given(cut=MUTATIONS["cut"], flips=flips)
    def check(cut: float | None, flips: list[tuple[int, int]]) -> None:
        path.write_bytes(_mutate(original, cut, flips))
        _load_or_blame(path, lambda: AV2SensorDataset(av2_split).region_of_interest(log_id))

    check()


def test_fuzz_kitti_velodyne_scan(kitti_root: Path) -> None:
    drive, scans = _drive_and_scans(kitti_root)
    original = scans[0].read_bytes()

    @FUZZ
    @given(**MUTATIONS)
    def check(cut: float | None, flips: list[tuple[int, int]]) -> None:
        payload = _mutate(original, cut, flips)
        scans[0].write_bytes(payload)
        try:
            frames = list(KittiRawDataset(kitti_root).frames(drive))
        except AdapterError as error:
            assert error.path == str(scans[0]), str(error)
        else:
            assert payload and len(payload) % 16 == 0
            assert frames[0].lidar is not None and len(frames[0].lidar) == len(payload) // 16

    check()
