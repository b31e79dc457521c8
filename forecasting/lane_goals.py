"""Goal candidates on reachable lanes (TNT, Zhao et al., "TNT: Target-driveN Trajectory Prediction", arXiv 2008.08294).

TNT samples target (goal) candidates on the lane centerlines around an agent, scores them, and decodes one trajectory
per candidate; K modes are then picked by non-maximum suppression. Here the candidates follow the lane graph's
topology: from every lane that passes near the agent in its direction of travel, the centerline is followed through
its successors (every branch, so an approach to an intersection offers each turn) for the distance the agent can
reach within the horizon. Each such *path* carries `goals_per_path` goals evenly spread along it, the first at the
start (stopping). A goal's trajectory is decoded along its own path (`forecasting.goal_decoder`), so modes stay on
lanes and follow turns instead of cutting across them.

Agents off the lanes keep a way to move: a vehicle's paths always include the straight ray along its heading (what
constant velocity would do), and agents that do not drive on lanes (pedestrians, strollers, dogs...) get
`max_paths` rays evenly spread around them instead of lanes.

All paths of one agent have the same length, its reach: `v T + a T^2 / 2` for its current speed `v`, the horizon `T`
and `max_acceleration_m_per_s2`, at least `min_reach_m`. A lane path that ends before the reach (no successor) goes
on straight along its last direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.spatial import cKDTree

from forecasting.config import LaneGoalConfig
from scenes.categories import CATEGORY_ID, VEHICLE_CATEGORIES
from scenes.geometry import points_at_arc, polyline_arc_m, yaw_to_matrix
from scenes.records import LaneGraph

__all__ = ["LANE_FOLLOWING_CATEGORY_IDS", "LanePaths", "path_points", "reach_m", "agent_paths", "select_modes"]

# Agents that drive on lanes; every other category moves freely (rays around it).
LANE_FOLLOWING_CATEGORY_IDS: Final = frozenset(CATEGORY_ID[name] for name in VEHICLE_CATEGORIES | {"MOTORCYCLIST", "BICYCLIST"})
_INDEX_SPACING_M: Final = 1.0  # resolution of the lane-point index (where an agent enters its lanes)
_MAX_BRANCHES: Final = 64  # branches explored per agent before the closest `max_paths - 1` are kept


def path_points(cfg: LaneGoalConfig) -> int:
    """Points per path: two segments between consecutive goals, so goal `j` is point `2 j`."""
    return 2 * (cfg.goals_per_path - 1) + 1


def reach_m(speed_m_per_s: float, horizon_s: float, cfg: LaneGoalConfig) -> float:
    """How far along its paths an agent's goals extend: `v T + a T^2 / 2`, at least `min_reach_m`."""
    return max(cfg.min_reach_m, speed_m_per_s * horizon_s + 0.5 * cfg.max_acceleration_m_per_s2 * horizon_s**2)


def _distinct(polyline_m: np.ndarray) -> np.ndarray:
    """The polyline `(P, 2)` without vertices that repeat the previous one."""
    steps = np.linalg.norm(np.diff(polyline_m, axis=0), axis=1)
    return polyline_m[np.concatenate([[True], steps > 1e-6])]


def _resample(polyline_m: np.ndarray, length_m: float, count: int) -> np.ndarray:
    """`count` points evenly spaced over the first `length_m` of a polyline `(P, 2)`, continued straight past its end."""
    polyline_m = _distinct(polyline_m)
    if len(polyline_m) == 1:
        raise ValueError("a path needs two distinct points")
    arc = polyline_arc_m(polyline_m)
    samples = np.linspace(0.0, length_m, count)
    points = points_at_arc(polyline_m, arc, samples)
    beyond = samples > arc[-1]
    if beyond.any():
        direction = (polyline_m[-1] - polyline_m[-2]) / (arc[-1] - arc[-2])
        points[beyond] = polyline_m[-1] + (samples[beyond] - arc[-1])[:, None] * direction
    return points


