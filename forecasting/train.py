"""The forecaster's training task for the harness (`scenes.training.harness`): feature batches and CAB's objective.

Parameters are initialised from `cfg.seed`, epoch `e` visits the samples in the permutation drawn from
`(cfg.seed, e)`, the learning rate follows a per-epoch cosine; `out_dir/last.pt` after every epoch and
`out_dir/forecaster.pt` at the end, in the one checkpoint format. The same task finetunes a pretrained forecaster
(from the weights handed as `initial_state`, see `forecasting.finetune`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from forecasting.cab import needs_blind_branch, objective_loss
from forecasting.config import ForecastingConfig
from forecasting.dataset import FeatureBatch
from forecasting.model import ForecastNet
from forecasting.tracker_noise import add_tracker_noise
from scenes.training import checkpoint
from scenes.training.harness import LoopSettings, OnCheckpoint, TrainingTask
from scenes.training.harness import fit as harness_fit

__all__ = ["STAGE", "FINAL", "ForecastingTask", "build_network", "load_checkpoint", "fit"]

STAGE: Final = "forecasting"
FINAL: Final = "forecaster.pt"


def build_network(cfg: ForecastingConfig) -> ForecastNet:
    return ForecastNet(cfg.model, cfg.features, cfg.objective.logit_clip)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A forecaster checkpoint's payload; a `CheckpointError` naming the file when it is not one."""
    return checkpoint.load_checkpoint(path, STAGE)


class ForecastingTask(TrainingTask):
    """The forecaster on the training harness: its objective (plain, CAB, Reweight, RUBiZ) on feature batches."""

    stage = STAGE
    final_name = FINAL
    config: ForecastingConfig

    def __init__(
        self,
        cfg: ForecastingConfig,
        samples: FeatureBatch,
        *,
        initial_state: Mapping[str, torch.Tensor] | None = None,
        config_source: str = "this run's config",
    ) -> None:
        self.config = cfg
        self.samples = samples
        self.config_source = config_source
        self.plot_title = f"forecaster training ({cfg.objective.method})"
        self._initial_state = initial_state
        self._with_blind = needs_blind_branch(cfg.objective)
        self.loop = LoopSettings(
            epochs=cfg.optim.epochs,
            batch_size=cfg.optim.batch_size,
            learning_rate=cfg.optim.learning_rate,
            weight_decay=cfg.optim.weight_decay,
            seed=cfg.seed,
            grad_clip_norm=cfg.optim.grad_clip_norm,
            schedule="cosine",
        )

    def __len__(self) -> int:
        return len(self.samples)

    def build_model(self) -> ForecastNet:
        network = build_network(self.config)
        if self._initial_state is not None:
            network.load_state_dict(self._initial_state)
        return network

    def make_batch(self, indices: np.ndarray, epoch: int, device: torch.device) -> dict[str, torch.Tensor]:
        """The samples at `indices`, with tracker-like input noise drawn from (seed, epoch, first index) when configured."""
        batch = self.samples.select(indices)
        noise = self.config.tracker_noise
        if noise.enabled:
            rng = np.random.default_rng((self.config.seed, epoch, int(indices[0]) if len(indices) else 0))
            batch = add_tracker_noise(batch, noise, self.config.features.position_scale_m, rng)
        return batch.to_torch(device)

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Mapping[str, float | torch.Tensor]]:
        full, blind = model(batch, with_blind=self._with_blind)
        loss, parts = objective_loss(full, blind, batch, self.config.objective)
        return loss, {name: value for name, value in parts.items() if name != "loss"}


def fit(
    cfg: ForecastingConfig,
    dataset: FeatureBatch,
    out_dir: Path,
    *,
    on_checkpoint: OnCheckpoint | None = None,
    progress: bool = True,
) -> Path:
    """Trains the forecaster on `dataset` with the harness; returns the final checkpoint `out_dir/forecaster.pt`."""
    return harness_fit(ForecastingTask(cfg, dataset), out_dir, on_checkpoint=on_checkpoint, show_progress=progress)
