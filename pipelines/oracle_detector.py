"""The oracle detector: ground-truth boxes of a frame, optionally degraded, as a drop-in `Detector`.

It isolates tracking and forecasting from detection errors (an upper bound with no noise) and, with noise, mimics a
detector's failure modes with known statistics: Gaussian centre, size, heading and velocity jitter (velocities exist
when the annotations carry them, as the synthetic city's do), headings flipped by pi, missed boxes, false positives
(copies of the frame's boxes at random places) and confidence scores that rank well-localised boxes first.
Annotations keep their track ids (a false box gets one of its own), so `OracleTracker` can turn them into tracks.
Every frame's noise is drawn from a generator seeded with `(seed, timestamp_ns)`, so results do not depend on the
order or the subset of frames processed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from pydantic import Field

from scenes.config import StrictConfig
from scenes.errors import InputError
from scenes.geometry import wrap_angle
from scenes.records import Boxes3D, Frame

__all__ = ["OracleDetectorConfig", "OracleDetector", "OracleTracker"]


class OracleDetectorConfig(StrictConfig):
    """Degradations applied to the ground-truth boxes."""

    center_noise_m: float = Field(0.0, ge=0, description="std of the Gaussian jitter of box centres (x and y)")
    velocity_noise_m_per_s: float = Field(0.0, ge=0, description="std of the Gaussian noise on velocities (x and y)")
    miss_rate: float = Field(0.0, ge=0, lt=1, description="probability of dropping each box")
    size_noise_fraction: float = Field(0.0, ge=0, lt=0.5, description="std of the relative Gaussian error of each box dimension")
    yaw_noise_rad: float = Field(0.0, ge=0, description="std of the Gaussian heading error")
    yaw_flip_rate: float = Field(0.0, ge=0, le=1, description="probability that a box's heading is turned by pi")
    false_positives_per_frame: float = Field(0.0, ge=0, description="mean (Poisson) number of false boxes per frame")
    false_positive_range_m: float = Field(40.0, gt=0, description="false boxes lie uniformly within this distance of the ego")
    false_positive_max_score: float = Field(0.6, gt=0, le=1, description="false boxes score uniformly in (0, this)")
    min_interior_points: int = Field(1, ge=0, description="boxes with fewer LiDAR points are invisible (when counts are known)")
    seed: int = 0


class OracleDetector:
    """`run(frame, past) -> Boxes3D` returning the frame's annotations (ego frame) with scores in (0, 1]."""

    past_sweeps = 0

    def __init__(self, cfg: OracleDetectorConfig | None = None) -> None:
        self.cfg = cfg or OracleDetectorConfig()

    def run(self, frame: Frame, past: Sequence[Frame] = ()) -> Boxes3D:
        if frame.annotations is None:
            raise InputError(f"OracleDetector: frame {frame.log_id}@{frame.timestamp_ns} has no annotations")
        boxes = frame.annotations.observed(self.cfg.min_interior_points)
        rng = np.random.default_rng([self.cfg.seed, frame.timestamp_ns])
        keep = rng.random(len(boxes)) >= self.cfg.miss_rate
        jitter = rng.normal(0.0, self.cfg.center_noise_m, size=(len(boxes), 2)) if self.cfg.center_noise_m else np.zeros((len(boxes), 2))
        center = boxes.center_m.copy()
        center[:, :2] += jitter
        # A detector's confidence falls with its localisation error: score = exp(-|error|^2 / (2 (1 m)^2)).
        score = np.exp(-0.5 * np.sum(jitter**2, axis=1)).astype(np.float32)
        velocity = boxes.velocity_m_per_s
        if velocity is not None and self.cfg.velocity_noise_m_per_s:
            velocity = velocity + rng.normal(0.0, self.cfg.velocity_noise_m_per_s, size=velocity.shape)
        size = boxes.size_lwh_m * np.clip(1.0 + rng.normal(0.0, self.cfg.size_noise_fraction, size=boxes.size_lwh_m.shape), 0.2, None)
        flipped = rng.random(len(boxes)) < self.cfg.yaw_flip_rate
        yaw = wrap_angle(boxes.yaw_rad + rng.normal(0.0, self.cfg.yaw_noise_rad, size=len(boxes)) + np.pi * flipped)
        detected = replace(boxes, center_m=center, size_lwh_m=size, yaw_rad=yaw, score=score, velocity_m_per_s=velocity).select(keep)
        false = self._false_positives(boxes, rng, frame.timestamp_ns)
        if not len(false):
            return detected
        return Boxes3D.concatenate([replace(detected, num_interior_pts=None), false])

    def _false_positives(self, boxes: Boxes3D, rng: np.random.Generator, timestamp_ns: int) -> Boxes3D:
        """Copies of random boxes of the frame (class and size) at uniform places within `false_positive_range_m`."""
        count = int(rng.poisson(self.cfg.false_positives_per_frame)) if self.cfg.false_positives_per_frame and len(boxes) else 0
        if count == 0:
            return Boxes3D.empty(frame=boxes.frame)
        source = rng.integers(0, len(boxes), size=count)
        radius = self.cfg.false_positive_range_m * np.sqrt(rng.random(count))
        angle = rng.uniform(-np.pi, np.pi, size=count)
        center = boxes.center_m[source].copy()
        center[:, 0], center[:, 1] = radius * np.cos(angle), radius * np.sin(angle)
        return Boxes3D(
            center,
            boxes.size_lwh_m[source].copy(),
            rng.uniform(-np.pi, np.pi, size=count),
            boxes.category[source].copy(),
            rng.uniform(0.0, self.cfg.false_positive_max_score, size=count).astype(np.float32),
            None if boxes.velocity_m_per_s is None else np.zeros((count, 2)),
            None if boxes.track_id is None else np.array([f"false-{timestamp_ns}-{k}" for k in range(count)]),
            frame=boxes.frame,
        )


class OracleTracker:
    """Tracking by ground-truth identity: `step(detections_city, timestamp_ns)` returns the detections as tracks.

    Needs detections that carry `track_id` (the oracle detector's); used to measure forecasting on perfect association.
    """

    def step(self, detections_city: Boxes3D, timestamp_ns: int) -> Boxes3D:
        if detections_city.track_id is None:
            raise InputError(f"OracleTracker: detections at {timestamp_ns} carry no track_id (use the oracle detector)")
        if detections_city.frame != "city":
            raise InputError(f"OracleTracker: detections at {timestamp_ns} must be in the city frame")
        return detections_city
