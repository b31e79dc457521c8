"""The context-information measurement (benchmarks/quality_forecasting_context.py): forecasters without neighbours or
lanes, and the exact likelihood of the true future."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from benchmarks.quality_forecasting_context import context_gaps, input_config, negative_log_likelihoods, restricted
from forecasting.dataset import build_samples, scenarios_from_tracks
from forecasting.forecaster import Forecaster
from forecasting.train import build_network, fit
from tests.forecasting.conftest import crossing_lane_graph, straight_tracks, tiny_config


def test_leaving_out_neighbours_and_lanes_equals_encoding_without_them() -> None:
    cfg = tiny_config("plain")
    scenarios = scenarios_from_tracks(straight_tracks(), crossing_lane_graph(), cfg.features)
    full = build_samples(scenarios, cfg.features)
    assert full.neighbors.shape[1] == 3 and full.lanes.shape[1] == 4 and full.neighbor_mask.any() and full.lane_mask.any()
    for neighbours, lanes in ((False, True), (True, False), (False, False)):
        encoded = build_samples(scenarios, input_config(cfg, neighbours, lanes, 0, None).features)
        kept = restricted(full, neighbours, lanes)
        for name in ("history", "neighbors", "neighbor_mask", "lanes", "lane_mask", "future_m"):
            np.testing.assert_array_equal(getattr(kept, name), getattr(encoded, name), err_msg=name)


def test_a_part_left_out_has_the_encoding_of_a_part_with_nothing_in_it() -> None:
    """No neighbour at all (max_neighbors: 0) and neighbours all masked out give the same prediction: a zero encoding."""
    cfg = tiny_config("plain")
    samples = build_samples(scenarios_from_tracks(straight_tracks(), crossing_lane_graph(), cfg.features), cfg.features)
    torch.manual_seed(0)
    network = build_network(cfg).eval()
    masked = samples.to_torch()
    masked["neighbor_mask"] = torch.zeros_like(masked["neighbor_mask"])
    masked["lane_mask"] = torch.zeros_like(masked["lane_mask"])
    empty = restricted(samples, False, False).to_torch()
    with torch.no_grad():
        for field in ("logits", "trajectories_m", "log_scale"):
            torch.testing.assert_close(getattr(network(empty)[0], field), getattr(network(masked)[0], field))
        assert not torch.equal(network(samples.to_torch())[0].logits, network(masked)[0].logits)


def test_negative_log_likelihood_is_that_of_the_predicted_laplace_mixture(tmp_path: Path) -> None:
    cfg = tiny_config("plain", epochs=1)
    scenarios = scenarios_from_tracks(straight_tracks(), crossing_lane_graph(), cfg.features)
    forecaster = Forecaster.from_checkpoint(fit(cfg, build_samples(scenarios, cfg.features), tmp_path, progress=False))
    nll, moving = negative_log_likelihoods(forecaster, scenarios[:1])
    batch = build_samples(scenarios[:1], cfg.features).to_torch()
    with torch.no_grad():
        prediction, _ = forecaster.network(batch)
    logits = (prediction.logits - prediction.logits.mean(dim=-1, keepdim=True)).clamp(-cfg.objective.logit_clip, cfg.objective.logit_clip)
    prior = torch.softmax(logits, dim=-1).double().numpy()
    mu, b = prediction.trajectories_m.double().numpy(), np.exp(prediction.log_scale.double().numpy())
    future = batch["future_m"].double().numpy()
    density = np.prod(np.exp(-np.abs(future[:, None] - mu) / b[..., None]) / (2.0 * b[..., None]), axis=(2, 3))
    np.testing.assert_allclose(nll, -np.log((prior * density).sum(axis=1)), rtol=1e-4)
    np.testing.assert_array_equal(moving, np.linalg.norm(future[:, -1], axis=1) > 2.0)  # the cars drive 4-9 m/s
    assert moving.all()


def test_context_gap_is_the_per_seed_difference_to_the_past_only_row() -> None:
    per_seed = {
        "past + neighbours + lanes": [{"nll": 10.0, "nll_moving": 20.0}, {"nll": 12.0, "nll_moving": 21.0}],
        "past only": [{"nll": 11.0, "nll_moving": 24.0}, {"nll": 15.0, "nll_moving": 24.0}],
    }
    gaps = context_gaps(per_seed)
    assert gaps["past + neighbours + lanes: nll"] == 2.0 and gaps["past + neighbours + lanes: nll_std"] == 1.0
    assert gaps["past + neighbours + lanes: nll_moving"] == 3.5 and math.isclose(gaps["past + neighbours + lanes: nll_moving_std"], 0.5)
    assert gaps["past only: nll"] == 0.0
