"""Multi-sweep input: past sweeps motion-compensated into the current ego frame, with a time-lag channel."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scenes.records import Frame

POINT_FEATURES = ("x_m", "y_m", "z_m", "intensity", "time_lag_s")


def accumulate_sweeps(frame: Frame, past: Sequence[Frame] = (), num_sweeps: int = 1) -> np.ndarray:
    """`(N, 5)` float32 points (x, y, z, intensity, time lag s) of `frame` and its `num_sweeps - 1` latest past frames.

    Past points are mapped city-frame-through into the ego frame at `frame.timestamp_ns`
    (`ego_now_SE3_ego_past = inverse(city_SE3_ego_now) ∘ city_SE3_ego_past`), so static structure lines up and movers
    leave a trail whose length is their speed times the time lag.
    """
    if frame.lidar is None:
        raise ValueError(f"Frame.lidar: frame {frame.log_id}@{frame.timestamp_ns} has no LiDAR sweep")
    ego_now_SE3_city = frame.city_SE3_ego.inverse()
    chosen = [p for p in past if p.lidar is not None and p.timestamp_ns < frame.timestamp_ns]
    chosen = sorted(chosen, key=lambda p: p.timestamp_ns)[-(num_sweeps - 1) :] if num_sweeps > 1 else []
    parts = []
    for source in [frame, *chosen]:
        sweep = source.lidar
        assert sweep is not None
        xyz = sweep.points_xyz_m.astype(np.float64)
        if source is not frame:
            xyz = ego_now_SE3_city.compose(source.city_SE3_ego).transform_points(xyz)
        lag_s = (frame.timestamp_ns - source.timestamp_ns) * 1e-9
        block = np.empty((len(xyz), 5), dtype=np.float32)
        block[:, :3] = xyz
        block[:, 3] = sweep.intensity
        block[:, 4] = lag_s
        parts.append(block)
    return np.concatenate(parts, axis=0)
