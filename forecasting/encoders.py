"""Context encoders: the agent's own history, its neighbours (interaction) and the lane polylines (map).

All inputs are in the agent's frame (see `forecasting.dataset`). The interaction and map encoders summarise a
variable, masked set of elements by attention with the agent's history encoding as query; an agent with no
neighbour or no lane gets a zero vector, the same "null" context the blind branch of CAB uses.
"""

from __future__ import annotations

import torch
from torch import nn

from forecasting.dataset import STATE_DIM


class HistoryEncoder(nn.Module):
    """GRU over the observed states `(B, H, STATE_DIM)`; unobserved steps are zeros with observed flag 0."""

    def __init__(self, hidden_dim: int) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(STATE_DIM, hidden_dim), nn.ReLU())
        self.gru = nn.GRU(hidden_dim, hidden_dim, batch_first=True)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        leading = states.shape[:-2]
        if states.numel() == 0:  # no neighbours (max_neighbors: 0)
            return states.new_zeros(*leading, self.gru.hidden_size)
        flat = states.reshape(-1, *states.shape[-2:])
        _, last = self.gru(self.embed(flat))
        return last[0].reshape(*leading, self.gru.hidden_size)


class MaskedAttentionPool(nn.Module):
    """Single-head scaled dot-product attention of a query `(B, D)` over masked keys `(B, N, D)`."""

    def __init__(self, hidden_dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(hidden_dim, hidden_dim)
        self.key = nn.Linear(hidden_dim, hidden_dim)
        self.value = nn.Linear(hidden_dim, hidden_dim)
        self.scale = hidden_dim**-0.5

    def forward(self, query: torch.Tensor, elements: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if elements.shape[1] == 0:
            return torch.zeros_like(query)
        logits = torch.einsum("bd,bnd->bn", self.query(query), self.key(elements)) * self.scale
        logits = logits.masked_fill(~mask, float("-inf"))
        any_element = mask.any(dim=1, keepdim=True)
        weights = torch.softmax(torch.where(any_element, logits, torch.zeros_like(logits)), dim=1) * mask
        return torch.einsum("bn,bnd->bd", weights, self.value(elements)) * any_element


class InteractionEncoder(nn.Module):
    """Neighbour histories (agent frame) encoded by a GRU, then pooled by attention from the agent's encoding."""

    def __init__(self, hidden_dim: int) -> None:
        super().__init__()
        self.history = HistoryEncoder(hidden_dim)
        self.pool = MaskedAttentionPool(hidden_dim)

    def forward(self, agent: torch.Tensor, neighbors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.pool(agent, self.history(neighbors), mask))


class LaneEncoder(nn.Module):
    """PointNet-style polyline encoder (shared point MLP + max pool per lane segment), pooled by attention."""

    def __init__(self, hidden_dim: int, point_dim: int) -> None:
        super().__init__()
        self.points = nn.Sequential(nn.Linear(point_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim))
        self.lane = nn.Sequential(nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU())
        self.pool = MaskedAttentionPool(hidden_dim)

    def forward(self, agent: torch.Tensor, lanes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        per_lane = self.lane(self.points(lanes).max(dim=2).values)
        return torch.relu(self.pool(agent, per_lane, mask))
