"""Speed of the dataset adapters on generated logs of real size (AV2: 100k-point float16 sweeps, 60 boxes per sweep;
KITTI: 120k-point Velodyne scans). Run with `.venv/bin/python -m benchmarks adapters`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather

from benchmarks.harness import Result, measure
from scenes.adapters.av2 import AV2SensorDataset
from scenes.adapters.kitti import read_velodyne
from scenes.synth.roads import build_road_network
from scenes.synth.styles import get_style
from scenes.synth.writers.av2 import write_av2_map

NUM_SWEEPS = 20
POINTS_PER_SWEEP = 100_000
BOXES_PER_SWEEP = 60
STEP_NS = 100_000_000
LOG_ID = "bench-log"


def write_av2_log(split_dir: Path, rng: np.random.Generator) -> None:
    log_dir = split_dir / LOG_ID
    (log_dir / "sensors" / "lidar").mkdir(parents=True)
    stamps = np.arange(NUM_SWEEPS, dtype=np.int64) * STEP_NS + 10**18
    pose = {name: np.zeros(NUM_SWEEPS) for name in ("qx", "qy", "qz", "ty_m", "tz_m")}
    feather.write_feather(
        pa.table({"timestamp_ns": stamps, "qw": np.ones(NUM_SWEEPS), "tx_m": np.arange(NUM_SWEEPS, dtype=np.float64), **pose}),
        log_dir / "city_SE3_egovehicle.feather",
    )
    for stamp in stamps:
        feather.write_feather(
            pa.table(
                {
                    **{axis: pa.array(rng.uniform(-80, 80, POINTS_PER_SWEEP).astype(np.float16)) for axis in "xyz"},
                    "intensity": pa.array(rng.integers(0, 256, POINTS_PER_SWEEP).astype(np.uint8)),
                    "laser_number": pa.array(rng.integers(0, 64, POINTS_PER_SWEEP).astype(np.uint8)),
                    "offset_ns": pa.array(rng.integers(0, STEP_NS, POINTS_PER_SWEEP).astype(np.int32)),
                }
            ),
            log_dir / "sensors" / "lidar" / f"{stamp}.feather",
        )
    style = get_style("default")
    write_av2_map(build_road_network(style.layout).lane_graph(style.city_code), log_dir / "map", LOG_ID)
    rows = NUM_SWEEPS * BOXES_PER_SWEEP
    yaw = rng.uniform(-np.pi, np.pi, rows)
    feather.write_feather(
        pa.table(
            {
                "timestamp_ns": np.repeat(stamps, BOXES_PER_SWEEP),
                "track_uuid": [f"track-{i % BOXES_PER_SWEEP}" for i in range(rows)],
                "category": ["REGULAR_VEHICLE"] * rows,
                "length_m": np.full(rows, 4.5),
                "width_m": np.full(rows, 1.9),
                "height_m": np.full(rows, 1.6),
                "qw": np.cos(yaw / 2),
                "qx": np.zeros(rows),
                "qy": np.zeros(rows),
                "qz": np.sin(yaw / 2),
                "tx_m": rng.uniform(-50, 50, rows),
                "ty_m": rng.uniform(-50, 50, rows),
                "tz_m": np.zeros(rows),
                "num_interior_pts": np.full(rows, 20),
            }
        ),
        log_dir / "annotations.feather",
    )


def run() -> list[Result]:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as scratch:
        split_dir = Path(scratch) / "val"
        write_av2_log(split_dir, rng)
        velodyne = Path(scratch) / "000000.bin"
        velodyne.write_bytes(rng.uniform(-60, 60, (120_000, 4)).astype(np.float32).tobytes())

        def first_frame() -> None:
            next(iter(AV2SensorDataset(split_dir).frames(LOG_ID)))

        dataset = AV2SensorDataset(split_dir)

        def whole_log() -> None:
            for _ in dataset.frames(LOG_ID):
                pass

        return [
            measure("av2 open log + first frame", first_frame, items=1, unit="frames/s", repeats=5, target="< 100 ms"),
            measure(
                f"av2 iterate {NUM_SWEEPS} frames (cached log)",
                whole_log,
                items=NUM_SWEEPS,
                unit="frames/s",
                repeats=3,
                target=">= 20 frames/s (LiDAR rate 10 Hz)",
            ),
            measure("kitti velodyne scan 120k pts", lambda: read_velodyne(velodyne, 0), items=120_000, unit="pts/s", repeats=7, target="< 20 ms"),
        ]
