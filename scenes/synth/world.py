"""The synthetic city's entry point: `simulate_log(config, seed, index) -> SynthLog`.

A log is deterministic in `(config, seed, index)`: the city, the traffic, the LiDAR noise and the camera noise each
draw from their own stream of one `numpy.random.SeedSequence((seed, index))`, so switching a sensor off does not
change the rest of the log.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
from pydantic import Field, field_validator
from rich.progress import Progress

from scenes.config import StrictConfig
from scenes.geometry import SE3
from scenes.parallel import map_logs
from scenes.records import Boxes3D, CameraFrame, Frame, LaneGraph, Tracks, TrafficSignalStates
from scenes.synth.agents import TrafficConfig, Trajectories, simulate_traffic
from scenes.synth.camera import CAMERA_MOUNTS, ego_SE3_camera, render_camera
from scenes.synth.kernels import count_points_in_boxes
from scenes.synth.lidar import (
    RIG_NAMES,
    FrameScene,
    LidarModel,
    LidarMount,
    LidarRig,
    StaticScene,
    agent_reflectance,
    beam_elevations_deg,
    dataset_rig,
    simulate_rig_sweep,
)
from scenes.synth.meshes import Mesh, build_agent_mesh, build_city_mesh
from scenes.synth.roads import RoadNetwork, build_road_network
from scenes.synth.styles import STYLES, Style, get_style

__all__ = ["EgoMotion", "SynthConfig", "SynthLog", "simulate_log", "LIDAR_NAME"]

LIDAR_NAME: Final = "up_lidar"
EGO_SE3_LIDAR: Final = SE3(np.eye(3), np.array([1.35, 0.0, 1.95]))
# First timestamp of log `index` (nanoseconds): logs of one seed never overlap in time.
START_NS: Final = 1_700_000_000 * 10**9
LOG_SPACING_NS: Final = 3600 * 10**9


class SynthConfig(StrictConfig):
    """How one synthetic log is simulated (durations in seconds, distances in metres, images in pixels)."""

    seconds: float = Field(15.0, gt=0)
    rate_hz: float = Field(10.0, gt=0, le=100)
    lidar_beams: int | None = Field(32, ge=1, le=256)
    lidar_azimuth_steps: int = Field(1800, ge=16)
    lidar_max_range_m: float = Field(200.0, gt=0)
    lidar_range_noise_m: float = Field(0.02, ge=0)
    lidar_dropout: float = Field(0.05, ge=0, lt=1)
    lidar_rig: str = "single"
    street_clutter: bool = True
    # People as bright in the LiDAR as on the real samples, each with its own clothing (`scenes.synth.lidar`,
    # `BRIGHT_PERSON_REFLECTIVITY`); off, they are darker than most of a sweep, the city the shipped detector was
    # trained on.
    bright_people: bool = False
    # Each vehicle with its own paint, from nearly black to brighter than most of a sweep, as real vehicles
    # (`scenes.synth.lidar.PAINT_REFLECTANCE_RANGE`); off, every vehicle of a category is equally bright.
    vehicle_paint: bool = False
    # A third of the people walking in groups of two and three, as in the real AV2 log (`scenes.synth.agents`,
    # `GROUP_SIZE_P`); off, everyone walks alone.
    pedestrian_groups: bool = False
    cameras: tuple[str, ...] = ("ring_front_center",)
    image_width_px: int = Field(320, ge=16, le=4096)
    image_height_px: int = Field(192, ge=16, le=4096)
    style: str = "default"
    annotation_range_m: float = Field(100.0, gt=0)
    render_range_m: float = Field(150.0, gt=0)
    num_vehicles: int | None = Field(None, ge=0)
    num_pedestrians: int | None = Field(None, ge=0)
    num_cyclists: int | None = Field(None, ge=0)
    num_static_objects: int | None = Field(None, ge=0)
    warmup_s: float = Field(2.0, ge=0)
    progress: bool = False

    @field_validator("style")
    @classmethod
    def _known_style(cls, value: str) -> str:
        if value not in STYLES:
            raise ValueError(f"unknown style {value!r}; known: {', '.join(STYLES)}")
        return value

    @field_validator("lidar_rig")
    @classmethod
    def _known_rig(cls, value: str) -> str:
        if value not in RIG_NAMES:
            raise ValueError(f"unknown LiDAR rig {value!r}; known: {', '.join(RIG_NAMES)}")
        return value

    @field_validator("cameras")
    @classmethod
    def _known_cameras(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in CAMERA_MOUNTS]
        if unknown:
            raise ValueError(f"unknown cameras {unknown}; known: {', '.join(CAMERA_MOUNTS)}")
        if len(set(value)) != len(value):
            raise ValueError(f"a camera is listed twice: {list(value)}")
        return value

    def lidar_rig_model(self) -> LidarRig | None:
        """The LiDARs to simulate: `lidar_rig` (a dataset's rig, or `single`: one `lidar_beams` LiDAR on the roof);
        None when `lidar_beams` is None (no LiDAR)."""
        single = self.lidar_model()
        if single is None:
            return None
        if self.lidar_rig == "single":
            return LidarRig("single", (LidarMount(LIDAR_NAME, EGO_SE3_LIDAR, single),))
        return dataset_rig(self.lidar_rig, range_noise_std_m=self.lidar_range_noise_m, dropout=self.lidar_dropout)

    def lidar_model(self) -> LidarModel | None:
        if self.lidar_beams is None:
            return None
        return LidarModel(
            beam_elevations_deg(self.lidar_beams),
            self.lidar_azimuth_steps,
            self.lidar_max_range_m,
            range_noise_std_m=self.lidar_range_noise_m,
            dropout=self.lidar_dropout,
        )


@dataclass(frozen=True, eq=False)
class EgoMotion:
    """IMU/OXTS-like ego stream at the frame timestamps, ego frame (x forward, y left, z up).

    `acceleration_m_per_s2` is the kinematic acceleration (longitudinal, centripetal), without gravity.
    """

    timestamps_ns: np.ndarray
    city_SE3_ego: tuple[SE3, ...]
    velocity_m_per_s: np.ndarray
    acceleration_m_per_s2: np.ndarray
    angular_rate_rad_per_s: np.ndarray


@dataclass(frozen=True, eq=False)
class SynthLog:
    """One simulated drive: per-LiDAR-timestamp frames, the city's lane graph and the sensor calibration.

    `agents` holds every simulated agent (ego at `agents.ego_index`, unannotated ones too) and `network`/`city_mesh`
    the static world, so any frame's scene can be rebuilt (`frame_scene`).
    """

    log_id: str
    city_name: str
    style: str
    frames: tuple[Frame, ...]
    lane_graph: LaneGraph
    ego_SE3_sensors: Mapping[str, SE3]
    agents: Trajectories | None = None
    network: RoadNetwork | None = None
    city_mesh: Mesh | None = None

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def timestamps_ns(self) -> np.ndarray:
        return np.array([frame.timestamp_ns for frame in self.frames], dtype=np.int64)

    @property
    def traffic_signals(self) -> TrafficSignalStates | None:
        """The signals' states at every frame (None without the simulated agents)."""
        if self.agents is None:
            return None
        stop_points = self.agents.signal_stop_points_m
        return TrafficSignalStates(
            self.timestamps_ns, self.agents.signal_lane_ids, np.hstack([stop_points, np.zeros((len(stop_points), 1))]), self.agents.signal_state
        )

    def ground_truth_tracks(self) -> Tracks:
        """City-frame boxes of every annotated agent, one `Boxes3D` per frame."""
        boxes = []
        for frame in self.frames:
            annotations = frame.annotations if frame.annotations is not None else Boxes3D.empty(with_tracks=True)
            boxes.append(annotations.transformed(frame.city_SE3_ego, "city"))
        return Tracks(self.log_id, self.timestamps_ns, tuple(boxes))

    def ego_motion(self) -> EgoMotion:
        """Velocity, acceleration and yaw rate of the ego vehicle at every frame (from the simulated dynamics)."""
        if self.agents is None:
            raise ValueError(f"SynthLog {self.log_id}: no agent states to derive the ego motion from")
        speed = self.agents.ego_speed_m_per_s
        yaw_rate = self.agents.ego_yaw_rate_rad_per_s
        zeros = np.zeros_like(speed)
        return EgoMotion(
            self.timestamps_ns,
            tuple(frame.city_SE3_ego for frame in self.frames),
            np.stack([speed, zeros, zeros], axis=1),
            np.stack([self.agents.ego_acceleration_m_per_s2, speed * yaw_rate, zeros], axis=1),
            np.stack([zeros, zeros, yaw_rate], axis=1),
        )

    def frame_scene(self, index: int) -> FrameScene:
        """The ray-casting scene (city and every agent but the ego) of frame `index`, for geometric queries (people at
        the default reflectivity)."""
        if self.agents is None or self.network is None or self.city_mesh is None:
            raise ValueError(f"SynthLog {self.log_id}: the static world and agents are needed to rebuild a scene")
        others = np.flatnonzero(np.arange(self.agents.num_agents) != self.agents.ego_index)
        return FrameScene(StaticScene(self.network, self.city_mesh), build_agent_mesh(self.agents, index, others))


def _seed_streams(seed: int, index: int) -> list[np.random.SeedSequence]:
    """The map, traffic, LiDAR, camera and log-id streams of log `index` of `seed`."""
    return np.random.SeedSequence((seed, index)).spawn(5)


def log_id(seed: int, index: int) -> str:
    """The id `simulate_log(config, seed, index)` gives its log, whatever the config, without simulating it."""
    ids = np.random.default_rng(_seed_streams(seed, index)[4])
    return str(uuid.UUID(int=int(ids.integers(0, 2**62)) << 64 | int(ids.integers(0, 2**62)), version=4))


def _city_SE3_ego(agents: Trajectories, frame_index: int) -> SE3:
    """Ego frame: origin on the ground below the rear axle (a wheelbase of 0.6 box lengths), x forward."""
    ego = agents.ego_index
    yaw = float(agents.yaw_rad[frame_index, ego])
    rear_offset = 0.3 * agents.size_lwh_m[ego, 0]
    center = agents.center_m[frame_index, ego, :2]
    rear = center - rear_offset * np.array([np.cos(yaw), np.sin(yaw)])
    ground = agents.center_m[frame_index, ego, 2] - 0.5 * agents.size_lwh_m[ego, 2]
    return SE3.from_yaw(yaw, [rear[0], rear[1], ground])


def _agent_colors(style: Style, agents: Trajectories) -> np.ndarray:
    colors = np.asarray(style.vehicle_colors, dtype=np.float64) / 255.0
    return colors[agents.color_index % len(colors)]


def simulate_log(config: SynthConfig, seed: int, index: int = 0) -> SynthLog:
    """Simulates one log: deterministic in `(config, seed, index)`."""
    style = get_style(config.style)
    map_seq, traffic_seq, lidar_seq, camera_seq, _ = _seed_streams(seed, index)
    log_uuid = log_id(seed, index)
    network = build_road_network(style.layout)
    city_mesh = build_city_mesh(network, np.random.default_rng(map_seq), clutter=config.street_clutter)
    lane_graph = network.lane_graph(style.city_code)
    num_frames = max(1, int(round(config.seconds * config.rate_hz)))
    start_ns = START_NS + index * LOG_SPACING_NS
    timestamps_ns = start_ns + np.round(np.arange(num_frames) / config.rate_hz * 1e9).astype(np.int64)
    traffic = TrafficConfig(
        num_vehicles=config.num_vehicles,
        num_pedestrians=config.num_pedestrians,
        num_cyclists=config.num_cyclists,
        num_static_objects=config.num_static_objects,
        warmup_s=config.warmup_s,
        pedestrian_groups=config.pedestrian_groups,
        # At least 10 Hz physics, an integer number of steps per recorded frame.
        physics_hz=config.rate_hz * max(1, int(np.ceil(10.0 / config.rate_hz))),
    )
    agents = simulate_traffic(network, traffic, (timestamps_ns - start_ns) / 1e9, np.random.default_rng(traffic_seq))
    lidar_rig = config.lidar_rig_model()
    lidar_rng, camera_rng = np.random.default_rng(lidar_seq), np.random.default_rng(camera_seq)
    colors = _agent_colors(style, agents)
    reflectance = agent_reflectance(agents.kind, agents.color_index, bright_people=config.bright_people, vehicle_paint=config.vehicle_paint)
    sensors: dict[str, SE3] = {name: ego_SE3_camera(name) for name in config.cameras}
    if lidar_rig is not None:
        sensors.update({mount.name: mount.ego_SE3_lidar for mount in lidar_rig.mounts})
    not_ego = np.arange(agents.num_agents) != agents.ego_index
    static_scene = StaticScene(network, city_mesh)
    frames = []
    with Progress(disable=not config.progress, transient=True) as progress:
        task = progress.add_task(f"simulating log {index} ({config.style})", total=num_frames)
        for frame_index, timestamp_ns in enumerate(timestamps_ns.tolist()):
            city_SE3_ego = _city_SE3_ego(agents, frame_index)
            ego_xy = city_SE3_ego.translation[:2]
            distance = np.linalg.norm(agents.center_m[frame_index, :, :2] - ego_xy, axis=1)
            annotated = np.flatnonzero(not_ego & (distance <= config.annotation_range_m))
            boxes = Boxes3D(
                agents.center_m[frame_index, annotated],
                agents.size_lwh_m[annotated],
                agents.yaw_rad[frame_index, annotated],
                agents.category[annotated],
                velocity_m_per_s=agents.velocity_m_per_s[frame_index, annotated],
                track_id=agents.track_ids[annotated],
                frame="city",
            ).transformed(city_SE3_ego.inverse(), "ego")
            sweep = None
            cameras: dict[str, CameraFrame] = {}
            if lidar_rig is not None or config.cameras:
                rendered = np.flatnonzero(not_ego & (distance <= config.render_range_m))
                scene = FrameScene(static_scene, build_agent_mesh(agents, frame_index, rendered), reflectance)
                if lidar_rig is not None:
                    sweep = simulate_rig_sweep(scene, lidar_rig, city_SE3_ego, timestamp_ns, lidar_rng, network.marking)
                    interior = count_points_in_boxes(sweep.points_xyz_m.astype(np.float64), boxes.center_m, boxes.size_lwh_m, boxes.yaw_rad)
                    boxes = replace(boxes, num_interior_pts=interior)
                for name in config.cameras:
                    cameras[name] = render_camera(
                        scene, name, city_SE3_ego, config.image_width_px, config.image_height_px, timestamp_ns, style, camera_rng, colors, network.marking
                    )
            frames.append(Frame(log_uuid, timestamp_ns, city_SE3_ego, sweep, cameras, boxes))
            progress.advance(task)
    return SynthLog(log_uuid, style.city_code, config.style, tuple(frames), lane_graph, sensors, agents, network, city_mesh)


def _simulate_job(job: tuple[SynthConfig, int, int]) -> SynthLog:
    config, seed, index = job
    return simulate_log(config, seed, index)


def simulate_logs(
    config: SynthConfig, seed: int, count: int, workers: int | None = None, address: str | None = None
) -> list[SynthLog]:
    """Logs 0..count-1 of the synthetic city, simulated in parallel Ray tasks when `workers` is given.

    `simulate_log` is deterministic in (config, seed, index), so the result does not depend on `workers`.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    jobs = [(config, seed, index) for index in range(count)]
    return map_logs(_simulate_job, jobs, workers, address, description="simulating logs")
