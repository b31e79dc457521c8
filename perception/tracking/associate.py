"""Track-detection association: cost matrices (centre distance or 1 - BEV IoU) and greedy / Hungarian matching.

Pairs of different classes, or beyond the gate, are forbidden (cost `inf`) and never matched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np
from scipy.optimize import linear_sum_assignment

from perception.detection.box_ops import bev_iou

Metric = Literal["center", "iou"]
Matcher = Literal["greedy", "hungarian"]
FORBIDDEN = np.inf


def center_distance_cost(
    track_xy: np.ndarray, track_category: np.ndarray, det_xy: np.ndarray, det_category: np.ndarray, gate_m: np.ndarray
) -> np.ndarray:
    """`(T, D)` xy distance, `inf` across classes or beyond the per-detection gate `gate_m (D,)`."""
    cost = np.linalg.norm(track_xy[:, None, :] - det_xy[None, :, :], axis=2)
    cost[(track_category[:, None] != det_category[None, :]) | (cost > gate_m[None, :])] = FORBIDDEN
    return cost


def iou_cost(
    track_center: np.ndarray,
    track_size: np.ndarray,
    track_yaw: np.ndarray,
    track_category: np.ndarray,
    det_center: np.ndarray,
    det_size: np.ndarray,
    det_yaw: np.ndarray,
    det_category: np.ndarray,
    min_iou: float,
) -> np.ndarray:
    """`(T, D)` 1 - rotated BEV IoU, `inf` across classes or below `min_iou`."""
    iou = bev_iou(track_center[:, :2], track_size[:, :2], track_yaw, det_center[:, :2], det_size[:, :2], det_yaw)
    cost = 1.0 - iou
    cost[(track_category[:, None] != det_category[None, :]) | (iou < min_iou)] = FORBIDDEN
    return cost


@dataclass(frozen=True)
class Assignment:
    """Matched (track, detection) index pairs and the unmatched indices of each side."""

    matches: np.ndarray  # (M, 2) int64
    unmatched_tracks: np.ndarray
    unmatched_detections: np.ndarray


def _assignment(matches: list[tuple[int, int]], num_tracks: int, num_detections: int) -> Assignment:
    pairs = np.array(sorted(matches), dtype=np.int64).reshape(-1, 2)
    return Assignment(
        pairs,
        np.setdiff1d(np.arange(num_tracks), pairs[:, 0]),
        np.setdiff1d(np.arange(num_detections), pairs[:, 1]),
    )


@numba.njit(cache=True, nogil=True)
def _greedy_by_detection(cost: np.ndarray, order: np.ndarray) -> np.ndarray:
    num_tracks = cost.shape[0]
    taken = np.zeros(num_tracks, dtype=np.bool_)
    pairs = np.empty((min(num_tracks, order.shape[0]), 2), dtype=np.int64)
    count = 0
    for d in order:
        best, best_cost = -1, np.inf
        for t in range(num_tracks):
            if not taken[t] and cost[t, d] < best_cost:
                best, best_cost = t, cost[t, d]
        if best >= 0:
            taken[best] = True
            pairs[count, 0] = best
            pairs[count, 1] = d
            count += 1
    return pairs[:count].copy()


@numba.njit(cache=True, nogil=True)
def _greedy_by_cost(cost: np.ndarray) -> np.ndarray:
    num_tracks, num_detections = cost.shape
    flat = cost.ravel()
    order = np.argsort(flat, kind="mergesort")
    used_tracks = np.zeros(num_tracks, dtype=np.bool_)
    used_detections = np.zeros(num_detections, dtype=np.bool_)
    pairs = np.empty((min(num_tracks, num_detections), 2), dtype=np.int64)
    count = 0
    for index in order:
        if not np.isfinite(flat[index]):
            break
        t, d = index // num_detections, index % num_detections
        if used_tracks[t] or used_detections[d]:
            continue
        used_tracks[t] = True
        used_detections[d] = True
        pairs[count, 0] = t
        pairs[count, 1] = d
        count += 1
    return pairs[:count].copy()


def greedy_match(cost: np.ndarray, detection_order: np.ndarray | None = None) -> Assignment:
    """Greedy matching. With `detection_order` (e.g. by decreasing score, CenterPoint), each detection in turn takes
    its cheapest free track; without it, pairs are taken by increasing cost (AB3DMOT's greedy)."""
    num_tracks, num_detections = cost.shape
    matrix = np.ascontiguousarray(cost, dtype=np.float64)
    if num_tracks == 0 or num_detections == 0:
        return _assignment([], num_tracks, num_detections)
    if detection_order is not None:
        pairs = _greedy_by_detection(matrix, np.ascontiguousarray(detection_order, dtype=np.int64))
    else:
        pairs = _greedy_by_cost(matrix)
    return _assignment([(int(t), int(d)) for t, d in pairs], num_tracks, num_detections)


def hungarian_match(cost: np.ndarray) -> Assignment:
    """Minimum-total-cost matching (scipy `linear_sum_assignment`) among allowed pairs."""
    num_tracks, num_detections = cost.shape
    if num_tracks == 0 or num_detections == 0:
        return _assignment([], num_tracks, num_detections)
    finite = np.isfinite(cost)
    big = (cost[finite].max() + 1.0) * max(num_tracks, num_detections) + 1.0 if finite.any() else 1.0
    rows, cols = linear_sum_assignment(np.where(finite, cost, big))
    matches = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if finite[r, c]]
    return _assignment(matches, num_tracks, num_detections)


def match(cost: np.ndarray, matcher: Matcher, detection_order: np.ndarray | None = None) -> Assignment:
    if matcher == "greedy":
        return greedy_match(cost, detection_order)
    if matcher == "hungarian":
        return hungarian_match(cost)
    raise ValueError(f"unknown matcher {matcher!r} (expected 'greedy' or 'hungarian')")
