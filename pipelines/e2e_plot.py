"""Bird's-eye view of one frame of end-to-end forecasts over the map (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402

from scenes.geometry import bev_box_corners  # noqa: E402
from scenes.io import atomic_write  # noqa: E402
from scenes.records import Boxes3D, Forecasts, LaneGraph, Tracks  # noqa: E402

__all__ = ["plot_forecasts_bev", "busiest_timestamp"]


def busiest_timestamp(forecasts: dict[int, Forecasts]) -> int:
    """The forecast timestamp with the most agents (among ties, the one nearest the middle of the log)."""
    if not forecasts:
        raise ValueError("busiest_timestamp: no forecasts")
    stamps = sorted(forecasts)
    middle = stamps[len(stamps) // 2]
    return max(stamps, key=lambda ts: (len(forecasts[ts]), -abs(ts - middle)))


def _ground_truth_futures(ground_truth: Tracks, timestamp_ns: int, horizon_s: float = 3.0) -> dict[str, np.ndarray]:
    """City-frame xy of every GT track from `timestamp_ns` to `timestamp_ns + horizon_s`."""
    stamps = ground_truth.timestamps_ns
    window = np.flatnonzero((stamps >= timestamp_ns) & (stamps <= timestamp_ns + int(horizon_s * 1e9)))
    paths: dict[str, list[np.ndarray]] = {}
    for index in window:
        boxes = ground_truth.boxes[index]
        for track, center in zip(boxes.track_id.tolist(), boxes.center_m[:, :2], strict=True):
            paths.setdefault(track, []).append(center)
    return {track: np.array(points) for track, points in paths.items()}


def plot_forecasts_bev(
    path: str | os.PathLike[str],
    forecasts: Forecasts,
    tracked_city: Boxes3D,
    ego_xy_m: np.ndarray,
    *,
    lane_graph: LaneGraph | None = None,
    ground_truth: Tracks | None = None,
    view_radius_m: float = 60.0,
) -> Path:
    """Writes a PNG: drivable area and lanes, tracked boxes, the K forecast modes (opacity = score), GT futures."""
    figure, axes = plt.subplots(figsize=(9, 9), dpi=110)
    if lane_graph is not None:
        for area in lane_graph.drivable_areas_m:
            axes.add_patch(Polygon(area[:, :2], closed=True, facecolor="0.92", edgecolor="0.75", linewidth=0.5, zorder=0))
        for centerline in lane_graph.centerlines_m:
            axes.plot(centerline[:, 0], centerline[:, 1], color="0.7", linewidth=0.6, linestyle=":", zorder=1)
    if ground_truth is not None:
        for index, future in enumerate(_ground_truth_futures(ground_truth, forecasts.timestamp_ns).values()):
            label = "ground-truth future" if index == 0 else None
            axes.plot(future[:, 0], future[:, 1], color="tab:green", linewidth=1.4, linestyle="--", zorder=5, label=label)
    if len(tracked_city):
        corners = bev_box_corners(tracked_city.center_m[:, :2], tracked_city.size_lwh_m[:, :2], tracked_city.yaw_rad)
        for index, box in enumerate(corners):
            axes.add_patch(Polygon(box, closed=True, fill=False, edgecolor="tab:blue", linewidth=1.0, zorder=3, label="tracked box" if index == 0 else None))
    for agent in range(len(forecasts)):
        scores = forecasts.mode_scores[agent]
        for mode in np.argsort(scores):
            trajectory = np.vstack([forecasts.current_xy_m[agent], forecasts.trajectories_m[agent, mode]])
            alpha = 0.25 + 0.75 * float(scores[mode] / max(scores.max(), 1e-9))
            axes.plot(trajectory[:, 0], trajectory[:, 1], color="tab:orange", alpha=alpha, linewidth=1.2, marker=".", markersize=2.5, zorder=4)
    axes.plot([], [], color="tab:orange", label="forecast modes (opacity = score)")
    axes.scatter([ego_xy_m[0]], [ego_xy_m[1]], marker="*", s=160, color="tab:red", zorder=5, label="ego")
    axes.set_xlim(ego_xy_m[0] - view_radius_m, ego_xy_m[0] + view_radius_m)
    axes.set_ylim(ego_xy_m[1] - view_radius_m, ego_xy_m[1] + view_radius_m)
    axes.set_aspect("equal")
    axes.set_xlabel("city x (m)")
    axes.set_ylabel("city y (m)")
    axes.set_title(f"{forecasts.log_id[:8]} @ {forecasts.timestamp_ns} ns: {len(forecasts)} agents, K={forecasts.trajectories_m.shape[1]}, 3 s")
    axes.legend(loc="upper right", fontsize=8)
    axes.grid(alpha=0.2)
    target = Path(path)
    with atomic_write(target) as temporary:
        figure.savefig(temporary, format="png", bbox_inches="tight")
    plt.close(figure)
    return target
