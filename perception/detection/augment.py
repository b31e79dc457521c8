"""Augmentation of a sample.

Global (points and boxes together): flip about the x axis, rotation about z, scaling. Sensor variation (what differs
between the synthetic city and real rigs): a shift of the ground height, fewer lasers (whole scanlines dropped, the
same in every sweep of the sample) and fewer points. Intensity response: each dataset scales intensity its own way
(`scenes.synth.lidar`: AV2's is dim and spread out, KITTI's compressed), so a random response
`gain * intensity ** gamma` maps every point of a sample, pasted objects included. Terrain: the synthetic roads are
flat, real ones are not (on the real AV2 sweep in `shared/data` half of the vehicles stand 0.2-0.4 m below the road
under the ego vehicle), so heights can follow a random ground surface, a slope plus one long undulation, that moves
every point and box by the surface's height at its position.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from scenes.geometry import wrap_angle
from scenes.records import Boxes3D, LidarSweep


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


def keep_lasers(sweeps: list[LidarSweep], fraction: float, rng: np.random.Generator) -> list[LidarSweep]:
    """The sweeps with only a random `fraction` of their lasers (the same lasers in each, at least one)."""
    lasers = np.unique(np.concatenate([sweep.laser_number for sweep in sweeps]))
    if fraction >= 1.0 or len(lasers) < 2:
        return sweeps
    count = max(1, int(round(fraction * len(lasers))))
    kept = rng.choice(lasers, size=count, replace=False)
    return [sweep.select(np.isin(sweep.laser_number, kept)) for sweep in sweeps]


def ground_height_m(
    xy_m: np.ndarray, gradient: np.ndarray, amplitude_m: float, wave_vector_per_m: np.ndarray, phase_rad: float
) -> np.ndarray:
    """Height of a ground surface at ego points `(N, 2)` relative to the ground under the ego vehicle (origin): a plane
    of slope `gradient` (dz/dx, dz/dy) plus `amplitude_m * (sin(k . xy + phase) - sin(phase))`, so it is 0 at the
    origin."""
    xy = np.asarray(xy_m, dtype=np.float64)
    wave = np.sin(xy @ wave_vector_per_m + phase_rad) - np.sin(phase_rad)
    return xy @ gradient + amplitude_m * wave


def random_terrain(
    points: np.ndarray, boxes: Boxes3D, rng: np.random.Generator, *, max_slope: float, max_undulation_m: float
) -> tuple[np.ndarray, Boxes3D]:
    """Points `(N, >= 3)` and boxes on a random ground surface (`ground_height_m`): a slope uniform in [0,
    `max_slope`] in a uniform direction, an undulation of amplitude uniform in [0, `max_undulation_m`], wavelength
    20-80 m, uniform direction and phase. Each box moves by the height at its centre (it stays upright)."""
    slope_direction, wave_direction = rng.uniform(0.0, 2.0 * np.pi, 2)
    gradient = float(rng.uniform(0.0, max_slope)) * np.array([np.cos(slope_direction), np.sin(slope_direction)])
    amplitude = float(rng.uniform(0.0, max_undulation_m))
    wave = 2.0 * np.pi / float(rng.uniform(20.0, 80.0)) * np.array([np.cos(wave_direction), np.sin(wave_direction)])
    phase = float(rng.uniform(0.0, 2.0 * np.pi))
    moved = points.copy()
    moved[:, 2] += ground_height_m(points[:, :2], gradient, amplitude, wave, phase).astype(moved.dtype)
    center = boxes.center_m.copy()
    center[:, 2] += ground_height_m(center[:, :2], gradient, amplitude, wave, phase)
    return moved, replace(boxes, center_m=center)


def vary_sensor(
    points: np.ndarray,
    boxes: Boxes3D,
    rng: np.random.Generator,
    *,
    ground_shift_m: float,
    point_keep_range: tuple[float, float],
    max_slope: float = 0.0,
    max_undulation_m: float = 0.0,
) -> tuple[np.ndarray, Boxes3D]:
    """`(N, >= 3)` points (x, y, z, ...) and their boxes under one random sensor variation: heights shifted by a uniform
    draw in +-`ground_shift_m`, a uniform share of `point_keep_range` of the points kept, and, when `max_slope` or
    `max_undulation_m` is positive, on a random ground surface (`random_terrain`)."""
    varied = points.copy()
    shift = float(rng.uniform(-ground_shift_m, ground_shift_m)) if ground_shift_m > 0 else 0.0
    varied[:, 2] += np.float32(shift)
    keep = float(rng.uniform(*point_keep_range))
    if keep < 1.0:
        varied = varied[rng.random(len(varied)) < keep]
    center = boxes.center_m.copy()
    center[:, 2] += shift
    boxes = replace(boxes, center_m=center)
    if max_slope > 0 or max_undulation_m > 0:
        varied, boxes = random_terrain(varied, boxes, rng, max_slope=max_slope, max_undulation_m=max_undulation_m)
    return varied, boxes


def vary_intensity(points: np.ndarray, rng: np.random.Generator, *, gain_range: tuple[float, float], gamma_range: tuple[float, float]) -> np.ndarray:
    """`(N, >= 4)` points (x, y, z, intensity, ...) with intensity mapped by one random response `gain * intensity **
    gamma` (gain and gamma log-uniform in their ranges), clipped to [0, 1]."""
    gain = float(np.exp(rng.uniform(*np.log(gain_range))))
    gamma = float(np.exp(rng.uniform(*np.log(gamma_range))))
    mapped = points.copy()
    mapped[:, 3] = np.clip(gain * np.maximum(points[:, 3], 0.0) ** gamma, 0.0, 1.0)
    return mapped
