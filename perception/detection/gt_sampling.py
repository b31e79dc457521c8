"""Ground-truth sampling (SECOND's database sampling, CenterPoint's `ObjectSample`): annotated objects cut from training
samples and pasted into other samples.

A detector trained on the synthetic city learns where the city puts each class as much as what it looks like: trained
without this augmentation, a synthetic pedestrian's points pasted on a grid around the sensor scored >= 0.3 on 12 % of
the cells of a held-out synthetic sweep and 6 % of the real AV2 sweep of `shared/data` (mostly on sidewalks, rarely on
the road); trained with it (`configs/detection/centerpoint_synth_coarse_pillars.yaml`), on 64 % and 57 %, and
synthetic pedestrian AP went from 0.64 to 0.82 (docs/detection_on_real_sensors.md).

The bank holds each object's points (all channels of the multi-sweep input, the floor under it left out) and its box,
in the sample's input frame (ground-relative heights when the model reads them). A pasted object is turned about the
ego origin by a random angle, so that the LiDAR sees it nearly as in its own sweep (same beams, same side facing the
sensor). The records do not say where the sensor stands, and it is not at the ego origin (1.35 m ahead of it on the
synthetic and AV2 rigs): a turned object's range to the sensor changes by -2 % to +9 % for pedestrians and -9 % to +7 %
for cars (5th-95th percentiles over the banks of two training logs), by more than 1 m for half of them. It lands only
where it overlaps no box, the sample has no returns in its footprint and none between it and the ego origin (both
counted from `FREE_SPACE_FLOOR_M` above its bottom up to its top: the city's interiors are empty only because facades
hide them); the sample's own returns inside the pasted box are removed.

Placement beside structure (`near_structure_share`): the city's pedestrians keep to the middle of the sidewalk, 2 m or
more from any facade, while real ones stand next to walls, parked cars and trees (on the real AV2 sweep of
`shared/data` the five pedestrians stand 0.4-1 m from a facade or under a tree, and a synthetic pedestrian pasted
there scores far lower than 3 m from the facade). A share of the pasted objects therefore tries `NEAR_ATTEMPTS`
angles and takes, among those that fit, the one with the most returns of the sample within `NEAR_M` of its footprint
(beside or behind it: returns between it and the sensor already rule a place out).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

import numba
import numpy as np

from perception.detection.box_ops import bev_iou, points_in_boxes
from scenes.categories import CATEGORY_ID
from scenes.geometry import box_corners, wrap_angle
from scenes.records import Boxes3D

__all__ = ["ObjectBank"]

# Objects with fewer points (inside the box, floor excluded) are not banked: too little shape to learn from.
MIN_POINTS: Final = 5
# Points less than this above a box's bottom are floor, neither banked nor removed when pasting.
FLOOR_M: Final = 0.1
# A paste needs free space: at most `FREE_SPACE_MAX_POINTS` returns of the sample in the box's footprint (grown by
# `FREE_SPACE_MARGIN_M` on each side) from `FREE_SPACE_FLOOR_M` above its bottom up to its top.
FREE_SPACE_MARGIN_M: Final = 0.2
FREE_SPACE_FLOOR_M: Final = 0.3
FREE_SPACE_MAX_POINTS: Final = 2
# Pasted boxes keep this BEV gap (m) to every other box.
BOX_MARGIN_M: Final = 0.3
# Angles tried for each object to paste before giving up on it.
ATTEMPTS: Final = 4
# Placement beside structure: angles tried, and how far from a box's footprint (m) the sample's returns count as its
# surroundings (at the box's heights, as for free space).
NEAR_ATTEMPTS: Final = 32
NEAR_M: Final = 1.0


@dataclass(frozen=True)
class BankedObject:
    """One annotated object: its points `(N, C)` (input channels, x y z first) and its box (a one-row `Boxes3D`)."""

    points: np.ndarray
    box: Boxes3D


def _turned(obj: BankedObject, angle_rad: float) -> BankedObject:
    """The object turned by `angle_rad` about the ego origin's vertical axis."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    rotation = np.array([[c, -s], [s, c]])
    points = obj.points.copy()
    points[:, :2] = (obj.points[:, :2].astype(np.float64) @ rotation.T).astype(points.dtype)
    box = obj.box
    center = box.center_m.copy()
    center[:, :2] = box.center_m[:, :2] @ rotation.T
    velocity = None if box.velocity_m_per_s is None else box.velocity_m_per_s @ rotation.T
    return BankedObject(points, replace(box, center_m=center, yaw_rad=wrap_angle(box.yaw_rad + angle_rad), velocity_m_per_s=velocity))


def _bare(boxes: Boxes3D) -> Boxes3D:
    """Boxes without the fields pasted boxes lack (tracks, point counts, scores)."""
    return replace(boxes, score=None, track_id=None, num_interior_pts=None)


