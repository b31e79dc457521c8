"""`train(task_factory, dataset, out_dir, workers=None)`: the harness in this process, or on N Ray Train workers.

`task_factory(dataset) -> TrainingTask` must be picklable (a module-level class or a `functools.partial` of one):
under Ray it travels to every worker with `dataset`, which may be the data itself or a small spec with an `open()`
method that each worker calls (so workers never receive the data itself). Without `workers` Ray is never imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scenes.errors import InputError
from scenes.training.harness import TrainingTask, fit


def train(
    task_factory: Callable[[Any], TrainingTask],
    dataset: Any,
    out_dir: str | os.PathLike[str],
    workers: int | None = None,
    address: str | None = None,
    *,
    max_failures: int = 2,
    storage_path: str | os.PathLike[str] | None = None,
    show_progress: bool = True,
) -> Path:
    """Trains and returns the final checkpoint's path; running again with the same `out_dir` resumes.

    With `workers=N` the fit runs on N Ray Train workers (`address` connects to an existing cluster, otherwise a
    small local Ray instance starts); worker failures are retried up to `max_failures` times from the latest
    checkpoint. Ray's own run state lives under `storage_path` (default `out_dir/ray`).
    """
    out_path = Path(out_dir).resolve()
    if workers is not None and workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    if address is not None and workers is None:
        raise InputError("--address connects to a Ray cluster for a distributed run: give --workers N too")
    if max_failures < 0:
        raise InputError(f"max_failures must be >= 0, got {max_failures}")
    out_path.mkdir(parents=True, exist_ok=True)
    if workers is None:
        opener = getattr(dataset, "open", None)
        return fit(task_factory(opener() if callable(opener) else dataset), out_path, show_progress=show_progress)
    from scenes.training.ray_train import fit_on_ray

    storage = Path(storage_path).resolve() if storage_path is not None else out_path / "ray"
    return fit_on_ray(task_factory, dataset, out_path, workers=workers, address=address, max_failures=max_failures, storage_path=storage)
