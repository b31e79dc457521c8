"""The harness's `fit` on Ray Train workers (`--workers N`): gloo on CPU, nccl with one GPU per worker.

Every epoch rank 0 reports its `last.pt` to Ray (`ray.train.report` with a checkpoint directory) and mirrors it under
`out_dir/ray_checkpoint`. After a worker failure Ray restarts the group (`FailureConfig(max_failures)`); rank 0 picks
the most advanced resume point (Ray's latest registered checkpoint, its own mirror of the last one it reported, which
Ray may not have registered yet, or a `last.pt` left by an earlier run) and sends it to every rank, which writes it to
`out_dir/last.pt`, where `fit` resumes from. Only imported with `--workers`, so a plain run never imports Ray.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import ray.train
import torch
import torch.distributed as dist
from ray.train import Checkpoint, CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from scenes.io import atomic_write, atomic_write_text
from scenes.ray_cluster import ensure_ray
from scenes.training.checkpoint import load_checkpoint
from scenes.training.harness import LAST, TrainingTask, fit
from scenes.training.history import read_history

RUN_NAME: Final = "fit"
MIRROR_DIRNAME: Final = "ray_checkpoint"
MIRROR_POINTER: Final = "latest.txt"
INDEX_FILENAME: Final = "drivestack_checkpoint.json"
CHECKPOINTS_KEPT: Final = 2
COLLECTIVE_TIMEOUT_S: Final = 600

TaskFactory = Callable[[Any], TrainingTask]


class DistributedError(RuntimeError):
    """A distributed run that cannot start or did not produce its final checkpoint."""


@dataclass(frozen=True)
class _CheckpointDir:
    """A checkpoint directory exchanged with Ray: the reported file and the `last.pt` to resume from."""

    checkpoint_file: Path
    resume_file: Path | None
    epochs_done: int
    final: bool


def _write_checkpoint_dir(directory: Path, checkpoint_file: Path, resume_file: Path | None, epochs_done: int, *, final: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint_file, directory / checkpoint_file.name)
    if resume_file is not None and resume_file.name != checkpoint_file.name:
        shutil.copyfile(resume_file, directory / resume_file.name)
    index = {
        "file": checkpoint_file.name,
        "resume_file": resume_file.name if resume_file is not None else None,
        "epochs_done": epochs_done,
        "final": final,
    }
    atomic_write_text(directory / INDEX_FILENAME, json.dumps(index))


def _read_checkpoint_dir(directory: Path) -> _CheckpointDir:
    index_path = directory / INDEX_FILENAME
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        checkpoint_file = directory / str(index["file"])
        resume_file = directory / str(index["resume_file"]) if index["resume_file"] is not None else None
        contents = _CheckpointDir(checkpoint_file, resume_file, int(index["epochs_done"]), bool(index["final"]))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DistributedError(f"{index_path}: not a drivestack checkpoint directory ({error})") from None
    for field_name, path in (("file", contents.checkpoint_file), ("resume_file", contents.resume_file)):
        if path is not None and not path.is_file():
            raise DistributedError(f"{index_path}: field '{field_name}' names {path.name}, which is missing")
    return contents


@dataclass(frozen=True)
class _Snapshot:
    """A resume point: the bytes of a `last.pt` and how many epochs it holds."""

    checkpoint_bytes: bytes
    epochs_done: int


def _snapshot_of(directory: Path) -> _Snapshot | None:
    contents = _read_checkpoint_dir(directory)
    if contents.resume_file is None:
        return None
    return _Snapshot(contents.resume_file.read_bytes(), contents.epochs_done)


def _latest_mirrored(out_dir: Path) -> Path | None:
    pointer = out_dir / MIRROR_DIRNAME / MIRROR_POINTER
    if not pointer.is_file():
        return None
    return out_dir / MIRROR_DIRNAME / pointer.read_text(encoding="utf-8").strip()


def _mirror(out_dir: Path, checkpoint_file: Path, resume_file: Path | None, epochs_done: int, *, final: bool) -> Path:
    """Rank 0's local copy of a reported checkpoint directory, made current by an atomic pointer; older ones removed."""
    name = f"checkpoint_{epochs_done:06d}_{'final' if final else 'epoch'}_{time.time_ns()}"
    mirror_root = out_dir / MIRROR_DIRNAME
    _write_checkpoint_dir(mirror_root / name, checkpoint_file, resume_file, epochs_done, final=final)
    atomic_write_text(mirror_root / MIRROR_POINTER, name)
    for old in mirror_root.glob("checkpoint_*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return mirror_root / name


def _latest_snapshot(out_dir: Path) -> _Snapshot | None:
    found: list[_Snapshot | None] = []
    registered = ray.train.get_checkpoint()
    if registered is not None:
        with registered.as_directory() as directory:
            found.append(_snapshot_of(Path(directory)))
    mirrored = _latest_mirrored(out_dir)
    if mirrored is not None:
        found.append(_snapshot_of(mirrored))
    candidates = [snapshot for snapshot in found if snapshot is not None]
    if not candidates and (out_dir / LAST).is_file():
        last = load_checkpoint(out_dir / LAST)
        candidates.append(_Snapshot((out_dir / LAST).read_bytes(), int(last.get("epoch", -1)) + 1))
    return max(candidates, key=lambda snapshot: snapshot.epochs_done, default=None)


def _restore(out_dir: Path, is_primary: bool) -> None:
    """Rank 0 picks the resume point and sends it to every rank, which writes it to `out_dir/last.pt` for `fit`."""
    snapshot = _latest_snapshot(out_dir) if is_primary else None
    if dist.is_initialized() and dist.get_world_size() > 1:
        shared: list[_Snapshot | None] = [snapshot]
        dist.broadcast_object_list(shared, src=0, device=torch.device("cpu") if dist.get_backend() == "gloo" else None)
        snapshot = shared[0]
    if snapshot is None:
        return
    with atomic_write(out_dir / LAST) as temporary:
        temporary.write_bytes(snapshot.checkpoint_bytes)
    if dist.is_initialized():
        dist.barrier()


def _train_loop(loop_config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker: restore the latest checkpoint, run `fit`, report checkpoints through Ray."""
    out_dir = Path(loop_config["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    is_primary = ray.train.get_context().get_world_rank() == 0
    _restore(out_dir, is_primary)
    task: TrainingTask = loop_config["task_factory"](_open(loop_config["dataset"]))

    def report(metrics: dict[str, float], checkpoint_path: Path | None, *, final: bool) -> None:
        if not is_primary:
            ray.train.report(metrics)
            return
        if checkpoint_path is None:
            raise DistributedError("rank 0 must pass the path of the checkpoint it wrote")
        resume_file = out_dir / LAST if (out_dir / LAST).is_file() else None
        epochs_done = int(metrics["epoch"]) + 1 if "epoch" in metrics else 0
        directory = _mirror(out_dir, checkpoint_path, resume_file, epochs_done, final=final)
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(directory), delete_local_checkpoint_after_upload=False)

    final = fit(task, out_dir, on_checkpoint=lambda metrics, path: report(metrics, path, final=False))
    history = read_history(out_dir) if is_primary else []
    report(dict(history[-1]) if history else {}, final if is_primary else None, final=True)


def _open(dataset: Any) -> Any:
    opener = getattr(dataset, "open", None)
    return opener() if callable(opener) else dataset


def fit_on_ray(
    task_factory: TaskFactory,
    dataset: Any,
    out_dir: Path,
    *,
    workers: int,
    address: str | None,
    max_failures: int,
    storage_path: Path,
) -> Path:
    """Runs the harness on `workers` Ray Train workers; returns the final checkpoint (copied into `out_dir`)."""
    ensure_ray(address, workers)
    use_gpu = ray.cluster_resources().get("GPU", 0.0) >= workers
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={"task_factory": task_factory, "dataset": dataset, "out_dir": str(out_dir)},
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
        contents = _read_checkpoint_dir(Path(directory))
        if not contents.final:
            raise DistributedError(f"distributed fit under {storage_path} ended without its final checkpoint")
        final = out_dir / contents.checkpoint_file.name
        if not final.is_file() or final.read_bytes() != contents.checkpoint_file.read_bytes():
            with atomic_write(final) as temporary:
                shutil.copyfile(contents.checkpoint_file, temporary)
        return final
