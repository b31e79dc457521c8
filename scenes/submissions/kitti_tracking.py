"""KITTI tracking result files, and the 3D detection files that KITTI trackers start from.

Results: one file per sequence (`SEQ.txt`), one line per tracked object and frame in the label format of
`scenes.adapters.kitti_tracking` with a score (18 fields): `frame id type 0 0 alpha x1 y1 x2 y2 h w l x y z ry score`.
Boxes come in the records' ego frame (KITTI's: `scenes.ego_frame.KITTI_EGO`); the type is the category's KITTI class (`TO_KITTI`; categories without one are
left out), `alpha = ry - atan2(x, z)`, the 2D box the projection of the 3D box into image_02, and string track ids
become stable non-negative ints (`track_numbers`). KITTI scores only objects in the image: a box whose projection
misses it is left out.

2D boxes: the 8 corners go through `rect_SE3_ego` and P2. The box is first clipped by the near plane 0.1 m in front of
the camera (the KITTI devkit's threshold for drawing a box): the 2D box is the bounding box of the projected part in
front of that plane (its corners and the points where its edges cross the plane), clipped to the image
`[0, width - 1] x [0, height - 1]`. A box entirely behind the plane, or whose 2D box misses the image, is not in it.

Detections (`read_kitti_detections`, format detected from the first non-empty line):
- AB3DMOT's published PointRCNN detections: `frame,type,x1,y1,x2,y2,score,h,w,l,x,y,z,ry,alpha` with type 1
  Pedestrian, 2 Car, 3 Cyclist and the score a raw logit: the box's score is `sigmoid(score)`, in [0, 1] like every
  other detector's;
- KITTI tracking lines (17 or 18 space-separated fields, track id ignored; no score -> 1).
Both hold rectified camera-0 boxes, which are converted to ego-frame `Boxes3D` without track ids.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import numpy as np
from scipy.special import expit, logit

from scenes.adapters.base import AdapterError, require_dir, require_file
from scenes.adapters.kitti import KittiLabel, boxes_to_labels
from scenes.adapters.kitti_tracking import (
    KittiTrackingCalibration,
    LabelLine,
    TrackingRow,
    field_integer,
    field_number,
    format_tracking_row,
    labels_by_frame,
    parse_tracking_line,
    row_label,
)
from scenes.categories import TO_KITTI
from scenes.errors import DrivestackError
from scenes.geometry import wrap_angle
from scenes.io import atomic_write_text
from scenes.records import Boxes3D

__all__ = [
    "ImageBoxes",
    "KittiTrackingFormatError",
    "POINTRCNN_FIELD_NAMES",
    "pointrcnn_lines",
    "project_boxes_2d",
    "read_detection_dir",
    "read_kitti_detections",
    "read_pointrcnn_detections",
    "read_tracking_detections",
    "track_numbers",
    "tracking_lines",
    "tracking_rows",
    "write_pointrcnn_detections",
    "write_tracking_results",
]

NEAR_PLANE_M: Final = 0.1
POINTRCNN_FIELD_NAMES: Final = ("frame", "type", "x1", "y1", "x2", "y2", "score", "h", "w", "l", "x", "y", "z", "ry", "alpha")
POINTRCNN_TYPES: Final = {1: "Pedestrian", 2: "Car", 3: "Cyclist"}
# The 12 edges of a box in the corner order of `geometry.box_corners` (front face, rear face, front to rear).
_EDGES: Final = np.array([(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)])
_TRACK_NUMBER: Final = re.compile(r"0|[1-9][0-9]*")


class KittiTrackingFormatError(DrivestackError, ValueError):
    """Boxes that cannot be written as KITTI tracking results; the message names the file (or frame) and the problem."""


@dataclass(frozen=True, eq=False)
class ImageBoxes:
    """2D boxes of 3D boxes in image_02: `bbox_ltrb_px` (N, 4) clipped to the image, `in_image` (N,) whether the box
    is visible at all, `truncation` (N,) the fraction of the unclipped 2D box's area outside the image (1 when not in
    the image)."""

    bbox_ltrb_px: np.ndarray
    in_image: np.ndarray
    truncation: np.ndarray


def project_boxes_2d(boxes_ego: Boxes3D, calib: KittiTrackingCalibration, image_size_px: tuple[int, int]) -> ImageBoxes:
    """The 2D boxes in image_02 of ego-frame boxes (near-plane clipping as the module says)."""
    width, height = image_size_px
    count = len(boxes_ego)
    if count == 0:
        return ImageBoxes(np.zeros((0, 4)), np.zeros(0, dtype=bool), np.zeros(0))
    corners = calib.rect_SE3_ego.transform_points(boxes_ego.corners().reshape(-1, 3)).reshape(count, 8, 3)
    projection = calib.projection_p2
    depth = corners @ projection[2, :3] + projection[2, 3]  # (N, 8): depth in front of camera 2
    start, end = corners[:, _EDGES[:, 0]], corners[:, _EDGES[:, 1]]
    depth_start, depth_end = depth[:, _EDGES[:, 0]], depth[:, _EDGES[:, 1]]
    crosses = (depth_start - NEAR_PLANE_M) * (depth_end - NEAR_PLANE_M) < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(crosses, (NEAR_PLANE_M - depth_start) / (depth_end - depth_start), 0.0)
    crossings = start + t[..., None] * (end - start)
    points = np.concatenate([corners, crossings], axis=1)  # (N, 20, 3)
    valid = np.concatenate([depth >= NEAR_PLANE_M, crosses], axis=1)
    homogeneous = points @ projection[:, :3].T + projection[:, 3]
    w = np.where(valid, homogeneous[..., 2], 1.0)
    uv = homogeneous[..., :2] / w[..., None]
    visible = valid.any(axis=1)
    low = np.where(valid[..., None], uv, np.inf).min(axis=1)
    high = np.where(valid[..., None], uv, -np.inf).max(axis=1)
    unclipped = np.where(visible[:, None], np.concatenate([low, high], axis=1), 0.0)
    limits = np.array([width - 1, height - 1, width - 1, height - 1], dtype=np.float64)
    clipped = np.clip(unclipped, 0.0, limits)
    clipped_area = np.clip(clipped[:, 2] - clipped[:, 0], 0.0, None) * np.clip(clipped[:, 3] - clipped[:, 1], 0.0, None)
    in_image = visible & (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    area = (unclipped[:, 2] - unclipped[:, 0]) * (unclipped[:, 3] - unclipped[:, 1])
    truncation = np.where(in_image & (area > 0), 1.0 - clipped_area / np.where(area > 0, area, 1.0), 1.0)
    return ImageBoxes(clipped, in_image, np.clip(truncation, 0.0, 1.0))


def track_numbers(frames: Iterable[Boxes3D]) -> dict[str, int]:
    """Stable non-negative ints for string track ids: ids written as a non-negative int (e.g. read from a KITTI file)
    keep that value, the others take the smallest free ints in order of first appearance."""
    ids: dict[str, None] = {}
    for boxes in frames:
        if boxes.track_id is None:
            raise KittiTrackingFormatError("boxes without track ids cannot be written as tracks")
        ids.update(dict.fromkeys(str(track) for track in boxes.track_id))
    numbers = {track: int(track) for track in ids if _TRACK_NUMBER.fullmatch(track)}
    used = set(numbers.values())
    candidate = 0
    for track in ids:
        if track in numbers:
            continue
        while candidate in used:
            candidate += 1
        numbers[track] = candidate
        used.add(candidate)
    return {track: numbers[track] for track in ids}


def tracking_rows(
    frame_index: int,
    boxes_ego: Boxes3D,
    calib: KittiTrackingCalibration,
    image_size_px: tuple[int, int],
    track_number: Mapping[str, int],
    *,
    label: bool = False,
) -> list[TrackingRow]:
    """The rows of one frame's tracked ego-frame boxes that are in the image and have a KITTI class.

    Result rows (default) have truncation 0 and the box's score; `label=True` gives ground-truth rows: truncation = the
    fraction of the 2D box outside the image, no score. Occlusion is 0 (not known from boxes)."""
    if frame_index < 0:
        raise KittiTrackingFormatError(f"frame {frame_index}: frame indices must be >= 0")
    if boxes_ego.track_id is None:
        raise KittiTrackingFormatError(f"frame {frame_index}: the boxes carry no track ids")
    if boxes_ego.frame != "ego":
        raise KittiTrackingFormatError(f"frame {frame_index}: expected ego-frame boxes, got {boxes_ego.frame}-frame boxes")
    projected = project_boxes_2d(boxes_ego, calib, image_size_px)
    geometry = boxes_to_labels(boxes_ego, calib.rect_SE3_ego)
    assert boxes_ego.score is not None  # Boxes3D fills a missing score with ones
    rows = []
    for index, category in enumerate(boxes_ego.category_names.tolist()):
        kind = TO_KITTI[category]
        if kind is None or not projected.in_image[index]:
            continue
        track = str(boxes_ego.track_id[index])
        if track not in track_number:
            raise KittiTrackingFormatError(f"frame {frame_index}: track {track!r} has no track number")
        number = int(track_number[track])
        if number < 0:
            raise KittiTrackingFormatError(f"frame {frame_index}: track {track!r} has the negative track number {number}")
        size_hwl, location, rotation_y = geometry[index]
        x1, y1, x2, y2 = (float(value) for value in projected.bbox_ltrb_px[index])
        rows.append(
            TrackingRow(
                frame=frame_index,
                track_id=number,
                kind=kind,
                truncated=float(projected.truncation[index]) if label else 0.0,
                occluded=0,
                alpha_rad=float(wrap_angle(rotation_y - math.atan2(location[0], location[2]))),
                bbox_ltrb_px=(x1, y1, x2, y2),
                size_hwl_m=size_hwl,
                location_cam_m=location,
                rotation_y_rad=rotation_y,
                score=None if label else float(boxes_ego.score[index]),
            )
        )
    return rows


def tracking_lines(
    frame_index: int, boxes_ego: Boxes3D, calib: KittiTrackingCalibration, image_size_px: tuple[int, int], track_number: Mapping[str, int]
) -> list[str]:
    """KITTI tracking result lines (18 fields, no newline) of one frame's tracked ego-frame boxes."""
    return [format_tracking_row(row) for row in tracking_rows(frame_index, boxes_ego, calib, image_size_px, track_number)]


