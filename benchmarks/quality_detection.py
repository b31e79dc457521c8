"""Detection and tracking quality on held-out synthetic logs, scored by the official AV2 evaluators.

Reproduce the shipped numbers (benchmarks/results/quality_detection.json) with:

    .venv/bin/python -m benchmarks.quality_detection

which loads the shipped checkpoint perception/detection/checkpoints/centerpoint_synth.pt, trained on simulated logs of
seed 0 by

    drivestack train detection --config configs/detection/centerpoint_synth.yaml --data synth --out runs/detection

(runs/detection/detector.pt is the checkpoint), simulates `--logs` held-out logs from seed 1000 (never used in training
or for choosing settings), runs the detector on every sweep with its past sweeps, scores detections with
`av2.evaluation.detection` (REGULAR_VEHICLE, PEDESTRIAN; AP averaged over the 0.5/1/2/4 m thresholds; boxes within
`--max-range-m` of the ego, the reach of the detector's 96 m x 96 m grid; a second AP row runs it on each sweep alone, as
on the real samples), tracks them and scores tracks with
`av2.evaluation.tracking` (HOTA, MOTA; same range).
Tracker variants: the shipped perception/tracking/checkpoints/ab3dmot_synth.pt (from `drivestack train tracking
--config configs/tracking/ab3dmot.yaml`) and its ablations (with the detector's velocity as a
measurement, constant turn rate), and the shipped tracker on ground-truth boxes (an upper
bound that isolates the detector's share of the error). Settings are chosen on validation logs (`--seed 500`).
A third table gives the velocity error, predicted and true speed and heading flips of detections of moving objects, and
the share of detections of still objects that come out moving (>= 1 m/s): as decoded (the velocity searched from the
sweeps, `ModelConfig.velocity_from_sweeps`, perception/detection/sweep_velocity.py, and moving boxes turned to face their
motion, `ModelConfig.motion_heading_min_speed_m_per_s`), with the heads' heading, and with the velocity head's output.
`--rig` simulates the held-out logs with a dataset's LiDAR rig (`single`, the e2e job's default; `av2`, `kitti`,
`nuscenes`: `scenes.synth.lidar`); `--bright-people` with people as bright in the LiDAR as on the real samples
(`SynthConfig.bright_people`), `--vehicle-paint` with each vehicle's own paint (`SynthConfig.vehicle_paint`),
`--pedestrian-groups` with people walking in groups (`SynthConfig.pedestrian_groups`).

Real sensors: with the real samples beside the repository (`--real-data`, default `../shared/data`), the detector also
runs on the real AV2 sweep and the three KITTI object frames (no training on real data, single sweeps: the samples
hold no past sweeps), and a second table gives BEV recall / precision at 2 m (score >= 0.3) for vehicles and
pedestrians and the AV2 evaluator's AP (of the static classes too when the detector has a head for them), within
`--max-range-m`, KITTI detections kept only inside image_2 (KITTI labels nothing else). Its `dataset ego frames` rows
move the records back into each dataset's own frame (road at -0.33 m on AV2, -1.73 m on KITTI): the ablation of the
canonical ego frame. Its last rows run the same network with the ground estimate of `perception/detection/ground.py`
switched over (`ModelConfig.ground_relative`): off for a ground-relative checkpoint, on for one trained on absolute
heights; for a network whose height range reaches above 3 m, a row with the points above 3 m dropped (tree crowns,
awnings and signs over the sidewalk: the same network, its height range cut); for a network that reads intensity, a
row with every intensity read as 0 (`ModelConfig.use_intensity`). The checkpoints trained with a static-object head
(on the frozen shipped network, and whole with 0.4 m and 0.8 m pillars), on every dataset rig, on two city styles, on
single sweeps too, with a random intensity response, with pasted objects placed beside structure (0.8 m and 0.4 m
pillars) or as many pasted anywhere free, with the velocity coded along the heading, without point intensities and in
the city whose people are as bright as real ones:

    drivestack train detection --config configs/detection/centerpoint_synth_static_head.yaml --data synth \
        --out runs/detection/centerpoint_synth_static_head  # a static head on the frozen network of runs/detection/centerpoint_synth
    .venv/bin/python -m benchmarks.quality_detection --checkpoint runs/detection/centerpoint_synth_static_head/detector.pt \
        --logs 6 --out benchmarks/results/quality_detection_static_head.json  # and --rig av2
    drivestack train detection --config configs/detection/centerpoint_synth_static_fine_pillars.yaml --data synth \
        --out runs/detection_static_fine_pillars
    .venv/bin/python -m benchmarks.quality_detection --checkpoint runs/detection_static_fine_pillars/detector.pt \
        --out benchmarks/results/quality_detection_static_fine_pillars.json  # and --rig av2
    drivestack train detection --config configs/detection/centerpoint_synth_rigs.yaml --data synth --out runs/detection_rigs
    .venv/bin/python -m benchmarks.quality_detection --checkpoint runs/detection_rigs/detector.pt --rig av2 \
        --out benchmarks/results/quality_detection_rigs_av2.json
    drivestack train detection --config configs/detection/centerpoint_synth_styles.yaml --data synth --out runs/detection_styles
    .venv/bin/python -m benchmarks.quality_detection --checkpoint runs/detection_styles/detector.pt \
        --out benchmarks/results/quality_detection_styles.json
    drivestack train detection --config configs/detection/centerpoint_synth_static.yaml --data synth --out runs/detection_static
    .venv/bin/python -m benchmarks.quality_detection --checkpoint runs/detection_static/detector.pt \
        --out benchmarks/results/quality_detection_static.json
    drivestack train detection --config configs/detection/centerpoint_synth_single_sweep.yaml --data synth \
        --out runs/detection_single_sweep
    .venv/bin/python -m benchmarks.quality_detection --checkpoint runs/detection_single_sweep/detector.pt \
        --out benchmarks/results/quality_detection_single_sweep.json
    drivestack train detection --config configs/detection/centerpoint_synth_intensity.yaml --data synth \
        --out runs/detection_intensity
    .venv/bin/python -m benchmarks.quality_detection --checkpoint runs/detection_intensity/detector.pt \
        --out benchmarks/results/quality_detection_intensity.json
    drivestack train detection --config configs/detection/centerpoint_synth_near_structure.yaml --data synth \
        --out runs/detection_near_structure
    .venv/bin/python -m benchmarks.quality_detection --checkpoint runs/detection_near_structure/detector.pt \
        --out benchmarks/results/quality_detection_near_structure.json
    drivestack train detection --config configs/detection/centerpoint_synth_fine_near_structure.yaml --data synth \
        --out runs/detection_fine_near_structure  # other seeds: train.seed 1, 2 in a config with `base:` this one
    .venv/bin/python -m benchmarks.quality_detection --checkpoint runs/detection_fine_near_structure/detector.pt \
        --out benchmarks/results/quality_detection_fine_near_structure.json  # and --logs 6, --rig av2, --seed 500
    drivestack train detection --config configs/detection/centerpoint_synth_more_pasted.yaml --data synth \
        --out runs/detection_more_pasted
    .venv/bin/python -m benchmarks.quality_detection --checkpoint runs/detection_more_pasted/detector.pt \
        --logs 6 --out benchmarks/results/quality_detection_more_pasted.json  # and --rig av2, --seed 500
    drivestack train detection --config configs/detection/centerpoint_synth_box_velocity.yaml --data synth \
        --out runs/detection_box_velocity
    .venv/bin/python -m benchmarks.quality_detection --checkpoint runs/detection_box_velocity/detector.pt \
        --out benchmarks/results/quality_detection_box_velocity.json
    drivestack train detection --config configs/detection/centerpoint_synth_no_intensity.yaml --data synth \
        --out runs/detection_no_intensity
    .venv/bin/python -m benchmarks.quality_detection --checkpoint runs/detection_no_intensity/detector.pt \
        --out benchmarks/results/quality_detection_no_intensity.json
    drivestack train detection --config configs/detection/centerpoint_synth_bright_people.yaml --data synth \
        --out runs/detection_bright_people
    .venv/bin/python -m benchmarks.quality_detection --checkpoint runs/detection_bright_people/detector.pt --bright-people \
        --out benchmarks/results/quality_detection_bright_people.json  # and --logs 6, --rig av2, --seed 500
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from perception.detection.detector import Detector
from perception.detection.evaluate import evaluate_av2_detection
from perception.tracking.config import TrackerConfig
from perception.tracking.evaluate import evaluate_av2_tracking
from perception.tracking.tracker import Tracker, load_tracker_config
from scenes.categories import VEHICLE_CATEGORIES
from scenes.ego_frame import EgoConvention
from scenes.geometry import wrap_angle
from scenes.io import atomic_write_text
from scenes.records import Boxes3D, Frame
from scenes.submissions.av2_detection import detections_table, ground_truth_table
from scenes.submissions.av2_tracking import labels_from_frames, predictions_from_tracks

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = REPO / "perception" / "detection" / "checkpoints" / "centerpoint_synth.pt"
RESULTS = REPO / "benchmarks" / "results" / "quality_detection.json"
CLASSES = ("REGULAR_VEHICLE", "PEDESTRIAN")
# Scored too when the detector has a head for them (the synthetic city places cones, bollards and signs).
STATIC_CLASSES = ("CONSTRUCTION_CONE", "BOLLARD", "SIGN")
HELD_OUT_SEED = 1000
TARGET_MAP = 0.5
TARGET_HOTA = 0.5
SHIPPED_TRACKER = "shipped (cv, no detector velocity)"


def _track_variants() -> dict[str, TrackerConfig]:
    """The shipped tracker (perception/tracking/checkpoints/ab3dmot_synth.pt) first, then its ablations."""
    shipped = load_tracker_config()
    ctrv = load_tracker_config(REPO / "configs" / "tracking" / "ab3dmot_ctrv.yaml")
    return {
        SHIPPED_TRACKER: shipped,
        "cv + detector velocity": shipped.model_copy(update={"use_detection_velocity": True}),
        "ctrv + detector velocity": ctrv,
        "ctrv, no detector velocity": ctrv.model_copy(update={"use_detection_velocity": False}),
    }


def _ground_truth_detections(frame: Frame) -> Boxes3D:
    """The frame's annotated boxes with LiDAR points, as city-frame detections (no track ids, no point counts)."""
    boxes = frame.annotations
    # The synthetic city annotates every frame and counts the points in each box.
    assert boxes is not None and boxes.num_interior_pts is not None
    visible = replace(boxes.observed(), track_id=None, num_interior_pts=None)
    return visible.transformed(frame.city_SE3_ego, "city")


