"""Detections made elsewhere, read against the dataset they were made on (for `drivestack track`, `evaluate tracking
--detections` and `finetune tracking --detections`): a folder of KITTI tracking sequence files, or an AV2 detection
feather. Detections of frames or logs the dataset does not have are one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scenes.errors import InputError
from scenes.records import Boxes3D

__all__ = ["av2_detections", "kitti_detections"]


def kitti_detections(dataset: Any, detections: Path) -> dict[str, dict[int, Boxes3D]]:
    """`detections/SEQ.txt` of every sequence of a `kitti-tracking:` dataset -> Velodyne-frame boxes per frame index."""
    from scenes.submissions.kitti_tracking import read_detection_dir

    sequences = dataset.logs()
    by_sequence = read_detection_dir(detections, sequences, {sequence: dataset.calibration(sequence) for sequence in sequences})
    for sequence, frames in by_sequence.items():
        count = dataset.num_frames(sequence)
        late = [index for index in frames if index >= count]
        if late:
            raise InputError(f"{detections / f'{sequence}.txt'}: frame {late[0]} is beyond the sequence's {count} frames")
    return by_sequence


def av2_detections(dataset: Any, detections: Path) -> dict[tuple[str, int], Boxes3D]:
    """An AV2 detection feather over the logs of an `av2:` dataset -> ego-frame boxes per (log, timestamp)."""
    from scenes.submissions.av2_detection import boxes_by_frame, read_detections

    by_frame = boxes_by_frame(read_detections(detections))
    unknown = sorted({log_id for log_id, _ in by_frame} - set(dataset.logs()))
    if unknown:
        raise InputError(f"{detections}: log(s) {unknown[:3]} are not in the dataset")
    return by_frame
