"""Point-cloud voxelization kernels (numba): dynamic pillars/voxels and hard (capacity-limited) voxels.

A grid is defined by `range_m = (x_min, y_min, z_min, x_max, y_max, z_max)` and `voxel_size_m = (dx, dy, dz)`;
pillars are voxels whose `dz` spans the whole z range. Voxel coordinates are `(z, y, x)` integer indices, the
layout of mmcv's `Voxelization`. Points outside the range are dropped (index -1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class VoxelGrid:
    """A regular grid over `range_m` with cells of `voxel_size_m`; `shape_zyx` is the number of cells per axis."""

    range_m: tuple[float, float, float, float, float, float]
    voxel_size_m: tuple[float, float, float]

    def __post_init__(self) -> None:
        if len(self.range_m) != 6 or len(self.voxel_size_m) != 3:
            raise ValueError(f"VoxelGrid: range_m needs 6 values and voxel_size_m 3, got {self.range_m}, {self.voxel_size_m}")
        for axis in range(3):
            if self.range_m[axis + 3] <= self.range_m[axis]:
                raise ValueError(f"VoxelGrid.range_m: max <= min on axis {axis}: {self.range_m}")
            if self.voxel_size_m[axis] <= 0:
                raise ValueError(f"VoxelGrid.voxel_size_m: must be positive, got {self.voxel_size_m}")

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        counts = [
            int(round((self.range_m[axis + 3] - self.range_m[axis]) / self.voxel_size_m[axis])) for axis in range(3)
        ]
        return counts[2], counts[1], counts[0]

    def as_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        shape = np.array(self.shape_zyx[::-1], dtype=np.int64)
        return np.asarray(self.range_m[:3], dtype=np.float64), np.asarray(self.voxel_size_m, dtype=np.float64), shape


@numba.njit(cache=True, nogil=True, inline="always")
def _cell_xyz(
    points: np.ndarray, i: int, low: np.ndarray, size: np.ndarray, nx: int, ny: int, nz: int
) -> tuple[int, int, int]:
    """Voxel cell (x, y, z) of point `i`, or (-1, -1, -1) outside the grid."""
    fx = np.floor((points[i, 0] - low[0]) / size[0])
    fy = np.floor((points[i, 1] - low[1]) / size[1])
    fz = np.floor((points[i, 2] - low[2]) / size[2])
    if not (0 <= fx < nx and 0 <= fy < ny and 0 <= fz < nz):  # compared as floats: huge values never wrap
        return -1, -1, -1
    return int(fx), int(fy), int(fz)


@numba.njit(cache=True, nogil=True)
def _voxel_index_kernel(
    points: np.ndarray, low: np.ndarray, size: np.ndarray, shape_xyz: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point: voxel slot (-1 outside); per voxel: (z, y, x) coords and point count, in first-seen order."""
    n = points.shape[0]
    nx, ny, nz = shape_xyz[0], shape_xyz[1], shape_xyz[2]
    table = np.full(nx * ny * nz, -1, dtype=np.int32)
    point_voxel = np.full(n, -1, dtype=np.int32)
    coords = np.empty((min(n, nx * ny * nz), 3), dtype=np.int32)
    counts = np.zeros(min(n, nx * ny * nz), dtype=np.int32)
    num_voxels = 0
    for i in range(n):
        cx, cy, cz = _cell_xyz(points, i, low, size, nx, ny, nz)
        if cx < 0:
            continue
        key = (cz * ny + cy) * nx + cx
        slot = table[key]
        if slot < 0:
            slot = num_voxels
            table[key] = slot
            coords[slot, 0] = cz
            coords[slot, 1] = cy
            coords[slot, 2] = cx
            num_voxels += 1
        point_voxel[i] = slot
        counts[slot] += 1
    return point_voxel, coords[:num_voxels].copy(), counts[:num_voxels].copy()


@dataclass(frozen=True)
class DynamicVoxels:
    """Dynamic voxelization: every in-range point keeps its voxel slot (no capacity limit, no dropped points)."""

    point_voxel: np.ndarray  # (N,) int32 voxel slot of each point, -1 outside the range
    coords_zyx: np.ndarray  # (V, 3) int32
    num_points: np.ndarray  # (V,) int32


def voxelize_dynamic(points: npt.ArrayLike, grid: VoxelGrid) -> DynamicVoxels:
    """Assigns each point (columns x, y, z, ...) to its voxel of `grid`."""
    array = np.ascontiguousarray(points, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] < 3:
        raise ValueError(f"voxelize_dynamic: expected (N, >=3) points, got shape {array.shape}")
    low, size, shape = grid.as_arrays()
    point_voxel, coords, counts = _voxel_index_kernel(array, low, size, shape)
    return DynamicVoxels(point_voxel, coords, counts)


@numba.njit(cache=True, nogil=True)
def _hard_voxel_kernel(
    points: np.ndarray, low: np.ndarray, size: np.ndarray, shape_xyz: np.ndarray, max_points: int, max_voxels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, features = points.shape
    nx, ny, nz = shape_xyz[0], shape_xyz[1], shape_xyz[2]
    table = np.full(nx * ny * nz, -1, dtype=np.int32)
    voxels = np.zeros((max_voxels, max_points, features), dtype=np.float32)
    coords = np.empty((max_voxels, 3), dtype=np.int32)
    counts = np.zeros(max_voxels, dtype=np.int32)
    num_voxels = 0
    for i in range(n):
        cx, cy, cz = _cell_xyz(points, i, low, size, nx, ny, nz)
        if cx < 0:
            continue
        key = (cz * ny + cy) * nx + cx
        slot = table[key]
        if slot < 0:
            if num_voxels >= max_voxels:
                continue
            slot = num_voxels
            table[key] = slot
            coords[slot, 0] = cz
            coords[slot, 1] = cy
            coords[slot, 2] = cx
            num_voxels += 1
        k = counts[slot]
        if k < max_points:
            voxels[slot, k] = points[i]
            counts[slot] = k + 1
    return voxels[:num_voxels].copy(), coords[:num_voxels].copy(), counts[:num_voxels].copy()


@dataclass(frozen=True)
class HardVoxels:
    """Hard voxelization (PointPillars/VoxelNet): at most `max_points` points per voxel and `max_voxels` voxels,
    first come first served, zero-padded."""

    voxels: np.ndarray  # (V, max_points, F) float32
    coords_zyx: np.ndarray  # (V, 3) int32
    num_points: np.ndarray  # (V,) int32


def voxelize_hard(points: npt.ArrayLike, grid: VoxelGrid, max_points: int, max_voxels: int) -> HardVoxels:
    """Capacity-limited voxelization, the semantics of mmcv's `Voxelization(..., deterministic=True)`."""
    if max_points < 1 or max_voxels < 1:
        raise ValueError(f"voxelize_hard: max_points and max_voxels must be >= 1, got {max_points}, {max_voxels}")
    array = np.ascontiguousarray(points, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] < 3:
        raise ValueError(f"voxelize_hard: expected (N, >=3) points, got shape {array.shape}")
    low, size, shape = grid.as_arrays()
    voxels, coords, counts = _hard_voxel_kernel(array, low, size, shape, int(max_points), int(max_voxels))
    return HardVoxels(voxels, coords, counts)
