"""`drivestack track` (external detections into the tracker) and `drivestack evaluate tracking`.

Detections made elsewhere are read in their dataset's format: AV2 detection feathers (`av2:PATH` logs; ego frame, as
the Valeo4Cast authors publish theirs) and, for the KITTI tracking benchmark (`kitti-tracking:PATH`), one file per
sequence, AB3DMOT's PointRCNN files or KITTI tracking-format lines. Detections go to the city frame when the log has
poses and are tracked there; a KITTI sequence without OXTS poses is tracked in its Velodyne frame. Tracks are
written in the dataset's submission format: the AV2 tracking pickle (`OUT/tracks.pkl`) or KITTI tracking results
(`OUT/SEQ.txt`, the label format plus score, 2D boxes projected through the calibration).

`evaluate tracking` scores a submission made elsewhere (`--predictions`), the tracker on external detections
(`--detections`), or the shipped detector and tracker run on `--data`: KITTI with TrackEval's HOTA / CLEAR / Identity
and AB3DMOT's sAMOTA, AV2 and the synthetic city with av2's HOTA / MOTA, nuScenes with the devkit's AMOTA.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from perception.tracking.config import TrackerConfig
from perception.tracking.tracker import EXTERNAL_DETECTIONS_CHECKPOINT, SHIPPED_CHECKPOINT, Tracker, load_tracker_config
from scenes.errors import InputError, check_output_path
from scenes.geometry import SE3
from scenes.records import Boxes3D, Tracks

__all__ = ["run_track", "run_evaluate_tracking", "track_kitti", "track_av2_table"]

# AV2 categories scored when the ground truth has them (the tracking challenge's most frequent movers).
AV2_TRACKING_CLASSES = ("REGULAR_VEHICLE", "PEDESTRIAN", "BICYCLIST", "BUS", "LARGE_VEHICLE", "TRUCK", "BOX_TRUCK", "MOTORCYCLIST")
AV2_RANGE_M = 50
HELD_OUT_SEED = 1000


def _tracker_config(config: Path | None, default: Path) -> TrackerConfig:
    return load_tracker_config(config if config is not None else default)


def _track_log(tracker_cfg: TrackerConfig, log_id: str, stamps: Sequence[int], detections_ego: Sequence[Boxes3D], poses: Sequence[SE3] | None) -> list[Boxes3D]:
    """Tracks of one log, returned per frame in the ego frame: in the city frame with poses, else in the ego frame."""
    inputs = detections_ego if poses is None else [boxes.transformed(pose, "city") for boxes, pose in zip(detections_ego, poses, strict=True)]
    tracks = Tracker(tracker_cfg).run(log_id, list(inputs), np.asarray(stamps, dtype=np.int64))
    if poses is None:
        return list(tracks.boxes)
    return [boxes.transformed(pose.inverse(), "ego") for boxes, pose in zip(tracks.boxes, poses, strict=True)]


def track_kitti(dataset: Any, detections: Path, out: Path, tracker_cfg: TrackerConfig) -> list[Path]:
    """KITTI tracking: `detections/SEQ.txt` per sequence of `dataset` -> `out/SEQ.txt` tracking results."""
    from pipelines.external_detections import kitti_detections

    return _write_kitti_tracks(dataset, kitti_detections(dataset, detections), out, tracker_cfg)


def _write_kitti_tracks(dataset: Any, by_sequence: Mapping[str, Mapping[int, Boxes3D]], out: Path, tracker_cfg: TrackerConfig) -> list[Path]:
    """Tracks of each sequence's Velodyne-frame detections (by frame index) -> `out/SEQ.txt` tracking results."""
    from scenes.submissions.kitti_tracking import write_tracking_results

    written = []
    for sequence, frames in by_sequence.items():
        boxes = [frames.get(index, Boxes3D.empty()) for index in range(dataset.num_frames(sequence))]
        poses = dataset.poses(sequence) if dataset.has_poses(sequence) else None
        tracked = _track_log(tracker_cfg, sequence, dataset.timestamps_ns(sequence), boxes, poses)
        path = out / f"{sequence}.txt"
        written.append(write_tracking_results(path, list(enumerate(tracked)), dataset.calibration(sequence), dataset.image_size_px(sequence)))
    return written


