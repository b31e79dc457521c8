"""The dense-supervision bound of benchmarks/quality_depth_supervised.py on the tiny simulated drive."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from benchmarks.quality_depth_supervised import BANDS, DenseDepthTask, band_abs_rel, dense_config, dense_target
from depth.data import DepthSample
from depth.evaluate import interpolation_predictor
from depth.metrics import MAX_DEPTH_M
from tests.depth.conftest import TINY


def test_dense_target_is_the_renderer_depth_at_network_resolution_up_to_80_m(tiny_samples: list[DepthSample]) -> None:
    sample = tiny_samples[0]
    target = dense_target(sample, TINY)
    assert target.shape == (TINY.network.height_px, TINY.network.width_px)
    assert target.max() <= MAX_DEPTH_M and (target > 0).mean() > 0.5
    gt = sample.gt_depth_m
    assert gt is not None
    assert gt.max() > MAX_DEPTH_M  # the sky is beyond the cap, and left out
    assert target[0, 0] == (gt[0, 0] if 0 < gt[0, 0] <= MAX_DEPTH_M else 0.0)


def test_band_abs_rel_is_zero_for_the_truth_and_positive_for_interpolation(tiny_samples: list[DepthSample]) -> None:
    def truth(samples: Sequence[DepthSample]) -> list[np.ndarray]:
        depths = []
        for s in samples:
            assert s.gt_depth_m is not None
            depths.append(np.where(s.gt_depth_m > 0, s.gt_depth_m, 1000.0))  # no depth: the sky
        return depths

    bands = band_abs_rel(tiny_samples, {"truth": truth, "interpolation": interpolation_predictor})
    assert len(bands["truth"]) == BANDS and max(bands["truth"]) < 1e-6
    assert min(bands["interpolation"]) > 0


def test_dense_supervision_fits_a_batch(tiny_samples: list[DepthSample]) -> None:
    config = dense_config(TINY)
    assert (config.loss.photometric, config.loss.smoothness, config.train.flip, config.pose.method) == (0.0, 0.0, False, "oracle")
    assert config.network == TINY.network and config.loss.lidar == TINY.loss.lidar
    torch.manual_seed(0)
    task = DenseDepthTask(config, tiny_samples)
    model = task.build_model()
    batch = task.make_batch(np.array([0, 1]), 0, torch.device("cpu"))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = float(task.loss(model, batch)[0].detach())
    for _ in range(60):
        loss, _ = task.loss(model, batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert float(task.loss(model, batch)[0].detach()) < 0.75 * first  # from the interpolated prior towards the dense truth
