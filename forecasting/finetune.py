"""Sequential finetuning (Valeo4Cast): a forecaster pretrained on ground-truth tracks, finetuned on tracker outputs.

At each prediction time, every predicted track is matched to a ground-truth track by the mean L2 distance of their
positions over the past steps both observe (the forecaster's history grid, current step included): one-to-one with
the Hungarian algorithm or, with `assignment="nearest"`, each predicted track to its closest GT track; a pair counts
only when that distance is at most `max_mean_l2_m` (2 m). A matched track becomes a training sample whose past
(history, neighbours, lanes) comes from the tracker and whose future is the matched GT track's; unmatched predicted
tracks give no loss (they stay in the scene as neighbours of the others). The forecaster then resumes training from
its pretrained weights on these samples, so it learns to forecast from the noisy, gappy histories it will see at test
time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field
from rich.progress import Progress
from scipy.optimize import linear_sum_assignment

from forecasting.config import FeatureConfig, ForecastingConfig, TrackerNoiseConfig
from forecasting.dataset import FeatureBatch, LaneSegments, encode_scenario, scenario_from_tracks
from forecasting.train import ForecastingTask, load_checkpoint
from scenes.config import StrictConfig
from scenes.errors import InputError
from scenes.records import LaneGraph, Scenario, Tracks
from scenes.training.harness import OnCheckpoint, fit

__all__ = [
    "FinetuneConfig",
    "TrackMatch",
    "match_tracks",
    "finetune_samples",
    "finetune",
    "collect_finetune_samples",
]


class FinetuneConfig(StrictConfig):
    """How tracker outputs are matched to ground truth, and how long the pretrained forecaster is finetuned."""

    max_mean_l2_m: float = Field(2.0, gt=0, description="largest mean past distance of a matched (track, GT) pair")
    assignment: Literal["hungarian", "nearest"] = "hungarian"
    min_shared_steps: int = Field(1, ge=1, description="past steps both tracks must observe to be compared")
    epochs: int = Field(10, ge=1)
    learning_rate: float = Field(5e-4, gt=0)
    batch_size: int | None = Field(None, ge=1, description="None: the pretrained config's global batch size")
    sample_every_s: float = Field(
        0.5, gt=0, description="prediction times are at least this far apart (0.1: every frame of a 10 Hz tracker)"
    )
    seed: int = 0


TrackMatch = dict[str, str]  # predicted track id -> ground-truth track id, at one prediction time


def _past_distance(predicted: Scenario, ground_truth: Scenario, min_shared_steps: int) -> np.ndarray:
    """Mean L2 (m) between every (predicted, GT) pair over shared observed past steps; inf with too few shared."""
    past = slice(0, predicted.current_index + 1)
    pred_xy, pred_valid = predicted.xy_m[:, past], predicted.valid[:, past]
    gt_xy, gt_valid = ground_truth.xy_m[:, past], ground_truth.valid[:, past]
    shared = pred_valid[:, None, :] & gt_valid[None, :, :]
    distance = np.linalg.norm(pred_xy[:, None] - gt_xy[None, :], axis=-1)
    count = shared.sum(-1)
    total = np.where(shared, distance, 0.0).sum(-1)
    return np.where(count >= min_shared_steps, total / np.maximum(count, 1), np.inf)


def match_tracks(predicted: Scenario, ground_truth: Scenario, cfg: FinetuneConfig) -> TrackMatch:
    """Pairs predicted agents with GT agents of the same prediction time (both scenarios on the same grid)."""
    if not np.array_equal(predicted.timestamps_ns, ground_truth.timestamps_ns):
        raise ValueError(f"match_tracks: scenarios {predicted.scenario_id} and {ground_truth.scenario_id} are on different grids")
    match: TrackMatch = {}
    if not len(predicted.agent_ids) or not len(ground_truth.agent_ids):
        return match
    cost = _past_distance(predicted, ground_truth, cfg.min_shared_steps)
    allowed = cost <= cfg.max_mean_l2_m
    if cfg.assignment == "hungarian":
        rows, cols = linear_sum_assignment(np.where(allowed, cost, 1e6))
    else:
        rows = np.arange(len(cost))
        cols = np.argmin(cost, axis=1)
    for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
        if allowed[row, col]:
            match[str(predicted.agent_ids[row])] = str(ground_truth.agent_ids[col])
    return match


def _with_ground_truth_future(predicted: Scenario, ground_truth: Scenario, match: TrackMatch) -> tuple[Scenario, np.ndarray]:
    """The predicted scenario whose future steps are the matched GT tracks' (none for unmatched tracks)."""
    future = slice(predicted.current_index + 1, None)
    xy = predicted.xy_m.copy()
    valid = predicted.valid.copy()
    xy[:, future] = 0.0
    valid[:, future] = False
    gt_row = {agent: row for row, agent in enumerate(ground_truth.agent_ids.tolist())}
    supervised = np.zeros(len(predicted.agent_ids), dtype=bool)
    for row, agent in enumerate(predicted.agent_ids.tolist()):
        if agent in match:
            source = gt_row[match[agent]]
            xy[row, future] = ground_truth.xy_m[source, future]
            valid[row, future] = ground_truth.valid[source, future]
            supervised[row] = True
    return replace(predicted, xy_m=xy, valid=valid), supervised


