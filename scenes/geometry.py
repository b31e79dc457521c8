"""Rigid and similarity transforms, quaternions, boxes and camera projection.

Conventions (shared by every dataset adapter and stage):
- `a_SE3_b` maps points expressed in frame `b` into frame `a` (`city_SE3_ego.transform_points(p_ego) -> p_city`).
- Quaternions are scalar-first `(w, x, y, z)`, as in AV2 and nuScenes (scipy uses `(x, y, z, w)`).
- Boxes are `(center_m, size_lwh_m, yaw_rad)`: length along the box's +x, width along +y, height along +z, yaw about +z.
- Camera frames are OpenCV-style: +z forward, +x right, +y down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy.spatial.transform import Rotation

FloatArray = npt.NDArray[np.float64]

_ORTHONORMAL_ATOL: Final = 1e-5


def _as_float_array(name: str, value: npt.ArrayLike, shape: tuple[int, ...]) -> FloatArray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains NaN or inf")
    return array


def quat_wxyz_to_matrix(quat_wxyz: npt.ArrayLike) -> FloatArray:
    """Rotation matrices `(..., 3, 3)` from scalar-first quaternions `(..., 4)` (normalised first)."""
    quat = np.asarray(quat_wxyz, dtype=np.float64)
    if quat.shape[-1] != 4:
        raise ValueError(f"quaternion: expected last dimension 4, got shape {quat.shape}")
    flat = quat.reshape(-1, 4)
    matrices = Rotation.from_quat(flat[:, [1, 2, 3, 0]]).as_matrix()
    return matrices.reshape(*quat.shape[:-1], 3, 3)


def matrix_to_quat_wxyz(matrix: npt.ArrayLike) -> FloatArray:
    """Scalar-first unit quaternions `(..., 4)` with `w >= 0` from rotation matrices `(..., 3, 3)`."""
    mat = np.asarray(matrix, dtype=np.float64)
    flat = mat.reshape(-1, 3, 3)
    xyzw = Rotation.from_matrix(flat).as_quat()
    wxyz = xyzw[:, [3, 0, 1, 2]]
    wxyz *= np.where(wxyz[:, :1] < 0, -1.0, 1.0)
    return wxyz.reshape(*mat.shape[:-2], 4)


def yaw_to_quat_wxyz(yaw_rad: npt.ArrayLike) -> FloatArray:
    """Quaternions `(..., 4)` of rotations by `yaw_rad` about +z."""
    half = 0.5 * np.asarray(yaw_rad, dtype=np.float64)
    zeros = np.zeros_like(half)
    return np.stack([np.cos(half), zeros, zeros, np.sin(half)], axis=-1)


def quat_wxyz_to_yaw(quat_wxyz: npt.ArrayLike) -> FloatArray:
    """Heading about +z of the rotated +x axis, in `(-pi, pi]`."""
    rotation = quat_wxyz_to_matrix(quat_wxyz)
    return np.arctan2(rotation[..., 1, 0], rotation[..., 0, 0])


def yaw_to_matrix(yaw_rad: npt.ArrayLike) -> FloatArray:
    """Rotation matrices `(..., 3, 3)` about +z."""
    yaw = np.asarray(yaw_rad, dtype=np.float64)
    c, s = np.cos(yaw), np.sin(yaw)
    matrix = np.zeros((*yaw.shape, 3, 3))
    matrix[..., 0, 0], matrix[..., 0, 1] = c, -s
    matrix[..., 1, 0], matrix[..., 1, 1] = s, c
    matrix[..., 2, 2] = 1.0
    return matrix


def polyline_arc_m(points_m: npt.ArrayLike) -> FloatArray:
    """Cumulative arc length `(P,)` at each vertex of a polyline `(P, D)`, 0 at the first."""
    points = np.asarray(points_m, dtype=np.float64)
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])


def points_at_arc(points_m: npt.ArrayLike, arc_m: npt.ArrayLike, at_m: npt.ArrayLike) -> FloatArray:
    """Points `(..., D)` at arc lengths `at_m (...)` along a polyline `(P, D)` whose vertices are at `arc_m (P,)`:
    linear interpolation, held at the end points outside `[arc_m[0], arc_m[-1]]` (as `np.interp`)."""
    points = np.asarray(points_m, dtype=np.float64)
    arc, at = np.asarray(arc_m, dtype=np.float64), np.asarray(at_m, dtype=np.float64)
    return np.stack([np.interp(at, arc, points[:, k]) for k in range(points.shape[1])], axis=-1)


def wrap_angle(angle_rad: npt.ArrayLike) -> FloatArray:
    """Angles wrapped to `[-pi, pi)`."""
    return (np.asarray(angle_rad, dtype=np.float64) + np.pi) % (2.0 * np.pi) - np.pi


@dataclass(frozen=True, eq=False)
class SE3:
    """Rigid transform `dst_SE3_src`: `p_dst = rotation @ p_src + translation`."""

    rotation: FloatArray = field(default_factory=lambda: np.eye(3))
    translation: FloatArray = field(default_factory=lambda: np.zeros(3))

    def __post_init__(self) -> None:
        rotation = _as_float_array("SE3.rotation", self.rotation, (3, 3))
        translation = _as_float_array("SE3.translation", self.translation, (3,))
        if not np.allclose(rotation @ rotation.T, np.eye(3), atol=_ORTHONORMAL_ATOL) or np.linalg.det(rotation) < 0:
            raise ValueError("SE3.rotation: not a proper rotation matrix (R @ R.T != I or det(R) < 0)")
        object.__setattr__(self, "rotation", rotation)
        object.__setattr__(self, "translation", translation)

    @classmethod
    def identity(cls) -> SE3:
        return cls()

    @classmethod
    def from_matrix(cls, matrix: npt.ArrayLike) -> SE3:
        mat = _as_float_array("SE3.matrix", matrix, (4, 4))
        if not np.allclose(mat[3], [0.0, 0.0, 0.0, 1.0]):
            raise ValueError("SE3.matrix: last row must be [0, 0, 0, 1]")
        return cls(mat[:3, :3], mat[:3, 3])

    @classmethod
    def from_quat_wxyz(cls, quat_wxyz: npt.ArrayLike, translation: npt.ArrayLike) -> SE3:
        quat = _as_float_array("SE3.quat_wxyz", quat_wxyz, (4,))
        if np.linalg.norm(quat) < 1e-9:
            raise ValueError("SE3.quat_wxyz: zero-norm quaternion")
        return cls(quat_wxyz_to_matrix(quat), _as_float_array("SE3.translation", translation, (3,)))

    @classmethod
    def from_yaw(cls, yaw_rad: float, translation: npt.ArrayLike) -> SE3:
        return cls(yaw_to_matrix(float(yaw_rad)), _as_float_array("SE3.translation", translation, (3,)))

    def as_matrix(self) -> FloatArray:
        matrix = np.eye(4)
        matrix[:3, :3] = self.rotation
        matrix[:3, 3] = self.translation
        return matrix

    @property
    def quat_wxyz(self) -> FloatArray:
        return matrix_to_quat_wxyz(self.rotation)

    @property
    def yaw_rad(self) -> float:
        return float(np.arctan2(self.rotation[1, 0], self.rotation[0, 0]))

    def compose(self, other: SE3) -> SE3:
        """`a_SE3_b.compose(b_SE3_c) -> a_SE3_c`."""
        return SE3(self.rotation @ other.rotation, self.rotation @ other.translation + self.translation)

    def inverse(self) -> SE3:
        rotation_t = self.rotation.T
        return SE3(rotation_t, -rotation_t @ self.translation)

    def transform_points(self, points: npt.ArrayLike) -> FloatArray:
        """Maps `(N, 3)` points from the source into the destination frame."""
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ValueError(f"SE3.transform_points: expected (N, 3) points, got {pts.shape}")
        return pts @ self.rotation.T + self.translation

    def transform_boxes(
        self, center_m: npt.ArrayLike, yaw_rad: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray]:
        """Box centres `(N, 3)` and yaws `(N,)` expressed in the destination frame (rotation about z assumed)."""
        return self.transform_points(center_m), wrap_angle(np.asarray(yaw_rad) + self.yaw_rad)

    def allclose(self, other: SE3, atol: float = 1e-9) -> bool:
        return bool(
            np.allclose(self.rotation, other.rotation, atol=atol)
            and np.allclose(self.translation, other.translation, atol=atol)
        )


@dataclass(frozen=True, eq=False)
class Sim2:
    """Similarity `dst_Sim2_src` in the plane, with AV2's convention `p_dst = s * (R @ p_src + t)`."""

    rotation: FloatArray
    translation: FloatArray
    scale: float

    def __post_init__(self) -> None:
        rotation = _as_float_array("Sim2.rotation", self.rotation, (2, 2))
        translation = _as_float_array("Sim2.translation", self.translation, (2,))
        if not np.allclose(rotation @ rotation.T, np.eye(2), atol=_ORTHONORMAL_ATOL):
            raise ValueError("Sim2.rotation: not orthonormal")
        if not np.isfinite(self.scale) or abs(self.scale) < 1e-12:
            raise ValueError(f"Sim2.scale: must be finite and non-zero, got {self.scale}")
        object.__setattr__(self, "rotation", rotation)
        object.__setattr__(self, "translation", translation)
        object.__setattr__(self, "scale", float(self.scale))

    def transform_points(self, points_xy: npt.ArrayLike) -> FloatArray:
        pts = np.asarray(points_xy, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f"Sim2.transform_points: expected (N, 2) points, got {pts.shape}")
        return self.scale * (pts @ self.rotation.T + self.translation)

    def compose(self, other: Sim2) -> Sim2:
        """`a_Sim2_b.compose(b_Sim2_c) -> a_Sim2_c`."""
        translation = self.rotation @ other.translation + self.translation / other.scale
        return Sim2(self.rotation @ other.rotation, translation, self.scale * other.scale)

    def inverse(self) -> Sim2:
        rotation_t = self.rotation.T
        return Sim2(rotation_t, -rotation_t @ (self.scale * self.translation), 1.0 / self.scale)

    def to_json_dict(self) -> dict[str, object]:
        return {"R": self.rotation.flatten().tolist(), "t": self.translation.tolist(), "s": self.scale}

    @classmethod
    def from_json_dict(cls, payload: Mapping[str, Any]) -> Sim2:
        return cls(np.asarray(payload["R"], dtype=np.float64).reshape(2, 2), np.asarray(payload["t"]), float(payload["s"]))


