"""`fit(cfg, dataset, out_dir) -> checkpoint`: the tracker's noise and gates estimated from ground-truth tracks.

From every ground-truth track (city frame, consecutive frames of one log):
- process noise: the standard deviation of the finite-difference acceleration (horizontal, vertical) and yaw rate;
- association gates per class: the 99th percentile of the distance an object moves between two frames, so that a
  track whose velocity is still unknown (or wrong) can reach its next detection; never below the configured gate.
The checkpoint is one file (empty state dict, fitted config, drivestack version, the statistics), loadable with
`Tracker.from_checkpoint`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress

from perception.tracking.config import TrackerConfig, TrackingConfig
from scenes import __version__
from scenes.adapters.base import Dataset
from scenes.categories import CATEGORIES
from scenes.geometry import wrap_angle
from scenes.io import atomic_write
from scenes.records import Tracks

CheckpointCallback = Callable[[dict[str, float], Path | None], None]
FINAL = "tracker.pt"


def ground_truth_tracks(cfg: TrackingConfig, dataset: Dataset | Sequence[Tracks] | str) -> list[Tracks]:
    """City-frame ground-truth tracks of `dataset` ("synth" simulates `cfg.synth` logs)."""
    if isinstance(dataset, str):
        if dataset != "synth":
            raise ValueError(f"unknown dataset {dataset!r}: pass 'synth', a Dataset or a list of Tracks")
        from scenes.synth.world import SynthConfig, simulate_log

        synth = SynthConfig(seconds=cfg.synth.seconds, lidar_beams=None, cameras=())
        return [simulate_log(synth, cfg.synth.seed, index).ground_truth_tracks() for index in range(cfg.synth.num_logs)]
    if not isinstance(dataset, Dataset):
        return list(dataset)
    logs = []
    for log_id in dataset.logs():
        frames = [frame for frame in dataset.frames(log_id) if frame.annotations is not None and frame.annotations.track_id is not None]
        if frames:
            boxes = tuple(frame.annotations.transformed(frame.city_SE3_ego, "city") for frame in frames)  # type: ignore[union-attr]
            logs.append(Tracks(log_id, np.array([frame.timestamp_ns for frame in frames], dtype=np.int64), boxes))
    return logs


def motion_statistics(logs: Sequence[Tracks]) -> dict[str, Any]:
    """Per-class one-frame displacements and pooled acceleration / yaw-rate samples of the ground-truth tracks."""
    displacement: dict[int, list[float]] = {}
    acceleration_xy: list[float] = []
    acceleration_z: list[float] = []
    yaw_rate: list[float] = []
    for log in logs:
        series: dict[str, list[tuple[int, np.ndarray, float, int]]] = {}
        for stamp, boxes in zip(log.timestamps_ns, log.boxes):
            for k, track_id in enumerate(boxes.track_id):  # type: ignore[arg-type]
                series.setdefault(str(track_id), []).append((int(stamp), boxes.center_m[k], float(boxes.yaw_rad[k]), int(boxes.category[k])))
        for states in series.values():
            if len(states) < 3:
                continue
            t = np.array([s[0] for s in states]) * 1e-9
            xyz = np.array([s[1] for s in states])
            yaw = np.array([s[2] for s in states])
            dt = np.diff(t)
            step = np.diff(xyz, axis=0)
            displacement.setdefault(states[0][3], []).extend(np.linalg.norm(step[:, :2], axis=1).tolist())
            velocity = step / dt[:, None]
            dt_mid = 0.5 * (dt[1:] + dt[:-1])
            acceleration = np.diff(velocity, axis=0) / dt_mid[:, None]
            acceleration_xy.extend(acceleration[:, :2].reshape(-1).tolist())
            acceleration_z.extend(acceleration[:, 2].tolist())
            yaw_rate.extend((wrap_angle(np.diff(yaw)) / dt).tolist())
    return {"displacement": displacement, "acceleration_xy": acceleration_xy, "acceleration_z": acceleration_z, "yaw_rate": yaw_rate}


def fitted_config(cfg: TrackingConfig, statistics: dict[str, Any]) -> tuple[TrackerConfig, dict[str, float]]:
    """The tracker config with noise and gates replaced by the measured values (and the values, for the record)."""
    tracker = cfg.tracker
    summary: dict[str, float] = {}
    noise_update: dict[str, float] = {}
    for key, field_name in (("acceleration_xy", "acceleration_m_per_s2"), ("acceleration_z", "vertical_acceleration_m_per_s2"), ("yaw_rate", "yaw_rate_rad_per_s")):
        values = np.asarray(statistics[key])
        if len(values) >= cfg.min_track_samples:
            noise_update[field_name] = max(float(np.std(values)), 1e-3)
            summary[field_name] = noise_update[field_name]
    gates = dict(tracker.class_distance_gate_m)
    for category, values in statistics["displacement"].items():
        if len(values) >= cfg.min_track_samples:
            name = CATEGORIES[category]
            gates[name] = max(tracker.gate_m(name), float(np.percentile(values, cfg.gate_percentile)))
            summary[f"gate_m/{name}"] = gates[name]
    noise = tracker.noise.model_copy(update=noise_update)
    return tracker.model_copy(update={"noise": noise, "class_distance_gate_m": gates}), summary


def fit(
    cfg: TrackingConfig,
    dataset: Dataset | Sequence[Tracks] | str,
    out_dir: Path,
    *,
    on_checkpoint: CheckpointCallback | None = None,
    show_progress: bool = True,
) -> Path:
    """Measures the statistics, writes `out_dir/tracker.pt` and reports them once (a single 'epoch')."""
    with Progress(disable=not show_progress) as progress:
        task = progress.add_task("tracker statistics", total=None)
        logs = ground_truth_tracks(cfg, dataset)
        statistics = motion_statistics(logs)
        progress.update(task, total=1, completed=1)
    tracker_cfg, summary = fitted_config(cfg, statistics)
    path = Path(out_dir) / FINAL
    payload = {"state_dict": {}, "config": tracker_cfg.model_dump(mode="json"), "drivestack_version": __version__, "statistics": summary}
    with atomic_write(path) as temporary:
        torch.save(payload, temporary)
    if on_checkpoint is not None:
        on_checkpoint({"epoch": 0.0, **summary}, path)
    return path
