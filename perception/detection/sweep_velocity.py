"""Velocity from the sweeps: the motion that carries a box's past points onto its current ones.

The multi-sweep input (`sweeps.accumulate_sweeps`) holds each past sweep motion-compensated into the current ego frame,
so static structure lines up and a mover's past points trail behind its current ones by its velocity times their time
lag. The velocity head cannot learn that sign from one cloud: a car's front and back look alike, so it settles on the
mean of both, about 0. For each box this searches the velocity instead: in the box's frame, along and across its
heading up to its category's top speed, the velocity whose motion carries its past points closest to its current
points, and its current points, carried back, closest to each past sweep's (a box sliding along one of its sides
matches that side at any speed; only its ends tell, the trailing end by the past points it leaves behind, the leading
end by the current points it moves into). Closeness is the mean distance from each carried point to the nearest
point it is carried onto, capped at `CAP_M` (a neighbour's points or a wall's do not dominate), read from a raster
of `CELL_M` cells. The search takes a grid of `COARSE_STEP_M_PER_S` and refines it
around the best by a quarter step.

A box moving at `turn_min_speed_m_per_s` or more then faces the way it moves: a walker (nearly square seen from
above, so the heads hardly know its heading) takes its velocity's direction, any other box, of its heading and the
opposite one, the one its velocity points along.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

import numba
import numpy as np

from perception.detection.sweeps import POINT_FEATURES
from scenes.categories import CATEGORIES, CATEGORY_ID, VEHICLE_CATEGORIES
from scenes.geometry import wrap_angle
from scenes.records import Boxes3D

LAG: Final = POINT_FEATURES.index("time_lag_s")
_RIDERS: Final = ("BICYCLIST", "WHEELED_RIDER", "BICYCLE", "WHEELED_DEVICE")
_MOTORCYCLES: Final = ("MOTORCYCLIST", "MOTORCYCLE")
_WALKERS: Final = ("PEDESTRIAN", "WHEELCHAIR", "STROLLER", "DOG")
# Top speed (m/s) searched along and across a box's heading, per category; other categories keep their velocity.
TOP_SPEED_M_PER_S: Final[dict[str, tuple[float, float]]] = {
    **{name: (25.0, 1.0) for name in VEHICLE_CATEGORIES},
    **{name: (25.0, 1.0) for name in _MOTORCYCLES},
    **{name: (10.0, 1.0) for name in _RIDERS},
    **{name: (3.0, 3.0) for name in _WALKERS},
}
_TOP_BY_ID: Final = np.full((len(CATEGORIES), 2), np.nan)
for _name, _top in TOP_SPEED_M_PER_S.items():
    _TOP_BY_ID[CATEGORY_ID[_name]] = _top
_WALKER_ID: Final = np.isin(np.arange(len(_TOP_BY_ID)), [CATEGORY_ID[name] for name in _WALKERS])
# A box's points: inside it grown by its top speed over the sweeps plus `MARGIN_M`, and more than `FLOOR_M` above its
# bottom (the road under it is the same in every sweep). It takes `MIN_POINTS` current and past points to search; at
# most `MAX_CARRIED_POINTS` past and as many current points (evenly spread) are carried.
MARGIN_M: Final = 0.5
FLOOR_M: Final = 0.2
MIN_POINTS: Final = 5
MAX_CARRIED_POINTS: Final = 256
CELL_M: Final = 0.1
CAP_M: Final = 0.5
COARSE_STEP_M_PER_S: Final = 1.0


@numba.njit(cache=True, nogil=True)
def _near_boxes(points: np.ndarray, center_xy: np.ndarray, radius: np.ndarray, low_z: float, high_z: float) -> np.ndarray:
    """Indices of the points between `low_z` and `high_z` in the 2 m BEV cells that the boxes' bounding squares
    (`radius` about `center_xy`) touch: a cheap cut before the per-box one."""
    cell_m = 2.0
    low = np.floor((center_xy - radius.reshape(-1, 1)) / cell_m).astype(np.int64)
    high = np.floor((center_xy + radius.reshape(-1, 1)) / cell_m).astype(np.int64)
    origin_u, origin_v = low[:, 0].min(), low[:, 1].min()
    touched = np.zeros((high[:, 0].max() - origin_u + 1, high[:, 1].max() - origin_v + 1), dtype=np.bool_)
    for k in range(low.shape[0]):
        touched[low[k, 0] - origin_u : high[k, 0] - origin_u + 1, low[k, 1] - origin_v : high[k, 1] - origin_v + 1] = True
    keep = np.empty(points.shape[0], dtype=np.int64)
    count = 0
    for i in range(points.shape[0]):
        if not low_z <= points[i, 2] <= high_z:
            continue
        u = int(np.floor(points[i, 0] / cell_m)) - origin_u
        v = int(np.floor(points[i, 1] / cell_m)) - origin_v
        if 0 <= u < touched.shape[0] and 0 <= v < touched.shape[1] and touched[u, v]:
            keep[count] = i
            count += 1
    return keep[:count]


@numba.njit(cache=True, nogil=True)
def _box_points(
    points: np.ndarray, center_xy: np.ndarray, yaw_rad: float, half_uw: np.ndarray, low_z: float, high_z: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The points within `half_uw` of a box's centre in its frame and between `low_z` and `high_z`: current `(u, w)`,
    past `(u, w)` and their lags, at most `MAX_CARRIED_POINTS` of each (evenly spread)."""
    cos, sin = np.cos(yaw_rad), np.sin(yaw_rad)
    uw = np.empty((points.shape[0], 2))
    lag = np.empty(points.shape[0])
    count = 0
    for i in range(points.shape[0]):
        du, dv = points[i, 0] - center_xy[0], points[i, 1] - center_xy[1]
        u, w = du * cos + dv * sin, -du * sin + dv * cos
        if abs(u) <= half_uw[0] and abs(w) <= half_uw[1] and low_z <= points[i, 2] <= high_z:
            uw[count, 0], uw[count, 1], lag[count] = u, w, points[i, LAG]
            count += 1
    current = np.flatnonzero(lag[:count] == 0.0)
    past = np.flatnonzero(lag[:count] > 0.0)
    current = current[np.linspace(0, len(current) - 1, min(len(current), MAX_CARRIED_POINTS)).astype(np.int64)]
    past = past[np.linspace(0, len(past) - 1, min(len(past), MAX_CARRIED_POINTS)).astype(np.int64)]
    return uw[current], uw[past], lag[past]


