"""The tracker refitted on a detector's outputs (Valeo4Cast's sequential finetuning between detection and tracking).

`train tracking` fits the motion model on ground-truth tracks, which says nothing of the detector the tracker will be
fed. Here every annotated frame's detections are matched to its ground truth (the boxes with LiDAR points, where
counted; same class, Hungarian on the BEV centre distance, at most `match_distance_m`), and:
- measurement noise (horizontal position, heading, size, velocity) = the robust standard deviation (1.4826 x the median absolute
  deviation) of the matched detections' errors, the heading error taken modulo pi as the filter flips headings;
- per-class association gates = the `gate_percentile` percentile of the distance between the detections matched to
  one ground-truth object in consecutive frames (city frame): how far a new track's next detection can be, object
  motion and both detections' errors together; never below the configured gate;
- process noise: from the ground-truth tracks' motion, as `train tracking` (`perception.tracking.train`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final

import numpy as np
import torch
from pydantic import Field
from scipy.optimize import linear_sum_assignment

from perception.tracking.config import TrackerConfig, TrackingConfig
from perception.tracking.tracker import STAGE
from perception.tracking.train import FINAL, fitted_config, motion_statistics, percentile_gates
from scenes.config import StrictConfig
from scenes.geometry import SE3, wrap_angle
from scenes.records import Boxes3D, Tracks
from scenes.training.harness import EstimationTask, estimate

MAD_TO_STD: Final = 1.4826


@dataclass(frozen=True)
class DetectedLog:
    """A detector's outputs on one log beside its ground truth: per frame, both in the ego frame, and the pose."""

    log_id: str
    timestamps_ns: np.ndarray
    city_SE3_ego: tuple[SE3, ...]
    detections: tuple[Boxes3D, ...]
    annotations: tuple[Boxes3D, ...]

    def __post_init__(self) -> None:
        counts = {len(self.timestamps_ns), len(self.city_SE3_ego), len(self.detections), len(self.annotations)}
        if len(counts) != 1:
            raise ValueError(f"DetectedLog {self.log_id}: timestamps, poses, detections and annotations differ in length")
        if any(boxes.track_id is None for boxes in self.annotations):
            raise ValueError(f"DetectedLog {self.log_id}: annotations need track ids")


class RefitConfig(StrictConfig):
    """How detections are matched to ground truth and how the gates are read off the matches."""

    match_distance_m: Annotated[float, Field(gt=0)] = 2.0
    gate_percentile: Annotated[float, Field(gt=0, le=100)] = 99.0
    min_samples: Annotated[int, Field(ge=1)] = 20


def match_to_ground_truth(detections: Boxes3D, annotations: Boxes3D, max_distance_m: float) -> np.ndarray:
    """`(M, 2)` (detection, annotation) index pairs: same class, BEV centre distance at most `max_distance_m`,
    minimum total distance (Hungarian)."""
    if not len(detections) or not len(annotations):
        return np.zeros((0, 2), dtype=np.int64)
    distance = np.linalg.norm(detections.center_m[:, None, :2] - annotations.center_m[None, :, :2], axis=2)
    allowed = (detections.category[:, None] == annotations.category[None, :]) & (distance <= max_distance_m)
    rows, cols = linear_sum_assignment(np.where(allowed, distance, 1e6))
    keep = allowed[rows, cols]
    return np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)


def robust_std(values: np.ndarray) -> float:
    """1.4826 x the median absolute deviation: the standard deviation of the Gaussian core, blind to outliers."""
    return float(MAD_TO_STD * np.median(np.abs(values - np.median(values))))


@dataclass
class _Errors:
    position: list[np.ndarray]
    yaw: list[np.ndarray]
    size: list[np.ndarray]
    velocity: list[np.ndarray]
    flips: int = 0
    matched: int = 0
    detections: int = 0
    annotations: int = 0


ErrorSamples = dict[str, np.ndarray]


