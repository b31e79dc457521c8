"""Argoverse 2 motion forecasting (FORMATS §3): challenge submissions, the scenarios' ground truth and their scores.

A submission is the parquet of av2's `ChallengeSubmission`: one row per (scenario, track, predicted world) with
`scenario_id, track_id, probability, predicted_trajectory_x, predicted_trajectory_y` (60 city-frame positions, 6 s at
10 Hz after the last observed step). A world's probability is shared by every track of its scenario, and the
probabilities of a scenario sum to 1.

The ground truth of a scenario is the future (timesteps 50..109) of its focal track and its scored tracks.
`score_submission` computes, with av2's own metric functions, for K = 6 (the six most probable worlds) and K = 1 (the
most probable one):

- focal track (the single-agent benchmark): minADE, minFDE, miss rate (final error > 2 m) and brier-minFDE of the
  mode with the smallest final displacement error (`compute_ade`, `compute_fde`, `compute_is_missed_prediction`,
  `compute_brier_fde`), averaged over scenarios;
- focal and scored tracks together (the multi-agent benchmark): the same four figures of the world with the smallest
  mean final displacement error (`compute_world_ade`, `compute_world_fde`, `compute_world_misses`,
  `compute_world_brier_fde`); ADE, FDE and brier-FDE averaged over scenarios, the miss rate over all scored actors.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
from av2.datasets.motion_forecasting.constants import (
    AV2_SCENARIO_OBS_TIMESTEPS,
    AV2_SCENARIO_PRED_TIMESTEPS,
    AV2_SCENARIO_STEP_HZ,
    AV2_SCENARIO_TOTAL_TIMESTEPS,
)
from av2.datasets.motion_forecasting.eval import metrics
from av2.datasets.motion_forecasting.eval.submission import SUBMISSION_COL_NAMES, ChallengeSubmission
from rich.table import Table

from scenes.adapters.base import AdapterError
from scenes.errors import DrivestackError

__all__ = [
    "K_VALUES",
    "METRICS",
    "MISS_THRESHOLD_M",
    "NUM_STEPS",
    "STEP_S",
    "SUBMISSION_COLUMNS",
    "MotionForecastingFormatError",
    "MotionForecastingScores",
    "ScenarioTruth",
    "read_submission",
    "scenario_truth",
    "score_submission",
    "worlds_from_modes",
]

SUBMISSION_COLUMNS: Final = tuple(SUBMISSION_COL_NAMES)
NUM_STEPS: Final = AV2_SCENARIO_PRED_TIMESTEPS
STEP_S: Final = 1.0 / AV2_SCENARIO_STEP_HZ
K_VALUES: Final = (6, 1)
MISS_THRESHOLD_M: Final = 2.0
METRICS: Final = ("minADE", "minFDE", "MR", "brier-minFDE")
GROUPS: Final = {"focal": "focal", "scored": "focal + scored"}


class MotionForecastingFormatError(DrivestackError, ValueError):
    """A motion-forecasting submission that the challenge's format does not allow."""


def _fail(source: Path, column: str, rows: pd.Series, what: str, table: pd.DataFrame | None = None) -> MotionForecastingFormatError:
    """The error at the first of `rows`, with its value when `table` is given."""
    row = int(np.flatnonzero(rows.to_numpy(bool))[0])
    value = f": {table[column].iloc[row]!r}" if table is not None else ""
    return MotionForecastingFormatError(f"{source}: column {column!r}: {what} (row {row}{value})")


def _check_trajectories(source: Path, table: pd.DataFrame) -> None:
    for column in ("predicted_trajectory_x", "predicted_trajectory_y"):
        lengths = table[column].map(lambda value: len(value) if isinstance(value, list | tuple | np.ndarray) else -1)
        if (lengths != NUM_STEPS).any():
            row = int(np.flatnonzero((lengths != NUM_STEPS).to_numpy(bool))[0])
            got = f"{lengths.iloc[row]} positions" if lengths.iloc[row] >= 0 else type(table[column].iloc[row]).__name__
            raise _fail(source, column, lengths != NUM_STEPS, f"expected a list of {NUM_STEPS} positions (6 s at 10 Hz), got {got}")
        try:
            values = np.stack([np.asarray(value, dtype=np.float64) for value in table[column]])
        except (TypeError, ValueError):
            raise MotionForecastingFormatError(f"{source}: column {column!r}: expected lists of numbers") from None
        finite = pd.Series(np.isfinite(values).all(axis=1), index=table.index)
        if not finite.all():
            raise _fail(source, column, ~finite, "NaN or inf position")


