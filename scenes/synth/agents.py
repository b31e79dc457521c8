"""Traffic of the synthetic city: vehicles and cyclists on the lane graph, pedestrians on sidewalks, static objects.

Vehicles follow a route of lanes (a random successor at each intersection, so futures are multimodal and shaped by
the map) with pure-pursuit steering of a kinematic bicycle model; their speed follows the Intelligent Driver Model
(IDM, Treiber et al. 2000) behind the nearest obstacle on their path: another agent, a red light's stop line (a yellow
light's too, when they can stop at a comfortable deceleration), or the stop line of a left turn that must yield to
oncoming traffic. They change lanes when the neighbour lane has room. Some parked cars pull out into the outer lane
when it is clear behind them, and some driving cars look for a free parking slot ahead on their lane, slow down and
pull into it. Pedestrians walk a graph of sidewalk corners and cross at crosswalks (at a signalised intersection only
while the crossed road has a red light). A pedestrian waiting at a crosswalk, or walking on it, has the right of way:
every vehicle whose path crosses the crosswalk and that can stop before it at a comfortable deceleration stops there
until the pedestrian has passed its path (turning vehicles too, into a crossing on green); the pedestrian steps onto
the crosswalk once no vehicle is on it or too close to stop. The signals' states are recorded per controlled lane
(`Trajectories.signal_state`), as motion datasets provide them.

With `TrafficConfig.pedestrian_groups` a third of the people walk in groups of two and three, as in the real AV2 log of
`../shared/data` (28 % of its 3929 pedestrian observations, over 156 annotated timestamps, stand within 1.4 m of
another pedestrian; in shopping streets up to 70 % of people walk in groups, Moussaïd et al. 2010, "The walking
behaviour of pedestrian social groups"): abreast, 0.65-0.9 m apart centre to centre, the members that do not fit the
sidewalk's width a row behind; a standing group faces its leader, the leader its first follower.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

import numpy as np

from scenes.categories import CATEGORY_ID
from scenes.geometry import polyline_arc_m
from scenes.records import SignalState
from scenes.synth.roads import ARMS, CROSSWALK_WIDTH_M, Lane, RoadNetwork

__all__ = ["AgentKind", "TrafficConfig", "Trajectories", "simulate_traffic", "signal_is_green", "signal_state"]

SIGNAL_PERIOD_S: Final = 26.0
SIGNAL_GREEN_S: Final = 11.0  # green, then yellow for its last SIGNAL_YELLOW_S
SIGNAL_YELLOW_S: Final = 3.0
# On yellow a vehicle stops when it can at this deceleration, and goes on otherwise.
YELLOW_STOP_DECEL_M_PER_S2: Final = 3.5
LOOKAHEAD_M: Final = 45.0
ROUTE_HORIZON_M: Final = 70.0
TURN_SPEED_M_PER_S: Final = 6.0
MAX_STEER_RAD: Final = 0.6
MIN_GAP_M: Final = 2.0
TIME_HEADWAY_S: Final = 1.3
COMFORT_DECEL_M_PER_S2: Final = 2.5
MAX_DECEL_M_PER_S2: Final = 8.0
PEDESTRIAN_MARGIN_M: Final = 1.5
# A vehicle yields to a pedestrian at a crosswalk when it can stop before it at this deceleration, and keeps yielding
# until the pedestrian is this far past the vehicle's side of its path.
PEDESTRIAN_YIELD_DECEL_M_PER_S2: Final = 3.5
PEDESTRIAN_CLEARANCE_M: Final = 1.5
# A person walks at most this much faster than its pace towards its place on its edge: where the place jumps (turning a
# corner moves the sideways offset onto the next edge's normal, up to 1.9 m away at a dead end's U-turn), it cuts
# across in a few steps.
PEDESTRIAN_SIDESTEP_M_PER_S: Final = 1.0
# Pedestrian groups: the probability that a group has 1, 2 or 3 members (36 % of the people walk with others),
# the centre-to-centre spacing of neighbours walking abreast, the distance between rows and how far a member may lag
# or lead its row, and the clearance the outermost members keep from the sidewalk's edges.
GROUP_SIZE_P: Final = (0.8, 0.15, 0.05)
GROUP_SPACING_M: Final = (0.65, 0.9)
GROUP_ROW_M: Final = 1.0
GROUP_STAGGER_M: Final = 0.25
GROUP_EDGE_CLEARANCE_M: Final = 0.4
STOP_LINE_SETBACK_M: Final = CROSSWALK_WIDTH_M + 1.0
# A lane change steers towards a point this far ahead on the target lane (plus 0.6 s of travel), for this long.
LANE_CHANGE_LOOKAHEAD_M: Final = 14.0
LANE_CHANGE_S: Final = 4.0
EXIT_CLEARANCE_M: Final = 8.0
# No parking within this distance of an intersection (long vehicles swing wide when they turn).
NO_PARKING_M: Final = 14.0
# Parking manoeuvres: a car commits to a free slot this far ahead on its lane, slows to PARKING_SPEED_M_PER_S within
# PARKING_APPROACH_M of it and steers over to the kerb line (over PARKING_SWERVE_M, then straightens along it for
# PARKING_STRAIGHTEN_M); a parked car pulls out once
# nothing drives on the outer lane within UNPARK_CLEARANCE_M behind it.
PARKING_SEARCH_M: Final = (25.0, 70.0)
PARKING_APPROACH_M: Final = 30.0
PARKING_SPEED_M_PER_S: Final = 4.0
PARKING_SWERVE_M: Final = 14.0
PARKING_STRAIGHTEN_M: Final = 6.0
UNPARK_CLEARANCE_M: Final = 30.0
# A parked car pulls out only with the kerb free this far ahead of its centre (no room to reverse and swing out), and
# steers towards a point this close ahead on the lane.
UNPARK_FREE_AHEAD_M: Final = 9.0
UNPARK_LOOKAHEAD_M: Final = 6.0


class AgentKind:
    """Mesh/behaviour kinds of simulated agents (index into the templates of `lidar.py`)."""

    CAR: Final = 0
    VAN: Final = 1
    TRUCK: Final = 2
    BUS: Final = 3
    CYCLIST: Final = 4
    PEDESTRIAN: Final = 5
    CONE: Final = 6
    BOLLARD: Final = 7
    SIGN: Final = 8


# kind -> (category name, length range, width range, height range)
_SIZES: Final = {
    AgentKind.CAR: ("REGULAR_VEHICLE", (4.2, 5.0), (1.8, 2.0), (1.45, 1.8)),
    AgentKind.VAN: ("LARGE_VEHICLE", (5.4, 6.4), (2.0, 2.2), (2.2, 2.7)),
    AgentKind.TRUCK: ("BOX_TRUCK", (7.0, 9.0), (2.4, 2.5), (3.2, 3.6)),
    AgentKind.BUS: ("BUS", (11.0, 12.5), (2.5, 2.6), (3.0, 3.3)),
    AgentKind.CYCLIST: ("BICYCLIST", (1.7, 1.9), (0.6, 0.8), (1.65, 1.85)),
    AgentKind.PEDESTRIAN: ("PEDESTRIAN", (0.55, 0.75), (0.55, 0.75), (1.55, 1.9)),
    AgentKind.CONE: ("CONSTRUCTION_CONE", (0.35, 0.45), (0.35, 0.45), (0.65, 0.8)),
    AgentKind.BOLLARD: ("BOLLARD", (0.25, 0.35), (0.25, 0.35), (0.9, 1.1)),
    AgentKind.SIGN: ("SIGN", (0.15, 0.25), (0.7, 0.9), (2.3, 2.8)),
}
_VEHICLE_MIX: Final = ((AgentKind.CAR, 0.8), (AgentKind.VAN, 0.09), (AgentKind.TRUCK, 0.06), (AgentKind.BUS, 0.05))
_TURN_WEIGHTS: Final = {"straight": 0.5, "left": 0.25, "right": 0.25}


@dataclass(frozen=True)
class TrafficConfig:
    """Agent counts (None: from the style's layout statistics), the parking manoeuvres and the simulation clock.

    A parked car pulls out at `unparking_rate_per_min` (its departure time is exponential from the start of the
    simulation); `parking_fraction` of the driving cars and vans park in the first free slot they find ahead beside
    the outer lane."""

    num_vehicles: int | None = None
    num_pedestrians: int | None = None
    num_cyclists: int | None = None
    num_static_objects: int | None = None
    parked_fraction: float | None = None
    unparking_rate_per_min: float = 0.3
    parking_fraction: float = 0.1
    warmup_s: float = 2.0
    physics_hz: float = 20.0
    pedestrian_groups: bool = False


@dataclass(frozen=True, eq=False)
class Trajectories:
    """City-frame states of every agent (ego included, at `ego_index`) at every recorded timestamp.

    Arrays are indexed `[t, agent]`; `center_m` is the box centre (z included), velocities are city-frame.
    `signal_state[t, s]` (a `SignalState`) is the state of the signal controlling lane `signal_lane_ids[s]` (a connector
    of a signalised intersection) whose stop line is at `signal_stop_points_m[s]` (x, y).
    """

    timestamps_s: np.ndarray
    track_ids: np.ndarray
    kind: np.ndarray
    category: np.ndarray
    size_lwh_m: np.ndarray
    color_index: np.ndarray
    center_m: np.ndarray
    yaw_rad: np.ndarray
    velocity_m_per_s: np.ndarray
    ego_index: int
    ego_speed_m_per_s: np.ndarray
    ego_acceleration_m_per_s2: np.ndarray
    ego_yaw_rate_rad_per_s: np.ndarray
    signal_lane_ids: np.ndarray
    signal_stop_points_m: np.ndarray
    signal_state: np.ndarray

    @property
    def num_agents(self) -> int:
        return int(self.track_ids.shape[0])


def signal_state(network: RoadNetwork, offsets_s: np.ndarray, node: tuple[int, int], axis: str, time_s: float) -> SignalState:
    """Traffic light of `node` for traffic along `axis` ("EW" or "NS"), cycling EW green, EW yellow, all red, NS green,
    NS yellow, all red; UNKNOWN where `node` has no light."""
    if not network.is_signalised(node):
        return SignalState.UNKNOWN
    phase = (time_s + offsets_s[node]) % SIGNAL_PERIOD_S
    into = phase if axis == "EW" else phase - SIGNAL_PERIOD_S / 2.0
    if 0.0 <= into < SIGNAL_GREEN_S - SIGNAL_YELLOW_S:
        return SignalState.GO
    if 0.0 <= into < SIGNAL_GREEN_S:
        return SignalState.CAUTION
    return SignalState.STOP


def signal_is_green(network: RoadNetwork, offsets_s: np.ndarray, node: tuple[int, int], axis: str, time_s: float) -> bool:
    """Whether traffic along `axis` may enter `node` (green or yellow light, or no light)."""
    return signal_state(network, offsets_s, node, axis, time_s) != SignalState.STOP


def _axis(heading: tuple[float, float] | np.ndarray) -> str:
    return "EW" if abs(heading[0]) > abs(heading[1]) else "NS"


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(int=int(rng.integers(0, 2**62)) << 64 | int(rng.integers(0, 2**62)), version=4))


def _sizes(kind: int, count: int, rng: np.random.Generator) -> np.ndarray:
    _, length, width, height = _SIZES[kind]
    return np.stack([rng.uniform(*length, count), rng.uniform(*width, count), rng.uniform(*height, count)], axis=1)


def _group_sizes(people: int, rng: np.random.Generator) -> np.ndarray:
    """Sizes of the groups `people` people walk in (`GROUP_SIZE_P`), summing to `people`."""
    sizes: list[int] = []
    while sum(sizes) < people:
        sizes.append(min(int(rng.choice(len(GROUP_SIZE_P), p=GROUP_SIZE_P)) + 1, people - sum(sizes)))
    return np.array(sizes, dtype=np.int64)


def _onto_segments(points_m: np.ndarray, start_m: np.ndarray, end_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of points `(P, 2)` against segments `(M, 2)` -> `(M, 2)`: the position of each point's projection along each segment
    (0 at the start, 1 at the end, clipped) and the distance to it, both `(P, M)`."""
    segment = end_m - start_m
    t = np.clip(np.einsum("pmd,md->pm", points_m[:, None, :] - start_m[None], segment) / np.maximum(np.einsum("md,md->m", segment, segment), 1e-9), 0.0, 1.0)
    return t, np.linalg.norm(points_m[:, None, :] - (start_m[None] + t[..., None] * segment[None]), axis=2)


class _Route:
    """A vehicle's lanes ahead as one polyline with arc length; lanes behind the vehicle are dropped."""

    def __init__(self, network: RoadNetwork, lane_ids: list[int]) -> None:
        self.network = network
        self.lane_ids = lane_ids
        self._rebuild()

    def _rebuild(self) -> None:
        parts = [self.network.lane(lane_id).polyline_m for lane_id in self.lane_ids]
        points = np.concatenate([parts[0]] + [part[1:] for part in parts[1:]])
        self.points = points
        self.arc = polyline_arc_m(points)
        ends = np.cumsum([self.network.lane(lane_id).length_m for lane_id in self.lane_ids])
        self.lane_end_s = ends

    def extend(self, rng: np.random.Generator, allow_turns: bool) -> None:
        while self.arc[-1] < ROUTE_HORIZON_M or len(self.lane_ids) < 3:
            last = self.lane_ids[-1]
            options = list(self.network.successors[self.network.index_of(last)])
            turns = [self.network.lane(o).turn for o in options]
            weights = np.array([_TURN_WEIGHTS.get(t, 1.0) if (allow_turns or t in ("straight", "none")) else 1e-3 for t in turns])
            self.lane_ids.append(options[int(rng.choice(len(options), p=weights / weights.sum()))])
            self._rebuild()

    def project(self, xy: np.ndarray, near_s: float | None = None) -> float:
        """Arc length of the route point closest to `xy`, searched within [-15, 30] m of `near_s` when given."""
        low, high = 0, len(self.points)
        if near_s is not None:
            low = max(0, int(np.searchsorted(self.arc, near_s - 15.0)) - 1)
            high = min(len(self.points), int(np.searchsorted(self.arc, near_s + 30.0)) + 1)
        offsets = self.points[low:high] - xy
        k = low + int(np.argmin(np.einsum("pd,pd->p", offsets, offsets)))
        k = min(k, len(self.points) - 2)
        segment = self.points[k + 1] - self.points[k]
        t = float(np.clip((xy - self.points[k]) @ segment / max(segment @ segment, 1e-12), 0.0, 1.0))
        return float(self.arc[k] + t * (self.arc[k + 1] - self.arc[k]))

    def drop_passed(self, s: float) -> float:
        """Drops lanes fully behind arc length `s`; returns `s` in the new route."""
        while len(self.lane_ids) > 1 and s > self.lane_end_s[0] + 1.0:
            s -= self.lane_end_s[0]
            self.lane_ids.pop(0)
            self._rebuild()
        return s

    def point_at(self, s: np.ndarray | float) -> np.ndarray:
        s = np.clip(s, 0.0, self.arc[-1])
        return np.stack([np.interp(s, self.arc, self.points[:, 0]), np.interp(s, self.arc, self.points[:, 1])], axis=-1)


@dataclass(frozen=True, eq=False)
class _Crossings:
    """Crosswalks in use by pedestrians: key (the two corners), start and end corners `(M, 2)`, metres walked `(M,)`."""

    keys: list[frozenset]
    start_m: np.ndarray
    end_m: np.ndarray
    walked_m: np.ndarray


class _Traffic:
    def __init__(self, network: RoadNetwork, config: TrafficConfig, rng: np.random.Generator, time_range_s: tuple[float, float]) -> None:
        self.network = network
        self.rng = rng
        layout = network.layout
        self.signal_offset_s = rng.uniform(0.0, SIGNAL_PERIOD_S, (layout.blocks_x + 1, layout.blocks_y + 1))
        segment_lanes = [lane for lane in network.lanes if not lane.is_intersection]
        lane_km = sum(lane.length_m for lane in segment_lanes) / 1000.0
        road_km = lane_km / (2 * layout.lanes_per_direction)
        blocks = layout.blocks_x * layout.blocks_y
        num_vehicles = config.num_vehicles if config.num_vehicles is not None else int(round(layout.vehicles_per_km_lane * lane_km))
        num_cyclists = config.num_cyclists if config.num_cyclists is not None else int(round(layout.cyclists_per_km * road_km))
        num_peds = config.num_pedestrians if config.num_pedestrians is not None else int(round(layout.pedestrians_per_block * blocks))
        num_static = (
            config.num_static_objects if config.num_static_objects is not None else int(round(layout.static_objects_per_block * blocks))
        )
        parked_fraction = config.parked_fraction if config.parked_fraction is not None else layout.parked_fraction
        self._spawn_vehicles(segment_lanes, num_vehicles, num_cyclists)
        parks = np.isin(self.v_kind, (AgentKind.CAR, AgentKind.VAN)) & (rng.random(len(self.v_kind)) < config.parking_fraction)
        parks[0] = False
        self.v_wants_slot = parks
        self.v_slot: list[tuple[np.ndarray, int] | None] = [None] * len(self.v_kind)
        self.v_parked = np.zeros(len(self.v_kind), dtype=bool)
        self.v_depart_s = np.full(len(self.v_kind), np.inf)
        self.v_unparking_until_s = np.full(len(self.v_kind), -np.inf)
        # Crosswalks (keyed by their two corners) a vehicle can no longer stop for: their pedestrians wait.
        self.committed_crossings: set[frozenset] = set()
        self._spawn_pedestrians(num_peds, groups=config.pedestrian_groups)
        departing = self._spawn_parked_and_static(parked_fraction, config.unparking_rate_per_min, time_range_s, num_static)
        self._add_departing(departing)

    # ---- spawning ----------------------------------------------------------------------------------------------
    def _spawn_vehicles(self, segment_lanes: list, num_vehicles: int, num_cyclists: int) -> None:
        rng, network = self.rng, self.network
        layout = network.layout
        center = np.array([network.grid_x_m[-1], network.grid_y_m[-1]]) / 2.0
        mids = np.array([lane.polyline_m[len(lane.polyline_m) // 2] for lane in segment_lanes])
        near_center = np.argsort(np.linalg.norm(mids - center, axis=1))[: max(1, len(segment_lanes) // 6)]
        ego_lane = segment_lanes[int(rng.choice(near_center))]
        kinds = [AgentKind.CAR]
        mix_kinds, mix_p = zip(*_VEHICLE_MIX, strict=True)
        kinds += list(rng.choice(mix_kinds, size=num_vehicles, p=np.array(mix_p)))
        kinds += [AgentKind.CYCLIST] * num_cyclists
        self.v_kind = np.array(kinds, dtype=np.int64)
        count = len(kinds)
        self.v_size = np.concatenate([_sizes(int(k), 1, rng) for k in kinds])
        self.v_size[0] = [4.9, 2.0, 1.75]
        outer_lanes = [lane for lane in segment_lanes if lane.lane_index == layout.lanes_per_direction - 1]
        lengths = np.array([lane.length_m for lane in segment_lanes])
        occupied: dict[int, list[float]] = {}
        self.routes: list[_Route] = []
        self.v_xy = np.zeros((count, 2))
        self.v_yaw = np.zeros(count)
        self.v_speed = np.zeros(count)
        self.v_s = np.zeros(count)
        for index, kind in enumerate(kinds):
            for _attempt in range(50):
                if index == 0:
                    lane = ego_lane
                elif kind == AgentKind.CYCLIST:
                    lane = outer_lanes[int(rng.integers(len(outer_lanes)))]
                else:
                    lane = segment_lanes[int(rng.choice(len(segment_lanes), p=lengths / lengths.sum()))]
                margin = 0.5 * self.v_size[index, 0] + 1.0
                if lane.length_m <= 2 * margin:
                    continue
                s = float(rng.uniform(margin, lane.length_m - margin)) if index else 0.3 * lane.length_m
                taken = occupied.setdefault(lane.lane_id, [])
                if all(abs(s - other) > 0.5 * self.v_size[index, 0] + 8.0 for other in taken):
                    taken.append(s)
                    break
            else:
                raise ValueError(
                    f"num_vehicles + num_cyclists = {count - 1}: no room left on the lanes for vehicle {index}; ask for fewer vehicles"
                )
            route = _Route(self.network, [lane.lane_id])
            route.extend(rng, allow_turns=True)
            xy = route.point_at(s)
            tangent = route.point_at(s + 0.5) - xy
            self.routes.append(route)
            self.v_xy[index] = xy
            self.v_yaw[index] = np.arctan2(tangent[1], tangent[0])
            self.v_s[index] = s
        limit = layout.speed_limit_m_per_s
        self.v_desired = np.where(self.v_kind == AgentKind.CYCLIST, rng.uniform(3.5, 6.5, count), rng.uniform(0.8, 1.1, count) * limit)
        self.v_desired[0] = limit
        self.v_desired[self.v_kind == AgentKind.BUS] *= 0.85
        self.v_accel = np.where(np.isin(self.v_kind, [AgentKind.TRUCK, AgentKind.BUS]), 1.0, 1.8)
        self.v_speed = self.v_desired * rng.uniform(0.3, 0.9, count)
        self.v_lane_change_rate = np.where(np.isin(self.v_kind, [AgentKind.CAR, AgentKind.VAN]), 0.04, 0.0)
        self.v_changing_until_s = np.full(count, -np.inf)
        self.v_ids = [_uuid(rng) for _ in range(count)]

    def _corner(self, key: tuple[int, int, int, int]) -> np.ndarray:
        i, j, sx, sy = key
        offset = self.network.road_half_width_m + 0.5 * self.network.layout.sidewalk_width_m
        return self.network.node_center_m((i, j)) + offset * np.array([sx, sy], dtype=np.float64)

    def _spawn_pedestrians(self, count: int, *, groups: bool) -> None:
        """`count` people: each walks alone, or with `groups` leads a group whose other members follow it."""
        rng, network = self.rng, self.network
        members = _group_sizes(count, rng) if groups else np.ones(count, dtype=np.int64)
        count = len(members)
        nx, ny = network.layout.blocks_x, network.layout.blocks_y
        edges: dict[tuple, list[tuple[tuple, tuple[int, int] | None, str | None]]] = {}

        def connect(a: tuple, b: tuple, node: tuple[int, int] | None = None, axis: str | None = None) -> None:
            edges.setdefault(a, []).append((b, node, axis))
            edges.setdefault(b, []).append((a, node, axis))

        for i in range(nx + 1):
            for j in range(ny + 1):
                arms = network.arms((i, j))
                for s in (-1, 1):
                    if i < nx:
                        connect((i, j, 1, s), (i + 1, j, -1, s))
                    if j < ny:
                        connect((i, j, s, 1), (i, j + 1, s, -1))
                for arm, a, b in (("E", (1, 1), (1, -1)), ("W", (-1, 1), (-1, -1)), ("N", (1, 1), (-1, 1)), ("S", (1, -1), (-1, -1))):
                    crossing = arm in arms
                    connect((i, j, *a), (i, j, *b), (i, j) if crossing else None, _axis(ARMS[arm]) if crossing else None)
        self.ped_edges = edges
        keys = list(edges)
        self.p_from = [keys[int(rng.integers(len(keys)))] for _ in range(count)]
        self.p_to = []
        for start in self.p_from:
            choices = [edge for edge in edges[start] if edge[1] is None]
            self.p_to.append(choices[int(rng.integers(len(choices)))])
        self.p_progress = rng.uniform(0.0, 0.9, count)
        self.p_speed = rng.uniform(1.0, 1.6, count) * (rng.random(count) > 0.15)
        # Pedestrians keep to the right of their walking direction, so people walking towards each other pass.
        self.p_offset = rng.uniform(-0.95, -0.1, count)
        self.p_size = _sizes(AgentKind.PEDESTRIAN, count, rng)
        self.p_still_yaw = rng.uniform(-np.pi, np.pi, count)
        self.p_ids = [_uuid(rng) for _ in range(count)]
        # The leader of each person's group (-1: a leader or alone) and where it walks relative to the leader: metres
        # along the walking direction (set for followers only; offsets across it are `p_offset`).
        self.p_leader = np.full(count, -1, dtype=np.int64)
        self.p_along_m = np.zeros(count)
        for leader in np.flatnonzero(members > 1):
            self._add_followers(int(leader), int(members[leader]) - 1)
        self.p_xy = np.zeros((len(self.p_from), 2))
        self.p_yaw = np.zeros(len(self.p_from))
        self._place_pedestrians()

    def _add_followers(self, leader: int, count: int) -> None:
        """Appends `count` people walking with `leader`: abreast at `GROUP_SPACING_M` from the leader's side (the right
        of its walking direction) towards the left, in a new row `GROUP_ROW_M` behind where the sidewalk has no room."""
        rng = self.rng
        limit_m = max(0.5 * self.network.layout.sidewalk_width_m - GROUP_EDGE_CLEARANCE_M, 0.0)
        sizes = _sizes(AgentKind.PEDESTRIAN, count, rng)
        offsets, alongs = [float(self.p_offset[leader])], [0.0]
        row = 0
        for _ in range(count):
            offset = offsets[-1] + rng.uniform(*GROUP_SPACING_M)
            if offset > limit_m:
                # A new row behind the last one, starting at the leader's side.
                row += 1
                offset = offsets[0]
            offsets.append(offset)
            alongs.append(-GROUP_ROW_M * row + rng.uniform(-GROUP_STAGGER_M, GROUP_STAGGER_M))
        for offset, along, size in zip(offsets[1:], alongs[1:], sizes, strict=True):
            self.p_from.append(self.p_from[leader])
            self.p_to.append(self.p_to[leader])
            self.p_progress = np.append(self.p_progress, self.p_progress[leader])
            self.p_speed = np.append(self.p_speed, self.p_speed[leader])
            self.p_offset = np.append(self.p_offset, offset)
            self.p_size = np.concatenate([self.p_size, size[None]])
            self.p_still_yaw = np.append(self.p_still_yaw, 0.0)
            self.p_ids.append(_uuid(rng))
            self.p_leader = np.append(self.p_leader, leader)
            self.p_along_m = np.append(self.p_along_m, along)

    def _place_pedestrians(self, dt: float | None = None) -> None:
        """Puts everyone at their place on their edge (their offsets from its line), or with `dt` walks them towards it
        for `dt` seconds at up to `PEDESTRIAN_SIDESTEP_M_PER_S` above their pace."""
        place = np.empty_like(self.p_xy)
        for k in range(len(self.p_from)):
            leader = self.p_leader[k]
            if leader >= 0:
                # A follower walks the leader's edge at the leader's progress and speed.
                self.p_from[k], self.p_to[k] = self.p_from[leader], self.p_to[leader]
                self.p_progress[k], self.p_speed[k] = self.p_progress[leader], self.p_speed[leader]
            a, b = self._corner(self.p_from[k]), self._corner(self.p_to[k][0])
            direction = (b - a) / max(np.linalg.norm(b - a), 1e-9)
            normal = np.array([-direction[1], direction[0]])
            place[k] = a + (b - a) * self.p_progress[k] + direction * self.p_along_m[k] + normal * self.p_offset[k]
            if self.p_speed[k] > 0:
                self.p_yaw[k] = np.arctan2(direction[1], direction[0])
            elif leader >= 0:
                # A standing group talks: its members face the leader, the leader its first follower.
                to_leader = place[leader] - place[k]
                self.p_yaw[k] = np.arctan2(to_leader[1], to_leader[0])
                if k == np.flatnonzero(self.p_leader == leader)[0]:
                    self.p_yaw[leader] = np.arctan2(-to_leader[1], -to_leader[0])
            else:
                self.p_yaw[k] = self.p_still_yaw[k]
        if dt is None:
            self.p_xy = place
            return
        gap = place - self.p_xy
        distance = np.linalg.norm(gap, axis=1)
        reach = (self.p_speed + PEDESTRIAN_SIDESTEP_M_PER_S) * dt
        self.p_xy = self.p_xy + gap * np.minimum(1.0, reach / np.maximum(distance, 1e-12))[:, None]

    def _spawn_parked_and_static(
        self, parked_fraction: float, unparking_rate_per_min: float, time_range_s: tuple[float, float], num_static: int
    ) -> list[tuple[np.ndarray, float, int, int, float]]:
        """Parked cars, cones, bollards and signs; returns the parked cars that pull out within `time_range_s` (xy, yaw,
        kind, outer lane id, departure time), which join the vehicles instead."""
        rng, network = self.rng, self.network
        layout = network.layout
        positions, yaws, kinds = [], [], []
        departing: list[tuple[np.ndarray, float, int, int, float]] = []
        # Free parking slots beside the outer lane of each road: (position, heading, outer lane id).
        free_slots: list[tuple[np.ndarray, np.ndarray, int]] = []
        kerb_offset = layout.lanes_per_direction * layout.lane_width_m + 0.5 * layout.parking_width_m
        for lane in network.lanes:
            if lane.is_intersection or lane.lane_index != 0 or layout.parking_width_m < 2.0:
                continue
            outer = lane.lane_id
            while network.right_neighbor[network.index_of(outer)] >= 0:
                outer = int(network.right_neighbor[network.index_of(outer)])
            heading = np.asarray(lane.heading_in)
            right = np.array([heading[1], -heading[0]])
            start = lane.polyline_m[0] - right * (0.5 * layout.lane_width_m) + right * kerb_offset
            for slot in np.arange(NO_PARKING_M, lane.length_m - NO_PARKING_M, 6.5):
                if rng.random() < parked_fraction:
                    xy = start + heading * slot + right * rng.uniform(-0.15, 0.15)
                    yaw = float(np.arctan2(heading[1], heading[0]) + rng.normal(0.0, 0.03))
                    kind = AgentKind.CAR if rng.random() < 0.9 else AgentKind.VAN
                    depart_s = time_range_s[0] + rng.exponential(60.0 / unparking_rate_per_min) if unparking_rate_per_min > 0 else np.inf
                    if depart_s < time_range_s[1]:
                        departing.append((xy, yaw, kind, outer, depart_s))
                    else:
                        positions.append(xy)
                        yaws.append(yaw)
                        kinds.append(kind)
                else:
                    free_slots.append((start + heading * slot, heading, outer))
        # Static objects: cones in free parking slots, bollards and signs at sidewalk corners.
        corner_keys = list(self.ped_edges)
        for _ in range(num_static):
            choice = rng.random()
            if choice < 0.4 and free_slots:
                base, heading, _ = free_slots.pop(int(rng.integers(len(free_slots))))
                for offset in (-2.0, 0.0, 2.0):
                    positions.append(base + heading * offset + rng.normal(0.0, 0.1, 2))
                    yaws.append(float(rng.uniform(-np.pi, np.pi)))
                    kinds.append(AgentKind.CONE)
                continue
            # On the curb near a corner, clear of the pedestrians' path along the sidewalk's middle.
            i, j, sx, sy = corner_keys[int(rng.integers(len(corner_keys)))]
            sign = np.array([sx, sy], dtype=np.float64)
            along = np.zeros(2)
            along[int(rng.integers(2))] = rng.uniform(0.0, 4.0)
            positions.append(network.node_center_m((i, j)) + sign * (network.road_half_width_m + 0.35 + along))
            yaws.append(float(rng.uniform(-np.pi, np.pi)))
            kinds.append(AgentKind.BOLLARD if choice < 0.7 else AgentKind.SIGN)
        if positions:
            self.s_xy = np.array(positions)
            self.s_yaw = np.array(yaws)
            self.s_kind = np.array(kinds, dtype=np.int64)
        else:
            self.s_xy, self.s_yaw, self.s_kind = np.zeros((0, 2)), np.zeros(0), np.zeros(0, dtype=np.int64)
        self.s_size = np.concatenate([_sizes(int(k), 1, rng) for k in self.s_kind]) if len(self.s_kind) else np.zeros((0, 3))
        self.s_ids = [_uuid(rng) for _ in range(len(self.s_kind))]
        self.s_on_road = network.on_drivable_area(self.s_xy) if len(self.s_xy) else np.zeros(0, dtype=bool)
        # The slots left free, where cars may park: (position, outer lane id).
        self.parking_slots: list[tuple[np.ndarray, int]] = [(xy, outer) for xy, _, outer in free_slots]
        return departing

    def _add_departing(self, departing: list[tuple[np.ndarray, float, int, int, float]]) -> None:
        """Parked cars that pull out: vehicles that stand still until their departure time."""
        if not departing:
            return
        rng, count = self.rng, len(departing)
        kinds = np.array([kind for _, _, kind, _, _ in departing], dtype=np.int64)
        self.v_kind = np.concatenate([self.v_kind, kinds])
        self.v_size = np.concatenate([self.v_size, np.concatenate([_sizes(int(k), 1, rng) for k in kinds])])
        self.v_xy = np.concatenate([self.v_xy, np.array([xy for xy, _, _, _, _ in departing])])
        self.v_yaw = np.concatenate([self.v_yaw, np.array([yaw for _, yaw, _, _, _ in departing])])
        self.v_speed = np.concatenate([self.v_speed, np.zeros(count)])
        for xy, _, _, outer, _ in departing:
            route = _Route(self.network, [outer])
            route.extend(rng, allow_turns=True)
            self.routes.append(route)
            self.v_s = np.append(self.v_s, route.project(xy))
        limit = self.network.layout.speed_limit_m_per_s
        self.v_desired = np.concatenate([self.v_desired, rng.uniform(0.8, 1.1, count) * limit])
        self.v_accel = np.concatenate([self.v_accel, np.full(count, 1.8)])
        self.v_lane_change_rate = np.concatenate([self.v_lane_change_rate, np.full(count, 0.04)])
        self.v_changing_until_s = np.concatenate([self.v_changing_until_s, np.full(count, -np.inf)])
        self.v_ids += [_uuid(rng) for _ in range(count)]
        self.v_wants_slot = np.concatenate([self.v_wants_slot, np.zeros(count, dtype=bool)])
        self.v_slot += [None] * count
        self.v_parked = np.concatenate([self.v_parked, np.ones(count, dtype=bool)])
        self.v_depart_s = np.concatenate([self.v_depart_s, np.array([depart_s for _, _, _, _, depart_s in departing])])
        self.v_unparking_until_s = np.concatenate([self.v_unparking_until_s, np.full(count, -np.inf)])

    # ---- dynamics ----------------------------------------------------------------------------------------------
    def _obstacles(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Positions, half widths, half lengths, city velocities and lateral safety margins of everything a vehicle may
        have to follow (pedestrians get a wide margin: drivers slow down for people stepping onto their path)."""
        v_velocity = self.v_speed[:, None] * np.stack([np.cos(self.v_yaw), np.sin(self.v_yaw)], axis=1)
        p_velocity = self.p_speed[:, None] * np.stack([np.cos(self.p_yaw), np.sin(self.p_yaw)], axis=1)
        on_road = self.s_on_road
        xy = np.concatenate([self.v_xy, self.p_xy, self.s_xy[on_road]])
        half_w = 0.5 * np.concatenate([self.v_size[:, 1], self.p_size[:, 1], self.s_size[on_road, 1]])
        half_l = 0.5 * np.concatenate([self.v_size[:, 0], self.p_size[:, 0], self.s_size[on_road, 0]])
        velocity = np.concatenate([v_velocity, p_velocity, np.zeros((int(on_road.sum()), 2))])
        margin = np.concatenate([np.full(len(self.v_xy), 0.3), np.full(len(self.p_xy), PEDESTRIAN_MARGIN_M), np.full(int(on_road.sum()), 0.3)])
        return xy, half_w, half_l, velocity, margin

    def _stop_line_gap(self, index: int, time_s: float) -> float:
        """Distance to the stop line the vehicle must respect (inf when none)."""
        route, s = self.routes[index], self.v_s[index]
        first = self.network.lane(route.lane_ids[0])
        if first.is_intersection or len(route.lane_ids) < 3:
            return np.inf
        connector = self.network.lane(route.lane_ids[1])
        # The stop line lies before the crosswalk at the end of the lane.
        distance = route.lane_end_s[0] - s - STOP_LINE_SETBACK_M
        if distance > LOOKAHEAD_M:
            return np.inf
        node = connector.node
        assert node is not None
        light = signal_state(self.network, self.signal_offset_s, node, _axis(connector.heading_in), time_s)
        must_stop = light == SignalState.STOP
        if light == SignalState.CAUTION:
            must_stop = distance > self.v_speed[index] ** 2 / (2 * YELLOW_STOP_DECEL_M_PER_S2)
        if not must_stop and connector.turn == "left":
            must_stop = self._oncoming(node, np.asarray(connector.heading_in))
        if not must_stop:
            must_stop = self._intersection_busy(index, node, connector) or self._exit_blocked(index, route.lane_ids[2])
        if must_stop and distance > self.v_speed[index] ** 2 / (2 * MAX_DECEL_M_PER_S2) - 0.5 - STOP_LINE_SETBACK_M:
            return distance
        return np.inf

    def _intersection_busy(self, index: int, node: tuple[int, int], connector: Lane) -> bool:
        """Whether a vehicle whose path crosses the connector's is inside the intersection (enter only when clear)."""
        relative = self.v_xy - self.network.node_center_m(node)
        inside = np.all(np.abs(relative) <= self.network.road_half_width_m + 0.5, axis=1)
        inside[index] = False
        if not inside.any():
            return False
        difference = self.v_yaw[inside] - np.arctan2(connector.heading_in[1], connector.heading_in[0])
        crossing = np.abs(np.sin(difference)) > 0.5
        oncoming = np.cos(difference) < -0.7
        return bool(np.any(crossing | (oncoming & (connector.turn == "left"))))

    def _exit_blocked(self, index: int, exit_lane_id: int) -> bool:
        """Whether a (nearly) stopped vehicle occupies the start of the lane beyond the intersection (do not block it)."""
        exit_lane = self.network.lane(exit_lane_id)
        start = exit_lane.polyline_m[0]
        heading = np.arctan2(*(exit_lane.polyline_m[1] - start)[::-1])
        near = np.linalg.norm(self.v_xy - start, axis=1) < EXIT_CLEARANCE_M
        near[index] = False
        aligned = np.cos(self.v_yaw - heading) > 0.7
        return bool(np.any(near & aligned & (self.v_speed < 1.0)))

    def _oncoming(self, node: tuple[int, int], heading: np.ndarray) -> bool:
        center = self.network.node_center_m(node)
        relative = self.v_xy - center
        along = relative @ heading
        lateral = relative @ np.array([-heading[1], heading[0]])
        facing = np.stack([np.cos(self.v_yaw), np.sin(self.v_yaw)], axis=1) @ heading < -0.7
        half = self.network.road_half_width_m
        approaching = (along > -half) & (along < half + 35.0) & (lateral > 0) & (lateral < half) & facing & (self.v_speed > 1.0)
        return bool(np.any(approaching))

    def _try_lane_change(self, index: int, time_s: float) -> None:
        route = self.routes[index]
        lane = self.network.lane(route.lane_ids[0])
        if lane.is_intersection or route.lane_end_s[0] - self.v_s[index] < 30.0:
            return
        lane_index = self.network.index_of(lane.lane_id)
        options = [n for n in (self.network.left_neighbor[lane_index], self.network.right_neighbor[lane_index]) if n >= 0]
        if not options:
            return
        target = self.network.lane(int(options[int(self.rng.integers(len(options)))]))
        new_route = _Route(self.network, [target.lane_id])
        s_new = new_route.project(self.v_xy[index])
        others = np.delete(np.arange(len(self.v_xy)), index)
        distance_to_lane = np.linalg.norm(target.polyline_m[None, :, :] - self.v_xy[others, None, :], axis=2).min(axis=1)
        on_target = others[distance_to_lane < 1.5]
        for other in on_target:
            if abs(new_route.project(self.v_xy[other]) - s_new) < 15.0:
                return
        new_route.extend(self.rng, allow_turns=self.v_kind[index] != AgentKind.CYCLIST)
        self.routes[index] = new_route
        self.v_changing_until_s[index] = time_s + LANE_CHANGE_S
        self.v_s[index] = s_new

    def _outer_lane_clear(self, index: int) -> bool:
        """Whether a parked car can pull out: no other vehicle on its lane from UNPARK_CLEARANCE_M behind to 10 m ahead."""
        route = self.routes[index]
        s = route.project(self.v_xy[index])
        near = np.flatnonzero(np.linalg.norm(self.v_xy - self.v_xy[index], axis=1) < UNPARK_CLEARANCE_M + 10.0)
        for other in near[(near != index) & ~self.v_parked[near]].tolist():
            other_s = route.project(self.v_xy[other])
            lateral = np.linalg.norm(route.point_at(other_s) - self.v_xy[other])
            if lateral < 2.5 and s - UNPARK_CLEARANCE_M <= other_s <= s + 10.0:
                return False
        return True

    def _kerb_ahead_free(self, index: int, obstacles_xy: np.ndarray) -> bool:
        """Whether no obstacle stands within UNPARK_FREE_AHEAD_M ahead of a parked car, in its own line."""
        heading = np.array([np.cos(self.v_yaw[index]), np.sin(self.v_yaw[index])])
        relative = obstacles_xy - self.v_xy[index]
        along = relative @ heading
        lateral = relative @ np.array([-heading[1], heading[0]])
        ahead = (along > 0.5) & (along < UNPARK_FREE_AHEAD_M) & (np.abs(lateral) < 1.5)
        return not bool(ahead.any())

    def _pull_out(self, index: int, time_s: float) -> None:
        """Leaves the slot: steers into the outer lane like a lane change; the slot is free again."""
        route = self.routes[index]
        self.parking_slots.append((self.v_xy[index].copy(), route.lane_ids[0]))
        self.v_parked[index] = False
        self.v_depart_s[index] = np.inf
        self.v_s[index] = route.project(self.v_xy[index])
        self.v_unparking_until_s[index] = time_s + LANE_CHANGE_S

    def _claim_slot(self, index: int) -> None:
        """A car that wants to park takes the nearest free slot PARKING_SEARCH_M ahead beside the lane it drives on whose
        kerb is clear over the stretch where the car pulls over."""
        route = self.routes[index]
        lane = self.network.lane(route.lane_ids[0])
        if lane.is_intersection or self.network.right_neighbor[self.network.index_of(lane.lane_id)] >= 0:
            return
        # Everything standing at the kerb (parked cars, cones) and the slots other cars are heading for.
        kerb = [self.s_xy, self.v_xy[self.v_parked]] + [np.asarray(slot[0])[None] for slot in self.v_slot if slot is not None]
        standing = np.concatenate(kerb)
        best, best_gap = -1, np.inf
        for k, (xy, outer) in enumerate(self.parking_slots):
            if outer != lane.lane_id:
                continue
            slot_s = route.project(xy)
            gap = slot_s - self.v_s[index]
            if not (PARKING_SEARCH_M[0] <= gap <= PARKING_SEARCH_M[1] and gap < best_gap):
                continue
            # The car reaches the kerb line before the slot: that stretch of kerb must be free.
            heading = route.point_at(slot_s + 1.0) - route.point_at(slot_s)
            heading /= max(float(np.linalg.norm(heading)), 1e-9)
            relative = standing - xy
            along = relative @ heading
            lateral = np.abs(relative @ np.array([-heading[1], heading[0]]))
            behind = (along > -(PARKING_SWERVE_M + PARKING_STRAIGHTEN_M)) & (along < 4.0) & (lateral < 1.5)
            if not behind.any():
                best, best_gap = k, gap
        if best >= 0:
            self.v_slot[index] = self.parking_slots.pop(best)

    def _crossings_in_use(self, time_s: float) -> _Crossings:
        """Crosswalks a pedestrian walks on or is allowed to step onto."""
        keys, starts, ends, walked = [], [], [], []
        for k in range(len(self.p_from)):
            target, node, axis = self.p_to[k]
            if node is None or self.p_speed[k] <= 0 or self.p_progress[k] >= 1.0:
                continue
            a, b = self._corner(self.p_from[k]), self._corner(target)
            length = float(np.linalg.norm(b - a))
            if self.p_progress[k] <= 0.0 and not self._may_cross(k, node, axis, length, time_s):
                continue
            keys.append(frozenset((self.p_from[k], target)))
            starts.append(a)
            ends.append(b)
            walked.append(self.p_progress[k] * length)
        return _Crossings(keys, np.array(starts).reshape(-1, 2), np.array(ends).reshape(-1, 2), np.array(walked))

    def _may_cross(self, k: int, node: tuple[int, int], axis: str | None, length_m: float, time_s: float) -> bool:
        """Whether the light lets pedestrian `k` cross (always at an unsignalised crosswalk): the crossed road's light
        stays red for the whole crossing."""
        if not self.network.is_signalised(node):
            return True
        assert axis is not None  # a crossing edge has both its node and the axis of the road it crosses
        return not signal_is_green(self.network, self.signal_offset_s, node, axis, time_s) and not signal_is_green(
            self.network, self.signal_offset_s, node, axis, time_s + length_m / self.p_speed[k]
        )

    def _crosswalk_gap(self, index: int, samples: np.ndarray, ahead: np.ndarray, crossings: _Crossings) -> float:
        """Distance from the vehicle's front to the first crosswalk ahead whose pedestrian it must let pass (inf when
        none). A crossing the vehicle can no longer stop for joins `committed_crossings`, so its pedestrians wait."""
        length = np.linalg.norm(crossings.end_m - crossings.start_m, axis=1)
        t, distance = _onto_segments(ahead, crossings.start_m, crossings.end_m)
        near = distance < 0.5 * self.v_size[index, 1] + 0.5 * CROSSWALK_WIDTH_M + 0.3
        gap = np.inf
        for column in np.flatnonzero(near.any(axis=0)):
            row = int(np.argmax(near[:, column]))
            walked_m = crossings.walked_m[column]
            if walked_m > t[row, column] * length[column] + 0.5 * self.v_size[index, 1] + PEDESTRIAN_CLEARANCE_M:
                continue  # the pedestrian is past this vehicle's path
            front_gap = samples[row] - self.v_s[index] - 0.5 * self.v_size[index, 0]
            if front_gap - MIN_GAP_M > self.v_speed[index] ** 2 / (2 * PEDESTRIAN_YIELD_DECEL_M_PER_S2):
                gap = min(gap, front_gap)
            elif walked_m <= 0.0:
                self.committed_crossings.add(crossings.keys[column])
        return gap

    def step_vehicles(self, dt: float, time_s: float) -> tuple[np.ndarray, np.ndarray]:
        xy, half_w, half_l, velocity, margin = self._obstacles()
        count = len(self.v_xy)
        crossings = self._crossings_in_use(time_s)
        self.committed_crossings = set()
        acceleration = np.zeros(count)
        steer = np.zeros(count)
        for index in range(count):
            if self.v_parked[index]:
                if time_s < self.v_depart_s[index] or not self._outer_lane_clear(index) or not self._kerb_ahead_free(index, xy):
                    self.v_speed[index] = 0.0
                    continue  # stays put: no acceleration, no steering
                self._pull_out(index, time_s)
            route = self.routes[index]
            if self.v_slot[index] is None and self.rng.random() < self.v_lane_change_rate[index] * dt:
                self._try_lane_change(index, time_s)
                route = self.routes[index]
            self.v_s[index] = route.drop_passed(route.project(self.v_xy[index], self.v_s[index]))
            route.extend(self.rng, allow_turns=self.v_kind[index] != AgentKind.CYCLIST)
            s = self.v_s[index]
            if self.v_wants_slot[index] and self.v_slot[index] is None:
                self._claim_slot(index)
            slot = self.v_slot[index]
            slot_gap = np.inf
            if slot is not None:
                slot_s = route.project(slot[0])
                slot_gap = slot_s - s
                if slot_gap < 1.0 and self.v_speed[index] < 0.3:
                    self.v_parked[index], self.v_slot[index], self.v_wants_slot[index] = True, None, False
                    self.v_speed[index] = 0.0
                    continue
            samples = s + np.arange(1.0, LOOKAHEAD_M, 1.0)
            ahead = route.point_at(samples)
            nearby = np.flatnonzero(np.abs(xy - self.v_xy[index]).max(axis=1) < LOOKAHEAD_M + 2.0)
            nearby = nearby[nearby != index]
            offsets = ahead[:, None, :] - xy[None, nearby, :]
            hits = np.einsum("pad,pad->pa", offsets, offsets) < (half_w[index] + half_w[None, nearby] + margin[None, nearby]) ** 2
            gap, leader_speed = np.inf, 0.0
            if hits.any():
                first_row = int(np.argmax(hits.any(axis=1)))
                blocker = int(nearby[np.flatnonzero(hits[first_row])[0]])
                gap = samples[first_row] - s - half_l[index] - half_l[blocker]
                tangent = ahead[min(first_row + 1, len(ahead) - 1)] - ahead[max(first_row - 1, 0)]
                tangent /= max(np.linalg.norm(tangent), 1e-9)
                leader_speed = max(0.0, float(velocity[blocker] @ tangent))
            stop = self._stop_line_gap(index, time_s) - half_l[index]
            # A car pulling into a slot stops with its centre there (IDM keeps MIN_GAP_M to a standing obstacle).
            stop = min(stop, slot_gap + MIN_GAP_M)
            if crossings.keys:
                stop = min(stop, self._crosswalk_gap(index, samples, ahead, crossings))
            if stop < gap:
                gap, leader_speed = stop, 0.0
            desired = self.v_desired[index]
            if slot_gap < PARKING_APPROACH_M:
                desired = min(desired, PARKING_SPEED_M_PER_S)
            lane = self.network.lane(route.lane_ids[0])
            upcoming_turn = len(route.lane_ids) > 1 and self.network.lane(route.lane_ids[1]).turn in ("left", "right")
            if (lane.is_intersection and lane.turn in ("left", "right")) or (upcoming_turn and route.lane_end_s[0] - s < 15.0):
                desired = min(desired, TURN_SPEED_M_PER_S)
            speed = self.v_speed[index]
            accel_max = self.v_accel[index]
            free = 1.0 - (speed / max(desired, 0.1)) ** 4
            interaction = 0.0
            if np.isfinite(gap):
                wanted = MIN_GAP_M + speed * TIME_HEADWAY_S + speed * (speed - leader_speed) / (2.0 * np.sqrt(accel_max * COMFORT_DECEL_M_PER_S2))
                interaction = (max(wanted, 0.0) / max(gap, 0.1)) ** 2
            acceleration[index] = np.clip(accel_max * (free - interaction), -MAX_DECEL_M_PER_S2, accel_max)
            # Pure pursuit towards the route point one look-ahead distance ahead of the rear axle.
            wheelbase = 0.6 * self.v_size[index, 0]
            lookahead = float(np.clip(3.0 + 0.6 * speed, 4.0, 15.0))
            if time_s < self.v_changing_until_s[index]:
                lookahead = LANE_CHANGE_LOOKAHEAD_M + 0.6 * speed
            if time_s < self.v_unparking_until_s[index]:
                lookahead = UNPARK_LOOKAHEAD_M + 0.6 * speed
            rear = self.v_xy[index] - 0.5 * wheelbase * np.array([np.cos(self.v_yaw[index]), np.sin(self.v_yaw[index])])
            target_s = route.project(rear, s - 0.5 * wheelbase) + lookahead
            target = route.point_at(target_s)
            if slot is not None:
                # Towards the kerb line over PARKING_SWERVE_M, reached PARKING_STRAIGHTEN_M before the slot.
                kerbward = slot[0] - route.point_at(slot_s)
                ahead_of_kerb = slot_s - PARKING_STRAIGHTEN_M - target_s
                target = target + kerbward * float(np.clip(1.0 - ahead_of_kerb / PARKING_SWERVE_M, 0.0, 1.0))
            alpha = np.arctan2(target[1] - rear[1], target[0] - rear[0]) - self.v_yaw[index]
            steer[index] = np.clip(np.arctan2(2.0 * wheelbase * np.sin(alpha), lookahead), -MAX_STEER_RAD, MAX_STEER_RAD)
        # Kinematic bicycle (reference point: box centre, slip angle from the steering at the front axle).
        wheelbase = 0.6 * self.v_size[:, 0]
        speed = np.maximum(self.v_speed + acceleration * dt, 0.0)
        beta = np.arctan(0.5 * np.tan(steer))
        yaw_rate = speed * np.cos(beta) * np.tan(steer) / wheelbase
        self.v_xy += dt * speed[:, None] * np.stack([np.cos(self.v_yaw + beta), np.sin(self.v_yaw + beta)], axis=1)
        self.v_yaw = (self.v_yaw + yaw_rate * dt + np.pi) % (2 * np.pi) - np.pi
        actual = (speed - self.v_speed) / dt
        self.v_speed = speed
        return actual, yaw_rate

    def _vehicle_on_crossing(self, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether a vehicle stands on the crossing from `a` to `b`."""
        _, distance = _onto_segments(self.v_xy, a[None], b[None])
        return bool(np.any(distance[:, 0] < 0.5 * self.v_size[:, 0] + 0.5))

    def step_pedestrians(self, dt: float, time_s: float) -> None:
        for k in range(len(self.p_from)):
            if self.p_speed[k] <= 0 or self.p_leader[k] >= 0:
                continue
            target, node, axis = self.p_to[k]
            a, b = self._corner(self.p_from[k]), self._corner(target)
            length = max(float(np.linalg.norm(b - a)), 1e-6)
            if node is not None and self.p_progress[k] <= 0.0:
                if not self._may_cross(k, node, axis, length, time_s):
                    continue
                if frozenset((self.p_from[k], target)) in self.committed_crossings or self._vehicle_on_crossing(a, b):
                    continue
            self.p_progress[k] += self.p_speed[k] * dt / length
            if self.p_progress[k] >= 1.0:
                arrived = target
                choices = [edge for edge in self.ped_edges[arrived] if edge[0] != self.p_from[k]] or self.ped_edges[arrived]
                self.p_from[k] = arrived
                self.p_to[k] = choices[int(self.rng.integers(len(choices)))]
                self.p_progress[k] = 0.0
        self._place_pedestrians(dt)


def simulate_traffic(network: RoadNetwork, config: TrafficConfig, timestamps_s: np.ndarray, rng: np.random.Generator) -> Trajectories:
    """Runs the traffic from `timestamps_s[0] - warmup_s` and records every agent at `timestamps_s`."""
    dt = 1.0 / config.physics_hz
    start = float(timestamps_s[0]) - config.warmup_s
    traffic = _Traffic(network, config, rng, (start, float(timestamps_s[-1])))
    steps_to = np.round((np.asarray(timestamps_s, dtype=np.float64) - start) / dt).astype(np.int64)
    num_v, num_p, num_s = len(traffic.v_xy), len(traffic.p_from), len(traffic.s_kind)
    total = num_v + num_p + num_s
    frames = len(steps_to)
    center = np.zeros((frames, total, 3))
    yaw = np.zeros((frames, total))
    velocity = np.zeros((frames, total, 2))
    ego_speed, ego_accel, ego_yaw_rate = np.zeros(frames), np.zeros(frames), np.zeros(frames)
    kind = np.concatenate([traffic.v_kind, np.full(num_p, AgentKind.PEDESTRIAN), traffic.s_kind]).astype(np.int64)
    size = np.concatenate([traffic.v_size, traffic.p_size, traffic.s_size])
    previous_p = traffic.p_xy.copy()
    accel = np.zeros(num_v)
    yaw_rate = np.zeros(num_v)
    controlled = [lane for lane in network.lanes if lane.node is not None and network.is_signalised(lane.node)]
    signal_lane_ids = np.array([lane.lane_id for lane in controlled], dtype=np.int64)
    signal_stop_points = np.array(
        [lane.polyline_m[0] - STOP_LINE_SETBACK_M * np.asarray(lane.heading_in) for lane in controlled]
    ).reshape(-1, 2)
    signal_states = np.zeros((frames, len(controlled)), dtype=np.int8)
    recorded = 0
    for step in range(int(steps_to[-1]) + 1):
        time_s = start + step * dt
        if recorded < frames and step == steps_to[recorded]:
            xy = np.concatenate([traffic.v_xy, traffic.p_xy, traffic.s_xy])
            ground = network.ground_height_m(xy)
            center[recorded, :, :2] = xy
            center[recorded, :, 2] = ground + 0.5 * size[:, 2]
            yaw[recorded] = np.concatenate([traffic.v_yaw, traffic.p_yaw, traffic.s_yaw])
            v_velocity = traffic.v_speed[:, None] * np.stack([np.cos(traffic.v_yaw), np.sin(traffic.v_yaw)], axis=1)
            velocity[recorded, :num_v] = v_velocity
            velocity[recorded, num_v : num_v + num_p] = (traffic.p_xy - previous_p) / dt
            ego_speed[recorded], ego_accel[recorded], ego_yaw_rate[recorded] = traffic.v_speed[0], accel[0], yaw_rate[0]
            for column, lane in enumerate(controlled):
                assert lane.node is not None  # controlled lanes are connectors
                signal_states[recorded, column] = signal_state(network, traffic.signal_offset_s, lane.node, _axis(lane.heading_in), time_s)
            recorded += 1
        previous_p = traffic.p_xy.copy()
        accel, yaw_rate = traffic.step_vehicles(dt, time_s)
        traffic.step_pedestrians(dt, time_s)
    category = np.array([CATEGORY_ID[_SIZES[int(k)][0]] for k in kind], dtype=np.int64)
    return Trajectories(
        timestamps_s=np.asarray(timestamps_s, dtype=np.float64),
        track_ids=np.array(traffic.v_ids + traffic.p_ids + traffic.s_ids),
        kind=kind,
        category=category,
        size_lwh_m=size,
        color_index=rng.integers(0, 1 << 16, total),
        center_m=center,
        yaw_rad=yaw,
        velocity_m_per_s=velocity,
        ego_index=0,
        ego_speed_m_per_s=ego_speed,
        ego_acceleration_m_per_s2=ego_accel,
        ego_yaw_rate_rad_per_s=ego_yaw_rate,
        signal_lane_ids=signal_lane_ids,
        signal_stop_points_m=signal_stop_points,
        signal_state=signal_states,
    )
