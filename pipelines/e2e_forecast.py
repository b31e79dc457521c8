"""End-to-end forecasting (Valeo4Cast): LiDAR frames -> detection -> tracking -> forecasting -> AV2 submission.

Frames of each log stream through the stages in time order: the detector gives ego-frame boxes, which go to the city
frame and into the tracker; at every 2 Hz evaluation timestamp the forecaster predicts K=5 trajectories of 6 steps
(0.5 s apart) for every confirmed track, from the tracker's recent history. Static categories optionally get the
static mode (`pipelines.e2e_postprocess`). The result is an AV2 E2E forecasting submission with a key for every
evaluated (log, timestamp), the ground truth built from the annotations, the regions of interest the dataset's
adapter gives, and per-stage latencies. The `drivestack e2e-forecast` job around it is `pipelines.e2e_job`.

Stages are chosen in `E2EForecastConfig`: the LiDAR detector (shipped or given checkpoint) or the oracle detector
(ground truth, optionally degraded), the tracker or the oracle tracker (ground-truth identities), the learned
forecaster (shipped or given checkpoint, e.g. after sequential finetuning) or the constant-velocity baseline. A frame
without a sweep on disk (the real AV2 sample holds one sweep of a log annotated at every timestamp) is skipped by the
LiDAR detector; its annotations still enter the ground truth.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import numpy as np
from pydantic import Field
from rich.progress import Progress

from pipelines.e2e_postprocess import apply_static_mode
from pipelines.evaluate_e2e import E2EForecastingScores, evaluate_submission
from pipelines.oracle_detector import OracleDetector, OracleDetectorConfig, OracleTracker
from scenes.config import StrictConfig
from scenes.errors import InputError
from scenes.records import Boxes3D, Forecasts, Frame, LaneGraph, Tracks
from scenes.regions import RegionOfInterest
from scenes.submissions.av2_e2e_forecasting import (
    ForecastSequences,
    Sequences,
    build_submission,
    evaluation_timestamps,
    ground_truth_from_frames,
)

__all__ = [
    "SynthSplitConfig",
    "E2EForecastConfig",
    "StageTimings",
    "LogResult",
    "E2EResult",
    "run_e2e",
    "reforecast",
    "open_e2e_dataset",
    "build_stages",
    "load_e2e_config",
    "ground_truth_tracks",
]

STAGES: Final = ("detection", "tracking", "forecasting")


class DetectorStage(Protocol):
    @property
    def past_sweeps(self) -> int:
        """Previous frames the detector uses (multi-sweep input); read-only (the Detector derives it from its config)."""
        ...

    def run(self, frame: Frame, past: Sequence[Frame] = ()) -> Boxes3D: ...


class TrackerStage(Protocol):
    def step(self, detections_city: Boxes3D, timestamp_ns: int) -> Boxes3D: ...


class ForecasterStage(Protocol):
    def run(self, tracks: Tracks, lane_graph: LaneGraph | None, index: int = -1) -> Forecasts: ...


Stages = tuple[DetectorStage, Callable[[], TrackerStage], ForecasterStage]


class SynthSplitConfig(StrictConfig):
    """The synthetic split used when no `--data` is given (held out from training by its seed)."""

    logs: int = Field(2, ge=1)
    seconds: float = Field(12.0, gt=0)
    seed: int = Field(1000, description="training uses other seeds; this split is never trained on")
    lidar_beams: int | None = 32


class E2EForecastConfig(StrictConfig):
    """Which stages run and how the submission is post-processed and scored."""

    detector: Literal["lidar", "oracle"] = "lidar"
    detector_checkpoint: Path | None = Field(None, description="LiDAR detector checkpoint; None: the shipped one")
    oracle: OracleDetectorConfig = OracleDetectorConfig()
    tracker: Literal["tracker", "oracle"] = "tracker"
    tracker_config: Path | None = Field(
        None, description="tracker checkpoint (.pt of `drivestack train tracking`) or configs/tracking YAML; None: the shipped one"
    )
    forecaster: Literal["learned", "constant_velocity"] = "learned"
    forecaster_checkpoint: Path | None = Field(
        None, description="forecaster checkpoint; None: the shipped one finetuned on the shipped detector and tracker's outputs"
    )
    past_sweeps: int | None = Field(None, ge=0, description="previous frames handed to the detector; None: as many as it uses")
    track_window_s: float = Field(3.0, gt=0, description="tracker history kept for the forecaster")
    static_mode: bool = True
    top_k: Literal[1, 5] = 5
    max_range_m: int = Field(50, gt=0)
    roi_filter: bool = True
    synth: SynthSplitConfig = SynthSplitConfig()


@dataclass
class StageTimings:
    """Wall time spent in each stage, and on how many calls."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start
            self.calls[stage] += 1

    def mean_ms(self, stage: str) -> float:
        return 1000.0 * self.seconds[stage] / max(1, self.calls[stage])

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {stage: {"total_s": self.seconds[stage], "calls": self.calls[stage], "mean_ms": self.mean_ms(stage)} for stage in self.seconds}


