"""Cityscapes-style folders (`cityscapes:PATH`) -> `CameraFrame`s with semantics and `SegMask`s.

Layout (as released): `leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`, labels in
`gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_{labelIds,labelTrainIds,instanceIds}.png`, calibration in
`camera/<split>/<city>/<city>_<seq>_<frame>_camera.json` when present. Each `<split>/<city>` is a log; a frame's
`timestamp_ns` is `seq * 1_000_000 + frame` (the release keeps no clock, only sequence and frame numbers). When `labelTrainIds` is absent, train ids are derived
from `labelIds` with the Cityscapes label table below.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from scenes.adapters.base import AdapterError, Dataset, guarded, read_image, require_dir, skip_or_raise
from scenes.geometry import SE3
from scenes.records import CameraFrame, Frame, SegMask, source_file

IGNORE_ID: Final = 255
CAMERA_NAME: Final = "leftImg8bit"

# (labelId, name, trainId) of the Cityscapes label table (cityscapesScripts `labels.py`); 255 = ignored in training.
LABELS: Final[tuple[tuple[int, str, int], ...]] = (
    (0, "unlabeled", 255),
    (1, "ego vehicle", 255),
    (2, "rectification border", 255),
    (3, "out of roi", 255),
    (4, "static", 255),
    (5, "dynamic", 255),
    (6, "ground", 255),
    (7, "road", 0),
    (8, "sidewalk", 1),
    (9, "parking", 255),
    (10, "rail track", 255),
    (11, "building", 2),
    (12, "wall", 3),
    (13, "fence", 4),
    (14, "guard rail", 255),
    (15, "bridge", 255),
    (16, "tunnel", 255),
    (17, "pole", 5),
    (18, "polegroup", 255),
    (19, "traffic light", 6),
    (20, "traffic sign", 7),
    (21, "vegetation", 8),
    (22, "terrain", 9),
    (23, "sky", 10),
    (24, "person", 11),
    (25, "rider", 12),
    (26, "car", 13),
    (27, "truck", 14),
    (28, "bus", 15),
    (29, "caravan", 255),
    (30, "trailer", 255),
    (31, "train", 16),
    (32, "motorcycle", 17),
    (33, "bicycle", 18),
)
TRAIN_CLASSES: Final[tuple[str, ...]] = tuple(name for _, name, train in sorted(LABELS, key=lambda r: r[2]) if train != IGNORE_ID)
LABEL_TO_TRAIN: Final = np.full(256, IGNORE_ID, dtype=np.uint8)
for _label_id, _, _train_id in LABELS:
    LABEL_TO_TRAIN[_label_id] = _train_id
# trainId -> the labelId of that class (each train class has exactly one labelId); 255 -> 0 (unlabeled).
TRAIN_TO_LABEL: Final = np.zeros(256, dtype=np.uint8)
for _label_id, _, _train_id in LABELS:
    if _train_id != IGNORE_ID:
        TRAIN_TO_LABEL[_train_id] = _label_id

_NAME: Final = re.compile(r"(?P<city>.+)_(?P<seq>\d+)_(?P<frame>\d+)_leftImg8bit")


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Cityscapes `labelIds` -> `trainIds` (19 classes, 255 ignored); ids outside the table are ignored."""
    return LABEL_TO_TRAIN[np.asarray(label_ids, dtype=np.uint8)]


