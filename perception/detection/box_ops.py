"""Box kernels (numba): points in yawed 3D boxes, rotated bird's-eye-view IoU and rotated-box NMS.

Boxes are `(center_xyz, size_lwh, yaw)`; yaw is counter-clockwise about +z from +x, as in `scenes.geometry`.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt


@numba.njit(cache=True, nogil=True, inline="always")
def _inside(points: np.ndarray, i: int, boxes: np.ndarray, j: int, cos_yaw: np.ndarray, sin_yaw: np.ndarray, radius2: np.ndarray) -> bool:
    """Whether point `i` lies in box `j` (boundary included); `cos_yaw`, `sin_yaw`, `radius2` (squared half BEV
    diagonal) precomputed per box."""
    dx = points[i, 0] - boxes[j, 0]
    dy = points[i, 1] - boxes[j, 1]
    if dx * dx + dy * dy > radius2[j] or abs(points[i, 2] - boxes[j, 2]) > 0.5 * boxes[j, 5]:
        return False
    local_x = cos_yaw[j] * dx + sin_yaw[j] * dy
    local_y = -sin_yaw[j] * dx + cos_yaw[j] * dy
    return abs(local_x) <= 0.5 * boxes[j, 3] and abs(local_y) <= 0.5 * boxes[j, 4]


@numba.njit(cache=True, nogil=True)
def _points_in_boxes_kernel(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """`(N,)` index of the first box containing each point (boundary included), -1 for none."""
    n = points.shape[0]
    m = boxes.shape[0]
    result = np.full(n, -1, dtype=np.int64)
    cos_yaw = np.cos(boxes[:, 6])
    sin_yaw = np.sin(boxes[:, 6])
    radius2 = 0.25 * (boxes[:, 3] ** 2 + boxes[:, 4] ** 2)
    for i in range(n):
        for j in range(m):
            if _inside(points, i, boxes, j, cos_yaw, sin_yaw, radius2):
                result[i] = j
                break
    return result


def _packed_boxes(center: npt.ArrayLike, size: npt.ArrayLike, yaw_rad: npt.ArrayLike, dims: int) -> np.ndarray:
    """Boxes as one contiguous `(N, 2 * dims + 1)` array `[center, size, yaw]` for the kernels (dims 3: 3D, 2: BEV)."""
    center_array = np.asarray(center, dtype=np.float64).reshape(-1, dims)
    size_array = np.asarray(size, dtype=np.float64).reshape(-1, dims)
    yaw = np.asarray(yaw_rad, dtype=np.float64).reshape(-1)
    if not (len(center_array) == len(size_array) == len(yaw)):
        raise ValueError(f"boxes: {len(center_array)} centres, {len(size_array)} sizes and {len(yaw)} yaws disagree")
    return np.ascontiguousarray(np.concatenate([center_array, size_array, yaw[:, None]], axis=1))


def points_in_boxes(
    points_xyz_m: npt.ArrayLike, center_m: npt.ArrayLike, size_lwh_m: npt.ArrayLike, yaw_rad: npt.ArrayLike
) -> np.ndarray:
    """Index of the (first) box containing each point, -1 for none (mmcv `points_in_boxes_part` semantics)."""
    points = np.ascontiguousarray(np.asarray(points_xyz_m, dtype=np.float64).reshape(-1, 3))
    return _points_in_boxes_kernel(points, _packed_boxes(center_m, size_lwh_m, yaw_rad, 3))


@numba.njit(cache=True, nogil=True)
def _points_in_each_box_kernel(points: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR lists of the points inside each box (boundary included, a point in several boxes listed in each):
    `(M + 1,)` offsets and the point indices, box after box."""
    n = points.shape[0]
    m = boxes.shape[0]
    cos_yaw = np.cos(boxes[:, 6])
    sin_yaw = np.sin(boxes[:, 6])
    radius2 = 0.25 * (boxes[:, 3] ** 2 + boxes[:, 4] ** 2)
    counts = np.zeros(m + 1, dtype=np.int64)
    for i in range(n):
        for j in range(m):
            if _inside(points, i, boxes, j, cos_yaw, sin_yaw, radius2):
                counts[j + 1] += 1
    offsets = np.cumsum(counts)
    hits = np.empty(offsets[-1], dtype=np.int64)
    cursor = offsets[:-1].copy()
    for i in range(n):
        for j in range(m):
            if _inside(points, i, boxes, j, cos_yaw, sin_yaw, radius2):
                hits[cursor[j]] = i
                cursor[j] += 1
    return offsets, hits