def finetune_samples(
    predicted: Tracks,
    ground_truth: Tracks,
    lane_graph: LaneGraph | None,
    features: FeatureConfig,
    cfg: FinetuneConfig,
) -> tuple[FeatureBatch | None, dict[str, int]]:
    """Training samples of one log: tracker pasts with matched GT futures (full horizon only), and match counts."""
    if predicted.log_id != ground_truth.log_id:
        raise ValueError(f"finetune_samples: tracks of log {predicted.log_id} vs ground truth of {ground_truth.log_id}")
    step_ns = int(round(features.step_s * 1e9))
    first = int(predicted.timestamps_ns[0]) + (features.history_steps - 1) * step_ns
    last = int(ground_truth.timestamps_ns[-1]) - features.horizon_steps * step_ns
    segments = LaneSegments.from_lane_graph(lane_graph, features.lane_segment_length_m, features.lane_points)
    parts: list[FeatureBatch] = []
    counts = {"tracks": 0, "matched": 0, "samples": 0}
    gt_index_of = {int(ts): index for index, ts in enumerate(ground_truth.timestamps_ns.tolist())}
    spacing_ns = int(round(cfg.sample_every_s * 1e9))
    # a frame is kept when at least `sample_every_s` (less a quarter of the tracker's frame period) after the last kept
    slack_ns = int(np.median(np.diff(predicted.timestamps_ns))) // 4 if len(predicted) > 1 else 0
    next_ns = first - slack_ns
    for pred_index, current_ns in enumerate(predicted.timestamps_ns.tolist()):
        if current_ns < next_ns or current_ns > last or current_ns not in gt_index_of:
            continue
        next_ns = current_ns + spacing_ns - slack_ns
        gt_index = gt_index_of[current_ns]
        pred_scenario = scenario_from_tracks(predicted, lane_graph, pred_index, features)
        gt_scenario = scenario_from_tracks(ground_truth, lane_graph, gt_index, features)
        match = match_tracks(pred_scenario, gt_scenario, cfg)
        scenario, supervised = _with_ground_truth_future(pred_scenario, gt_scenario, match)
        counts["tracks"] += len(scenario.agent_ids)
        counts["matched"] += len(match)
        rows = np.flatnonzero(supervised & scenario.valid[:, scenario.current_index + 1 :].all(axis=1))
        if len(rows):
            parts.append(encode_scenario(scenario, segments, features, rows))
            counts["samples"] += len(rows)
    return (FeatureBatch.concatenate(parts) if parts else None), counts


def finetune(
    pretrained_checkpoint: str | os.PathLike[str],
    samples: FeatureBatch,
    out_dir: str | os.PathLike[str],
    cfg: FinetuneConfig | None = None,
    *,
    on_checkpoint: OnCheckpoint | None = None,
    progress: bool = True,
) -> Path:
    """Finetunes the pretrained forecaster on `samples`; returns the final checkpoint (`out_dir/forecaster.pt`).

    Same objective, features and network as pretraining, with `cfg`'s epochs and learning rate, starting from the
    pretrained weights, and without the pretraining's simulated tracker noise: the samples are a tracker's outputs.
    Runs on the training harness, so it resumes after an interruption.
    """
    cfg = cfg or FinetuneConfig()
    payload = load_checkpoint(pretrained_checkpoint)
    base = ForecastingConfig.model_validate(payload["config"])
    optim = base.optim.model_copy(
        update={"epochs": cfg.epochs, "learning_rate": cfg.learning_rate, "batch_size": cfg.batch_size or base.optim.batch_size}
    )
    finetune_cfg = base.model_copy(update={"optim": optim, "seed": cfg.seed, "tracker_noise": TrackerNoiseConfig()})
    task = ForecastingTask(finetune_cfg, samples, initial_state=payload["state_dict"])
    return fit(task, Path(out_dir), on_checkpoint=on_checkpoint, show_progress=progress)


def collect_finetune_samples(
    logs: Sequence[tuple[Tracks, Tracks, LaneGraph | None]], features: FeatureConfig, cfg: FinetuneConfig, *, progress: bool = True
) -> tuple[FeatureBatch, dict[str, int]]:
    """Samples of many logs given as (tracker outputs, ground-truth tracks, lane graph)."""
    parts: list[FeatureBatch] = []
    totals = {"tracks": 0, "matched": 0, "samples": 0}
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("matching tracks to ground truth", total=len(logs))
        for predicted, ground_truth, lane_graph in logs:
            batch, counts = finetune_samples(predicted, ground_truth, lane_graph, features, cfg)
            if batch is not None:
                parts.append(batch)
            for key, value in counts.items():
                totals[key] += value
            bar.advance(task)
    if not parts:
        raise InputError("collect_finetune_samples: no predicted track matched a ground-truth track with a full future")
    return FeatureBatch.concatenate(parts), totals
