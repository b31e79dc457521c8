"""The KITTI tracking benchmark (`kitti-tracking:PATH`): label, result and detection lines of a sequence file, the
sequence calibration, and the dataset adapter.

Layout: `PATH/{training,testing}/` (or PATH is one of them) holding, per sequence SEQ ("0000", ...), `calib/SEQ.txt`,
`label_02/SEQ.txt` (training only) and optionally `oxts/SEQ.txt` (one OXTS packet per line), `velodyne/SEQ/NNNNNN.bin`
and `image_02/SEQ/NNNNNN.png`. Each sequence is a log.

A line of `label_02/SEQ.txt` (and of a tracking result file) is
`frame track_id type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry [score]`: 17 fields, 18 with a score, in the
rectified camera-0 frame with the box origin at the bottom face (as KITTI object labels); `track_id` is -1 for
DontCare regions. Types are matched case-insensitively; `Person` (the tracking labels' sitting person) counts as
`Person_sitting`, and DontCare, Misc and Tram are dropped.

Frames: KITTI tracking runs at 10 Hz and stores no time stamps, so `timestamp_ns = frame_index * 100 ms`. The ego frame
is KITTI's (`scenes.ego_frame.KITTI_EGO`: the Velodyne's axes, origin on the ground 1.73 m below it); the "city" frame
is the sequence's first ego frame: poses come from the OXTS packets (`kitti.oxts_to_poses`, through `Tr_imu_velo`), and
are the identity without an oxts file.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import numpy as np

from scenes.adapters.base import AdapterError, Dataset, guarded, read_image, require_dir, require_file, skip_or_raise
from scenes.adapters.kitti import (
    OXTS_FIELDS,
    KittiLabel,
    calib_matrix,
    camera_from_projection,
    labels_to_boxes,
    oxts_to_poses,
    read_calib_file,
    read_velodyne,
    rigid_from_calib,
)
from scenes.caching import per_instance_lru_cache
from scenes.categories import FROM_KITTI
from scenes.ego_frame import KITTI_EGO
from scenes.geometry import SE3
from scenes.records import Boxes3D, CameraFrame, Frame, source_file

TRACKING_FIELDS: Final = 17
TRACKING_FIELD_NAMES: Final = (
    "frame", "track_id", "type", "truncated", "occluded", "alpha", "x1", "y1", "x2", "y2", "h", "w", "l", "x", "y", "z", "ry", "score",
)  # fmt: skip
FRAME_PERIOD_NS: Final = 100_000_000  # 10 Hz
DEFAULT_IMAGE_SIZE_PX: Final = (1242, 375)  # (width, height) of KITTI's colour images
SPLITS: Final = ("training", "testing")
CAMERA: Final = "image_02"
_SPLIT_ALIASES: Final = {"train": "training", "test": "testing"}
_SEQUENCE: Final = re.compile(r"[0-9]{4}")
_FRAME_NAME: Final = re.compile(r"[0-9]{6}")
_FOLDERS: Final = ("calib", "label_02", "oxts", "velodyne", CAMERA)
# Calibration keys of the tracking benchmark and their names in the object benchmark's files.
_CALIB_ALIASES: Final = {
    "P2": ("P2",),
    "R_rect": ("R_rect", "R0_rect"),
    "Tr_velo_cam": ("Tr_velo_cam", "Tr_velo_to_cam"),
    "Tr_imu_velo": ("Tr_imu_velo", "Tr_imu_to_velo"),
}
_CLASS_NAMES: Final = {name.lower(): name for name in FROM_KITTI} | {"person": "Person_sitting"}


@dataclass(frozen=True)
class TrackingRow:
    """One line of a KITTI tracking file in KITTI's own terms."""

    frame: int
    track_id: int
    kind: str
    truncated: float
    occluded: int
    alpha_rad: float
    bbox_ltrb_px: tuple[float, float, float, float]
    size_hwl_m: tuple[float, float, float]
    location_cam_m: tuple[float, float, float]
    rotation_y_rad: float
    score: float | None = None


def field_number(path: Path, line_number: int, field: str, token: str) -> float:
    """A finite float, or an `AdapterError` naming the file, line and field."""
    try:
        value = float(token)
    except ValueError:
        raise AdapterError(path, f"line {line_number}: field {field!r} is not a number: {token!r}") from None
    if not np.isfinite(value):
        raise AdapterError(path, f"line {line_number}: field {field!r} is NaN or inf")
    return value