def points_in_each_box(
    points_xyz_m: npt.ArrayLike, center_m: npt.ArrayLike, size_lwh_m: npt.ArrayLike, yaw_rad: npt.ArrayLike
) -> list[np.ndarray]:
    """Indices of the points inside each box, one array per box (a point inside overlapping boxes is in each)."""
    points = np.ascontiguousarray(np.asarray(points_xyz_m, dtype=np.float64).reshape(-1, 3))
    offsets, hits = _points_in_each_box_kernel(points, _packed_boxes(center_m, size_lwh_m, yaw_rad, 3))
    return [hits[offsets[j] : offsets[j + 1]] for j in range(len(offsets) - 1)]


def count_points_in_boxes(
    points_xyz_m: npt.ArrayLike, center_m: npt.ArrayLike, size_lwh_m: npt.ArrayLike, yaw_rad: npt.ArrayLike
) -> np.ndarray:
    """Number of points inside each box (points in overlapping boxes count for the first one)."""
    index = points_in_boxes(points_xyz_m, center_m, size_lwh_m, yaw_rad)
    return np.bincount(index[index >= 0], minlength=len(np.asarray(yaw_rad).reshape(-1))).astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _corners_bev(box: np.ndarray) -> np.ndarray:
    """Counter-clockwise BEV corners (4, 2) of a (x, y, l, w, yaw) box."""
    c = np.cos(box[4])
    s = np.sin(box[4])
    hl = 0.5 * box[2]
    hw = 0.5 * box[3]
    signs = ((1.0, 1.0), (-1.0, 1.0), (-1.0, -1.0), (1.0, -1.0))
    corners = np.empty((4, 2))
    for k in range(4):
        lx = signs[k][0] * hl
        ly = signs[k][1] * hw
        corners[k, 0] = box[0] + c * lx - s * ly
        corners[k, 1] = box[1] + s * lx + c * ly
    return corners


@numba.njit(cache=True, nogil=True)
def _polygon_area(polygon: np.ndarray, count: int) -> float:
    area = 0.0
    for k in range(count):
        j = (k + 1) % count
        area += polygon[k, 0] * polygon[j, 1] - polygon[j, 0] * polygon[k, 1]
    return 0.5 * abs(area)


@numba.njit(cache=True, nogil=True)
def _intersection_area(subject: np.ndarray, clip: np.ndarray) -> float:
    """Area of the intersection of two convex counter-clockwise quadrilaterals (Sutherland-Hodgman clipping)."""
    current = np.empty((16, 2))
    following = np.empty((16, 2))
    count = 4
    for k in range(4):
        current[k] = subject[k]
    for e in range(4):
        ax, ay = clip[e, 0], clip[e, 1]
        bx, by = clip[(e + 1) % 4, 0], clip[(e + 1) % 4, 1]
        new_count = 0
        for k in range(count):
            px, py = current[k, 0], current[k, 1]
            qx, qy = current[(k + 1) % count, 0], current[(k + 1) % count, 1]
            side_p = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
            side_q = (bx - ax) * (qy - ay) - (by - ay) * (qx - ax)
            if side_p >= 0:
                following[new_count, 0] = px
                following[new_count, 1] = py
                new_count += 1
            if (side_p >= 0) != (side_q >= 0):
                t = side_p / (side_p - side_q)
                following[new_count, 0] = px + t * (qx - px)
                following[new_count, 1] = py + t * (qy - py)
                new_count += 1
        count = new_count
        if count < 3:
            return 0.0
        for k in range(count):
            current[k] = following[k]
    return _polygon_area(current, count)


