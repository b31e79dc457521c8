"""TNT's target-driven decoder over lane-goal candidates (`forecasting.lane_goals`), in the agent frame.

Every candidate is goal `j` of path `q` (point `2 j` of the path). TNT (arXiv 2008.08294) scores the candidates, regresses
an offset of each goal and decodes a trajectory conditioned on it. Here the trajectory is decoded *along the goal's
path*: the decoder predicts, per step, the fraction `f_t` of the way to the goal (non-decreasing, `f_T = 1`: the
cumulative softmax of `T` logits), an along-path offset of the goal (at most one goal spacing either way) and a lateral
offset from the path (at most `max_lateral_offset_m`), so a mode that turns follows the lane's curve. Each step also
gets a Laplace log-scale, so the candidates form the same mixture as the latent decoder's modes
(`forecasting.losses.mixture_nll`), with the candidate scores as the prior. The score logits are bounded smoothly,
`b tanh(s / b)` with `b` the objective's `logit_clip`, in training and at inference alike: the latent decoder's logits
are instead clamped in training only (as in the official CAB code), and with dozens of candidates a clamp stopped the
gradient of exactly the logits that were wrong (the stop goal, above the clamp from parked cars' samples, kept the top
score for moving agents too).

There is no recognition network `q(goal | X, C, Y)`: the likelihood is the exact marginal over the candidates, whose
gradient moves the scores towards the exact posterior (the candidates that explain the future). A learned `q` had
to discover that the goal nearest the observed future explains it, and on a 16-sample batch it still preferred a
goal 8 m off after 300 steps (its KL then kept the prior there too).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from forecasting.config import LaneGoalConfig
from forecasting.losses import MASKED_LOGIT

__all__ = ["GoalCandidates", "GoalDecoderOutput", "LaneGoalDecoder", "along_path"]


@dataclass(frozen=True)
class GoalCandidates:
    """Paths of the goal candidates of a batch: `paths_m (B, Q, P, 2)` agent frame, `valid (B, Q)`, `on_lane (B, Q)`."""

    paths_m: torch.Tensor
    valid: torch.Tensor
    on_lane: torch.Tensor


@dataclass(frozen=True)
class GoalDecoderOutput:
    logits: torch.Tensor  # (B, N) masked candidates at a large negative value
    trajectories_m: torch.Tensor  # (B, N, T, 2)
    log_scale: torch.Tensor  # (B, N, T)
    mask: torch.Tensor  # (B, N) bool


def along_path(paths_m: torch.Tensor, arc_m: torch.Tensor, distance_m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Points at arc lengths `distance_m (B, Q, S)` along polylines `paths_m (B, Q, P, 2)` with cumulative arc lengths
    `arc_m (B, Q, P)` (linear interpolation, straight on past either end), and the unit direction there `(B, Q, S, 2)`."""
    points = paths_m.shape[2]
    upper = torch.searchsorted(arc_m.contiguous(), distance_m.contiguous()).clamp(1, points - 1)
    lower = upper - 1
    start_arc, end_arc = arc_m.gather(-1, lower), arc_m.gather(-1, upper)
    index = lower[..., None].expand(*lower.shape, 2)
    start, end = paths_m.gather(2, index), paths_m.gather(2, index + 1)
    weight = (distance_m - start_arc) / (end_arc - start_arc).clamp(min=1e-6)
    direction = end - start
    return start + weight[..., None] * direction, direction / direction.norm(dim=-1, keepdim=True).clamp(min=1e-6)


class LaneGoalDecoder(nn.Module):
    """Scores and decodes the lane-goal candidates of a fused agent encoding `(B, H)`."""

    def __init__(
        self, hidden_dim: int, horizon_steps: int, position_scale_m: float, goals: LaneGoalConfig, logit_bound: float
    ) -> None:
        super().__init__()
        self.horizon_steps = horizon_steps
        self.position_scale_m = position_scale_m
        self.goals_per_path = goals.goals_per_path
        self.max_lateral_offset_m = goals.max_lateral_offset_m
        self.logit_bound = logit_bound
        self.path_points = nn.Sequential(nn.Linear(4, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim))
        # path encoding + goal (x, y, direction, fraction of the path, on a lane)
        self.goal = nn.Sequential(nn.Linear(hidden_dim + 6, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU())
        self.score = nn.Sequential(nn.Linear(2 * hidden_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 1))
        self.trajectory = nn.Sequential(nn.Linear(2 * hidden_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 3 * horizon_steps + 1))

    def forward(self, hidden: torch.Tensor, candidates: GoalCandidates, min_log_scale: float) -> GoalDecoderOutput:
        paths = candidates.paths_m
        batch, num_paths, num_points, _ = paths.shape
        goals, steps = self.goals_per_path, self.horizon_steps
        segment = paths[:, :, 1:] - paths[:, :, :-1]
        arc = torch.cat([paths.new_zeros(batch, num_paths, 1), torch.cumsum(segment.norm(dim=-1), dim=2)], dim=2)
        direction = torch.cat([segment, segment[:, :, -1:]], dim=2)
        direction = direction / direction.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        scaled = paths / self.position_scale_m
        path_code = self.path_points(torch.cat([scaled, direction], dim=-1)).max(dim=2).values  # (B, Q, H)
        goal_index = torch.arange(goals, device=paths.device) * 2
        fraction = (goal_index.to(paths.dtype) / (num_points - 1)).expand(batch, num_paths, goals)
        goal_features = torch.cat(
            [
                scaled[:, :, goal_index], direction[:, :, goal_index], fraction[..., None],
                candidates.on_lane[:, :, None, None].expand(-1, -1, goals, 1).to(paths.dtype),
            ],
            dim=-1,
        )  # fmt: skip
        code = self.goal(torch.cat([path_code[:, :, None].expand(-1, -1, goals, -1), goal_features], dim=-1))
        joint = torch.cat([hidden[:, None, None].expand(-1, num_paths, goals, -1), code], dim=-1)  # (B, Q, G, 2H)
        mask = candidates.valid[:, :, None].expand(-1, -1, goals).reshape(batch, -1)
        logits = self.logit_bound * torch.tanh(self.score(joint)[..., 0].reshape(batch, -1) / self.logit_bound)
        logits = logits.masked_fill(~mask, MASKED_LOGIT)

        decoded = self.trajectory(joint)  # (B, Q, G, 3T + 1)
        spacing = arc[:, :, -1:] / (goals - 1)  # (B, Q, 1)
        goal_arc = arc[:, :, goal_index] + torch.tanh(decoded[..., -1]) * spacing  # (B, Q, G)
        progress = torch.cumsum(torch.softmax(decoded[..., :steps], dim=-1), dim=-1)  # (B, Q, G, T), ends at 1
        distance = progress * goal_arc.clamp(min=0.0)[..., None]
        position, heading = along_path(paths, arc, distance.reshape(batch, num_paths, goals * steps))
        normal = torch.stack([-heading[..., 1], heading[..., 0]], dim=-1)
        lateral = torch.tanh(decoded[..., steps : 2 * steps]).reshape(batch, num_paths, goals * steps, 1) * self.max_lateral_offset_m
        trajectories = (position + lateral * normal).reshape(batch, num_paths * goals, steps, 2)
        log_scale = decoded[..., 2 * steps : 3 * steps].reshape(batch, num_paths * goals, steps).clamp(min=min_log_scale, max=5.0)

        return GoalDecoderOutput(logits, trajectories, log_scale, mask)