def field_integer(path: Path, line_number: int, field: str, token: str) -> int:
    """An integer (written as one, or as a float with no fraction), or an `AdapterError` naming the file, line and field."""
    value = field_number(path, line_number, field, token)
    if value != int(value):
        raise AdapterError(path, f"line {line_number}: field {field!r} is not an integer: {token!r}")
    return int(value)


def _number(path: Path, line_number: int, index: int, token: str) -> float:
    return field_number(path, line_number, TRACKING_FIELD_NAMES[index], token)


def _integer(path: Path, line_number: int, index: int, token: str) -> int:
    return field_integer(path, line_number, TRACKING_FIELD_NAMES[index], token)


def parse_tracking_line(path: Path, line_number: int, line: str) -> TrackingRow:
    """One 17- or 18-field line -> `TrackingRow`; a bad line raises `AdapterError` naming the file, line and field."""
    tokens = line.split()
    if len(tokens) not in (TRACKING_FIELDS, TRACKING_FIELDS + 1):
        raise AdapterError(path, f"line {line_number}: expected {TRACKING_FIELDS} or {TRACKING_FIELDS + 1} fields, got {len(tokens)}")
    values = {index: _number(path, line_number, index, token) for index, token in enumerate(tokens) if index not in (0, 1, 2, 4)}
    frame = _integer(path, line_number, 0, tokens[0])
    if frame < 0:
        raise AdapterError(path, f"line {line_number}: field 'frame' is negative: {frame}")
    track_id = _integer(path, line_number, 1, tokens[1])
    if track_id < -1:
        raise AdapterError(path, f"line {line_number}: field 'track_id' must be >= -1, got {track_id}")
    return TrackingRow(
        frame=frame,
        track_id=track_id,
        kind=tokens[2],
        truncated=values[3],
        occluded=_integer(path, line_number, 4, tokens[4]),
        alpha_rad=values[5],
        bbox_ltrb_px=(values[6], values[7], values[8], values[9]),
        size_hwl_m=(values[10], values[11], values[12]),
        location_cam_m=(values[13], values[14], values[15]),
        rotation_y_rad=values[16],
        score=values.get(17),
    )


def read_numbered_tracking_rows(path: Path) -> list[tuple[int, TrackingRow]]:
    """(line number, row) of every non-empty line of a KITTI tracking label or result file."""
    require_file(path, "KITTI tracking file")
    return [
        (line_number, parse_tracking_line(path, line_number, line))
        for line_number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if line.strip()
    ]


def read_tracking_rows(path: Path) -> list[TrackingRow]:
    """Every line of a KITTI tracking label or result file (empty lines skipped)."""
    return [row for _, row in read_numbered_tracking_rows(path)]


def format_tracking_row(row: TrackingRow) -> str:
    """`row` as one line (without newline) that `parse_tracking_line` reads back: 2 decimals for the 2D box and the
    truncation, 6 for angles, sizes, locations and the score (18 fields with a score, else 17)."""
    if not row.kind or any(character.isspace() for character in row.kind):
        raise ValueError(f"TrackingRow.kind: {row.kind!r} is not a single word")
    fields = [
        str(row.frame),
        str(row.track_id),
        row.kind,
        f"{row.truncated:.2f}",
        str(row.occluded),
        f"{row.alpha_rad:.6f}",
        *(f"{value:.2f}" for value in row.bbox_ltrb_px),
        *(f"{value:.6f}" for value in (*row.size_hwl_m, *row.location_cam_m, row.rotation_y_rad)),
    ]
    if row.score is not None:
        fields.append(f"{row.score:.6f}")
    return " ".join(fields)


def kitti_class(path: Path, line_number: int, kind: str) -> str:
    """The KITTI class name of a type token (any case; `Person` -> `Person_sitting`); unknown types raise `AdapterError`."""
    name = _CLASS_NAMES.get(kind.lower())
    if name is None:
        raise AdapterError(path, f"line {line_number}: field 'type': unknown KITTI class {kind!r}; expected one of {', '.join(FROM_KITTI)}")
    return name


