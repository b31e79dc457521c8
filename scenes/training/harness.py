"""The one training loop of drivestack: `fit(task, out_dir)`, the same code in-process and on every Ray Train worker.

A module plugs in with a `TrainingTask`: its model factory, its batches, its `loss(model, batch) -> (loss, parts)`,
its config and its loop settings. The harness owns everything else:

- seeding: the model is initialised after `torch.manual_seed(seed)`, epoch `e` visits the samples in the permutation
  drawn from `(seed, e)`, and the task gets `e` to seed its augmentation, so a resumed run continues exactly where
  an uninterrupted one would be;
- AdamW (the task may split the parameters into groups with their own learning-rate factor, as GANs' two-timescale
  updates need), a one-cycle (per step), cosine (per epoch) or constant learning rate, gradient clipping;
- under `torch.distributed` (Ray Train, `--workers N`): DDP, and the config's batch size is the *global* batch:
  worker `r` of `W` takes `batch[r::W]` and its loss is scaled by its share, so the update equals the one-worker
  update and `W` workers follow the one-worker loss curve; metrics are sample-weighted means over every worker;
- the device: the worker's GPU when there is one (nccl), else the CPU (gloo); the task moves its batches there;
- a progress bar, `metrics.json` and `loss_curve.png` after every epoch, `last.pt` (weights, optimizer, schedule,
  history) written atomically after every epoch by rank 0, and the final checkpoint `final_name`;
- resume from `out_dir/last.pt`, only when it was written with the same stage and config (else a `CheckpointError`
  naming the file and the first differing key).

Closed-form stages (the tracker's noise and gates are statistics, not gradient steps) implement `EstimationTask`
and go through `estimate`, which writes the same checkpoint and metrics files.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import numpy as np
import torch
from pydantic import BaseModel, ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from scenes.errors import InputError
from scenes.training.checkpoint import CheckpointError, first_difference, load_checkpoint, save_checkpoint
from scenes.training.distributed import WorkerContext, barrier, sum_across_workers, worker_context, worker_device, wrap_model
from scenes.training.history import write_history

LAST: Final = "last.pt"
OnCheckpoint = Callable[[dict[str, float], Path | None], None]


@dataclass(frozen=True)
class LoopSettings:
    """How the harness trains: a module maps its config onto these."""

    epochs: int
    batch_size: int  # the global batch, over every worker
    learning_rate: float
    weight_decay: float
    seed: int
    grad_clip_norm: float | None
    schedule: Literal["one_cycle", "cosine", "constant"]
    one_cycle_warmup_fraction: float = 0.3
    num_threads: int | None = None
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW's; GANs use (0, 0.99) or (0, 0.9)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError(f"LoopSettings: epochs ({self.epochs}) and batch_size ({self.batch_size}) must be >= 1")

    @classmethod
    def one_cycle(cls, train: TrainSection, grad_clip_norm: float | None) -> LoopSettings:
        """One-cycle settings from a module's `train` config section (epochs, batch size, learning rate, weight
        decay, seed, threads)."""
        return cls(
            epochs=train.epochs,
            batch_size=train.batch_size,
            learning_rate=train.learning_rate,
            weight_decay=train.weight_decay,
            seed=train.seed,
            grad_clip_norm=grad_clip_norm,
            schedule="one_cycle",
            num_threads=train.num_threads,
        )


@dataclass(frozen=True)
class ParameterGroup:
    """Parameters trained at `lr_factor` times the loop's learning rate (every schedule scales them alike)."""

    parameters: list[torch.nn.Parameter]
    lr_factor: float = 1.0