def track_av2_table(dataset: Any, detections: Path, tracker_cfg: TrackerConfig) -> list[Tracks]:
    """AV2: a detection feather over the dataset's logs -> city-frame tracks per log (every pose timestamp of the log
    that the table or the annotations name; a timestamp without detections is an empty frame)."""
    from pipelines.external_detections import av2_detections

    by_frame = av2_detections(dataset, detections)
    logs = []
    for log_id in dataset.logs():
        poses = dataset.poses(log_id)
        stamps = sorted(set(dataset.timestamps_ns(log_id)) | {ts for lid, ts in by_frame if lid == log_id})
        missing = [ts for ts in stamps if ts not in poses]
        if missing:
            raise InputError(f"{detections}: log {log_id} timestamp {missing[0]} has no ego pose in the log")
        boxes = [by_frame.get((log_id, ts), Boxes3D.empty()) for ts in stamps]
        tracked = _track_log(tracker_cfg, log_id, stamps, boxes, None if not stamps else [poses[ts] for ts in stamps])
        city = [b.transformed(poses[ts], "city") for b, ts in zip(tracked, stamps, strict=True)]
        logs.append(Tracks(log_id, np.array(stamps, dtype=np.int64), tuple(city)))
    return logs


def run_track(data: str, detections: Path, out: Path, *, config: Path | None = None, options: Mapping[str, Any], console: Console) -> list[Path]:
    """`drivestack track`: external detections of `data` tracked and written under `out` in the dataset's format."""
    from scenes.adapters.registry import open_dataset, parse_spec

    name, _ = parse_spec(data)
    if name not in ("kitti-tracking", "av2"):
        raise InputError(f"--data {data}: track reads external detections of kitti-tracking:PATH or av2:PATH logs")
    if not detections.exists():
        raise FileNotFoundError(2, "No such file or directory", str(detections))
    check_output_path(out, directory=True)
    tracker_cfg = _tracker_config(config, EXTERNAL_DETECTIONS_CHECKPOINT)
    dataset = open_dataset(data, **options)
    if name == "kitti-tracking":
        written = track_kitti(dataset, detections, out, tracker_cfg)
    else:
        from scenes.submissions.av2_tracking import predictions_from_tracks, write_sequences

        written = [write_sequences(out / "tracks.pkl", predictions_from_tracks(track_av2_table(dataset, detections, tracker_cfg)))]
    console.print(f"wrote {len(written)} file(s) under {out}", soft_wrap=True)
    return written


def _print_and_save(table: Table, figures: Mapping[str, Any], json_path: Path | None, console: Console) -> None:
    from pipelines.evaluate_job import write_figures_json

    Console(width=max(Console().width, 120)).print(table)  # whole figures, also when piped (80 columns)
    if json_path is not None:
        write_figures_json(json_path, figures, console)


def _av2_table(figures: Mapping[str, float], title: str) -> Table:
    table = Table(title=title)
    for column in ("class", "HOTA", "MOTA"):
        table.add_column(column, justify="right" if column != "class" else "left")
    classes = sorted({key.split("/")[0] for key in figures if "/" in key})
    for name in [*classes, "mean"]:
        prefix = "" if name == "mean" else f"{name}/"
        table.add_row(name, f"{figures[prefix + 'HOTA']:.3f}", f"{figures[prefix + 'MOTA']:.3f}")
    return table


