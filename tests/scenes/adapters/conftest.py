"""A tiny AV2 sensor log written from scratch (two sweeps, poses, annotations, calibration, map) for adapter tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from scenes.geometry import Sim2
from scenes.records import LaneGraph, MapRaster
from scenes.synth.writers.av2 import write_av2_map

LOG_ID = "00000000-0000-4000-8000-000000000001"
SWEEPS_NS = (1_000_000_000, 1_100_000_000)
ANNOTATED_NS = (*SWEEPS_NS, 1_200_000_000)  # the last annotated timestamp has no sweep on disk


def write_tiny_av2_log(split_dir: Path) -> Path:
    log_dir = split_dir / LOG_ID
    (log_dir / "sensors" / "lidar").mkdir(parents=True)
    (log_dir / "calibration").mkdir()
    stamps = np.array([500_000_000, *ANNOTATED_NS], dtype=np.int64)
    feather.write_feather(
        pa.table(
            {
                "timestamp_ns": stamps,
                "qw": np.ones(len(stamps)),
                "qx": np.zeros(len(stamps)),
                "qy": np.zeros(len(stamps)),
                "qz": np.zeros(len(stamps)),
                "tx_m": np.arange(len(stamps), dtype=np.float64),
                "ty_m": np.zeros(len(stamps)),
                "tz_m": np.zeros(len(stamps)),
            }
        ),
        log_dir / "city_SE3_egovehicle.feather",
    )
    feather.write_feather(
        pa.table(
            {
                "sensor_name": ["up_lidar", "down_lidar"],
                "qw": [1.0, 1.0],
                "qx": [0.0, 0.0],
                "qy": [0.0, 0.0],
                "qz": [0.0, 0.0],
                "tx_m": [1.0, 1.0],
                "ty_m": [0.0, 0.0],
                "tz_m": [1.8, 1.7],
            }
        ),
        log_dir / "calibration" / "egovehicle_SE3_sensor.feather",
    )
    rng = np.random.default_rng(0)
    for stamp in SWEEPS_NS:
        count = 200
        feather.write_feather(
            pa.table(
                {
                    "x": pa.array(rng.uniform(-20, 20, count).astype(np.float16)),
                    "y": pa.array(rng.uniform(-20, 20, count).astype(np.float16)),
                    "z": pa.array(rng.uniform(-1, 3, count).astype(np.float16)),
                    "intensity": pa.array(rng.integers(0, 256, count).astype(np.uint8)),
                    "laser_number": pa.array(rng.integers(0, 64, count).astype(np.uint8)),
                    "offset_ns": pa.array(rng.integers(0, 100_000_000, count).astype(np.int32)),
                }
            ),
            log_dir / "sensors" / "lidar" / f"{stamp}.feather",
        )
    rows = []
    for stamp in ANNOTATED_NS:
        for index, (category, yaw) in enumerate((("REGULAR_VEHICLE", 0.3), ("PEDESTRIAN", -1.0), ("ANIMAL", 0.0))):
            rows.append(
                {
                    "timestamp_ns": stamp,
                    "track_uuid": f"track-{index}",
                    "category": category,
                    "length_m": 4.0,
                    "width_m": 2.0,
                    "height_m": 1.5,
                    "qw": float(np.cos(yaw / 2)),
                    "qx": 0.0,
                    "qy": 0.0,
                    "qz": float(np.sin(yaw / 2)),
                    "tx_m": 5.0 * index + stamp * 1e-9,
                    "ty_m": 1.0,
                    "tz_m": 0.5,
                    "num_interior_pts": 10,
                }
            )
    feather.write_feather(pa.Table.from_pylist(rows), log_dir / "annotations.feather")
    write_av2_map(tiny_lane_graph(), log_dir / "map", LOG_ID)  # last, as AV2 writers do: a log without map/ is incomplete
    return log_dir


def tiny_lane_graph() -> LaneGraph:
    """One straight 40 m lane on a flat 10 x 20 m ground-height raster (0.5 m cells)."""
    xs = np.linspace(-20.0, 20.0, 10)
    centerline = np.stack([xs, np.zeros(10), np.zeros(10)], axis=1)[None]
    sim2 = Sim2(np.eye(2), np.array([20.0, 5.0]), 2.0)
    return LaneGraph(
        "SYN",
        np.array([1]),
        centerline,
        ((),),
        np.array([-1]),
        np.array([-1]),
        np.array([False]),
        drivable_areas_m=(np.array([[-20.0, -3.5, 0.0], [20.0, -3.5, 0.0], [20.0, 3.5, 0.0], [-20.0, 3.5, 0.0]]),),
        rasters={"ground_height": MapRaster("ground_height", np.zeros((20, 80), dtype=np.float32), sim2)},
    )


@pytest.fixture()
def tiny_av2(tmp_path: Path) -> Path:
    """A split dir holding one tiny log; returns the split dir."""
    split_dir = tmp_path / "val"
    write_tiny_av2_log(split_dir)
    return split_dir