class TrainSection(Protocol):
    """The loop fields a module's `train` config section holds."""

    @property
    def epochs(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def learning_rate(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def seed(self) -> int: ...
    @property
    def num_threads(self) -> int | None: ...


class TrainingTask(ABC):
    """What a module supplies to the harness. Subclasses set `stage`, `final_name`, `config` and `loop`."""

    stage: str
    final_name: str
    config: BaseModel
    loop: LoopSettings
    config_source: str = "this run's config"
    plot_title: str = ""

    @abstractmethod
    def __len__(self) -> int:
        """Number of training samples (indices 0..len-1)."""

    @abstractmethod
    def build_model(self) -> torch.nn.Module:
        """The model to train, called right after the seed is set: freshly initialised, or with the weights a warm start
        or finetuning begins from loaded into it."""

    def parameter_groups(self, model: torch.nn.Module) -> list[ParameterGroup] | None:
        """The parameters in groups, each with its factor on the learning rate; None: one group of the parameters that
        require gradients, factor 1."""
        return None

    def resume_relevant(self, config: dict[str, Any]) -> dict[str, Any]:
        """The part of a dumped config that must match for `last.pt` to be resumed (default: all of it); a stage trained
        in phases drops the other phases' settings."""
        return config

    @abstractmethod
    def make_batch(self, indices: np.ndarray, epoch: int, device: torch.device) -> Any:
        """The batch of samples `indices` on `device` (augmentation, when any, seeded from the epoch and index)."""

    @abstractmethod
    def loss(self, model: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, Mapping[str, float | torch.Tensor]]:
        """The mean loss over the batch and the parts to log."""


class EstimationTask(ABC):
    """A stage fitted in closed form: `estimate()` returns its weights, fitted config and summary numbers."""

    stage: str
    final_name: str

    @abstractmethod
    def estimate(self) -> tuple[Mapping[str, torch.Tensor], BaseModel, dict[str, float]]: ...


def _stored_config(payload: dict[str, Any], task: TrainingTask) -> dict[str, Any]:
    """The checkpoint's config as this version reads it: a setting added since the run began takes its default, so the
    run still resumes; one this version does not know is left for the comparison to name."""
    try:
        return type(task.config).model_validate(payload["config"]).model_dump(mode="json")
    except ValidationError:
        stored: dict[str, Any] = payload["config"]
        return stored


def _check_resumable(payload: dict[str, Any], task: TrainingTask, path: Path) -> None:
    if payload["stage"] != task.stage:
        raise CheckpointError(f"{path}: cannot resume a {payload['stage']} run as {task.stage}; use another --out")
    current = task.config.model_dump(mode="json")
    difference = first_difference(task.resume_relevant(_stored_config(payload, task)), task.resume_relevant(current))
    if difference is not None:
        raise CheckpointError(
            f"{path}: was written with another config than {task.config_source} (first difference: '{difference}'); use another --out or remove it"
        )
    for key in ("epoch", "optimizer", "history"):
        if key not in payload:
            raise CheckpointError(f"{path}: not a resumable checkpoint (lacks '{key}')")


def _scheduler(optimizer: torch.optim.Optimizer, loop: LoopSettings, steps_per_epoch: int) -> torch.optim.lr_scheduler.OneCycleLR | None:
    if loop.schedule != "one_cycle":
        return None
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=[group["initial_lr_max"] for group in optimizer.param_groups],
        total_steps=steps_per_epoch * loop.epochs,
        pct_start=loop.one_cycle_warmup_fraction,
    )


def _optimizer(task: TrainingTask, network: torch.nn.Module) -> torch.optim.AdamW:
    """AdamW over the task's parameter groups (by default one group of the parameters left trainable, so a stage that
    freezes part of its model hands the optimizer only the rest); each group keeps its peak learning rate."""
    loop = task.loop
    groups = task.parameter_groups(network) or [ParameterGroup([parameter for parameter in network.parameters() if parameter.requires_grad])]
    return torch.optim.AdamW(
        [{"params": group.parameters, "lr": loop.learning_rate * group.lr_factor, "initial_lr_max": loop.learning_rate * group.lr_factor} for group in groups],
        lr=loop.learning_rate,
        weight_decay=loop.weight_decay,
        betas=loop.betas,
    )


def cosine_learning_rate(base: float, epoch: int, epochs: int) -> float:
    """Cosine decay from `base` at epoch 0 towards 0, a function of the epoch alone (so resuming is exact)."""
    return base * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def fit(task: TrainingTask, out_dir: str | Path, *, on_checkpoint: OnCheckpoint | None = None, show_progress: bool = True) -> Path:
    """Trains `task` for `task.loop.epochs` epochs; returns the final checkpoint `out_dir/task.final_name`.

    `on_checkpoint(metrics, path)` is called on every worker after every epoch, with the path of `last.pt` on rank 0
    and None elsewhere (Ray Train reports checkpoints through it).
    """
    out_path = Path(out_dir)
    loop = task.loop
    context = worker_context()
    if loop.batch_size < context.world_size:
        raise InputError(f"batch_size {loop.batch_size} is the global batch and must be at least the {context.world_size} workers")
    if len(task) < 1:
        raise InputError(f"{task.stage}: no training samples")
    if loop.num_threads is not None:
        torch.set_num_threads(loop.num_threads)
    device = worker_device()
    torch.manual_seed(loop.seed)
    network = task.build_model()
    network.to(device)
    optimizer = _optimizer(task, network)
    steps_per_epoch = math.ceil(len(task) / loop.batch_size)
    scheduler = _scheduler(optimizer, loop, steps_per_epoch)
    history: list[dict[str, float]] = []
    start_epoch = 0
    last_path = out_path / LAST
    if last_path.is_file():
        state = load_checkpoint(last_path)
        _check_resumable(state, task, last_path)
        try:
            network.load_state_dict(state["state_dict"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
        except (RuntimeError, KeyError, ValueError) as error:
            raise CheckpointError(f"{last_path}: cannot resume from it ({str(error).splitlines()[0]})") from None
        history = [dict(row) for row in state["history"]]
        start_epoch = int(state["epoch"]) + 1
    model = wrap_model(network, context)
    progress = Progress(
        TextColumn(f"[bold]{task.stage}[/] epoch {{task.fields[epoch]}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeRemainingColumn(),
        disable=not show_progress or not context.is_primary,
    )
    with progress:
        bar = progress.add_task("train", total=steps_per_epoch * (loop.epochs - start_epoch), epoch=start_epoch, loss=float("nan"))
        for epoch in range(start_epoch, loop.epochs):
            on_step = functools.partial(_advance, progress, bar, epoch)
            metrics = _train_epoch(task, model, network, optimizer, scheduler, epoch, device, context, on_step)
            history.append(metrics)
            checkpoint_path: Path | None = None
            if context.is_primary:
                checkpoint_path = save_checkpoint(
                    last_path,
                    stage=task.stage,
                    state_dict=network.state_dict(),
                    config=task.config,
                    epoch=epoch,
                    optimizer=optimizer.state_dict(),
                    scheduler=scheduler.state_dict() if scheduler is not None else None,
                    history=history,
                )
                write_history(out_path, history, task.plot_title or f"{task.stage} training")
            if on_checkpoint is not None:
                on_checkpoint(dict(metrics), checkpoint_path)
    final = out_path / task.final_name
    if context.is_primary:
        network.eval()
        save_checkpoint(final, stage=task.stage, state_dict=network.state_dict(), config=task.config, epoch=loop.epochs - 1, history=history)
    barrier(context)
    return final


def _advance(progress: Progress, bar: TaskID, epoch: int, loss: float) -> None:
    """Moves the progress bar one step, showing the epoch and the step's loss."""
    progress.update(bar, advance=1, epoch=epoch, loss=loss)


def _train_epoch(
    task: TrainingTask,
    model: torch.nn.Module,
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.OneCycleLR | None,
    epoch: int,
    device: torch.device,
    context: WorkerContext,
    on_step: Callable[[float], None],
) -> dict[str, float]:
    loop = task.loop
    if loop.schedule == "cosine":
        for group in optimizer.param_groups:
            group["lr"] = cosine_learning_rate(group.get("initial_lr_max", loop.learning_rate), epoch, loop.epochs)
    order = np.random.default_rng([loop.seed, epoch]).permutation(len(task))
    totals: dict[str, float] = {}
    seen = 0
    model.train()
    for begin in range(0, len(order), loop.batch_size):
        global_batch = order[begin : begin + loop.batch_size]
        if len(global_batch) < context.world_size:
            continue  # every worker skips the same short tail batch, so none waits for the others
        mine = global_batch[context.rank :: context.world_size]
        loss, parts = task.loss(model, task.make_batch(mine, epoch, device))
        optimizer.zero_grad(set_to_none=True)
        # DDP averages gradients over workers; scaling by this worker's share of the global batch makes the update
        # the global-batch mean even when the batch splits unevenly.
        share = len(mine) * context.world_size / len(global_batch)
        (loss * share if share != 1 else loss).backward()
        if loop.grad_clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(network.parameters(), loop.grad_clip_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        value = float(loss.detach())
        for name, part in {"loss": value, **parts}.items():
            totals[name] = totals.get(name, 0.0) + float(part) * len(mine)
        seen += len(mine)
        on_step(value)
    names = sorted(totals)
    summed = sum_across_workers([totals[name] for name in names] + [float(seen)], context)
    metrics = {name: total / max(summed[-1], 1.0) for name, total in zip(names, summed[:-1], strict=True)}
    metrics["epoch"] = float(epoch)
    metrics["learning_rate"] = float(optimizer.param_groups[0]["lr"])
    return metrics


def estimate(task: EstimationTask, out_dir: str | Path, *, show_progress: bool = True) -> Path:
    """Runs a closed-form fit and writes its checkpoint and metrics, like `fit` does for a trained stage."""
    out_path = Path(out_dir)
    with Progress(disable=not show_progress, transient=True) as progress:
        progress.add_task(f"{task.stage}: estimating", total=None)
        state_dict, config, summary = task.estimate()
    final = save_checkpoint(out_path / task.final_name, stage=task.stage, state_dict=state_dict, config=config, statistics=summary)
    write_history(out_path, [{"epoch": 0.0, **summary}], f"{task.stage} fit")
    return final
