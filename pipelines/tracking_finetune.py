"""`drivestack finetune tracking`: the detector of the end-to-end stack runs over training logs, and the tracker's
noise and gates are refitted on its outputs matched to ground truth (`perception.tracking.refit`).

The detector's outputs are kept per frame, so the end-to-end finetuning job (`pipelines.sequential_finetune`) can
feed the same detections to the refitted tracker (`CachedDetector`) without running the detector twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress
from rich.table import Table

from perception.tracking.refit import DetectedLog, RefitConfig, write_refit
from perception.tracking.tracker import load_tracker_config
from pipelines.e2e_forecast import E2EForecastConfig, SynthSplitConfig, build_stages
from scenes.config import StrictConfig, load_config
from scenes.errors import InputError, check_output_path
from scenes.records import Boxes3D, Frame

__all__ = ["TrackingFinetuneConfig", "FrameDetections", "run_detector", "detected_logs", "external_outputs", "CachedDetector", "run_finetune_tracking"]


class TrackingFinetuneConfig(StrictConfig):
    """The detector whose outputs the tracker is refitted on, the starting tracker, and the training logs."""

    stack: E2EForecastConfig = E2EForecastConfig()
    refit: RefitConfig = RefitConfig()
    train_split: SynthSplitConfig = SynthSplitConfig(logs=8, seconds=20.0, seed=0)


@dataclass(frozen=True)
class FrameDetections:
    """One processed frame (sensors dropped) and the detector's ego-frame boxes on it."""

    frame: Frame
    detections: Boxes3D


def run_detector(stack: E2EForecastConfig, dataset: Any, *, progress: bool = True) -> dict[str, list[FrameDetections]]:
    """The stack's detector on every frame with a sweep (every frame for the oracle), with its past sweeps."""
    detector = build_stages(stack)[0]
    history = stack.past_sweeps if stack.past_sweeps is not None else detector.past_sweeps
    outputs: dict[str, list[FrameDetections]] = {}
    with Progress(disable=not progress, transient=True) as bar:
        for log_id in dataset.logs():
            frames = sorted(dataset.frames(log_id), key=lambda f: f.timestamp_ns)
            task = bar.add_task(f"detecting {log_id[:8]}", total=len(frames))
            past: list[Frame] = []
            entries: list[FrameDetections] = []
            for frame in frames:
                bar.advance(task)
                if stack.detector == "lidar" and frame.lidar is None:
                    continue
                boxes = detector.run(frame, past[-history:] if history else ())
                past = [*past, frame][-max(history, 1) :]
                entries.append(FrameDetections(replace(frame, lidar=None, cameras={}), boxes))
            bar.remove_task(task)
            outputs[log_id] = entries
    return outputs


def detected_logs(outputs: dict[str, list[FrameDetections]]) -> list[DetectedLog]:
    """The annotated frames of each log's detector outputs, as the refit reads them."""
    logs = []
    for log_id, entries in outputs.items():
        annotated = [entry for entry in entries if entry.frame.annotations is not None and entry.frame.annotations.track_id is not None]
        if not annotated:
            continue
        logs.append(
            DetectedLog(
                log_id,
                np.array([entry.frame.timestamp_ns for entry in annotated], dtype=np.int64),
                tuple(entry.frame.city_SE3_ego for entry in annotated),
                tuple(entry.detections for entry in annotated),
                tuple(entry.frame.annotations for entry in annotated if entry.frame.annotations is not None),
            )
        )
    return logs


class CachedDetector:
    """A detector stage that returns the outputs `run_detector` recorded for a frame (by log and timestamp)."""

    past_sweeps = 0

    def __init__(self, outputs: dict[str, list[FrameDetections]]) -> None:
        self._boxes = {(log_id, entry.frame.timestamp_ns): entry.detections for log_id, entries in outputs.items() for entry in entries}

    def run(self, frame: Frame, past: Sequence[Frame] = ()) -> Boxes3D:
        key = (frame.log_id, frame.timestamp_ns)
        if key not in self._boxes:
            raise InputError(f"{frame.log_id}: no recorded detections at timestamp {frame.timestamp_ns}")
        return self._boxes[key]


