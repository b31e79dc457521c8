"""Likelihood of a future under the categorical-latent model, and the KL divergence between two latent priors."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["MASKED_LOGIT", "mixture_nll", "categorical_kl", "mutual_information"]

# Logit of a mode that does not exist for a sample (a missing goal candidate): finite, so that the KL and entropy
# terms below stay defined (its probability underflows to 0).
MASKED_LOGIT = -1e4


def mixture_nll(
    log_prior: torch.Tensor,
    trajectories_m: torch.Tensor,
    log_scale: torch.Tensor,
    future_m: torch.Tensor,
    future_valid: torch.Tensor,
) -> torch.Tensor:
    """Per-sample negative log-likelihood of the whole observed future, `-log sum_z p(z) prod_t Laplace(y_t | mu_zt, b_zt)`.

    Summed over the horizon (not averaged per step), as in Trajectron++/CAB, so that CAB's KL weight keeps its meaning.

    `log_prior (B, K)`, `trajectories_m (B, K, T, 2)`, `log_scale (B, K, T)` (log b, same b for x and y),
    `future_m (B, T, 2)`, `future_valid (B, T)`. Returns `(B,)`.
    """
    error = (trajectories_m - future_m[:, None]).abs().sum(dim=-1)  # (B, K, T)
    log_density = -error * torch.exp(-log_scale) - 2.0 * log_scale - 2.0 * math.log(2.0)
    valid = future_valid[:, None].to(log_density.dtype)
    log_likelihood = (log_density * valid).sum(dim=-1)  # (B, K)
    return -torch.logsumexp(log_prior + log_likelihood, dim=-1)


def categorical_kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """`KL[p || q]` per sample between categorical distributions given by logits `(B, K)`."""
    log_p = F.log_softmax(p_logits, dim=-1)
    log_q = F.log_softmax(q_logits, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


def mutual_information(logits: torch.Tensor) -> torch.Tensor:
    """Batch estimate of the inputs/latent mutual information of a categorical prior given by logits `(B, K)`.

    `H(mean_i p_i) - mean_i H(p_i)` (Trajectron++'s `mutual_inf_mc`, the InfoVAE term kept by CAB): high when each
    sample's prior is confident and the batch uses every value of `z`.
    """
    log_p = F.log_softmax(logits, dim=-1)
    p = log_p.exp()
    mean_p = p.mean(dim=0)
    marginal_entropy = -(mean_p * torch.log(mean_p.clamp(min=1e-12))).sum()
    conditional_entropy = -(p * log_p).sum(dim=-1).mean()
    return marginal_entropy - conditional_entropy
