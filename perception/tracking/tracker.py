"""AB3DMOT-style multi-object tracker: per-class association of detections to Kalman-predicted tracks.

Tracks live in the frame of the detections: "city" (ego motion removed by the log's poses) or, for a log without
poses, "ego" (the sensor frame stands for the world, as AB3DMOT tracks KITTI in camera coordinates); one run keeps
one frame. Each step: predict every track to the new timestamp, associate same-class detections (centre distance or
BEV IoU; greedy by detection score, greedy by lowest cost first as AB3DMOT, or Hungarian), update matched tracks
(pose, and the detector's velocity when used), age the others, start a tentative track per unmatched detection, drop
tracks unseen for more than `max_age` steps.
A track is confirmed after `min_hits` detections (or while the log is younger than `min_hits` frames, AB3DMOT).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from perception.tracking.associate import center_distance_cost, iou_cost, match
from perception.tracking.config import TrackerConfig, TrackingConfig
from perception.tracking.interpolate import TrackState, interpolate_track
from perception.tracking.kalman import STATE_DIM, BoxKalmanFilter
from scenes.categories import CATEGORIES
from scenes.config import ConfigError, load_config, validate_config
from scenes.geometry import wrap_angle
from scenes.records import Boxes3D, BoxFrame, Tracks
from scenes.training.checkpoint import CheckpointError, load_checkpoint

STAGE = "tracking"
# Noise and gates fitted on simulated ground-truth tracks by `drivestack train tracking --config
# configs/tracking/ab3dmot.yaml`; `benchmarks/quality_detection.py` gives its scores.
SHIPPED_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "ab3dmot_synth.pt"
# For detections made elsewhere (`drivestack track`): refitted on noisier synthetic detections than the shipped
# detector's by `drivestack finetune tracking --config configs/tracking/refit_noisy_synth.yaml`; see
# `benchmarks/quality_tracking.py`.
EXTERNAL_DETECTIONS_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "ab3dmot_robust.pt"


def load_tracker_config(path: str | os.PathLike[str] | None = None) -> TrackerConfig:
    """The tracker config of a checkpoint (`.pt`, from `drivestack train tracking`) or of a configs/tracking YAML
    (its `tracker` section); None: the shipped checkpoint's."""
    if path is None:
        path = SHIPPED_CHECKPOINT
    if Path(path).suffix == ".pt":
        return Tracker.from_checkpoint(path).cfg
    return load_config(path, TrackingConfig).tracker


