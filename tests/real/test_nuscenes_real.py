"""The nuScenes adapter on the real Lyft Level 5 sample (nuScenes schema, no point clouds, no map images)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenes.adapters.base import AdapterError
from scenes.adapters.nuscenes import NuScenesDataset
from scenes.adapters.registry import open_dataset

pytestmark = pytest.mark.real

VERSION = "v1.01-train"
SCENE = "host-a101-lidar0-1240710366399037786-1240710391298976894"


@pytest.fixture(scope="module")
def dataset(shared_data: Path) -> NuScenesDataset:
    dataset = open_dataset(f"nuscenes:{shared_data / 'nuscenes-schema' / 'lyft'}", version=VERSION)
    assert isinstance(dataset, NuScenesDataset)
    return dataset


def test_tables_load_with_clear_notes_for_what_is_missing(dataset: NuScenesDataset, caplog: pytest.LogCaptureFixture) -> None:
    assert dataset.logs() == [SCENE]
    assert len(dataset.nusc.sample_annotation) == 4 and len(dataset.nusc.sample_data) == 10
    notes = " | ".join(dataset.notes())
    assert "map_raster_palo_alto.png" in notes and "not found" in notes
    assert "no LIDAR_TOP point-cloud file" in notes
    with caplog.at_level(logging.INFO, logger="scenes.adapters"):
        assert dataset.lane_graph(SCENE) is None
    assert "no map expansion" in " | ".join(dataset.notes())


def test_boxes_match_the_devkit_in_the_ego_frame(dataset: NuScenesDataset) -> None:
    from pyquaternion import Quaternion

    nusc = dataset.nusc
    (frame,) = list(dataset.frames(SCENE))
    assert frame.lidar is None  # the sample ships no point clouds
    assert frame.timestamp_ns == 1556675185903083250
    sample = nusc.sample[0]
    lidar = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
    pose = nusc.get("ego_pose", lidar["ego_pose_token"])
    boxes = frame.annotations
    assert boxes is not None and len(boxes) == 4
    assert boxes.track_id is not None
    by_token = {token: i for i, token in enumerate(boxes.track_id)}
    for devkit_box in nusc.get_boxes(lidar["token"]):
        devkit_box.translate(-np.array(pose["translation"]))
        devkit_box.rotate(Quaternion(pose["rotation"]).inverse)
        annotation = nusc.get("sample_annotation", devkit_box.token)
        i = by_token[annotation["instance_token"]]
        np.testing.assert_allclose(boxes.center_m[i], devkit_box.center, atol=1e-9)
        width, length, height = devkit_box.wlh
        np.testing.assert_allclose(boxes.size_lwh_m[i], [length, width, height])
        heading = devkit_box.orientation.rotation_matrix[:, 0]
        assert abs(np.sin(boxes.yaw_rad[i] - np.arctan2(heading[1], heading[0]))) < 1e-9
    assert set(boxes.category_names) == {"REGULAR_VEHICLE"}
    # Ego frame back to the global frame reproduces the table's translations.
    city = frame.city_SE3_ego.transform_points(boxes.center_m)
    table = {a["instance_token"]: a["translation"] for a in nusc.sample_annotation}
    np.testing.assert_allclose(city, [table[t] for t in boxes.track_id], atol=1e-9)


def test_scenarios_from_predict_helper(dataset: NuScenesDataset) -> None:
    (scenario,) = list(dataset.scenarios())
    assert scenario.xy_m.shape == (4, 17, 2) and scenario.current_index == 4
    # A one-sample fragment: only the current step is observed.
    assert scenario.valid[:, 4].all() and scenario.valid.sum() == 4
    table = {a["instance_token"]: a["translation"][:2] for a in dataset.nusc.sample_annotation}
    np.testing.assert_allclose(scenario.xy_m[:, 4], [table[t] for t in scenario.agent_ids])
    assert np.all(scenario.velocity_m_per_s[:, 4] == 0.0)
    assert np.all(np.diff(scenario.timestamps_ns) == 500_000_000)


@pytest.fixture()
def lyft_copy(shared_data: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(shared_data / "nuscenes-schema" / "lyft" / VERSION, tmp_path / VERSION)
    return tmp_path


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=st.sampled_from(["sample", "sample_annotation", "ego_pose", "scene"]), fraction=st.floats(0.05, 0.95))
def test_truncated_table_names_the_file(lyft_copy: Path, table: str, fraction: float) -> None:
    path = lyft_copy / VERSION / f"{table}.json"
    original = path.read_bytes()
    try:
        path.write_bytes(original[: int(len(original) * fraction)])
        with pytest.raises(AdapterError, match=f"{table}.json: not valid JSON"):
            NuScenesDataset(lyft_copy, version=VERSION)
    finally:
        path.write_bytes(original)


def test_missing_table_unknown_category_and_nan_pose(lyft_copy: Path) -> None:
    import json

    (lyft_copy / VERSION / "visibility.json").unlink()
    with pytest.raises(AdapterError, match="visibility.json: nuScenes table not found"):
        NuScenesDataset(lyft_copy, version=VERSION)
    with pytest.raises(AdapterError, match="nuScenes version 'v9' directory not found"):
        NuScenesDataset(lyft_copy, version="v9")
    (lyft_copy / VERSION / "visibility.json").write_text("[]")
    categories = json.loads((lyft_copy / VERSION / "category.json").read_text())
    for record in categories:
        if record["name"] == "car":
            record["name"] = "hovercraft"
    (lyft_copy / VERSION / "category.json").write_text(json.dumps(categories))
    dataset = NuScenesDataset(lyft_copy, version=VERSION)
    with pytest.raises(AdapterError, match="category.json: unknown nuScenes category 'hovercraft'"):
        list(dataset.frames(SCENE))
    assert list(NuScenesDataset(lyft_copy, version=VERSION, skip_bad=True).frames(SCENE)) == []
    poses = json.loads((lyft_copy / VERSION / "ego_pose.json").read_text())
    for pose in poses:
        pose["translation"][0] = float("nan")
    (lyft_copy / VERSION / "ego_pose.json").write_text(json.dumps(poses))
    with pytest.raises(AdapterError, match="ego_pose.json: record .*: bad rotation/translation"):
        list(NuScenesDataset(lyft_copy, version=VERSION).frames(SCENE))
