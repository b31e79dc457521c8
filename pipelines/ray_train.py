"""The Ray side of `pipelines.distributed`: Ray Train's TorchTrainer around a `fit`, and Ray tasks for `map_logs`.

Only imported when a command is given `--workers`, so a plain run never imports Ray.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import ray
import ray.train
import torch
import torch.distributed as dist
from ray.train import Checkpoint, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer
from rich.progress import Progress

from pipelines.distributed import (
    OBJECT_STORE_BYTES,
    DistributedError,
    FitFn,
    checked_final_path,
    copy_file_atomically,
    open_dataset,
    validate_metrics,
    read_checkpoint_dir,
    read_metrics_history,
    restore_checkpoint,
    write_checkpoint_dir,
)

T = TypeVar("T")
R = TypeVar("R")

RUN_NAME: Final = "fit"
COLLECTIVE_TIMEOUT_S: Final = 600


def ensure_ray(address: str | None, num_cpus: int) -> None:
    """Connects to the cluster at `address`, or starts a small local Ray instance (no dashboard, capped object store).

    An already initialised Ray session (e.g. one shared by a test module) is reused as it is.
    """
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is not None:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        return
    ray.init(
        num_cpus=max(num_cpus, os.cpu_count() or 1),
        include_dashboard=False,
        object_store_memory=OBJECT_STORE_BYTES,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )


def _train_loop(loop_config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker: restore the latest checkpoint, run `fit`, report checkpoints through Ray."""
    fit_fn: FitFn = loop_config["fit_fn"]
    out_dir = Path(loop_config["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    context = ray.train.get_context()
    is_primary = context.get_world_rank() == 0

    history: list[dict[str, float]] = []
    latest = ray.train.get_checkpoint()
    if latest is not None:
        with latest.as_directory() as directory:
            contents = read_checkpoint_dir(Path(directory))
            restore_checkpoint(contents, out_dir)
            history = list(contents.history)
    elif (out_dir / "last.pt").exists():
        history = read_metrics_history(out_dir)
    if dist.is_initialized():
        dist.barrier()

    def on_checkpoint(metrics: dict[str, float], checkpoint_path: Path | None) -> None:
        row = validate_metrics(metrics)
        history.append(row)
        if not is_primary:
            ray.train.report(row)
            return
        if checkpoint_path is None:
            raise DistributedError("rank 0 must pass the path of the checkpoint it wrote to on_checkpoint")
        with tempfile.TemporaryDirectory(prefix="drivestack-ckpt-") as directory:
            write_checkpoint_dir(Path(directory), Path(checkpoint_path), history, final=False)
            ray.train.report(row, checkpoint=Checkpoint.from_directory(directory))

    final = fit_fn(loop_config["cfg"], open_dataset(loop_config["dataset_spec"]), out_dir, on_checkpoint=on_checkpoint)
    last_metrics = dict(history[-1]) if history else {}
    if not is_primary:
        ray.train.report(last_metrics)
        return
    with tempfile.TemporaryDirectory(prefix="drivestack-final-") as directory:
        write_checkpoint_dir(Path(directory), checked_final_path(final), history, final=True)
        ray.train.report(last_metrics, checkpoint=Checkpoint.from_directory(directory))


def run_on_ray_train(
    fit_fn: FitFn,
    cfg: Any,
    dataset_spec: Any,
    out_dir: Path,
    *,
    workers: int,
    address: str | None,
    max_failures: int,
    storage_path: Path,
) -> tuple[Path, list[dict[str, float]]]:
    """Runs the fit on `workers` Ray Train workers; returns the final checkpoint (copied into `out_dir`) and history."""
    ensure_ray(address, workers)
    use_gpu = torch.cuda.is_available()
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={"fit_fn": fit_fn, "cfg": cfg, "dataset_spec": dataset_spec, "out_dir": str(out_dir)},
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo", timeout_s=COLLECTIVE_TIMEOUT_S),
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu, resources_per_worker={"CPU": 1}),
        run_config=RunConfig(
            name=RUN_NAME,
            storage_path=str(storage_path),
            failure_config=FailureConfig(max_failures=max_failures),
        ),
    )
    result = trainer.fit()
    if result.error is not None:
        raise DistributedError(f"distributed fit failed: {result.error}") from result.error
    if result.checkpoint is None:
        raise DistributedError(f"distributed fit under {storage_path} reported no checkpoint")
    with result.checkpoint.as_directory() as directory:
        contents = read_checkpoint_dir(Path(directory))
        if not contents.final:
            raise DistributedError(f"distributed fit under {storage_path} ended without its final checkpoint")
        final = out_dir / contents.checkpoint_file.name
        if not final.is_file() or final.read_bytes() != contents.checkpoint_file.read_bytes():
            copy_file_atomically(contents.checkpoint_file, final)
        return final, list(contents.history)


def map_on_ray(
    fn: Callable[[T], R], items: Sequence[T], *, workers: int, address: str | None, description: str
) -> list[R]:
    """`[fn(item) for item in items]` as Ray tasks, at most `workers` in flight; results in input order."""
    ensure_ray(address, workers)
    remote_fn = ray.remote(num_cpus=1, max_retries=2)(fn)
    pending: dict[ray.ObjectRef, int] = {}
    results: dict[int, R] = {}
    next_index = 0
    with Progress(transient=True) as progress:
        task = progress.add_task(f"{description} ({workers} Ray workers)", total=len(items))
        while next_index < len(items) or pending:
            while next_index < len(items) and len(pending) < workers:
                pending[remote_fn.remote(items[next_index])] = next_index
                next_index += 1
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                results[pending.pop(ref)] = ray.get(ref)
                progress.advance(task)
    return [results[index] for index in range(len(items))]