@dataclass(frozen=True)
class LabelLine:
    """A label or detection line to convert: where it is, its frame and track id (-1 or None: none), and its box."""

    line_number: int
    frame: int
    label: KittiLabel
    track_id: int | None = None


def labels_by_frame(path: Path, lines: Iterable[LabelLine], rect_SE3_ego: SE3, *, with_tracks: bool) -> dict[int, Boxes3D]:
    """Ego-frame boxes (through `rect_SE3_ego`) of every frame that has a line (in frame order), with `track_id` the
    KITTI id as a string when `with_tracks`. Classes without a canonical category are dropped (a frame of only those gets no boxes); a kept
    line with a non-positive size, or a track id twice in one frame, raises `AdapterError` naming the line."""
    kept: dict[int, list[LabelLine]] = {}
    for line in lines:
        frame_lines = kept.setdefault(line.frame, [])
        name = kitti_class(path, line.line_number, line.label.kind)
        if FROM_KITTI[name] is None:
            continue
        for field, size in zip(("h", "w", "l"), line.label.size_hwl_m, strict=True):
            if size <= 0:
                raise AdapterError(path, f"line {line.line_number}: field {field!r} must be positive, got {size}")
        if with_tracks and any(other.track_id == line.track_id for other in frame_lines):
            raise AdapterError(path, f"line {line.line_number}: track {line.track_id} appears twice in frame {line.frame}")
        frame_lines.append(replace(line, label=replace(line.label, kind=name)))
    boxes: dict[int, Boxes3D] = {}
    for frame in sorted(kept):
        frame_lines = kept[frame]
        if not frame_lines:
            boxes[frame] = Boxes3D.empty(with_tracks=with_tracks)
            continue
        frame_boxes = labels_to_boxes(path, [line.label for line in frame_lines], rect_SE3_ego)
        if with_tracks:
            frame_boxes = replace(frame_boxes, track_id=np.array([str(line.track_id) for line in frame_lines]))
        boxes[frame] = frame_boxes
    return boxes


def row_label(row: TrackingRow, *, default_score: float | None = None) -> KittiLabel:
    """The box of a tracking row as a KITTI object label (`default_score` where the row has none)."""
    return KittiLabel(
        kind=row.kind,
        truncated=row.truncated,
        occluded=row.occluded,
        alpha_rad=row.alpha_rad,
        bbox_ltrb_px=row.bbox_ltrb_px,
        size_hwl_m=row.size_hwl_m,
        location_cam_m=row.location_cam_m,
        rotation_y_rad=row.rotation_y_rad,
        score=default_score if row.score is None else row.score,
    )


@dataclass(frozen=True, eq=False)
class KittiTrackingCalibration:
    """A sequence's calibration against the records' ego frame (KITTI's: the Velodyne's axes, origin on the ground
    below it, `scenes.ego_frame.KITTI_EGO`): rectified camera 0 <- ego, the left colour camera (`image_02`: its 3x4
    rectified projection P2, intrinsics and pose in the ego frame) and, when given, IMU <- ego."""

    rect_SE3_ego: SE3
    projection_p2: np.ndarray
    intrinsics: np.ndarray
    ego_SE3_camera2: SE3
    imu_SE3_ego: SE3 | None = None

    def __post_init__(self) -> None:
        for name, shape in (("projection_p2", (3, 4)), ("intrinsics", (3, 3))):
            array = np.array(getattr(self, name), dtype=np.float64)
            if array.shape != shape or not np.all(np.isfinite(array)):
                raise ValueError(f"KittiTrackingCalibration.{name}: expected a finite {shape} matrix, got shape {array.shape}")
            array.flags.writeable = False
            object.__setattr__(self, name, array)

    @classmethod
    def from_matrices(
        cls, source: Path, projection_p2: np.ndarray, r_rect: np.ndarray, velo_to_cam: np.ndarray, imu_to_velo: np.ndarray | None = None
    ) -> KittiTrackingCalibration:
        """From the file's matrices P2 (3x4), R_rect (3x3), Tr_velo_cam (3x4) and Tr_imu_velo (3x4, IMU -> Velodyne);
        a matrix that is not a rigid transform (or a zero focal length) raises `AdapterError` naming `source`."""
        rect_R = rigid_from_calib(source, "R_rect", np.pad(np.asarray(r_rect, dtype=np.float64).reshape(3, 3), ((0, 0), (0, 1))))
        rect_SE3_velo = rect_R.compose(rigid_from_calib(source, "Tr_velo_cam", np.asarray(velo_to_cam, dtype=np.float64).reshape(3, 4)))
        rect_SE3_ego = rect_SE3_velo.compose(KITTI_EGO.dataset_SE3_ego)
        projection = np.asarray(projection_p2, dtype=np.float64).reshape(3, 4)
        intrinsics, offset = camera_from_projection(source, "P2", projection)
        camera2_SE3_ego = SE3(np.eye(3), offset).compose(rect_SE3_ego)
        imu_SE3_ego = None
        if imu_to_velo is not None:
            imu_SE3_velo = rigid_from_calib(source, "Tr_imu_velo", np.asarray(imu_to_velo, dtype=np.float64).reshape(3, 4)).inverse()
            imu_SE3_ego = imu_SE3_velo.compose(KITTI_EGO.dataset_SE3_ego)
        return cls(rect_SE3_ego, projection, intrinsics, camera2_SE3_ego.inverse(), imu_SE3_ego)


