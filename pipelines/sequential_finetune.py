"""`drivestack finetune forecasting`: the sequential finetuning step of Valeo4Cast, as a job.

1. Tracks: the detector of the end-to-end stack (`stack` in the config) runs over the training logs; with
   `refit_tracker` the tracker's noise and gates are refitted on its outputs matched to ground truth
   (`pipelines.tracking_finetune`, written to `<out>/tracker/tracker.pt`); the (refitted) tracker then runs on the
   same detections. Its outputs are saved as `<out>/tracks/<log_id>.npz` (`--on-tracks DIR` reuses such a folder
   instead of running detector and tracker).
2. Ground truth: city-frame GT tracks from the same logs' annotations.
3. Samples: each predicted track's past from the tracker, its future from the matched GT track
   (`forecasting.finetune`: mean past L2 <= 2 m, Hungarian by default); unmatched tracks are unsupervised.
4. Finetuning: the pretrained forecaster (trained on GT tracks with `drivestack train forecasting`) resumes training
   on those samples; the result is `<out>/forecaster.pt`, usable as `forecaster_checkpoint` of `e2e-forecast`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field

from forecasting.finetune import FinetuneConfig, collect_finetune_samples, finetune
from perception.tracking.refit import RefitConfig
from pipelines.e2e_forecast import E2EForecastConfig, Stages, SynthSplitConfig, build_stages, ground_truth_tracks, run_e2e
from pipelines.tracking_finetune import CachedDetector, refit_on_outputs, run_detector
from scenes.config import StrictConfig, load_config
from scenes.errors import InputError, check_output_path
from scenes.io import atomic_write_text
from scenes.records import LaneGraph, Tracks
from scenes.serialize import load_npz, save_npz

__all__ = ["FinetuneJobConfig", "tracker_outputs", "run_finetune_job"]


class FinetuneJobConfig(StrictConfig):
    """Which forecaster is finetuned, on the tracks of which stack, over which training logs."""

    pretrained: Path | None = Field(None, description="forecaster checkpoint pretrained on ground-truth tracks; None: the shipped one")
    stack: E2EForecastConfig = E2EForecastConfig()
    refit_tracker: bool = Field(True, description="refit the tracker on the detector's outputs before running it")
    refit: RefitConfig = RefitConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    train_split: SynthSplitConfig = SynthSplitConfig(logs=8, seconds=20.0, seed=0)


def tracker_outputs(
    stack: E2EForecastConfig, dataset: Any, tracks_dir: Path | None = None, *, progress: bool = True, stages: Stages | None = None
) -> list[tuple[Tracks, Tracks, LaneGraph | None]]:
    """(tracker outputs, GT tracks, lane graph) of every annotated log; tracker outputs are also saved in `tracks_dir`."""
    result = run_e2e(stack, dataset, progress=progress, stages=stages)
    logs = []
    for log in result.logs:
        if log.tracks is None or not log.annotated:
            continue
        if tracks_dir is not None:
            save_npz(log.tracks, tracks_dir / f"{log.log_id}.npz")
        logs.append((log.tracks, ground_truth_tracks(log.annotated), log.lane_graph))
    return logs


def _saved_tracker_outputs(dataset: Any, tracks_dir: Path) -> list[tuple[Tracks, Tracks, LaneGraph | None]]:
    logs = []
    for log_id in dataset.logs():
        path = tracks_dir / f"{log_id}.npz"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no saved tracker outputs for log {log_id}")
        tracks = load_npz(path)
        if not isinstance(tracks, Tracks) or tracks.log_id != log_id:
            raise InputError(f"{path}: expected the Tracks of log {log_id}")
        frames = [frame for frame in dataset.frames(log_id) if frame.annotations is not None]
        logs.append((tracks, ground_truth_tracks(frames), dataset.lane_graph(log_id)))
    return logs


def run_finetune_job(
    config: Path,
    data: str | None,
    out_dir: Path,
    *,
    on_tracks: Path | None = None,
    split: str | None = None,
    console: Any = None,
    skip_bad: bool = False,
) -> Path:
    """Runs steps 1-4 (see the module docstring); returns the finetuned checkpoint."""
    from rich.console import Console

    from forecasting.config import ForecastingConfig
    from forecasting.forecaster import SHIPPED_CHECKPOINT
    from forecasting.train import load_checkpoint
    from pipelines.e2e_forecast import open_e2e_dataset

    console = console or Console(stderr=True)
    check_output_path(out_dir, directory=True)
    cfg = load_config(config, FinetuneJobConfig)
    stack = cfg.stack.model_copy(update={"synth": cfg.train_split})
    pretrained = cfg.pretrained or SHIPPED_CHECKPOINT
    features = ForecastingConfig.model_validate(load_checkpoint(pretrained)["config"]).features  # a bad checkpoint fails first
    dataset = open_e2e_dataset(data, split, stack, skip_bad=skip_bad)
    if on_tracks is not None:
        logs = _saved_tracker_outputs(dataset, on_tracks)
    else:
        stages: Stages | None = None
        if cfg.refit_tracker and stack.tracker == "tracker":
            outputs = run_detector(stack, dataset)
            tracker_path, _ = refit_on_outputs(stack, cfg.refit, outputs, out_dir / "tracker")
            console.print(f"refitted the tracker on the detector's outputs: {tracker_path}", soft_wrap=True)
            stack = stack.model_copy(update={"tracker_config": tracker_path})
            stages = (CachedDetector(outputs), *build_stages(stack)[1:])
        logs = tracker_outputs(stack, dataset, out_dir / "tracks", stages=stages)
        console.print(f"saved tracker outputs of {len(logs)} log(s) in {out_dir / 'tracks'}", soft_wrap=True)
    samples, counts = collect_finetune_samples(logs, features, cfg.finetune)
    console.print(
        f"{counts['tracks']} predicted tracks at prediction times, {counts['matched']} matched to ground truth, "
        f"{counts['samples']} samples with a full future"
    )
    final = finetune(pretrained, samples, out_dir, cfg.finetune)
    atomic_write_text(out_dir / "finetune_counts.json", json.dumps(counts, indent=2) + "\n")
    console.print(f"wrote {final}", soft_wrap=True)
    return final
