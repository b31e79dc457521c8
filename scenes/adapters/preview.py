"""What `drivestack inspect` shows: a rich summary table of a dataset and a bird's-eye-view PNG of one frame."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Final

import numpy as np
from rich.table import Table

from scenes.adapters.base import AdapterError, Dataset, DatasetSummary, skip_or_raise
from scenes.geometry import bev_box_corners
from scenes.io import atomic_write
from scenes.records import Frame, LaneGraph

BEV_RANGE_M: Final = 60.0
MAX_PLOTTED_POINTS: Final = 60_000
MAX_LISTED_CATEGORIES: Final = 12


def _format_time(timestamp_ns: int | None) -> str:
    if timestamp_ns is None:
        return "-"
    seconds = timestamp_ns / 1e9
    if 946_684_800 <= seconds <= 4_102_444_800:  # a wall-clock time between 2000 and 2100
        stamp = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
        return f"{timestamp_ns} ({stamp:%Y-%m-%d %H:%M:%S} UTC)"
    return str(timestamp_ns)


def summary_table(summary: DatasetSummary) -> Table:
    """A two-column rich table of the summary."""
    table = Table(title=f"{summary.name}: {summary.root}", show_header=True, header_style="bold")
    table.add_column("field", style="cyan", no_wrap=True)
    table.add_column("value")
    table.add_row("logs", str(summary.num_logs))
    table.add_row("frames", str(summary.num_frames))
    table.add_row("sensors", ", ".join(summary.sensors) or "-")
    categories = list(summary.category_counts.items())
    listed = ", ".join(f"{name} {count}" for name, count in categories[:MAX_LISTED_CATEGORIES])
    if len(categories) > MAX_LISTED_CATEGORIES:
        listed += f", ... ({len(categories) - MAX_LISTED_CATEGORIES} more)"
    table.add_row("categories", listed or "-")
    table.add_row("first timestamp", _format_time(summary.start_timestamp_ns))
    table.add_row("last timestamp", _format_time(summary.end_timestamp_ns))
    duration = summary.duration_s
    table.add_row("time span", "-" if np.isnan(duration) else f"{duration:.2f} s")
    for note in summary.notes:
        table.add_row("note", note)
    return table


def preview_frame(dataset: Dataset) -> tuple[Frame, LaneGraph | None]:
    """The first frame with LiDAR (else the first frame) of the first log that has frames, with its lane graph."""
    for log_id in dataset.logs():
        first: Frame | None = None
        try:
            for frame in dataset.frames(log_id):
                if frame.lidar is not None:
                    return frame, dataset.lane_graph(log_id)
                first = first or frame
        except AdapterError as error:
            skip_or_raise(error, dataset.skip_bad, f"log {log_id}")
            continue
        if first is not None:
            return first, dataset.lane_graph(log_id)
    raise AdapterError(dataset.root, "no frame to preview")


def write_bev_preview(frame: Frame, lane_graph: LaneGraph | None, path: Path, range_m: float = BEV_RANGE_M) -> Path:
    """Draws LiDAR (coloured by height), boxes (with heading ticks) and lane centerlines around the ego; PNG, atomic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 8), dpi=110)
    if lane_graph is not None and len(lane_graph):
        ego_SE3_city = frame.city_SE3_ego.inverse()
        lanes = ego_SE3_city.transform_points(lane_graph.centerlines_m.reshape(-1, 3)).reshape(lane_graph.centerlines_m.shape)
        near = np.abs(lanes[:, :, :2]).max(axis=(1, 2)) < 2 * range_m
        for lane in lanes[near]:
            axes.plot(lane[:, 0], lane[:, 1], color="0.6", linewidth=0.8, zorder=1)
    if frame.lidar is not None and len(frame.lidar):
        points = frame.lidar.points_xyz_m
        inside = np.flatnonzero((np.abs(points[:, 0]) < range_m) & (np.abs(points[:, 1]) < range_m))
        if len(inside) > MAX_PLOTTED_POINTS:
            inside = inside[:: len(inside) // MAX_PLOTTED_POINTS + 1]
        heights = points[inside, 2]
        low, high = np.percentile(heights, [2, 98]) if len(inside) else (0.0, 1.0)
        scatter = axes.scatter(points[inside, 0], points[inside, 1], c=heights, s=0.3, cmap="viridis", vmin=low, vmax=high, zorder=2)
        figure.colorbar(scatter, ax=axes, fraction=0.04, label="z (m, ego frame)")
    if frame.annotations is not None and len(frame.annotations):
        boxes = frame.annotations
        corners = bev_box_corners(boxes.center_m[:, :2], boxes.size_lwh_m[:, :2], boxes.yaw_rad)
        for box_corners, center, yaw in zip(corners, boxes.center_m, boxes.yaw_rad, strict=True):
            loop = np.vstack([box_corners, box_corners[:1]])
            axes.plot(loop[:, 0], loop[:, 1], color="tab:red", linewidth=0.9, zorder=3)
            front = center[:2] + 0.5 * np.array([np.cos(yaw), np.sin(yaw)]) * 2.0
            axes.plot([center[0], front[0]], [center[1], front[1]], color="tab:red", linewidth=0.9, zorder=3)
        axes.plot([], [], color="tab:red", label=f"{len(boxes)} boxes")
    axes.plot([0.0], [0.0], marker="^", color="black", markersize=8, linestyle="none", label="ego", zorder=4)
    axes.set_xlim(-range_m, range_m)
    axes.set_ylim(-range_m, range_m)
    axes.set_aspect("equal")
    axes.set_xlabel("x (m, ego frame, forward)")
    axes.set_ylabel("y (m, ego frame, left)")
    axes.set_title(f"{frame.log_id}\n{frame.timestamp_ns} ns")
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    with atomic_write(path) as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)
    return Path(path)
