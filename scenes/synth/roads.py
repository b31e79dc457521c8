"""The road network of the synthetic city: a grid of two-way multi-lane roads meeting at signalised intersections.

Grid lines run at `x_i = i * block` and `y_j = j * block`. A road's lanes for heading `d` lie on the right of its
centre line (right-hand traffic), lane 0 innermost; a parking strip lies beyond the outer lane, then the curb, the
sidewalk and the block. Intersections are the squares where two roads cross; connector lanes join every incoming
lane to the outgoing lanes it may turn into (straight: same lane; right turn: outer lane; left turn: inner lane).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from scenes.geometry import Sim2, points_at_arc, polyline_arc_m
from scenes.records import LaneGraph, MapRaster
from scenes.synth.styles import Layout

__all__ = ["Lane", "RoadNetwork", "build_road_network"]

LANE_GRAPH_POINTS: Final = 10
RASTER_RESOLUTION_M: Final = 0.5
ROI_DILATION_M: Final = 5.0
SAMPLE_SPACING_M: Final = 1.0
CROSSWALK_WIDTH_M: Final = 3.0
# Heading unit vectors of the four arms of an intersection, by arm name.
ARMS: Final = {"E": (1.0, 0.0), "N": (0.0, 1.0), "W": (-1.0, 0.0), "S": (0.0, -1.0)}


@dataclass(frozen=True, eq=False)
class Lane:
    """One lane: a dense city-frame centre line (spacing about 1 m) and its place in the network.

    Road-segment lanes have `turn == "none"` and no `node`; connector lanes inside intersection `node` have `turn`
    "straight", "left" or "right" and `heading_in`, the heading of the lane they continue. `lane_index` counts lanes
    from the road's centre line (0) outwards.
    """

    lane_id: int
    polyline_m: np.ndarray
    width_m: float
    is_intersection: bool
    node: tuple[int, int] | None
    heading_in: tuple[float, float]
    turn: str
    lane_index: int

    @property
    def length_m(self) -> float:
        return float(np.linalg.norm(np.diff(self.polyline_m, axis=0), axis=1).sum())


def _resample(polyline: np.ndarray, count: int) -> np.ndarray:
    arc = polyline_arc_m(polyline)
    return points_at_arc(polyline, arc, np.linspace(0.0, arc[-1], count))


def _segment(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    count = max(2, int(np.ceil(np.linalg.norm(end - start) / SAMPLE_SPACING_M)) + 1)
    return start + np.linspace(0.0, 1.0, count)[:, None] * (end - start)


def _bezier(start: np.ndarray, control: np.ndarray, end: np.ndarray) -> np.ndarray:
    length = np.linalg.norm(control - start) + np.linalg.norm(end - control)
    t = np.linspace(0.0, 1.0, max(3, int(np.ceil(length / SAMPLE_SPACING_M)) + 1))[:, None]
    return (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end


def _turn(d_in: np.ndarray, d_out: np.ndarray) -> str:
    cross = d_in[0] * d_out[1] - d_in[1] * d_out[0]
    if abs(cross) < 1e-9:
        return "straight" if d_in @ d_out > 0 else "uturn"
    return "left" if cross > 0 else "right"


@dataclass(frozen=True, eq=False)
class RoadNetwork:
    """Lanes with their topology, plus the analytic city layout (roads, intersections, blocks, crosswalks)."""

    layout: Layout
    lanes: tuple[Lane, ...]
    successors: tuple[tuple[int, ...], ...]
    left_neighbor: np.ndarray
    right_neighbor: np.ndarray
    crosswalks_m: np.ndarray

    @property
    def road_half_width_m(self) -> float:
        return self.layout.lanes_per_direction * self.layout.lane_width_m + self.layout.parking_width_m

    @property
    def grid_x_m(self) -> np.ndarray:
        return np.arange(self.layout.blocks_x + 1) * self.layout.block_size_m

    @property
    def grid_y_m(self) -> np.ndarray:
        return np.arange(self.layout.blocks_y + 1) * self.layout.block_size_m

    @property
    def extent_m(self) -> tuple[float, float, float, float]:
        """`(x_min, y_min, x_max, y_max)` of the simulated city (one block of margin around the road grid)."""
        block = self.layout.block_size_m
        return (-block, -block, self.grid_x_m[-1] + block, self.grid_y_m[-1] + block)

    def index_of(self, lane_id: int) -> int:
        return lane_id - self.lanes[0].lane_id

    def lane(self, lane_id: int) -> Lane:
        return self.lanes[self.index_of(lane_id)]

    @staticmethod
    def arms_of(node: tuple[int, int], blocks_x: int, blocks_y: int) -> tuple[str, ...]:
        """Names of the roads leaving grid node `node`."""
        i, j = node
        present = {"E": i < blocks_x, "W": i > 0, "N": j < blocks_y, "S": j > 0}
        return tuple(arm for arm in ARMS if present[arm])

    def arms(self, node: tuple[int, int]) -> tuple[str, ...]:
        return self.arms_of(node, self.layout.blocks_x, self.layout.blocks_y)

    def is_signalised(self, node: tuple[int, int]) -> bool:
        """Corners (two arms) flow freely; T-junctions and crossings have traffic lights."""
        return len(self.arms(node)) > 2

    def node_center_m(self, node: tuple[int, int]) -> np.ndarray:
        return np.array([self.grid_x_m[node[0]], self.grid_y_m[node[1]]])

    def on_drivable_area(self, xy_m: npt.ArrayLike) -> np.ndarray:
        """Whether city points `(N, 2)` lie on a road or intersection (lanes and parking strips)."""
        xy = np.asarray(xy_m, dtype=np.float64).reshape(-1, 2)
        half = self.road_half_width_m
        gx, gy = self.grid_x_m, self.grid_y_m
        within_x = (xy[:, 0] >= gx[0] - half) & (xy[:, 0] <= gx[-1] + half)
        within_y = (xy[:, 1] >= gy[0] - half) & (xy[:, 1] <= gy[-1] + half)
        near_row = np.min(np.abs(xy[:, 1:2] - gy[None, :]), axis=1) <= half
        near_col = np.min(np.abs(xy[:, 0:1] - gx[None, :]), axis=1) <= half
        return (near_row & within_x) | (near_col & within_y)

    def _node_relative(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest grid node `(i, j)` of each point and the point's offset from that node's centre."""
        block = self.layout.block_size_m
        i = np.clip(np.round(xy[:, 0] / block), 0, self.layout.blocks_x).astype(np.int64)
        j = np.clip(np.round(xy[:, 1] / block), 0, self.layout.blocks_y).astype(np.int64)
        return i, j, xy - np.stack([i, j], axis=1) * block

    def on_crosswalk(self, xy_m: npt.ArrayLike) -> np.ndarray:
        """Whether city points `(N, 2)` lie on a crosswalk (a band just outside each intersection, across each arm)."""
        xy = np.asarray(xy_m, dtype=np.float64).reshape(-1, 2)
        return self._crosswalk_axis(xy) >= 0

    def _crosswalk_axis(self, xy: np.ndarray) -> np.ndarray:
        """Per point: -1 off crosswalks, 0 on a crosswalk across an east/west arm, 1 across a north/south arm."""
        half = self.road_half_width_m
        i, j, offset = self._node_relative(xy)
        result = np.full(len(xy), -1, dtype=np.int64)
        for axis in (0, 1):
            along, across = offset[:, axis], offset[:, 1 - axis]
            band = (np.abs(along) > half) & (np.abs(along) <= half + CROSSWALK_WIDTH_M) & (np.abs(across) <= half)
            if axis == 0:
                exists = np.where(along > 0, i < self.layout.blocks_x, i > 0)
            else:
                exists = np.where(along > 0, j < self.layout.blocks_y, j > 0)
            result[band & exists] = axis
        return result

    def marking(self, xy_m: npt.ArrayLike) -> np.ndarray:
        """Whether road points `(N, 2)` are painted: centre line, dashed lane dividers, edge lines, zebra crossings."""
        xy = np.asarray(xy_m, dtype=np.float64).reshape(-1, 2)
        half = self.road_half_width_m
        n, width = self.layout.lanes_per_direction, self.layout.lane_width_m
        paint = np.zeros(len(xy), dtype=bool)
        for axis, grid, cross_grid in ((1, self.grid_y_m, self.grid_x_m), (0, self.grid_x_m, self.grid_y_m)):
            offset = np.abs(xy[:, axis : axis + 1] - grid[None, :]).min(axis=1)
            along = xy[:, 1 - axis]
            in_segment = np.abs(along[:, None] - cross_grid[None, :]).min(axis=1) > half + CROSSWALK_WIDTH_M
            lines = (offset > 0.1) & (offset < 0.25)
            lines |= np.abs(offset - n * width) < 0.08
            for k in range(1, n):
                lines |= (np.abs(offset - k * width) < 0.08) & (np.mod(along, 6.0) < 3.0)
            paint |= in_segment & (offset < half) & lines
        crossing = self._crosswalk_axis(xy)
        # Zebra stripes run along the road: they alternate across it.
        across = np.where(crossing == 0, xy[:, 1], xy[:, 0])
        paint |= (crossing >= 0) & (np.mod(across, 1.2) < 0.6)
        return paint

    def ground_height_m(self, xy_m: npt.ArrayLike) -> np.ndarray:
        """Height of the ground surface: 0 on roads, the curb height on sidewalks and blocks."""
        return np.where(self.on_drivable_area(xy_m), 0.0, self.layout.curb_height_m)

    def raster_frame(self) -> tuple[Sim2, int, int]:
        """City->pixel similarity of the map rasters and their width, height."""
        x_min, y_min, x_max, y_max = self.extent_m
        scale = 1.0 / RASTER_RESOLUTION_M
        width = int(np.ceil((x_max - x_min) * scale))
        height = int(np.ceil((y_max - y_min) * scale))
        return Sim2(np.eye(2), np.array([-x_min, -y_min]), scale), width, height

    def rasters(self) -> dict[str, MapRaster]:
        """Drivable area (uint8), region of interest (drivable area dilated 5 m, uint8) and ground height (float32)."""
        img_Sim2_city, width, height = self.raster_frame()
        city_Sim2_img = img_Sim2_city.inverse()
        cols, rows = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
        centers = city_Sim2_img.transform_points(np.stack([cols.ravel(), rows.ravel()], axis=1))
        drivable = self.on_drivable_area(centers).reshape(height, width)
        half = self.road_half_width_m + ROI_DILATION_M
        gx, gy = self.grid_x_m, self.grid_y_m
        near_row = (np.min(np.abs(centers[:, 1:2] - gy[None, :]), axis=1) <= half) & (
            (centers[:, 0] >= gx[0] - half) & (centers[:, 0] <= gx[-1] + half)
        )
        near_col = (np.min(np.abs(centers[:, 0:1] - gx[None, :]), axis=1) <= half) & (
            (centers[:, 1] >= gy[0] - half) & (centers[:, 1] <= gy[-1] + half)
        )
        roi = (near_row | near_col).reshape(height, width)
        ground = np.where(drivable, 0.0, self.layout.curb_height_m).astype(np.float32)
        return {
            "drivable_area": MapRaster("drivable_area", drivable.astype(np.uint8), img_Sim2_city),
            "roi": MapRaster("roi", roi.astype(np.uint8), img_Sim2_city),
            "ground_height": MapRaster("ground_height", ground, img_Sim2_city),
        }

    def drivable_polygons(self) -> tuple[np.ndarray, ...]:
        """Drivable-area polygons `(4, 3)`: one per road segment between intersections and one per intersection."""
        half = self.road_half_width_m
        polygons = []

        def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
            return np.array([[x0, y0, 0.0], [x1, y0, 0.0], [x1, y1, 0.0], [x0, y1, 0.0]])

        for x in self.grid_x_m:
            for y in self.grid_y_m:
                polygons.append(rect(x - half, y - half, x + half, y + half))
        for y in self.grid_y_m:
            for x0, x1 in zip(self.grid_x_m[:-1], self.grid_x_m[1:], strict=True):
                polygons.append(rect(x0 + half, y - half, x1 - half, y + half))
        for x in self.grid_x_m:
            for y0, y1 in zip(self.grid_y_m[:-1], self.grid_y_m[1:], strict=True):
                polygons.append(rect(x - half, y0 + half, x + half, y1 - half))
        return tuple(polygons)

    def lane_graph(self, city_name: str) -> LaneGraph:
        """The network as a `LaneGraph` record: centre lines and boundaries resampled to 10 points, with rasters."""
        centerlines, lefts, rights = [], [], []
        for lane in self.lanes:
            line = _resample(lane.polyline_m, LANE_GRAPH_POINTS)
            tangent = np.gradient(line, axis=0)
            tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
            left_normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1) * (0.5 * lane.width_m)
            zeros = np.zeros((LANE_GRAPH_POINTS, 1))
            centerlines.append(np.hstack([line, zeros]))
            lefts.append(np.hstack([line + left_normal, zeros]))
            rights.append(np.hstack([line - left_normal, zeros]))
        return LaneGraph(
            city_name,
            np.array([lane.lane_id for lane in self.lanes], dtype=np.int64),
            np.stack(centerlines),
            self.successors,
            self.left_neighbor,
            self.right_neighbor,
            np.array([lane.is_intersection for lane in self.lanes]),
            drivable_areas_m=self.drivable_polygons(),
            left_boundaries_m=np.stack(lefts),
            right_boundaries_m=np.stack(rights),
            crosswalks_m=self.crosswalks_m,
            rasters=self.rasters(),
        )


