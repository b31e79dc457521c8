"""Round trips: a hand-built simulated log -> each synthetic-city writer -> the matching adapter == the log.

The log is built here (not simulated) so that every record field the formats carry is exercised and known.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scenes.adapters.av2 import AV2SensorDataset
from scenes.adapters.cityscapes import CityscapesDataset, label_ids_to_train_ids
from scenes.adapters.kitti import KittiRawDataset
from scenes.adapters.nuscenes import NuScenesDataset
from scenes.categories import CATEGORY_ID
from scenes.ego_frame import AV2_EGO, KITTI_EGO
from scenes.geometry import SE3, Sim2
from scenes.records import Boxes3D, CameraFrame, Frame, LaneGraph, LidarSweep, MapRaster
from scenes.synth.world import SynthLog
from tests.conftest import annotations_of

LOG_ID = "0f0e0d0c-0000-4000-8000-00000000abcd"
NUM_FRAMES = 11
STEP_NS = 100_000_000
START_NS = 1_600_000_000_000_000_000
EGO_R_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
CATEGORIES = ("REGULAR_VEHICLE", "PEDESTRIAN", "BUS")


def _lane_graph() -> LaneGraph:
    xs = np.linspace(-50.0, 50.0, 10)
    lanes = np.stack([np.stack([xs, np.full(10, y), np.zeros(10)], axis=1) for y in (-1.75, 1.75)])
    lanes[1] = lanes[1][::-1]
    left = lanes + np.array([0.0, 1.75, 0.0]) * np.array([[[1.0]], [[-1.0]]])
    right = lanes - np.array([0.0, 1.75, 0.0]) * np.array([[[1.0]], [[-1.0]]])
    sim2 = Sim2(np.eye(2), np.array([60.0, 20.0]), 1.0)
    return LaneGraph(
        "SYN",
        np.array([11, 12]),
        lanes,
        ((), ()),
        np.array([12, -1]),
        np.array([-1, 11]),
        np.array([False, False]),
        drivable_areas_m=(np.array([[-50.0, -3.5, 0.0], [50.0, -3.5, 0.0], [50.0, 3.5, 0.0], [-50.0, 3.5, 0.0]]),),
        left_boundaries_m=left,
        right_boundaries_m=right,
        rasters={
            "ground_height": MapRaster("ground_height", np.zeros((40, 120), dtype=np.float32), sim2),
            "drivable_area": MapRaster("drivable_area", np.ones((40, 120), dtype=np.uint8), sim2),
        },
    )


def hand_log() -> SynthLog:
    rng = np.random.default_rng(7)
    sensors = {"up_lidar": SE3(np.eye(3), np.array([1.0, 0.0, 1.8])), "ring_front_center": SE3(EGO_R_OPTICAL, np.array([1.5, 0.0, 1.4]))}
    intrinsics = np.array([[40.0, 0.0, 24.0], [0.0, 40.0, 16.0], [0.0, 0.0, 1.0]])
    frames = []
    for k in range(NUM_FRAMES):
        timestamp = START_NS + k * STEP_NS
        count = 300
        points = np.column_stack([rng.uniform(-30, 30, count), rng.uniform(-30, 30, count), rng.uniform(-1, 3, count)])
        lidar = LidarSweep(
            timestamp,
            points.astype(np.float32),
            (rng.integers(0, 256, count) / 255.0).astype(np.float32),
            rng.integers(0, 32, count).astype(np.int16),
            rng.integers(0, 100_000_000, count).astype(np.int64),
        )
        semantics = np.full((32, 48), 7, dtype=np.uint8)
        semantics[:10] = 23
        semantics[20:28, 10:20] = 26
        instances = np.zeros((32, 48), dtype=np.int32)
        instances[20:28, 10:20] = 1
        camera = CameraFrame(
            timestamp, "ring_front_center", rng.integers(0, 256, (32, 48, 3)).astype(np.uint8), intrinsics, sensors["ring_front_center"],
            semantics=semantics, instances=instances,
        )
        boxes = Boxes3D(
            center_m=np.array([[8.0 + 0.5 * k, 1.5, 0.8], [5.0, -4.0, 0.9], [-12.0 - k, 1.75, 1.6]]),
            size_lwh_m=np.array([[4.5, 1.9, 1.6], [0.6, 0.7, 1.8], [12.0, 2.6, 3.2]]),
            yaw_rad=np.array([0.1, -2.0, 3.0]),
            category=np.array([CATEGORY_ID[name] for name in CATEGORIES]),
            velocity_m_per_s=np.array([[5.0, 0.0], [0.0, 1.0], [-10.0, 0.0]]),
            track_id=np.array(["car", "walker", "bus"]),
            num_interior_pts=np.array([30, 5, 50]),
        )
        pose = SE3.from_yaw(0.05 * k, [2.0 * k, 0.3 * k, 0.0])
        frames.append(Frame(LOG_ID, timestamp, pose, lidar, {"ring_front_center": camera}, boxes))
    return SynthLog(LOG_ID, "SYN", "default", tuple(frames), _lane_graph(), sensors)


@pytest.fixture(scope="module")
def log() -> SynthLog:
    return hand_log()


def _float16(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float16).astype(np.float32)


def test_av2_round_trip(log: SynthLog, tmp_path: Path) -> None:
    from scenes.synth.writers.av2 import av2_track_uuid, write_av2_log

    write_av2_log(log, tmp_path / "val")
    dataset = AV2SensorDataset(tmp_path / "val", cameras=("ring_front_center",))
    assert dataset.logs() == [LOG_ID]
    frames = list(dataset.frames(LOG_ID))
    assert len(frames) == NUM_FRAMES
    for mine, truth in zip(frames, log.frames, strict=True):
        assert mine.timestamp_ns == truth.timestamp_ns
        assert mine.city_SE3_ego.allclose(truth.city_SE3_ego, atol=1e-9)
        assert mine.lidar is not None and truth.lidar is not None
        assert mine.lidar.offset_ns is not None and truth.lidar.offset_ns is not None
        # AV2 stores xyz as float16 in its own ego frame (0.33 m higher): the truth moved there, rounded, moved back.
        np.testing.assert_array_equal(mine.lidar.points_xyz_m, AV2_EGO.points_to_ego(_float16(AV2_EGO.points_from_ego(truth.lidar.points_xyz_m))))
        np.testing.assert_allclose(mine.lidar.intensity, truth.lidar.intensity, atol=1e-6)
        np.testing.assert_array_equal(mine.lidar.laser_number, truth.lidar.laser_number)
        np.testing.assert_array_equal(mine.lidar.offset_ns, truth.lidar.offset_ns)
        boxes, expected = mine.annotations, truth.annotations
        assert boxes is not None and expected is not None
        assert boxes.track_id is not None and expected.track_id is not None
        assert boxes.num_interior_pts is not None and expected.num_interior_pts is not None
        assert boxes.track_id.tolist() == [av2_track_uuid(LOG_ID, t) for t in expected.track_id]
        np.testing.assert_allclose(boxes.center_m, expected.center_m, atol=1e-9)
        np.testing.assert_allclose(boxes.size_lwh_m, expected.size_lwh_m, atol=1e-9)
        np.testing.assert_allclose(np.cos(boxes.yaw_rad - expected.yaw_rad), 1.0, atol=1e-12)
        np.testing.assert_array_equal(boxes.category, expected.category)
        np.testing.assert_array_equal(boxes.num_interior_pts, expected.num_interior_pts)
        camera = mine.cameras["ring_front_center"]
        reference = truth.cameras["ring_front_center"]
        np.testing.assert_allclose(camera.intrinsics, reference.intrinsics)
        assert camera.ego_SE3_camera.allclose(reference.ego_SE3_camera, atol=1e-9)
        assert np.abs(camera.image.astype(int) - reference.image).mean() < 40  # JPEG of noise: lossy but close
    graph = dataset.lane_graph(LOG_ID)
    assert graph is not None
    np.testing.assert_allclose(graph.centerlines_m, log.lane_graph.centerlines_m, atol=1e-6)
    assert graph.right_neighbor_id.tolist() == [-1, 11] and graph.city_name == "SYN"
    np.testing.assert_allclose(graph.rasters["ground_height"].values, 0.0)


def test_av2_motion_forecasting_round_trip(tmp_path: Path) -> None:
    from scenes.adapters.av2_mf import AV2MotionForecastingDataset
    from scenes.synth.writers.av2_mf import write_av2_scenarios

    base = hand_log()
    frames = []
    for k in range(110):
        pose = SE3.from_yaw(0.0, [1.0 * k, 0.0, 0.0])
        boxes = Boxes3D(
            center_m=np.array([[10.0 + 0.8 * k - 1.0 * k, 2.0, 0.8], [20.0 - 1.0 * k, -3.0 + 0.1 * k, 0.9]]),
            size_lwh_m=np.array([[4.5, 1.9, 1.6], [0.6, 0.7, 1.8]]),
            yaw_rad=np.array([0.0, 1.5]),
            category=np.array([CATEGORY_ID["REGULAR_VEHICLE"], CATEGORY_ID["PEDESTRIAN"]]),
            velocity_m_per_s=np.array([[8.0 - 10.0, 0.0], [-10.0, 1.0]]),
            track_id=np.array(["car", "walker"]),
            num_interior_pts=np.array([10, 10]),
        )
        frames.append(Frame(LOG_ID, START_NS + k * STEP_NS, pose, None, {}, boxes))
    log = SynthLog(LOG_ID, "SYN", "default", tuple(frames), base.lane_graph, base.ego_SE3_sensors)
    (path,) = write_av2_scenarios(log, tmp_path / "val")
    dataset = AV2MotionForecastingDataset(tmp_path / "val")
    (scenario,) = list(dataset.scenarios())
    assert scenario.xy_m.shape[1] == 110 and scenario.current_index == 49
    agents = scenario.agent_ids.tolist()
    (car,) = [i for i, agent in enumerate(agents) if agent != "AV" and scenario.category[i] == CATEGORY_ID["REGULAR_VEHICLE"]]
    expected_xy = np.array([frame.city_SE3_ego.transform_points(annotations_of(frame).center_m[:1])[0, :2] for frame in frames])
    np.testing.assert_allclose(scenario.xy_m[car], expected_xy, atol=1e-6)
    assert scenario.valid[car].all()
    np.testing.assert_array_equal(np.diff(scenario.timestamps_ns), STEP_NS)
    assert len(scenario.focal_agent_ids) >= 1
    assert dataset.lane_graph(scenario.scenario_id) is not None


def test_kitti_raw_round_trip(log: SynthLog, tmp_path: Path) -> None:
    from scenes.synth.writers.kitti import write_kitti_drive

    drive_dir = write_kitti_drive(log, tmp_path / "raw")
    dataset = KittiRawDataset(tmp_path / "raw")
    assert dataset.logs() == [drive_dir.name]
    frames = list(dataset.frames(drive_dir.name))
    # KITTI's ego frame: the Velodyne's axes, origin on the ground 1.73 m below it.
    lidar_pose = log.ego_SE3_sensors["up_lidar"].compose(KITTI_EGO.dataset_SE3_ego)
    assert len(frames) == NUM_FRAMES
    for mine, truth in zip(frames, log.frames, strict=True):
        assert mine.timestamp_ns == truth.timestamp_ns
        # city_SE3_kitti = city_SE3_ego * ego_SE3_lidar (poses relative to frame 0).
        expected = lidar_pose.inverse().compose(log.frames[0].city_SE3_ego.inverse()).compose(truth.city_SE3_ego).compose(lidar_pose)
        relative = frames[0].city_SE3_ego.inverse().compose(mine.city_SE3_ego)
        assert relative.allclose(expected, atol=1e-5)
        assert mine.lidar is not None and truth.lidar is not None
        np.testing.assert_allclose(mine.lidar.points_xyz_m, lidar_pose.inverse().transform_points(truth.lidar.points_xyz_m), atol=1e-5)
        camera = mine.cameras["image_02"]
        np.testing.assert_array_equal(camera.image, truth.cameras["ring_front_center"].image)
        np.testing.assert_allclose(camera.intrinsics, truth.cameras["ring_front_center"].intrinsics, atol=1e-9)
        expected_camera = lidar_pose.inverse().compose(log.ego_SE3_sensors["ring_front_center"])
        assert camera.ego_SE3_camera.allclose(expected_camera, atol=1e-9)
        assert camera.depth_m is not None and (camera.depth_m > 0).any()
        # Depth ground truth is the LiDAR seen by the camera: every valid pixel has a point at that depth.
        points_camera = camera.ego_SE3_camera.inverse().transform_points(mine.lidar.points_xyz_m)
        assert np.all(np.isin(np.round(camera.depth_m[camera.depth_m > 0] * 256), np.round(points_camera[:, 2] * 256)))
    # The release layout keeps depth apart from the raw drives: found through `depth_root`.
    depth_root = tmp_path / "depth"
    (depth_root / "val" / drive_dir.name).mkdir(parents=True)
    (drive_dir / "proj_depth").rename(depth_root / "val" / drive_dir.name / "proj_depth")
    assert next(iter(KittiRawDataset(tmp_path / "raw").frames(drive_dir.name))).cameras["image_02"].depth_m is None
    moved = next(iter(KittiRawDataset(tmp_path / "raw", depth_root=depth_root).frames(drive_dir.name)))
    assert moved.cameras["image_02"].depth_m is not None and frames[0].cameras["image_02"].depth_m is not None
    np.testing.assert_array_equal(moved.cameras["image_02"].depth_m, frames[0].cameras["image_02"].depth_m)


def test_nuscenes_round_trip(log: SynthLog, tmp_path: Path) -> None:
    from scenes.synth.writers.nuscenes import write_nuscenes

    write_nuscenes([log], tmp_path, version="v1.0-synth")
    dataset = NuScenesDataset(tmp_path, version="v1.0-synth", sweeps=True, cameras=("CAM_FRONT",))
    (scene,) = dataset.logs()
    frames = list(dataset.frames(scene))
    assert [f.timestamp_ns for f in frames] == [f.timestamp_ns for f in log.frames]
    keyframes = [f for f in frames if f.annotations is not None]
    assert 2 <= len(keyframes) < len(frames)
    truth_by_time = {f.timestamp_ns: f for f in log.frames}
    for mine in frames:
        truth = truth_by_time[mine.timestamp_ns]
        assert mine.city_SE3_ego.allclose(truth.city_SE3_ego, atol=1e-6)
        assert mine.lidar is not None and truth.lidar is not None
        np.testing.assert_allclose(mine.lidar.points_xyz_m, truth.lidar.points_xyz_m, atol=1e-4)
        np.testing.assert_allclose(mine.lidar.intensity, truth.lidar.intensity, atol=1e-6)
        camera, reference = mine.cameras["CAM_FRONT"], truth.cameras["ring_front_center"]
        assert camera.timestamp_ns == reference.timestamp_ns
        np.testing.assert_allclose(camera.intrinsics, reference.intrinsics)
        assert camera.ego_SE3_camera.allclose(reference.ego_SE3_camera, atol=1e-6)
        assert np.abs(camera.image.astype(int) - reference.image).mean() < 40  # JPEG of noise: lossy but close
    for mine in keyframes:
        truth_boxes = truth_by_time[mine.timestamp_ns].annotations
        assert mine.annotations is not None and truth_boxes is not None
        order = [list(truth_boxes.category).index(c) for c in mine.annotations.category]
        np.testing.assert_allclose(mine.annotations.center_m, truth_boxes.center_m[order], atol=1e-6)
        np.testing.assert_allclose(mine.annotations.size_lwh_m, truth_boxes.size_lwh_m[order], atol=1e-6)
        np.testing.assert_allclose(np.cos(mine.annotations.yaw_rad - truth_boxes.yaw_rad[order]), 1.0, atol=1e-9)
    scenario = next(iter(dataset.scenarios()))
    assert scenario.valid[:, scenario.current_index].all()
    # Prediction-challenge agents: the split file lists "<instance>_<sample>" per scene name of the official split.
    import json

    first_key = dataset.samples(scene)[0]
    car = next(a for a in dataset.nusc.sample_annotation if a["sample_token"] == first_key["token"] and a["category_name"] == "vehicle.car")
    split_file = tmp_path / "maps" / "prediction" / "prediction_scenes.json"
    split_file.parent.mkdir(parents=True)
    split_file.write_text(json.dumps({"scene-0103": [f"{car['instance_token']}_{first_key['token']}"]}))
    (challenge,) = list(dataset.prediction_scenarios("mini_val"))
    assert challenge.focal_agent_ids.tolist() == [car["instance_token"]]
    focal = challenge.agent_ids.tolist().index(car["instance_token"])
    # Key frames every 0.5 s: the ones after the first are exactly the valid future steps of the 2 Hz scenario.
    future = challenge.valid[focal, challenge.current_index + 1 :]
    assert future[: len(keyframes) - 1].all() and future.sum() == len(keyframes) - 1
    np.testing.assert_allclose(challenge.xy_m[focal, challenge.current_index], car["translation"][:2])


def test_cityscapes_round_trip(log: SynthLog, tmp_path: Path) -> None:
    from scenes.synth.writers.cityscapes import write_cityscapes

    write_cityscapes(log, tmp_path, split="val")
    dataset = CityscapesDataset(tmp_path / "default")
    (log_id,) = dataset.logs()
    items = list(dataset.items(log_id))
    assert len(items) == NUM_FRAMES
    for item, truth in zip(items, log.frames, strict=True):
        reference = truth.cameras["ring_front_center"]
        np.testing.assert_array_equal(item.camera.image, reference.image)
        assert item.label_ids is not None and item.labels is not None and item.camera.instances is not None and reference.semantics is not None
        np.testing.assert_array_equal(item.label_ids.labels, reference.semantics)
        np.testing.assert_array_equal(item.labels.labels, label_ids_to_train_ids(reference.semantics))
        assert item.camera.instances[24, 15] == 26000 and item.camera.instances[0, 0] == 23
        np.testing.assert_allclose(item.camera.intrinsics, reference.intrinsics)
        assert item.camera.ego_SE3_camera.allclose(reference.ego_SE3_camera, atol=1e-9)