def write_tracking_results(
    path: Path, frames: Sequence[tuple[int, Boxes3D]], calib: KittiTrackingCalibration, image_size_px: tuple[int, int]
) -> Path:
    """Writes one sequence's result file `path` (`SEQ.txt`) atomically, frames in index order, track numbers from
    `track_numbers` over the frames in that order; returns `path`."""
    path = Path(path)
    indices = [index for index, _ in frames]
    repeated = sorted({index for index in indices if indices.count(index) > 1})
    if repeated:
        raise KittiTrackingFormatError(f"{path}: frame(s) {repeated} given more than once")
    ordered = sorted(frames, key=lambda item: item[0])
    try:
        numbers = track_numbers(boxes for _, boxes in ordered)
        lines = [line for index, boxes in ordered for line in tracking_lines(index, boxes, calib, image_size_px, numbers)]
    except KittiTrackingFormatError as error:
        raise KittiTrackingFormatError(f"{path}: {error}") from None
    atomic_write_text(path, "".join(f"{line}\n" for line in lines))
    return path


def _pointrcnn_line(path: Path, line_number: int, line: str) -> LabelLine:
    tokens = [token.strip() for token in line.split(",")]
    if len(tokens) != len(POINTRCNN_FIELD_NAMES):
        raise AdapterError(path, f"line {line_number}: expected {len(POINTRCNN_FIELD_NAMES)} comma-separated fields, got {len(tokens)}")
    frame = field_integer(path, line_number, "frame", tokens[0])
    if frame < 0:
        raise AdapterError(path, f"line {line_number}: field 'frame' is negative: {frame}")
    kind = field_integer(path, line_number, "type", tokens[1])
    if kind not in POINTRCNN_TYPES:
        expected = ", ".join(f"{number} ({name})" for number, name in POINTRCNN_TYPES.items())
        raise AdapterError(path, f"line {line_number}: field 'type' must be one of {expected}, got {kind}")
    v = [field_number(path, line_number, name, token) for name, token in zip(POINTRCNN_FIELD_NAMES[2:], tokens[2:], strict=True)]
    label = KittiLabel(
        kind=POINTRCNN_TYPES[kind],
        truncated=0.0,
        occluded=0,
        alpha_rad=v[12],
        bbox_ltrb_px=(v[0], v[1], v[2], v[3]),
        size_hwl_m=(v[5], v[6], v[7]),
        location_cam_m=(v[8], v[9], v[10]),
        rotation_y_rad=v[11],
        score=float(expit(v[4])),
    )
    return LabelLine(line_number, frame, label)