@numba.njit(cache=True, nogil=True)
def _capped_distance_raster(uw: np.ndarray, half_uw: np.ndarray) -> np.ndarray:
    """Distance (m, capped at `CAP_M`) from the centre of each `CELL_M` cell of a box's frame within `half_uw` of its
    centre to the nearest of the points `(u, w)`."""
    nu = int(np.ceil(2 * half_uw[0] / CELL_M)) + 1
    nw = int(np.ceil(2 * half_uw[1] / CELL_M)) + 1
    raster = np.full((nu, nw), CAP_M)
    reach = int(np.ceil(CAP_M / CELL_M))
    for i in range(uw.shape[0]):
        cu = (uw[i, 0] + half_uw[0]) / CELL_M
        cw = (uw[i, 1] + half_uw[1]) / CELL_M
        for a in range(max(0, int(cu) - reach), min(nu, int(cu) + reach + 1)):
            for b in range(max(0, int(cw) - reach), min(nw, int(cw) + reach + 1)):
                raster[a, b] = min(raster[a, b], CELL_M * np.hypot(a + 0.5 - cu, b + 0.5 - cw))
    return raster


@numba.njit(cache=True, nogil=True)
def _mean_carried(raster: np.ndarray, uw: np.ndarray, lag: np.ndarray, velocity: np.ndarray, half_uw: np.ndarray) -> float:
    """Mean of the `raster`'s values where the points `uw`, carried by `velocity` over their `lag`, land (`CAP_M`
    outside it)."""
    total = 0.0
    for i in range(uw.shape[0]):
        a = int(np.floor((uw[i, 0] + lag[i] * velocity[0] + half_uw[0]) / CELL_M))
        b = int(np.floor((uw[i, 1] + lag[i] * velocity[1] + half_uw[1]) / CELL_M))
        total += raster[a, b] if 0 <= a < raster.shape[0] and 0 <= b < raster.shape[1] else CAP_M
    return total / uw.shape[0]


@numba.njit(cache=True, nogil=True)
def _cost(
    velocity: np.ndarray, current_uw: np.ndarray, back_lag: np.ndarray, past_uw: np.ndarray, past_lag: np.ndarray,
    forward: np.ndarray, backward: np.ndarray, half_uw: np.ndarray,
) -> float:  # fmt: skip
    """How badly `velocity` (along, across) carries the past points onto the current ones (`forward`: their distance
    raster) and the current points back onto each past sweep's (`backward[l]`, over the negative lag `back_lag[l]`)."""
    cost = _mean_carried(forward, past_uw, past_lag, velocity, half_uw)
    for k in range(backward.shape[0]):
        cost += _mean_carried(backward[k], current_uw, back_lag[k], velocity, half_uw) / backward.shape[0]
    return cost