@numba.njit(cache=True, nogil=True)
def _bev_iou_kernel(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    n = boxes_a.shape[0]
    m = boxes_b.shape[0]
    result = np.zeros((n, m))
    for i in range(n):
        corners_a = _corners_bev(boxes_a[i])
        area_a = boxes_a[i, 2] * boxes_a[i, 3]
        radius_a = 0.5 * np.sqrt(boxes_a[i, 2] ** 2 + boxes_a[i, 3] ** 2)
        for j in range(m):
            radius_b = 0.5 * np.sqrt(boxes_b[j, 2] ** 2 + boxes_b[j, 3] ** 2)
            dx = boxes_a[i, 0] - boxes_b[j, 0]
            dy = boxes_a[i, 1] - boxes_b[j, 1]
            if dx * dx + dy * dy > (radius_a + radius_b) ** 2:
                continue
            inter = _intersection_area(corners_a, _corners_bev(boxes_b[j]))
            union = area_a + boxes_b[j, 2] * boxes_b[j, 3] - inter
            if union > 0:
                result[i, j] = inter / union
    return result


def bev_iou(
    center_a: npt.ArrayLike,
    size_a: npt.ArrayLike,
    yaw_a: npt.ArrayLike,
    center_b: npt.ArrayLike,
    size_b: npt.ArrayLike,
    yaw_b: npt.ArrayLike,
) -> np.ndarray:
    """`(N, M)` rotated bird's-eye-view IoU between boxes a (x,y / l,w / yaw) and boxes b."""
    return _bev_iou_kernel(_packed_boxes(center_a, size_a, yaw_a, 2), _packed_boxes(center_b, size_b, yaw_b, 2))


@numba.njit(cache=True, nogil=True)
def _nms_kernel(boxes: np.ndarray, order: np.ndarray, threshold: float) -> np.ndarray:
    n = order.shape[0]
    suppressed = np.zeros(n, dtype=np.bool_)
    keep = np.empty(n, dtype=np.int64)
    kept = 0
    for a in range(n):
        i = order[a]
        if suppressed[a]:
            continue
        keep[kept] = i
        kept += 1
        corners_i = _corners_bev(boxes[i])
        area_i = boxes[i, 2] * boxes[i, 3]
        radius_i = 0.5 * np.sqrt(boxes[i, 2] ** 2 + boxes[i, 3] ** 2)
        for b in range(a + 1, n):
            if suppressed[b]:
                continue
            j = order[b]
            radius_j = 0.5 * np.sqrt(boxes[j, 2] ** 2 + boxes[j, 3] ** 2)
            dx = boxes[i, 0] - boxes[j, 0]
            dy = boxes[i, 1] - boxes[j, 1]
            if dx * dx + dy * dy > (radius_i + radius_j) ** 2:
                continue
            inter = _intersection_area(corners_i, _corners_bev(boxes[j]))
            union = area_i + boxes[j, 2] * boxes[j, 3] - inter
            if union > 0 and inter / union > threshold:
                suppressed[b] = True
    return keep[:kept].copy()


def rotated_nms(
    center_xy_m: npt.ArrayLike, size_lw_m: npt.ArrayLike, yaw_rad: npt.ArrayLike, score: npt.ArrayLike, iou_threshold: float
) -> np.ndarray:
    """Indices of the boxes kept by greedy rotated-BEV NMS, by decreasing score (ties: lower index first)."""
    boxes = _packed_boxes(center_xy_m, size_lw_m, yaw_rad, 2)
    scores = np.asarray(score, dtype=np.float64).reshape(-1)
    if len(scores) != len(boxes):
        raise ValueError(f"rotated_nms: {len(boxes)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    return _nms_kernel(boxes, order, float(iou_threshold))