REAL_SAMPLES: Final = {"AV2 sweep": ("av2", "av2/sensor"), "KITTI frames": ("kitti-object", "kitti/object")}
REAL_SCORE_THRESHOLD = 0.3
REAL_MATCH_M = 2.0
# Top (m above the ground) of the height range in the real-sample row that drops overhead points: tree crowns, awnings
# and signs over the sidewalk, of which the synthetic city has far fewer around its pedestrians and parked cars.
OVERHEAD_CUT_M: Final = 3.0


def overhead_cut(detector: Detector) -> Detector:
    """The same network with its height range cut at `OVERHEAD_CUT_M`: the points above it dropped."""
    model = detector.cfg.model
    return detector.with_model(range_m=(*model.range_m[:5], OVERHEAD_CUT_M))


def _groups(boxes: Boxes3D) -> np.ndarray:
    names = boxes.category_names
    return np.array(["vehicle" if name in VEHICLE_CATEGORIES else "pedestrian" if name == "PEDESTRIAN" else "other" for name in names], dtype=object)


def _matches(truth_xy: np.ndarray, detected_xy: np.ndarray, scores: np.ndarray, radius_m: float) -> int:
    """Greedy BEV matching, detections by decreasing score, each to its nearest unmatched truth within `radius_m`."""
    free = np.ones(len(truth_xy), dtype=bool)
    matched = 0
    for index in np.argsort(-scores, kind="stable"):
        if not free.any():
            break
        distance = np.where(free, np.linalg.norm(truth_xy - detected_xy[index], axis=1), np.inf)
        nearest = int(np.argmin(distance))
        if distance[nearest] <= radius_m:
            free[nearest] = False
            matched += 1
    return matched


