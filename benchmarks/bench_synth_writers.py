"""Speed of the synthetic-city writers: seconds to write one simulated 15 s log in each on-disk format.

Run: `.venv/bin/python -m benchmarks synth_writers`. One log is simulated once (not timed) with every sensor some format
needs (32-beam LiDAR, the front camera and the stereo pair at the default image size); each timed call writes it in one
format to a fresh directory (the cameras a format does not use are ignored by its writer or written as extra views).
"""

from __future__ import annotations

import functools
import itertools
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks.harness import Result, measure
from scenes.synth.world import SynthConfig, simulate_log
from scenes.synth.writers.av2 import write_av2_log
from scenes.synth.writers.av2_mf import write_av2_scenarios
from scenes.synth.writers.cityscapes import write_cityscapes
from scenes.synth.writers.common import SimulatedLog
from scenes.synth.writers.kitti import write_kitti_drive
from scenes.synth.writers.nuscenes import write_nuscenes

SECONDS = 15.0
WRITERS: dict[str, Callable[[SimulatedLog, Path], object]] = {
    "av2": lambda log, out: write_av2_log(log, out / "val"),
    "av2-mf": lambda log, out: write_av2_scenarios(log, out / "val"),
    "kitti": lambda log, out: write_kitti_drive(log, out),
    "nuscenes": lambda log, out: write_nuscenes([log], out),
    "cityscapes": lambda log, out: write_cityscapes(log, out),
}


def _bytes_under(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def _write_once(write: Callable[[SimulatedLog, Path], object], log: SimulatedLog, root: Path, calls: itertools.count[int]) -> None:
    """One timed call: writes `log` to a fresh directory under `root`, then removes it."""
    out = root / str(next(calls))
    write(log, out)
    shutil.rmtree(out)


def run() -> list[Result]:
    config = SynthConfig(seconds=SECONDS, lidar_beams=32, cameras=("ring_front_center", "stereo_front_left", "stereo_front_right"))
    log = simulate_log(config, seed=0)
    results = []
    for format_name, write in WRITERS.items():
        with tempfile.TemporaryDirectory(prefix=f"bench-{format_name}-") as scratch:
            root = Path(scratch)
            write(log, root / "size")
            size_mb = _bytes_under(root / "size") / 2**20
            results.append(
                measure(
                    f"write {format_name} (15 s log)",
                    functools.partial(_write_once, write, log, root, itertools.count()),
                    items=len(log.frames),
                    unit="frames/s",
                    repeats=3,
                    warmup=0,
                    target="< 10 s per 15 s log",
                    extra={"frames": len(log.frames), "size_mb": round(size_mb, 1)},
                )
            )
    return results