def _check_worlds(source: Path, table: pd.DataFrame) -> None:
    """Every track of a scenario has the scenario's worlds: the same probabilities, which sum to 1."""
    for scenario_id, scenario in table.groupby("scenario_id", sort=False):
        worlds = {track_id: np.sort(rows["probability"].to_numpy(np.float64))[::-1] for track_id, rows in scenario.groupby("track_id", sort=False)}
        first_track, first = next(iter(worlds.items()))
        for track_id, probabilities in worlds.items():
            if probabilities.shape != first.shape or not np.allclose(probabilities, first):
                raise MotionForecastingFormatError(
                    f"{source}: column 'probability': scenario {scenario_id}: track {track_id} has worlds {probabilities.tolist()}, "
                    f"track {first_track} {first.tolist()} (a world's probability is shared by every track of its scenario)"
                )
        if not np.isclose(first.sum(), 1.0):
            raise MotionForecastingFormatError(
                f"{source}: column 'probability': scenario {scenario_id}: the worlds' probabilities sum to {first.sum():.6g}, not 1"
            )


def read_submission(path: str | os.PathLike[str]) -> ChallengeSubmission:
    """Checks a challenge submission parquet (columns, ids, 60 finite positions, per-scenario world probabilities in
    [0, 1] summing to 1) and loads it with `ChallengeSubmission.from_parquet`; errors name the file and the column."""
    source = Path(path)
    if not source.is_file():
        raise MotionForecastingFormatError(f"{source}: file not found")
    try:
        table = pd.read_parquet(source)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise MotionForecastingFormatError(f"{source}: not a readable parquet file ({type(error).__name__}: {error})") from None
    missing = [column for column in SUBMISSION_COLUMNS if column not in table.columns]
    if missing:
        raise MotionForecastingFormatError(f"{source}: missing column(s) {missing}; a submission has the columns {list(SUBMISSION_COLUMNS)}")
    if not len(table):
        raise MotionForecastingFormatError(f"{source}: the submission has no rows")
    for column in ("scenario_id", "track_id"):
        not_text = ~table[column].map(lambda value: isinstance(value, str) and bool(value))
        if not_text.any():
            raise _fail(source, column, not_text, "expected non-empty strings", table)
    if not pd.api.types.is_numeric_dtype(table["probability"]) or pd.api.types.is_bool_dtype(table["probability"]):
        raise MotionForecastingFormatError(f"{source}: column 'probability': expected numbers, got dtype {table['probability'].dtype}")
    probability = table["probability"].astype(np.float64)
    outside = ~((probability >= 0.0) & (probability <= 1.0))
    if outside.any():
        raise _fail(source, "probability", outside, "expected a probability in [0, 1]", table)
    _check_trajectories(source, table)
    _check_worlds(source, table)
    return ChallengeSubmission.from_parquet(source)


@dataclass(frozen=True)
class ScenarioTruth:
    """The future of the tracks a scenario scores: the focal track first, then the scored tracks."""

    scenario_id: str
    track_ids: tuple[str, ...]
    future_xy_m: np.ndarray  # (M, NUM_STEPS, 2), city frame

    @property
    def focal_track_id(self) -> str:
        return self.track_ids[0]


def scenario_truth(scenario: Any, source: Path) -> ScenarioTruth:
    """The ground truth of a loaded `ArgoverseScenario` (`source`: its parquet, named in errors)."""
    from av2.datasets.motion_forecasting.data_schema import TrackCategory

    scored = [track for track in scenario.tracks if track.category in (TrackCategory.FOCAL_TRACK, TrackCategory.SCORED_TRACK)]
    focal = [track for track in scored if track.track_id == scenario.focal_track_id]
    if len(focal) != 1:
        raise AdapterError(source, f"focal track {scenario.focal_track_id!r} is not a track of category FOCAL_TRACK or SCORED_TRACK")
    tracks = focal + [track for track in scored if track.track_id != scenario.focal_track_id]
    future = np.full((len(tracks), NUM_STEPS, 2), np.nan)
    for row, track in enumerate(tracks):
        for state in track.object_states:
            if AV2_SCENARIO_OBS_TIMESTEPS <= state.timestep < AV2_SCENARIO_TOTAL_TIMESTEPS:
                future[row, state.timestep - AV2_SCENARIO_OBS_TIMESTEPS] = state.position
        absent = np.flatnonzero(~np.isfinite(future[row]).all(axis=1))
        if len(absent):
            raise AdapterError(source, f"scored track {track.track_id}: no state at future timestep(s) {(absent + AV2_SCENARIO_OBS_TIMESTEPS).tolist()[:5]}")
    return ScenarioTruth(str(scenario.scenario_id), tuple(str(track.track_id) for track in tracks), future)


