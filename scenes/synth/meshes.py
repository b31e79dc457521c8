"""Triangle meshes of the synthetic city: the static world (ground, blocks, buildings, trees, poles, lights) and the
agents (one template per kind, scaled into each agent's box), each triangle tagged with its Cityscapes label id.

Every agent mesh lies inside the agent's annotated box, so a LiDAR return on an agent is inside its box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from scenes.synth.agents import AgentKind, Trajectories
from scenes.synth.roads import RoadNetwork
from scenes.synth.styles import CityscapesLabel as L

__all__ = ["Mesh", "build_city_mesh", "build_agent_mesh", "surface_label"]

GLASS: Final = 0.3
TYRE: Final = 0.15


@dataclass(frozen=True, eq=False)
class Mesh:
    """Triangles with a per-triangle Cityscapes label, albedo multiplier and owner (agent index, -1 for the city)."""

    vertices: np.ndarray
    triangles: np.ndarray
    label: np.ndarray
    albedo: np.ndarray
    owner: np.ndarray

    @staticmethod
    def concatenate(parts: list[Mesh]) -> Mesh:
        offsets = np.cumsum([0] + [len(part.vertices) for part in parts[:-1]])
        return Mesh(
            np.concatenate([part.vertices for part in parts]).astype(np.float32),
            np.concatenate([part.triangles + offset for part, offset in zip(parts, offsets, strict=True)]).astype(np.uint32),
            np.concatenate([part.label for part in parts]).astype(np.uint8),
            np.concatenate([part.albedo for part in parts]).astype(np.float32),
            np.concatenate([part.owner for part in parts]).astype(np.int32),
        )


_BOX_TRIANGLES: Final = np.array(
    [[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4], [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]],
    dtype=np.int64,
)


def _box(low: tuple[float, float, float], high: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """An axis-aligned box: 8 vertices (bottom loop then top loop) and 12 outward-facing triangles."""
    (x0, y0, z0), (x1, y1, z1) = low, high
    vertices = np.array(
        [[x0, y0, z0], [x1, y0, z0], [x1, y1, z0], [x0, y1, z0], [x0, y0, z1], [x1, y0, z1], [x1, y1, z1], [x0, y1, z1]], dtype=np.float64
    )
    return vertices, _BOX_TRIANGLES.copy()


def _prism(radius: float, z0: float, z1: float, sides: int = 8) -> tuple[np.ndarray, np.ndarray]:
    angles = np.linspace(0.0, 2 * np.pi, sides, endpoint=False)
    ring = np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
    vertices = np.concatenate([np.hstack([ring, np.full((sides, 1), z0)]), np.hstack([ring, np.full((sides, 1), z1)]), [[0, 0, z0], [0, 0, z1]]])
    triangles = []
    for k in range(sides):
        n = (k + 1) % sides
        triangles += [[k, n, sides + n], [k, sides + n, sides + k], [2 * sides, n, k], [2 * sides + 1, sides + k, sides + n]]
    return vertices, np.array(triangles, dtype=np.int64)


def _icosphere(radius: float) -> tuple[np.ndarray, np.ndarray]:
    t = (1.0 + 5**0.5) / 2.0
    vertices = np.array(
        [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]],
        dtype=np.float64,
    )
    triangles = np.array(
        [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8],
         [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]],
        dtype=np.int64,
    )
    return radius * vertices / np.linalg.norm(vertices, axis=1, keepdims=True), triangles


def _pyramid() -> tuple[np.ndarray, np.ndarray]:
    vertices = np.array([[-0.5, -0.5, -0.5], [0.5, -0.5, -0.5], [0.5, 0.5, -0.5], [-0.5, 0.5, -0.5], [0.0, 0.0, 0.5]])
    return vertices, np.array([[0, 2, 1], [0, 3, 2], [0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]], dtype=np.int64)


def _part(geometry: tuple[np.ndarray, np.ndarray], label: int, albedo: float = 1.0, owner: int = -1) -> Mesh:
    vertices, triangles = geometry
    count = len(triangles)
    return Mesh(vertices, triangles, np.full(count, label), np.full(count, albedo), np.full(count, owner))


def _wheels(z_top: float, label: int) -> list[Mesh]:
    """Four tyres (dark, labelled as their vehicle, as Cityscapes does)."""
    return [
        _part(_box((x - 0.09, y0, -0.5), (x + 0.09, y1, z_top)), label, TYRE)
        for x in (-0.32, 0.32)
        for y0, y1 in ((-0.5, -0.36), (0.36, 0.5))
    ]


def _template(kind: int, body_label: int) -> Mesh:
    """The mesh of an agent kind in unit box coordinates (the box spans [-0.5, 0.5] on every axis)."""
    if kind == AgentKind.CAR:
        parts = [
            _part(_box((-0.5, -0.5, -0.32), (0.5, 0.5, 0.08)), body_label),
            _part(_box((-0.33, -0.45, 0.08), (0.22, 0.45, 0.5)), body_label, GLASS),
            *_wheels(-0.2, body_label),
        ]
    elif kind == AgentKind.VAN:
        parts = [
            _part(_box((-0.5, -0.5, -0.36), (0.5, 0.5, 0.15)), body_label),
            _part(_box((-0.5, -0.48, 0.15), (0.35, 0.48, 0.5)), body_label, 0.8),
            *_wheels(-0.25, body_label),
        ]
    elif kind == AgentKind.TRUCK:
        parts = [
            _part(_box((-0.5, -0.5, -0.3), (0.22, 0.5, 0.5)), body_label),
            _part(_box((0.25, -0.48, -0.35), (0.5, 0.48, 0.25)), body_label, 0.7),
            *_wheels(-0.3, body_label),
        ]
    elif kind == AgentKind.BUS:
        parts = [
            _part(_box((-0.5, -0.5, -0.38), (0.5, 0.5, 0.05)), body_label),
            _part(_box((-0.5, -0.5, 0.05), (0.5, 0.5, 0.5)), body_label, GLASS + 0.2),
            *_wheels(-0.3, body_label),
        ]
    elif kind == AgentKind.CYCLIST:
        parts = [
            _part(_box((-0.5, -0.1, -0.5), (0.5, 0.1, -0.12)), L.BICYCLE),
            _part(_box((-0.22, -0.4, -0.12), (0.15, 0.4, 0.38)), L.RIDER),
            _part(_box((-0.1, -0.15, 0.38), (0.1, 0.15, 0.5)), L.RIDER, 0.8),
        ]
    elif kind == AgentKind.PEDESTRIAN:
        parts = [
            _part(_box((-0.2, -0.3, -0.5), (0.2, 0.3, 0.0)), L.PERSON, 0.6),
            _part(_box((-0.25, -0.45, 0.0), (0.25, 0.45, 0.36)), L.PERSON),
            _part(_box((-0.16, -0.16, 0.36), (0.16, 0.16, 0.5)), L.PERSON, 1.3),
        ]
    elif kind == AgentKind.CONE:
        parts = [_part(_pyramid(), L.STATIC)]
    elif kind == AgentKind.BOLLARD:
        parts = [_part(_prism(0.5, -0.5, 0.5), L.POLE)]
    elif kind == AgentKind.SIGN:
        parts = [
            _part(_box((-0.3, -0.06, -0.5), (0.3, 0.06, 0.2)), L.POLE),
            _part(_box((-0.5, -0.5, 0.2), (0.5, 0.5, 0.5)), L.TRAFFIC_SIGN),
        ]
    else:
        raise ValueError(f"no mesh template for agent kind {kind}")
    return Mesh.concatenate(parts)


_BODY_LABEL: Final = {
    AgentKind.CAR: L.CAR,
    AgentKind.VAN: L.CAR,
    AgentKind.TRUCK: L.TRUCK,
    AgentKind.BUS: L.BUS,
}
TEMPLATES: Final = {kind: _template(kind, _BODY_LABEL.get(kind, L.UNLABELED)) for kind in range(AgentKind.SIGN + 1)}


def build_agent_mesh(trajectories: Trajectories, frame_index: int, agents: np.ndarray) -> Mesh:
    """City-frame mesh of `agents` (indices) at `frame_index`; `Mesh.owner` holds each triangle's agent index."""
    parts = []
    center = trajectories.center_m[frame_index]
    yaw = trajectories.yaw_rad[frame_index]
    for kind in np.unique(trajectories.kind[agents]):
        chosen = agents[trajectories.kind[agents] == kind]
        template = TEMPLATES[int(kind)]
        local = template.vertices[None, :, :] * trajectories.size_lwh_m[chosen, None, :]
        c, s = np.cos(yaw[chosen])[:, None], np.sin(yaw[chosen])[:, None]
        world = np.stack([c * local[..., 0] - s * local[..., 1], s * local[..., 0] + c * local[..., 1], local[..., 2]], axis=-1)
        world += center[chosen, None, :]
        count, num_vertices = len(chosen), len(template.vertices)
        triangles = template.triangles[None] + (np.arange(count) * num_vertices)[:, None, None]
        parts.append(
            Mesh(
                world.reshape(-1, 3),
                triangles.reshape(-1, 3),
                np.tile(template.label, count),
                np.tile(template.albedo, count),
                np.repeat(chosen, len(template.triangles)),
            )
        )
    if not parts:
        return Mesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint32), np.zeros(0, np.uint8), np.zeros(0, np.float32), np.zeros(0, np.int32))
    return Mesh.concatenate(parts)


