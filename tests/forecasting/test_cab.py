"""Losses by hand and the gradient flow of CAB's blind branch and KL term."""

from __future__ import annotations

import math

import pytest
import torch

from forecasting.cab import objective_loss, training_logits
from forecasting.config import ForecastingConfig, ObjectiveConfig
from forecasting.losses import categorical_kl, mixture_nll, mutual_information
from forecasting.model import ForecastNet, Prediction
from forecasting.train import build_network

from .conftest import tiny_config, tiny_samples


def test_mixture_nll_and_kl_by_hand() -> None:
    future = torch.tensor([[[1.0, 0.0], [2.0, 0.0]]])
    modes = torch.tensor([[[[1.0, 0.0], [2.0, 0.0]], [[1.0, 1.0], [2.0, 1.0]]]])  # exact, 1 m to the left
    log_scale = torch.zeros(1, 2, 2)  # b = 1
    log_prior = torch.log(torch.tensor([[0.25, 0.75]]))
    valid = torch.ones(1, 2, dtype=torch.bool)
    # Per step log Laplace2D = -|dx| - |dy| - 2 log 2; mode 0: -4 log 2, mode 1: -2 - 4 log 2 over two steps.
    expected = -math.log(0.25 * math.exp(-4 * math.log(2)) + 0.75 * math.exp(-2 - 4 * math.log(2)))
    assert mixture_nll(log_prior, modes, log_scale, future, valid).item() == pytest.approx(expected, rel=1e-6)
    half = torch.tensor([[True, False]])  # only the first step observed
    expected_half = -math.log(0.25 * math.exp(-2 * math.log(2)) + 0.75 * math.exp(-1 - 2 * math.log(2)))
    assert mixture_nll(log_prior, modes, log_scale, future, half).item() == pytest.approx(expected_half, rel=1e-6)
    p = torch.log(torch.tensor([[0.5, 0.5]]))
    q = torch.log(torch.tensor([[0.9, 0.1]]))
    assert categorical_kl(p, q).item() == pytest.approx(0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1))
    assert categorical_kl(p, p).item() == pytest.approx(0.0, abs=1e-7)
    # Two confident samples on different values: I = H([0.5, 0.5]) - 0 = log 2; identical priors: I = 0.
    confident = torch.tensor([[30.0, 0.0], [0.0, 30.0]])
    assert mutual_information(confident).item() == pytest.approx(math.log(2.0), abs=1e-6)
    assert mutual_information(torch.tensor([[1.0, 0.0], [1.0, 0.0]])).item() == pytest.approx(0.0, abs=1e-7)
    clipped = training_logits(torch.tensor([[20.0, 0.0, -2.0]]), 5.0)
    torch.testing.assert_close(clipped, torch.tensor([[5.0, -5.0, -5.0]]))  # centred (mean 6) then clipped


def _seeded_network(method: str) -> tuple[ForecastingConfig, ForecastNet, dict[str, torch.Tensor]]:
    """The tiny config of `method`, its network initialised from seed 0 and a batch of 8 samples."""
    cfg = tiny_config(method)
    torch.manual_seed(0)
    return cfg, build_network(cfg), tiny_samples(cfg).select(slice(0, 8)).to_torch()


def _grads(network: torch.nn.Module, loss: torch.Tensor) -> dict[str, torch.Tensor | None]:
    network.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    return {name: parameter.grad for name, parameter in network.named_parameters()}


def _nonzero(grads: dict[str, torch.Tensor | None], prefix: str) -> bool:
    return any(g is not None and g.abs().sum() > 0 for name, g in grads.items() if name.startswith(prefix))


def test_blind_branch_detaches_history_and_nulls_context() -> None:
    _, network, batch = _seeded_network("cab")
    full, blind = network(batch, with_blind=True)
    assert blind is not None
    blind_loss = mixture_nll(
        torch.log_softmax(blind.logits, -1), blind.trajectories_m, blind.log_scale, batch["future_m"], batch["future_valid"]
    ).mean()
    grads = _grads(network, blind_loss)
    for encoder in ("history.", "category.", "agent.", "interaction.", "lanes."):
        assert not _nonzero(grads, encoder), f"L_blind reached the {encoder} encoder"
    for head in ("trunk.", "prior.", "decoder.", "mode_embedding."):
        assert _nonzero(grads, head), f"L_blind does not train the shared {head} head"
    # The blind prediction does not depend on the context: changing the map and the neighbours leaves it unchanged.
    altered = dict(batch, lanes=batch["lanes"] + 1.0, neighbors=batch["neighbors"] * 2.0)
    _, blind_altered = network(altered, with_blind=True)
    assert blind_altered is not None
    torch.testing.assert_close(blind_altered.trajectories_m, blind.trajectories_m)


