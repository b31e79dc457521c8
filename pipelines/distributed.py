"""Distributed training and inference on Ray.

`run_fit` runs a module's `fit(cfg, dataset, out_dir, *, on_checkpoint=None) -> Path` either in-process (no
`--workers`: Ray is never imported) or under Ray Train's `TorchTrainer` with N workers (gloo on CPU, nccl on GPU).
Under Ray, every epoch's checkpoint reaches Ray through the fit's `on_checkpoint` callback (`ray.train.report` with a
`ray.train.Checkpoint`, which carries the fit's `last.pt` and the metrics history so far). After a worker failure Ray
restarts the worker group (`FailureConfig(max_failures)`); rank 0 picks the newest resume point (Ray's latest
registered checkpoint, or its own mirror of the last one it reported, which Ray may not have registered yet) and sends
it to every rank, which writes it to `out_dir/last.pt`, where every `fit` resumes from.

`map_logs` runs one function per log, sequentially or as parallel Ray tasks, and returns the results in input order:
the synthetic city is generated with it (`simulate_logs`) and the end-to-end pipeline processes its logs with it
(`pipelines.e2e_parallel`).

The helpers `worker_context`, `shard_by_rank`, `epoch_batches`, `wrap_model`, `worker_device` and
`mean_across_workers` are what a `fit` needs to obey the training contract under `torch.distributed`: samples sharded
by rank, the config's batch size treated as the global batch, DDP, and metrics averaged over all workers. They use
`torch.distributed` only, so importing this module never imports Ray.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, overload, runtime_checkable

import numpy as np
import torch
import torch.distributed as dist
from rich.progress import Progress

from scenes.io import atomic_write, atomic_write_text

if TYPE_CHECKING:
    from scenes.synth.world import SynthConfig, SynthLog

T = TypeVar("T")
R = TypeVar("R")

FitFn = Callable[..., Path]

RESUME_FILENAME: Final = "last.pt"
METRICS_FILENAME: Final = "run_metrics.json"
CURVE_FILENAME: Final = "run_metrics.png"
_CHECKPOINT_META: Final = "drivestack_checkpoint.json"
OBJECT_STORE_BYTES: Final = 256 * 1024 * 1024


class DistributedError(RuntimeError):
    """A distributed run that cannot start or did not produce a checkpoint."""


@runtime_checkable
class DatasetSpec(Protocol):
    """A picklable description of a dataset, opened on each worker (so workers never receive the data itself)."""

    def open(self) -> Any: ...


# --------------------------------------------------------------------------------------------------------------------
# Helpers for `fit` functions (torch.distributed only)
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerContext:
    """This process's place in the training job: rank 0 of 1 when not distributed."""

    rank: int
    world_size: int

    @property
    def is_primary(self) -> bool:
        return self.rank == 0


def worker_context() -> WorkerContext:
    if dist.is_available() and dist.is_initialized():
        return WorkerContext(rank=dist.get_rank(), world_size=dist.get_world_size())
    return WorkerContext(rank=0, world_size=1)


class _Shard(Sequence[T]):
    """Lazy view `items[rank::world_size]`: indexing it touches only this worker's items."""

    def __init__(self, items: Sequence[T], rank: int, world_size: int) -> None:
        self._items = items
        self._indices = range(rank, len(items), world_size)

    def __len__(self) -> int:
        return len(self._indices)

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...

    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        if isinstance(index, slice):
            return [self._items[i] for i in self._indices[index]]
        return self._items[self._indices[index]]

    def __iter__(self) -> Iterator[T]:
        return (self._items[i] for i in self._indices)


def shard_by_rank(items: Sequence[T], context: WorkerContext | None = None) -> Sequence[T]:
    """This worker's share of `items` (every world_size-th item from its rank), without reading the others.

    With a lazy sequence of logs, each worker reads only its own logs.
    """
    context = context or worker_context()
    return _Shard(items, context.rank, context.world_size)