def _evaluate_kitti(dataset: Any, results_dir: Path) -> tuple[Table, dict[str, Any]]:
    from perception.tracking.kitti_eval import evaluate_kitti_tracking

    sequences = dataset.logs()
    labels = {sequence: dataset.label_path(sequence) for sequence in sequences}
    missing = [str(path) for path in labels.values() if not path.is_file()]
    if missing:
        raise InputError(f"{missing[0]}: KITTI tracking labels not found: scoring needs the training split")
    gt_dir = labels[sequences[0]].parent.parent
    metrics = evaluate_kitti_tracking(gt_dir, results_dir, {sequence: dataset.num_frames(sequence) for sequence in sequences})
    return metrics.table(), metrics.as_dict()


def _shipped_detections(dataset: Any) -> dict[str, list[tuple[int, SE3, Boxes3D]]]:
    """The shipped LiDAR detector on every frame with a sweep: (timestamp, pose, ego-frame boxes) per log."""
    from pipelines.e2e_forecast import E2EForecastConfig
    from pipelines.tracking_finetune import run_detector

    outputs = run_detector(E2EForecastConfig(), dataset)
    return {log_id: [(e.frame.timestamp_ns, e.frame.city_SE3_ego, e.detections) for e in entries] for log_id, entries in outputs.items()}


def run_evaluate_tracking(
    data: str,
    *,
    predictions: Path | None,
    detections: Path | None,
    config: Path | None,
    options: Mapping[str, Any],
    json_path: Path | None,
    console: Console,
    eval_set: str | None = None,
) -> dict[str, Any]:
    """`drivestack evaluate tracking` (see the module docstring); returns the figures it prints."""
    from scenes.adapters.registry import open_dataset, parse_spec

    name, root = parse_spec(data)
    if predictions is not None and detections is not None:
        raise InputError(f"--detections {detections}: give --predictions (tracks to score) or --detections (to track), not both")
    for path in (predictions, detections):
        if path is not None and not path.exists():
            raise FileNotFoundError(2, "No such file or directory", str(path))
    if json_path is not None:
        check_output_path(json_path, directory=False, option="--json")
    if name == "synth":
        dataset = open_dataset("synth", logs=2, seed=HELD_OUT_SEED, seconds=10.0, lidar_beams=32, cameras=())
    else:
        dataset = open_dataset(data, **options)
    if name == "kitti-tracking":
        with tempfile.TemporaryDirectory(prefix="drivestack-kitti-tracking-") as scratch:
            results = predictions
            if results is None:
                results = Path(scratch) / "results"
                if detections is not None:
                    track_kitti(dataset, detections, results, _tracker_config(config, EXTERNAL_DETECTIONS_CHECKPOINT))
                else:
                    _track_shipped_kitti(dataset, results, _tracker_config(config, SHIPPED_CHECKPOINT))
            table, figures = _evaluate_kitti(dataset, results)
        _print_and_save(table, figures, json_path, console)
        return figures
    if name == "nuscenes":
        return _evaluate_nuscenes(dataset, root, predictions, eval_set, json_path, console)
    if name not in ("av2", "synth"):
        raise InputError(f"--data {data}: evaluate tracking scores kitti-tracking:PATH, av2:PATH, nuscenes:PATH or synth")
    from perception.tracking.evaluate import evaluate_av2_tracking
    from scenes.submissions.av2_tracking import labels_from_frames, predictions_from_tracks, read_sequences

    frames = [frame for log_id in dataset.logs() for frame in dataset.frames(log_id) if frame.annotations is not None]
    if not frames:
        raise InputError(f"{root or 'synth'}: no annotated frame to score tracks against")
    labels = labels_from_frames(frames)
    if predictions is not None:
        sequences = read_sequences(predictions)
    elif detections is not None:
        sequences = predictions_from_tracks(track_av2_table(dataset, detections, _tracker_config(config, EXTERNAL_DETECTIONS_CHECKPOINT)))
    else:
        tracker_cfg = _tracker_config(config, SHIPPED_CHECKPOINT)
        tracks = []
        for log_id, entries in _shipped_detections(dataset).items():
            stamps = [stamp for stamp, _, _ in entries]
            tracked = _track_log(tracker_cfg, log_id, stamps, [boxes for _, _, boxes in entries], [pose for _, pose, _ in entries])
            city = dict(zip(stamps, (boxes.transformed(pose, "city") for boxes, (_, pose, _) in zip(tracked, entries, strict=True)), strict=True))
            # Annotated timestamps without a sweep (nothing to detect on) get no tracks.
            labelled = [int(frame["timestamp_ns"]) for frame in labels.get(log_id, [])]
            empty = Boxes3D.empty(frame="city", with_tracks=True)
            tracks.append(Tracks(log_id, np.array(labelled, dtype=np.int64), tuple(city.get(stamp, empty) for stamp in labelled)))
        sequences = predictions_from_tracks(tracks)
    classes = _classes_in_range(labels, AV2_RANGE_M)
    if not classes:
        raise InputError(f"{root or 'synth'}: the ground truth has none of the scored classes {list(AV2_TRACKING_CLASSES)} within {AV2_RANGE_M} m")
    figures = evaluate_av2_tracking(sequences, labels, classes, max_range_m=AV2_RANGE_M).as_dict()
    _print_and_save(_av2_table(figures, f"AV2 tracking (av2 HOTA / MOTA) on {root or 'held-out synthetic logs'}"), figures, json_path, console)
    return figures


