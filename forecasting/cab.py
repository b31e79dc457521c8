"""Training objectives: plain likelihood, CAB, and the two debiasing baselines of the paper (Reweight, RUBiZ).

Notation of Ben-Younes et al. (CAB, arXiv 2109.08048, section 3): `X` the agent's past, `C` its context (neighbours
and map), `~C` the null context, `l` and `~l` the logits of `p(z | X, C)` and `p(z | X, ~C)` (the same network run on
both inputs, `forecasting.model`). Each branch's CVAE loss is equation 2 with Trajectron++'s additions, which CAB
keeps (section 3.3): `L_cvae = -log sum_z q(z | X, C, Y) p(Y | X, C, z) + alpha * KL[q(z | X, C, Y) || p(z | X, C)]
- I(X, C; z)`: the likelihood of the future under the decoder's modes weighted by the recognition distribution `q`
(`forecasting.losses.mixture_nll`, exact over the categorical latent; Trajectron++ weights its mixture by `q` in
training), the KL that fits the prior to `q` (`alpha = posterior_kl_weight`), and the mutual information between the
inputs and the prior's latent, estimated on the batch as `H(mean_i p(z | x_i)) - mean_i H(p(z | x_i))` (weighted by
`mutual_information_weight`). Without `q` (evaluation mode) the likelihood is the exact marginal under `p`. `~L_cvae` is the same
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
from forecasting.losses import MASKED_LOGIT, categorical_kl, mixture_nll, mutual_information
from forecasting.model import Prediction

__all__ = ["needs_blind_branch", "training_logits", "objective_loss"]


def needs_blind_branch(objective: ObjectiveConfig) -> bool:
    return objective.method != "plain"


def training_logits(logits: torch.Tensor, clip: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Latent logits as used in training: centred, then clipped to `[-clip, clip]`.

    With a `mask (B, K)` of the modes that exist, the logits are lane-goal candidates' scores, which the decoder
    already bounds smoothly to `[-clip, clip]` (`forecasting.goal_decoder`): they are returned as they are.
    """
    if mask is None:
        return (logits - logits.mean(dim=-1, keepdim=True)).clamp(min=-clip, max=clip)
    return logits


def _nll(
    prediction: Prediction, prior_logits: torch.Tensor, batch: dict[str, torch.Tensor], objective: ObjectiveConfig
) -> torch.Tensor:
    """Per-sample `-log sum_z q(z) p(Y | z) + alpha KL[q || p]` (the exact `-log p(Y)` when there is no `q`)."""
    future, valid = batch["future_m"], batch["future_valid"]
    if prediction.posterior_logits is None:
        return mixture_nll(F.log_softmax(prior_logits, dim=-1), prediction.trajectories_m, prediction.log_scale, future, valid)
    posterior = training_logits(prediction.posterior_logits, objective.logit_clip, prediction.mode_mask)
    nll = mixture_nll(F.log_softmax(posterior, dim=-1), prediction.trajectories_m, prediction.log_scale, future, valid)
    return nll + objective.posterior_kl_weight * categorical_kl(posterior, prior_logits)


def objective_loss(
    full: Prediction, blind: Prediction | None, batch: dict[str, torch.Tensor], objective: ObjectiveConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The scalar training loss of `objective.method` and its detached parts (for logging)."""
    method = objective.method
    if method != "plain" and blind is None:
        raise ValueError(f"objective {method!r} needs the blind prediction (run the network with with_blind=True)")
    mask = full.mode_mask
    logits = training_logits(full.logits, objective.logit_clip, mask)
    if method == "rubiz":
        assert blind is not None
        fused = torch.sigmoid(logits) * torch.sigmoid(training_logits(blind.logits, objective.logit_clip, mask))
        nll = _nll(full, fused if mask is None else fused.masked_fill(~mask, MASKED_LOGIT), batch, objective)
    else:
        nll = _nll(full, logits, batch, objective)
    information = mutual_information(logits)
    loss = nll.mean() - objective.mutual_information_weight * information
    parts: dict[str, torch.Tensor] = {"nll": nll.mean().detach(), "mutual_information": information.detach()}
    if method == "plain":
        parts["loss"] = loss.detach()
        return loss, parts
    assert blind is not None
    blind_logits = training_logits(blind.logits, objective.logit_clip, mask)
    nll_blind = _nll(blind, blind_logits, batch, objective)
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