def read_tracking_calibration(path: Path) -> KittiTrackingCalibration:
    """A `calib/SEQ.txt` (`key: values` or `key values` lines; the object benchmark's key names are accepted too)."""
    calib = read_calib_file(path, colon_optional=True)

    def key(name: str, required: bool = True) -> str | None:
        found = next((alias for alias in _CALIB_ALIASES[name] if alias in calib), None)
        if found is None and required:
            raise AdapterError(path, f"missing key {name!r}")
        return found

    p2, r_rect, velo_cam, imu_velo = key("P2"), key("R_rect"), key("Tr_velo_cam"), key("Tr_imu_velo", required=False)
    assert p2 is not None and r_rect is not None and velo_cam is not None  # required keys raise when missing
    return KittiTrackingCalibration.from_matrices(
        path,
        calib_matrix(path, calib, p2, (3, 4)),
        calib_matrix(path, calib, r_rect, (3, 3)),
        calib_matrix(path, calib, velo_cam, (3, 4)),
        None if imu_velo is None else calib_matrix(path, calib, imu_velo, (3, 4)),
    )


def read_oxts_packets(path: Path) -> np.ndarray:
    """An `oxts/SEQ.txt` (one 30-value OXTS packet per line, in frame order) -> `(T, 30)` float64."""
    require_file(path, "OXTS file")
    packets = []
    for line_number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != OXTS_FIELDS:
            raise AdapterError(path, f"line {line_number}: expected {OXTS_FIELDS} OXTS values, got {len(tokens)}")
        try:
            packet = np.array([float(token) for token in tokens])
        except ValueError:
            raise AdapterError(path, f"line {line_number}: non-numeric OXTS value") from None
        if not np.all(np.isfinite(packet[:6])):
            raise AdapterError(path, f"line {line_number}: NaN or inf in the OXTS position/orientation")
        packets.append(packet)
    if not packets:
        raise AdapterError(path, "no OXTS packet")
    return np.array(packets)


