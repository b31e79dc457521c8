"""LiDARTouch on the training harness: it fits a tiny batch, is deterministic by seed, trains a pose network, and its
checkpoint loads into the estimator; the shipped checkpoint is small and loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from depth.data import DepthSample
from depth.model import SHIPPED_CHECKPOINT, STAGE, DepthEstimator
from depth.train import DepthTask
from scenes.training.checkpoint import CheckpointError, load_checkpoint
from scenes.training.harness import fit
from tests.depth.conftest import TINY


def _history(out: Path) -> list[dict[str, float]]:
    return list(json.loads((out / "metrics.json").read_text()))


def test_overfits_a_tiny_batch(tiny_samples: list[DepthSample], tmp_path: Path) -> None:
    # The published network (sigmoid output) learns from scratch; the default one starts at the interpolated prior.
    network = TINY.network.model_copy(update={"interpolated_prior": False})
    train = TINY.train.model_copy(update={"epochs": 30, "batch_size": 2, "learning_rate": 5e-3, "flip": False, "color_jitter": 0.0})
    fit(DepthTask(TINY.model_copy(update={"network": network, "train": train}), tiny_samples[:2]), tmp_path, show_progress=False)
    history = _history(tmp_path)
    assert history[-1]["loss"] < 0.75 * history[0]["loss"]
    assert history[-1]["lidar"] < 0.3 * history[0]["lidar"]
    estimator = DepthEstimator.from_checkpoint(tmp_path / "depth.pt")
    depth = estimator.predict_batch(tiny_samples[0].image[None], tiny_samples[0].lidar_depth_m[None])
    assert depth.shape == (1, 64, 128) and np.isfinite(depth).all() and depth.min() >= TINY.network.min_depth_m


def test_same_seed_same_weights(tiny_samples: list[DepthSample], tmp_path: Path) -> None:
    for name in ("a", "b"):
        fit(DepthTask(TINY, tiny_samples), tmp_path / name, show_progress=False)
    first, second = (load_checkpoint(tmp_path / name / "depth.pt", STAGE)["state_dict"] for name in ("a", "b"))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_pose_network_is_trained_when_selected(tiny_samples: list[DepthSample], tmp_path: Path) -> None:
    config = TINY.model_copy(update={"pose": TINY.pose.model_copy(update={"method": "posenet"})})
    task = DepthTask(config, tiny_samples)
    torch.manual_seed(0)
    initial = {key: value.clone() for key, value in task.build_model().state_dict().items() if key.startswith("pose.")}
    fit(task, tmp_path, show_progress=False)
    trained = load_checkpoint(tmp_path / "depth.pt", STAGE)["state_dict"]
    assert initial and any(not torch.equal(initial[key], trained[key]) for key in initial if trained[key].is_floating_point())
    DepthEstimator.from_checkpoint(tmp_path / "depth.pt")  # the estimator needs only the depth network


def test_shipped_checkpoint_is_small_and_loads() -> None:
    assert SHIPPED_CHECKPOINT.stat().st_size <= 5 * 1024 * 1024
    estimator = DepthEstimator.from_checkpoint()
    assert estimator.config.beams.keep == 4 and estimator.config.network.use_lidar and estimator.config.network.use_image


def test_checkpoint_of_another_stage_is_refused(tmp_path: Path) -> None:
    from scenes.training.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "other.pt", stage="detection", state_dict={}, config={})
    with pytest.raises(CheckpointError, match="other.pt"):
        DepthEstimator.from_checkpoint(path)
