"""From records to network inputs: agent states on a regular time grid, then agent-centric feature arrays.

Every source (tracker outputs, synthetic ground truth, AV2 motion-forecasting or nuScenes scenarios) is first put on
the forecaster's time grid (`history_steps` observed steps ending at the prediction time, `horizon_steps` future
steps, `step_s` apart) as a `Scenario`; states are matched to grid times by nearest timestamp within a quarter step,
so 10 Hz and 2 Hz inputs, and tracks with gaps, all work. `encode_scenario` then expresses one agent's history, its
neighbours' histories and the nearby lane segments in the agent's frame (origin: its current position; +x: its
current heading) and pads/masks what is missing.

A state's heading is its box yaw, or with `heading_source: motion` the direction of its velocity wherever it moves at
`motion_heading_min_speed_m_per_s` or more. Ground-truth yaws and motion agree, but a tracker's box yaws do not: on the
shipped detector and tracker's outputs over the seed-0 training logs, 11.7% of the boxes of agents moving at 1-2 m/s
face backwards (velocity direction: 2.5%), and 32% of all moving ones are off by more than 20 degrees (velocity: 10%).
A forecaster trained on ground truth in the yaw frame reads a backwards-facing car as reversing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Final

import numpy as np
import torch
from rich.progress import Progress
from scipy.spatial import cKDTree

from forecasting.config import SIGNAL_CHANNELS, FeatureConfig
from forecasting.lane_goals import LanePaths, agent_paths, path_points
from scenes.geometry import points_at_arc, polyline_arc_m, wrap_angle
from scenes.records import LaneGraph, Scenario, SignalState, Tracks, TrafficSignalStates

STATE_DIM: Final = 7  # x, y, vx, vy, cos(heading), sin(heading), observed

__all__ = [
    "STATE_DIM",
    "LaneSegments",
    "FeatureBatch",
    "grid_timestamps_ns",
    "scenario_from_tracks",
    "resample_scenario",
    "scenarios_from_tracks",
    "encode_scenario",
    "build_samples",
]


@dataclass(frozen=True)
class LaneSegments:
    """Lane centerlines cut into pieces of about equal length, resampled to a fixed number of points (city frame)."""

    points_m: np.ndarray  # (S, P, 2)
    is_intersection: np.ndarray  # (S,)
    lane_ids: np.ndarray  # (S,) int64: the lane each piece belongs to
    signal_lanes: Mapping[int, tuple[int, ...]]  # lane id -> the lanes whose signal governs it (itself, or its successors)
    tree: cKDTree | None
    paths: LanePaths  # the whole centerlines and their successors, for goal candidates

    @classmethod
    def from_lane_graph(cls, lane_graph: LaneGraph | None, segment_length_m: float, num_points: int) -> LaneSegments:
        if lane_graph is None or not len(lane_graph):
            return cls(np.zeros((0, num_points, 2)), np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64), {}, None, LanePaths.from_lane_graph(None))
        pieces: list[np.ndarray] = []
        flags: list[bool] = []
        owners: list[int] = []
        for lane_id, centerline, intersection in zip(
            lane_graph.lane_ids.tolist(), lane_graph.centerlines_m[..., :2], lane_graph.is_intersection, strict=True
        ):
            arc = polyline_arc_m(centerline)
            if arc[-1] <= 0:
                continue
            count = max(1, int(np.ceil(arc[-1] / segment_length_m)))
            bounds = np.linspace(0.0, arc[-1], count + 1)
            for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
                pieces.append(points_at_arc(centerline, arc, np.linspace(start, stop, num_points)))
                flags.append(bool(intersection))
                owners.append(lane_id)
        points = np.stack(pieces) if pieces else np.zeros((0, num_points, 2))
        tree = cKDTree(points.reshape(-1, 2)) if len(points) else None
        # A lane is governed by its own signal and, when it has none, by the signals of the lanes it leads into.
        signal_lanes = {
            int(lane_id): (int(lane_id), *successors) for lane_id, successors in zip(lane_graph.lane_ids, lane_graph.successors, strict=True)
        }
        return cls(points, np.array(flags, dtype=bool), np.array(owners, dtype=np.int64), signal_lanes, tree, LanePaths.from_lane_graph(lane_graph))

    def signal_channels(self, signals: Mapping[int, SignalState]) -> np.ndarray:
        """`(S, len(SIGNAL_CHANNELS))` one-hot state of the signal governing each piece: the lane's own signal, else the
        most restrictive of the signals of the lanes it leads into; all zero where none is known."""
        channels = np.zeros((len(self.lane_ids), len(SIGNAL_CHANNELS)), np.float32)
        if not signals:
            return channels
        states: dict[int, SignalState] = {}
        for lane_id in np.unique(self.lane_ids).tolist():
            governing = self.signal_lanes.get(lane_id, (lane_id,))
            own = signals.get(governing[0], SignalState.UNKNOWN)
            ahead = [signals[lane] for lane in governing[1:] if signals.get(lane, SignalState.UNKNOWN) != SignalState.UNKNOWN]
            state = own if own != SignalState.UNKNOWN else min(ahead, default=SignalState.UNKNOWN)
            if state != SignalState.UNKNOWN:
                states[lane_id] = state
        for column, channel in enumerate(SIGNAL_CHANNELS):
            governed = [lane for lane, state in states.items() if state == channel]
            channels[np.isin(self.lane_ids, governed), column] = 1.0
        return channels

    def near(self, center_xy_m: np.ndarray, radius_m: float, count: int) -> np.ndarray:
        """Indices of the `count` segments passing closest to `center_xy_m` within `radius_m`, nearest first."""
        if self.tree is None or count == 0:
            return np.zeros(0, dtype=np.int64)
        hits = np.asarray(self.tree.query_ball_point(center_xy_m, radius_m), dtype=np.int64)
        if not len(hits):
            return np.zeros(0, dtype=np.int64)
        num_points = self.points_m.shape[1]
        segments = hits // num_points
        distances = np.linalg.norm(self.points_m.reshape(-1, 2)[hits] - center_xy_m, axis=1)
        best: dict[int, float] = {}
        for segment, distance in zip(segments.tolist(), distances.tolist(), strict=True):
            if distance < best.get(segment, np.inf):
                best[segment] = distance
        ranked = sorted(best, key=lambda segment: (best[segment], segment))
        return np.array(ranked[:count], dtype=np.int64)


@dataclass(frozen=True)
class FeatureBatch:
    """Agent-centric inputs and targets of `B` samples (float32 unless stated)."""

    history: np.ndarray  # (B, H, STATE_DIM)
    neighbors: np.ndarray  # (B, N, H, STATE_DIM)
    neighbor_mask: np.ndarray  # (B, N) bool
    lanes: np.ndarray  # (B, M, P, features.lane_point_dim)
    lane_mask: np.ndarray  # (B, M) bool
    category: np.ndarray  # (B,) int64
    future_m: np.ndarray  # (B, F, 2) agent frame, metres
    future_valid: np.ndarray  # (B, F) bool
    goal_paths_m: np.ndarray  # (B, Q, P, 2) agent frame, metres: goal candidates' paths (Q = 0 without lane goals)
    goal_path_valid: np.ndarray  # (B, Q) bool
    goal_path_on_lane: np.ndarray  # (B, Q) bool: False for the straight rays
    origin_xy_m: np.ndarray  # (B, 2) city frame, float64
    heading_rad: np.ndarray  # (B,) float64

    def __len__(self) -> int:
        return int(self.history.shape[0])

    def select(self, index: np.ndarray | slice) -> FeatureBatch:
        return FeatureBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concatenate(parts: Sequence[FeatureBatch]) -> FeatureBatch:
        if not parts:
            raise ValueError("FeatureBatch.concatenate: nothing to concatenate")
        return FeatureBatch(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(FeatureBatch)})

    def to_torch(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Network inputs and targets as tensors (city-frame origin and heading stay out: the network never sees them)."""
        names = (
            "history", "neighbors", "neighbor_mask", "lanes", "lane_mask", "category", "future_m", "future_valid",
            "goal_paths_m", "goal_path_valid", "goal_path_on_lane",
        )  # fmt: skip
        return {name: torch.from_numpy(np.ascontiguousarray(getattr(self, name))).to(device) for name in names}

    def to_city(self, trajectories_agent_m: np.ndarray) -> np.ndarray:
        """Agent-frame trajectories `(B, K, T, 2)` to the city frame."""
        cos, sin = np.cos(self.heading_rad), np.sin(self.heading_rad)
        rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (B, 2, 2) city_R_agent
        return np.einsum("bij,bktj->bkti", rotation, trajectories_agent_m) + self.origin_xy_m[:, None, None, :]