class ObjectBank:
    """Objects per class name, and the pasting of random ones into a sample."""

    def __init__(self, objects: Mapping[str, Sequence[BankedObject]]) -> None:
        self.objects = {name: list(found) for name, found in objects.items()}

    def __len__(self) -> int:
        return sum(len(found) for found in self.objects.values())

    @classmethod
    def collect(
        cls,
        count: int,
        load: Callable[[int], tuple[np.ndarray, Boxes3D]],
        class_names: Sequence[str],
        *,
        max_per_class: int,
        rng: np.random.Generator,
    ) -> ObjectBank:
        """Objects of `class_names` from samples `load(i)` (points and boxes in the input frame), `i` visited in a random
        order until each class holds `max_per_class` objects or the `count` samples are spent."""
        wanted = {CATEGORY_ID[name]: name for name in class_names}
        objects: dict[str, list[BankedObject]] = {name: [] for name in class_names}
        for index in rng.permutation(count):
            if all(len(found) >= max_per_class for found in objects.values()):
                break
            points, boxes = load(int(index))
            chosen = np.flatnonzero(np.isin(boxes.category, list(wanted)))
            if not len(chosen):
                continue
            boxes = _bare(boxes.select(chosen))
            inside = points_in_boxes(points[:, :3], boxes.center_m, boxes.size_lwh_m, boxes.yaw_rad)
            bottom = boxes.center_m[:, 2] - boxes.size_lwh_m[:, 2] / 2
            for row in range(len(boxes)):
                name = wanted[int(boxes.category[row])]
                mask = (inside == row) & (points[:, 2] >= bottom[row] + FLOOR_M)
                if mask.sum() >= MIN_POINTS and len(objects[name]) < max_per_class:
                    objects[name].append(BankedObject(points[mask].copy(), boxes.select([row])))
        return cls(objects)

    def paste(
        self, points: np.ndarray, boxes: Boxes3D, counts: Mapping[str, int], rng: np.random.Generator, near_structure_share: float = 0.0
    ) -> tuple[np.ndarray, Boxes3D]:
        """The sample's points `(N, C)` and boxes with up to `counts[name]` banked objects of each class pasted into
        free space (`ObjectBank` docstring); the objects that find no place after `ATTEMPTS` angles are left out. A
        share `near_structure_share` of them is placed beside structure instead (module docstring)."""
        placed: list[BankedObject] = []
        occupied = _bare(boxes)
        blockers = _AzimuthIndex(points)
        for name, count in counts.items():
            bank = self.objects.get(name, [])
            if not bank or count <= 0:
                continue
            for pick in rng.integers(0, len(bank), size=count):
                if near_structure_share > 0 and rng.random() < near_structure_share:
                    candidates = [_turned(bank[int(pick)], float(angle)) for angle in rng.uniform(0.0, 2.0 * np.pi, NEAR_ATTEMPTS)]
                    surroundings = [_surroundings(candidate.box, occupied, blockers) for candidate in candidates]
                    best = int(np.argmax(surroundings))
                    chosen = candidates[best] if surroundings[best] >= 0 else None
                else:
                    turned = (_turned(bank[int(pick)], float(angle)) for angle in rng.uniform(0.0, 2.0 * np.pi, ATTEMPTS))
                    chosen = next((candidate for candidate in turned if _fits(candidate.box, occupied, blockers)), None)
                if chosen is not None:
                    placed.append(chosen)
                    occupied = Boxes3D.concatenate([occupied, chosen.box])
        if not placed:
            return points, boxes
        pasted = occupied.select(slice(len(boxes), None))
        inside = points_in_boxes(points[:, :3], pasted.center_m, pasted.size_lwh_m, pasted.yaw_rad)
        bottom = pasted.center_m[:, 2] - pasted.size_lwh_m[:, 2] / 2
        floor = (inside >= 0) & (points[:, 2] < bottom[np.maximum(inside, 0)] + FLOOR_M)
        kept = points[(inside < 0) | floor]
        return np.concatenate([kept, *(obj.points for obj in placed)]), occupied


AZIMUTH_BINS: Final = 720


class _AzimuthIndex:
    """A sample's returns `(N, 3)` sorted by azimuth bin about the ego origin (`AZIMUTH_BINS` bins), so that a paste
    only visits the returns of its own azimuth span."""

    def __init__(self, points: np.ndarray) -> None:
        azimuth = np.arctan2(points[:, 1], points[:, 0])
        bins = np.minimum(((azimuth + np.pi) * (AZIMUTH_BINS / (2.0 * np.pi))).astype(np.int64), AZIMUTH_BINS - 1)
        order = np.argsort(bins, kind="stable")
        self.points = np.ascontiguousarray(points[order, :3])
        self.starts = np.searchsorted(bins[order], np.arange(AZIMUTH_BINS + 1))


