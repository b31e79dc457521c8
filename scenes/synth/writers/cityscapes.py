"""Cityscapes-style writer: one folder tree per domain style, as released by Cityscapes.

`<root>/<style>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png` with, beside it in
`gtFine/<split>/<city>/`, `*_gtFine_labelIds.png` (uint8 label ids), `*_gtFine_labelTrainIds.png` (uint8 train ids,
255 ignored) and `*_gtFine_instanceIds.png` (uint16: `label_id * 1000 + k` on objects of instance classes, numbered
per class from 0, else the label id), and `camera/<split>/<city>/*_camera.json` (Cityscapes' intrinsic/extrinsic
calibration; extrinsic angles of the camera body, x forward, y left, z up, in the vehicle frame).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Final

import numpy as np
from scipy.spatial.transform import Rotation

from scenes.adapters.cityscapes import LABELS, label_ids_to_train_ids
from scenes.io import current_umask
from scenes.records import CameraFrame
from scenes.synth.writers.common import (
    STAGING_MARK,
    FrameCallback,
    SimulatedLog,
    WriterError,
    camera_names,
    check_log,
    write_json,
    write_png,
)

__all__ = ["write_cityscapes", "instance_ids", "image_stem", "INSTANCE_LABEL_IDS"]

# Cityscapes classes with `hasInstances` (person, rider, car, truck, bus, caravan, trailer, train, motorcycle, bicycle).
INSTANCE_LABEL_IDS: Final = frozenset(range(24, 34))
MAX_LABEL_ID: Final = max(label_id for label_id, _, _ in LABELS)
PREFERRED_CAMERA: Final = "ring_front_center"
# OpenCV optical axes (x right, y down, z forward) in the camera body frame (x forward, y left, z up).
_BODY_R_OPTICAL: Final = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def image_stem(city: str, sequence: int, frame: int) -> str:
    return f"{city}_{sequence:06d}_{frame:06d}"


def instance_ids(label_ids: np.ndarray, instances: np.ndarray | None) -> np.ndarray:
    """Cityscapes `instanceIds`: objects (instance > 0) of instance classes get `label_id * 1000 + k`, `k` counting the
    class's objects in increasing instance order from 0; every other pixel keeps its label id."""
    encoded = label_ids.astype(np.uint16)
    if instances is None:
        return encoded
    for label_id in sorted(INSTANCE_LABEL_IDS):
        on_class = (label_ids == label_id) & (instances > 0)
        for k, instance in enumerate(np.unique(instances[on_class])):
            encoded[on_class & (instances == instance)] = label_id * 1000 + k
    return encoded


def _camera_json(camera: CameraFrame) -> dict[str, object]:
    body = camera.ego_SE3_camera.rotation @ _BODY_R_OPTICAL.T
    yaw, pitch, roll = Rotation.from_matrix(body).as_euler("ZYX")
    x, y, z = camera.ego_SE3_camera.translation
    k = camera.intrinsics
    return {
        "extrinsic": {"baseline": 0.0, "pitch": float(pitch), "roll": float(roll), "x": float(x), "y": float(y), "yaw": float(yaw), "z": float(z)},
        "intrinsic": {"fx": float(k[0, 0]), "fy": float(k[1, 1]), "u0": float(k[0, 2]), "v0": float(k[1, 2])},
    }


def write_cityscapes(
    log: SimulatedLog,
    root: Path,
    *,
    split: str = "train",
    sequence: int = 0,
    camera_name: str | None = None,
    on_frame: FrameCallback | None = None,
) -> Path:
    """Writes every frame of one camera of `log` (default: the front-centre camera, else the first by name) to
    `root/<style>/...` as sequence `sequence` of city `log.city_name` (lower-cased); returns the image city folder."""
    check_log(log)
    if not split or "/" in split:
        raise WriterError(f"split: {split!r} is not a usable directory name")
    if not 0 <= sequence <= 999_999:
        raise WriterError(f"sequence: must lie in [0, 999999], got {sequence}")
    available = camera_names(log)
    if camera_name is None:
        if not available:
            raise WriterError(f"SynthLog.frames of log {log.log_id}: Cityscapes folders need a camera")
        camera_name = PREFERRED_CAMERA if PREFERRED_CAMERA in available else available[0]
    elif camera_name not in available:
        raise WriterError(f"camera_name: {camera_name!r} is not among the log's cameras {list(available)}")
    for index, frame in enumerate(log.frames):
        camera = frame.cameras.get(camera_name)
        if camera is None or camera.semantics is None:
            raise WriterError(f"SynthLog.frames[{index}].cameras[{camera_name!r}].semantics of log {log.log_id}: Cityscapes folders need semantic maps")
        if camera.semantics.max(initial=0) > MAX_LABEL_ID:
            raise WriterError(
                f"SynthLog.frames[{index}].cameras[{camera_name!r}].semantics of log {log.log_id}: label id "
                f"{camera.semantics.max()} is outside the Cityscapes table (0..{MAX_LABEL_ID})"
            )
    city = log.city_name.lower()
    style_root = Path(root) / log.style
    folders = tuple(Path(kind) / split / city for kind in ("gtFine", "camera", "leftImg8bit"))  # images last: see _publish
    style_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{city}_{sequence:06d}{STAGING_MARK}", dir=style_root))
    os.chmod(staging, 0o777 & ~current_umask())
    try:
        _write_sequence_files(log, staging, folders, city, sequence, camera_name, on_frame)
        _publish(staging, style_root, folders, f"{city}_{sequence:06d}_")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return style_root / folders[2]


def _publish(staging: Path, style_root: Path, folders: tuple[Path, ...], prefix: str) -> None:
    """Moves a sequence's files from `staging` into place, replacing any previous version of the sequence.

    Readers enumerate images (`leftImg8bit`) and look their labels up: the old images of the sequence go first, then its
    stale labels, then the new labels and camera files arrive, and the new images last, so a visible image always has
    its own labels. Other sequences' files and any other file in these folders are left alone.
    """
    image_folder = folders[-1]
    old_images = sorted((style_root / image_folder).glob(f"{prefix}*")) if (style_root / image_folder).is_dir() else []
    for path in old_images:
        path.unlink(missing_ok=True)
    for folder in folders:
        new_names = {entry.name for entry in (staging / folder).iterdir()}
        target = style_root / folder
        target.mkdir(parents=True, exist_ok=True)
        for stale in target.glob(f"{prefix}*"):
            if stale.name not in new_names:
                stale.unlink(missing_ok=True)
    for folder in folders:
        for entry in sorted((staging / folder).iterdir()):
            os.replace(entry, style_root / folder / entry.name)


def _write_sequence_files(
    log: SimulatedLog, staging: Path, folders: tuple[Path, ...], city: str, sequence: int, camera_name: str, on_frame: FrameCallback | None
) -> None:
    label_dir, camera_dir, image_dir = (staging / folder for folder in folders)
    for index, frame in enumerate(log.frames):
        camera = frame.cameras[camera_name]
        semantics = camera.semantics
        assert semantics is not None
        stem = image_stem(city, sequence, index)
        write_png(image_dir / f"{stem}_leftImg8bit.png", camera.image)
        write_png(label_dir / f"{stem}_gtFine_labelIds.png", semantics)
        write_png(label_dir / f"{stem}_gtFine_labelTrainIds.png", label_ids_to_train_ids(semantics))
        write_png(label_dir / f"{stem}_gtFine_instanceIds.png", instance_ids(semantics, camera.instances))
        write_json(camera_dir / f"{stem}_camera.json", _camera_json(camera), indent=2)
        if on_frame is not None:
            on_frame()