def build_road_network(layout: Layout, first_lane_id: int = 1000) -> RoadNetwork:
    """Builds the lanes, their topology and the crosswalks of a `blocks_x` x `blocks_y` grid city."""
    nx, ny = layout.blocks_x, layout.blocks_y
    block, width, n = layout.block_size_m, layout.lane_width_m, layout.lanes_per_direction
    half = n * width + layout.parking_width_m
    lanes: list[Lane] = []
    # Segment lanes, keyed by (from node, to node, lane index).
    segment: dict[tuple[tuple[int, int], tuple[int, int], int], int] = {}
    nodes = [(i, j) for i in range(nx + 1) for j in range(ny + 1)]
    for i, j in nodes:
        for arm in ("E", "N"):
            other = (i + 1, j) if arm == "E" else (i, j + 1)
            if other[0] > nx or other[1] > ny:
                continue
            a = np.array([i * block, j * block], dtype=np.float64)
            b = np.array([other[0] * block, other[1] * block], dtype=np.float64)
            for src, dst, p, q in (((i, j), other, a, b), (other, (i, j), b, a)):
                heading = (q - p) / np.linalg.norm(q - p)
                right = np.array([heading[1], -heading[0]])
                for k in range(n):
                    offset = right * (k + 0.5) * width
                    start = p + heading * half + offset
                    end = q - heading * half + offset
                    lane = Lane(len(lanes) + first_lane_id, _segment(start, end), width, False, None, tuple(heading), "none", k)
                    segment[(src, dst, k)] = lane.lane_id
                    lanes.append(lane)
    successors: dict[int, list[int]] = {lane.lane_id: [] for lane in lanes}
    neighbor_left: dict[int, int] = {}
    neighbor_right: dict[int, int] = {}
    for (src, dst, k), lane_id in segment.items():
        neighbor_left[lane_id] = segment.get((src, dst, k - 1), -1)
        neighbor_right[lane_id] = segment.get((src, dst, k + 1), -1)
    offsets = {"E": (1, 0), "N": (0, 1), "W": (-1, 0), "S": (0, -1)}
    for node in nodes:
        i, j = node
        neighbours = [(i + di, j + dj) for di, dj in offsets.values() if 0 <= i + di <= nx and 0 <= j + dj <= ny]
        for src in neighbours:
            d_in = np.sign(np.array(node) - np.array(src)).astype(np.float64)
            options = []
            for dst in neighbours:
                d_out = np.sign(np.array(dst) - np.array(node)).astype(np.float64)
                turn = _turn(d_in, d_out)
                if turn != "uturn":
                    options.append((dst, d_out, turn))
            has_straight = any(turn == "straight" for _, _, turn in options)
            for k in range(n):
                in_id = segment[(src, node, k)]
                for dst, _d_out, turn in options:
                    if has_straight and turn == "right" and k != n - 1:
                        continue
                    if has_straight and turn == "left" and k != 0:
                        continue
                    out_id = segment[(node, dst, k)]
                    start = lanes[in_id - first_lane_id].polyline_m[-1]
                    end = lanes[out_id - first_lane_id].polyline_m[0]
                    if turn == "straight":
                        polyline = _segment(start, end)
                    else:
                        # Control point: where the (perpendicular) incoming and outgoing lane lines cross.
                        polyline = _bezier(start, start + d_in * ((end - start) @ d_in), end)
                    connector = Lane(len(lanes) + first_lane_id, polyline, width, True, node, tuple(d_in), turn, k)
                    lanes.append(connector)
                    successors[in_id].append(connector.lane_id)
                    successors[connector.lane_id] = [out_id]
                    neighbor_left[connector.lane_id] = -1
                    neighbor_right[connector.lane_id] = -1
    crosswalks = []
    for node in nodes:
        center = np.array([node[0] * block, node[1] * block], dtype=np.float64)
        for arm in RoadNetwork.arms_of(node, nx, ny):
            heading = np.array(ARMS[arm])
            across = np.array([-heading[1], heading[0]])
            near, far = center + heading * half, center + heading * (half + CROSSWALK_WIDTH_M)
            quad = np.array([near - across * half, far - across * half, far + across * half, near + across * half])
            crosswalks.append(np.hstack([quad, np.zeros((4, 1))]))
    ordered = [lane.lane_id for lane in lanes]
    return RoadNetwork(
        layout,
        tuple(lanes),
        tuple(tuple(successors[i]) for i in ordered),
        np.array([neighbor_left[i] for i in ordered], dtype=np.int64),
        np.array([neighbor_right[i] for i in ordered], dtype=np.int64),
        np.stack(crosswalks),
    )