def surface_label(network: RoadNetwork, xy_m: np.ndarray) -> np.ndarray:
    """Cityscapes label of the ground at city points: road, sidewalk (a ring along the curbs) or terrain."""
    xy = np.asarray(xy_m, dtype=np.float64).reshape(-1, 2)
    half = network.road_half_width_m
    gx, gy = network.grid_x_m, network.grid_y_m
    row = np.min(np.abs(xy[:, 1:2] - gy[None, :]), axis=1) - half
    col = np.min(np.abs(xy[:, 0:1] - gx[None, :]), axis=1) - half
    row = np.where((xy[:, 0] >= gx[0] - half) & (xy[:, 0] <= gx[-1] + half), row, np.inf)
    col = np.where((xy[:, 1] >= gy[0] - half) & (xy[:, 1] <= gy[-1] + half), col, np.inf)
    distance = np.minimum(row, col)
    labels = np.full(len(xy), L.TERRAIN, dtype=np.uint8)
    labels[distance <= network.layout.sidewalk_width_m] = L.SIDEWALK
    labels[distance <= 0.0] = L.ROAD
    return labels


def _blocks(network: RoadNetwork) -> list[tuple[float, float, float, float]]:
    block, half = network.layout.block_size_m, network.road_half_width_m
    xs = np.concatenate([[-block], network.grid_x_m, [network.grid_x_m[-1] + block]])
    ys = np.concatenate([[-block], network.grid_y_m, [network.grid_y_m[-1] + block]])
    return [
        (x0 + half, y0 + half, x1 - half, y1 - half)
        for x0, x1 in zip(xs[:-1], xs[1:], strict=True)
        for y0, y1 in zip(ys[:-1], ys[1:], strict=True)
    ]


