"""The synthetic city simulator: determinism, sensor physics against the scene, traffic on the map, styles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree
from shapely.geometry import Polygon

from scenes.categories import CATEGORY_ID
from scenes.config import ConfigError, validate_config
from scenes.geometry import bev_box_corners, points_at_arc, points_in_box_mask, polyline_arc_m, project_to_image
from scenes.synth.agents import PEDESTRIAN_SIDESTEP_M_PER_S, AgentKind
from scenes.synth.kernels import count_points_in_boxes, value_noise
from scenes.synth.lidar import beam_elevations_deg
from scenes.synth.roads import build_road_network
from scenes.synth.styles import CityscapesLabel, get_style, style_names
from scenes.synth.world import SynthConfig, SynthLog, simulate_log

TINY = {"seconds": 0.3, "lidar_beams": 16, "lidar_azimuth_steps": 720, "image_width_px": 96, "image_height_px": 64, "style": "fog"}


@pytest.fixture(scope="module")
def clean_log() -> SynthLog:
    """A noise-free 3-frame log (no range noise, no dropout) with the front camera."""
    return simulate_log(SynthConfig(**TINY, lidar_range_noise_m=0.0, lidar_dropout=0.0), seed=5)


@pytest.fixture(scope="module")
def traffic_log() -> SynthLog:
    """Eight seconds of traffic without sensors."""
    return simulate_log(SynthConfig(seconds=8.0, lidar_beams=None, cameras=()), seed=2)


def _arrays(log: SynthLog) -> list[np.ndarray]:
    arrays = []
    for frame in log.frames:
        assert frame.lidar is not None and frame.annotations is not None
        assert frame.annotations.num_interior_pts is not None and frame.annotations.track_id is not None
        arrays += [frame.city_SE3_ego.as_matrix(), frame.lidar.points_xyz_m, frame.lidar.intensity, frame.annotations.center_m]
        arrays += [frame.annotations.num_interior_pts, frame.annotations.track_id]
        arrays += [camera.image for camera in frame.cameras.values()]
    return arrays


def test_same_seed_gives_identical_arrays_and_another_seed_differs() -> None:
    config = SynthConfig(**{**TINY, "seconds": 0.2})
    first, second, other = simulate_log(config, seed=1), simulate_log(config, seed=1), simulate_log(config, seed=2)
    assert first.log_id == second.log_id != other.log_id
    for a, b in zip(_arrays(first), _arrays(second), strict=True):
        np.testing.assert_array_equal(a, b)
    assert first.frames[0].lidar is not None and other.frames[0].lidar is not None
    assert not np.array_equal(first.frames[0].lidar.points_xyz_m[:100], other.frames[0].lidar.points_xyz_m[:100])
    assert simulate_log(config, seed=1, index=1).log_id != first.log_id


def test_lidar_points_lie_on_the_simulated_surfaces(clean_log: SynthLog) -> None:
    for index, frame in enumerate(clean_log.frames):
        assert frame.lidar is not None
        points_city = frame.city_SE3_ego.transform_points(frame.lidar.points_xyz_m)
        distance = clean_log.frame_scene(index).distance_to_surfaces(points_city)
        assert len(points_city) > 1000
        assert distance.max() < 5e-3


def test_range_noise_moves_points_off_the_surface_by_its_standard_deviation() -> None:
    log = simulate_log(SynthConfig(**{**TINY, "seconds": 0.1}, lidar_range_noise_m=0.05, lidar_dropout=0.0, cameras=()), seed=5)
    assert log.frames[0].lidar is not None
    points_city = log.frames[0].city_SE3_ego.transform_points(log.frames[0].lidar.points_xyz_m)
    distance = log.frame_scene(0).distance_to_surfaces(points_city)
    # The distance to the surface is at most the range error; most returns are hit near normal incidence.
    assert 0.01 < np.median(distance) < 0.05
    assert np.quantile(distance, 0.999) < 5 * 0.05


def test_num_interior_pts_counts_the_sweep_points_in_each_box(clean_log: SynthLog) -> None:
    for frame in clean_log.frames:
        assert frame.annotations is not None and frame.lidar is not None
        boxes, points = frame.annotations, frame.lidar.points_xyz_m
        assert boxes.num_interior_pts is not None
        expected = [points_in_box_mask(points, boxes.center_m[i], boxes.size_lwh_m[i], boxes.yaw_rad[i]).sum() for i in range(len(boxes))]
        np.testing.assert_array_equal(boxes.num_interior_pts, expected)
        assert (boxes.num_interior_pts > 0).sum() >= 5


def test_laser_numbers_and_beam_tables() -> None:
    assert len(beam_elevations_deg(64)) == 64 and len(beam_elevations_deg(4)) == 4
    assert beam_elevations_deg(32).min() == -25.0 and beam_elevations_deg(32).max() == 15.0
    log = simulate_log(SynthConfig(**{**TINY, "seconds": 0.1, "lidar_beams": 4}, cameras=()), seed=0)
    assert log.frames[0].lidar is not None
    assert set(np.unique(log.frames[0].lidar.laser_number)) <= {0, 1, 2, 3}


def test_camera_depth_agrees_with_lidar_points_projected_into_the_image(clean_log: SynthLog) -> None:
    frame = clean_log.frames[0]
    camera = frame.cameras["ring_front_center"]
    assert frame.lidar is not None and camera.depth_m is not None
    points_camera = camera.ego_SE3_camera.inverse().transform_points(frame.lidar.points_xyz_m)
    uv, valid = project_to_image(points_camera, camera.intrinsics, camera.width_px - 1, camera.height_px - 1)
    uv, lidar_depth = uv[valid], points_camera[valid, 2]
    # Inverse depth is affine in pixel coordinates on a plane, so bilinear interpolation of it is exact there.
    c0, r0 = np.floor(uv).astype(int).T
    fu, fv = (uv - np.floor(uv)).T
    corners = np.stack([camera.depth_m[r0, c0], camera.depth_m[r0, c0 + 1], camera.depth_m[r0 + 1, c0], camera.depth_m[r0 + 1, c0 + 1]], axis=1)
    inverse = 1.0 / np.maximum(corners, 1e-6)
    smooth = np.all(corners > 0, axis=1) & (np.ptp(inverse, axis=1) < 0.05 * inverse.mean(axis=1))
    weights = np.stack([(1 - fu) * (1 - fv), fu * (1 - fv), (1 - fu) * fv, fu * fv], axis=1)
    rendered = 1.0 / np.sum(weights * inverse, axis=1)
    relative = np.abs(rendered - lidar_depth)[smooth] / lidar_depth[smooth]
    assert smooth.sum() > 200
    assert np.median(relative) < 1e-3
    # The rest hit small objects (planters, cabinets) whose 2x2 pixel neighbourhood spans two surfaces at close depths.
    assert np.mean(relative < 0.01) > 0.9


def test_camera_semantics_use_cityscapes_ids_and_instances_mark_agents(clean_log: SynthLog) -> None:
    camera = clean_log.frames[0].cameras["ring_front_center"]
    assert camera.semantics is not None and camera.instances is not None and camera.depth_m is not None
    labels = set(np.unique(camera.semantics).tolist())
    assert {CityscapesLabel.ROAD, CityscapesLabel.SKY} <= labels
    assert labels <= {0, 4, 7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 33}
    assert np.all(camera.depth_m[camera.semantics == CityscapesLabel.SKY] == 0)
    things = camera.instances >= 1000
    np.testing.assert_array_equal(camera.instances[things] // 1000, camera.semantics[things])
    assert camera.image.std() > 10


def test_vehicles_stay_on_the_drivable_area_and_follow_lanes(traffic_log: SynthLog) -> None:
    agents, network = traffic_log.agents, traffic_log.network
    assert agents is not None and network is not None
    vehicles = np.isin(agents.kind, (AgentKind.CAR, AgentKind.VAN, AgentKind.TRUCK, AgentKind.BUS, AgentKind.CYCLIST))
    centers = agents.center_m[:, vehicles, :2].reshape(-1, 2)
    assert np.all(network.on_drivable_area(centers))
    # Lane centre lines resampled every 0.2 m, so the distance to the nearest sample is the distance to the line.
    lanes = []
    for lane in network.lanes:
        arc = polyline_arc_m(lane.polyline_m)
        lanes.append(points_at_arc(lane.polyline_m, arc, np.arange(0.0, arc[-1], 0.2)))
    nearest, _ = cKDTree(np.concatenate(lanes)).query(centers)
    # Cars that stand at the kerb at some point (parked, pulling out or parking) leave the lanes on purpose.
    kerbside = (nearest.reshape(len(agents.center_m), -1) > 2.5).any(axis=0)
    moving = np.linalg.norm(agents.velocity_m_per_s[:, vehicles], axis=2) > 0.5
    on_lanes = nearest.reshape(moving.shape)[moving & ~kerbside]
    # Moving vehicles keep to a lane centre; those changing lanes (about 4 s each) pass half a lane width from both.
    assert np.median(on_lanes) < 0.15 and np.quantile(on_lanes, 0.9) < 0.75
    # Driving vehicles come first, before the pedestrians; parked cars come after them.
    driving = vehicles & (np.arange(agents.num_agents) < np.flatnonzero(agents.kind == AgentKind.PEDESTRIAN)[0])
    speeds = np.linalg.norm(agents.velocity_m_per_s[:, driving], axis=2)
    assert speeds.max() < 20.0 and np.mean(speeds > 1.0) > 0.5


def test_vehicles_turn_both_ways_and_go_straight(traffic_log: SynthLog) -> None:
    agents = traffic_log.agents
    assert agents is not None
    driving = np.arange(agents.num_agents) < np.flatnonzero(agents.kind == AgentKind.PEDESTRIAN)[0]
    turned = np.degrees(np.unwrap(agents.yaw_rad[:, driving], axis=0)[-1] - agents.yaw_rad[0, driving])
    moved = np.linalg.norm(agents.center_m[-1, driving, :2] - agents.center_m[0, driving, :2], axis=1) > 20.0
    assert np.sum(moved & (turned > 60)) >= 2 and np.sum(moved & (turned < -60)) >= 2
    assert np.sum(moved & (np.abs(turned) < 10)) >= 5


def test_vehicles_never_overlap_other_agents(traffic_log: SynthLog) -> None:
    agents = traffic_log.agents
    assert agents is not None
    pedestrian = agents.kind == AgentKind.PEDESTRIAN
    for t in range(0, len(traffic_log.frames), 2):
        corners = bev_box_corners(agents.center_m[t, :, :2], agents.size_lwh_m[:, :2], agents.yaw_rad[t])
        polygons = [Polygon(corner) for corner in corners]
        xy = agents.center_m[t, :, :2]
        close = np.linalg.norm(xy[:, None] - xy[None], axis=2) < 0.5 * (agents.size_lwh_m[:, None, 0] + agents.size_lwh_m[None, :, 0])
        for i, j in zip(*np.nonzero(np.triu(close, 1)), strict=True):
            if pedestrian[i] and pedestrian[j]:
                continue
            assert polygons[i].intersection(polygons[j]).area < 0.05, f"agents {i} and {j} overlap at frame {t}"


def test_pedestrians_keep_off_the_road_except_on_crosswalks(traffic_log: SynthLog) -> None:
    agents, network = traffic_log.agents, traffic_log.network
    assert agents is not None and network is not None
    xy = agents.center_m[:, agents.kind == AgentKind.PEDESTRIAN, :2].reshape(-1, 2)
    on_road = network.on_drivable_area(xy)
    assert on_road.mean() < 0.3
    near_crosswalk = network.on_crosswalk(xy) | network.on_crosswalk(xy + [1.0, 0.0]) | network.on_crosswalk(xy - [1.0, 0.0])
    near_crosswalk |= network.on_crosswalk(xy + [0.0, 1.0]) | network.on_crosswalk(xy - [0.0, 1.0])
    assert np.all(near_crosswalk[on_road])


def test_pedestrians_turn_corners_without_jumping(traffic_log: SynthLog) -> None:
    agents = traffic_log.agents
    assert agents is not None
    people = agents.kind == AgentKind.PEDESTRIAN
    turning = np.abs(np.diff(np.unwrap(agents.yaw_rad[:, people], axis=0), axis=0)) > np.radians(45)
    assert turning.sum() >= 3  # people turn corners in this log
    # The sideways offset moves onto the next edge's normal at a corner; walkers cut across to it instead of jumping,
    # never faster than the fastest pace (1.6 m/s) plus the sidestep.
    limit = 1.6 + PEDESTRIAN_SIDESTEP_M_PER_S + 1e-9
    step_m = np.linalg.norm(np.diff(agents.center_m[:, people, :2], axis=0), axis=2)
    assert np.all(step_m <= limit * np.diff(agents.timestamps_s)[:, None])
    assert np.linalg.norm(agents.velocity_m_per_s[:, people], axis=2).max() <= limit


def test_annotations_are_ego_frame_tracks_with_categories(traffic_log: SynthLog) -> None:
    tracks = traffic_log.ground_truth_tracks()
    assert len(tracks) == 80
    categories = set(np.concatenate([boxes.category for boxes in tracks.boxes]).tolist())
    assert {CATEGORY_ID["REGULAR_VEHICLE"], CATEGORY_ID["PEDESTRIAN"]} <= categories
    assert traffic_log.agents is not None
    ego_id = traffic_log.agents.track_ids[traffic_log.agents.ego_index]
    assert all(boxes.track_id is not None and ego_id not in boxes.track_id for boxes in tracks.boxes)
    # A track's city-frame displacement between frames matches its annotated velocity.
    first, second = tracks.boxes[40], tracks.boxes[41]
    assert first.track_id is not None and second.track_id is not None and first.velocity_m_per_s is not None
    common, a, b = np.intersect1d(first.track_id, second.track_id, return_indices=True)
    displacement = (second.center_m[b, :2] - first.center_m[a, :2]) / 0.1
    np.testing.assert_allclose(displacement, first.velocity_m_per_s[a], atol=1.5)


def test_ego_motion_matches_the_poses(traffic_log: SynthLog) -> None:
    motion = traffic_log.ego_motion()
    positions = np.array([pose.translation for pose in motion.city_SE3_ego])
    speed_from_poses = np.linalg.norm(np.diff(positions, axis=0), axis=1) / 0.1
    np.testing.assert_allclose(speed_from_poses, 0.5 * (motion.velocity_m_per_s[:-1, 0] + motion.velocity_m_per_s[1:, 0]), atol=0.4)
    yaws = np.unwrap([pose.yaw_rad for pose in motion.city_SE3_ego])
    np.testing.assert_allclose(np.diff(yaws) / 0.1, motion.angular_rate_rad_per_s[:-1, 2], atol=0.15)


def test_lane_graph_topology_is_consistent() -> None:
    network = build_road_network(get_style("default").layout)
    graph = network.lane_graph("SYD")
    ids = set(graph.lane_ids.tolist())
    for index, successors in enumerate(graph.successors):
        assert successors, "every lane continues somewhere (no dead ends on a grid)"
        for successor in successors:
            np.testing.assert_allclose(graph.centerlines_m[index, -1], graph.centerlines_m[graph.index_of(successor), 0], atol=1e-9)
    for index, lane_id in enumerate(graph.lane_ids):
        for neighbour, back in ((graph.left_neighbor_id, graph.right_neighbor_id), (graph.right_neighbor_id, graph.left_neighbor_id)):
            if neighbour[index] >= 0:
                assert neighbour[index] in ids
                assert back[graph.index_of(int(neighbour[index]))] == lane_id
                gap = np.linalg.norm(graph.centerlines_m[index] - graph.centerlines_m[graph.index_of(int(neighbour[index]))], axis=1)
                np.testing.assert_allclose(gap, network.layout.lane_width_m, atol=1e-6)
    drivable = graph.rasters["drivable_area"]
    assert np.all(drivable.lookup(graph.centerlines_m.reshape(-1, 3)[:, :2]) == 1)
    assert graph.left_boundaries_m is not None
    assert np.all(drivable.lookup(graph.left_boundaries_m.reshape(-1, 3)[:, :2]) == 1)
    turns = {lane.turn for lane in network.lanes if lane.is_intersection}
    assert turns == {"straight", "left", "right"}


def test_styles_differ_and_are_selected_by_name() -> None:
    assert len(style_names()) >= 4
    layouts = {get_style(name).layout for name in style_names()}
    assert len(layouts) == len(style_names())
    config = {**TINY, "seconds": 0.1, "lidar_beams": None}
    means = {
        name: simulate_log(SynthConfig(**{**config, "style": name}), seed=0).frames[0].cameras["ring_front_center"].image.mean(axis=(0, 1))
        for name in ("default", "night", "fog")
    }
    assert means["night"].mean() < 0.5 * means["default"].mean()
    assert np.ptp(means["fog"]) < np.ptp(means["default"])
    with pytest.raises(ValueError, match="unknown synthetic-city style 'mars'"):
        get_style("mars")


def test_bad_config_names_the_key() -> None:
    with pytest.raises(ConfigError, match="style"):
        validate_config({"style": "mars"}, SynthConfig, "synth.yaml")
    with pytest.raises(ConfigError, match="unknown key 'beams'"):
        validate_config({"beams": 32}, SynthConfig, "synth.yaml")
    with pytest.raises(ConfigError, match="cameras"):
        validate_config({"cameras": ["front"]}, SynthConfig, "synth.yaml")


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    yaw=st.floats(-np.pi, np.pi),
    size=st.tuples(st.floats(0.2, 6.0), st.floats(0.2, 3.0), st.floats(0.2, 4.0)),
)
def test_point_count_kernel_matches_points_in_box_mask(seed: int, yaw: float, size: tuple[float, float, float]) -> None:
    rng = np.random.default_rng(seed)
    points = rng.uniform(-4.0, 4.0, (500, 3))
    center = rng.uniform(-1.0, 1.0, (1, 3))
    counts = count_points_in_boxes(points, center, np.array([size]), np.array([yaw]))
    assert counts[0] == points_in_box_mask(points, center[0], size, yaw).sum()


@settings(max_examples=20, deadline=None)
@given(points=st.lists(st.tuples(*[st.floats(-1e4, 1e4)] * 3), min_size=1, max_size=20), scale=st.floats(0.1, 10.0))
def test_solid_texture_noise_is_bounded_and_a_function_of_position(points: list[tuple[float, float, float]], scale: float) -> None:
    array = np.array(points)
    noise = value_noise(array, scale, 3)
    assert np.all((noise >= 0.0) & (noise < 1.0))
    np.testing.assert_array_equal(noise, value_noise(array.copy(), scale, 3))


def test_preview_writes_a_png_with_the_bev_and_camera_panels(clean_log: SynthLog, tmp_path) -> None:
    from PIL import Image

    from scenes.synth.preview import write_preview

    path = tmp_path / "preview.png"
    write_preview(clean_log, 1, path)
    image = np.asarray(Image.open(path))
    assert image.shape[1] > image.shape[0] > 500
    assert len(np.unique(image.reshape(-1, image.shape[2]), axis=0)) > 100
    with pytest.raises(IndexError, match="outside the log"):
        write_preview(clean_log, len(clean_log.frames), path)


def test_too_many_vehicles_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no room left on the lanes"):
        simulate_log(SynthConfig(seconds=0.1, lidar_beams=None, cameras=(), style="fog", num_vehicles=5000), seed=0)
