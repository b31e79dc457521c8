"""Velocity from the sweeps: the motion that carries a box's past points onto its current ones.

The multi-sweep input (`sweeps.accumulate_sweeps`) holds each past sweep motion-compensated into the current ego frame,
so static structure lines up and a mover's past points trail behind its current ones by its velocity times their time
lag. The velocity head cannot learn that sign from one cloud: a car's front and back look alike, so it settles on the
mean of both, about 0. For each box this searches the velocity instead: in the box's frame, along and across its
heading up to its category's top speed, the velocity whose motion carries its past points closest to its current
points. Closeness is the mean distance from each carried point to the nearest current point, capped at `CAP_M` (a
neighbour's points or a wall's do not dominate), read from a distance transform of the current points rasterised at
`CELL_M`. The search takes a grid of `COARSE_STEP_M_PER_S` and refines it around the best by a quarter step.

A box moving at `turn_min_speed_m_per_s` or more then faces the way it moves: of its heading and the opposite one,
the one its velocity points along.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

import numba
import numpy as np
from scipy import ndimage

from perception.detection.sweeps import POINT_FEATURES
from scenes.categories import CATEGORY_ID
from scenes.geometry import wrap_angle
from scenes.records import Boxes3D

LAG: Final = POINT_FEATURES.index("time_lag_s")
_VEHICLES: Final = ("REGULAR_VEHICLE", "LARGE_VEHICLE", "BUS", "BOX_TRUCK", "TRUCK", "VEHICULAR_TRAILER", "TRUCK_CAB", "SCHOOL_BUS", "ARTICULATED_BUS")
_RIDERS: Final = ("BICYCLIST", "WHEELED_RIDER", "BICYCLE", "WHEELED_DEVICE")
_MOTORCYCLES: Final = ("MOTORCYCLIST", "MOTORCYCLE")
_WALKERS: Final = ("PEDESTRIAN", "WHEELCHAIR", "STROLLER", "DOG")
# Top speed (m/s) searched along and across a box's heading, per category; other categories keep their velocity.
TOP_SPEED_M_PER_S: Final[dict[str, tuple[float, float]]] = {
    **{name: (25.0, 1.0) for name in _VEHICLES},
    **{name: (25.0, 1.0) for name in _MOTORCYCLES},
    **{name: (10.0, 1.0) for name in _RIDERS},
    **{name: (3.0, 3.0) for name in _WALKERS},
}
_TOP_BY_ID: Final = np.full((max(CATEGORY_ID.values()) + 1, 2), np.nan)
for _name, _top in TOP_SPEED_M_PER_S.items():
    _TOP_BY_ID[CATEGORY_ID[_name]] = _top
# A box's points: inside it grown by its top speed over the sweeps plus `MARGIN_M`, and more than `FLOOR_M` above its
# bottom (the road under it is the same in every sweep). It takes `MIN_POINTS` current and past points to search; at
# most `MAX_PAST_POINTS` past points (evenly spread) are carried.
MARGIN_M: Final = 0.5
FLOOR_M: Final = 0.2
MIN_POINTS: Final = 5
MAX_PAST_POINTS: Final = 256
CELL_M: Final = 0.1
CAP_M: Final = 0.5
COARSE_STEP_M_PER_S: Final = 1.0


def _grid(center: np.ndarray, half: np.ndarray, step: float) -> np.ndarray:
    """`(K, 2)` velocities (along, across) on a grid of `step` within `half` of `center`."""
    axes = [np.arange(c - h, c + h + 1e-9, step) if h > 0 else np.array([c]) for c, h in zip(center, half, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)


def _near_boxes(points: np.ndarray, center_xy: np.ndarray, radius: np.ndarray, cell_m: float = 2.0) -> np.ndarray:
    """The points in the `cell_m` BEV cells that the boxes' bounding squares touch (a cheap cut before the per-box one)."""
    low = np.floor((center_xy - radius[:, None]) / cell_m).astype(np.int64)
    high = np.floor((center_xy + radius[:, None]) / cell_m).astype(np.int64)
    origin = low.min(axis=0)
    extent = high.max(axis=0) - origin + 1
    touched = np.zeros(extent, dtype=bool)
    for (u0, v0), (u1, v1) in zip(low - origin, high - origin, strict=True):
        touched[u0 : u1 + 1, v0 : v1 + 1] = True
    cell = np.floor(points[:, :2] / cell_m).astype(np.int64) - origin
    inside = np.flatnonzero(np.all((cell >= 0) & (cell < extent), axis=1))
    return points[inside[touched[cell[inside, 0], cell[inside, 1]]]]


@numba.njit(cache=True, nogil=True)
def _mean_capped_distance(distance: np.ndarray, past_uwl: np.ndarray, velocity: np.ndarray, half_uw: np.ndarray) -> np.ndarray:
    """For each velocity (along, across), the mean over the past points `(u, w, lag)` carried by it of the `distance`
    raster's value where they land (`CAP_M` outside it)."""
    result = np.empty(velocity.shape[0])
    for k in range(velocity.shape[0]):
        total = 0.0
        for i in range(past_uwl.shape[0]):
            iu = int(np.floor((past_uwl[i, 0] + past_uwl[i, 2] * velocity[k, 0] + half_uw[0]) / CELL_M))
            iw = int(np.floor((past_uwl[i, 1] + past_uwl[i, 2] * velocity[k, 1] + half_uw[1]) / CELL_M))
            if 0 <= iu < distance.shape[0] and 0 <= iw < distance.shape[1]:
                total += distance[iu, iw]
            else:
                total += CAP_M
        result[k] = total / past_uwl.shape[0]
    return result


