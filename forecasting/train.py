"""`fit(cfg, dataset, out_dir) -> checkpoint path`: trains the forecaster in-process or under Ray Train unchanged.

Determinism: parameters are initialised from `cfg.seed` and epoch `e` visits the samples in the permutation drawn from
`(cfg.seed, e)`, so a run resumed from `out_dir/last.pt` continues exactly where it stopped. Under
`torch.distributed` the model is wrapped in DDP and every global batch (the config's `batch_size`) is split by rank, so
`W` workers see the same global batches as one worker; only rank 0 writes checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from rich.progress import Progress
from torch.nn.parallel import DistributedDataParallel

from forecasting.cab import needs_blind_branch, objective_loss
from forecasting.config import ForecastingConfig
from forecasting.dataset import FeatureBatch
from forecasting.model import ForecastNet
from scenes import __version__
from scenes.io import atomic_write

__all__ = ["CHECKPOINT_FORMAT", "build_network", "save_checkpoint", "load_checkpoint", "fit"]

CHECKPOINT_FORMAT = "drivestack-forecaster-1"
OnCheckpoint = Callable[[dict[str, float], "Path | None"], None]


def build_network(cfg: ForecastingConfig) -> ForecastNet:
    return ForecastNet(cfg.model, cfg.features)


def save_checkpoint(path: Path, network: ForecastNet, cfg: ForecastingConfig, **extra: Any) -> Path:
    """One file: state dict, config and drivestack version (plus training state in `extra`), written atomically."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "drivestack_version": __version__,
        "config": cfg.model_dump(mode="json"),
        "state_dict": network.state_dict(),
        **extra,
    }
    with atomic_write(path) as temporary:
        torch.save(payload, temporary)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's payload; the error names the file when it is not a forecaster checkpoint."""
    checkpoint_path = Path(path)
    try:
        payload = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as error:
        raise ValueError(f"{checkpoint_path}: cannot read forecaster checkpoint ({error})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{checkpoint_path}: not a drivestack forecaster checkpoint (format {CHECKPOINT_FORMAT})")
    for key in ("config", "state_dict"):
        if key not in payload:
            raise ValueError(f"{checkpoint_path}: checkpoint lacks '{key}'")
    return payload


def cosine_learning_rate(base: float, epoch: int, epochs: int) -> float:
    """Cosine decay from `base` at epoch 0 towards 0, a function of the epoch alone (so resuming is exact)."""
    return base * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def _distributed() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _epoch_means(totals: dict[str, float], seen: int, world: int) -> dict[str, float]:
    """Sample-weighted means of the logged loss terms over the epoch, over every worker."""
    names = sorted(totals)
    if world > 1:
        buffer = torch.tensor([totals[name] for name in names] + [float(seen)], dtype=torch.float64)
        dist.all_reduce(buffer)
        totals = dict(zip(names, buffer[:-1].tolist()))
        seen = int(buffer[-1].item())
    return {name: totals[name] / max(1, seen) for name in names}


def fit(
    cfg: ForecastingConfig,
    dataset: FeatureBatch,
    out_dir: Path,
    *,
    on_checkpoint: OnCheckpoint | None = None,
    progress: bool = True,
) -> Path:
    """Trains for `cfg.optim.epochs` epochs on `dataset`; returns the final checkpoint `out_dir/forecaster.pt`."""
    out_dir = Path(out_dir)
    rank, world = _distributed()
    optim_cfg = cfg.optim
    if optim_cfg.batch_size % world:
        raise ValueError(f"optim.batch_size {optim_cfg.batch_size} is not divisible by the {world} workers")
    if len(dataset) < 1:
        raise ValueError("fit: the dataset is empty")
    torch.manual_seed(cfg.seed)
    network = build_network(cfg)
    optimizer = torch.optim.AdamW(network.parameters(), lr=optim_cfg.learning_rate, weight_decay=optim_cfg.weight_decay)
    start_epoch = 0
    last_path = out_dir / "last.pt"
    if last_path.exists():
        state = load_checkpoint(last_path)
        try:
            network.load_state_dict(state["state_dict"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, KeyError, ValueError) as error:
            raise ValueError(f"{last_path}: cannot resume, the checkpoint does not match this config ({error})") from None
        start_epoch = int(state["epoch"]) + 1
    model: torch.nn.Module = DistributedDataParallel(network) if world > 1 else network
    with_blind = needs_blind_branch(cfg.objective)
    final_path = out_dir / "forecaster.pt"
    with Progress(disable=not progress or rank != 0, transient=True) as bar:
        task = bar.add_task(f"training {cfg.objective.method}", total=optim_cfg.epochs, completed=start_epoch)
        for epoch in range(start_epoch, optim_cfg.epochs):
            order = np.random.default_rng([cfg.seed, epoch]).permutation(len(dataset))
            for group in optimizer.param_groups:
                group["lr"] = cosine_learning_rate(optim_cfg.learning_rate, epoch, optim_cfg.epochs)
            totals: dict[str, float] = {}
            seen = 0
            model.train()
            for begin in range(0, len(order), optim_cfg.batch_size):
                global_batch = order[begin : begin + optim_cfg.batch_size]
                if len(global_batch) < world:
                    continue  # every worker skips the same tail batch, so none waits for the others
                mine = global_batch[rank::world]
                batch = dataset.select(mine).to_torch()
                full, blind = model(batch, with_blind=with_blind)
                loss, parts = objective_loss(full, blind, batch, cfg.objective)
                optimizer.zero_grad(set_to_none=True)
                # DDP averages gradients over workers; scaling by the worker's share of the global batch makes
                # the update equal to the global-batch mean even when the last batch splits unevenly.
                (loss * len(mine) * world / len(global_batch)).backward()
                torch.nn.utils.clip_grad_norm_(network.parameters(), optim_cfg.grad_clip_norm)
                optimizer.step()
                parts.setdefault("loss", loss.detach())
                for name, value in parts.items():
                    totals[name] = totals.get(name, 0.0) + float(value) * len(mine)
                seen += len(mine)
            metrics = _epoch_means(totals, seen, world)
            metrics["epoch"] = float(epoch)
            metrics["learning_rate"] = float(optimizer.param_groups[0]["lr"])
            checkpoint: Path | None = None
            if rank == 0:
                save_checkpoint(last_path, network, cfg, epoch=epoch, optimizer=optimizer.state_dict(), metrics=metrics)
                checkpoint = last_path
                if epoch == optim_cfg.epochs - 1:
                    checkpoint = save_checkpoint(final_path, network, cfg, epoch=epoch, metrics=metrics)
            if on_checkpoint is not None:
                on_checkpoint(metrics, checkpoint)
            bar.advance(task)
    if rank == 0 and not final_path.exists():
        save_checkpoint(final_path, network, cfg, epoch=optim_cfg.epochs - 1)
    return final_path