def build_city_mesh(network: RoadNetwork, rng: np.random.Generator, *, clutter: bool = True) -> Mesh:
    """The static city: ground, raised blocks with sidewalks, buildings, street trees, lamp posts, traffic lights and,
    with `clutter`, the street's unannotated clutter (`_street_clutter`), drawn from its own stream of `rng` after
    everything else so switching it off leaves the rest of the city unchanged."""
    layout = network.layout
    x_min, y_min, x_max, y_max = network.extent_m
    curb, sidewalk = layout.curb_height_m, layout.sidewalk_width_m
    parts = [_part(_box((x_min, y_min, -0.5), (x_max, y_max, 0.0)), L.ROAD)]
    half = network.road_half_width_m
    buildings: list[tuple[float, float, float, float, float]] = []
    for bx0, by0, bx1, by1 in _blocks(network):
        parts.append(_part(_box((bx0, by0, -0.5), (bx1, by1, curb)), L.SIDEWALK))
        inner = (bx0 + sidewalk + layout.building_setback_m, by0 + sidewalk + layout.building_setback_m,
                 bx1 - sidewalk - layout.building_setback_m, by1 - sidewalk - layout.building_setback_m)
        width, depth = inner[2] - inner[0], inner[3] - inner[1]
        if width < 6.0 or depth < 6.0:
            continue
        lots_x, lots_y = max(1, int(width // 22.0)), max(1, int(depth // 22.0))
        for i in range(lots_x):
            for j in range(lots_y):
                if rng.random() > layout.building_fill:
                    continue
                x0 = inner[0] + i * width / lots_x + rng.uniform(0.0, 1.5)
                x1 = inner[0] + (i + 1) * width / lots_x - rng.uniform(0.0, 1.5)
                y0 = inner[1] + j * depth / lots_y + rng.uniform(0.0, 1.5)
                y1 = inner[1] + (j + 1) * depth / lots_y - rng.uniform(0.0, 1.5)
                height = rng.uniform(*layout.building_height_m)
                parts.append(_part(_box((x0, y0, curb), (x1, y1, curb + height)), L.BUILDING, rng.uniform(0.75, 1.25)))
                buildings.append((x0, y0, x1, y1, height))
    # Street furniture along every curb, away from the intersections.
    for y in network.grid_y_m:
        for side in (-1.0, 1.0):
            for x0, x1 in zip(network.grid_x_m[:-1], network.grid_x_m[1:], strict=True):
                _street_side(parts, rng, layout, np.array([x0, y + side * half]), np.array([x1, y + side * half]), np.array([0.0, side]), half)
    for x in network.grid_x_m:
        for side in (-1.0, 1.0):
            for y0, y1 in zip(network.grid_y_m[:-1], network.grid_y_m[1:], strict=True):
                _street_side(parts, rng, layout, np.array([x + side * half, y0]), np.array([x + side * half, y1]), np.array([side, 0.0]), half)
    for i in range(layout.blocks_x + 1):
        for j in range(layout.blocks_y + 1):
            if not network.is_signalised((i, j)):
                continue
            center = network.node_center_m((i, j))
            for sx, sy in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                x, y = center + (half + 0.6) * np.array([sx, sy])
                pole = _prism(0.12, curb, curb + 4.2, 6)
                parts.append(_part((pole[0] + [x, y, 0.0], pole[1]), L.POLE))
                parts.append(_part(_box((x - 0.2, y - 0.2, curb + 3.2), (x + 0.2, y + 0.2, curb + 4.2)), L.TRAFFIC_LIGHT))
    if clutter:
        clutter_rng = np.random.default_rng(rng.integers(2**63))
        for start, end, outward in _curbs(network):
            _street_clutter(parts, clutter_rng, layout, start, end, outward, half)
        for building in buildings:
            _facade_relief(parts, clutter_rng, layout, building)
    return Mesh.concatenate(parts)


def _curbs(network: RoadNetwork) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(start, end, outward unit vector) of every curb between two intersections."""
    half = network.road_half_width_m
    curbs = []
    for y in network.grid_y_m:
        for side in (-1.0, 1.0):
            for x0, x1 in zip(network.grid_x_m[:-1], network.grid_x_m[1:], strict=True):
                curbs.append((np.array([x0, y + side * half]), np.array([x1, y + side * half]), np.array([0.0, side])))
    for x in network.grid_x_m:
        for side in (-1.0, 1.0):
            for y0, y1 in zip(network.grid_y_m[:-1], network.grid_y_m[1:], strict=True):
                curbs.append((np.array([x + side * half, y0]), np.array([x + side * half, y1]), np.array([side, 0.0])))
    return curbs


def _oriented_box(center_xy: np.ndarray, direction: np.ndarray, length: float, depth: float, z0: float, z1: float) -> tuple[np.ndarray, np.ndarray]:
    """A box `length` along `direction` and `depth` across it, centred on `center_xy`, from height z0 to z1."""
    vertices, triangles = _box((-length / 2, -depth / 2, z0), (length / 2, depth / 2, z1))
    rotation = np.array([[direction[0], -direction[1]], [direction[1], direction[0]]])
    vertices = vertices.copy()
    vertices[:, :2] = vertices[:, :2] @ rotation.T + center_xy
    return vertices, triangles


def _street_clutter(parts: list[Mesh], rng: np.random.Generator, layout, start: np.ndarray, end: np.ndarray, outward: np.ndarray, half: float) -> None:
    """What real streets hold besides cars, people, trees and lamps, and what a detector must learn to reject: fences,
    low walls and hedges at the back of the sidewalk (0.8-1.2 m high, the height of a car), bus shelters, planters,
    parked bicycles, jersey barriers and utility cabinets near the curb. None of it is annotated, so none of it is of a
    category AV2 annotates for the detector (bollards, cones and signs are the traffic's annotated static objects)."""
    direction = (end - start) / np.linalg.norm(end - start)
    length = float(np.linalg.norm(end - start))
    margin = half + layout.sidewalk_width_m + 2.0
    curb, back = layout.curb_height_m, layout.sidewalk_width_m + 0.4
    along = margin + rng.uniform(0.0, 10.0)
    while along < length - margin - 4.0:  # runs of fence, wall or hedge along the back of the sidewalk
        run = min(rng.uniform(6.0, 30.0), length - margin - along)
        center = start + direction * (along + run / 2) + outward * back
        kind = rng.integers(3)
        if kind == 0:
            height = rng.uniform(0.9, 1.8)
            parts.append(_part(_oriented_box(center, direction, run, 0.06, curb, curb + height), L.FENCE, rng.uniform(0.6, 1.2)))
        elif kind == 1:
            parts.append(_part(_oriented_box(center, direction, run, 0.3, curb, curb + rng.uniform(0.6, 1.2)), L.WALL, rng.uniform(0.7, 1.2)))
        else:
            depth = rng.uniform(0.6, 1.2)
            parts.append(_part(_oriented_box(center, direction, run, depth, curb, curb + rng.uniform(0.8, 1.6)), L.VEGETATION, 0.6))
        along += run + rng.uniform(5.0, 25.0)
    near = 1.0  # furniture stands at least this far behind the curb line (a bicycle is 1.7 m long, across the sidewalk)
    for _ in range(rng.poisson(2.0)):
        x = float(rng.uniform(margin, max(margin, length - margin - 10.0)))  # rows reach up to 9 m further along
        center = start + direction * x + outward * (near + rng.uniform(0.0, 1.5))
        kind = rng.integers(5)
        if kind == 0:  # bus shelter at the back of the sidewalk: roof, back wall, two side panes
            depth = 1.5
            center = start + direction * x + outward * (layout.sidewalk_width_m - depth - 0.1)
            back_xy = center + outward * depth
            parts.append(_part(_oriented_box(center + outward * depth / 2, direction, 4.0, depth, curb + 2.4, curb + 2.55), L.STATIC))
            parts.append(_part(_oriented_box(back_xy, direction, 4.0, 0.05, curb + 0.1, curb + 2.4), L.STATIC, 0.8))
            for end_sign in (-1.0, 1.0):
                side_xy = center + outward * depth / 2 + direction * end_sign * 2.0
                parts.append(_part(_oriented_box(side_xy, outward, depth, 0.05, curb + 0.1, curb + 2.4), L.STATIC, 0.8))
        elif kind == 1:  # a row of planters: concrete tubs with shrubs
            for k in range(int(rng.integers(2, 5))):
                x_k = center + direction * 2.0 * k
                parts.append(_part(_oriented_box(x_k, direction, 1.2, 0.8, curb, curb + 0.5), L.WALL, 0.9))
                parts.append(_part(_oriented_box(x_k, direction, 1.0, 0.6, curb + 0.5, curb + rng.uniform(0.9, 1.4)), L.VEGETATION, 0.6))
        elif kind == 2:  # parked bicycles against a rack
            for k in range(int(rng.integers(1, 5))):
                x_k = center + direction * 0.7 * k
                parts.append(_part(_oriented_box(x_k, outward, 1.7, 0.4, curb + 0.05, curb + 1.0), L.STATIC, 0.5))
        elif kind == 3:  # jersey barriers
            for k in range(int(rng.integers(1, 4))):
                x_k = center + direction * 2.1 * k
                parts.append(_part(_oriented_box(x_k, direction, 2.0, 0.6, curb, curb + 0.8), L.WALL, 1.1))
        else:  # a utility cabinet (signal controller, electricity box)
            parts.append(_part(_oriented_box(center, direction, rng.uniform(0.6, 1.2), 0.5, curb, curb + rng.uniform(1.0, 1.5)), L.STATIC, 0.9))


def _facade_relief(parts: list[Mesh], rng: np.random.Generator, layout, building: tuple[float, float, float, float, float]) -> None:
    """Pillars and balconies standing out of a building's faces, so facades are not flat walls."""
    x0, y0, x1, y1, height = building
    curb = layout.curb_height_m
    faces = [
        (np.array([x0, y0]), np.array([x1, y0]), np.array([0.0, -1.0])),
        (np.array([x0, y1]), np.array([x1, y1]), np.array([0.0, 1.0])),
        (np.array([x0, y0]), np.array([x0, y1]), np.array([-1.0, 0.0])),
        (np.array([x1, y0]), np.array([x1, y1]), np.array([1.0, 0.0])),
    ]
    for start, end, outward in faces:
        direction = (end - start) / np.linalg.norm(end - start)
        length = float(np.linalg.norm(end - start))
        for along in np.arange(rng.uniform(1.0, 6.0), length - 1.0, rng.uniform(4.0, 9.0)):
            depth = rng.uniform(0.3, 0.9)
            center = start + direction * along + outward * depth / 2
            if rng.random() < 0.5:
                parts.append(_part(_oriented_box(center, direction, 0.6, depth, curb, curb + min(height, rng.uniform(3.0, 6.0))), L.BUILDING, 0.9))
            elif height > 4.0:
                z = curb + rng.uniform(2.5, height - 1.2)
                parts.append(_part(_oriented_box(center, direction, rng.uniform(2.0, 4.0), depth, z, z + 1.1), L.BUILDING, 1.1))


def _street_side(parts: list[Mesh], rng: np.random.Generator, layout, start: np.ndarray, end: np.ndarray, outward: np.ndarray, half: float) -> None:
    """Trees and lamp posts on one curb between two intersections (`outward` points from the road to the block)."""
    direction = (end - start) / np.linalg.norm(end - start)
    length = float(np.linalg.norm(end - start))
    margin = half + layout.sidewalk_width_m + 4.0
    curb = layout.curb_height_m
    for along in np.arange(margin, length - margin, layout.tree_spacing_m):
        if rng.random() < 0.2:
            continue
        x, y = start + direction * (along + rng.uniform(-1.5, 1.5)) + outward * 0.9
        trunk_height = rng.uniform(1.8, 3.0)
        radius = rng.uniform(1.3, 2.4)
        trunk = _prism(0.15, curb, curb + trunk_height, 6)
        parts.append(_part((trunk[0] + [x, y, 0.0], trunk[1]), L.VEGETATION, 0.5))
        crown = _icosphere(radius)
        parts.append(_part((crown[0] * [1.0, 1.0, rng.uniform(0.8, 1.3)] + [x, y, curb + trunk_height + 0.8 * radius], crown[1]), L.VEGETATION))
    for along in np.arange(margin + layout.pole_spacing_m / 2, length - margin, layout.pole_spacing_m):
        x, y = start + direction * along + outward * 0.4
        pole = _prism(0.1, curb, curb + 7.0, 6)
        parts.append(_part((pole[0] + [x, y, 0.0], pole[1]), L.POLE))
        arm_end = np.array([x, y]) - outward * 1.5
        low, high = np.minimum([x, y], arm_end) - 0.08, np.maximum([x, y], arm_end) + 0.08
        parts.append(_part(_box((low[0], low[1], curb + 6.8), (high[0], high[1], curb + 7.0)), L.POLE))