def pointrcnn_lines(frame_index: int, boxes_ego: Boxes3D, calib: KittiTrackingCalibration, image_size_px: tuple[int, int]) -> list[str]:
    """One frame's ego-frame detections as AB3DMOT's PointRCNN lines (no newline): Pedestrian, Car and Cyclist
    boxes in the image, the score written as its logit."""
    codes = {name: code for code, name in POINTRCNN_TYPES.items()}
    anonymous = replace(boxes_ego, track_id=np.array([str(k) for k in range(len(boxes_ego))]))
    rows = tracking_rows(frame_index, anonymous, calib, image_size_px, {str(k): k for k in range(len(boxes_ego))})
    lines = []
    for row in rows:
        if row.kind not in codes:
            continue
        probability = min(max(float(row.score if row.score is not None else 1.0), 1e-6), 1.0 - 1e-6)
        values = (*row.bbox_ltrb_px, float(logit(probability)), *row.size_hwl_m, *row.location_cam_m, row.rotation_y_rad, row.alpha_rad)
        lines.append(f"{row.frame},{codes[row.kind]}," + ",".join(f"{value:.6f}" for value in values))
    return lines


def write_pointrcnn_detections(path: Path, frames: Sequence[tuple[int, Boxes3D]], calib: KittiTrackingCalibration, image_size_px: tuple[int, int]) -> Path:
    """Writes one sequence's detections in AB3DMOT's PointRCNN format atomically (`read_pointrcnn_detections` reads it)."""
    lines = [line for index, boxes in sorted(frames, key=lambda item: item[0]) for line in pointrcnn_lines(index, boxes, calib, image_size_px)]
    atomic_write_text(Path(path), "".join(f"{line}\n" for line in lines))
    return Path(path)


