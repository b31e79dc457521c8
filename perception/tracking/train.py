"""`fit(cfg, dataset, out_dir) -> checkpoint`: the tracker's noise and gates estimated from ground-truth tracks.

From every ground-truth track (city frame, consecutive frames of one log):
- process noise: the standard deviation of the finite-difference acceleration (horizontal, vertical) and yaw rate;
- association gates per class: the 99th percentile of the distance an object moves between two frames, so that a
  track whose velocity is still unknown (or wrong) can reach its next detection; never below the configured gate.
The checkpoint is one file (empty state dict, fitted config, drivestack version, the statistics), loadable with
`Tracker.from_checkpoint`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from perception.tracking.config import TrackerConfig, TrackingConfig
from perception.tracking.tracker import STAGE
from scenes.adapters.base import Dataset
from scenes.categories import CATEGORIES
from scenes.geometry import wrap_angle
from scenes.records import Boxes3D, Tracks
from scenes.training.harness import EstimationTask, estimate

FINAL: Final = "tracker.pt"


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
        stamps: list[int] = []
        boxes: list[Boxes3D] = []
        for frame in dataset.frames(log_id):
            if frame.annotations is not None and frame.annotations.track_id is not None:
                stamps.append(frame.timestamp_ns)
                boxes.append(frame.annotations.transformed(frame.city_SE3_ego, "city"))
        if boxes:
            logs.append(Tracks(log_id, np.array(stamps, dtype=np.int64), tuple(boxes)))
    return logs


def motion_statistics(logs: Sequence[Tracks]) -> dict[str, Any]:
    """Per-class one-frame displacements and pooled acceleration / yaw-rate samples of the ground-truth tracks."""
    displacement: dict[int, list[float]] = {}
    acceleration_xy: list[float] = []
    acceleration_z: list[float] = []
    yaw_rate: list[float] = []
    for log in logs:
        series: dict[str, list[tuple[int, np.ndarray, float, int]]] = {}
        for stamp, boxes in zip(log.timestamps_ns, log.boxes, strict=True):
            assert boxes.track_id is not None  # Tracks requires track ids
            for k, track_id in enumerate(boxes.track_id):
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
    noise_fields = (
        ("acceleration_xy", "acceleration_m_per_s2"),
        ("acceleration_z", "vertical_acceleration_m_per_s2"),
        ("yaw_rate", "yaw_rate_rad_per_s"),
    )
    for key, field_name in noise_fields:
        values = np.asarray(statistics[key])
        if len(values) >= cfg.min_track_samples:
            noise_update[field_name] = max(float(np.std(values)), 1e-3)
            summary[field_name] = noise_update[field_name]
    gates = percentile_gates(tracker, tracker.class_distance_gate_m, statistics["displacement"], cfg.gate_percentile, cfg.min_track_samples, summary)
    noise = tracker.noise.model_copy(update=noise_update)
    return tracker.model_copy(update={"noise": noise, "class_distance_gate_m": gates}), summary


def percentile_gates(
    tracker: TrackerConfig,
    gates_m: dict[str, float],
    distances_m: dict[int, list[float]],
    percentile: float,
    min_samples: int,
    summary: dict[str, float],
) -> dict[str, float]:
    """`gates_m` with the classes that have `min_samples` distances set to their `percentile`, never below `tracker`'s
    gate for the class; the new gates are also recorded in `summary`."""
    gates = dict(gates_m)
    for category, values in distances_m.items():
        if len(values) >= min_samples:
            name = CATEGORIES[category]
            gates[name] = max(tracker.gate_m(name), float(np.percentile(values, percentile)))
            summary[f"gate_m/{name}"] = gates[name]
    return gates


class TrackingFitTask(EstimationTask):
    """The tracker fit on the harness: statistics of ground-truth tracks, no weights."""

    stage = STAGE
    final_name = FINAL

    def __init__(self, cfg: TrackingConfig, dataset: Dataset | Sequence[Tracks] | str) -> None:
        self.cfg = cfg
        self.dataset = dataset

    def estimate(self) -> tuple[dict[str, torch.Tensor], TrackerConfig, dict[str, float]]:
        tracker_cfg, summary = fitted_config(self.cfg, motion_statistics(ground_truth_tracks(self.cfg, self.dataset)))
        return {}, tracker_cfg, summary


def fit(cfg: TrackingConfig, dataset: Dataset | Sequence[Tracks] | str, out_dir: Path, *, show_progress: bool = True) -> Path:
    """Measures the statistics and writes `out_dir/tracker.pt` (and `metrics.json`) with the harness."""
    return estimate(TrackingFitTask(cfg, dataset), out_dir, show_progress=show_progress)