MOVING_M_PER_S = 1.0
STILL_M_PER_S = 0.1


def scored_ground_truth(truth: pd.DataFrame, max_range_m: float) -> dict[str, dict[str, int]]:
    """Per class of `CLASSES`, the ground-truth boxes the AV2 evaluator scores (centre within `max_range_m` of the ego
    origin, at least one return inside) and how many logs hold any: an AP over a few logs may rest on one log."""
    centre = truth[["tx_m", "ty_m", "tz_m"]].to_numpy(dtype=np.float64)
    scored = truth.loc[(np.linalg.norm(centre, axis=1) < max_range_m) & (truth["num_interior_pts"].to_numpy() > 0)]
    return {
        name: {"boxes": int((scored["category"] == name).sum()), "logs": int(scored.loc[scored["category"] == name, "log_id"].nunique())}
        for name in CLASSES
    }


def motion_scores(frames: list[Frame], detections: list[Boxes3D]) -> dict[str, dict[str, float]]:
    """Velocity and heading of the detections (score >= `REAL_SCORE_THRESHOLD`) matched to moving annotated boxes
    (faster than `MOVING_M_PER_S`; each to its nearest detection within `REAL_MATCH_M` in BEV), per group: median velocity error
    (m/s), median predicted and true speed, the share of headings off by more than 90 degrees (a flipped box), and of
    the detections matched to still boxes (slower than `STILL_M_PER_S`), the share predicted faster than `MOVING_M_PER_S`."""
    errors: dict[str, list[tuple[float, float, float, float]]] = {"vehicle": [], "pedestrian": []}
    still: dict[str, list[float]] = {"vehicle": [], "pedestrian": []}
    for frame, boxes in zip(frames, detections, strict=True):
        truth = frame.annotations
        if truth is None or truth.velocity_m_per_s is None or boxes.velocity_m_per_s is None:
            continue
        confident = boxes.select(boxes.score >= REAL_SCORE_THRESHOLD)  # type: ignore[operator]
        assert confident.velocity_m_per_s is not None
        truth_groups, detected_groups = _groups(truth), _groups(confident)
        speed = np.linalg.norm(truth.velocity_m_per_s, axis=1)
        for group, rows in errors.items():
            candidates = np.flatnonzero(detected_groups == group)
            if not len(candidates):
                continue
            for index in np.flatnonzero((truth_groups == group) & ((speed > MOVING_M_PER_S) | (speed < STILL_M_PER_S))):
                distance = np.linalg.norm(confident.center_m[candidates, :2] - truth.center_m[index, :2], axis=1)
                if distance.min() > REAL_MATCH_M:
                    continue
                match = candidates[int(np.argmin(distance))]
                velocity = confident.velocity_m_per_s[match]
                if speed[index] < STILL_M_PER_S:
                    still[group].append(float(np.linalg.norm(velocity) > MOVING_M_PER_S))
                    continue
                turn = wrap_angle(confident.yaw_rad[match] - truth.yaw_rad[index])
                error = float(np.linalg.norm(velocity - truth.velocity_m_per_s[index]))
                rows.append((error, float(np.linalg.norm(velocity)), float(speed[index]), float(abs(turn) > np.pi / 2)))
    scores: dict[str, dict[str, float]] = {}
    for group, rows in errors.items():
        values = np.array(rows).reshape(-1, 4)
        medians = np.median(values, axis=0) if len(values) else np.full(4, np.nan)
        scores[group] = {
            "matched": float(len(values)),
            "velocity_error_m_per_s": float(medians[0]),
            "predicted_speed_m_per_s": float(medians[1]),
            "true_speed_m_per_s": float(medians[2]),
            "heading_flips": float(values[:, 3].mean()) if len(values) else float("nan"),
            "still_matched": float(len(still[group])),
            "still_predicted_moving": float(np.mean(still[group])) if still[group] else float("nan"),
        }
    return scores


