"""Numba kernels of the simulator's per-pixel and per-point hot loops."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _lattice_hash(x: int, y: int, z: int, salt: int) -> float:
    h = (x * 73856093) ^ (y * 19349663) ^ (z * 83492791) ^ (salt * 2654435761)
    h &= 0xFFFFFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFFFFFF
    return ((h ^ (h >> 16)) & 0xFFFF) / 65536.0


@numba.njit(cache=True)
def value_noise(points: np.ndarray, scale_m: float, salt: int) -> np.ndarray:
    """Smoothly interpolated lattice noise in [0, 1) of points `(N, 3)` with cells of `scale_m` (solid texture)."""
    result = np.empty(points.shape[0])
    for n in range(points.shape[0]):
        px, py, pz = points[n, 0] / scale_m, points[n, 1] / scale_m, points[n, 2] / scale_m
        bx, by, bz = np.floor(px), np.floor(py), np.floor(pz)
        fx, fy, fz = px - bx, py - by, pz - bz
        sx, sy, sz = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy), fz * fz * (3 - 2 * fz)
        ix, iy, iz = int(bx), int(by), int(bz)
        total = 0.0
        for corner in range(8):
            ox, oy, oz = (corner >> 2) & 1, (corner >> 1) & 1, corner & 1
            weight = (sx if ox else 1 - sx) * (sy if oy else 1 - sy) * (sz if oz else 1 - sz)
            total += weight * _lattice_hash(ix + ox, iy + oy, iz + oz, salt)
        result[n] = total
    return result


@numba.njit(cache=True)
def count_points_in_boxes(points: np.ndarray, center: np.ndarray, size: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Number of points `(N, 3)` inside each yawed box (boundary included), as `points_in_box_mask` decides."""
    counts = np.zeros(center.shape[0], dtype=np.int64)
    for b in range(center.shape[0]):
        c, s = np.cos(yaw[b]), np.sin(yaw[b])
        hx, hy, hz = 0.5 * size[b, 0], 0.5 * size[b, 1], 0.5 * size[b, 2]
        radius_sq = hx * hx + hy * hy
        for n in range(points.shape[0]):
            dx, dy, dz = points[n, 0] - center[b, 0], points[n, 1] - center[b, 1], points[n, 2] - center[b, 2]
            if dx * dx + dy * dy > radius_sq or abs(dz) > hz:
                continue
            if abs(c * dx + s * dy) <= hx and abs(-s * dx + c * dy) <= hy:
                counts[b] += 1
    return counts