@dataclass(frozen=True)
class LogResult:
    """What the stack produced on one log (kept for plots and finetuning)."""

    log_id: str
    lane_graph: LaneGraph | None
    tracks: Tracks | None
    forecasts: dict[int, Forecasts]
    annotated: tuple[Frame, ...]
    evaluated: int = 0  # 2 Hz evaluation timestamps of the log; `forecasts` holds those that had a sweep to run on


@dataclass(frozen=True)
class E2EResult:
    submission: ForecastSequences
    ground_truth: Sequences
    rois: dict[str, RegionOfInterest] | None
    logs: tuple[LogResult, ...]
    timings: StageTimings
    num_sweeps: int

    @property
    def evaluated_timestamps(self) -> int:
        """2 Hz evaluation timestamps of all logs."""
        return sum(log.evaluated for log in self.logs)

    @property
    def forecast_timestamps(self) -> int:
        """Evaluation timestamps that had a sweep (a frame the stages ran on) and so got forecasts."""
        return sum(len(log.forecasts) for log in self.logs)

    def evaluate(self, cfg: E2EForecastConfig) -> E2EForecastingScores:
        return evaluate_submission(self.submission, self.ground_truth, rois=self.rois, top_k=cfg.top_k, max_range_m=cfg.max_range_m)


def build_stages(cfg: E2EForecastConfig) -> Stages:
    """The detector, a tracker factory (one tracker per log) and the forecaster named by `cfg`."""
    detector: DetectorStage
    if cfg.detector == "oracle":
        detector = OracleDetector(cfg.oracle)
    else:
        from perception.detection.detector import SHIPPED_CHECKPOINT, Detector

        detector = Detector.from_checkpoint(cfg.detector_checkpoint or SHIPPED_CHECKPOINT)
    make_tracker: Callable[[], TrackerStage]
    if cfg.tracker == "oracle":
        make_tracker = OracleTracker
    else:
        from perception.tracking.tracker import Tracker, load_tracker_config

        tracker_cfg = load_tracker_config(cfg.tracker_config)

        def make_tracker() -> TrackerStage:
            return Tracker(tracker_cfg)

    forecaster: ForecasterStage
    if cfg.forecaster == "constant_velocity":
        from forecasting.baselines import ConstantVelocityForecaster

        forecaster = ConstantVelocityForecaster()  # 6 steps at 2 Hz, K = 5: the AV2 end-to-end task
    else:
        from forecasting.forecaster import SHIPPED_E2E_CHECKPOINT, Forecaster

        forecaster = Forecaster.from_checkpoint(cfg.forecaster_checkpoint or SHIPPED_E2E_CHECKPOINT)
    return detector, make_tracker, forecaster


def open_e2e_dataset(data: str | None, split: str | None, cfg: E2EForecastConfig, *, skip_bad: bool = False) -> Any:
    """`--data av2:PATH` (a split, log or dataset directory; `split`: one split folder of a dataset directory, None:
    all) or, with no data, the synthetic split of `cfg.synth` (which has no split folders)."""
    from scenes.adapters.registry import open_dataset

    if data is None or data == "synth":
        return open_dataset(
            "synth", logs=cfg.synth.logs, seed=cfg.synth.seed, seconds=cfg.synth.seconds,
            lidar_beams=cfg.synth.lidar_beams if cfg.detector == "lidar" else None, cameras=(), skip_bad=skip_bad,
        )  # fmt: skip
    if not data.startswith("av2:"):
        raise InputError(f"--data {data}: end-to-end forecasting reads AV2 sensor logs ('av2:PATH') or 'synth'")
    return open_dataset(data, split=split, skip_bad=skip_bad)


def _forecast(
    cfg: E2EForecastConfig,
    forecaster: ForecasterStage,
    log_id: str,
    stamps: Sequence[int] | np.ndarray,
    tracked: Sequence[Boxes3D],
    lane_graph: LaneGraph | None,
) -> Forecasts:
    """Forecasts at the last of `stamps` from the tracker's outputs of the last `track_window_s` seconds."""
    window_start = int(np.searchsorted(stamps, stamps[-1] - int(cfg.track_window_s * 1e9)))
    window = Tracks(log_id, np.array(stamps[window_start:], dtype=np.int64), tuple(tracked[window_start:]))
    prediction = forecaster.run(window, lane_graph, index=-1)
    return apply_static_mode(prediction) if cfg.static_mode else prediction


