"""Throughput of per-log work on Ray: the synthetic city and the end-to-end pipeline, sequential vs 2 Ray workers.

`.venv/bin/python -m benchmarks distributed` runs it. Each sequential row and its parallel row do the same work: the
same 4 logs, each simulated once (`simulate_log` per log; the `synth` dataset keeps a log from its simulation until
the next one, so the sequential pipeline too simulates each log once), checked by comparing the log ids both runs
return, and torch on one intra-op thread, as in a Ray worker (Ray sets OMP_NUM_THREADS=1 in a task of one CPU).
Ray's start-up is excluded from the rows and reported in a row of its own: `ray.init` is timed once before them, and
every run is called once untimed first (worker processes, imports, the check) before the timed repeats. On a machine
with fewer free cores than workers the parallel rows show Ray's overhead rather than a speed-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Final

import torch

from benchmarks.harness import Result, measure, peak_rss_mb
from pipelines.e2e_forecast import E2EForecastConfig, SynthSplitConfig, open_e2e_dataset, run_e2e
from pipelines.e2e_parallel import run_e2e_parallel
from scenes.synth.world import SynthConfig, simulate_logs

LOGS: Final = 4
WORKERS: Final = 2


def _same_work_rows(title: str, runs: Mapping[str, Callable[[], list[str]]]) -> list[Result]:
    """One row per run (label -> a call returning the ids of the logs it processed), once all processed the same logs."""
    processed = {label: run() for label, run in runs.items()}
    if len({tuple(log_ids) for log_ids in processed.values()}) != 1:
        raise RuntimeError(f"{title}: the runs processed different logs: {processed}")
    return [
        measure(f"{title}, {label}", run, items=LOGS, unit="logs/s", repeats=3, warmup=0) for label, run in runs.items()
    ]


def run() -> list[Result]:
    from scenes.ray_cluster import ensure_ray

    torch.set_num_threads(1)
    start = time.perf_counter()
    ensure_ray(address=None, num_cpus=WORKERS)
    startup_s = time.perf_counter() - start
    startup = Result("Ray start-up (ray.init, once per process; not in the rows below)", startup_s, None, "", peak_rss_mb(), 1)
    synth = SynthConfig(seconds=5.0, lidar_beams=None, cameras=())
    e2e = E2EForecastConfig(detector="oracle", synth=SynthSplitConfig(logs=LOGS, seconds=5.0, lidar_beams=None))
    parallel = f"{WORKERS} Ray workers"

    def simulate(workers: int | None) -> list[str]:
        return [log.log_id for log in simulate_logs(synth, seed=0, count=LOGS, workers=workers)]

    def sequential_e2e() -> list[str]:
        return [log.log_id for log in run_e2e(e2e, open_e2e_dataset(None, "val", e2e), progress=False).logs]

    def parallel_e2e() -> list[str]:
        return [log.log_id for log in run_e2e_parallel(e2e, None, "val", workers=WORKERS).logs]

    return [
        startup,
        *_same_work_rows(
            f"simulate {LOGS} synth logs (5 s, no sensors)",
            {"sequential": lambda: simulate(None), parallel: lambda: simulate(WORKERS)},
        ),
        *_same_work_rows(
            f"e2e-forecast {LOGS} synth logs (oracle detector, shipped tracker and forecaster)",
            {"sequential": sequential_e2e, parallel: parallel_e2e},
        ),
    ]
