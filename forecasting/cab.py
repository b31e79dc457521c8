"""Training objectives: plain likelihood, CAB, and the two debiasing baselines of the paper (Reweight, RUBiZ).

Notation of Ben-Younes et al. (CAB, arXiv 2109.08048, section 3): `X` the agent's past, `C` its context (neighbours
and map), `~C` the null context, `l` and `~l` the logits of `p(z | X, C)` and `p(z | X, ~C)` (the same network run on
both inputs, `forecasting.model`). Each branch's CVAE loss is Trajectron++'s, which CAB keeps (section 3.3):
`L_cvae = -log p(Y | X, C) - I(X, C; z)`, the negative log-likelihood of the future (`forecasting.losses.mixture_nll`,
exact over the categorical latent) minus the mutual information between the inputs and the latent, estimated on the
batch as `H(mean_i p(z | x_i)) - mean_i H(p(z | x_i))` (weighted by `mutual_information_weight`). `~L_cvae` is the same
loss of the blind branch. As in the official implementation (valeoai/CAB, `DiscreteLatent.dist_from_h`), the latent
logits are centred and clipped to `[-logit_clip, logit_clip]` during training, which bounds CAB's negated KL.

- plain:    `L_cvae` (Trajectron++ without the CAB terms).
- CAB:      `L_cvae + lambda * ~L_cvae - lambda_KL * KL[p(z | X, C) || sg p(z | X, ~C)]` (equations 3-5). The blind
            branch sees the detached history encoding and null context encodings (`Context.blind`), so `~L_cvae`
            trains the shared heads to predict from the past alone without making the encoders blind; `sg`
            (stop-gradient) detaches the blind latent distribution, so the KL term only pushes the context-aware
            prior away from what the past alone suggests.
- Reweight: `L_cvae + lambda * ~L_cvae + mean_i sg sigmoid(-log p(y_i | X_i, ~C_i)) * (-log p(y_i | X_i, C_i))`
            (equation 7): samples the blind branch explains well weigh less.
- RUBiZ:    the full branch's likelihood uses the fused prior `softmax(sigmoid(l) * sigmoid(~l))` during training
            (section 3.4), plus `lambda * ~L_cvae`; at inference only `p(z | X, C) = softmax(l)` is used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from forecasting.config import ObjectiveConfig
from forecasting.losses import categorical_kl, mixture_nll, mutual_information
from forecasting.model import Prediction

__all__ = ["needs_blind_branch", "training_logits", "objective_loss"]


def needs_blind_branch(objective: ObjectiveConfig) -> bool:
    return objective.method != "plain"


def training_logits(logits: torch.Tensor, clip: float) -> torch.Tensor:
    """Latent logits as used in training: centred, then clipped to `[-clip, clip]`."""
    centred = logits - logits.mean(dim=-1, keepdim=True)
    return centred.clamp(min=-clip, max=clip)


def _nll(prediction: Prediction, log_prior: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return mixture_nll(log_prior, prediction.trajectories_m, prediction.log_scale, batch["future_m"], batch["future_valid"])


def objective_loss(
    full: Prediction, blind: Prediction | None, batch: dict[str, torch.Tensor], objective: ObjectiveConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The scalar training loss of `objective.method` and its detached parts (for logging)."""
    method = objective.method
    if method != "plain" and blind is None:
        raise ValueError(f"objective {method!r} needs the blind prediction (run the network with with_blind=True)")
    logits = training_logits(full.logits, objective.logit_clip)
    if method == "rubiz":
        assert blind is not None
        blind_logits = training_logits(blind.logits, objective.logit_clip)
        nll = _nll(full, F.log_softmax(torch.sigmoid(logits) * torch.sigmoid(blind_logits), dim=-1), batch)
    else:
        nll = _nll(full, F.log_softmax(logits, dim=-1), batch)
    information = mutual_information(logits)
    loss = nll.mean() - objective.mutual_information_weight * information
    parts: dict[str, torch.Tensor] = {"nll": nll.mean().detach(), "mutual_information": information.detach()}
    if method == "plain":
        parts["loss"] = loss.detach()
        return loss, parts
    assert blind is not None
    blind_logits = training_logits(blind.logits, objective.logit_clip)
    nll_blind = _nll(blind, F.log_softmax(blind_logits, dim=-1), batch)
    loss_blind = nll_blind.mean() - objective.mutual_information_weight * mutual_information(blind_logits)
    parts["nll_blind"] = nll_blind.mean().detach()
    loss = loss + objective.blind_weight * loss_blind
    if method == "cab":
        kl = categorical_kl(logits, blind_logits.detach())
        parts["kl"] = kl.mean().detach()
        loss = loss - objective.kl_weight * kl.mean()
    elif method == "reweight":
        weights = torch.sigmoid(nll_blind.detach())
        parts["weight_mean"] = weights.mean()
        loss = loss + (weights * nll).mean()
    elif method != "rubiz":
        raise ValueError(f"unknown objective {method!r}")
    parts["loss"] = loss.detach()
    return loss, parts
