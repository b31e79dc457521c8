"""`drivestack detect`: the shipped LiDAR detector (or `--checkpoint`) over a dataset, written in the dataset's
detection format, so that `drivestack evaluate detection` (or the dataset's own tools) can score it and `drivestack
track` can track it.

| `--data` | `--out` |
|---|---|
| `av2:PATH`, `synth` | an AV2 detection feather (ego frame, every sweep) |
| `nuscenes:PATH` | a nuScenes detection JSON (every key frame, global frame) |
| `kitti-object:PATH` | a folder of KITTI object result files `<frame>.txt` (label format plus score) |
| `kitti-tracking:PATH` | a folder of `SEQ.txt` files in AB3DMOT's PointRCNN format (what `track` reads) |

Each sweep is detected with the sweeps before it in its log, as the detector was trained; the KITTI object
benchmark's frames are independent, so they are detected alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from pipelines.e2e_forecast import E2EForecastConfig
from pipelines.tracking_finetune import FrameDetections, run_detector
from scenes.errors import InputError, check_output_path
from scenes.io import atomic_write_text
from scenes.records import Boxes3D

__all__ = ["run_detect", "kitti_object_lines"]

# The held-out synthetic logs `detect --data synth` runs on (those `evaluate detection --data synth` scores).
SYNTH_LOGS = {"logs": 2, "seconds": 4.0, "seed": 1000, "lidar_beams": 32}


def kitti_object_lines(boxes_ego: Boxes3D, calib: Any, image_size_px: tuple[int, int]) -> list[str]:
    """KITTI object result lines (`type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry score`) of the boxes in the
    image that have a KITTI class."""
    from scenes.submissions.kitti_tracking import tracking_rows

    ids = [str(k) for k in range(len(boxes_ego))]
    numbered = replace(boxes_ego, track_id=np.array(ids, dtype=str))
    lines = []
    for row in tracking_rows(0, numbered, calib, image_size_px, {track: k for k, track in enumerate(ids)}):
        values = (*row.bbox_ltrb_px, *row.size_hwl_m, *row.location_cam_m, row.rotation_y_rad, row.score)
        lines.append(f"{row.kind} 0.00 0 {row.alpha_rad:.6f} " + " ".join(f"{value:.6f}" for value in values))
    return lines


def _write_kitti_object(dataset: Any, outputs: Mapping[str, list[FrameDetections]], out: Path) -> int:
    from scenes.adapters.kitti_tracking import DEFAULT_IMAGE_SIZE_PX, png_size_px, read_tracking_calibration

    written = 0
    for split, entries in outputs.items():
        calib_dir = dataset.split_dir(split) / "calib"
        for entry in entries:
            frame_id = f"{entry.frame.timestamp_ns:06d}"
            calib = read_tracking_calibration(calib_dir / f"{frame_id}.txt")
            image = dataset.split_dir(split) / "image_2" / f"{frame_id}.png"
            size = png_size_px(image) if image.is_file() else DEFAULT_IMAGE_SIZE_PX
            atomic_write_text(out / f"{frame_id}.txt", "".join(f"{line}\n" for line in kitti_object_lines(entry.detections, calib, size)))
            written += 1
    return written


def run_detect(data: str, out: Path, *, checkpoint: Path | None, options: Mapping[str, Any], console: Console) -> Path:
    """Runs the detector over `data` and writes its detections to `out` (see the module docstring); returns `out`."""
    from scenes.adapters.registry import open_dataset, parse_spec

    name, _ = parse_spec(data)
    if name not in ("av2", "synth", "nuscenes", "kitti-object", "kitti-tracking"):
        raise InputError(f"--data {data}: detect reads av2:, nuscenes:, kitti-object: or kitti-tracking: data, or synth")
    as_folder = name.startswith("kitti")
    check_output_path(out, directory=as_folder)
    dataset: Any = open_dataset("synth", **options, **SYNTH_LOGS, cameras=()) if name == "synth" else open_dataset(data, **options)
    if name == "nuscenes":
        from pipelines.evaluate_job import nuscenes_detections
        from scenes.submissions.nuscenes_detection import detection_submission, write_submission

        results, _ = nuscenes_detections(dataset, dataset.logs(), checkpoint, console)
        write_submission(out, detection_submission(results))
        console.print(f"wrote {out}: detections at {len(results)} key frame(s)", soft_wrap=True)
        return out
    stack = E2EForecastConfig(detector_checkpoint=checkpoint, past_sweeps=0 if name == "kitti-object" else None)
    outputs = run_detector(stack, dataset)
    frames = sum(len(entries) for entries in outputs.values())
    if frames == 0:
        raise InputError(f"{data}: no frame with a LiDAR sweep to detect on")
    if name in ("av2", "synth"):
        from scenes.submissions.av2_detection import detections_table, write_table

        table = detections_table((log_id, e.frame.timestamp_ns, e.detections) for log_id, entries in outputs.items() for e in entries)
        write_table(out, table)
        console.print(f"wrote {out}: {len(table)} detection(s) on {frames} sweep(s)", soft_wrap=True)
    elif name == "kitti-object":
        console.print(f"wrote {_write_kitti_object(dataset, outputs, out)} result file(s) under {out}", soft_wrap=True)
    else:
        from scenes.adapters.kitti_tracking import FRAME_PERIOD_NS
        from scenes.submissions.kitti_tracking import write_pointrcnn_detections

        for sequence, entries in outputs.items():
            by_index = [(int(e.frame.timestamp_ns // FRAME_PERIOD_NS), e.detections) for e in entries]
            write_pointrcnn_detections(out / f"{sequence}.txt", by_index, dataset.calibration(sequence), dataset.image_size_px(sequence))
        console.print(f"wrote {len(outputs)} sequence file(s) under {out}", soft_wrap=True)
    return out
