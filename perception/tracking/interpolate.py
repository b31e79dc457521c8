"""Linear interpolation of track gaps: a track missed for a few frames between two observations gets the
linearly interpolated box (centre, size, velocity; yaw along the shortest arc) at every skipped timestamp."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scenes.geometry import wrap_angle


@dataclass(frozen=True)
class TrackState:
    """One observed box of a track, city frame."""

    center_m: np.ndarray
    size_lwh_m: np.ndarray
    yaw_rad: float
    velocity_m_per_s: np.ndarray
    category: int
    score: float


def interpolate_track(
    observed: dict[int, TrackState], timestamps_ns: np.ndarray, max_gap_frames: int
) -> dict[int, TrackState]:
    """States at the frames skipped between consecutive observations (at most `max_gap_frames` in a row),
    interpolated linearly in time; the returned dict holds only the new frames."""
    frames = sorted(observed)
    filled: dict[int, TrackState] = {}
    for before, after in zip(frames[:-1], frames[1:], strict=True):
        gap = after - before - 1
        if gap <= 0 or gap > max_gap_frames:
            continue
        a, b = observed[before], observed[after]
        t0, t1 = float(timestamps_ns[before]), float(timestamps_ns[after])
        for frame in range(before + 1, after):
            w = (float(timestamps_ns[frame]) - t0) / (t1 - t0)
            filled[frame] = TrackState(
                center_m=(1 - w) * a.center_m + w * b.center_m,
                size_lwh_m=(1 - w) * a.size_lwh_m + w * b.size_lwh_m,
                yaw_rad=float(wrap_angle(a.yaw_rad + w * wrap_angle(b.yaw_rad - a.yaw_rad))),
                velocity_m_per_s=(1 - w) * a.velocity_m_per_s + w * b.velocity_m_per_s,
                category=a.category,
                score=min(a.score, b.score),
            )
    return filled
