"""Heatmap peaks -> boxes: 3x3 max-pool NMS, top-k per task, per-class score thresholds, optional rotated NMS."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from perception.detection.box_ops import rotated_nms
from perception.detection.config import ModelConfig
from scenes.categories import CATEGORY_ID
from scenes.records import Boxes3D


def peak_mask(heat: torch.Tensor) -> torch.Tensor:
    """True where a cell equals the maximum of its 3x3 neighbourhood (CenterNet's max-pool NMS)."""
    pooled = F.max_pool2d(heat, kernel_size=3, stride=1, padding=1)
    return heat == pooled


def decode_task(
    heatmap_logits: torch.Tensor, regression: torch.Tensor, task: tuple[str, ...], cfg: ModelConfig
) -> Boxes3D:
    """Boxes of one sample and one class group from `(C, H, W)` logits and the `(code width, H, W)` box-code regression."""
    heat = torch.sigmoid(heatmap_logits.float())
    heat = heat * peak_mask(heat[None])[0]
    num_classes, height, width = heat.shape
    k = min(cfg.max_detections_per_task, heat.numel())
    scores, flat = torch.topk(heat.reshape(-1), k)
    scores_np = scores.numpy().astype(np.float64)
    flat_np = flat.numpy()
    class_index = flat_np // (height * width)
    cell = flat_np % (height * width)
    row, column = cell // width, cell % width
    thresholds = np.array([cfg.class_score_thresholds.get(name, cfg.score_threshold) for name in task])
    keep = scores_np > thresholds[class_index]
    if not np.any(keep):
        return Boxes3D.empty()
    class_index, row, column, scores_np = class_index[keep], row[keep], column[keep], scores_np[keep]
    decoded = cfg.box_coder.decode(regression.float().numpy(), row, column)
    center, size, yaw = decoded.center_m, decoded.size_lwh_m, decoded.yaw_rad
    category = np.array([CATEGORY_ID[task[c]] for c in class_index], dtype=np.int64)
    boxes = Boxes3D(center, size, yaw, category, scores_np.astype(np.float32), decoded.velocity_m_per_s)
    if cfg.nms_iou_threshold is None:
        return boxes
    kept = [
        np.flatnonzero(category == c)[
            rotated_nms(center[category == c, :2], size[category == c, :2], yaw[category == c], scores_np[category == c], cfg.nms_iou_threshold)
        ]
        for c in np.unique(category)
    ]
    return boxes.select(np.sort(np.concatenate(kept)))


def decode(outputs: list[tuple[torch.Tensor, torch.Tensor]], cfg: ModelConfig) -> list[Boxes3D]:
    """Ego-frame boxes of every sample of a batch from the network outputs (one `(logits, regression)` per task)."""
    batch_size = outputs[0][0].shape[0]
    results = []
    for b in range(batch_size):
        parts = [decode_task(logits[b], regression[b], task, cfg) for (logits, regression), task in zip(outputs, cfg.tasks, strict=True)]
        parts = [part for part in parts if len(part)]
        results.append(Boxes3D.concatenate(parts) if parts else Boxes3D.empty())
    return results