def summary_table(statistics: dict[str, float], title: str) -> Table:
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in statistics.items():
        table.add_row(name, f"{value:.4g}")
    return table


def refit_on_outputs(stack: E2EForecastConfig, refit: RefitConfig, outputs: dict[str, list[FrameDetections]], out_dir: Path) -> tuple[Path, list[DetectedLog]]:
    """Refits the stack's tracker on recorded detector outputs; writes `out_dir/tracker.pt`."""
    logs = detected_logs(outputs)
    if not logs:
        raise InputError(f"{out_dir}: no annotated frame with track ids among the detector's outputs: nothing to refit the tracker on")
    return write_refit(load_tracker_config(stack.tracker_config), logs, refit, out_dir), logs


def external_outputs(data: str, dataset: Any, detections: Path) -> dict[str, list[FrameDetections]]:
    """Detections made elsewhere, read as `drivestack track` reads them (`pipelines.external_detections`: a folder of
    KITTI tracking sequence files for kitti-tracking:PATH, an AV2 detection feather for av2:PATH), beside the
    dataset's frames; a frame without detections gets none."""
    from pipelines.external_detections import av2_detections, kitti_detections
    from scenes.adapters.registry import parse_spec

    name, _ = parse_spec(data)
    boxes: dict[tuple[str, int], Boxes3D] = {}
    if name == "kitti-tracking":
        from scenes.adapters.kitti_tracking import FRAME_PERIOD_NS

        by_sequence = kitti_detections(dataset, detections)
        boxes = {(sequence, index * FRAME_PERIOD_NS): b for sequence, frames in by_sequence.items() for index, b in frames.items()}
    elif name == "av2":
        boxes = av2_detections(dataset, detections)
    else:
        raise InputError(f"--data {data}: --detections reads detections of kitti-tracking:PATH or av2:PATH logs")
    outputs: dict[str, list[FrameDetections]] = {}
    for log_id in dataset.logs():
        frames = [replace(frame, lidar=None, cameras={}) for frame in dataset.frames(log_id)]
        outputs[log_id] = [FrameDetections(frame, boxes.get((log_id, frame.timestamp_ns), Boxes3D.empty())) for frame in frames]
    return outputs


def run_finetune_tracking(
    config: Path | None,
    data: str | None,
    out_dir: Path,
    *,
    detections: Path | None = None,
    options: dict[str, Any] | None = None,
    split: str | None = None,
    console: Any = None,
    skip_bad: bool = False,
) -> Path:
    """Runs the detector over the training logs (or reads `detections` made elsewhere on `data`) and refits the
    tracker on its outputs; returns `out_dir/tracker.pt`."""
    from rich.console import Console

    from pipelines.e2e_forecast import open_e2e_dataset
    from scenes.adapters.registry import open_dataset
    from scenes.training.checkpoint import load_checkpoint

    console = console or Console(stderr=True)
    check_output_path(out_dir, directory=True)
    cfg = load_config(config, TrackingFinetuneConfig) if config is not None else TrackingFinetuneConfig()
    stack = cfg.stack.model_copy(update={"synth": cfg.train_split})
    if stack.tracker != "tracker":
        raise InputError(f"{config}: stack.tracker: the refit needs the Kalman tracker ('tracker'), got {stack.tracker!r}")
    if detections is not None:
        if not detections.exists():
            raise FileNotFoundError(2, "No such file or directory", str(detections))
        if data is None or data == "synth":
            raise InputError(f"--detections {detections}: give the dataset they were made on (--data kitti-tracking:PATH or av2:PATH)")
        outputs = external_outputs(data, open_dataset(data, **(options or {})), detections)
        source = str(detections)
    else:
        outputs = run_detector(stack, open_e2e_dataset(data, split, stack, skip_bad=skip_bad))
        source = f"{stack.detector} detections"
    path, logs = refit_on_outputs(stack, cfg.refit, outputs, out_dir)
    statistics = load_checkpoint(path, "tracking").get("statistics", {})
    console.print(summary_table(statistics, f"tracker refitted on {source} of {len(logs)} log(s)"))
    console.print(f"wrote {path}", soft_wrap=True)
    return path