class Tracker:
    """Online tracker (`step`) with an offline whole-log mode (`run`: back-filling and gap interpolation)."""

    def __init__(self, cfg: TrackerConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else TrackerConfig()
        self.filter = BoxKalmanFilter(self.cfg.motion_model, self.cfg.noise)
        self._gates = np.array([self.cfg.gate_m(name) for name in CATEGORIES])
        self.reset()

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str]) -> Tracker:
        """A tracker with the config fitted by `perception.tracking.train.fit`."""
        payload = load_checkpoint(path, STAGE)
        try:
            return cls(validate_config(payload["config"], TrackerConfig, f"{path}:config"))
        except ConfigError as error:
            raise CheckpointError(str(error)) from None

    def reset(self) -> None:
        self.ids: list[str] = []
        self.category = np.zeros(0, dtype=np.int64)
        self.state = np.zeros((0, STATE_DIM))
        self.covariance = np.zeros((0, STATE_DIM, STATE_DIM))
        self.hits = np.zeros(0, dtype=np.int64)
        self.misses = np.zeros(0, dtype=np.int64)
        self.score = np.zeros(0)
        self.frame_count = 0
        self.frame: BoxFrame | None = None
        self.last_timestamp_ns: int | None = None
        self._next_id = 0

    def __len__(self) -> int:
        return len(self.ids)

    def _keep(self, mask: npt.NDArray[np.bool_]) -> None:
        self.ids = [track_id for track_id, keep in zip(self.ids, mask, strict=True) if keep]
        self.category = self.category[mask]
        self.state = self.state[mask]
        self.covariance = self.covariance[mask]
        self.hits = self.hits[mask]
        self.misses = self.misses[mask]
        self.score = self.score[mask]

    def _measurements(self, detections: Boxes3D) -> tuple[np.ndarray, np.ndarray | None]:
        pose = np.column_stack([detections.center_m, detections.yaw_rad, detections.size_lwh_m])
        with_velocity = self.cfg.use_detection_velocity and detections.velocity_m_per_s is not None
        return pose, (detections.velocity_m_per_s if with_velocity else None)

    def step(self, detections: Boxes3D, timestamp_ns: int) -> Boxes3D:
        """Advances to `timestamp_ns` with detections in the run's frame (that of the first step's detections);
        returns the confirmed tracks updated now (same frame, `track_id`, filtered pose, velocity, the matched
        detection's score)."""
        if self.frame is not None and detections.frame != self.frame:
            raise ValueError(f"Tracker.step: detections in the {detections.frame!r} frame, earlier ones in the {self.frame!r} frame")
        self.frame = detections.frame
        if self.last_timestamp_ns is not None and timestamp_ns <= self.last_timestamp_ns:
            raise ValueError(f"Tracker.step: timestamp {timestamp_ns} is not after the previous {self.last_timestamp_ns}")
        dt = 0.0 if self.last_timestamp_ns is None else (timestamp_ns - self.last_timestamp_ns) * 1e-9
        self.last_timestamp_ns = timestamp_ns
        self.frame_count += 1
        scores = detections.score
        assert scores is not None  # Boxes3D fills a missing score with ones
        kept = scores >= self.cfg.min_score
        detections, detection_scores = detections.select(kept), scores[kept]
        self.state, self.covariance = self.filter.predict(self.state, self.covariance, dt)

        if self.cfg.metric == "center":
            cost = center_distance_cost(
                self.state[:, :2], self.category, detections.center_m[:, :2], detections.category, self._gates[detections.category]
            )
        else:
            cost = iou_cost(
                self.state[:, :3], self.state[:, 4:7], self.state[:, 3], self.category,
                detections.center_m, detections.size_lwh_m, detections.yaw_rad, detections.category, self.cfg.min_iou,
            )  # fmt: skip
        by_score = self.cfg.matcher == "greedy" and self.cfg.greedy_order == "score"
        assignment = match(cost, self.cfg.matcher, np.argsort(-detection_scores, kind="stable") if by_score else None)
        pose, velocity = self._measurements(detections)
        tracks, dets = assignment.matches[:, 0], assignment.matches[:, 1]
        measurement = pose[dets] if velocity is None else np.concatenate([pose[dets], velocity[dets]], axis=1)
        self.state[tracks], self.covariance[tracks] = self.filter.update(
            self.state[tracks], self.covariance[tracks], measurement, velocity is not None
        )
        self.hits[tracks] += 1
        self.misses += 1
        self.misses[tracks] = 0
        self.score[tracks] = detection_scores[dets]

        new = assignment.unmatched_detections
        if len(new):
            new_state, new_covariance = self.filter.initial_state(pose[new], None if velocity is None else velocity[new])
            self.ids.extend(str(self._next_id + k) for k in range(len(new)))
            self._next_id += len(new)
            self.category = np.concatenate([self.category, detections.category[new]])
            self.state = np.concatenate([self.state, new_state])
            self.covariance = np.concatenate([self.covariance, new_covariance])
            self.hits = np.concatenate([self.hits, np.ones(len(new), dtype=np.int64)])
            self.misses = np.concatenate([self.misses, np.zeros(len(new), dtype=np.int64)])
            self.score = np.concatenate([self.score, detection_scores[new].astype(np.float64)])
        self._keep(self.misses <= self.cfg.max_age)
        return self._output(self.misses == 0, confirmed_only=True)

    def confirmed(self) -> npt.NDArray[np.bool_]:
        return (self.hits >= self.cfg.min_hits) | (self.frame_count <= self.cfg.min_hits)

    def _output(self, mask: npt.NDArray[np.bool_], confirmed_only: bool) -> Boxes3D:
        if confirmed_only:
            mask = mask & self.confirmed()
        index = np.flatnonzero(mask)
        state = self.state[index]
        velocity = self.filter.velocity_xy(state)
        return Boxes3D(
            state[:, :3],
            np.maximum(state[:, 4:7], 1e-3),
            self._reported_yaw(state[:, 3], velocity),
            self.category[index],
            self.score[index].astype(np.float32),
            velocity,
            np.array([self.ids[i] for i in index], dtype=str),
            frame=self.frame or "city",
        )

    def _reported_yaw(self, yaw_rad: np.ndarray, velocity_xy: np.ndarray) -> np.ndarray:
        """`yaw_rad`, turned by pi where the track moves faster than the configured speed against its heading."""
        min_speed = self.cfg.heading_from_motion_min_speed_m_per_s
        if min_speed is None:
            return yaw_rad
        speed = np.linalg.norm(velocity_xy, axis=1)
        backwards = (speed > min_speed) & (velocity_xy[:, 0] * np.cos(yaw_rad) + velocity_xy[:, 1] * np.sin(yaw_rad) < 0)
        return np.where(backwards, wrap_angle(yaw_rad + np.pi), yaw_rad)

    def run(self, log_id: str, detections: Sequence[Boxes3D], timestamps_ns: npt.ArrayLike) -> Tracks:
        """Tracks of a whole log: every frame stepped in order, then (offline) tentative frames of tracks that got
        confirmed are kept and gaps of at most `max_age` frames are linearly interpolated."""
        stamps = np.asarray(timestamps_ns, dtype=np.int64)
        if len(stamps) != len(detections):
            raise ValueError(f"Tracker.run: {len(detections)} detection frames but {len(stamps)} timestamps")
        self.reset()
        observed: dict[str, dict[int, TrackState]] = {}
        confirmed: set[str] = set()
        for frame, (boxes, stamp) in enumerate(zip(detections, stamps, strict=True)):
            self.step(boxes, int(stamp))
            updated = self._output(self.misses == 0, confirmed_only=not self.cfg.backfill_tentative)
            # `_output` always gives track ids, velocities and scores.
            assert updated.track_id is not None and updated.velocity_m_per_s is not None and updated.score is not None
            for k, track_id in enumerate(updated.track_id):
                observed.setdefault(str(track_id), {})[frame] = TrackState(
                    updated.center_m[k], updated.size_lwh_m[k], float(updated.yaw_rad[k]),
                    updated.velocity_m_per_s[k], int(updated.category[k]), float(updated.score[k]),
                )  # fmt: skip
            confirmed.update(self.ids[i] for i in np.flatnonzero(self.confirmed() & (self.misses == 0)))
        rows: list[list[tuple[str, TrackState]]] = [[] for _ in stamps]
        for track_id, states in observed.items():
            if track_id not in confirmed:
                continue
            if self.cfg.interpolate_gaps:
                states = {**states, **interpolate_track(states, stamps, self.cfg.max_age)}
            for frame, state in states.items():
                rows[frame].append((track_id, state))
        box_frame: BoxFrame = self.frame or "city"
        return Tracks(log_id, stamps, tuple(_boxes(frame_rows, box_frame) for frame_rows in rows))


def _boxes(rows: list[tuple[str, TrackState]], frame: BoxFrame) -> Boxes3D:
    if not rows:
        return Boxes3D.empty(frame=frame, with_tracks=True)
    return Boxes3D(
        np.array([s.center_m for _, s in rows]),
        np.array([s.size_lwh_m for _, s in rows]),
        np.array([s.yaw_rad for _, s in rows]),
        np.array([s.category for _, s in rows], dtype=np.int64),
        np.array([s.score for _, s in rows], dtype=np.float32),
        np.array([s.velocity_m_per_s for _, s in rows]),
        np.array([track_id for track_id, _ in rows], dtype=str),
        frame=frame,
    )
