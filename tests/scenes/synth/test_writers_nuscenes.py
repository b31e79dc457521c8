"""nuScenes-format writer, read back with nuscenes-devkit (`NuScenes`, `PredictHelper`, `LidarPointCloud`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from nuscenes import NuScenes
from nuscenes.prediction import PredictHelper
from nuscenes.utils.data_classes import LidarPointCloud
from nuscenes.utils.splits import get_scenes_of_custom_split

from scenes.categories import CATEGORIES, TO_NUSCENES_GENERAL
from scenes.geometry import quat_wxyz_to_yaw
from scenes.synth.writers.common import WriterError
from scenes.synth.writers.nuscenes import NuScenesWriter, write_nuscenes


@pytest.fixture(scope="module")
def nusc(handmade_log, tmp_path_factory) -> NuScenes:
    root = tmp_path_factory.mktemp("nuscenes")
    write_nuscenes([handmade_log], root, split="synth_val")
    return NuScenes(version="v1.0-synth", dataroot=str(root), verbose=False)


def test_database_loads_with_scene_samples_and_split(handmade_log, nusc):
    (scene,) = nusc.scene
    assert scene["name"] == "scene-0001" and scene["nbr_samples"] == 3  # 11 frames at 10 Hz -> key frames 0, 5, 10
    assert get_scenes_of_custom_split("synth_val", nusc) == ["scene-0001"]
    sample = nusc.get("sample", scene["first_sample_token"])
    assert sample["timestamp"] == handmade_log.frames[0].timestamp_ns // 1000
    assert set(sample["data"]) == {"LIDAR_TOP", "CAM_FRONT", "CAM_STEREO_RIGHT"}
    assert nusc.get("log", scene["log_token"])["location"] == "SYN"
    lidar_rows = [sd for sd in nusc.sample_data if sd["channel"] == "LIDAR_TOP"]
    assert len(lidar_rows) == 11 and sum(sd["is_key_frame"] for sd in lidar_rows) == 3
    pose = nusc.get("ego_pose", nusc.get("sample_data", sample["data"]["LIDAR_TOP"])["ego_pose_token"])
    np.testing.assert_allclose(pose["translation"], handmade_log.frames[0].city_SE3_ego.translation)
    # The map PNG follows MapMask's convention (global origin at the bottom-left, 0.1 m pixels): the drivable
    # rectangle x in [-45, 45], y in [-2, 5.5] is drawn over its non-negative part.
    mask = nusc.get("map", nusc.get("log", scene["log_token"])["map_token"])["mask"]
    assert mask.mask().shape == (56, 451)
    assert mask.is_on_mask(np.array([10.0, 44.0, 10.0]), np.array([2.0, 5.0, 7.0])).tolist() == [True, True, False]


def test_point_clouds_in_lidar_frame(handmade_log, nusc):
    sample = nusc.get("sample", nusc.scene[0]["first_sample_token"])
    record = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
    cloud = LidarPointCloud.from_file(str(Path(nusc.dataroot) / record["filename"]))
    frame = handmade_log.frames[0]
    calibration = nusc.get("calibrated_sensor", record["calibrated_sensor_token"])
    np.testing.assert_allclose(calibration["translation"], handmade_log.ego_SE3_sensors["up_lidar"].translation)
    expected = frame.lidar.points_xyz_m - handmade_log.ego_SE3_sensors["up_lidar"].translation
    np.testing.assert_allclose(cloud.points[:3].T, expected, atol=1e-5)
    np.testing.assert_allclose(cloud.points[3], frame.lidar.intensity * 255, atol=1e-3)
    raw = np.fromfile(Path(nusc.dataroot) / record["filename"], dtype=np.float32).reshape(-1, 5)
    np.testing.assert_array_equal(raw[:, 4], frame.lidar.laser_number)


def test_annotations_global_wlh_and_linked(handmade_log, nusc):
    frame = handmade_log.frames[5]
    city = frame.annotations.transformed(frame.city_SE3_ego, "city")
    sample = nusc.get("sample", nusc.get("sample", nusc.scene[0]["first_sample_token"])["next"])
    annotations = [nusc.get("sample_annotation", token) for token in sample["anns"]]
    assert len(annotations) == len(city)
    by_category = {a["category_name"]: a for a in annotations}
    for box in range(len(city)):
        annotation = by_category[TO_NUSCENES_GENERAL[CATEGORIES[city.category[box]]]]
        np.testing.assert_allclose(annotation["translation"], city.center_m[box], atol=1e-9)
        length, width, height = city.size_lwh_m[box]
        assert annotation["size"] == [width, length, height]
        assert quat_wxyz_to_yaw(annotation["rotation"]) == pytest.approx(np.angle(np.exp(1j * city.yaw_rad[box])))
        assert annotation["prev"] and annotation["next"]
    car = by_category["vehicle.car"]
    assert [nusc.get("attribute", t)["name"] for t in car["attribute_tokens"]] == ["vehicle.moving"]
    assert car["num_lidar_pts"] > 0
    box = nusc.get_box(car["token"])
    np.testing.assert_allclose(box.wlh, [1.9, 4.5, 1.6])


def test_predict_helper_futures(handmade_log, nusc):
    helper = PredictHelper(nusc)
    first = nusc.get("sample", nusc.scene[0]["first_sample_token"])
    car = next(a for a in helper.get_annotations_for_sample(first["token"]) if a["category_name"] == "vehicle.car")
    future = helper.get_future_for_agent(car["instance_token"], first["token"], seconds=1.0, in_agent_frame=False)
    expected = [handmade_log.frames[i].annotations.transformed(handmade_log.frames[i].city_SE3_ego, "city").center_m[0, :2] for i in (5, 10)]
    np.testing.assert_allclose(future, expected, atol=1e-9)
    assert helper.get_velocity_for_agent(car["instance_token"], nusc.get("sample", first["next"])["token"]) == pytest.approx(10.0)
    assert helper.get_map_name_from_sample_token(first["token"]) == "SYN"


def test_bad_arguments(handmade_log, tmp_path):
    writer = NuScenesWriter(tmp_path)
    with pytest.raises(WriterError, match="splits.json"):
        writer.add(handmade_log, "val")
    with pytest.raises(WriterError, match="no log"):
        writer.close()
    writer.add(handmade_log, "synth_train")
    with pytest.raises(WriterError, match="already added"):
        writer.add(handmade_log, "synth_train")


def test_round_trip_through_the_nuscenes_adapter(handmade_log, nusc):
    from scenes.adapters.nuscenes import NuScenesDataset

    dataset = NuScenesDataset(Path(nusc.dataroot), version="v1.0-synth", sweeps=True, cameras=("CAM_FRONT",))
    assert dataset.logs() == ["scene-0001"]
    frames = list(dataset.frames("scene-0001"))
    assert [f.timestamp_ns for f in frames] == [f.timestamp_ns for f in handmade_log.frames]
    for index, (read, written) in enumerate(zip(frames, handmade_log.frames, strict=True)):
        assert read.city_SE3_ego.allclose(written.city_SE3_ego, atol=1e-12)
        assert read.lidar is not None and written.lidar is not None
        np.testing.assert_allclose(read.lidar.points_xyz_m, written.lidar.points_xyz_m, atol=1e-5)
        np.testing.assert_allclose(read.lidar.intensity, written.lidar.intensity, atol=1e-6)
        assert read.cameras["CAM_FRONT"].ego_SE3_camera.allclose(handmade_log.ego_SE3_sensors["ring_front_center"], atol=1e-12)
        if index % 5:
            assert read.annotations is None
            continue
        assert read.annotations is not None and written.annotations is not None
        order = np.argsort(read.annotations.category)
        truth = written.annotations.select(np.argsort(written.annotations.category))
        np.testing.assert_allclose(read.annotations.center_m[order], truth.center_m, atol=1e-9)
        np.testing.assert_allclose(read.annotations.size_lwh_m[order], truth.size_lwh_m)
        np.testing.assert_allclose(np.cos(read.annotations.yaw_rad[order] - truth.yaw_rad), 1.0)


def test_official_detection_eval_on_the_custom_split(nusc, tmp_path):
    """The devkit's DetectionEval finds our scenes through splits.json; GT resubmitted as detections scores AP 1."""
    import json

    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.detection.evaluate import DetectionEval

    detection_names = {"vehicle.car": "car", "human.pedestrian.adult": "pedestrian", "movable_object.trafficcone": "traffic_cone"}
    results = {}
    for sample in nusc.sample:
        boxes = []
        for token in sample["anns"]:
            annotation = nusc.get("sample_annotation", token)
            velocity = np.nan_to_num(nusc.box_velocity(token)[:2]).tolist()
            attributes = [nusc.get("attribute", t)["name"] for t in annotation["attribute_tokens"]]
            boxes.append(
                {
                    "sample_token": sample["token"],
                    "translation": annotation["translation"],
                    "size": annotation["size"],
                    "rotation": annotation["rotation"],
                    "velocity": velocity,
                    "detection_name": detection_names[annotation["category_name"]],
                    "detection_score": 0.9,
                    "attribute_name": attributes[0] if attributes else "",
                }
            )
        results[sample["token"]] = boxes
    meta = {"use_camera": False, "use_lidar": True, "use_radar": False, "use_map": False, "use_external": False}
    result_path = tmp_path / "results.json"
    result_path.write_text(json.dumps({"meta": meta, "results": results}))
    evaluation = DetectionEval(nusc, config_factory("detection_cvpr_2019"), str(result_path), "synth_val", str(tmp_path), verbose=False)
    summary = evaluation.main(plot_examples=0, render_curves=False)
    for name in ("car", "pedestrian", "traffic_cone"):
        assert summary["label_aps"][name][2.0] == pytest.approx(1.0)
    assert summary["label_tp_errors"]["car"]["trans_err"] == pytest.approx(0.0, abs=1e-9)