def _fits(box: Boxes3D, occupied: Boxes3D, index: _AzimuthIndex) -> bool:
    """Whether `box` keeps `BOX_MARGIN_M` from every occupied box, stands in free space of the sample's returns and is
    not hidden from the sensor by them (`_blocking_counts`)."""
    return _surroundings(box, occupied, index, near_m=0.0) >= 0


def _surroundings(box: Boxes3D, occupied: Boxes3D, index: _AzimuthIndex, near_m: float = NEAR_M) -> int:
    """-1 where `box` does not fit (`_fits`); else how many of the sample's returns lie within `near_m` of its
    footprint, outside the free-space margin (`_blocking_counts`)."""
    if len(occupied):
        grown = box.size_lwh_m + np.array([2 * BOX_MARGIN_M, 2 * BOX_MARGIN_M, 0.0])
        if bev_iou(box.center_m[:, :2], grown[:, :2], box.yaw_rad, occupied.center_m[:, :2], occupied.size_lwh_m[:, :2], occupied.yaw_rad).max() > 0:
            return -1
    heading = float(np.arctan2(box.center_m[0, 1], box.center_m[0, 0]))
    corners = box.corners()[0, :, :2]
    spread = wrap_angle(np.arctan2(corners[:, 1], corners[:, 0]) - heading)
    grown_corners = box_corners(box.center_m, box.size_lwh_m + 2 * max(FREE_SPACE_MARGIN_M, near_m), box.yaw_rad)[0, :, :2]
    reach = wrap_angle(np.arctan2(grown_corners[:, 1], grown_corners[:, 0]) - heading)
    to_bin = AZIMUTH_BINS / (2.0 * np.pi)
    first, last = int(np.floor((heading + reach.min() + np.pi) * to_bin)), int(np.floor((heading + reach.max() + np.pi) * to_bin))
    if last - first >= AZIMUTH_BINS // 2:  # a box beside the sensor: every bin
        first, last = 0, AZIMUTH_BINS - 1
    packed = np.concatenate([box.center_m[0], box.size_lwh_m[0], box.yaw_rad])
    nearest = float(np.hypot(corners[:, 0], corners[:, 1]).min())
    inside, between, near = _blocking_counts(
        index.points, index.starts, first, last, packed, heading, float(spread.min()), float(spread.max()), nearest, near_m
    )
    return near if inside <= FREE_SPACE_MAX_POINTS and between <= FREE_SPACE_MAX_POINTS else -1


@numba.njit(cache=True, nogil=True)
def _blocking_counts(
    points: np.ndarray,
    starts: np.ndarray,
    first: int,
    last: int,
    box: np.ndarray,
    heading: float,
    low: float,
    high: float,
    nearest: float,
    near_m: float,
) -> tuple[int, int, int]:
    """Returns of azimuth bins `first..last` (modulo the bin count; `points` sorted by bin, bin `b` at
    `starts[b]:starts[b+1]`) at the heights of `box` (x y z l w h yaw), from `FREE_SPACE_FLOOR_M` above its bottom to
    its top: how many lie in its footprint grown by `FREE_SPACE_MARGIN_M`, how many stand between the ego origin and
    it, nearer than its `nearest` corner with an azimuth, relative to `heading`, in [`low`, `high`],
    and how many of the others lie in its footprint grown by `near_m`."""
    cos_yaw, sin_yaw = np.cos(box[6]), np.sin(box[6])
    half_l, half_w = box[3] / 2 + FREE_SPACE_MARGIN_M, box[4] / 2 + FREE_SPACE_MARGIN_M
    near_l, near_w = box[3] / 2 + near_m, box[4] / 2 + near_m
    bottom, top = box[2] - box[5] / 2 + FREE_SPACE_FLOOR_M, box[2] + box[5] / 2
    bins = starts.shape[0] - 1
    inside = 0
    between = 0
    near = 0
    for step in range(last - first + 1):
        b = (first + step) % bins
        for i in range(starts[b], starts[b + 1]):
            z = points[i, 2]
            if z < bottom or z > top:
                continue
            dx, dy = points[i, 0] - box[0], points[i, 1] - box[1]
            along, across = abs(dx * cos_yaw + dy * sin_yaw), abs(-dx * sin_yaw + dy * cos_yaw)
            if along <= half_l and across <= half_w:
                inside += 1
                continue
            if points[i, 0] * points[i, 0] + points[i, 1] * points[i, 1] < nearest * nearest:
                offset = np.arctan2(points[i, 1], points[i, 0]) - heading
                offset = (offset + np.pi) % (2 * np.pi) - np.pi
                if low <= offset <= high:
                    between += 1
                    continue
            if along <= near_l and across <= near_w:
                near += 1
    return inside, between, near