def _classes_in_range(labels: Mapping[str, Sequence[Mapping[str, Any]]], range_m: float) -> list[str]:
    """The scored classes with a labelled box within `range_m` of the ego (a class without one would score 0)."""
    present: set[str] = set()
    for frames in labels.values():
        for frame in frames:
            near = np.linalg.norm(np.asarray(frame["translation_m"])[:, :2] - np.asarray(frame["ego_translation_m"])[:2], axis=1) <= range_m
            present.update(str(name) for name in np.asarray(frame["name"])[near])
    return [name for name in AV2_TRACKING_CLASSES if name in present]


def _track_shipped_kitti(dataset: Any, results: Path, tracker_cfg: TrackerConfig) -> None:
    from scenes.adapters.kitti_tracking import FRAME_PERIOD_NS

    by_sequence = {
        sequence: {int(stamp // FRAME_PERIOD_NS): boxes for stamp, _, boxes in entries} for sequence, entries in _shipped_detections(dataset).items()
    }
    _write_kitti_tracks(dataset, by_sequence, results, tracker_cfg)


def _evaluate_nuscenes(
    dataset: Any, root: Path | None, predictions: Path | None, eval_set: str | None, json_path: Path | None, console: Console
) -> dict[str, Any]:
    from perception.tracking.evaluate import evaluate_nuscenes_tracking

    if predictions is None:
        raise InputError(f"{root}: nuScenes tracking is scored from a submission: give --predictions FILE (nuScenes tracking JSON)")
    from pipelines.evaluate_job import nuscenes_eval_set

    eval_set, _ = nuscenes_eval_set(dataset, eval_set)
    with tempfile.TemporaryDirectory(prefix="drivestack-nuscenes-tracking-") as scratch:
        try:
            metrics = evaluate_nuscenes_tracking(predictions, dataset.root, dataset.version, eval_set, scratch)
        except (AssertionError, KeyError, ValueError) as error:
            raise InputError(f"{predictions}: not a nuScenes tracking submission for {eval_set} ({type(error).__name__}: {error})") from None
    figures = {"AMOTA": metrics.amota, "AMOTP": metrics.amotp, "MOTA": metrics.mota, **{f"{k}/AMOTA": v for k, v in metrics.label_amota.items()}}
    table = Table(title=f"nuScenes tracking ({dataset.version}, {eval_set})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, f"{value:.3f}")
    _print_and_save(table, figures, json_path, console)
    return figures
