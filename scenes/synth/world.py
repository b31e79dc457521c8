"""The synthetic city's entry point: `simulate_log(config, seed, index) -> SynthLog`.

A log is deterministic in `(config, seed, index)`: the city layout, the traffic and every sensor's noise come from one
`numpy.random.Generator` seeded with `(seed, index)`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from scenes.categories import CATEGORY_ID
from scenes.config import StrictConfig
from scenes.geometry import SE3
from scenes.records import Boxes3D, Frame, LaneGraph, Tracks

__all__ = ["SynthConfig", "SynthLog", "simulate_log"]


class SynthConfig(StrictConfig):
    """How one synthetic log is simulated (durations in seconds, distances in metres)."""

    seconds: float = Field(15.0, gt=0)
    rate_hz: float = Field(10.0, gt=0)
    lidar_beams: int | None = 32
    cameras: tuple[str, ...] = ("ring_front_center",)
    style: str = "default"


@dataclass(frozen=True)
class SynthLog:
    """One simulated drive: per-LiDAR-timestamp frames, the city's lane graph and the sensor calibration."""

    log_id: str
    city_name: str
    style: str
    frames: tuple[Frame, ...]
    lane_graph: LaneGraph
    ego_SE3_sensors: Mapping[str, SE3]

    def ground_truth_tracks(self) -> Tracks:
        """City-frame boxes of every annotated agent, one `Boxes3D` per frame."""
        boxes = []
        for frame in self.frames:
            annotations = frame.annotations if frame.annotations is not None else Boxes3D.empty(with_tracks=True)
            boxes.append(annotations.transformed(frame.city_SE3_ego, "city"))
        timestamps = np.array([frame.timestamp_ns for frame in self.frames], dtype=np.int64)
        return Tracks(self.log_id, timestamps, tuple(boxes))


def _straight_road(city_name: str) -> LaneGraph:
    xs = np.linspace(-500.0, 500.0, 11)
    lanes = np.stack([np.stack([xs, np.full_like(xs, y), np.zeros_like(xs)], axis=1) for y in (-1.75, 1.75)])
    lanes[1] = lanes[1][::-1]
    return LaneGraph(
        city_name,
        np.array([0, 1]),
        lanes,
        ((), ()),
        np.array([-1, -1]),
        np.array([-1, -1]),
        np.array([False, False]),
        drivable_areas_m=(np.array([[-500.0, -3.5, 0.0], [500.0, -3.5, 0.0], [500.0, 3.5, 0.0], [-500.0, 3.5, 0.0]]),),
    )


def simulate_log(config: SynthConfig, seed: int, index: int = 0) -> SynthLog:
    """Simulates one log: deterministic in `(config, seed, index)`."""
    rng = np.random.default_rng([seed, index])
    log_id = str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | int(rng.integers(0, 2**63)), version=4))
    city_name = "SYN"
    num_agents = 8
    lane_y = np.where(rng.random(num_agents) < 0.5, -1.75, 1.75)
    speed = rng.uniform(5.0, 12.0, num_agents) * np.where(lane_y < 0, 1.0, -1.0)
    start_x = rng.uniform(-80.0, 80.0, num_agents)
    track_ids = np.array([str(uuid.UUID(int=int(rng.integers(0, 2**63)), version=4)) for _ in range(num_agents)])
    frames = []
    ego_speed = 8.0
    for step in range(int(round(config.seconds * config.rate_hz))):
        t = step / config.rate_hz
        city_SE3_ego = SE3.from_yaw(0.0, [ego_speed * t, -1.75, 0.0])
        centers = np.stack([start_x + speed * t, lane_y, np.full(num_agents, 0.8)], axis=1)
        yaw = np.where(speed > 0, 0.0, np.pi)
        boxes_city = Boxes3D(
            centers,
            np.tile([4.5, 1.9, 1.6], (num_agents, 1)),
            yaw,
            np.full(num_agents, CATEGORY_ID["REGULAR_VEHICLE"]),
            velocity_m_per_s=np.stack([speed, np.zeros(num_agents)], axis=1),
            track_id=track_ids,
            frame="city",
        )
        frames.append(
            Frame(log_id, int(round(t * 1e9)) + 1_000_000_000, city_SE3_ego, annotations=boxes_city.transformed(city_SE3_ego.inverse(), "ego"))
        )
    return SynthLog(log_id, city_name, config.style, tuple(frames), _straight_road(city_name), {})
