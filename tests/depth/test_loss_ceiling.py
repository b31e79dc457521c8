"""The per-pixel optimum of the depth training loss (benchmarks/quality_depth_ceiling.py) on a tiny simulated drive."""

from __future__ import annotations

import pytest

from benchmarks.quality_depth_ceiling import optimise_sample
from depth.data import DepthSample
from tests.depth.conftest import TINY


def test_no_step_leaves_the_prior_and_steps_lower_the_loss(tiny_samples: list[DepthSample]) -> None:
    sample = tiny_samples[1]
    config = TINY.model_copy(update={"loss": TINY.loss.model_copy(update={"scales": 1})})
    untouched = optimise_sample(sample, config, steps=0, learning_rate=0.02)
    # Auto-masking breaks ties with noise of 1e-5: losses agree to 1e-3.
    assert untouched["loss_optimum"] == pytest.approx(untouched["loss_prior"], rel=1e-3)
    assert untouched["abs_rel_optimum"] == pytest.approx(untouched["abs_rel_prior"], rel=1e-4)
    fitted = optimise_sample(sample, config, steps=30, learning_rate=0.02)
    assert fitted["loss_prior"] == pytest.approx(untouched["loss_prior"], rel=1e-3)
    assert fitted["loss_optimum"] < 0.9 * fitted["loss_prior"]
    assert fitted["abs_rel_optimum"] != pytest.approx(fitted["abs_rel_prior"], rel=1e-3)  # the depth moved