@dataclass(frozen=True)
class LanePaths:
    """The lane graph's centerlines (city frame, x-y) and successors, indexed for finding where an agent enters them."""

    centerlines_m: tuple[np.ndarray, ...]  # per lane (P_i, 2), without repeated vertices
    arcs_m: tuple[np.ndarray, ...]  # per lane (P_i,): arc length at each vertex
    successors: tuple[tuple[int, ...], ...]  # per lane: indices (not ids) of the lanes that follow it
    point_lane: np.ndarray  # (N,) lane index of each indexed point
    point_arc_m: np.ndarray  # (N,) arc length of each indexed point along its lane
    point_direction: np.ndarray  # (N, 2) unit direction of its lane there
    tree: cKDTree | None

    @classmethod
    def from_lane_graph(cls, lane_graph: LaneGraph | None) -> LanePaths:
        empty = cls((), (), (), np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 2)), None)
        if lane_graph is None or not len(lane_graph):
            return empty
        index_of = {int(lane): row for row, lane in enumerate(lane_graph.lane_ids.tolist())}
        successors = tuple(tuple(index_of[s] for s in following if s in index_of) for following in lane_graph.successors)
        centerlines = tuple(_distinct(centerline) for centerline in lane_graph.centerlines_m[..., :2])
        lane_arcs = tuple(polyline_arc_m(centerline) for centerline in centerlines)
        lanes, arcs, points, directions = [], [], [], []
        for row, (centerline, arc) in enumerate(zip(centerlines, lane_arcs, strict=True)):
            if len(centerline) < 2:
                continue
            samples = np.linspace(0.0, arc[-1], max(2, int(np.ceil(arc[-1] / _INDEX_SPACING_M)) + 1))
            segment = np.clip(np.searchsorted(arc, samples, side="right") - 1, 0, len(arc) - 2)
            direction = centerline[segment + 1] - centerline[segment]
            directions.append(direction / np.linalg.norm(direction, axis=1, keepdims=True))
            points.append(points_at_arc(centerline, arc, samples))
            lanes.append(np.full(len(samples), row, dtype=np.int64))
            arcs.append(samples)
        if not lanes:
            return empty
        return cls(
            centerlines, lane_arcs, successors, np.concatenate(lanes), np.concatenate(arcs), np.concatenate(directions),
            cKDTree(np.concatenate(points)),
        )  # fmt: skip

    def _remaining(self, lane: int, from_arc_m: float) -> np.ndarray:
        """The centerline of `lane` from arc length `from_arc_m` on (the entry point first)."""
        centerline, arc = self.centerlines_m[lane], self.arcs_m[lane]
        entry = points_at_arc(centerline, arc, from_arc_m)
        return np.concatenate([entry[None], centerline[arc > from_arc_m + 1e-6]])

    def lane_paths(self, origin_xy_m: np.ndarray, heading_rad: float, moving: bool, length_m: float, cfg: LaneGoalConfig, count: int) -> list[np.ndarray]:
        """Up to `count` city-frame polylines following the lanes the agent can enter, nearest entry first.

        Entry lanes pass within `start_radius_m`; for a moving agent their direction must be within
        `start_max_angle_deg` of its heading (a stopped agent's heading may read backwards, so any direction goes).
        """
        if self.tree is None or count <= 0:
            return []
        hits = np.asarray(self.tree.query_ball_point(origin_xy_m, cfg.start_radius_m), dtype=np.int64)
        if not len(hits):
            return []
        heading = np.array([math.cos(heading_rad), math.sin(heading_rad)])
        if moving:
            hits = hits[self.point_direction[hits] @ heading >= math.cos(math.radians(cfg.start_max_angle_deg))]
        distance = np.linalg.norm(self.tree.data[hits] - origin_xy_m, axis=1)
        entries: dict[int, tuple[float, float]] = {}
        for point, d in zip(hits.tolist(), distance.tolist(), strict=True):
            lane = int(self.point_lane[point])
            if d < entries.get(lane, (np.inf, 0.0))[0]:
                entries[lane] = (d, float(self.point_arc_m[point]))
        branches: list[np.ndarray] = []
        for lane in sorted(entries, key=lambda lane: (entries[lane][0], lane)):
            stack: list[tuple[np.ndarray, tuple[int, ...]]] = [(self._remaining(lane, entries[lane][1]), (lane,))]
            while stack and len(branches) < _MAX_BRANCHES:
                polyline, lanes = stack.pop()
                length = float(np.linalg.norm(np.diff(polyline, axis=0), axis=1).sum())
                following = [successor for successor in self.successors[lanes[-1]] if successor not in lanes]  # no cycles
                if length >= length_m or not following:
                    if length > 1e-6:
                        branches.append(polyline)
                    continue
                for successor in reversed(following):
                    stack.append((np.concatenate([polyline, self.centerlines_m[successor][1:]]), (*lanes, successor)))
        return branches[:count]