def detection_statistics(logs: Sequence[DetectedLog], cfg: RefitConfig, min_score: float) -> tuple[ErrorSamples, dict[int, list[float]], dict[str, float]]:
    """Matched-detection errors (pooled arrays), per-class consecutive-detection distances and counts."""
    errors = _Errors([], [], [], [])
    steps: dict[int, list[float]] = {}
    for log in logs:
        previous: dict[str, np.ndarray] = {}
        for pose, detected, truth in zip(log.city_SE3_ego, log.detections, log.annotations, strict=True):
            assert detected.score is not None  # Boxes3D fills a missing score
            detected = detected.select(detected.score >= min_score)
            truth = truth.observed()  # a box without LiDAR points cannot be detected
            pairs = match_to_ground_truth(detected, truth, cfg.match_distance_m)
            errors.detections += len(detected)
            errors.annotations += len(truth)
            errors.matched += len(pairs)
            d, a = detected.select(pairs[:, 0]), truth.select(pairs[:, 1])
            errors.position.append((d.center_m - a.center_m)[:, :2].reshape(-1))
            heading = wrap_angle(d.yaw_rad - a.yaw_rad)
            errors.flips += int(np.sum(np.abs(heading) > np.pi / 2))
            errors.yaw.append(wrap_angle(2.0 * heading) / 2.0)
            errors.size.append((d.size_lwh_m - a.size_lwh_m).reshape(-1))
            if d.velocity_m_per_s is not None and a.velocity_m_per_s is not None:
                errors.velocity.append((d.velocity_m_per_s - a.velocity_m_per_s).reshape(-1))
            assert a.track_id is not None
            current: dict[str, np.ndarray] = {}
            for track_id, category, center in zip(a.track_id.tolist(), a.category.tolist(), pose.transform_points(d.center_m), strict=True):
                if track_id in previous:
                    steps.setdefault(int(category), []).append(float(np.linalg.norm(center[:2] - previous[track_id][:2])))
                current[track_id] = center
            previous = current
    parts = {"position": errors.position, "yaw": errors.yaw, "size": errors.size, "velocity": errors.velocity}
    pooled = {name: np.concatenate(values) if values else np.zeros(0) for name, values in parts.items()}
    counts = {
        "matched": float(errors.matched),
        "recall": errors.matched / max(1, errors.annotations),
        "precision": errors.matched / max(1, errors.detections),
        "flip_rate": errors.flips / max(1, errors.matched),
    }
    return pooled, steps, counts


def refit_tracker(tracker: TrackerConfig, logs: Sequence[DetectedLog], cfg: RefitConfig) -> tuple[TrackerConfig, dict[str, float]]:
    """`tracker` with process noise from the ground-truth motion and measurement noise and gates from the matched
    detections of `logs` (each estimate needs `cfg.min_samples` values, else the configured value stays)."""
    gt_tracks = [
        Tracks(log.log_id, log.timestamps_ns, tuple(a.transformed(pose, "city") for a, pose in zip(log.annotations, log.city_SE3_ego, strict=True)))
        for log in logs
    ]
    motion_cfg = TrackingConfig(tracker=tracker, gate_percentile=cfg.gate_percentile, min_track_samples=cfg.min_samples)
    fitted, summary = fitted_config(motion_cfg, motion_statistics(gt_tracks))
    pooled, steps, counts = detection_statistics(logs, cfg, tracker.min_score)
    summary.update(counts)
    noise_update: dict[str, float] = {}
    for key, field_name in (("position", "position_m"), ("yaw", "yaw_rad"), ("size", "measured_size_m"), ("velocity", "velocity_m_per_s")):
        if len(pooled[key]) >= cfg.min_samples:
            noise_update[field_name] = max(robust_std(pooled[key]), 1e-3)
            summary[f"measurement/{field_name}"] = noise_update[field_name]
    gates = percentile_gates(tracker, fitted.class_distance_gate_m, steps, cfg.gate_percentile, cfg.min_samples, summary)
    noise = fitted.noise.model_copy(update=noise_update)
    return fitted.model_copy(update={"noise": noise, "class_distance_gate_m": gates}), summary


class TrackerRefitTask(EstimationTask):
    """The refit on the harness: a tracker checkpoint (`Tracker.from_checkpoint`) and its statistics."""

    stage = STAGE
    final_name = FINAL

    def __init__(self, tracker: TrackerConfig, logs: Sequence[DetectedLog], cfg: RefitConfig) -> None:
        self.tracker, self.logs, self.cfg = tracker, logs, cfg

    def estimate(self) -> tuple[dict[str, torch.Tensor], TrackerConfig, dict[str, float]]:
        config, summary = refit_tracker(self.tracker, self.logs, self.cfg)
        return {}, config, summary


def write_refit(tracker: TrackerConfig, logs: Sequence[DetectedLog], cfg: RefitConfig, out_dir: Path, *, show_progress: bool = True) -> Path:
    """Refits and writes `out_dir/tracker.pt` (and `metrics.json`)."""
    return estimate(TrackerRefitTask(tracker, logs, cfg), out_dir, show_progress=show_progress)
