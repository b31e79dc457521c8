"""`drivestack evaluate detection | forecasting | e2e-forecasting`: score a predictions file made elsewhere, or run the
task's model on `--data` and score what it predicts, with the official evaluators.

- detection: an AV2 detection feather (`av2:PATH`, `synth`) is scored by `evaluate_av2_detection` against the
  annotated frames that have a LiDAR sweep, on the categories present in that ground truth (boxes with LiDAR points);
  a nuScenes detection JSON (`nuscenes:PATH`) by the devkit's `DetectionEval` on an eval set, by default the one split
  (hard-coded in the devkit or listed in `<version>/splits.json`) that holds every scene of the database. The model
  is the shipped detector (or a checkpoint), run on every annotated frame with its preceding sweeps; on `synth`, on
  held-out simulated logs.
- forecasting: an AV2 motion-forecasting challenge parquet (`av2-mf:PATH`) is scored with av2's metric functions on
  the scenarios' focal and scored tracks (`scenes.submissions.av2_motion_forecasting`); a nuScenes prediction JSON
  (`nuscenes:PATH`) by the devkit's `compute_metrics` (`forecasting.evaluate.evaluate_predictions`). The model
  forecasts from the observed part of each scenario only (the future is masked first) and must predict the
  benchmark's horizon at a rate that divides its step (AV2: 60 steps of 0.1 s; nuScenes: 12 steps of 0.5 s); on
  nuScenes it forecasts every agent with a full 6 s future at each key frame.
- e2e-forecasting: an AV2 end-to-end forecasting pickle is scored by `evaluate_submission` on the ground truth,
  regions of interest, top-K and range that `drivestack e2e-forecast --evaluate` uses with the same config; the
  model is the whole stack (`run_e2e`).

Each command prints one rich table and, with `json_path`, writes the same figures as JSON (atomically).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from pipelines.e2e_forecast import E2EForecastConfig, load_e2e_config, open_e2e_dataset, run_e2e
from pipelines.evaluate_e2e import E2EForecastingScores, evaluate_submission
from scenes.adapters.base import AdapterError, Dataset, skip_or_raise
from scenes.adapters.registry import open_dataset, parse_spec
from scenes.categories import CATEGORIES
from scenes.errors import InputError, check_output_path
from scenes.io import atomic_write_text
from scenes.records import Boxes3D, Forecasts, Frame, Scenario
from scenes.regions import RegionOfInterest
from scenes.submissions.av2_e2e_forecasting import Sequences, SubmissionError, ground_truth_from_frames

if TYPE_CHECKING:
    from forecasting.forecaster import GridForecaster

__all__ = [
    "SYNTH_DETECTION",
    "SynthDetectionLogs",
    "FORECASTERS",
    "e2e_ground_truth",
    "nuscenes_detections",
    "nuscenes_eval_set",
    "write_figures_json",
    "run_evaluate_detection",
    "run_evaluate_e2e_forecasting",
    "run_evaluate_forecasting",
]

FORECASTERS: Final = ("shipped", "constant-velocity")
# Modes of the constant-velocity baseline: AV2 motion forecasting scores K = 6; nuScenes' headline MinADE_5.
CONSTANT_VELOCITY_MODES: Final = {"AV2 motion forecasting": 6, "the nuScenes prediction challenge": 5}
# nuScenes prediction challenge: 6 s at 2 Hz.
NUSCENES_STEPS: Final = 12
NUSCENES_STEP_S: Final = 0.5
NUSCENES_K: Final = (1, 5, 10)
# The devkit's true-positive errors by their names in the nuScenes papers.
NUSCENES_TP_ERRORS: Final = {"trans_err": "mATE", "scale_err": "mASE", "orient_err": "mAOE", "vel_err": "mAVE", "attr_err": "mAAE"}
# Predefined devkit splits and the version suffix the devkit requires for each.
NUSCENES_SPLIT_VERSIONS: Final = {
    "train": "trainval",
    "val": "trainval",
    "train_detect": "trainval",
    "train_track": "trainval",
    "mini_train": "mini",
    "mini_val": "mini",
    "test": "test",
}


@dataclass(frozen=True)
class SynthDetectionLogs:
    """The held-out simulated logs `evaluate detection --data synth` scores (the detector trains on seed 0)."""

    logs: int = 2
    seconds: float = 4.0
    seed: int = 1000
    lidar_beams: int = 32


SYNTH_DETECTION: Final = SynthDetectionLogs()


def _json_value(value: Any) -> Any:
    """`value` with NaN floats as None (JSON has no NaN) and numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def write_figures_json(path: Path, payload: Mapping[str, Any], console: Console) -> None:
    atomic_write_text(path, json.dumps(_json_value(dict(payload)), indent=2) + "\n")
    console.print(f"wrote {path}", soft_wrap=True)


