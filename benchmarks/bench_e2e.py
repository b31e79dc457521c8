"""Speed of the end-to-end forecasting stack on 32-beam synthetic sweeps: per stage and whole stack per sweep.

Target: the whole stack (detection + tracking + forecasting at 2 Hz) keeps up with the 10 Hz sensor rate on 2 CPU
cores, i.e. >= 10 sweeps/s. Detector and forecaster are the shipped checkpoints (the job's defaults). So that tracking
and forecasting are timed under a realistic load whatever the detector finds, their per-stage rows run on the oracle
detector's boxes (ground truth with 0.3 m jitter, 10% misses). Frames are simulated before timing.

Reproduce: `.venv/bin/python -m benchmarks e2e`
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from benchmarks.harness import Result, measure
from pipelines.e2e_forecast import E2EForecastConfig, run_e2e
from pipelines.oracle_detector import OracleDetector, OracleDetectorConfig

if TYPE_CHECKING:
    from forecasting.forecaster import Forecaster
    from perception.detection.detector import Detector

SECONDS = 3.0


def _stages() -> tuple[Detector, Forecaster]:
    """The shipped detector and forecaster, the ones `drivestack e2e-forecast` runs by default."""
    from forecasting.forecaster import SHIPPED_E2E_CHECKPOINT, Forecaster
    from perception.detection.detector import SHIPPED_CHECKPOINT, Detector

    return Detector.from_checkpoint(SHIPPED_CHECKPOINT), Forecaster.from_checkpoint(SHIPPED_E2E_CHECKPOINT)


def run() -> list[Result]:
    from perception.tracking.tracker import Tracker
    from scenes.adapters.registry import SynthDataset

    dataset = SynthDataset(logs=1, seed=1000, seconds=SECONDS, lidar_beams=32, cameras=())
    log = dataset.simulated(0)
    frames = log.frames
    detector, forecaster = _stages()
    cfg = E2EForecastConfig(detector="lidar", tracker="tracker")
    stages = (detector, Tracker, forecaster)
    points = float(np.mean([len(frame.lidar) for frame in frames if frame.lidar is not None]))

    last = run_e2e(cfg, dataset, stages=stages, progress=False)
    detected = [detector.run(frame, frames[max(0, i - 1) : i]) for i, frame in enumerate(frames)]
    oracle = OracleDetector(OracleDetectorConfig(center_noise_m=0.3, miss_rate=0.1))
    detections = [oracle.run(frame) for frame in frames]
    oracle_run = run_e2e(cfg.model_copy(update={"detector": "oracle"}), dataset, stages=(oracle, Tracker, forecaster), progress=False)
    extra = {
        "points_per_sweep": round(points),
        "detector_boxes_per_sweep": float(np.mean([len(d) for d in detected])),
        "oracle_boxes_per_sweep": float(np.mean([len(d) for d in detections])),
        "oracle_tracks_per_forecast": float(np.mean([len(f) for f in oracle_run.logs[0].forecasts.values()])),
        "per_stage_mean_ms": {stage: round(last.timings.mean_ms(stage), 2) for stage in ("detection", "tracking", "forecasting")},
    }
    middle = len(frames) // 2

    def track_log() -> None:
        tracker = Tracker()
        for frame, boxes in zip(frames, detections, strict=True):
            tracker.step(boxes.transformed(frame.city_SE3_ego, "city"), frame.timestamp_ns)

    forecast_tracks = oracle_run.logs[0].tracks
    assert forecast_tracks is not None
    sweeps = len(frames)
    return [
        measure(
            "e2e whole stack per 32-beam sweep", lambda: run_e2e(cfg, dataset, stages=stages, progress=False),
            items=sweeps, unit="sweeps/s", repeats=3, target=">= 10 sweeps/s", extra=extra,
        ),
        measure(
            f"e2e detection (1 sweep + {detector.past_sweeps} past)",
            lambda: detector.run(frames[middle], frames[middle - detector.past_sweeps : middle]),
            items=1, unit="sweeps/s", repeats=5,
        ),
        measure("e2e tracking, oracle boxes (per sweep)", track_log, items=sweeps, unit="sweeps/s", repeats=3),
        measure(
            "e2e forecasting, oracle-box tracks (one 2 Hz call)", lambda: forecaster.run(forecast_tracks, log.lane_graph, index=middle),
            items=1, unit="calls/s", repeats=5,
        ),
    ]  # fmt: skip
