"""Speed of the geometry helpers every stage leans on (frame changes, box corners)."""

from __future__ import annotations

import numpy as np

from benchmarks.harness import Result, measure
from scenes.geometry import SE3, box_corners


def run() -> list[Result]:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(100_000, 3)) * 30.0
    transform = SE3.from_yaw(0.3, [10.0, -5.0, 1.0])
    centers = rng.normal(size=(1000, 3))
    sizes = rng.uniform(0.5, 5.0, size=(1000, 3))
    yaws = rng.uniform(-np.pi, np.pi, size=1000)
    return [
        measure("SE3.transform_points 100k", lambda: transform.transform_points(points), items=100_000, unit="pts/s"),
        measure("box_corners 1k boxes", lambda: box_corners(centers, sizes, yaws), items=1000, unit="boxes/s"),
    ]