def _in_camera(boxes: Boxes3D, frame: Frame) -> np.ndarray:
    """Which box centres project into the frame's camera image (KITTI labels only objects in image_2)."""
    camera = next(iter(frame.cameras.values()))
    points = camera.ego_SE3_camera.inverse().transform_points(boxes.center_m)
    depth = np.maximum(points[:, 2], 1e-6)
    u = camera.intrinsics[0, 0] * points[:, 0] / depth + camera.intrinsics[0, 2]
    return (points[:, 2] > 0.5) & (u >= 0) & (u < camera.width_px)


def _in_dataset_frame(frame: Frame, convention: EgoConvention) -> Frame:
    """The frame in its dataset's own ego frame, as the adapters gave it before the canonical ego frame existed."""
    lidar = frame.lidar
    assert lidar is not None
    annotations = None if frame.annotations is None else convention.boxes_from_ego(frame.annotations)
    return replace(frame, lidar=replace(lidar, points_xyz_m=convention.points_from_ego(lidar.points_xyz_m)), annotations=annotations)


def scored_classes(detector: Detector) -> tuple[str, ...]:
    """The classes whose AP the real-sample rows report: vehicles, pedestrians and the static classes the detector has
    a head for."""
    return (*CLASSES, *(name for name in STATIC_CLASSES if name in detector.cfg.model.class_names))