def agent_paths(
    paths: LanePaths,
    origin_xy_m: np.ndarray,
    heading_rad: float,
    speed_m_per_s: float,
    category: int,
    horizon_s: float,
    cfg: LaneGoalConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One agent's paths in its own frame (origin, +x along `heading_rad`), metres.

    Returns `points (max_paths, path_points, 2)`, `valid (max_paths,)` and `on_lane (max_paths,)` (False for rays).
    """
    count = path_points(cfg)
    length = reach_m(speed_m_per_s, horizon_s, cfg)
    points = np.zeros((cfg.max_paths, count, 2))
    valid = np.zeros(cfg.max_paths, dtype=bool)
    on_lane = np.zeros(cfg.max_paths, dtype=bool)
    distance = np.linspace(0.0, length, count)
    if category not in LANE_FOLLOWING_CATEGORY_IDS:
        for slot, angle in enumerate(np.arange(cfg.max_paths) * 2 * math.pi / cfg.max_paths):
            points[slot] = distance[:, None] * np.array([math.cos(angle), math.sin(angle)])
        valid[:] = True
        return points, valid, on_lane
    points[0, :, 0] = distance  # straight ahead
    valid[0] = True
    agent_R_city = yaw_to_matrix(heading_rad)[:2, :2].T
    moving = speed_m_per_s >= cfg.stopped_speed_m_per_s
    for slot, polyline in enumerate(paths.lane_paths(origin_xy_m, heading_rad, moving, length, cfg, cfg.max_paths - 1), 1):
        points[slot] = _resample((polyline - origin_xy_m) @ agent_R_city.T, length, count)
        valid[slot] = on_lane[slot] = True
    return points, valid, on_lane


def select_modes(
    trajectories_m: np.ndarray, probabilities: np.ndarray, count: int, nms_distance_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Non-maximum suppression over candidates' endpoints, by probability mass.

    TNT keeps candidates by decreasing score and suppresses those whose endpoint lies within `nms_distance_m` of a
    kept one. Here candidates overlap by construction (the straight ray and a straight lane, two branches before
    they part), which splits a likely future's probability between them; so each step finds the endpoint that
    gathers the most probability of the remaining candidates within `nms_distance_m`, keeps the most probable
    candidate of that group with the group's mass as its score, and removes the group. If fewer than `count` groups
    exist, the most probable remaining candidates fill up (score 0).

    `trajectories_m (B, N, T, 2)`, `probabilities (B, N)` (0 for invalid candidates). Returns the chosen candidate
    indices `(B, count)`, best first, and their scores renormalised to sum to 1 `(B, count)`.
    """
    batch, candidates = probabilities.shape
    if count > candidates:
        raise ValueError(f"select_modes: {count} modes asked of {candidates} candidates")
    ends = trajectories_m[:, :, -1]
    near = np.linalg.norm(ends[:, :, None] - ends[:, None], axis=-1) < nms_distance_m  # (B, N, N)
    chosen = np.zeros((batch, count), dtype=np.int64)
    scores = np.zeros((batch, count))
    for row in range(batch):
        remaining = probabilities[row].copy()
        taken = np.zeros(candidates, dtype=bool)
        for slot in range(count):
            mass = np.where(taken, -np.inf, near[row] @ remaining)
            if mass.max() > 0:
                center = int(np.argmax(mass))
                group = near[row, center] & (remaining > 0)
                best = int(np.argmax(np.where(group, probabilities[row], -np.inf)))
                scores[row, slot] = mass[center]
                remaining[group] = 0.0
            else:  # every group is taken: the most probable remaining candidate, with no mass of its own
                best = int(np.argmax(np.where(taken, -np.inf, probabilities[row])))
            chosen[row, slot] = best
            taken[best] = True
    total = scores.sum(axis=1, keepdims=True)
    scores = np.where(total > 0, scores / np.where(total > 0, total, 1.0), 1.0 / count)
    return chosen, scores
