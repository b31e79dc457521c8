"""Heights above the local ground: the detector's input made independent of terrain and of the ego frame's height.

The synthetic city's road is a plane at z = 0; real roads are not. On the real AV2 sweep of `../shared/data` half of
the vehicles (a row of parked cars, the pedestrians behind them) stand 0.2-0.45 m below the road under the ego
vehicle, and a detector that learned what a car looks like at absolute heights misses them. With
`ModelConfig.ground_relative`, every point's height is taken relative to a ground surface estimated from the sweep
itself, and box centres are regressed relative to it and put back on it when decoded.

The estimate works on a BEV grid of `GROUND_CELL_M` cells:
1. each cell's lowest return (returns under a car's body or a wall's foot do not reach the ground, so its cells show
   the object's lowest visible point instead);
2. a cell more than `BELOW_GROUND_OUTLIER_M` below the median of its neighbourhood is a stray return under the road
   (multipath, noise) and takes that median;
3. a minimum filter over `GROUND_WINDOW_M` reaches, from under any car, the ground visible beside it;
4. where even that window holds no ground (a building's roof or facade, a hedge, the far side of an occluder), the
   estimate stands more than `MAX_GROUND_RISE_M` above the lowest one within `FLOOR_WINDOW_M`: such cells, and cells
   without returns, take the nearest ground cell's height, and a 3x3 mean smooths the steps between cells.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numpy as np
from scipy import ndimage

from scenes.records import Boxes3D

__all__ = ["GROUND_CELL_M", "GroundSurface", "estimate_ground"]

GROUND_CELL_M: Final = 1.0
GROUND_WINDOW_M: Final = 5.0
FLOOR_WINDOW_M: Final = 15.0
MAX_GROUND_RISE_M: Final = 0.6
BELOW_GROUND_OUTLIER_M: Final = 0.4
OUTLIER_NEIGHBOURHOOD_CELLS: Final = 5


@dataclass(frozen=True)
class GroundSurface:
    """Ground height `height_m[row, col]` (ego frame, metres) of the BEV cell whose lower corner is
    `origin_xy_m + (col, row) * cell_m`; outside the grid the nearest cell's height."""

    height_m: np.ndarray
    origin_xy_m: tuple[float, float]
    cell_m: float

    @classmethod
    def flat(cls) -> GroundSurface:
        """The plane z = 0 (a sweep without returns)."""
        return cls(np.zeros((1, 1)), (0.0, 0.0), GROUND_CELL_M)

    def height_at(self, xy_m: np.ndarray) -> np.ndarray:
        """Ground height (m) under each of the `(N, 2)` ego-frame points."""
        rows, cols = self.height_m.shape
        col = np.clip(np.floor((xy_m[:, 0] - self.origin_xy_m[0]) / self.cell_m), 0, cols - 1).astype(np.int64)
        row = np.clip(np.floor((xy_m[:, 1] - self.origin_xy_m[1]) / self.cell_m), 0, rows - 1).astype(np.int64)
        return self.height_m[row, col]

    def relative(self, points: np.ndarray) -> np.ndarray:
        """A copy of the `(N, >= 3)` points with z measured from the ground under each point."""
        moved = points.copy()
        moved[:, 2] -= self.height_at(points[:, :2]).astype(points.dtype)
        return moved

    def boxes_relative(self, boxes: Boxes3D) -> Boxes3D:
        """Ego-frame boxes with their centres' height measured from the ground under them (training targets)."""
        return self._lift(boxes, -1.0)

    def boxes_absolute(self, boxes: Boxes3D) -> Boxes3D:
        """Boxes decoded with ground-relative centres, back in the ego frame."""
        return self._lift(boxes, 1.0)

    def _lift(self, boxes: Boxes3D, sign: float) -> Boxes3D:
        if not len(boxes):
            return boxes
        center = boxes.center_m.copy()
        center[:, 2] += sign * self.height_at(center[:, :2])
        return replace(boxes, center_m=center)


def _fill_nearest(grid: np.ndarray, known: np.ndarray) -> np.ndarray:
    """`grid` with every unknown cell set to the value of its nearest known cell."""
    if known.all():
        return grid
    nearest = ndimage.distance_transform_edt(~known, return_distances=False, return_indices=True)
    return grid[nearest[0], nearest[1]]


def estimate_ground(points_xyz_m: np.ndarray, range_xy_m: tuple[float, float, float, float]) -> GroundSurface:
    """Ground surface of an ego-frame point cloud `(N, >= 3)` over `range_xy_m = (x_min, y_min, x_max, y_max)`."""
    x_min, y_min, x_max, y_max = range_xy_m
    cols = max(1, int(np.ceil((x_max - x_min) / GROUND_CELL_M)))
    rows = max(1, int(np.ceil((y_max - y_min) / GROUND_CELL_M)))
    col = np.floor((points_xyz_m[:, 0] - x_min) / GROUND_CELL_M)
    row = np.floor((points_xyz_m[:, 1] - y_min) / GROUND_CELL_M)
    inside = (col >= 0) & (col < cols) & (row >= 0) & (row < rows) & np.isfinite(points_xyz_m[:, 2])
    if not inside.any():
        return GroundSurface.flat()
    lowest = np.full(rows * cols, np.inf)
    np.minimum.at(lowest, row[inside].astype(np.int64) * cols + col[inside].astype(np.int64), points_xyz_m[inside, 2].astype(np.float64))
    lowest = lowest.reshape(rows, cols)
    seen = np.isfinite(lowest)
    neighbourhood = ndimage.median_filter(_fill_nearest(lowest, seen), size=OUTLIER_NEIGHBOURHOOD_CELLS, mode="nearest")
    lowest = np.where(seen & (lowest < neighbourhood - BELOW_GROUND_OUTLIER_M), neighbourhood, lowest)
    ground = ndimage.minimum_filter(lowest, size=max(1, round(GROUND_WINDOW_M / GROUND_CELL_M)), mode="nearest")
    floor = ndimage.minimum_filter(lowest, size=max(1, round(FLOOR_WINDOW_M / GROUND_CELL_M)), mode="nearest")
    ground = _fill_nearest(ground, np.isfinite(ground) & (ground <= floor + MAX_GROUND_RISE_M))
    ground = ndimage.uniform_filter(ground, size=3, mode="nearest")
    return GroundSurface(ground, (x_min, y_min), GROUND_CELL_M)