def png_size_px(path: Path) -> tuple[int, int]:
    """(width, height) of an image, read from its header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError) as error:
        raise AdapterError(path, f"unreadable image ({error})") from None
    return int(width), int(height)


def _is_split(path: Path) -> bool:
    return any((path / folder).is_dir() for folder in _FOLDERS)


class KittiTrackingDataset(Dataset):
    """KITTI tracking benchmark: `PATH/{training,testing}/` (or PATH is a split folder); each sequence is a log.

    `split` picks training or testing when both exist (default: training if present; "train"/"test" accepted).
    With `with_image`, frames carry the left colour camera `image_02`.
    """

    name = "kitti-tracking"

    def __init__(self, root: Path, *, split: str | None = None, with_image: bool = False, skip_bad: bool = False) -> None:
        super().__init__(root, skip_bad=skip_bad)
        require_dir(self.root, "KITTI tracking directory")
        self.with_image = with_image
        self.split_dir = self._split_dir(split)
        names: set[str] = set()
        for folder in ("calib", "label_02", "oxts"):
            if (self.split_dir / folder).is_dir():
                names.update(path.stem for path in (self.split_dir / folder).glob("*.txt"))
        for folder in ("velodyne", CAMERA):
            if (self.split_dir / folder).is_dir():
                names.update(path.name for path in (self.split_dir / folder).iterdir() if path.is_dir())
        self._sequences = sorted(name for name in names if _SEQUENCE.fullmatch(name))
        if not self._sequences:
            raise AdapterError(self.split_dir, "no KITTI tracking sequence (expected calib/SEQ.txt, label_02/SEQ.txt or velodyne/SEQ/ with SEQ 4 digits)")

    def _split_dir(self, split: str | None) -> Path:
        wanted = None if split is None else _SPLIT_ALIASES.get(split, split)
        if _is_split(self.root):
            if wanted is not None and wanted != self.root.name:
                raise AdapterError(self.root, f"is the split folder {self.root.name!r}, not split {split!r}")
            return self.root
        available = [name for name in SPLITS if _is_split(self.root / name)]
        if not available:
            raise AdapterError(self.root, f"no KITTI tracking split (expected training/ or testing/ holding {', '.join(_FOLDERS)})")
        if wanted is None:
            return self.root / available[0]
        if wanted not in available:
            raise AdapterError(self.root, f"no split {split!r}; splits: {available}")
        return self.root / wanted

    def logs(self) -> list[str]:
        return list(self._sequences)

    def notes(self) -> tuple[str, ...]:
        return (
            "KITTI tracking stores no time stamps: timestamp_ns = frame index * 100 ms (10 Hz)",
            "the city frame is each sequence's first Velodyne frame (identity poses without oxts/SEQ.txt)",
        )

    def sensors(self) -> tuple[str, ...]:
        return tuple(name for name in ("velodyne", CAMERA) if (self.split_dir / name).is_dir())

    def _sequence(self, log_id: str) -> str:
        if log_id not in self._sequences:
            raise AdapterError(self.split_dir, f"no sequence {log_id!r}; sequences: {self._sequences}")
        return log_id

    def label_path(self, log_id: str) -> Path:
        return self.split_dir / "label_02" / f"{self._sequence(log_id)}.txt"

    def calib_path(self, log_id: str) -> Path:
        return self.split_dir / "calib" / f"{self._sequence(log_id)}.txt"

    def oxts_path(self, log_id: str) -> Path:
        return self.split_dir / "oxts" / f"{self._sequence(log_id)}.txt"

    def velodyne_dir(self, log_id: str) -> Path:
        return self.split_dir / "velodyne" / self._sequence(log_id)

    def image_dir(self, log_id: str) -> Path:
        return self.split_dir / CAMERA / self._sequence(log_id)

    @per_instance_lru_cache(maxsize=8)
    def calibration(self, log_id: str) -> KittiTrackingCalibration:
        return read_tracking_calibration(self.calib_path(log_id))

    def has_poses(self, log_id: str) -> bool:
        """Whether the sequence has an oxts file (without one every pose is the identity)."""
        return self.oxts_path(log_id).is_file()

    @per_instance_lru_cache(maxsize=4)
    def oxts_packets(self, log_id: str) -> np.ndarray:
        return read_oxts_packets(self.oxts_path(log_id))

    @per_instance_lru_cache(maxsize=4)
    def num_frames(self, log_id: str) -> int:
        """The velodyne scans (highest index + 1) if present, else the OXTS packets, else the highest label frame + 1."""
        velodyne = self.velodyne_dir(log_id)
        if velodyne.is_dir():
            indices = [int(path.stem) for path in velodyne.glob("*.bin") if _FRAME_NAME.fullmatch(path.stem)]
            if indices:
                return max(indices) + 1
        if self.has_poses(log_id):
            return len(self.oxts_packets(log_id))
        if self.label_path(log_id).is_file():
            return max((row.frame for _, row in read_numbered_tracking_rows(self.label_path(log_id))), default=-1) + 1
        raise AdapterError(
            self.split_dir, f"sequence {log_id}: no velodyne/{log_id}/*.bin, oxts/{log_id}.txt or label_02/{log_id}.txt to count its frames from"
        )

    @per_instance_lru_cache(maxsize=4)
    def poses(self, log_id: str) -> list[SE3]:
        """city_SE3_ego (city = the first frame's ego frame) per OXTS packet; identity for every frame without an oxts
        file."""
        if not self.has_poses(log_id):
            return [SE3.identity()] * self.num_frames(log_id)
        packets = self.oxts_packets(log_id)
        imu_SE3_ego = self.calibration(log_id).imu_SE3_ego
        if imu_SE3_ego is None:
            raise AdapterError(self.calib_path(log_id), f"missing key 'Tr_imu_velo' (needed for the poses of {self.oxts_path(log_id)})")
        world_SE3_ego = [world_SE3_imu.compose(imu_SE3_ego) for world_SE3_imu in oxts_to_poses(packets)]
        first_SE3_world = world_SE3_ego[0].inverse()
        return [first_SE3_world.compose(pose) for pose in world_SE3_ego]

    @per_instance_lru_cache(maxsize=4)
    def annotations(self, log_id: str) -> dict[int, Boxes3D] | None:
        """Ego-frame boxes with track ids per frame index (frames without labels are absent); None without a
        label file (the testing split)."""
        path = self.label_path(log_id)
        if not path.is_file():
            return None
        rows = read_numbered_tracking_rows(path)
        num_frames = self.num_frames(log_id)
        for line_number, row in rows:
            if row.frame >= num_frames:
                raise AdapterError(path, f"line {line_number}: field 'frame' is {row.frame}, beyond the sequence's {num_frames} frames")
        lines = [LabelLine(line_number, row.frame, row_label(row), row.track_id) for line_number, row in rows]
        return labels_by_frame(path, lines, self.calibration(log_id).rect_SE3_ego, with_tracks=True)

    def timestamps_ns(self, log_id: str) -> list[int]:
        return [index * FRAME_PERIOD_NS for index in range(self.num_frames(log_id))]

    def category_counts(self, log_id: str) -> Counter[str]:
        counts: Counter[str] = Counter()
        for boxes in (self.annotations(log_id) or {}).values():
            counts.update(boxes.category_names.tolist())
        return counts

    def image_size_px(self, log_id: str) -> tuple[int, int]:
        """(width, height) of the sequence's first image_02 PNG, else KITTI's 1242 x 375."""
        images = sorted(self.image_dir(log_id).glob("*.png")) if self.image_dir(log_id).is_dir() else []
        return png_size_px(images[0]) if images else DEFAULT_IMAGE_SIZE_PX

    def frames(self, log_id: str) -> Iterator[Frame]:
        try:
            count = self.num_frames(log_id)
            self.poses(log_id)
            self.annotations(log_id)
        except AdapterError as error:
            skip_or_raise(error, self.skip_bad, f"sequence {log_id}")
            return
        for index in range(count):
            try:
                yield self.frame(log_id, index)
            except AdapterError as error:
                skip_or_raise(error, self.skip_bad, f"frame {log_id}/{index:06d}")

    def frame(self, log_id: str, index: int) -> Frame:
        """Frame `index` of a sequence: Velodyne scan (if present), image_02 (with `with_image`), pose, labels."""
        count = self.num_frames(log_id)
        if not 0 <= index < count:
            raise AdapterError(self.split_dir, f"sequence {log_id} has no frame {index} (it has {count})")
        timestamp_ns = index * FRAME_PERIOD_NS
        poses = self.poses(log_id)
        if index >= len(poses):
            raise AdapterError(self.oxts_path(log_id), f"no OXTS packet for frame {index} (the file has {len(poses)})")
        velodyne = self.velodyne_dir(log_id)
        lidar = KITTI_EGO.sweep_to_ego(read_velodyne(velodyne / f"{index:06d}.bin", timestamp_ns)) if velodyne.is_dir() else None
        cameras = {}
        if self.with_image and self.image_dir(log_id).is_dir():
            image_path = self.image_dir(log_id) / f"{index:06d}.png"
            image = read_image(image_path)
            calibration = self.calibration(log_id)
            with source_file(image_path):
                cameras[CAMERA] = guarded(
                    image_path, lambda: CameraFrame(timestamp_ns, CAMERA, image, calibration.intrinsics, calibration.ego_SE3_camera2)
                )
        labels = self.annotations(log_id)
        annotations = None if labels is None else labels.get(index, Boxes3D.empty(with_tracks=True))
        return Frame(log_id, timestamp_ns, poses[index], lidar, cameras, annotations)
