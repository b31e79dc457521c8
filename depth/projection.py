"""LiDAR points -> sparse depth images, and image resizing of depth maps and intrinsics."""

from __future__ import annotations

import numpy as np

from scenes.geometry import SE3

__all__ = ["camera_points", "project_points", "scale_intrinsics"]


def camera_points(points_ego_m: np.ndarray, ego_SE3_camera: SE3) -> np.ndarray:
    """Ego-frame points `(N, 3)` -> camera frame (OpenCV axes: x right, y down, z forward)."""
    return ego_SE3_camera.inverse().transform_points(np.asarray(points_ego_m, dtype=np.float64))


def project_points(points_camera_m: np.ndarray, intrinsics: np.ndarray, height_px: int, width_px: int, min_depth_m: float = 0.1) -> np.ndarray:
    """Sparse z-depth image `(H, W)` float32 of camera-frame points: each point lands on its nearest pixel, the nearest
    point wins where several share a pixel, 0 where none does."""
    depth = np.zeros((height_px, width_px), dtype=np.float32)
    points = np.asarray(points_camera_m, dtype=np.float64)
    points = points[points[:, 2] > min_depth_m]
    if not len(points):
        return depth
    uv = (points @ np.asarray(intrinsics, dtype=np.float64).T)[:, :2] / points[:, 2:3]
    pixel = np.floor(uv + 0.5).astype(np.int64)
    inside = (pixel[:, 0] >= 0) & (pixel[:, 0] < width_px) & (pixel[:, 1] >= 0) & (pixel[:, 1] < height_px)
    pixel, z = pixel[inside], points[inside, 2]
    order = np.argsort(-z, kind="stable")  # far first, so the nearest point is written last
    depth[pixel[order, 1], pixel[order, 0]] = z[order]
    return depth


def scale_intrinsics(intrinsics: np.ndarray, from_hw: tuple[int, int], to_hw: tuple[int, int]) -> np.ndarray:
    """Intrinsics of an image resized from `from_hw` to `to_hw` (pixel centres at integer coordinates)."""
    sy, sx = to_hw[0] / from_hw[0], to_hw[1] / from_hw[1]
    scaled = np.array(intrinsics, dtype=np.float64)
    scaled[0, 0] *= sx
    scaled[1, 1] *= sy
    scaled[0, 2] = (scaled[0, 2] + 0.5) * sx - 0.5
    scaled[1, 2] = (scaled[1, 2] + 0.5) * sy - 0.5
    return scaled