def worlds_from_modes(trajectories_m: np.ndarray, mode_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-track modes `(M, K, T, 2)` with scores `(M, K)` -> worlds: world k joins every track's k-th most probable
    mode, with the mean of their scores as probability (normalised to sum to 1). Returns `(K,)` and `(M, K, T, 2)`."""
    order = np.argsort(-mode_scores, axis=1, kind="stable")
    ranked = np.take_along_axis(trajectories_m, order[:, :, None, None], axis=1)
    probabilities = np.take_along_axis(mode_scores, order, axis=1).mean(axis=0)
    total = probabilities.sum()
    probabilities = probabilities / total if total > 0 else np.full(len(probabilities), 1.0 / len(probabilities))
    return probabilities, ranked


@dataclass(frozen=True)
class MotionForecastingScores:
    """`figures[group][K]` = {minADE, minFDE, MR, brier-minFDE}; groups "focal" and "scored" (focal + scored)."""

    figures: dict[str, dict[int, dict[str, float]]]
    scenarios: int
    actors: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenarios": self.scenarios,
            "actors": self.actors,
            **{group: {f"K={k}": dict(values) for k, values in by_k.items()} for group, by_k in self.figures.items()},
        }

    def table(self, title: str) -> Table:
        full_title = f"{title}: {self.scenarios} scenario(s), {self.actors} scored actor(s)"
        table = Table(title=full_title, min_width=len(full_title))
        table.add_column("tracks")
        table.add_column("K", justify="right")
        for metric in METRICS:
            table.add_column(metric if metric == "MR" else f"{metric} (m)", justify="right")
        for group, label in GROUPS.items():
            for k in K_VALUES:
                table.add_row(label, str(k), *(f"{self.figures[group][k][m]:.3f}" for m in METRICS))
        return table


def _scenario_figures(probabilities: np.ndarray, worlds: np.ndarray, truth: np.ndarray, k: int) -> tuple[dict[str, float], dict[str, float], np.ndarray]:
    """Focal figures, world figures and the scored actors' misses `(M,)` of one scenario at top-`k`."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    probabilities, worlds = probabilities[order], worlds[:, order]
    fde = metrics.compute_fde(worlds[0], truth[0])
    best = int(np.argmin(fde))
    focal = {
        "minADE": float(metrics.compute_ade(worlds[0], truth[0])[best]),
        "minFDE": float(fde[best]),
        "MR": float(metrics.compute_is_missed_prediction(worlds[0], truth[0], MISS_THRESHOLD_M)[best]),
        "brier-minFDE": float(metrics.compute_brier_fde(worlds[0], truth[0], probabilities)[best]),
    }
    world_fde = metrics.compute_world_fde(worlds, truth)
    best = int(np.argmin(world_fde))
    missed = metrics.compute_world_misses(worlds, truth, MISS_THRESHOLD_M)[:, best]
    world = {
        "minADE": float(metrics.compute_world_ade(worlds, truth)[best]),
        "minFDE": float(world_fde[best]),
        "MR": float(missed.mean()),
        "brier-minFDE": float(metrics.compute_world_brier_fde(worlds, truth, probabilities)[best]),
    }
    return focal, world, missed


def score_submission(submission: ChallengeSubmission, truths: Sequence[ScenarioTruth], source: str) -> MotionForecastingScores:
    """Scores `submission` on the scenarios of `truths`; it must forecast every scored track of every one of them and
    nothing else (errors name `source`, the scenario and the track)."""
    if not truths:
        raise MotionForecastingFormatError(f"{source}: no scenario to score")
    known = {truth.scenario_id for truth in truths}
    extra = sorted(set(submission.predictions) - known)
    if extra:
        raise MotionForecastingFormatError(f"{source}: column 'scenario_id': {len(extra)} scenario(s) not in the dataset, e.g. {extra[:3]}")
    focal: dict[int, list[dict[str, float]]] = {k: [] for k in K_VALUES}
    world: dict[int, list[dict[str, float]]] = {k: [] for k in K_VALUES}
    misses: dict[int, list[np.ndarray]] = {k: [] for k in K_VALUES}
    for truth in truths:
        if truth.scenario_id not in submission.predictions:
            raise MotionForecastingFormatError(f"{source}: column 'scenario_id': scenario {truth.scenario_id} has no forecast")
        probabilities, tracks = submission.predictions[truth.scenario_id]
        absent = [track_id for track_id in truth.track_ids if track_id not in tracks]
        if absent:
            raise MotionForecastingFormatError(f"{source}: column 'track_id': scenario {truth.scenario_id}: scored track(s) {absent[:3]} have no forecast")
        worlds = np.stack([np.asarray(tracks[track_id], dtype=np.float64) for track_id in truth.track_ids])
        for k in K_VALUES:
            focal_figures, world_figures, missed = _scenario_figures(np.asarray(probabilities, dtype=np.float64), worlds, truth.future_xy_m, k)
            focal[k].append(focal_figures)
            world[k].append(world_figures)
            misses[k].append(missed)
    figures: dict[str, dict[int, dict[str, float]]] = {"focal": {}, "scored": {}}
    for k in K_VALUES:
        figures["focal"][k] = {metric: float(np.mean([item[metric] for item in focal[k]])) for metric in METRICS}
        figures["scored"][k] = {metric: float(np.mean([item[metric] for item in world[k]])) for metric in METRICS}
        figures["scored"][k]["MR"] = float(np.concatenate(misses[k]).mean())
    return MotionForecastingScores(figures, len(truths), sum(len(truth.track_ids) for truth in truths))
