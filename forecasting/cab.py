"""Training objectives: plain likelihood, CAB, and the two debiasing baselines of the paper (Reweight, RUBiZ).

Notation of Ben-Younes et al. (CAB): `X` the agent's past, `C` its context (neighbours and map), `~C` the null
context, `L` the negative log-likelihood of the future under `p(Y | X, C)` (`forecasting.losses.mixture_nll`).

- plain:    `L`
- CAB:      `L + lambda * L_blind - lambda_KL * KL[p(z | X, C) || sg p(z | X, ~C)]`. The blind branch is the same
            network run on `~C` with the history encoding detached (`Context.blind`), so `L_blind` trains the shared
            prior and decoder to predict from the past alone without making the encoder blind; `sg` (stop-gradient)
            detaches the blind latent distribution, so the KL term only pushes the context-aware prior away from
            what the past alone suggests, i.e. towards using the context.
- Reweight: `mean_i w_i L_i + lambda * L_blind`, `w_i` proportional to the blind branch's minADE on sample `i`
            (detached, floored at `reweight_floor` times the batch mean, normalised to mean 1): samples the past
            alone already explains weigh less.
- RUBiZ:    RUBi's fusion in latent space: during training the prior is `p(z) ∝ p(z | X, C) * sigmoid(l(z | X))`
            with `l` the logits of a separate blind latent head on the detached history encoding, trained by its
            own `L_blind`; at inference only `p(z | X, C)` is used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from forecasting.config import ObjectiveConfig
from forecasting.losses import categorical_kl, mixture_nll, min_ade_per_sample
from forecasting.model import Prediction

__all__ = ["needs_blind_branch", "objective_loss"]


def needs_blind_branch(objective: ObjectiveConfig) -> bool:
    return objective.method != "plain"


def _nll(prediction: Prediction, log_prior: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return mixture_nll(log_prior, prediction.trajectories_m, prediction.log_scale, batch["future_m"], batch["future_valid"])


def objective_loss(
    full: Prediction, blind: Prediction | None, batch: dict[str, torch.Tensor], objective: ObjectiveConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The scalar training loss of `objective.method` and its detached parts (for logging)."""
    method = objective.method
    if method != "plain" and blind is None:
        raise ValueError(f"objective {method!r} needs the blind prediction (run the network with with_blind=True)")
    if method == "rubiz":
        assert blind is not None
        fused = F.log_softmax(full.logits + F.logsigmoid(blind.logits), dim=-1)
        nll = _nll(full, fused, batch)
    else:
        nll = _nll(full, F.log_softmax(full.logits, dim=-1), batch)
    parts: dict[str, torch.Tensor] = {"nll": nll.mean().detach()}
    if method == "plain":
        return nll.mean(), parts
    assert blind is not None
    nll_blind = _nll(blind, F.log_softmax(blind.logits, dim=-1), batch)
    parts["nll_blind"] = nll_blind.mean().detach()
    if method == "cab":
        kl = categorical_kl(full.logits, blind.logits.detach())
        parts["kl"] = kl.mean().detach()
        loss = nll.mean() + objective.blind_weight * nll_blind.mean() - objective.kl_weight * kl.mean()
    elif method == "reweight":
        error = min_ade_per_sample(blind.trajectories_m.detach(), batch["future_m"], batch["future_valid"])
        weights = torch.clamp(error / error.mean().clamp(min=1e-6), min=objective.reweight_floor)
        weights = weights / weights.mean()
        parts["weight_max"] = weights.max().detach()
        loss = (weights * nll).mean() + objective.blind_weight * nll_blind.mean()
    elif method == "rubiz":
        loss = nll.mean() + objective.blind_weight * nll_blind.mean()
    else:
        raise ValueError(f"unknown objective {method!r}")
    parts["loss"] = loss.detach()
    return loss, parts
