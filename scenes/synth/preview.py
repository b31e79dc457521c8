"""A PNG for a person to look at one simulated frame: bird's-eye view of the map, the boxes and the LiDAR sweep,
beside each camera's RGB, depth and semantic images."""

from __future__ import annotations

import os
from typing import Final

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402

from scenes.categories import CATEGORIES  # noqa: E402
from scenes.geometry import bev_box_corners  # noqa: E402
from scenes.io import atomic_write  # noqa: E402
from scenes.synth.world import SynthLog  # noqa: E402

__all__ = ["write_preview", "cityscapes_colors"]

BEV_HALF_EXTENT_M: Final = 60.0
# Cityscapes colours by label id (the official palette), for the semantic panels.
_CITYSCAPES_COLORS: Final = {
    4: (111, 74, 0), 7: (128, 64, 128), 8: (244, 35, 232), 11: (70, 70, 70), 17: (153, 153, 153), 19: (250, 170, 30),
    20: (220, 220, 0), 21: (107, 142, 35), 22: (152, 251, 152), 23: (70, 130, 180), 24: (220, 20, 60), 25: (255, 0, 0),
    26: (0, 0, 142), 27: (0, 0, 70), 28: (0, 60, 100), 33: (119, 11, 32),
}


def cityscapes_colors() -> np.ndarray:
    """`(256, 3)` uint8 colours of Cityscapes label ids (black for ids without a colour)."""
    table = np.zeros((256, 3), dtype=np.uint8)
    for label, rgb in _CITYSCAPES_COLORS.items():
        table[label] = rgb
    return table


def _category_color(category: int) -> tuple[float, float, float]:
    name = CATEGORIES[category]
    if name == "PEDESTRIAN":
        return (0.9, 0.15, 0.2)
    if name in ("BICYCLIST", "BICYCLE"):
        return (0.9, 0.5, 0.0)
    if name in ("BOLLARD", "CONSTRUCTION_CONE", "SIGN", "STOP_SIGN"):
        return (0.6, 0.6, 0.1)
    return (0.1, 0.35, 0.85)


def _draw_bev(axis: plt.Axes, log: SynthLog, frame_index: int) -> None:
    frame = log.frames[frame_index]
    ego_SE3_city = frame.city_SE3_ego.inverse()
    drivable = log.lane_graph.rasters.get("drivable_area")
    if drivable is not None:
        # Resample the drivable-area raster into the ego-centred BEV window.
        grid = np.linspace(-BEV_HALF_EXTENT_M, BEV_HALF_EXTENT_M, 300)
        gx, gy = np.meshgrid(grid, grid)
        ego_points = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], axis=1)
        city_points = frame.city_SE3_ego.transform_points(ego_points)[:, :2]
        values = drivable.lookup(city_points).reshape(gx.shape)
        axis.imshow(np.where(values > 0, 0.86, 0.97), cmap="gray", vmin=0, vmax=1, origin="lower",
                    extent=(-BEV_HALF_EXTENT_M, BEV_HALF_EXTENT_M, -BEV_HALF_EXTENT_M, BEV_HALF_EXTENT_M))
    centerlines = log.lane_graph.centerlines_m
    for line, is_intersection in zip(centerlines, log.lane_graph.is_intersection, strict=True):
        local = ego_SE3_city.transform_points(line)
        axis.plot(local[:, 0], local[:, 1], color="0.55" if is_intersection else "0.35", linewidth=0.5, linestyle=":" if is_intersection else "-")
        head, tail = (float(local[-1, 0]), float(local[-1, 1])), (float(local[-2, 0]), float(local[-2, 1]))
        axis.annotate("", xy=head, xytext=tail, arrowprops={"arrowstyle": "-|>", "color": "0.35", "lw": 0.5})
    if log.lane_graph.crosswalks_m is not None:
        for quad in log.lane_graph.crosswalks_m:
            local = ego_SE3_city.transform_points(quad)
            axis.add_patch(Polygon(local[:, :2], closed=True, facecolor="none", edgecolor="0.6", hatch="////", linewidth=0.3))
    if frame.lidar is not None and len(frame.lidar):
        points = frame.lidar.points_xyz_m
        order = np.argsort(points[:, 2])
        axis.scatter(points[order, 0], points[order, 1], c=points[order, 2], s=0.15, cmap="viridis", vmin=-0.5, vmax=4.0, linewidths=0)
    boxes = frame.annotations
    if boxes is not None and len(boxes):
        corners = bev_box_corners(boxes.center_m[:, :2], boxes.size_lwh_m[:, :2], boxes.yaw_rad)
        for index in range(len(boxes)):
            color = _category_color(int(boxes.category[index]))
            axis.add_patch(Polygon(corners[index], closed=True, fill=False, edgecolor=color, linewidth=0.9))
            if boxes.velocity_m_per_s is not None:
                start = boxes.center_m[index, :2]
                axis.arrow(*start, *(0.5 * boxes.velocity_m_per_s[index]), color=color, width=0.05, head_width=0.6, length_includes_head=True)
    ego = bev_box_corners(np.array([[1.47, 0.0]]), np.array([[4.9, 2.0]]), np.zeros(1))[0]
    axis.add_patch(Polygon(ego, closed=True, facecolor=(0.1, 0.7, 0.2), edgecolor="black", linewidth=0.8))
    axis.set_xlim(-BEV_HALF_EXTENT_M, BEV_HALF_EXTENT_M)
    axis.set_ylim(-BEV_HALF_EXTENT_M, BEV_HALF_EXTENT_M)
    axis.set_aspect("equal")
    count = 0 if boxes is None else len(boxes)
    num_points = 0 if frame.lidar is None else len(frame.lidar)
    axis.set_title(f"BEV (ego frame, m): {count} boxes, {num_points} LiDAR points", fontsize=9)
    axis.tick_params(labelsize=7)