@numba.njit(cache=True, nogil=True)
def _search(current_uw: np.ndarray, past_uw: np.ndarray, past_lag: np.ndarray, half_uw: np.ndarray, top: np.ndarray) -> np.ndarray:
    """The velocity (along, across; m/s) that best carries the past points `past_uw` (`past_lag` s ago) onto the
    current points `current_uw` and the current points back onto each past sweep's, all in a box's frame within
    `half_uw` of its centre, at most `top` fast along and across."""
    forward = _capped_distance_raster(current_uw, half_uw)
    lags = np.unique(past_lag)
    backward = np.empty((lags.shape[0], forward.shape[0], forward.shape[1]))
    back_lag = np.empty((lags.shape[0], current_uw.shape[0]))
    for k in range(lags.shape[0]):
        backward[k] = _capped_distance_raster(past_uw[past_lag == lags[k]], half_uw)
        back_lag[k] = -lags[k]
    steps = np.floor(top / COARSE_STEP_M_PER_S + 1e-9).astype(np.int64)
    coarse = _best_on_grid(np.zeros(2), COARSE_STEP_M_PER_S, steps, top, current_uw, back_lag, past_uw, past_lag, forward, backward, half_uw)
    fine_steps = np.array([4, 4 if top[1] > 0 else 0])
    return _best_on_grid(coarse, COARSE_STEP_M_PER_S / 4, fine_steps, top, current_uw, back_lag, past_uw, past_lag, forward, backward, half_uw)


@numba.njit(cache=True, nogil=True)
def _best_on_grid(
    center: np.ndarray, step: float, steps: np.ndarray, top: np.ndarray,
    current_uw: np.ndarray, back_lag: np.ndarray, past_uw: np.ndarray, past_lag: np.ndarray, forward: np.ndarray, backward: np.ndarray, half_uw: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """Of the velocities `center + (i, j) * step` (`|i|, |j| <= steps`, within `top`), the one of lowest `_cost`."""
    best = center.copy()
    lowest = np.inf
    velocity = np.zeros(2)
    for i in range(-steps[0], steps[0] + 1):
        for j in range(-steps[1], steps[1] + 1):
            velocity[0] = center[0] + i * step
            velocity[1] = center[1] + j * step
            if abs(velocity[0]) > top[0] + 1e-9 or abs(velocity[1]) > top[1] + 1e-9:
                continue
            cost = _cost(velocity, current_uw, back_lag, past_uw, past_lag, forward, backward, half_uw)
            if cost < lowest:
                lowest = cost
                best[:] = velocity
    return best


def velocity_from_sweeps(points: np.ndarray, boxes: Boxes3D, *, turn_min_speed_m_per_s: float | None) -> Boxes3D:
    """`boxes` with the velocity (m/s, the boxes' frame) of each box of a category in `TOP_SPEED_M_PER_S` searched from
    its sweeps, and, with `turn_min_speed_m_per_s`, the ones moving that fast turned to face their motion (walkers: to
    their velocity's direction).

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
        radius = np.hypot(half[:, 0], half[:, 1])
        candidates = points[_near_boxes(points, boxes.center_m[rows, :2], radius, float(bottom.min()), float(height_top.max()))]
        candidates = candidates[np.argsort(candidates[:, 0], kind="stable")]
        for k, row in enumerate(rows):
            x = boxes.center_m[row, 0]
            start, stop = np.searchsorted(candidates[:, 0], [x - radius[k], x + radius[k]], side="left")
            current, past, lag = _box_points(candidates[start:stop], boxes.center_m[row, :2], float(boxes.yaw_rad[row]), half[k], bottom[k], height_top[k])
            if len(current) < MIN_POINTS or len(past) < MIN_POINTS:
                continue
            found = _search(current, past, lag, half[k].copy(), top[row].copy())
            along = np.array([np.cos(boxes.yaw_rad[row]), np.sin(boxes.yaw_rad[row])])
            velocity[row] = found[0] * along + found[1] * np.array([-along[1], along[0]])
    yaw = boxes.yaw_rad
    if turn_min_speed_m_per_s is not None:
        heading = np.stack([np.cos(yaw), np.sin(yaw)], axis=1)
        moving = np.linalg.norm(velocity, axis=1) >= turn_min_speed_m_per_s
        walking = moving & _WALKER_ID[boxes.category]
        backwards = moving & ~walking & (np.sum(velocity * heading, axis=1) < 0)
        yaw = np.where(backwards, wrap_angle(yaw + np.pi), yaw)
        yaw = np.where(walking, np.arctan2(velocity[:, 1], velocity[:, 0]), yaw)
    return replace(boxes, yaw_rad=yaw, velocity_m_per_s=velocity)