def real_sample_scores(detector: Detector, data_root: Path, *, max_range_m: float, dataset_frame: bool = False) -> dict[str, dict[str, float]]:
    """BEV recall / precision at `REAL_MATCH_M` (score >= `REAL_SCORE_THRESHOLD`) of vehicles and pedestrians, and the
    AV2 evaluator's AP (of `scored_classes`), on each real sample under `data_root` (single sweeps: no past sweeps exist on disk). KITTI
    labels cover only the camera's view, so KITTI detections outside it are left out. With `dataset_frame`, records
    are moved back into each dataset's own ego frame (the road at -0.33 m on AV2, -1.73 m on KITTI): the ablation of
    the canonical ego frame."""
    from scenes.adapters.registry import open_dataset
    from scenes.ego_frame import AV2_EGO, KITTI_EGO

    conventions = {"av2": AV2_EGO, "kitti-object": KITTI_EGO}
    results: dict[str, dict[str, float]] = {}
    for name, (kind, relative) in REAL_SAMPLES.items():
        if not (data_root / relative).is_dir():
            continue
        dataset = open_dataset(f"{kind}:{data_root / relative}", **({"with_image": True} if kind == "kitti-object" else {}))
        counts = {group: np.zeros(3, dtype=np.int64) for group in ("vehicle", "pedestrian")}
        items: list[tuple[str, int, Boxes3D]] = []
        frames: list[Frame] = []
        for log_id in dataset.logs():
            for frame in dataset.frames(log_id):
                if frame.lidar is None or frame.annotations is None:
                    continue
                if dataset_frame:
                    frame = _in_dataset_frame(frame, conventions[kind])
                detections = detector.run(frame)
                assert frame.annotations is not None  # checked above, and kept by `_in_dataset_frame`
                truth = frame.annotations.observed()
                if kind == "kitti-object":
                    detections = detections.select(_in_camera(detections, frame))
                truth = truth.select(np.hypot(truth.center_m[:, 0], truth.center_m[:, 1]) <= max_range_m)
                detections = detections.select(np.hypot(detections.center_m[:, 0], detections.center_m[:, 1]) <= max_range_m)
                items.append((frame.log_id, frame.timestamp_ns, detections))
                frames.append(replace(frame, annotations=truth))
                confident = detections.select(detections.score >= REAL_SCORE_THRESHOLD)  # type: ignore[operator]
                truth_groups, detected_groups = _groups(truth), _groups(confident)
                for group, count in counts.items():
                    t, d = truth_groups == group, detected_groups == group
                    scores = confident.score[d]  # type: ignore[index]
                    count += (_matches(truth.center_m[t, :2], confident.center_m[d, :2], scores, REAL_MATCH_M), int(t.sum()), int(d.sum()))
        row: dict[str, float] = {"frames": float(len(frames))}
        for group, (matched, truths, detected) in counts.items():
            row[f"{group}/recall"] = matched / truths if truths else float("nan")
            row[f"{group}/precision"] = matched / detected if detected else float("nan")
            row[f"{group}/truths"] = float(truths)
        present = [c for c in scored_classes(detector) if any(c in f.annotations.category_names for f in frames if f.annotations is not None)]
        if present:
            ap = evaluate_av2_detection(detections_table(items), ground_truth_table(frames), present, max_range_m=max_range_m)
            row.update({f"{category}/AP": float(ap.per_category.loc[category, "AP"]) for category in present})
        results[name] = row
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--logs", type=int, default=2, help="held-out logs to simulate")
    parser.add_argument(
        "--seed", type=int, default=HELD_OUT_SEED, help=f"seed of the simulated logs: {HELD_OUT_SEED} (held out) or a validation seed for choosing settings"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each held-out log")
    parser.add_argument("--max-range-m", type=int, default=50)
    parser.add_argument("--rig", default="single", help="LiDAR rig of the held-out logs: single (the e2e default), av2, kitti, nuscenes")
    parser.add_argument("--bright-people", action="store_true", help="held-out logs with people as bright as real ones (SynthConfig.bright_people)")
    parser.add_argument("--vehicle-paint", action="store_true", help="held-out logs with each vehicle's own paint (SynthConfig.vehicle_paint)")
    parser.add_argument("--pedestrian-groups", action="store_true", help="held-out logs with people walking in groups (SynthConfig.pedestrian_groups)")
    parser.add_argument("--real-data", type=Path, default=REPO.parent / "shared" / "data", help="folder of the real samples (skipped if absent)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from scenes.synth.world import SynthConfig, simulate_log

    detector = Detector.from_checkpoint(args.checkpoint)
    synth = SynthConfig(
        seconds=args.seconds,
        cameras=(),
        lidar_rig=args.rig,
        bright_people=args.bright_people,
        vehicle_paint=args.vehicle_paint,
        pedestrian_groups=args.pedestrian_groups,
    )
    frames_by_log: dict[str, list[Frame]] = {}
    detections: dict[str, list[Boxes3D]] = {}
    single_sweep: list[Boxes3D] = []
    with Progress() as progress:
        task = progress.add_task("simulate + detect", total=args.logs)
        for index in range(args.logs):
            log = simulate_log(synth, args.seed, index)
            frames_by_log[log.log_id] = list(log.frames)
            detections[log.log_id] = detector.run_log(log.frames)
            single_sweep.extend(detector.run(frame) for frame in log.frames)
            progress.advance(task)

    all_frames = [frame for frames in frames_by_log.values() for frame in frames]
    dts = detections_table((f.log_id, f.timestamp_ns, d) for f, d in zip(all_frames, (d for ds in detections.values() for d in ds), strict=True))
    truth = ground_truth_table(all_frames)
    detection = evaluate_av2_detection(dts, truth, CLASSES, max_range_m=float(args.max_range_m))
    single_dts = detections_table((f.log_id, f.timestamp_ns, d) for f, d in zip(all_frames, single_sweep, strict=True))
    single_ap = evaluate_av2_detection(single_dts, truth, CLASSES, max_range_m=float(args.max_range_m)).per_category["AP"]
    static_classes = [name for name in STATIC_CLASSES if name in detector.cfg.model.class_names]
    static = None
    if static_classes:
        static = evaluate_av2_detection(dts, truth, static_classes, max_range_m=float(args.max_range_m))

    motion = {"as decoded": motion_scores(all_frames, [d for ds in detections.values() for d in ds])}
    motion_ablations: dict[str, dict[str, Any]] = {
        "heads' heading": {"motion_heading_min_speed_m_per_s": None},
        "heads' velocity": {"velocity_from_sweeps": False},
    }
    for name, changes in motion_ablations.items():
        if all(getattr(detector.cfg.model, key) != value for key, value in changes.items()):
            ablated = detector.with_model(**changes)
            motion[name] = motion_scores(all_frames, [d for frames in frames_by_log.values() for d in ablated.run_log(frames)])
    labels = labels_from_frames(all_frames)
    tracking: dict[str, dict[str, float]] = {}
    city_detections = {
        log_id: [boxes.transformed(frame.city_SE3_ego, "city") for boxes, frame in zip(detections[log_id], frames, strict=True)]
        for log_id, frames in frames_by_log.items()
    }
    ground_truth_boxes = {log_id: [_ground_truth_detections(frame) for frame in frames] for log_id, frames in frames_by_log.items()}
    tracker_configs = _track_variants()
    variants = [(name, cfg, city_detections) for name, cfg in tracker_configs.items()]
    variants.append(("shipped tracker on ground-truth boxes", tracker_configs[SHIPPED_TRACKER], ground_truth_boxes))
    for name, tracker_cfg, inputs in variants:
        tracks = [
            Tracker(tracker_cfg).run(log_id, inputs[log_id], [f.timestamp_ns for f in frames]) for log_id, frames in frames_by_log.items()
        ]
        tracking[name] = evaluate_av2_tracking(predictions_from_tracks(tracks), labels, CLASSES, max_range_m=args.max_range_m).as_dict()

    console = Console()
    which = "held-out" if args.seed == HELD_OUT_SEED else "validation"
    table = Table(title=f"{which} synthetic logs (seed {args.seed}, {args.logs} x {args.seconds:g} s), range {args.max_range_m} m")
    for column in ("what", "REGULAR_VEHICLE", "PEDESTRIAN", "mean", "target"):
        table.add_column(column)
    per = detection.per_category
    for metric in ("AP", "ATE", "ASE", "AOE", "CDS"):
        mean = float(per[metric].mean())
        target = f">= {TARGET_MAP}" if metric == "AP" else ""
        table.add_row(
            f"detection {metric}", f"{per.loc['REGULAR_VEHICLE', metric]:.3f}", f"{per.loc['PEDESTRIAN', metric]:.3f}", f"{mean:.3f}", target
        )
    observed = scored_ground_truth(truth, float(args.max_range_m))
    table.add_row(
        "ground-truth boxes scored (logs holding them)",
        *(f"{observed[name]['boxes']} ({observed[name]['logs']} of {args.logs})" for name in CLASSES),
        "",
        "",
    )
    table.add_row(
        "detection AP, single sweeps", f"{single_ap['REGULAR_VEHICLE']:.3f}", f"{single_ap['PEDESTRIAN']:.3f}", f"{float(single_ap.mean()):.3f}", ""
    )
    for name, values in tracking.items():
        for metric in ("HOTA", "MOTA"):
            target = f">= {TARGET_HOTA}" if metric == "HOTA" and name == SHIPPED_TRACKER else ""
            table.add_row(
                f"tracking {metric}: {name}",
                f"{values[f'REGULAR_VEHICLE/{metric}']:.3f}",
                f"{values[f'PEDESTRIAN/{metric}']:.3f}",
                f"{values[metric]:.3f}",
                target,
            )
    console.print(table)
    if static is not None:
        static_table = Table(title="static objects (the detector's static-object head), same logs")
        for column in ("metric", *static_classes):
            static_table.add_column(column)
        for metric in ("AP", "ATE", "ASE", "CDS"):
            static_table.add_row(metric, *(f"{static.per_category.loc[name, metric]:.3f}" for name in static_classes))
        console.print(static_table)
    motion_table = Table(title=f"moving objects (> {MOVING_M_PER_S:g} m/s), detections matched within {REAL_MATCH_M:g} m, same logs")
    columns = ("group", "heading", "matched", "median velocity error (m/s)", "median predicted / true speed (m/s)", "heading flips")
    for column in (*columns, f"still objects predicted > {MOVING_M_PER_S:g} m/s"):
        motion_table.add_column(column)
    for group in ("vehicle", "pedestrian"):
        for heading, groups in motion.items():
            row = groups[group]
            motion_table.add_row(
                group, heading, f"{row['matched']:.0f}", f"{row['velocity_error_m_per_s']:.2f}",
                f"{row['predicted_speed_m_per_s']:.2f} / {row['true_speed_m_per_s']:.2f}", f"{row['heading_flips']:.2f}",
                f"{row['still_predicted_moving']:.2f} of {row['still_matched']:.0f}",
            )  # fmt: skip
    if len(motion) > 1:
        motion_table.caption = (
            "'as decoded': velocity searched from the sweeps (perception/detection/sweep_velocity.py) and boxes moving >= "
            f"{detector.cfg.model.motion_heading_min_speed_m_per_s} m/s turned to face their motion; 'heads' heading': the same "
            "without turning; 'heads' velocity': the velocity head's output (perception/detection/motion_heading.py turns boxes)"
        )
    console.print(motion_table)
    model = detector.cfg.model
    heights_ablation = f"canonical, {'absolute heights' if model.ground_relative else 'ground-relative heights'}"
    heights_switched = detector.with_model(ground_relative=not model.ground_relative)
    real_variants = [("canonical ego frame", detector), ("dataset ego frames", detector), (heights_ablation, heights_switched)]
    overhead_ablation = f"canonical, points up to {OVERHEAD_CUT_M:g} m"
    if model.range_m[5] > OVERHEAD_CUT_M:
        real_variants.append((overhead_ablation, overhead_cut(detector)))
    intensity_ablation = "canonical, intensity read as 0"
    if model.use_intensity:
        real_variants.append((intensity_ablation, detector.with_model(use_intensity=False)))
    real = {
        records: real_sample_scores(variant, args.real_data, max_range_m=args.max_range_m, dataset_frame=records == "dataset ego frames")
        for records, variant in real_variants
    }
    if any(real.values()):
        real_table = Table(title=f"real samples in {args.real_data} (score >= {REAL_SCORE_THRESHOLD}, BEV match {REAL_MATCH_M:g} m, {args.max_range_m} m)")
        real_classes = scored_classes(detector)
        recall_columns = ("vehicle recall", "vehicle precision", "pedestrian recall", "pedestrian precision")
        for column in ("sample", "records", *recall_columns, *(f"{c} AP" for c in real_classes)):
            real_table.add_column(column)
        for records, samples in real.items():
            for sample, row in samples.items():
                cells = [row.get(key, float("nan")) for key in ("vehicle/recall", "vehicle/precision", "pedestrian/recall", "pedestrian/precision")]
                cells += [row.get(f"{c}/AP", float("nan")) for c in real_classes]
                real_table.add_row(sample, records, *(f"{value:.3f}" for value in cells))
        real_table.caption = (
            "targets: vehicle recall >= 0.8 at precision >= 0.6, pedestrian recall >= 0.5; "
            "'dataset ego frames' is the ablation of the canonical frame, "
            f"'{heights_ablation}' the same network with the ground estimate (perception/detection/ground.py) "
            f"{'off' if model.ground_relative else 'on'}"
            + (f", '{overhead_ablation}' the same network with its height range cut at {OVERHEAD_CUT_M:g} m" if model.range_m[5] > OVERHEAD_CUT_M else "")
            + (f", '{intensity_ablation}' the same network blind to each dataset's intensity scale" if model.use_intensity else "")
        )
        console.print(real_table)
    payload = {
        "command": ".venv/bin/python -m benchmarks.quality_detection " + " ".join(argv if argv is not None else sys.argv[1:]),
        "checkpoint": str(args.checkpoint.relative_to(REPO) if args.checkpoint.is_relative_to(REPO) else args.checkpoint),
        "seed": args.seed,
        "logs": args.logs,
        "seconds": args.seconds,
        "max_range_m": args.max_range_m,
        "detection": detection.as_dict(),
        "ground_truth_scored": observed,
        "detection_single_sweeps_AP": {name: float(single_ap[name]) for name in CLASSES},
        "tracking": tracking,
        "static_detection": None if static is None else static.as_dict(),
        "motion": motion,
        "rig": args.rig,
        "bright_people": args.bright_people,
        "vehicle_paint": args.vehicle_paint,
        "pedestrian_groups": args.pedestrian_groups,
        "real": real,
    }
    atomic_write_text(args.out, json.dumps(payload, indent=2))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