def grid_timestamps_ns(current_ns: int, features: FeatureConfig) -> np.ndarray:
    """Times of the history (ending at `current_ns`) and horizon steps."""
    offsets = np.arange(-(features.history_steps - 1), features.horizon_steps + 1)
    return current_ns + np.round(offsets * features.step_s * 1e9).astype(np.int64)


def _grid_tolerance_ns(features: FeatureConfig) -> int:
    """How far a recorded time may lie from a grid time and still stand for it: a quarter of a step."""
    return int(0.25 * features.step_s * 1e9)


def _nearest_slots(source_ns: np.ndarray, grid_ns: np.ndarray, tolerance_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """For each grid time, the index of the nearest source time and whether it lies within `tolerance_ns`."""
    right = np.clip(np.searchsorted(source_ns, grid_ns), 0, len(source_ns) - 1)
    left = np.clip(right - 1, 0, len(source_ns) - 1)
    pick = np.where(np.abs(source_ns[left] - grid_ns) <= np.abs(source_ns[right] - grid_ns), left, right)
    return pick, np.abs(source_ns[pick] - grid_ns) <= tolerance_ns


@dataclass(frozen=True)
class _DenseTracks:
    """All states of a `Tracks` record as dense (agents, timestamps) arrays."""

    log_id: str
    timestamps_ns: np.ndarray
    agent_ids: np.ndarray
    category: np.ndarray
    xy_m: np.ndarray
    heading_rad: np.ndarray
    velocity_m_per_s: np.ndarray
    valid: np.ndarray

    @classmethod
    def from_tracks(cls, tracks: Tracks) -> _DenseTracks:
        agent_ids = tracks.track_ids
        lookup = {agent: row for row, agent in enumerate(agent_ids.tolist())}
        shape = (len(agent_ids), len(tracks))
        xy = np.zeros((*shape, 2))
        heading = np.zeros(shape)
        velocity = np.full((*shape, 2), np.nan)
        valid = np.zeros(shape, dtype=bool)
        category = np.zeros(len(agent_ids), dtype=np.int64)
        for column, boxes in enumerate(tracks.boxes):
            if not len(boxes):
                continue
            assert boxes.track_id is not None  # Tracks requires track ids
            rows = np.array([lookup[agent] for agent in boxes.track_id.tolist()], dtype=np.int64)
            xy[rows, column] = boxes.center_m[:, :2]
            heading[rows, column] = boxes.yaw_rad
            valid[rows, column] = True
            category[rows] = boxes.category
            if boxes.velocity_m_per_s is not None:
                velocity[rows, column] = boxes.velocity_m_per_s
        return cls(tracks.log_id, tracks.timestamps_ns, agent_ids, category, xy, heading, velocity, valid)


def _finite_difference_velocity(xy_m: np.ndarray, valid: np.ndarray, step_s: float) -> np.ndarray:
    """Backward differences between consecutive observed grid steps (forward at a track's first step)."""
    velocity = np.zeros_like(xy_m)
    backward = valid[:, 1:] & valid[:, :-1]
    delta = (xy_m[:, 1:] - xy_m[:, :-1]) / step_s
    velocity[:, 1:][backward] = delta[backward]
    first_only = valid[:, :-1] & ~np.concatenate([np.zeros((len(valid), 1), bool), valid[:, :-2]], axis=1) & valid[:, 1:]
    velocity[:, :-1][first_only] = delta[first_only]
    return velocity


def _grid_scenario(
    dense: _DenseTracks,
    scenario_id: str,
    city_name: str,
    current_ns: int,
    features: FeatureConfig,
    lane_graph: LaneGraph | None,
    traffic_signals: TrafficSignalStates | None = None,
) -> Scenario:
    grid = grid_timestamps_ns(current_ns, features)
    slots, hit = _nearest_slots(dense.timestamps_ns, grid, _grid_tolerance_ns(features))
    valid = dense.valid[:, slots] & hit[None, :]
    xy = np.where(valid[..., None], dense.xy_m[:, slots], 0.0)
    heading = np.where(valid, dense.heading_rad[:, slots], 0.0)
    measured = dense.velocity_m_per_s[:, slots]
    estimated = _finite_difference_velocity(xy, valid, features.step_s)
    velocity = np.where(np.isfinite(measured) & valid[..., None], measured, estimated)
    velocity = np.where(valid[..., None], velocity, 0.0)
    if features.heading_source == "motion":
        moving = valid & (np.linalg.norm(velocity, axis=-1) >= features.motion_heading_min_speed_m_per_s)
        heading = np.where(moving, np.arctan2(velocity[..., 1], velocity[..., 0]), heading)
    current = features.history_steps - 1
    present = valid[:, current]
    return Scenario(
        scenario_id,
        city_name,
        grid,
        dense.agent_ids[present],
        dense.category[present],
        xy[present],
        heading[present],
        velocity[present],
        valid[present],
        current,
        dense.agent_ids[present],
        lane_graph,
        traffic_signals,
    )


def scenario_from_tracks(tracks: Tracks, lane_graph: LaneGraph | None, index: int, features: FeatureConfig) -> Scenario:
    """The agents present at `tracks.timestamps_ns[index]`, on the forecaster's grid around that time."""
    current_ns = int(tracks.timestamps_ns[index])
    grid = grid_timestamps_ns(current_ns, features)
    margin = _grid_tolerance_ns(features)
    first = int(np.searchsorted(tracks.timestamps_ns, grid[0] - margin, side="left"))
    last = int(np.searchsorted(tracks.timestamps_ns, grid[-1] + margin, side="right"))
    window = Tracks(tracks.log_id, tracks.timestamps_ns[first:last], tracks.boxes[first:last])
    dense = _DenseTracks.from_tracks(window)
    city = lane_graph.city_name if lane_graph is not None else "unknown"
    return _grid_scenario(dense, f"{tracks.log_id}_{current_ns}", city, current_ns, features, lane_graph)


def scenarios_from_tracks(
    tracks: Tracks,
    lane_graph: LaneGraph | None,
    features: FeatureConfig,
    every_steps: int = 1,
    traffic_signals: TrafficSignalStates | None = None,
) -> list[Scenario]:
    """Training scenarios of one log: a prediction time every `every_steps * step_s` with a full horizon ahead (with
    the log's signal states, when it records them)."""
    dense = _DenseTracks.from_tracks(tracks)
    step_ns = int(round(features.step_s * 1e9))
    first = int(tracks.timestamps_ns[0]) + (features.history_steps - 1) * step_ns
    last = int(tracks.timestamps_ns[-1]) - features.horizon_steps * step_ns
    city = lane_graph.city_name if lane_graph is not None else "unknown"
    scenarios = []
    for current_ns in range(first, last + 1, every_steps * step_ns):
        slot, hit = _nearest_slots(tracks.timestamps_ns, np.array([current_ns]), int(0.25 * step_ns))
        if hit[0]:
            current_ns = int(tracks.timestamps_ns[slot[0]])
            scenario_id = f"{tracks.log_id}_{current_ns}"
            scenarios.append(_grid_scenario(dense, scenario_id, city, current_ns, features, lane_graph, traffic_signals))
    return scenarios


def resample_scenario(scenario: Scenario, features: FeatureConfig) -> Scenario:
    """A dataset scenario (AV2 10 Hz, nuScenes 2 Hz) on the forecaster's grid around its `current_index`."""
    dense = _DenseTracks(
        scenario.scenario_id,
        scenario.timestamps_ns,
        scenario.agent_ids,
        scenario.category,
        np.nan_to_num(scenario.xy_m),
        np.nan_to_num(scenario.heading_rad),
        np.where(scenario.valid[..., None], scenario.velocity_m_per_s, np.nan),
        scenario.valid,
    )
    current_ns = int(scenario.timestamps_ns[scenario.current_index])
    grid = _grid_scenario(dense, scenario.scenario_id, scenario.city_name, current_ns, features, scenario.lane_graph, scenario.traffic_signals)
    focal = np.intersect1d(scenario.focal_agent_ids, grid.agent_ids)
    return Scenario(
        grid.scenario_id, grid.city_name, grid.timestamps_ns, grid.agent_ids, grid.category, grid.xy_m,
        grid.heading_rad, grid.velocity_m_per_s, grid.valid, grid.current_index, focal, grid.lane_graph,
        grid.traffic_signals,
    )  # fmt: skip


def _rotation_to_agent(heading_rad: float) -> np.ndarray:
    cos, sin = np.cos(heading_rad), np.sin(heading_rad)
    return np.array([[cos, sin], [-sin, cos]])  # agent_R_city


def _states(scenario: Scenario, rows: np.ndarray, steps: slice, origin: np.ndarray, heading: float, scale: float) -> np.ndarray:
    rotation = _rotation_to_agent(heading)
    valid = scenario.valid[rows, steps]
    xy = (scenario.xy_m[rows, steps] - origin) @ rotation.T / scale
    velocity = scenario.velocity_m_per_s[rows, steps] @ rotation.T / scale
    relative = wrap_angle(scenario.heading_rad[rows, steps] - heading)
    states = np.concatenate(
        [xy, velocity, np.cos(relative)[..., None], np.sin(relative)[..., None], np.ones((*valid.shape, 1))], axis=-1
    )
    return np.where(valid[..., None], states, 0.0).astype(np.float32)


def encode_scenario(
    scenario: Scenario, segments: LaneSegments, features: FeatureConfig, agent_rows: Iterable[int] | None = None
) -> FeatureBatch:
    """Agent-centric features of `agent_rows` (default: every agent observed at the current step)."""
    current = scenario.current_index
    if current != features.history_steps - 1 or scenario.valid.shape[1] < current + 1:
        raise ValueError(
            f"Scenario {scenario.scenario_id}: current_index {current} does not match history_steps "
            f"{features.history_steps}; put it on the grid with resample_scenario first"
        )
    rows = np.flatnonzero(scenario.valid[:, current]) if agent_rows is None else np.asarray(list(agent_rows), dtype=np.int64)
    history_steps = slice(0, current + 1)
    horizon = features.horizon_steps
    future_steps = slice(current + 1, current + 1 + horizon)
    scale = features.position_scale_m
    count = len(rows)
    goals = features.lane_goals
    paths = goals.max_paths if goals.enabled else 0
    batch = FeatureBatch(
        history=np.zeros((count, features.history_steps, STATE_DIM), np.float32),
        neighbors=np.zeros((count, features.max_neighbors, features.history_steps, STATE_DIM), np.float32),
        neighbor_mask=np.zeros((count, features.max_neighbors), bool),
        lanes=np.zeros((count, features.max_lanes, features.lane_points, features.lane_point_dim), np.float32),
        lane_mask=np.zeros((count, features.max_lanes), bool),
        category=scenario.category[rows].astype(np.int64),
        future_m=np.zeros((count, horizon, 2), np.float32),
        future_valid=np.zeros((count, horizon), bool),
        goal_paths_m=np.zeros((count, paths, path_points(goals), 2), np.float32),
        goal_path_valid=np.zeros((count, paths), bool),
        goal_path_on_lane=np.zeros((count, paths), bool),
        origin_xy_m=scenario.xy_m[rows, current].astype(np.float64),
        heading_rad=scenario.heading_rad[rows, current].astype(np.float64),
    )
    present = np.flatnonzero(scenario.valid[:, current])
    current_xy = scenario.xy_m[present, current]
    signal_channels = None
    if features.traffic_signals:
        signals = {}
        if scenario.traffic_signals is not None:
            signals = scenario.traffic_signals.at(int(scenario.timestamps_ns[current]), _grid_tolerance_ns(features))
        signal_channels = segments.signal_channels(signals)
    for slot, row in enumerate(rows.tolist()):
        if not scenario.valid[row, current]:
            raise ValueError(f"Scenario {scenario.scenario_id}: agent {scenario.agent_ids[row]} is not observed now")
        origin = scenario.xy_m[row, current]
        heading = float(scenario.heading_rad[row, current])
        rotation = _rotation_to_agent(heading)
        batch.history[slot] = _states(scenario, np.array([row]), history_steps, origin, heading, scale)[0]
        others = present[present != row]
        if len(others) and features.max_neighbors:
            distance = np.linalg.norm(current_xy[present != row] - origin, axis=1)
            order = np.argsort(distance, kind="stable")
            chosen = others[order[distance[order] <= features.neighbor_radius_m][: features.max_neighbors]]
            batch.neighbors[slot, : len(chosen)] = _states(scenario, chosen, history_steps, origin, heading, scale)
            batch.neighbor_mask[slot, : len(chosen)] = True
        lanes = segments.near(origin, features.lane_radius_m, features.max_lanes)
        if len(lanes):
            local = (segments.points_m[lanes] - origin) @ rotation.T
            direction = np.diff(local, axis=1)
            direction = np.concatenate([direction, direction[:, -1:]], axis=1)
            direction /= np.maximum(np.linalg.norm(direction, axis=-1, keepdims=True), 1e-6)
            flag = np.broadcast_to(segments.is_intersection[lanes, None, None], (*local.shape[:2], 1))
            parts = [local / scale, direction, flag]
            if signal_channels is not None:
                parts.append(np.broadcast_to(signal_channels[lanes, None, :], (*local.shape[:2], signal_channels.shape[1])))
            batch.lanes[slot, : len(lanes)] = np.concatenate(parts, axis=-1)
            batch.lane_mask[slot, : len(lanes)] = True
        if goals.enabled:
            speed = float(np.linalg.norm(scenario.velocity_m_per_s[row, current]))
            horizon_s = horizon * features.step_s
            points, valid, on_lane = agent_paths(segments.paths, origin, heading, speed, int(scenario.category[row]), horizon_s, goals)
            batch.goal_paths_m[slot], batch.goal_path_valid[slot], batch.goal_path_on_lane[slot] = points, valid, on_lane
        future_valid = scenario.valid[row, future_steps]
        batch.future_valid[slot, : len(future_valid)] = future_valid
        future = (scenario.xy_m[row, future_steps] - origin) @ rotation.T
        batch.future_m[slot, : len(future)] = np.where(future_valid[:, None], future, 0.0)
    return batch


def build_samples(
    scenarios: Sequence[Scenario],
    features: FeatureConfig,
    *,
    require_full_future: bool = True,
    exclude_categories: Collection[int] = (),
    progress: bool = False,
) -> FeatureBatch:
    """Training samples of the focal agents of every scenario (with a fully observed future when required).

    A scenario naming no focal agent (e.g. a nuScenes key frame outside the prediction challenge) offers all of them.

    Agents of `exclude_categories` (e.g. static objects) are not forecast, but stay in their neighbours' context.
    """
    parts: list[FeatureBatch] = []
    cache: dict[int, LaneSegments] = {}
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("encoding scenarios", total=len(scenarios))
        for scenario in scenarios:
            key = id(scenario.lane_graph)
            if key not in cache:
                cache[key] = LaneSegments.from_lane_graph(scenario.lane_graph, features.lane_segment_length_m, features.lane_points)
            current = scenario.current_index
            named = np.isin(scenario.agent_ids, scenario.focal_agent_ids) if len(scenario.focal_agent_ids) else True
            focal = named & scenario.valid[:, current]
            focal &= ~np.isin(scenario.category, list(exclude_categories))
            if require_full_future:
                focal &= scenario.valid[:, current + 1 : current + 1 + features.horizon_steps].all(axis=1)
                focal &= scenario.valid.shape[1] >= current + 1 + features.horizon_steps
            rows = np.flatnonzero(focal)
            if len(rows):
                parts.append(encode_scenario(scenario, cache[key], features, rows))
            bar.advance(task)
    if not parts:
        raise ValueError("build_samples: no agent with an observed present (and full future) in the given scenarios")
    return FeatureBatch.concatenate(parts)
