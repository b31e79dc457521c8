"""`map_logs`: one function per log, in this process or as parallel Ray tasks, results in input order.

The synthetic city is simulated with it (`scenes.synth.world.simulate_logs`) and the end-to-end pipeline processes
its logs with it. Without `workers` Ray is never imported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from rich.progress import Progress

T = TypeVar("T")
R = TypeVar("R")


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
    from scenes.ray_cluster import map_on_ray

    return map_on_ray(fn, items, workers=workers, address=address, description=description)