def _search(current_uw: np.ndarray, past_uwl: np.ndarray, half_uw: np.ndarray, top: np.ndarray) -> np.ndarray:
    """The velocity (along, across; m/s) that carries the past points `(u, w, lag)` closest to the current `(u, w)`
    points, all in a box's frame within `half_uw` of its centre."""
    shape = (np.ceil(2 * half_uw / CELL_M).astype(np.int64) + 1).tolist()
    cells = np.clip(((current_uw + half_uw) / CELL_M).astype(np.int64), 0, np.array(shape) - 1)
    empty = np.ones(shape, dtype=bool)
    empty[cells[:, 0], cells[:, 1]] = False
    distance = np.minimum(ndimage.distance_transform_edt(empty) * CELL_M, CAP_M)

    step = COARSE_STEP_M_PER_S
    coarse = _grid(np.zeros(2), top, step)
    best = coarse[int(np.argmin(_mean_capped_distance(distance, past_uwl, coarse, half_uw)))]
    fine = _grid(best, np.where(top > 0, step, 0.0), step / 4)
    fine = fine[np.all(np.abs(fine) <= top + 1e-9, axis=1)]
    return fine[int(np.argmin(_mean_capped_distance(distance, past_uwl, fine, half_uw)))]


def velocity_from_sweeps(points: np.ndarray, boxes: Boxes3D, *, turn_min_speed_m_per_s: float | None) -> Boxes3D:
    """`boxes` with the velocity (m/s, the boxes' frame) of each box of a category in `TOP_SPEED_M_PER_S` searched from
    its sweeps, and, with `turn_min_speed_m_per_s`, the ones moving that fast turned to face their motion.

    `points` is the `(N, 5)` multi-sweep input (`sweeps.POINT_FEATURES`) in the boxes' frame. Boxes of other categories,
    and ones without `MIN_POINTS` current and past points (a single sweep has none), keep their velocity (0 if none).
    """
    velocity = np.zeros((len(boxes), 2)) if boxes.velocity_m_per_s is None else boxes.velocity_m_per_s.copy()
    top = _TOP_BY_ID[boxes.category]
    rows = np.flatnonzero(~np.isnan(top[:, 0]))
    max_lag_s = float(points[:, LAG].max()) if len(points) else 0.0
    if len(rows) and max_lag_s > 0:
        half = boxes.size_lwh_m[rows, :2] / 2 + top[rows] * max_lag_s + MARGIN_M
        bottom = boxes.center_m[rows, 2] - boxes.size_lwh_m[rows, 2] / 2 + FLOOR_M
        height_top = boxes.center_m[rows, 2] + boxes.size_lwh_m[rows, 2] / 2
        candidates = points[(points[:, 2] >= bottom.min()) & (points[:, 2] <= height_top.max())]
        radius = np.hypot(half[:, 0], half[:, 1])
        candidates = _near_boxes(candidates, boxes.center_m[rows, :2], radius)
        candidates = candidates[np.argsort(candidates[:, 0], kind="stable")]
        for k, row in enumerate(rows):
            x = boxes.center_m[row, 0]
            start, stop = np.searchsorted(candidates[:, 0], [x - radius[k], x + radius[k]], side="left")
            mine = candidates[start:stop]
            mine = mine[(np.abs(mine[:, 1] - boxes.center_m[row, 1]) <= radius[k]) & (mine[:, 2] >= bottom[k]) & (mine[:, 2] <= height_top[k])]
            along = np.array([np.cos(boxes.yaw_rad[row]), np.sin(boxes.yaw_rad[row])])
            across = np.array([-along[1], along[0]])
            offset = mine[:, :2].astype(np.float64) - boxes.center_m[row, :2]
            uw = np.stack([offset @ along, offset @ across], axis=1)
            inside = np.all(np.abs(uw) <= half[k], axis=1)
            uw, lag = uw[inside], mine[inside, LAG].astype(np.float64)
            current, past = uw[lag == 0.0], np.flatnonzero(lag > 0.0)
            if len(current) < MIN_POINTS or len(past) < MIN_POINTS:
                continue
            past = past[np.linspace(0, len(past) - 1, min(len(past), MAX_PAST_POINTS)).astype(np.int64)]
            found = _search(current, np.column_stack([uw[past], lag[past]]), half[k], top[row])
            velocity[row] = found[0] * along + found[1] * across
    yaw = boxes.yaw_rad
    if turn_min_speed_m_per_s is not None:
        heading = np.stack([np.cos(yaw), np.sin(yaw)], axis=1)
        backwards = (np.linalg.norm(velocity, axis=1) >= turn_min_speed_m_per_s) & (np.sum(velocity * heading, axis=1) < 0)
        yaw = np.where(backwards, wrap_angle(yaw + np.pi), yaw)
    return replace(boxes, yaw_rad=yaw, velocity_m_per_s=velocity)