def _run_log(
    cfg: E2EForecastConfig,
    log_id: str,
    frames: Sequence[Frame],
    lane_graph: LaneGraph | None,
    stages: Stages,
    timings: StageTimings,
    progress: Progress,
) -> tuple[LogResult, int]:
    detector, make_tracker, forecaster = stages
    tracker = make_tracker()
    forecast_at = set(evaluation_timestamps([f.timestamp_ns for f in frames]).tolist())
    stamps: list[int] = []
    tracked: list[Boxes3D] = []
    forecasts: dict[int, Forecasts] = {}
    processed: list[Frame] = []
    sweeps = 0
    history = cfg.past_sweeps if cfg.past_sweeps is not None else detector.past_sweeps
    task = progress.add_task(f"log {log_id[:8]}", total=len(frames))
    for frame in frames:
        progress.advance(task)
        if cfg.detector == "lidar" and frame.lidar is None:
            continue
        sweeps += 1
        with timings.time("detection"):
            detections = detector.run(frame, processed[-history:] if history else ())
        processed.append(frame)
        if len(processed) > history:
            processed.pop(0)
        with timings.time("tracking"):
            boxes = tracker.step(detections.transformed(frame.city_SE3_ego, "city"), frame.timestamp_ns)
        stamps.append(frame.timestamp_ns)
        tracked.append(boxes)
        if frame.timestamp_ns not in forecast_at:
            continue
        with timings.time("forecasting"):
            forecasts[frame.timestamp_ns] = _forecast(cfg, forecaster, log_id, stamps, tracked, lane_graph)
    progress.remove_task(task)
    tracks = Tracks(log_id, np.array(stamps, dtype=np.int64), tuple(tracked)) if stamps else None
    annotated = tuple(replace(f, lidar=None, cameras={}) for f in frames if f.annotations is not None)
    return LogResult(log_id, lane_graph, tracks, forecasts, annotated, len(forecast_at)), sweeps


def run_e2e(
    cfg: E2EForecastConfig,
    dataset: Any,
    *,
    stages: Stages | None = None,
    progress: bool = True,
    log_ids: Sequence[str] | None = None,
) -> E2EResult:
    """Runs the stack on every log of `dataset` (an adapter from `scenes.adapters.registry`).

    `stages` (detector, tracker factory, forecaster) overrides the ones named by `cfg`, e.g. a freshly trained model.
    """
    stages = stages if stages is not None else build_stages(cfg)
    timings = StageTimings()
    results: list[LogResult] = []
    ground_truth: Sequences = {}
    rois: dict[str, RegionOfInterest] = {}
    sweeps = 0
    with Progress(disable=not progress, transient=True) as bar:
        for log_id in log_ids if log_ids is not None else dataset.logs():
            frames = sorted(dataset.frames(log_id), key=lambda f: f.timestamp_ns)
            if not frames:
                continue
            lane_graph = dataset.lane_graph(log_id)
            result, log_sweeps = _run_log(cfg, log_id, frames, lane_graph, stages, timings, bar)
            sweeps += log_sweeps
            results.append(result)
            if result.annotated:
                ground_truth.update(ground_truth_from_frames(result.annotated))
                roi = dataset.region_of_interest(log_id) if cfg.roi_filter else None
                if roi is not None:
                    rois[log_id] = roi
    use_rois = cfg.roi_filter and ground_truth and all(log_id in rois for log_id in ground_truth)
    return E2EResult(_submission(results, ground_truth), ground_truth, rois if use_rois else None, tuple(results), timings, sweeps)


def _submission(logs: Sequence[LogResult], ground_truth: Sequences) -> ForecastSequences:
    entries: list[tuple[Forecasts, Boxes3D]] = []
    for log in logs:
        if log.tracks is not None:
            by_stamp = dict(zip(log.tracks.timestamps_ns.tolist(), log.tracks.boxes, strict=True))
            entries.extend((forecast, by_stamp[ts]) for ts, forecast in log.forecasts.items())
    required = {log_id: [frame["timestamp_ns"] for frame in frames] for log_id, frames in ground_truth.items()}
    return build_submission(entries, required)


def reforecast(cfg: E2EForecastConfig, result: E2EResult, forecaster: ForecasterStage) -> E2EResult:
    """`result` with its forecasts redone by `forecaster` from the same tracker outputs (detection and tracking not rerun).

    Compares forecasters on identical tracks, as sequential finetuning is judged, at the cost of forecasting only.
    """
    timings = StageTimings()
    logs: list[LogResult] = []
    for log in result.logs:
        forecasts: dict[int, Forecasts] = {}
        if log.tracks is not None:
            stamps = log.tracks.timestamps_ns
            for timestamp_ns in log.forecasts:
                end = int(np.searchsorted(stamps, timestamp_ns)) + 1  # forecasts are made at tracker timestamps
                with timings.time("forecasting"):
                    forecasts[timestamp_ns] = _forecast(cfg, forecaster, log.log_id, stamps[:end], log.tracks.boxes[:end], log.lane_graph)
        logs.append(replace(log, forecasts=forecasts))
    return replace(result, submission=_submission(logs, result.ground_truth), logs=tuple(logs), timings=timings)


def load_e2e_config(path: Path | None) -> E2EForecastConfig:
    """The YAML config at `path` (errors name the file and the key), else the defaults."""
    from scenes.config import load_config

    return load_config(path, E2EForecastConfig) if path is not None else E2EForecastConfig()


def ground_truth_tracks(frames: Sequence[Frame]) -> Tracks:
    """City-frame ground-truth tracks of a log's annotated frames."""
    boxes = [frame.annotations.transformed(frame.city_SE3_ego, "city") for frame in frames if frame.annotations is not None]
    stamps = np.array([frame.timestamp_ns for frame in frames if frame.annotations is not None], dtype=np.int64)
    return Tracks(frames[0].log_id, stamps, tuple(boxes))
