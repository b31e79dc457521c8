"""CenterPoint losses: penalty-reduced focal loss on heatmaps (CenterNet) and masked, weighted L1 on regression.

The velocity channels can take a squared error instead (`TrainConfig.velocity_loss: l2`). L1 pulls a prediction to the
median of its targets: while the network cannot yet tell moving from parked cars, and most cars are parked, that median
is 0 and the gradients of parked and moving cars cancel, so the velocity head can stay at 0. A squared error pulls to
the mean, and a moving car's gradient grows with its error.
"""

from __future__ import annotations

import numpy as np
import torch

from perception.detection.targets import TaskTargets

PROBABILITY_CLAMP = 1e-4


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet focal loss, summed over cells and divided by the number of peaks (target == 1)."""
    probability = torch.sigmoid(logits).clamp(PROBABILITY_CLAMP, 1 - PROBABILITY_CLAMP)
    positive = target.eq(1).float()
    negative_weight = (1 - target).pow(beta)
    positive_loss = torch.log(probability) * (1 - probability).pow(alpha) * positive
    negative_loss = torch.log(1 - probability) * probability.pow(alpha) * negative_weight * (1 - positive)
    num_positive = positive.sum().clamp(min=1.0)
    return -(positive_loss.sum() + negative_loss.sum()) / num_positive


def regression_loss(
    prediction: torch.Tensor,
    indices: torch.Tensor,
    mask: torch.Tensor,
    target: torch.Tensor,
    code_weights: torch.Tensor,
    squared: torch.Tensor | None = None,
) -> torch.Tensor:
    """L1 between the `(B, D, H, W)` prediction gathered at `indices (B, K)` and `target (B, K, D)` where `mask`
    (`D` channels of the box code, weighted by `code_weights (D,)`); channels where the `(D,)` bool `squared` is set
    take half the squared error instead."""
    batch, channels = prediction.shape[:2]
    gathered = prediction.reshape(batch, channels, -1).gather(2, indices[:, None, :].expand(-1, channels, -1)).permute(0, 2, 1)
    weight = mask.float()[..., None]
    difference = gathered - target
    error = difference.abs() if squared is None else torch.where(squared, 0.5 * difference.square(), difference.abs())
    return (error * weight * code_weights).sum() / weight.sum().clamp(min=1.0)


def stack_targets(samples: list[list[TaskTargets]], task: int) -> tuple[torch.Tensor, ...]:
    """Batched `(heatmap, indices, mask, regression)` tensors of one task."""
    return (
        torch.from_numpy(np.stack([s[task].heatmap for s in samples])),
        torch.from_numpy(np.stack([s[task].indices for s in samples])),
        torch.from_numpy(np.stack([s[task].mask for s in samples])),
        torch.from_numpy(np.stack([s[task].regression for s in samples])),
    )


def centerpoint_loss(
    outputs: list[tuple[torch.Tensor, torch.Tensor]],
    samples: list[list[TaskTargets]],
    code_weights: torch.Tensor,
    regression_weight: float,
    squared: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum over tasks of focal + `regression_weight` · regression loss; also returns the parts for logging."""
    total = outputs[0][0].new_zeros(())
    heat_total, reg_total = 0.0, 0.0
    for task, (logits, regression) in enumerate(outputs):
        heatmap, indices, mask, target = (tensor.to(logits.device) for tensor in stack_targets(samples, task))
        heat = focal_loss(logits, heatmap)
        reg = regression_loss(regression, indices, mask, target, code_weights, squared)
        total = total + heat + regression_weight * reg
        heat_total += float(heat.detach())
        reg_total += float(reg.detach())
    return total, {"heatmap_loss": heat_total, "regression_loss": reg_total}
