"""Timing harness shared by the speed benchmarks.

A benchmark module `benchmarks/bench_<area>.py` defines `def run() -> list[Result]`, building each result with
`measure(...)`. `python -m benchmarks` runs every such module in its own process (so peak memory is per module),
prints one table and writes `benchmarks/results/<area>.json`.
"""

from __future__ import annotations

import gc
import importlib
import multiprocessing.queues
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Result:
    """One measured operation: median wall time, throughput and the process's peak resident memory."""

    name: str
    median_s: float
    throughput: float | None
    unit: str
    peak_rss_mb: float
    repeats: int
    target: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(
    name: str,
    fn: Callable[[], object],
    *,
    items: float | None = None,
    unit: str = "items/s",
    repeats: int = 7,
    warmup: int = 1,
    target: str = "",
    extra: dict[str, Any] | None = None,
) -> Result:
    """Runs `fn` `warmup` times untimed (JIT compilation, caches), then `repeats` times; reports the median.

    `items` is the amount of work per call (points, rays, tracks...), giving `throughput = items / median`.
    """
    for _ in range(warmup):
        fn()
    durations = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        durations.append(time.perf_counter() - start)
    median = statistics.median(durations)
    throughput = items / median if items is not None and median > 0 else None
    return Result(name, median, throughput, unit, peak_rss_mb(), repeats, target, dict(extra or {}))


def run_area(area: str, queue: multiprocessing.queues.Queue[list[dict[str, Any]]]) -> None:
    """Child-process entry: runs `benchmarks.bench_<area>.run()` and sends its results back."""
    module = importlib.import_module(f"benchmarks.bench_{area}")
    queue.put([result.as_dict() for result in module.run()])
