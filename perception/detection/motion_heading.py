"""Heading from motion: a moving box faces the way its sweeps moved.

A LiDAR sees a car's front and back alike, so the heading head confuses them (synthetic cars are symmetric boxes), and
a velocity coded along the heading (`box_coder`, `velocity_frame="box"`) flips with it. The sweeps settle it: the
points of a moving box's past sweeps, carried forward by its velocity times their time lag, land on its current
sweep's points; carried by the opposite velocity, they land twice as far away. Of the two, the box keeps the heading
whose motion explains the sweeps better (mean distance from each carried point to the nearest current point).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

import numpy as np
from scipy.spatial import cKDTree

from perception.detection.box_ops import points_in_each_box
from perception.detection.sweeps import POINT_FEATURES
from scenes.geometry import wrap_angle
from scenes.records import Boxes3D

LAG: Final = POINT_FEATURES.index("time_lag_s")
# A box's points: inside it grown by its motion over the sweeps plus `MARGIN_M` along its length and across it, and
# more than `FLOOR_M` above its bottom (the road under it is the same in every sweep). It takes `MIN_POINTS` of the
# current sweep and of the past ones to compare the two headings.
MARGIN_M: Final = 0.5
FLOOR_M: Final = 0.2
MIN_POINTS: Final = 5


def _motion_cost(past: np.ndarray, velocity_m_per_s: np.ndarray, current: cKDTree) -> float:
    """Mean distance (m, BEV) from the `past` points (x, y, lag) carried by `velocity_m_per_s` over their lags to the
    nearest point of the `current` sweep."""
    carried = past[:, :2] + past[:, 2:3] * velocity_m_per_s[None, :]
    distance, _ = current.query(carried)
    return float(np.mean(distance))


def resolve_headings(points: np.ndarray, boxes: Boxes3D, *, min_speed_m_per_s: float) -> Boxes3D:
    """`boxes` with every box moving at `min_speed_m_per_s` or more (by its velocity) turned by 180 degrees, velocity
    with it, where the opposite motion carries its past sweeps' points closer onto its current sweep's points.

    `points` is the `(N, 5)` multi-sweep input (`sweeps.POINT_FEATURES`) in the boxes' frame. Boxes without velocity,
    slower ones and ones without `MIN_POINTS` current and past points are kept as they are.
    """
    if boxes.velocity_m_per_s is None or not len(boxes) or not len(points):
        return boxes
    speed = np.linalg.norm(boxes.velocity_m_per_s, axis=1)
    moving = np.flatnonzero(speed >= min_speed_m_per_s)
    max_lag_s = float(points[:, LAG].max())
    if not len(moving) or max_lag_s <= 0:
        return boxes
    size = boxes.size_lwh_m[moving] + np.array([0.0, 2 * MARGIN_M, -FLOOR_M])
    size[:, 0] += 2 * (speed[moving] * max_lag_s + MARGIN_M)
    center = boxes.center_m[moving] + np.array([0.0, 0.0, FLOOR_M / 2])
    flip = np.zeros(len(boxes), dtype=bool)
    for row, inside in zip(moving, points_in_each_box(points[:, :3], center, size, boxes.yaw_rad[moving]), strict=True):
        mine = points[inside]
        current, past = mine[mine[:, LAG] == 0.0], mine[mine[:, LAG] > 0.0][:, [0, 1, LAG]].astype(np.float64)
        if len(current) < MIN_POINTS or len(past) < MIN_POINTS:
            continue
        tree = cKDTree(current[:, :2].astype(np.float64))
        velocity = boxes.velocity_m_per_s[row]
        flip[row] = _motion_cost(past, -velocity, tree) < _motion_cost(past, velocity, tree)
    if not flip.any():
        return boxes
    velocity = np.where(flip[:, None], -boxes.velocity_m_per_s, boxes.velocity_m_per_s)
    yaw = np.where(flip, wrap_angle(boxes.yaw_rad + np.pi), boxes.yaw_rad)
    return replace(boxes, yaw_rad=yaw, velocity_m_per_s=velocity)