def per_worker_batch_size(global_batch_size: int, context: WorkerContext | None = None) -> int:
    """The config's batch size is the global batch: each of the world_size workers takes an equal part of it."""
    context = context or worker_context()
    if global_batch_size < context.world_size or global_batch_size % context.world_size:
        raise ValueError(
            f"batch_size={global_batch_size} is the global batch and must be a multiple of the number of workers "
            f"({context.world_size})"
        )
    return global_batch_size // context.world_size


def epoch_batches(
    num_samples: int, global_batch_size: int, seed: int, epoch: int, context: WorkerContext | None = None
) -> list[np.ndarray]:
    """Sample indices of this worker's part of every global batch of one epoch.

    The epoch's permutation depends only on (seed, epoch), so a resumed run sees the same batches. It is cut into
    global batches of `global_batch_size` (an incomplete last batch is dropped), and worker r takes `batch[r::W]`:
    the union over workers of step k is exactly step k of a one-worker run, so with DDP's gradient averaging over
    equal per-worker batches, W workers follow the one-worker loss curve.
    """
    context = context or worker_context()
    per_worker_batch_size(global_batch_size, context)
    order = np.random.default_rng([seed, epoch]).permutation(num_samples)
    steps = num_samples // global_batch_size
    return [
        order[step * global_batch_size : (step + 1) * global_batch_size][context.rank :: context.world_size]
        for step in range(steps)
    ]


def worker_device() -> torch.device:
    """The device of this worker: its GPU (LOCAL_RANK, set by Ray Train and torchrun) when CUDA exists, else CPU."""
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def wrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """DDP around `model` when torch.distributed is initialised (parameters broadcast from rank 0), else `model`."""
    if not (dist.is_available() and dist.is_initialized()):
        return model
    device = next(model.parameters()).device
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DDP (whose state dict has no `module.` prefix), for checkpoints."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def mean_across_workers(total: float, count: float) -> float:
    """sum(total) / sum(count) over all workers: a per-sample mean of the whole global batch or epoch."""
    if not (dist.is_available() and dist.is_initialized()):
        return total / count if count else float("nan")
    backend_device = worker_device() if dist.get_backend() == "nccl" else torch.device("cpu")
    values = torch.tensor([total, count], dtype=torch.float64, device=backend_device)
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    summed_total, summed_count = values.tolist()
    return summed_total / summed_count if summed_count else float("nan")


# --------------------------------------------------------------------------------------------------------------------
# Metrics history of a run (written by run_fit beside the checkpoints)
# --------------------------------------------------------------------------------------------------------------------


def read_metrics_history(out_dir: str | os.PathLike[str]) -> list[dict[str, float]]:
    """The per-epoch metrics that the fit passed to `on_checkpoint`, in order (resumed epochs counted once)."""
    path = Path(out_dir) / METRICS_FILENAME
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, json.JSONDecodeError) as error:
        raise DistributedError(f"{path}: cannot read the metrics history ({error})") from None
    if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
        raise DistributedError(f"{path}: the metrics history must be a list of mappings")
    return history


def write_metrics_history(out_dir: Path, history: Sequence[dict[str, float]]) -> None:
    atomic_write_text(out_dir / METRICS_FILENAME, json.dumps(list(history), indent=1))


