"""The forecasting network: a categorical-latent (CVAE-style) multimodal decoder over history, neighbours and map.

The latent `z` takes `K = num_modes` values. The prior `p(z | X, C)` is a softmax head over the fused encoding of the
agent's history `X` and context `C` (interaction and map encodings); the decoder maps `(encoding, z)` to a trajectory
(a learned correction of the constant-velocity extrapolation of the current velocity) with a per-step Laplace
scale, so every value of `z` is one predicted mode and `p(z | X, C)` is its score. As in Trajectron++/CAB, training
uses a recognition network `q(z | X, C, Y)` over the fused encoding and the observed future: the decoder's modes are
weighted by `q` in the likelihood and `p` is fitted to `q` through `KL[q || p]` (`forecasting.cab`), so objectives that
act on the prior `p` (CAB's KL) do not reweight the modes the decoder is trained on.

With `features.lane_goals.enabled`, the modes are TNT-style goal candidates on the lanes the agent can reach instead
(`forecasting.lane_goals`, `forecasting.goal_decoder`): the prior is their scores, the decoder follows each goal's
path, the likelihood is the exact marginal over them (no recognition network), and `num_modes` of them are picked at
inference by non-maximum suppression (`Forecaster.predict`).

The blind pass (CAB, `forecasting.cab`) runs the same weights with the context encodings replaced by zeros (the null
context `~C`) and the history encoding detached. With lane goals the blind pass still scores the same candidates:
their paths, which come from the map, are what the modes are, not context it may use (a variant of CAB's blind model).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from forecasting.config import FeatureConfig, ModelConfig
from forecasting.encoders import HistoryEncoder, InteractionEncoder, LaneEncoder
from forecasting.goal_decoder import GoalCandidates, LaneGoalDecoder
from scenes.categories import CATEGORIES


@dataclass(frozen=True)
class Context:
    """Encodings of one batch: the agent (history + category), its interactions and its map, each `(B, D)`."""

    agent: torch.Tensor
    interaction: torch.Tensor
    map: torch.Tensor
    velocity_m_per_s: torch.Tensor  # (B, 2) current velocity in the agent frame (an input, not an encoding)
    goals: GoalCandidates | None = None  # lane-goal candidates (the modes themselves, not an encoding)

    def blind(self) -> Context:
        """The null context `~C` of CAB's blind branch: context encodings zeroed, history encoding detached."""
        return Context(
            self.agent.detach(), torch.zeros_like(self.interaction), torch.zeros_like(self.map), self.velocity_m_per_s, self.goals
        )


@dataclass(frozen=True)
class Prediction:
    """Prior logits of `z` `(B, K)`, mode trajectories `(B, K, T, 2)` (agent frame, m), Laplace log-scales `(B, K, T)`.

    `posterior_logits` `(B, K)`: logits of the CVAE's recognition distribution `q(z | X, C, Y)`, computed in training
    mode only (they need the future `Y`). `mode_mask` `(B, K)`: which modes exist, with lane goals (the others' logits
    are `forecasting.losses.MASKED_LOGIT`); None when all do.
    """

    logits: torch.Tensor
    trajectories_m: torch.Tensor
    log_scale: torch.Tensor
    posterior_logits: torch.Tensor | None = None
    mode_mask: torch.Tensor | None = None


class ForecastNet(nn.Module):
    """Encoders + categorical latent prior + per-mode trajectory decoder."""

    step_times_s: torch.Tensor  # buffer (registered in __init__): seconds from now of each forecast step

    def __init__(self, model: ModelConfig, features: FeatureConfig, logit_bound: float = 5.0) -> None:
        super().__init__()
        hidden = model.hidden_dim
        self.num_modes = model.num_modes
        self.horizon_steps = features.horizon_steps
        self.position_scale_m = features.position_scale_m
        self.min_log_scale = model.min_log_scale
        self.register_buffer(
            "step_times_s", features.step_s * torch.arange(1, features.horizon_steps + 1, dtype=torch.float32), persistent=False
        )
        self.history = HistoryEncoder(hidden)
        self.category = nn.Embedding(len(CATEGORIES), model.category_dim)
        self.agent = nn.Sequential(nn.Linear(hidden + model.category_dim, hidden), nn.ReLU())
        self.interaction = InteractionEncoder(hidden)
        self.lanes = LaneEncoder(hidden, features.lane_point_dim)
        self.trunk = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.goal_decoder: LaneGoalDecoder | None = None
        if features.lane_goals.enabled:
            self.goal_decoder = LaneGoalDecoder(hidden, features.horizon_steps, features.position_scale_m, features.lane_goals, logit_bound)
            return
        self.prior = nn.Linear(hidden, model.num_modes)
        self.mode_embedding = nn.Embedding(model.num_modes, hidden)
        self.decoder = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 3 * features.horizon_steps))
        # Recognition network q(z | X, C, Y) of the CVAE: the fused encoding and the observed future (training only).
        self.posterior = nn.Sequential(
            nn.Linear(hidden + 3 * features.horizon_steps, hidden), nn.ReLU(), nn.Linear(hidden, model.num_modes)
        )

    def encode(self, batch: dict[str, torch.Tensor]) -> Context:
        history = self.history(batch["history"])
        agent = self.agent(torch.cat([history, self.category(batch["category"])], dim=-1))
        interaction = self.interaction(agent, batch["neighbors"], batch["neighbor_mask"])
        lanes = self.lanes(agent, batch["lanes"], batch["lane_mask"])
        velocity = batch["history"][:, -1, 2:4] * self.position_scale_m
        goals = None
        if self.goal_decoder is not None:
            goals = GoalCandidates(batch["goal_paths_m"], batch["goal_path_valid"], batch["goal_path_on_lane"])
        return Context(agent, interaction, lanes, velocity, goals)

    def heads(self, context: Context, targets: dict[str, torch.Tensor] | None = None) -> Prediction:
        hidden = self.trunk(torch.cat([context.agent, context.interaction, context.map], dim=-1))
        if self.goal_decoder is not None:
            assert context.goals is not None  # encode() sets them when the goal decoder exists
            out = self.goal_decoder(hidden, context.goals, self.min_log_scale)
            return Prediction(out.logits, out.trajectories_m, out.log_scale, None, out.mask)
        batch = hidden.shape[0]
        modes = self.mode_embedding.weight[None].expand(batch, -1, -1)
        decoded = self.decoder(torch.cat([hidden[:, None].expand(-1, self.num_modes, -1), modes], dim=-1))
        decoded = decoded.reshape(batch, self.num_modes, self.horizon_steps, 3)
        constant_velocity = context.velocity_m_per_s[:, None, None, :] * self.step_times_s[None, None, :, None]
        trajectories = constant_velocity + torch.cumsum(decoded[..., :2], dim=2) * self.position_scale_m
        log_scale = decoded[..., 2].clamp(min=self.min_log_scale, max=5.0)
        posterior = None
        if targets is not None:
            valid = targets["future_valid"].to(hidden.dtype)
            future = targets["future_m"] * valid[..., None] / self.position_scale_m
            posterior = self.posterior(torch.cat([hidden, future.flatten(1), valid], dim=-1))
        return Prediction(self.prior(hidden), trajectories, log_scale, posterior)

    def forward(self, batch: dict[str, torch.Tensor], with_blind: bool = False) -> tuple[Prediction, Prediction | None]:
        """The full prediction and, when asked, the blind one (same weights, null context, detached history)."""
        context = self.encode(batch)
        targets = batch if self.training else None
        full = self.heads(context, targets)
        if not with_blind:
            return full, None
        return full, self.heads(context.blind(), targets)