def _check_outputs(json_path: Path | None, out: Path | None = None) -> None:
    if json_path is not None:
        check_output_path(json_path, directory=False, option="--json")
    if out is not None:
        check_output_path(out, directory=False, option="--out")


def _table(title: str) -> Table:
    """A table at least as wide as its title (which names the scored file or model), so that it stays on one line."""
    return Table(title=title, min_width=len(title))


def _fmt(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


# --- e2e-forecasting ------------------------------------------------------------------------------------------------


def e2e_ground_truth(cfg: E2EForecastConfig, dataset: Dataset) -> tuple[Sequences, dict[str, RegionOfInterest] | None]:
    """The 2 Hz ground truth and regions of interest of every annotated log, as `run_e2e` builds them."""
    ground_truth: Sequences = {}
    rois: dict[str, RegionOfInterest] = {}
    for log_id in dataset.logs():
        annotated = sorted(
            (replace(frame, lidar=None, cameras={}) for frame in dataset.frames(log_id) if frame.annotations is not None),
            key=lambda frame: frame.timestamp_ns,
        )
        if not annotated:
            continue
        ground_truth.update(ground_truth_from_frames(annotated))
        roi = dataset.region_of_interest(log_id) if cfg.roi_filter else None
        if roi is not None:
            rois[log_id] = roi
    use_rois = cfg.roi_filter and ground_truth and all(log_id in rois for log_id in ground_truth)
    return ground_truth, rois if use_rois else None


def run_evaluate_e2e_forecasting(
    data: str,
    *,
    split: str | None,
    skip_bad: bool,
    predictions: Path | None,
    config: Path | None,
    json_path: Path | None,
    console: Console,
) -> E2EForecastingScores:
    """Scores the submission pickle `predictions` (or, without it, the stack of `config` run on `data`) on `data`."""
    from scenes.submissions.av2_e2e_forecasting import read_submission

    _check_outputs(json_path)
    cfg = load_e2e_config(config)
    if predictions is not None:
        submission = read_submission(predictions)
        ground_truth, rois = e2e_ground_truth(cfg, open_e2e_dataset(data, split, cfg, skip_bad=skip_bad))
        if not ground_truth:
            raise InputError(f"{data}: no annotations to build ground truth from")
        try:
            scores = evaluate_submission(submission, ground_truth, rois=rois, top_k=cfg.top_k, max_range_m=cfg.max_range_m)
        except SubmissionError as error:  # e.g. keys of the ground truth that the submission lacks
            raise SubmissionError(f"{predictions}: {error}") from None
        title = f"AV2 end-to-end forecasting of {predictions} on {data}"
    else:
        result = run_e2e(cfg, open_e2e_dataset(data, split, cfg, skip_bad=skip_bad))
        if not result.ground_truth:
            raise InputError(f"{data}: no annotations to build ground truth from")
        scores = result.evaluate(cfg)
        title = f"AV2 end-to-end forecasting of the stack ({config or 'default config'}) on {data}"
    scores.print(console, title)
    if json_path is not None:
        scores.save_json(json_path)
        console.print(f"wrote {json_path}", soft_wrap=True)
    return scores


# --- detection ------------------------------------------------------------------------------------------------------


def _lidar_frames(dataset: Dataset, log_id: str) -> Iterator[Frame]:
    """The frames of a log that have a LiDAR sweep, in time order."""
    return (frame for frame in dataset.frames(log_id) if frame.lidar is not None)


def _detect_log(detector: Any, frames: Iterator[Frame], progress: Progress, task: Any) -> Iterator[tuple[Frame, Boxes3D]]:
    """(frame without its sweep, ego-frame detections) of every annotated frame, each detected with its preceding sweeps."""
    past: deque[Frame] = deque(maxlen=detector.past_sweeps)
    for frame in frames:
        if frame.annotations is not None:
            yield replace(frame, lidar=None, cameras={}), detector.run(frame, tuple(past))
            progress.advance(task)
        past.append(frame)


def _detection_categories(gts: pd.DataFrame, data: str) -> list[str]:
    present = set(gts.loc[gts["num_interior_pts"] > 0, "category"])
    categories = [name for name in CATEGORIES if name in present]
    if not categories:
        raise InputError(f"{data}: no annotated box with LiDAR points to score detections against")
    return categories


def _av2_detection_table(metrics: Any, title: str) -> Table:
    table = _table(title)
    for column in ("category", "AP", "ATE (m)", "ASE", "AOE (rad)", "CDS"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for category, row in metrics.per_category.iterrows():
        table.add_row(str(category), *(_fmt(float(row[m])) for m in ("AP", "ATE", "ASE", "AOE", "CDS")))
    table.add_section()
    means = metrics.per_category.mean()
    table.add_row("mean", *(_fmt(float(means[m])) for m in ("AP", "ATE", "ASE", "AOE", "CDS")), style="bold")
    return table


def _evaluate_av2_detection(
    data: str,
    dataset: Dataset,
    *,
    predictions: Path | None,
    checkpoint: Path | None,
    out: Path | None,
    json_path: Path | None,
    console: Console,
) -> dict[str, Any]:
    from perception.detection.evaluate import evaluate_av2_detection
    from scenes.submissions.av2_detection import detections_table, ground_truth_table, read_detections, write_table

    frames: list[Frame] = []
    if predictions is not None:
        dts = read_detections(predictions)
        for log_id in dataset.logs():
            frames.extend(replace(frame, lidar=None, cameras={}) for frame in _lidar_frames(dataset, log_id) if frame.annotations is not None)
        source = str(predictions)
    else:
        from perception.detection.detector import SHIPPED_CHECKPOINT, Detector

        path = checkpoint or SHIPPED_CHECKPOINT
        detector = Detector.from_checkpoint(path)
        detected: list[tuple[str, int, Boxes3D]] = []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("detecting", total=None)
            for log_id in dataset.logs():
                for frame, boxes in _detect_log(detector, _lidar_frames(dataset, log_id), progress, task):
                    frames.append(frame)
                    detected.append((frame.log_id, frame.timestamp_ns, boxes))
        dts = detections_table(detected)
        source = str(path)
    if not frames:
        raise InputError(f"{data}: no annotated frame with a LiDAR sweep to score detections on")
    gts = ground_truth_table(frames)
    if predictions is not None:
        known = {(frame.log_id, frame.timestamp_ns) for frame in frames}
        stray = sorted({key for key in zip(dts["log_id"], dts["timestamp_ns"].astype(np.int64), strict=True) if key not in known})
        if stray:
            raise InputError(
                f"{predictions}: columns 'log_id', 'timestamp_ns': {len(stray)} (log, timestamp) pair(s) are not annotated LiDAR sweeps of {data}, "
                f"e.g. {[(log, int(ts)) for log, ts in stray[:3]]}"
            )
    elif out is not None:
        write_table(out, dts)
        console.print(f"wrote {out} ({len(dts)} detections)", soft_wrap=True)
    categories = _detection_categories(gts, data)
    metrics = evaluate_av2_detection(dts, gts, categories)
    title = f"AV2 detection of {source} on {data}: {len(frames)} frame(s), {len(dts)} detection(s), {len(gts)} annotated box(es)"
    console.print(_av2_detection_table(metrics, title))
    result = {
        "data": data,
        "source": source,
        "frames": len(frames),
        "categories": categories,
        "mAP": metrics.mean_ap,
        "mCDS": metrics.mean_cds,
        "per_category": {str(category): {metric: float(value) for metric, value in row.items()} for category, row in metrics.per_category.iterrows()},
    }
    if json_path is not None:
        write_figures_json(json_path, result, console)
    return result


def nuscenes_eval_set(dataset: Any, eval_set: str | None) -> tuple[str, list[str]]:
    """The eval set (`eval_set`, else the one split that holds every scene of the database) and its scenes there.

    Splits are the devkit's hard-coded ones that fit the version's suffix and those of `<version>/splits.json`.
    """
    from nuscenes.utils.splits import create_splits_scenes

    version = str(dataset.version)
    splits = {name: list(scenes) for name, scenes in create_splits_scenes().items() if version.endswith(NUSCENES_SPLIT_VERSIONS[name])}
    custom = dataset.table_dir / "splits.json"
    if custom.is_file():
        try:
            listed = json.loads(custom.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InputError(f"{custom}: not valid JSON ({error})") from None
        if not isinstance(listed, dict) or not all(isinstance(scenes, list) for scenes in listed.values()):
            raise InputError(f"{custom}: expected an object split name -> [scene names]")
        splits.update({str(name): [str(scene) for scene in scenes] for name, scenes in listed.items()})
    scenes = list(dataset.logs())
    if eval_set is None:
        holding = sorted(name for name, members in splits.items() if set(scenes) <= set(members))
        if len(holding) != 1:
            what = "no split holds" if not holding else f"several splits hold ({', '.join(holding)})"
            raise InputError(
                f"{dataset.table_dir}: {what} every one of its {len(scenes)} scene(s): name the eval set with --eval-set (splits: {sorted(splits)})"
            )
        eval_set = holding[0]
    if eval_set not in splits:
        raise InputError(f"--eval-set {eval_set}: not a split of nuScenes {version} (splits: {sorted(splits)})")
    members = set(splits[eval_set])
    chosen = [scene for scene in scenes if scene in members]
    if not chosen:
        raise InputError(f"--eval-set {eval_set}: none of its scenes is in {dataset.table_dir}")
    return eval_set, chosen


def nuscenes_detections(dataset: Any, scenes: Sequence[str], checkpoint: Path | None, console: Console) -> tuple[dict[str, Boxes3D], str]:
    """City-frame detections of the shipped detector (or `checkpoint`) at every key frame of `scenes`."""
    from perception.detection.detector import SHIPPED_CHECKPOINT, Detector

    path = checkpoint or SHIPPED_CHECKPOINT
    detector = Detector.from_checkpoint(path)
    results: dict[str, Boxes3D] = {sample["token"]: Boxes3D.empty("city") for scene in scenes for sample in dataset.samples(scene)}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("detecting", total=len(results))
        for scene in scenes:
            sample_at = {
                timestamp_ns: record["sample_token"]
                for record, timestamp_ns in zip(dataset.lidar_records(scene), dataset.timestamps_ns(scene), strict=True)
                if record["is_key_frame"]
            }
            frames = list(dataset.frames(scene))
            if any(frame.lidar is None for frame in frames):
                raise InputError(f"{dataset.root}: scene {scene} has no LIDAR_TOP point clouds to run the detector on")
            for frame, boxes in _detect_log(detector, iter(frames), progress, task):
                results[sample_at[frame.timestamp_ns]] = boxes.transformed(frame.city_SE3_ego, "city")
    return results, str(path)


def _nuscenes_detection_table(metrics: Any, title: str) -> Table:
    table = _table(title)
    table.add_column("class")
    table.add_column("AP", justify="right")
    for name, ap in metrics.label_aps.items():
        table.add_row(name, _fmt(ap))
    table.add_section()
    table.add_row("mAP", _fmt(metrics.mean_ap), style="bold")
    table.add_row("NDS", _fmt(metrics.nd_score), style="bold")
    for name, error in metrics.tp_errors.items():
        table.add_row(NUSCENES_TP_ERRORS.get(name, name), _fmt(float(error)))
    return table


def _evaluate_nuscenes_detection(
    data: str,
    dataset: Any,
    *,
    predictions: Path | None,
    checkpoint: Path | None,
    eval_set: str | None,
    out: Path | None,
    json_path: Path | None,
    console: Console,
) -> dict[str, Any]:
    from perception.detection.evaluate import evaluate_nuscenes_detection
    from scenes.submissions.nuscenes_detection import detection_submission, read_submission, write_submission

    keys = set(read_submission(predictions)["results"]) if predictions is not None else set()
    eval_set, scenes = nuscenes_eval_set(dataset, eval_set)
    tokens = {sample["token"] for scene in scenes for sample in dataset.samples(scene)}
    with tempfile.TemporaryDirectory(prefix="drivestack-nuscenes-eval-") as workdir:
        if predictions is not None:
            missing, extra = sorted(tokens - keys), sorted(keys - tokens)
            if missing or extra:
                what = (
                    f"{len(missing)} sample(s) of the eval set lack a key, e.g. {missing[:3]}"
                    if missing
                    else f"{len(extra)} key(s) are not samples of the eval set, e.g. {extra[:3]}"
                )
                raise InputError(f"{predictions}: results: {what} (eval set {eval_set}: {len(tokens)} sample(s) of {len(scenes)} scene(s))")
            path, source = predictions, str(predictions)
        else:
            results, source = nuscenes_detections(dataset, scenes, checkpoint, console)
            path = write_submission(out if out is not None else Path(workdir) / "detections.json", detection_submission(results))
            if out is not None:
                console.print(f"wrote {out} ({len(results)} sample(s))", soft_wrap=True)
        with contextlib.redirect_stderr(io.StringIO()):  # the devkit's progress bars; errors still raise
            metrics = evaluate_nuscenes_detection(path, dataset.root, dataset.version, eval_set, Path(workdir) / "eval")
    title = f"nuScenes detection of {source} on {data} ({dataset.version}, eval set {eval_set}: {len(tokens)} sample(s))"
    console.print(_nuscenes_detection_table(metrics, title))
    result = {
        "data": data,
        "source": source,
        "version": dataset.version,
        "eval_set": eval_set,
        "samples": len(tokens),
        "mAP": metrics.mean_ap,
        "NDS": metrics.nd_score,
        "label_aps": metrics.label_aps,
        "tp_errors": metrics.tp_errors,
    }
    if json_path is not None:
        write_figures_json(json_path, result, console)
    return result


def run_evaluate_detection(
    data: str,
    dataset_options: dict[str, Any],
    *,
    predictions: Path | None,
    checkpoint: Path | None,
    eval_set: str | None,
    out: Path | None,
    json_path: Path | None,
    console: Console,
    synth: SynthDetectionLogs = SYNTH_DETECTION,
) -> dict[str, Any]:
    """Scores the detections of `predictions` (or, without it, of the detector of `checkpoint`, default the shipped
    one) on `data`: `av2:PATH`, `nuscenes:PATH` or `synth` (the held-out logs of `synth`)."""
    name, _ = parse_spec(data)
    if name not in ("av2", "nuscenes", "synth"):
        raise InputError(f"--data {data}: detection is scored on AV2 sensor logs (av2:PATH), nuScenes (nuscenes:PATH) or 'synth'")
    if predictions is not None and checkpoint is not None:
        raise InputError(f"--checkpoint {checkpoint}: runs a detector, --predictions {predictions} scores a file: give one of them")
    if predictions is not None and out is not None:
        raise InputError(f"--out {out}: writes the detector's predictions; with --predictions there are none to write")
    if eval_set is not None and name != "nuscenes":
        raise InputError(f"--eval-set {eval_set}: only nuscenes:PATH data has eval sets, got --data {data}")
    _check_outputs(json_path, out)
    if name == "nuscenes":
        options = dict(dataset_options) if predictions is not None else {**dataset_options, "sweeps": True}
        dataset = open_dataset(data, **options)
        return _evaluate_nuscenes_detection(
            data, dataset, predictions=predictions, checkpoint=checkpoint, eval_set=eval_set, out=out, json_path=json_path, console=console
        )
    if name == "synth":
        dataset = open_dataset("synth", **dataset_options, logs=synth.logs, seed=synth.seed, seconds=synth.seconds, lidar_beams=synth.lidar_beams, cameras=())
    else:
        dataset = open_dataset(data, **dataset_options)
    return _evaluate_av2_detection(data, dataset, predictions=predictions, checkpoint=checkpoint, out=out, json_path=json_path, console=console)


# --- forecasting ----------------------------------------------------------------------------------------------------


def _forecaster(name: str, checkpoint: Path | None, steps: int, step_s: float, benchmark: str) -> tuple[GridForecaster, int, str]:
    """The forecaster, the stride that takes the benchmark's steps from its steps, and what it is (for titles)."""
    if name == "constant-velocity":
        from forecasting.baselines import ConstantVelocityForecaster

        if checkpoint is not None:
            raise InputError(f"--checkpoint {checkpoint}: the constant-velocity forecaster has no checkpoint")
        return ConstantVelocityForecaster(horizon_steps=steps, step_s=step_s, num_modes=CONSTANT_VELOCITY_MODES[benchmark]), 1, "constant velocity"
    from forecasting.forecaster import SHIPPED_MOTION_CHECKPOINT, Forecaster

    path = checkpoint or SHIPPED_MOTION_CHECKPOINT
    model = Forecaster.from_checkpoint(path)
    features = model.features
    ratio = step_s / features.step_s
    stride = int(round(ratio))
    if stride < 1 or not math.isclose(ratio, stride, rel_tol=1e-6) or features.horizon_steps < stride * steps:
        raise InputError(
            f"{path}: the forecaster predicts {features.horizon_steps} steps of {features.step_s:g} s ({features.horizon_steps * features.step_s:g} s ahead); "
            f"{benchmark} scores {steps} steps of {step_s:g} s ({steps * step_s:g} s ahead)"
        )
    return model, stride, str(path)


def _observed(scenario: Scenario, velocity_step_s: float | None) -> Scenario:
    """`scenario` without its future (states after `current_index` unobserved); with `velocity_step_s`, velocities
    re-derived from the observed positions (nuScenes velocities are differences that reach into the future)."""
    from scenes.adapters.nuscenes import finite_difference_velocity

    valid = scenario.valid.copy()
    valid[:, scenario.current_index + 1 :] = False
    xy = np.where(valid[..., None], scenario.xy_m, np.nan)
    velocity = finite_difference_velocity(xy, valid, velocity_step_s) if velocity_step_s is not None else scenario.velocity_m_per_s
    return replace(
        scenario,
        xy_m=xy,
        heading_rad=np.where(valid, scenario.heading_rad, np.nan),
        velocity_m_per_s=np.where(valid[..., None], velocity, np.nan),
        valid=valid,
    )


def _forecast_tracks(
    model: GridForecaster,
    stride: int,
    steps: int,
    modes: int,
    scenario: Scenario,
    track_ids: Sequence[str],
    velocity_step_s: float | None,
    source: object,
) -> tuple[np.ndarray, np.ndarray]:
    """The `modes` most probable city-frame trajectories `(M, modes, steps, 2)` and scores of `track_ids`, forecast
    from the observed part of `scenario` (read from `source`, named in errors)."""
    from forecasting.dataset import encode_scenario, resample_scenario

    grid = resample_scenario(_observed(scenario, velocity_step_s), model.features)
    row_of = {agent: row for row, agent in enumerate(grid.agent_ids.tolist())}
    absent = [track for track in track_ids if track not in row_of]
    if absent:
        raise InputError(f"{source}: track(s) {absent[:3]} are scored but have no category or no state at the last observed step")
    batch = encode_scenario(grid, model.lane_segments(scenario.lane_graph), model.features, [row_of[track] for track in track_ids])
    trajectories, scores = model.predict(batch)
    trajectories = trajectories[:, :, stride - 1 : stride * steps : stride]
    order = np.argsort(-scores, axis=1, kind="stable")[:, :modes]
    return np.take_along_axis(trajectories, order[:, :, None, None], axis=1), np.take_along_axis(scores, order, axis=1)


def _av2_mf_dataset(data: str, dataset_options: Mapping[str, Any]) -> Any:
    """`av2-mf:PATH` (its split folder PATH/<split> with `split`)."""
    options = dict(dataset_options)
    split = options.pop("split", None)
    if split is None:
        return open_dataset(data, **options)
    _, root = parse_spec(data)
    assert root is not None  # av2-mf:PATH always has a path
    return open_dataset(f"av2-mf:{root / split}", **options)


def _evaluate_av2_motion_forecasting(
    data: str, dataset: Any, *, predictions: Path | None, forecaster: str, checkpoint: Path | None, json_path: Path | None, console: Console
) -> dict[str, Any]:
    from av2.datasets.motion_forecasting.eval.submission import ChallengeSubmission

    from scenes.submissions.av2_motion_forecasting import (
        K_VALUES,
        NUM_STEPS,
        STEP_S,
        ScenarioTruth,
        read_submission,
        scenario_truth,
        score_submission,
        worlds_from_modes,
    )

    model: GridForecaster | None = None
    if predictions is not None:
        submission = read_submission(predictions)
        source_name = str(predictions)
    else:
        model, stride, source_name = _forecaster(forecaster, checkpoint, NUM_STEPS, STEP_S, "AV2 motion forecasting")
    truths: list[ScenarioTruth] = []
    forecasts: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {}
    with Progress(console=console, transient=True) as progress:
        for scenario_id in progress.track(dataset.logs(), description="scenarios"):
            source = dataset.scenario_dir(scenario_id) / f"scenario_{scenario_id}.parquet"
            try:
                truth = scenario_truth(dataset.load(scenario_id), source)
            except AdapterError as error:
                skip_or_raise(error, dataset.skip_bad, f"scenario {scenario_id}")
                continue
            truths.append(truth)
            if model is not None:
                trajectories, mode_scores = _forecast_tracks(
                    model, stride, NUM_STEPS, max(K_VALUES), dataset.scenario(scenario_id), truth.track_ids, None, source
                )
                probabilities, worlds = worlds_from_modes(trajectories, mode_scores)
                forecasts[scenario_id] = (probabilities, dict(zip(truth.track_ids, worlds, strict=True)))
    if model is not None:
        submission = ChallengeSubmission(forecasts)
    scores = score_submission(submission, truths, source_name)
    console.print(scores.table(f"AV2 motion forecasting of {source_name} on {data}"))
    result = {"data": data, "source": source_name, **scores.as_dict()}
    if json_path is not None:
        write_figures_json(json_path, result, console)
    return result


def _check_nuscenes_records(predictions: Path, records: Sequence[Mapping[str, Any]], dataset: Any) -> None:
    """Every record forecasts an agent annotated at its sample whose full 6 s future is in the database."""
    if not records:
        raise InputError(f"{predictions}: no prediction to score")
    helper = dataset.helper
    for index, record in enumerate(records):
        where = f"{predictions}: prediction {index} (instance {record['instance']}, sample {record['sample']})"
        try:
            helper.get_sample_annotation(record["instance"], record["sample"])
        except KeyError:
            raise InputError(f"{where}: the agent is not annotated at that sample in {dataset.table_dir}") from None
        future = helper.get_future_for_agent(record["instance"], record["sample"], NUSCENES_STEPS * NUSCENES_STEP_S, in_agent_frame=False)
        if len(future) < NUSCENES_STEPS:
            raise InputError(f"{where}: {len(future)} future annotations in {dataset.table_dir}, the evaluation needs {NUSCENES_STEPS}")


def _nuscenes_records(dataset: Any, model: GridForecaster, stride: int, console: Console) -> list[dict[str, Any]]:
    """Prediction records of every agent with a full 6 s future at every key frame."""
    from scenes.submissions.nuscenes_prediction import prediction_records

    records: list[dict[str, Any]] = []
    with Progress(console=console, transient=True) as progress:
        for scenario in progress.track(dataset.scenarios(), description="key frames"):
            current = scenario.current_index
            rows = np.flatnonzero(scenario.valid[:, current : current + 1 + NUSCENES_STEPS].all(axis=1))
            if not len(rows):
                continue
            track_ids = scenario.agent_ids[rows].tolist()
            trajectories, scores = _forecast_tracks(
                model, stride, NUSCENES_STEPS, max(NUSCENES_K), scenario, track_ids, NUSCENES_STEP_S, dataset.table_dir / "sample_annotation.json"
            )
            forecasts = Forecasts(
                scenario.scenario_id,
                int(scenario.timestamps_ns[current]),
                scenario.agent_ids[rows],
                scenario.xy_m[rows, current].astype(np.float64),
                trajectories,
                scores,
                np.ones(len(rows)),
                scenario.category[rows],
            )
            records.extend(prediction_records(forecasts, scenario.scenario_id))
    if not records:
        raise InputError(f"{dataset.root}: no agent with a full {NUSCENES_STEPS * NUSCENES_STEP_S:g} s future to forecast")
    return records


def _drivable_areas(dataset: Any) -> dict[str, Any] | None:
    """The drivable area of every location of the database from its map expansion, None unless all have one."""
    from forecasting.metrics import DrivableArea

    areas: dict[str, Any] = {}
    for scene in dataset.logs():
        location = dataset.nusc.get("log", dataset.scene(scene)["log_token"])["location"]
        lane_graph = dataset.lane_graph(scene)
        if lane_graph is None or not (lane_graph.drivable_areas_m or "drivable_area" in lane_graph.rasters):
            return None
        areas[location] = DrivableArea.from_lane_graph(lane_graph)
    return areas


def _evaluate_nuscenes_prediction(
    data: str, dataset: Any, *, predictions: Path | None, forecaster: str, checkpoint: Path | None, json_path: Path | None, console: Console
) -> dict[str, Any]:
    from forecasting.evaluate import evaluate_predictions
    from scenes.submissions.nuscenes_prediction import read_predictions

    if predictions is not None:
        records = read_predictions(predictions)
        _check_nuscenes_records(predictions, records, dataset)
        source = str(predictions)
    else:
        model, stride, source = _forecaster(forecaster, checkpoint, NUSCENES_STEPS, NUSCENES_STEP_S, "the nuScenes prediction challenge")
        records = _nuscenes_records(dataset, model, stride, console)
    metrics = evaluate_predictions(records, dataset.root, dataset.version, drivable_areas=_drivable_areas(dataset))
    table = _table(f"nuScenes prediction of {source} on {data} ({dataset.version}): {len(records)} agent forecast(s)")
    table.add_column("metric")
    for k in NUSCENES_K:
        table.add_column(f"k={k}", justify="right")
    for name, aggregations in metrics.items():
        values = aggregations["RowMean"]
        if len(values) == len(NUSCENES_K):
            table.add_row(name, *(_fmt(float(value)) for value in values))
        else:
            table.add_row(name, _fmt(float(values[0])), "", "")
    console.print(table)
    result = {"data": data, "source": source, "version": dataset.version, "predictions": len(records), "metrics": metrics}
    if json_path is not None:
        write_figures_json(json_path, result, console)
    return result


def run_evaluate_forecasting(
    data: str,
    dataset_options: dict[str, Any],
    *,
    predictions: Path | None,
    forecaster: str | None,
    checkpoint: Path | None,
    json_path: Path | None,
    console: Console,
) -> dict[str, Any]:
    """Scores the forecasts of `predictions` (or, without it, of `forecaster`: the shipped CAB forecaster, another
    checkpoint, or constant velocity) on `data`: `av2-mf:PATH` or `nuscenes:PATH`."""
    name, _ = parse_spec(data)
    if name not in ("av2-mf", "nuscenes"):
        raise InputError(f"--data {data}: forecasting is scored on AV2 motion-forecasting scenarios (av2-mf:PATH) or nuScenes (nuscenes:PATH)")
    if predictions is not None and (forecaster is not None or checkpoint is not None):
        given = f"--forecaster {forecaster}" if forecaster is not None else f"--checkpoint {checkpoint}"
        raise InputError(f"{given}: runs a forecaster, --predictions {predictions} scores a file: give one of them")
    _check_outputs(json_path)
    if forecaster is not None and forecaster not in FORECASTERS:
        raise InputError(f"--forecaster {forecaster}: expected one of {', '.join(FORECASTERS)}")
    chosen = forecaster or "shipped"
    if name == "av2-mf":
        return _evaluate_av2_motion_forecasting(
            data,
            _av2_mf_dataset(data, dataset_options),
            predictions=predictions,
            forecaster=chosen,
            checkpoint=checkpoint,
            json_path=json_path,
            console=console,
        )
    return _evaluate_nuscenes_prediction(
        data, open_dataset(data, **dataset_options), predictions=predictions, forecaster=chosen, checkpoint=checkpoint, json_path=json_path, console=console
    )