def _numbered_lines(path: Path) -> list[tuple[int, str]]:
    require_file(path, "detection file")
    return [(number, line) for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1) if line.strip()]


def read_pointrcnn_detections(path: Path, calib: KittiTrackingCalibration) -> dict[int, Boxes3D]:
    """AB3DMOT's PointRCNN detection file of one sequence -> ego-frame boxes per frame (score = sigmoid(logit))."""
    lines = [_pointrcnn_line(path, number, line) for number, line in _numbered_lines(path)]
    return labels_by_frame(path, lines, calib.rect_SE3_ego, with_tracks=False)


def read_tracking_detections(path: Path, calib: KittiTrackingCalibration) -> dict[int, Boxes3D]:
    """Detections as KITTI tracking lines (track id ignored, no score -> 1) -> ego-frame boxes per frame."""
    lines = []
    for number, line in _numbered_lines(path):
        row = parse_tracking_line(path, number, line)
        lines.append(LabelLine(number, row.frame, row_label(row, default_score=1.0)))
    return labels_by_frame(path, lines, calib.rect_SE3_ego, with_tracks=False)


def read_kitti_detections(path: Path, calib: KittiTrackingCalibration) -> dict[int, Boxes3D]:
    """One sequence's detections, PointRCNN (comma-separated) or KITTI tracking lines by the first non-empty line; every
    frame that has a line gets an entry (empty when all its classes are dropped)."""
    lines = _numbered_lines(path)
    if lines and "," in lines[0][1]:
        return read_pointrcnn_detections(path, calib)
    return read_tracking_detections(path, calib)


def read_detection_dir(directory: Path, sequences: Iterable[str], calibs: Mapping[str, KittiTrackingCalibration]) -> dict[str, dict[int, Boxes3D]]:
    """`DIR/SEQ.txt` of every sequence -> {sequence: {frame: boxes}}; a missing file raises `AdapterError` naming it."""
    directory = require_dir(Path(directory), "detection directory")
    detections = {}
    for sequence in sequences:
        path = directory / f"{sequence}.txt"
        if not path.is_file():
            raise AdapterError(path, f"detection file of sequence {sequence} not found")
        if sequence not in calibs:
            raise AdapterError(path, f"no calibration given for sequence {sequence}")
        detections[sequence] = read_kitti_detections(path, calibs[sequence])
    return detections
