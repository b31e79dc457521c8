"""Throughput of per-log work on Ray: the synthetic city and the end-to-end pipeline, sequential vs 2 Ray workers.

`.venv/bin/python -m benchmarks distributed` runs it. Ray's start-up (once per process, a few seconds) is paid before
timing; each timed call submits one task per log. On a machine with fewer free cores than workers the parallel rows
show Ray's overhead rather than a speed-up.
"""

from __future__ import annotations

from typing import Final

from benchmarks.harness import Result, measure
from pipelines.distributed import simulate_logs
from pipelines.e2e_forecast import E2EForecastConfig, SynthSplitConfig, open_e2e_dataset, run_e2e
from pipelines.e2e_parallel import run_e2e_parallel
from scenes.synth.world import SynthConfig

LOGS: Final = 4
WORKERS: Final = 2


def run() -> list[Result]:
    from pipelines.ray_train import ensure_ray

    ensure_ray(address=None, num_cpus=WORKERS)
    synth = SynthConfig(seconds=5.0, lidar_beams=None, cameras=())
    e2e = E2EForecastConfig(detector="oracle", synth=SynthSplitConfig(logs=LOGS, seconds=5.0, lidar_beams=None))
    results = []
    for label, workers in (("sequential", None), (f"{WORKERS} Ray workers", WORKERS)):
        results.append(
            measure(
                f"simulate {LOGS} synth logs (5 s, no sensors), {label}",
                lambda workers=workers: simulate_logs(synth, seed=0, count=LOGS, workers=workers),
                items=LOGS, unit="logs/s", repeats=3,
            )
        )  # fmt: skip
    results.append(
        measure(
            f"e2e-forecast {LOGS} synth logs (oracle, constant velocity), sequential",
            lambda: run_e2e(e2e, open_e2e_dataset(None, "val", e2e), progress=False),
            items=LOGS, unit="logs/s", repeats=3,
        )
    )  # fmt: skip
    results.append(
        measure(
            f"e2e-forecast {LOGS} synth logs (oracle, constant velocity), {WORKERS} Ray workers",
            lambda: run_e2e_parallel(e2e, None, "val", workers=WORKERS),
            items=LOGS, unit="logs/s", repeats=3,
        )
    )  # fmt: skip
    return results