def plot_metrics_history(history: Sequence[dict[str, float]], path: Path) -> None:
    """One panel per metric against the epoch index (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({name for row in history for name, value in row.items() if isinstance(value, int | float)})
    if not names:
        return
    figure, axes = plt.subplots(len(names), 1, figsize=(6, 2.2 * len(names)), squeeze=False)
    for axis, name in zip(axes[:, 0], names, strict=True):
        epochs = [index for index, row in enumerate(history) if name in row]
        axis.plot(epochs, [history[index][name] for index in epochs], marker="o")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("epoch (checkpoint index)")
    figure.tight_layout()
    with atomic_write(path) as temporary:
        figure.savefig(temporary, format="png", dpi=90)
    plt.close(figure)


def validate_metrics(metrics: Any) -> dict[str, float]:
    if not isinstance(metrics, dict) or not all(isinstance(key, str) for key in metrics):
        raise TypeError(f"on_checkpoint expects a dict[str, float] of metrics, got {type(metrics).__name__}")
    bad = [key for key, value in metrics.items() if not isinstance(value, int | float) or isinstance(value, bool)]
    if bad:
        raise TypeError(f"on_checkpoint metrics must be numbers; not a number: {', '.join(sorted(bad))}")
    return {key: float(value) for key, value in metrics.items()}


def copy_file_atomically(source: Path, target: Path) -> None:
    with atomic_write(target) as temporary:
        shutil.copyfile(source, temporary)


def _finish(out_dir: Path, history: Sequence[dict[str, float]]) -> None:
    write_metrics_history(out_dir, history)
    plot_metrics_history(history, out_dir / CURVE_FILENAME)


# --------------------------------------------------------------------------------------------------------------------
# run_fit: in-process or under Ray Train
# --------------------------------------------------------------------------------------------------------------------


def open_dataset(dataset_spec: Any) -> Any:
    return dataset_spec.open() if isinstance(dataset_spec, DatasetSpec) else dataset_spec


def run_fit(
    fit_fn: FitFn,
    cfg: Any,
    dataset_spec: Any,
    out_dir: str | os.PathLike[str],
    workers: int | None = None,
    address: str | None = None,
    *,
    max_failures: int = 2,
    storage_path: str | os.PathLike[str] | None = None,
) -> Path:
    """Runs `fit_fn(cfg, dataset, out_dir, on_checkpoint=...)` and returns the path of its final checkpoint.

    `dataset_spec` is handed to the fit as its dataset; a `DatasetSpec` is opened first (on each worker under Ray).
    With `workers=None` the fit runs in this process and Ray is not imported. With `workers=N` it runs on N Ray Train
    workers (`address` connects to an existing cluster, otherwise a small local Ray instance is started); worker
    failures are retried up to `max_failures` times from the latest checkpoint. Ray's run state (checkpoints, logs)
    lives under `storage_path` (default `out_dir/ray`); running again with the same `out_dir` resumes.
    The per-epoch metrics go to `out_dir/run_metrics.json` and are plotted in `out_dir/run_metrics.png`.
    """
    out_path = Path(out_dir).resolve()
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if address is not None and workers is None:
        raise ValueError("--address connects to a Ray cluster for a distributed run: give --workers N too")
    if max_failures < 0:
        raise ValueError(f"max_failures must be >= 0, got {max_failures}")
    out_path.mkdir(parents=True, exist_ok=True)
    if workers is None:
        return _run_in_process(fit_fn, cfg, dataset_spec, out_path)
    from pipelines.ray_train import run_on_ray_train

    storage = Path(storage_path).resolve() if storage_path is not None else out_path / "ray"
    final, history = run_on_ray_train(
        fit_fn, cfg, dataset_spec, out_path, workers=workers, address=address, max_failures=max_failures,
        storage_path=storage,
    )
    _finish(out_path, history)
    return final


def _run_in_process(fit_fn: FitFn, cfg: Any, dataset_spec: Any, out_dir: Path) -> Path:
    history = read_metrics_history(out_dir) if (out_dir / RESUME_FILENAME).exists() else []

    def on_checkpoint(metrics: dict[str, float], checkpoint_path: Path | None) -> None:
        history.append(validate_metrics(metrics))
        write_metrics_history(out_dir, history)

    final = fit_fn(cfg, open_dataset(dataset_spec), out_dir, on_checkpoint=on_checkpoint)
    final_path = checked_final_path(final)
    _finish(out_dir, history)
    return final_path


def checked_final_path(final: Any) -> Path:
    if not isinstance(final, str | os.PathLike):
        raise DistributedError(f"fit must return the path of its final checkpoint, got {type(final).__name__}")
    path = Path(final)
    if not path.is_file():
        raise DistributedError(f"fit returned {path}, which is not a file")
    return path


# --------------------------------------------------------------------------------------------------------------------
# Checkpoint directories exchanged with Ray (one checkpoint file + the metrics history so far)
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointContents:
    """What a checkpoint directory of a distributed run holds (reported to Ray and mirrored under out_dir).

    `checkpoint_file` is the checkpoint reported (an epoch's, or the final one); `resume_file` is the one `fit` can
    resume from (the epoch checkpoint itself, or the `last.pt` beside the final one), None when there is none.
    """

    checkpoint_file: Path
    resume_file: Path | None
    history: list[dict[str, float]]
    final: bool


def write_checkpoint_dir(
    directory: Path,
    checkpoint_file: Path,
    history: Sequence[dict[str, float]],
    *,
    final: bool,
    resume_file: Path | None,
) -> None:
    """Copies the checkpoint (and the resume checkpoint) into `directory` with a small JSON index."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint_file, directory / checkpoint_file.name)
    if resume_file is not None and resume_file.name != checkpoint_file.name:
        shutil.copyfile(resume_file, directory / resume_file.name)
    meta = {
        "file": checkpoint_file.name,
        "resume_file": resume_file.name if resume_file is not None else None,
        "history": list(history),
        "final": final,
    }
    atomic_write_text(directory / _CHECKPOINT_META, json.dumps(meta))


def read_checkpoint_dir(directory: Path) -> CheckpointContents:
    meta_path = directory / _CHECKPOINT_META
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        checkpoint_file = directory / str(meta["file"])
        resume_file = directory / str(meta["resume_file"]) if meta["resume_file"] is not None else None
        history = list(meta["history"])
        final = bool(meta["final"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DistributedError(f"{meta_path}: not a drivestack checkpoint directory ({error})") from None
    for field_name, path in (("file", checkpoint_file), ("resume_file", resume_file)):
        if path is not None and not path.is_file():
            raise DistributedError(f"{meta_path}: field '{field_name}' names {path.name}, which is missing")
    return CheckpointContents(checkpoint_file, resume_file, history, final)


# --------------------------------------------------------------------------------------------------------------------
# map_logs: one function per log, sequential or as Ray tasks
# --------------------------------------------------------------------------------------------------------------------


def map_logs(
    fn: Callable[[T], R],
    items: Sequence[T],
    workers: int | None = None,
    address: str | None = None,
    *,
    description: str = "logs",
) -> list[R]:
    """`[fn(item) for item in items]`, with a progress bar; with `workers=N`, as at most N parallel Ray tasks.

    Results come back in the order of `items` whatever order the tasks finish in, so a merge of them is the same
    as the sequential one.
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if address is not None and workers is None:
        raise ValueError("--address connects to a Ray cluster for a parallel run: give --workers N too")
    if workers is None:
        results: list[R] = []
        with Progress(transient=True) as progress:
            task = progress.add_task(description, total=len(items))
            for item in items:
                results.append(fn(item))
                progress.advance(task)
        return results
    from pipelines.ray_train import map_on_ray

    return map_on_ray(fn, items, workers=workers, address=address, description=description)


def _simulate_one(job: tuple[SynthConfig, int, int]) -> SynthLog:
    from scenes.synth.world import simulate_log

    config, seed, index = job
    return simulate_log(config, seed, index)


def simulate_logs(
    config: SynthConfig, seed: int, count: int, workers: int | None = None, address: str | None = None
) -> list[SynthLog]:
    """Logs 0..count-1 of the synthetic city, simulated in parallel Ray tasks when `workers` is given.

    `simulate_log` is deterministic in (config, seed, index), so the result does not depend on `workers`.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    jobs = [(config, seed, index) for index in range(count)]
    return map_logs(_simulate_one, jobs, workers, address, description="simulating logs")


@dataclass(frozen=True)
class RegistryDataset:
    """A dataset named as on the command line (`NAME:PATH` or `synth`) with its adapter options.

    It is a `DatasetSpec`: under Ray only this small description travels to the workers, and each worker opens the
    dataset itself; the adapters read logs lazily, so a worker reads the logs of the samples of its own shard.
    """

    spec: str
    options: tuple[tuple[str, Any], ...] = ()

    def open(self) -> Any:
        from scenes.adapters.registry import open_dataset

        return open_dataset(self.spec, **dict(self.options))
