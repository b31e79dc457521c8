"""The Ray side of `pipelines.distributed`: Ray Train's TorchTrainer around a `fit`, and Ray tasks for `map_logs`.

Only imported when a command is given `--workers`, so a plain run never imports Ray.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import ray
import ray.train
import torch
import torch.distributed as dist
from ray.train import Checkpoint, CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer
from rich.progress import Progress

from pipelines.distributed import (
    OBJECT_STORE_BYTES,
    RESUME_FILENAME,
    DistributedError,
    FitFn,
    checked_final_path,
    copy_file_atomically,
    open_dataset,
    read_checkpoint_dir,
    read_metrics_history,
    validate_metrics,
    write_checkpoint_dir,
    write_metrics_history,
)
from scenes.io import atomic_write, atomic_write_text

T = TypeVar("T")
R = TypeVar("R")

RUN_NAME: Final = "fit"
MIRROR_DIRNAME: Final = "ray_checkpoint"
MIRROR_POINTER: Final = "latest.txt"
CHECKPOINTS_KEPT: Final = 2
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


@dataclass(frozen=True)
class _Snapshot:
    """A consistent resume point: the checkpoint's bytes and the metrics history up to it."""

    checkpoint_bytes: bytes
    history: list[dict[str, float]]


def _snapshot_of(directory: Path) -> _Snapshot | None:
    contents = read_checkpoint_dir(directory)
    if contents.resume_file is None:
        return None
    return _Snapshot(contents.resume_file.read_bytes(), list(contents.history))


def _mirror_dir(out_dir: Path) -> Path:
    return out_dir / MIRROR_DIRNAME


def _latest_mirrored(out_dir: Path) -> Path | None:
    pointer = _mirror_dir(out_dir) / MIRROR_POINTER
    if not pointer.is_file():
        return None
    return _mirror_dir(out_dir) / pointer.read_text(encoding="utf-8").strip()


def _mirror(
    out_dir: Path, checkpoint_path: Path, history: list[dict[str, float]], *, final: bool, resume_file: Path | None
) -> Path:
    """Rank 0's local copy of a checkpoint directory, made current by an atomic pointer write; older ones removed."""
    name = f"checkpoint_{len(history):06d}_{'final' if final else 'epoch'}_{time.time_ns()}"
    directory = _mirror_dir(out_dir) / name
    write_checkpoint_dir(directory, checkpoint_path, history, final=final, resume_file=resume_file)
    atomic_write_text(_mirror_dir(out_dir) / MIRROR_POINTER, name)
    for old in _mirror_dir(out_dir).glob("checkpoint_*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return directory


def _latest_snapshot(out_dir: Path) -> _Snapshot | None:
    """The most advanced resume point of this node: Ray's latest registered checkpoint, rank 0's mirror of the last
    one it reported (Ray may not have registered it when a worker died), or a `last.pt` left by an earlier run."""
    found: list[_Snapshot | None] = []
    registered = ray.train.get_checkpoint()
    if registered is not None:
        with registered.as_directory() as directory:
            found.append(_snapshot_of(Path(directory)))
    mirrored = _latest_mirrored(out_dir)
    if mirrored is not None:
        found.append(_snapshot_of(mirrored))
    candidates = [snapshot for snapshot in found if snapshot is not None]
    if not candidates and (out_dir / RESUME_FILENAME).is_file():
        candidates.append(_Snapshot((out_dir / RESUME_FILENAME).read_bytes(), read_metrics_history(out_dir)))
    return max(candidates, key=lambda snapshot: len(snapshot.history), default=None)


def _restore(out_dir: Path, is_primary: bool) -> list[dict[str, float]]:
    """Rank 0 picks the resume point and sends it to every rank, which writes it to `out_dir/last.pt` for `fit`."""
    snapshot = _latest_snapshot(out_dir) if is_primary else None
    if dist.is_initialized() and dist.get_world_size() > 1:
        shared: list[_Snapshot | None] = [snapshot]
        dist.broadcast_object_list(shared, src=0, device=torch.device("cpu") if dist.get_backend() == "gloo" else None)
        snapshot = shared[0]
    if snapshot is None:
        return []
    with atomic_write(out_dir / RESUME_FILENAME) as temporary:
        temporary.write_bytes(snapshot.checkpoint_bytes)
    if dist.is_initialized():
        dist.barrier()
    return list(snapshot.history)


def _train_loop(loop_config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker: restore the latest checkpoint, run `fit`, report checkpoints through Ray."""
    fit_fn: FitFn = loop_config["fit_fn"]
    out_dir = Path(loop_config["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    is_primary = ray.train.get_context().get_world_rank() == 0
    history = _restore(out_dir, is_primary)

    def report(metrics: dict[str, float], checkpoint_path: Path | None, *, final: bool) -> None:
        if not is_primary:
            ray.train.report(metrics)
            return
        if checkpoint_path is None:
            raise DistributedError("rank 0 must pass the path of the checkpoint it wrote to on_checkpoint")
        # `fit` resumes from `out_dir/last.pt`, which it writes before on_checkpoint; the reported file may be another
        # (e.g. a final checkpoint without optimizer state), so `last.pt` travels with it.
        resume_file: Path | None = out_dir / RESUME_FILENAME
        if not resume_file.is_file():
            resume_file = None if final else Path(checkpoint_path)
        directory = _mirror(out_dir, Path(checkpoint_path), history, final=final, resume_file=resume_file)
        write_metrics_history(out_dir, history)
        ray.train.report(
            metrics, checkpoint=Checkpoint.from_directory(directory), delete_local_checkpoint_after_upload=False
        )

    def on_checkpoint(metrics: dict[str, float], checkpoint_path: Path | None) -> None:
        row = validate_metrics(metrics)
        history.append(row)
        report(row, checkpoint_path, final=False)

    final = fit_fn(loop_config["cfg"], open_dataset(loop_config["dataset_spec"]), out_dir, on_checkpoint=on_checkpoint)
    report(dict(history[-1]) if history else {}, checked_final_path(final) if is_primary else None, final=True)


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
    # One GPU per worker when the cluster has enough of them (nccl), else CPU workers (gloo).
    use_gpu = ray.cluster_resources().get("GPU", 0.0) >= workers
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={"fit_fn": fit_fn, "cfg": cfg, "dataset_spec": dataset_spec, "out_dir": str(out_dir)},
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo", timeout_s=COLLECTIVE_TIMEOUT_S),
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu, resources_per_worker={"CPU": 1}),
        run_config=RunConfig(
            name=RUN_NAME,
            storage_path=str(storage_path),
            failure_config=FailureConfig(max_failures=max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT),
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


def _call(fn: Callable[[T], R], item: T) -> R:
    return fn(item)


def map_on_ray(
    fn: Callable[[T], R], items: Sequence[T], *, workers: int, address: str | None, description: str
) -> list[R]:
    """`[fn(item) for item in items]` as Ray tasks, at most `workers` in flight; results in input order."""
    ensure_ray(address, workers)
    remote_call = ray.remote(num_cpus=1, max_retries=2)(_call)
    fn_ref = ray.put(fn)
    pending: dict[ray.ObjectRef, int] = {}
    results: dict[int, R] = {}
    next_index = 0
    with Progress(transient=True) as progress:
        task = progress.add_task(f"{description} ({workers} Ray workers)", total=len(items))
        while next_index < len(items) or pending:
            while next_index < len(items) and len(pending) < workers:
                pending[remote_call.remote(fn_ref, items[next_index])] = next_index
                next_index += 1
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                results[pending.pop(ref)] = ray.get(ref)
                progress.advance(task)
    return [results[index] for index in range(len(items))]