def test_kl_term_only_moves_the_context_aware_distribution() -> None:
    _, network, batch = _seeded_network("cab")
    full, blind = network(batch, with_blind=True)
    assert blind is not None
    full.logits.retain_grad()
    blind.logits.retain_grad()
    cab = ObjectiveConfig(method="cab", blind_weight=0.0, kl_weight=5.0)
    loss, parts = objective_loss(full, blind, batch, cab)
    plain_nll = objective_loss(full, None, batch, ObjectiveConfig(method="plain"))[0]
    clip = cab.logit_clip
    kl = categorical_kl(training_logits(full.logits, clip), training_logits(blind.logits, clip)).mean()
    assert parts["kl"].item() == pytest.approx(kl.item(), rel=1e-6)
    assert loss.item() == pytest.approx((plain_nll - 5.0 * kl).item(), abs=1e-5)
    loss.backward(retain_graph=True)
    assert blind.logits.grad is None or blind.logits.grad.abs().sum() == 0  # blind distribution detached
    with_kl = full.logits.grad.clone()
    full.logits.grad = None
    plain_nll.backward()
    kl_gradient = with_kl - full.logits.grad
    # The KL term's gradient on the context-aware logits is -5 d/dlogits KL[p || sg q].
    detached = training_logits(blind.logits.detach(), clip)
    expected = torch.autograd.grad(-5.0 * categorical_kl(training_logits(full.logits, clip), detached).mean(), full.logits)[0]
    torch.testing.assert_close(kl_gradient, expected, rtol=1e-4, atol=1e-7)
    assert expected.abs().sum() > 0


@pytest.mark.parametrize("method", ["plain", "cab", "reweight", "rubiz"])
def test_every_objective_gives_a_finite_loss_and_gradients(method: str) -> None:
    cfg, network, batch = _seeded_network(method)
    full, blind = network(batch, with_blind=method != "plain")
    loss, parts = objective_loss(full, blind, batch, cfg.objective)
    assert torch.isfinite(loss)
    grads = _grads(network, loss)
    assert _nonzero(grads, "lanes.") and _nonzero(grads, "interaction.")
    if method == "plain":
        assert set(parts) == {"nll", "mutual_information", "loss"}


def test_reweight_and_rubiz_follow_the_paper_equations() -> None:
    _, network, batch = _seeded_network("reweight")
    full, blind = network(batch, with_blind=True)
    assert blind is not None
    objective = ObjectiveConfig(method="reweight", mutual_information_weight=0.0)
    clip = objective.logit_clip
    logits, blind_logits = training_logits(full.logits, clip), training_logits(blind.logits, clip)

    def nll(prediction: Prediction, prior_logits: torch.Tensor) -> torch.Tensor:
        # Equation 2: the modes weighted by q(z | X, C, Y) in the likelihood, plus KL[q || p].
        assert prediction.posterior_logits is not None
        posterior = training_logits(prediction.posterior_logits, clip)
        future, valid = batch["future_m"], batch["future_valid"]
        likelihood = mixture_nll(torch.log_softmax(posterior, -1), prediction.trajectories_m, prediction.log_scale, future, valid)
        return likelihood + categorical_kl(posterior, prior_logits)

    nll_full = nll(full, logits)
    nll_blind = nll(blind, blind_logits)
    expected = nll_full.mean() + nll_blind.mean() + (torch.sigmoid(nll_blind) * nll_full).mean()  # equation 7
    assert objective_loss(full, blind, batch, objective)[0].item() == pytest.approx(expected.item(), rel=1e-5)
    rubiz = ObjectiveConfig(method="rubiz", mutual_information_weight=0.0)
    fused = torch.sigmoid(logits) * torch.sigmoid(blind_logits)
    expected_rubiz = nll(full, fused).mean() + nll_blind.mean()
    assert objective_loss(full, blind, batch, rubiz)[0].item() == pytest.approx(expected_rubiz.item(), rel=1e-5)


def test_recognition_network_sees_the_future_in_training_only() -> None:
    _, network, batch = _seeded_network("cab")
    full, _ = network(batch)
    assert full.posterior_logits is not None
    shifted, _ = network(dict(batch, future_m=batch["future_m"] + 1.0))
    assert shifted.posterior_logits is not None and not torch.allclose(shifted.posterior_logits, full.posterior_logits)
    torch.testing.assert_close(shifted.logits, full.logits)  # the prior never sees the future
    network.eval()
    evaluated, _ = network(batch)
    assert evaluated.posterior_logits is None
    torch.testing.assert_close(evaluated.trajectories_m, full.trajectories_m)
