"""CenterPoint training targets: Gaussian class heatmaps and per-object regression at the object's centre cell.

The regression target of an object is its code from `perception.detection.box_coder`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from perception.detection.box_coder import LAYOUT
from perception.detection.config import ModelConfig
from scenes.categories import CATEGORY_ID
from scenes.records import Boxes3D


def gaussian_radius(height_cells: float, width_cells: float, min_overlap: float) -> float:
    """CornerNet/CenterNet radius: the largest centre shift keeping IoU >= `min_overlap` with the true box."""
    a1, b1 = 1.0, height_cells + width_cells
    c1 = width_cells * height_cells * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * a1 * c1)) / 2
    a2, b2 = 4.0, 2 * (height_cells + width_cells)
    c2 = (1 - min_overlap) * width_cells * height_cells
    r2 = (b2 + math.sqrt(b2**2 - 4 * a2 * c2)) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (height_cells + width_cells)
    c3 = (min_overlap - 1) * width_cells * height_cells
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def draw_gaussian(heatmap: np.ndarray, center_xy: tuple[int, int], radius: int) -> None:
    """`heatmap = max(heatmap, exp(-d²/2σ²))` around `center_xy` (column, row), σ = (2r+1)/6, peak exactly 1."""
    diameter = 2 * radius + 1
    sigma = diameter / 6.0
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    gaussian = np.exp(-(offsets[None, :] ** 2 + offsets[:, None] ** 2) / (2 * sigma * sigma))
    gaussian[gaussian < np.finfo(np.float64).eps * gaussian.max()] = 0
    x, y = center_xy
    height, width = heatmap.shape
    left, right = min(x, radius), min(width - x, radius + 1)
    top, bottom = min(y, radius), min(height - y, radius + 1)
    patch = heatmap[y - top : y + bottom, x - left : x + right]
    g = gaussian[radius - top : radius + bottom, radius - left : radius + right]
    np.maximum(patch, g.astype(heatmap.dtype), out=patch)


@dataclass(frozen=True)
class TaskTargets:
    """Targets of one class group for one sample."""

    heatmap: np.ndarray  # (C, H, W) float32
    indices: np.ndarray  # (K,) int64 flat cell index (row * W + column)
    mask: np.ndarray  # (K,) bool, True for the first `num_objects` slots
    regression: np.ndarray  # (K, LAYOUT.width) float32


def build_targets(
    boxes: Boxes3D, cfg: ModelConfig, *, gaussian_overlap: float, min_radius: int, max_objects: int
) -> list[TaskTargets]:
    """Targets of every task of `cfg` for ego-frame `boxes` (boxes of other classes or outside the grid are ignored)."""
    height, width = cfg.out_shape_hw
    cell_x, cell_y = cfg.out_cell_m
    coded = cfg.box_coder.encode(boxes)
    column, row = coded.column, coded.row
    inside = (column >= 0) & (column < width) & (row >= 0) & (row < height)
    targets = []
    for task in cfg.tasks:
        heatmap = np.zeros((len(task), height, width), dtype=np.float32)
        indices = np.zeros(max_objects, dtype=np.int64)
        mask = np.zeros(max_objects, dtype=bool)
        regression = np.zeros((max_objects, LAYOUT.width), dtype=np.float32)
        slot = 0
        for class_index, name in enumerate(task):
            for k in np.flatnonzero(inside & (boxes.category == CATEGORY_ID[name])):
                if slot >= max_objects:
                    break
                length_cells = boxes.size_lwh_m[k, 0] / cell_x
                width_cells = boxes.size_lwh_m[k, 1] / cell_y
                radius = max(min_radius, int(gaussian_radius(length_cells, width_cells, gaussian_overlap)))
                draw_gaussian(heatmap[class_index], (int(column[k]), int(row[k])), radius)
                indices[slot] = row[k] * width + column[k]
                mask[slot] = True
                regression[slot] = coded.code[k]
                slot += 1
        targets.append(TaskTargets(heatmap, indices, mask, regression))
    return targets
