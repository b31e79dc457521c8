"""AV2 sensor-dataset and motion-forecasting writers, read back with av2's own loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from av2.datasets.motion_forecasting.data_schema import TrackCategory
from av2.datasets.motion_forecasting.scenario_serialization import load_argoverse_scenario_parquet
from av2.datasets.sensor.av2_sensor_dataloader import AV2SensorDataLoader
from av2.map.map_api import ArgoverseStaticMap, RasterLayerType
from av2.structures.cuboid import CuboidList
from av2.structures.sweep import Sweep
from av2.utils.io import read_city_SE3_ego, read_ego_SE3_sensor

from scenes.categories import CATEGORIES
from scenes.ego_frame import AV2_EGO
from scenes.geometry import quat_wxyz_to_yaw
from scenes.synth.world import SynthConfig, simulate_log
from scenes.synth.writers.av2 import av2_track_uuid, count_interior_points, write_av2_log
from scenes.synth.writers.av2_mf import write_av2_scenarios
from scenes.synth.writers.common import WriterError


@pytest.fixture(scope="module")
def log(handmade_log):
    return handmade_log


@pytest.fixture(scope="module")
def av2_split(log, tmp_path_factory) -> Path:
    split_dir = tmp_path_factory.mktemp("av2") / "val"
    write_av2_log(log, split_dir)
    return split_dir


def test_lidar_sweeps_read_back_by_sweep_from_feather(log, av2_split):
    loader = AV2SensorDataLoader(av2_split, av2_split)
    assert loader.get_log_ids() == [log.log_id]
    assert loader.get_ordered_log_lidar_timestamps(log.log_id) == [f.timestamp_ns for f in log.frames]
    for frame in log.frames:
        sweep = Sweep.from_feather(loader.get_lidar_fpath(log.log_id, frame.timestamp_ns))
        assert sweep.timestamp_ns == frame.timestamp_ns
        # AV2's ego frame is the rear axle, 0.33 m above the records' ego origin on the ground.
        av2_points = AV2_EGO.points_from_ego(frame.lidar.points_xyz_m)
        np.testing.assert_array_equal(sweep.xyz, av2_points.astype(np.float16).astype(np.float64))
        np.testing.assert_allclose(sweep.xyz, av2_points, atol=0.05)
        np.testing.assert_array_equal(sweep.intensity, np.rint(frame.lidar.intensity * 255).astype(np.uint8))
        np.testing.assert_array_equal(sweep.laser_number, frame.lidar.laser_number)
        np.testing.assert_array_equal(sweep.offset_ns, frame.lidar.offset_ns)
        np.testing.assert_allclose(sweep.ego_SE3_up_lidar.translation, log.ego_SE3_sensors["up_lidar"].translation - [0.0, 0.0, 0.33])


def test_annotations_read_back_by_cuboid_list(log, av2_split):
    annotations_path = av2_split / log.log_id / "annotations.feather"
    table = pd.read_feather(annotations_path)
    assert list(table.columns) == [
        "timestamp_ns", "track_uuid", "category", "length_m", "width_m", "height_m",
        "qw", "qx", "qy", "qz", "tx_m", "ty_m", "tz_m", "num_interior_pts",
    ]  # fmt: skip
    assert table["num_interior_pts"].dtype == np.int64 and table["timestamp_ns"].dtype == np.int64
    cuboids = CuboidList.from_feather(annotations_path)
    expected = [(f.timestamp_ns, i) for f in log.frames for i in range(len(f.annotations))]
    assert len(cuboids) == len(expected)
    for cuboid, (timestamp_ns, index) in zip(cuboids, expected, strict=True):
        frame = next(f for f in log.frames if f.timestamp_ns == timestamp_ns)
        boxes = frame.annotations
        assert cuboid.timestamp_ns == timestamp_ns
        assert cuboid.category == CATEGORIES[boxes.category[index]]
        np.testing.assert_allclose(cuboid.dst_SE3_object.translation, AV2_EGO.points_from_ego(boxes.center_m[index]))
        np.testing.assert_allclose([cuboid.length_m, cuboid.width_m, cuboid.height_m], boxes.size_lwh_m[index])
        yaw = np.arctan2(cuboid.dst_SE3_object.rotation[1, 0], cuboid.dst_SE3_object.rotation[0, 0])
        assert abs(np.angle(np.exp(1j * (yaw - boxes.yaw_rad[index])))) < 1e-9
    row = table.iloc[0]
    assert row["track_uuid"] == av2_track_uuid(log.log_id, str(log.frames[0].annotations.track_id[0]))
    # The hand-made log leaves num_interior_pts to the writer: a count of the sweep's points in each box.
    first = log.frames[0]
    counts = count_interior_points(first.lidar.points_xyz_m, first.annotations)
    np.testing.assert_array_equal(table["num_interior_pts"].to_numpy()[: len(counts)], counts)
    assert counts.max() > 0
    np.testing.assert_allclose(quat_wxyz_to_yaw(table[["qw", "qx", "qy", "qz"]].to_numpy()[: len(counts)]), first.annotations.yaw_rad, atol=1e-9)


def test_poses_calibration_and_cameras(log, av2_split):
    log_dir = av2_split / log.log_id
    poses = read_city_SE3_ego(log_dir)
    for frame in log.frames:
        np.testing.assert_allclose(poses[frame.timestamp_ns].transform_matrix, AV2_EGO.pose_from_ego(frame.city_SE3_ego).as_matrix(), atol=1e-12)
    sensors = read_ego_SE3_sensor(log_dir)
    assert {"up_lidar", "down_lidar", "ring_front_center"} <= set(sensors)
    np.testing.assert_allclose(sensors["ring_front_center"].rotation, log.ego_SE3_sensors["ring_front_center"].rotation, atol=1e-12)
    loader = AV2SensorDataLoader(av2_split, av2_split)
    camera = log.frames[2].cameras["ring_front_center"]
    path = loader.get_closest_img_fpath(log.log_id, "ring_front_center", log.frames[2].timestamp_ns)
    assert path is not None and path.name == f"{log.frames[2].timestamp_ns}.jpg"
    from av2.geometry.camera.pinhole_camera import PinholeCamera
    from PIL import Image

    pinhole = PinholeCamera.from_feather(log_dir, "ring_front_center")
    np.testing.assert_allclose(pinhole.intrinsics.K, camera.intrinsics)
    assert (pinhole.width_px, pinhole.height_px) == (camera.width_px, camera.height_px)
    decoded = np.asarray(Image.open(path))
    assert decoded.shape == camera.image.shape
    assert np.abs(decoded.astype(int) - camera.image.astype(int)).mean() < 8


def test_map_reads_back_with_rasters(log, av2_split):
    loader = AV2SensorDataLoader(av2_split, av2_split)
    assert loader.get_city_name(log.log_id) == log.city_name
    avm = ArgoverseStaticMap.from_map_dir(loader.get_log_map_dirpath(log.log_id), build_raster=True)
    graph = log.lane_graph
    assert sorted(avm.vector_lane_segments) == sorted(graph.lane_ids.tolist())
    for index, lane_id in enumerate(graph.lane_ids.tolist()):
        segment = avm.vector_lane_segments[lane_id]
        np.testing.assert_allclose(segment.left_lane_boundary.xyz, graph.left_boundaries_m[index])
        np.testing.assert_allclose(segment.right_lane_boundary.xyz, graph.right_boundaries_m[index])
        assert segment.successors == list(graph.successors[index])
        assert segment.is_intersection == bool(graph.is_intersection[index])
    assert avm.vector_lane_segments[11].predecessors == [10]
    assert avm.get_lane_segment_left_neighbor_id(10) == 20
    crossing = avm.get_scenario_ped_crossings()[0]
    np.testing.assert_allclose(crossing.polygon[:4], graph.crosswalks_m[0])
    # Rasters: av2 rasterises the drivable area itself and reads our ground height through our Sim(2).
    assert avm.get_raster_layer_points_boolean(np.array([[0.0, 0.0, 0.0], [0.0, 40.0, 0.0]]), RasterLayerType.DRIVABLE_AREA).tolist() == [True, False]
    heights = avm.append_height_to_2d_city_pt_cloud(np.array([[-20.0, 0.0], [20.0, 0.0]]))[:, 2]
    np.testing.assert_allclose(heights, [-0.2, 0.2], atol=2e-3)


def test_round_trip_through_the_av2_adapter(log, av2_split):
    from scenes.adapters.av2 import AV2SensorDataset

    dataset = AV2SensorDataset(av2_split.parent, split="val", cameras=("ring_front_center",))
    assert dataset.logs() == [log.log_id]
    frames = list(dataset.frames(log.log_id))
    assert [f.timestamp_ns for f in frames] == [f.timestamp_ns for f in log.frames]
    for read, written in zip(frames, log.frames, strict=True):
        assert read.city_SE3_ego.allclose(written.city_SE3_ego, atol=1e-12)
        assert read.lidar is not None
        np.testing.assert_allclose(read.lidar.points_xyz_m, written.lidar.points_xyz_m, atol=0.02)
        np.testing.assert_allclose(read.lidar.intensity, written.lidar.intensity, atol=0.5 / 255)
        np.testing.assert_array_equal(read.lidar.laser_number, written.lidar.laser_number)
        boxes, truth = read.annotations, written.annotations
        assert boxes is not None and boxes.track_id is not None
        np.testing.assert_allclose(boxes.center_m, truth.center_m, atol=1e-9)
        np.testing.assert_allclose(boxes.size_lwh_m, truth.size_lwh_m)
        np.testing.assert_allclose(np.cos(boxes.yaw_rad - truth.yaw_rad), 1.0)
        np.testing.assert_array_equal(boxes.category, truth.category)
        assert boxes.track_id.tolist() == [av2_track_uuid(log.log_id, t) for t in truth.track_id]
        np.testing.assert_allclose(read.cameras["ring_front_center"].intrinsics, written.cameras["ring_front_center"].intrinsics)
    graph = dataset.lane_graph(log.log_id)
    assert graph is not None
    order = np.argsort(graph.lane_ids)
    np.testing.assert_array_equal(graph.lane_ids[order], log.lane_graph.lane_ids)
    assert [graph.successors[i] for i in order] == list(log.lane_graph.successors)


def test_av2_needs_lidar_and_safe_ids(log, tmp_path):
    from dataclasses import replace

    no_lidar = replace(log, frames=tuple(replace(f, lidar=None) for f in log.frames))
    with pytest.raises(WriterError, match=r"frames\[0\]\.lidar"):
        write_av2_log(no_lidar, tmp_path)
    with pytest.raises(WriterError, match="log_id"):
        write_av2_log(replace(log, log_id="../escape"), tmp_path)
    with pytest.raises(WriterError, match="city_name"):
        write_av2_log(replace(log, city_name="SYN_1"), tmp_path)
    assert not any(tmp_path.iterdir())


def test_motion_forecasting_scenarios_read_back(tmp_path):
    log = simulate_log(SynthConfig(seconds=11.0, lidar_beams=None, cameras=()), seed=3)
    (scenario_dir,) = write_av2_scenarios(log, tmp_path)
    scenario = load_argoverse_scenario_parquet(scenario_dir / f"scenario_{scenario_dir.name}.parquet")
    assert scenario.scenario_id == scenario_dir.name and scenario.city_name == log.city_name
    np.testing.assert_array_equal(scenario.timestamps_ns, [f.timestamp_ns for f in log.frames[:110]])
    tracks = {track.track_id: track for track in scenario.tracks}
    focal = tracks[scenario.focal_track_id]
    assert focal.category == TrackCategory.FOCAL_TRACK and len(focal.object_states) == 110
    assert [s.observed for s in focal.object_states] == [True] * 50 + [False] * 60
    truth = log.ground_truth_tracks()
    for state in focal.object_states[::17]:
        boxes = truth.boxes[state.timestep]
        row = int(np.flatnonzero(boxes.track_id == scenario.focal_track_id)[0])
        np.testing.assert_allclose(state.position, boxes.center_m[row, :2])
        np.testing.assert_allclose(state.velocity, boxes.velocity_m_per_s[row])
        assert state.heading == pytest.approx(boxes.yaw_rad[row])
    ego = tracks["AV"]
    np.testing.assert_allclose(ego.object_states[30].position, log.frames[30].city_SE3_ego.translation[:2])
    avm = ArgoverseStaticMap.from_json(scenario_dir / f"log_map_archive_{scenario_dir.name}.json")
    assert set(avm.vector_lane_segments) <= set(log.lane_graph.lane_ids.tolist()) and avm.vector_lane_segments

    # The project's AV2 motion-forecasting adapter reads the same scenario back as a `Scenario` record.
    from scenes.adapters.av2_mf import AV2MotionForecastingDataset

    record = AV2MotionForecastingDataset(tmp_path).scenario(scenario_dir.name)
    assert record.current_index == 49 and record.focal_agent_ids[0] == scenario.focal_track_id
    np.testing.assert_array_equal(record.timestamps_ns, [f.timestamp_ns for f in log.frames[:110]])
    row = int(np.flatnonzero(record.agent_ids == scenario.focal_track_id)[0])
    assert record.valid[row].all()
    for step in (0, 49, 109):
        boxes = truth.boxes[step]
        np.testing.assert_allclose(record.xy_m[row, step], boxes.center_m[boxes.track_id == scenario.focal_track_id][0, :2])


def test_motion_forecasting_rejects_short_logs(tmp_path):
    log = simulate_log(SynthConfig(seconds=2.0, lidar_beams=None, cameras=()), seed=0)
    with pytest.raises(WriterError, match="110"):
        write_av2_scenarios(log, tmp_path)


def test_official_detection_evaluator_uses_our_map_and_poses(log, av2_split):
    """GT boxes resubmitted as detections score AP 1 with the evaluator's ROI filter reading our map folder and poses;
    a false positive outside the region of interest is pruned by that filter, and counted without it."""
    from av2.evaluation.detection.eval import evaluate
    from av2.evaluation.detection.utils import DetectionCfg

    gts = pd.read_feather(av2_split / log.log_id / "annotations.feather").assign(log_id=log.log_id)
    gts = gts[gts["num_interior_pts"] > 0]
    dts = gts.drop(columns=["num_interior_pts"]).assign(score=1.0)
    # 30 m to the left of the ego at the first sweep: beyond the drivable area (y <= 5.5 m) dilated by 5 m.
    outside = dts.iloc[[0]].assign(tx_m=0.0, ty_m=30.0, score=0.5)
    dts = pd.concat([dts, outside], ignore_index=True)
    categories = ("REGULAR_VEHICLE", "PEDESTRIAN", "CONSTRUCTION_CONE")
    scores = {}
    for roi in (True, False):
        cfg = DetectionCfg(categories=categories, dataset_dir=av2_split, eval_only_roi_instances=roi)
        _, _, metrics = evaluate(dts, gts, cfg, n_jobs=1)
        scores[roi] = metrics.loc[list(categories), "AP"]
    assert scores[True].tolist() == [1.0, 1.0, 1.0]
    assert scores[False]["REGULAR_VEHICLE"] < 1.0
