"""Speed of the tracker: one `Tracker.step` with 100 live tracks and 100 detections (target < 2 ms), per matcher and
motion model."""

from __future__ import annotations

import numpy as np

from benchmarks.harness import Result, measure
from perception.tracking.config import TrackerConfig
from perception.tracking.tracker import Tracker
from scenes.records import Boxes3D

NUM_OBJECTS = 100
STEP_NS = 100_000_000


def _detections(rng: np.random.Generator, start: np.ndarray, velocity: np.ndarray, step: int) -> Boxes3D:
    center = np.column_stack([start + velocity * step * 0.1 + rng.normal(0, 0.1, start.shape), np.ones(len(start))])
    return Boxes3D(
        center,
        np.tile([4.5, 1.9, 1.6], (len(start), 1)),
        np.arctan2(velocity[:, 1], velocity[:, 0]),
        np.zeros(len(start), dtype=np.int64),
        rng.uniform(0.3, 1.0, len(start)).astype(np.float32),
        velocity + rng.normal(0, 0.3, velocity.shape),
        frame="city",
    )


def _bench(name: str, cfg: TrackerConfig) -> Result:
    rng = np.random.default_rng(0)
    start = rng.uniform(-100, 100, (NUM_OBJECTS, 2))
    velocity = rng.normal(0, 5, (NUM_OBJECTS, 2))
    frames = [_detections(rng, start, velocity, step) for step in range(40)]
    tracker = Tracker(cfg)
    for step in range(5):
        tracker.step(frames[step], step * STEP_NS)
    state = {"step": 5}

    def one_step() -> object:
        k = state["step"]
        state["step"] += 1
        return tracker.step(frames[k], k * STEP_NS)

    return measure(name, one_step, items=NUM_OBJECTS, unit="tracks/s", repeats=31, warmup=1, target="< 2 ms", extra={"live_tracks": NUM_OBJECTS})


def run() -> list[Result]:
    return [
        _bench("step, 100 tracks, cv greedy", TrackerConfig(motion_model="cv", matcher="greedy")),
        _bench("step, 100 tracks, cv hungarian", TrackerConfig(motion_model="cv", matcher="hungarian")),
        _bench("step, 100 tracks, ctrv greedy", TrackerConfig(motion_model="ctrv", matcher="greedy")),
        _bench("step, 100 tracks, cv iou hungarian", TrackerConfig(metric="iou", matcher="hungarian")),
    ]
