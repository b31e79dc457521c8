"""Detection and tracking quality on held-out synthetic logs, scored by the official AV2 evaluators.

Reproduce the shipped numbers (benchmarks/results/quality_detection.json) with:

    .venv/bin/python -m benchmarks.quality_detection

which loads the shipped checkpoint perception/detection/checkpoints/centerpoint_synth.pt, trained on simulated logs of
seed 0 by

    drivestack train detection --config configs/detection/centerpoint_synth.yaml --data synth --out runs/detection

(runs/detection/detector.pt is the checkpoint), simulates `--logs` held-out logs from seed 1000 (never used in training
or for choosing settings), runs the detector on every sweep with its past sweeps, scores detections with
`av2.evaluation.detection` (REGULAR_VEHICLE, PEDESTRIAN; AP averaged over the 0.5/1/2/4 m thresholds; boxes within
`--max-range-m` of the ego, the reach of the detector's 96 m x 96 m grid), tracks them and scores tracks with
`av2.evaluation.tracking` (HOTA, MOTA; same range).
Tracker variants: the shipped perception/tracking/checkpoints/ab3dmot_synth.pt (from `drivestack train tracking
--config configs/tracking/ab3dmot.yaml`) and its ablations (with the detector's velocity as a
measurement, constant turn rate), and the shipped tracker on ground-truth boxes (an upper
bound that isolates the detector's share of the error). Settings are chosen on validation logs (`--seed 500`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from perception.detection.detector import Detector
from perception.detection.evaluate import evaluate_av2_detection
from perception.tracking.config import TrackerConfig
from perception.tracking.evaluate import evaluate_av2_tracking
from perception.tracking.tracker import Tracker, load_tracker_config
from scenes.io import atomic_write_text
from scenes.records import Boxes3D, Frame
from scenes.submissions.av2_detection import detections_table, ground_truth_table
from scenes.submissions.av2_tracking import labels_from_frames, predictions_from_tracks

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = REPO / "perception" / "detection" / "checkpoints" / "centerpoint_synth.pt"
RESULTS = REPO / "benchmarks" / "results" / "quality_detection.json"
CLASSES = ("REGULAR_VEHICLE", "PEDESTRIAN")
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
    visible = replace(boxes.select(boxes.num_interior_pts > 0), track_id=None, num_interior_pts=None)
    return visible.transformed(frame.city_SE3_ego, "city")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--logs", type=int, default=2, help="held-out logs to simulate")
    parser.add_argument(
        "--seed", type=int, default=HELD_OUT_SEED, help=f"seed of the simulated logs: {HELD_OUT_SEED} (held out) or a validation seed for choosing settings"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each held-out log")
    parser.add_argument("--max-range-m", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from scenes.synth.world import SynthConfig, simulate_log

    detector = Detector.from_checkpoint(args.checkpoint)
    synth = SynthConfig(seconds=args.seconds, cameras=())
    frames_by_log: dict[str, list[Frame]] = {}
    detections: dict[str, list[Boxes3D]] = {}
    with Progress() as progress:
        task = progress.add_task("simulate + detect", total=args.logs)
        for index in range(args.logs):
            log = simulate_log(synth, args.seed, index)
            frames_by_log[log.log_id] = list(log.frames)
            detections[log.log_id] = detector.run_log(log.frames)
            progress.advance(task)

    all_frames = [frame for frames in frames_by_log.values() for frame in frames]
    dts = detections_table((f.log_id, f.timestamp_ns, d) for f, d in zip(all_frames, (d for ds in detections.values() for d in ds), strict=True))
    detection = evaluate_av2_detection(dts, ground_truth_table(all_frames), CLASSES, max_range_m=float(args.max_range_m))

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
    payload = {
        "command": ".venv/bin/python -m benchmarks.quality_detection " + " ".join(argv if argv is not None else sys.argv[1:]),
        "checkpoint": str(args.checkpoint.relative_to(REPO) if args.checkpoint.is_relative_to(REPO) else args.checkpoint),
        "seed": args.seed,
        "logs": args.logs,
        "seconds": args.seconds,
        "max_range_m": args.max_range_m,
        "detection": detection.as_dict(),
        "tracking": tracking,
    }
    atomic_write_text(args.out, json.dumps(payload, indent=2))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