def train_ids_to_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Cityscapes `trainIds` -> `labelIds` (ignored or unknown train ids become 0, "unlabeled")."""
    return TRAIN_TO_LABEL[np.asarray(train_ids, dtype=np.uint8)]


def read_label_png(path: Path, dtype: type = np.uint8) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise AdapterError(path, "label PNG not found")
    try:
        with Image.open(path) as image:
            values = np.asarray(image)
    except (OSError, UnidentifiedImageError) as error:
        raise AdapterError(path, f"unreadable label PNG ({error})") from None
    if values.ndim != 2:
        raise AdapterError(path, f"expected a single-channel label PNG, got shape {values.shape}")
    if dtype is np.uint8 and values.max(initial=0) > 255:
        raise AdapterError(path, f"label id {values.max()} does not fit the 8-bit label table")
    return values.astype(dtype)


def read_camera_json(path: Path, width_px: int, height_px: int) -> tuple[np.ndarray, SE3]:
    """A Cityscapes `*_camera.json` -> (intrinsics, ego_SE3_camera); the vehicle frame is x forward, y left, z up."""
    try:
        payload = json.loads(path.read_text())
        intrinsic, extrinsic = payload["intrinsic"], payload["extrinsic"]
        k = np.array([[intrinsic["fx"], 0.0, intrinsic["u0"]], [0.0, intrinsic["fy"], intrinsic["v0"]], [0.0, 0.0, 1.0]], dtype=np.float64)
        pitch, roll, yaw = (float(extrinsic[key]) for key in ("pitch", "roll", "yaw"))
        translation = np.array([extrinsic["x"], extrinsic["y"], extrinsic["z"]], dtype=np.float64)
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise AdapterError(path, f"unreadable camera calibration ({type(error).__name__}: {error})") from None
    if not np.all(np.isfinite(k)) or not np.all(np.isfinite(translation)):
        raise AdapterError(path, "camera calibration holds NaN or inf")
    from scipy.spatial.transform import Rotation

    vehicle_R_camera_body = Rotation.from_euler("ZYX", [yaw, pitch, roll]).as_matrix()
    # Camera body (x forward, y left, z up) -> OpenCV optical frame (z forward, x right, y down).
    body_R_optical = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    return k, SE3(vehicle_R_camera_body @ body_R_optical, translation)


def nominal_camera(width_px: int, height_px: int) -> tuple[np.ndarray, SE3]:
    """A forward-looking pinhole (focal length = image width, centred) for folders without calibration."""
    k = np.array([[width_px, 0.0, width_px / 2.0], [0.0, width_px, height_px / 2.0], [0.0, 0.0, 1.0]])
    optical = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    return k, SE3(optical, np.zeros(3))


@dataclass(frozen=True)
class CityscapesItem:
    """One image with its labels: `labels` in train ids (19 classes), `label_ids` in the full 34-id table."""

    image_id: str
    camera: CameraFrame
    labels: SegMask | None
    label_ids: SegMask | None


class CityscapesDataset(Dataset):
    """Cityscapes-style image and label folders; `split` restricts to one split (`train`, `val`, `test`)."""

    name = "cityscapes"

    def __init__(self, root: Path, *, split: str | None = None, skip_bad: bool = False) -> None:
        super().__init__(root, skip_bad=skip_bad)
        images = require_dir(self.root / "leftImg8bit", "Cityscapes leftImg8bit directory")
        self._logs = {
            f"{split_dir.name}/{city.name}": city
            for split_dir in sorted(images.iterdir())
            if split_dir.is_dir() and (split is None or split_dir.name == split)
            for city in sorted(split_dir.iterdir())
            if city.is_dir()
        }
        if not self._logs:
            raise AdapterError(images, "no <split>/<city> folder of images")
        self._notes: list[str] = []

    def logs(self) -> list[str]:
        return list(self._logs)

    def sensors(self) -> tuple[str, ...]:
        return (CAMERA_NAME,)

    def notes(self) -> tuple[str, ...]:
        return ("Cityscapes keeps no clock: timestamp_ns is seq * 1_000_000 + frame number", *self._notes)

    def image_paths(self, log_id: str) -> list[Path]:
        if log_id not in self._logs:
            raise AdapterError(self.root, f"no log {log_id!r}")
        return sorted(self._logs[log_id].glob("*_leftImg8bit.png"))

    def timestamps_ns(self, log_id: str) -> list[int]:
        return [self._frame_number(path) for path in self.image_paths(log_id)]

    def category_counts(self, log_id: str) -> Counter[str]:
        counts: Counter[str] = Counter()
        for item in self.items(log_id):
            if item.labels is not None:
                ids, pixels = np.unique(item.labels.labels, return_counts=True)
                counts.update({TRAIN_CLASSES[i]: int(n) for i, n in zip(ids, pixels, strict=True) if i != IGNORE_ID})
        return counts

    def _frame_number(self, path: Path) -> int:
        match = _NAME.fullmatch(path.stem)
        if match is None:
            raise AdapterError(path, "file name is not <city>_<seq>_<frame>_leftImg8bit.png")
        return int(match["seq"]) * 1_000_000 + int(match["frame"])

    def items(self, log_id: str) -> Iterator[CityscapesItem]:
        for path in self.image_paths(log_id):
            try:
                yield self.item(log_id, path)
            except AdapterError as error:
                skip_or_raise(error, self.skip_bad, f"image {path}")

    def item(self, log_id: str, image_path: Path) -> CityscapesItem:
        frame_number = self._frame_number(image_path)
        stem = image_path.name[: -len("_leftImg8bit.png")]
        image = read_image(image_path)
        height, width = image.shape[:2]
        label_dir = self.root / "gtFine" / log_id
        label_path = label_dir / f"{stem}_gtFine_labelIds.png"
        train_path = label_dir / f"{stem}_gtFine_labelTrainIds.png"
        instance_path = label_dir / f"{stem}_gtFine_instanceIds.png"
        label_ids = read_label_png(label_path) if label_path.is_file() else None
        train_ids = read_label_png(train_path) if train_path.is_file() else None
        if train_ids is None and label_ids is not None:
            train_ids = label_ids_to_train_ids(label_ids)
        instances = read_label_png(instance_path, np.int32) if instance_path.is_file() else None
        for path, labels in ((label_path, label_ids), (train_path, train_ids), (instance_path, instances)):
            if labels is not None and labels.shape != (height, width):
                raise AdapterError(path, f"label size {labels.shape[::-1]} differs from the image's {(width, height)}")
        camera_path = self.root / "camera" / log_id / f"{stem}_camera.json"
        if camera_path.is_file():
            intrinsics, ego_SE3_camera = read_camera_json(camera_path, width, height)
        else:
            intrinsics, ego_SE3_camera = nominal_camera(width, height)
            note = "no camera/ calibration: images get a nominal pinhole (focal length = width, centred)"
            if note not in self._notes:
                self._notes.append(note)
        with source_file(image_path):
            camera = guarded(
                image_path,
                lambda: CameraFrame(frame_number, CAMERA_NAME, image, intrinsics, ego_SE3_camera, semantics=train_ids, instances=instances),
            )
        return CityscapesItem(
            image_id=stem,
            camera=camera,
            labels=None if train_ids is None else SegMask(train_ids, "cityscapes-trainid", IGNORE_ID),
            label_ids=None if label_ids is None else SegMask(label_ids, "cityscapes-labelid", 0),
        )

    def frames(self, log_id: str) -> Iterator[Frame]:
        for item in self.items(log_id):
            yield Frame(log_id, item.camera.timestamp_ns, SE3.identity(), None, {CAMERA_NAME: item.camera}, None)
