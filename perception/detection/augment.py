"""Global augmentation of a sample (points and boxes together): flip about the x axis, rotation about z, scaling."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from scenes.geometry import wrap_angle
from scenes.records import Boxes3D


def flip_y(points: np.ndarray, boxes: Boxes3D) -> tuple[np.ndarray, Boxes3D]:
    """Mirror y -> -y: yaw -> -yaw, vy -> -vy."""
    flipped = points.copy()
    flipped[:, 1] = -flipped[:, 1]
    center = boxes.center_m * np.array([1.0, -1.0, 1.0])
    velocity = None if boxes.velocity_m_per_s is None else boxes.velocity_m_per_s * np.array([1.0, -1.0])
    return flipped, replace(boxes, center_m=center, yaw_rad=wrap_angle(-boxes.yaw_rad), velocity_m_per_s=velocity)


def rotate_scale(points: np.ndarray, boxes: Boxes3D, angle_rad: float, scale: float) -> tuple[np.ndarray, Boxes3D]:
    """Rotation by `angle_rad` about z then uniform scaling by `scale` (sizes and velocities scale too)."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    rotation = np.array([[c, -s], [s, c]])
    moved = points.copy()
    moved[:, :2] = (points[:, :2].astype(np.float64) @ rotation.T * scale).astype(np.float32)
    moved[:, 2] = points[:, 2] * scale
    center = boxes.center_m.copy()
    center[:, :2] = boxes.center_m[:, :2] @ rotation.T
    center *= scale
    velocity = None if boxes.velocity_m_per_s is None else boxes.velocity_m_per_s @ rotation.T * scale
    return moved, replace(
        boxes,
        center_m=center,
        size_lwh_m=boxes.size_lwh_m * scale,
        yaw_rad=wrap_angle(boxes.yaw_rad + angle_rad),
        velocity_m_per_s=velocity,
    )


def augment(
    points: np.ndarray,
    boxes: Boxes3D,
    rng: np.random.Generator,
    *,
    flip_probability: float,
    rotation_range_rad: float,
    scale_range: tuple[float, float],
) -> tuple[np.ndarray, Boxes3D]:
    """One random global augmentation drawn from `rng`."""
    if rng.random() < flip_probability:
        points, boxes = flip_y(points, boxes)
    angle = float(rng.uniform(-rotation_range_rad, rotation_range_rad))
    scale = float(rng.uniform(*scale_range))
    return rotate_scale(points, boxes, angle, scale)