def box_corners(center_m: npt.ArrayLike, size_lwh_m: npt.ArrayLike, yaw_rad: npt.ArrayLike) -> FloatArray:
    """Corners `(N, 8, 3)` of yawed boxes.

    Order as AV2's `Cuboid.vertices_m` (box-frame signs of x/y/z): the front face (+x) then the rear face (-x),
    each (+y,+z), (-y,+z), (-y,-z), (+y,-z): index 0 is front-left-top, 2 front-right-bottom, 4 rear-left-top.
    """
    center = np.asarray(center_m, dtype=np.float64).reshape(-1, 3)
    size = np.asarray(size_lwh_m, dtype=np.float64).reshape(-1, 3)
    yaw = np.asarray(yaw_rad, dtype=np.float64).reshape(-1)
    signs = np.array(
        [[1, 1, 1], [1, -1, 1], [1, -1, -1], [1, 1, -1], [-1, 1, 1], [-1, -1, 1], [-1, -1, -1], [-1, 1, -1]],
        dtype=np.float64,
    )
    local = 0.5 * signs[None, :, :] * size[:, None, :]
    rotation = yaw_to_matrix(yaw)
    return np.einsum("nij,nkj->nki", rotation, local) + center[:, None, :]


def bev_box_corners(center_xy_m: npt.ArrayLike, size_lw_m: npt.ArrayLike, yaw_rad: npt.ArrayLike) -> FloatArray:
    """Bird's-eye-view corners `(N, 4, 2)`, counter-clockwise starting front-left."""
    center = np.asarray(center_xy_m, dtype=np.float64).reshape(-1, 2)
    size = np.asarray(size_lw_m, dtype=np.float64).reshape(-1, 2)
    yaw = np.asarray(yaw_rad, dtype=np.float64).reshape(-1)
    signs = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=np.float64)
    local = 0.5 * signs[None] * size[:, None, :]
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    x = c * local[..., 0] - s * local[..., 1] + center[:, :1]
    y = s * local[..., 0] + c * local[..., 1] + center[:, 1:]
    return np.stack([x, y], axis=-1)


