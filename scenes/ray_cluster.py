"""The Ray session drivestack runs in, and Ray tasks for `scenes.parallel.map_logs`.

Only imported when a command is given `--workers`, so a plain run never imports Ray.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import ray
from rich.progress import Progress

T = TypeVar("T")
R = TypeVar("R")

OBJECT_STORE_BYTES: Final = 256 * 1024 * 1024


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


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    # Untyped on purpose: Ray's `remote` cannot carry a generic function's type variables (and `ray.get` is untyped).
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