def write_preview(log: SynthLog, frame_index: int, path: str | os.PathLike[str]) -> None:
    """Writes a PNG of frame `frame_index`: the BEV panel, then one column (RGB, depth, semantics) per camera."""
    if not -len(log.frames) <= frame_index < len(log.frames):
        raise IndexError(f"write_preview: frame {frame_index} outside the log's {len(log.frames)} frames")
    frame = log.frames[frame_index]
    cameras = list(frame.cameras.values())
    aspect = cameras[0].height_px / cameras[0].width_px if cameras else 1.0
    column_width = 4.2
    figure = plt.figure(figsize=(8.0 + column_width * len(cameras), max(8.0, 3 * column_width * aspect + 1.2)), dpi=110)
    grid = figure.add_gridspec(3, 1 + len(cameras), width_ratios=[8.0] + [column_width] * len(cameras))
    _draw_bev(figure.add_subplot(grid[:, 0]), log, frame_index)
    colors = cityscapes_colors()
    for col, camera in enumerate(cameras, start=1):
        panels: list[tuple[np.ndarray, str]] = [(camera.image, f"{camera.name} RGB")]
        if camera.depth_m is not None:
            panels.append((np.where(camera.depth_m > 0, 1.0 / np.maximum(camera.depth_m, 1e-3), 0.0), "inverse depth (1/m, 0 = sky)"))
        if camera.semantics is not None:
            panels.append((colors[camera.semantics], "Cityscapes label ids"))
        for row, (image, title) in enumerate(panels):
            axis = figure.add_subplot(grid[row, col])
            if image.ndim == 2:
                axis.imshow(image, cmap="magma", vmin=0.0, vmax=0.25)
            else:
                axis.imshow(image)
            axis.set_title(title, fontsize=8)
            axis.axis("off")
    seconds = (frame.timestamp_ns - log.frames[0].timestamp_ns) / 1e9
    figure.suptitle(f"synthetic log {log.log_id[:8]} ({log.style}), frame {frame_index % len(log.frames)} at t = {seconds:.1f} s", fontsize=10)
    figure.tight_layout()
    with atomic_write(path) as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)