def points_in_box_mask(
    points_xyz_m: npt.ArrayLike, center_m: npt.ArrayLike, size_lwh_m: npt.ArrayLike, yaw_rad: float
) -> npt.NDArray[np.bool_]:
    """Boolean mask of the `(N, 3)` points inside one yawed box (boundary included)."""
    pts = np.asarray(points_xyz_m, dtype=np.float64) - np.asarray(center_m, dtype=np.float64)
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    local_x = c * pts[:, 0] + s * pts[:, 1]
    local_y = -s * pts[:, 0] + c * pts[:, 1]
    half = 0.5 * np.asarray(size_lwh_m, dtype=np.float64)
    return (np.abs(local_x) <= half[0]) & (np.abs(local_y) <= half[1]) & (np.abs(pts[:, 2]) <= half[2])


def project_to_image(
    points_camera_m: npt.ArrayLike, intrinsics: npt.ArrayLike, width_px: int, height_px: int, min_depth_m: float = 0.1
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Pinhole projection of camera-frame points `(N, 3)` -> pixel coordinates `(N, 2)` and an in-image mask."""
    pts = np.asarray(points_camera_m, dtype=np.float64)
    k = _as_float_array("intrinsics", intrinsics, (3, 3))
    depth = pts[:, 2]
    safe_depth = np.where(np.abs(depth) < 1e-9, 1e-9, depth)
    uv = (pts @ k.T)[:, :2] / safe_depth[:, None]
    valid = (depth > min_depth_m) & (uv[:, 0] >= 0) & (uv[:, 0] < width_px) & (uv[:, 1] >= 0) & (uv[:, 1] < height_px)
    return uv, valid


def unproject_depth(depth_m: npt.ArrayLike, intrinsics: npt.ArrayLike) -> FloatArray:
    """Camera-frame points `(H, W, 3)` of every pixel centre of a depth map."""
    depth = np.asarray(depth_m, dtype=np.float64)
    k = _as_float_array("intrinsics", intrinsics, (3, 3))
    rows, cols = np.indices(depth.shape, dtype=np.float64)
    x = (cols - k[0, 2]) / k[0, 0] * depth
    y = (rows - k[1, 2]) / k[1, 1] * depth
    return np.stack([x, y, depth], axis=-1)


def ego_to_city(city_SE3_ego: SE3, points_ego_m: npt.ArrayLike) -> FloatArray:
    return city_SE3_ego.transform_points(points_ego_m)


def city_to_ego(city_SE3_ego: SE3, points_city_m: npt.ArrayLike) -> FloatArray:
    return city_SE3_ego.inverse().transform_points(points_city_m)


def ego_to_sensor(ego_SE3_sensor: SE3, points_ego_m: npt.ArrayLike) -> FloatArray:
    return ego_SE3_sensor.inverse().transform_points(points_ego_m)


def sensor_to_ego(ego_SE3_sensor: SE3, points_sensor_m: npt.ArrayLike) -> FloatArray:
    return ego_SE3_sensor.transform_points(points_sensor_m)
