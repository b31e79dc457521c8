"""Tracking quality on held-out synthetic KITTI tracking sequences fed detections with realistic noise.

Reproduce the numbers of the README (benchmarks/results/quality_tracking.json) with:

    .venv/bin/python -m benchmarks.quality_tracking

It writes `--sequences` synthetic sequences of seed 1000 (never used to fit or choose anything; `--seed 500` gives the
validation sequences the settings were chosen on) in the KITTI tracking layout (`drivestack synth --format
kitti-tracking`), degrades their labels with the oracle detector at three noise levels (below), writes them as
AB3DMOT's PointRCNN detection files, tracks them with `drivestack track`'s code and scores the results with TrackEval's
KITTI HOTA / CLEAR / Identity and AB3DMOT's sAMOTA (car and pedestrian).

Noise levels (oracle detector, `pipelines/oracle_detector.py`): "realistic" is set to the failure modes of a LiDAR
detector such as PointRCNN on KITTI (centre error of a few decimetres, 5-10 % size error, small heading noise with a few
front/back flips, misses, under one false box per frame with low scores); "low" halves it, "high" doubles it.
Trackers: the shipped tracker for external detections (perception/tracking/checkpoints/ab3dmot_robust.pt, refitted by
`drivestack finetune tracking --config configs/tracking/refit_noisy_synth.yaml` on seed-0 training logs at about the
"high" level), the default `TrackerConfig`, and the stack's tracker fitted on ground-truth motion for the shipped
detector (ab3dmot_synth.pt). ms/frame is the tracker's wall time per frame (reading and writing files included).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from perception.tracking.config import TrackerConfig
from perception.tracking.kitti_eval import evaluate_kitti_tracking
from perception.tracking.tracker import EXTERNAL_DETECTIONS_CHECKPOINT, SHIPPED_CHECKPOINT, load_tracker_config
from pipelines.oracle_detector import OracleDetector, OracleDetectorConfig
from pipelines.tracking_job import track_kitti
from scenes.adapters.kitti_tracking import KittiTrackingDataset
from scenes.io import atomic_write_text
from scenes.submissions.kitti_tracking import write_pointrcnn_detections
from scenes.synth.writers.export import write_synthetic_dataset

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "quality_tracking.json"
HELD_OUT_SEED = 1000
REALISTIC = OracleDetectorConfig(
    center_noise_m=0.25, size_noise_fraction=0.06, yaw_noise_rad=0.08, yaw_flip_rate=0.04, miss_rate=0.15, false_positives_per_frame=0.8
)


def noise_levels() -> dict[str, OracleDetectorConfig]:
    def scaled(factor: float) -> OracleDetectorConfig:
        return REALISTIC.model_copy(
            update={
                "center_noise_m": REALISTIC.center_noise_m * factor,
                "size_noise_fraction": REALISTIC.size_noise_fraction * factor,
                "yaw_noise_rad": REALISTIC.yaw_noise_rad * factor,
                "yaw_flip_rate": REALISTIC.yaw_flip_rate * factor,
                "miss_rate": min(0.9, REALISTIC.miss_rate * factor),
                "false_positives_per_frame": REALISTIC.false_positives_per_frame * factor,
            }
        )

    return {"low": scaled(0.5), "realistic": REALISTIC, "high": scaled(2.0)}


def tracker_variants() -> dict[str, TrackerConfig]:
    return {
        "shipped for external detections": load_tracker_config(EXTERNAL_DETECTIONS_CHECKPOINT),
        "default TrackerConfig": TrackerConfig(),
        "stack tracker (ab3dmot_synth.pt)": load_tracker_config(SHIPPED_CHECKPOINT),
    }


def write_detections(dataset: KittiTrackingDataset, cfg: OracleDetectorConfig, out: Path) -> None:
    for sequence in dataset.logs():
        detector = OracleDetector(cfg)
        frames = [(index, detector.run(frame)) for index, frame in enumerate(dataset.frames(sequence))]
        write_pointrcnn_detections(out / f"{sequence}.txt", frames, dataset.calibration(sequence), dataset.image_size_px(sequence))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help=f"{HELD_OUT_SEED}: held out; 500: validation")
    parser.add_argument("--sequences", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    console = Console()
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="drivestack-quality-tracking-") as scratch:
        root = Path(scratch) / "kitti_tracking"
        write_synthetic_dataset("kitti-tracking", root, logs=args.sequences, seconds=args.seconds, seed=args.seed, console=console)
        dataset = KittiTrackingDataset(root)
        frames = sum(dataset.num_frames(sequence) for sequence in dataset.logs())
        for level, noise in noise_levels().items():
            detections = Path(scratch) / f"detections_{level}"
            write_detections(dataset, noise.model_copy(update={"seed": args.seed}), detections)
            for name, tracker_cfg in tracker_variants().items():
                tracked = Path(scratch) / f"tracks_{level}_{len(results.get(level, {}))}"
                start = time.perf_counter()
                track_kitti(dataset, detections, tracked, tracker_cfg)
                elapsed = time.perf_counter() - start
                gt_dir = dataset.label_path(dataset.logs()[0]).parent.parent
                metrics = evaluate_kitti_tracking(gt_dir, tracked, {sequence: dataset.num_frames(sequence) for sequence in dataset.logs()})
                figures = {key: float(metrics.as_dict()[key]) for key in ("HOTA", "MOTA", "IDF1", "sAMOTA", "AMOTA", "car/HOTA", "pedestrian/HOTA")}
                figures["ms_per_frame"] = 1000.0 * elapsed / frames
                results.setdefault(level, {})[name] = figures
    which = "held-out" if args.seed == HELD_OUT_SEED else "validation"
    table = Table(title=f"KITTI tracking on {which} synthetic sequences (seed {args.seed}, {args.sequences} x {args.seconds:g} s), PointRCNN-format detections")
    for column in ("noise", "tracker", "HOTA", "MOTA", "IDF1", "sAMOTA", "ms/frame"):
        table.add_column(column, justify="left" if column in ("noise", "tracker") else "right")
    for level, by_tracker in results.items():
        for name, figures in by_tracker.items():
            table.add_row(level, name, *(f"{figures[key]:.3f}" for key in ("HOTA", "MOTA", "IDF1", "sAMOTA")), f"{figures['ms_per_frame']:.2f}")
    Console(width=max(Console().width, 130)).print(table)
    payload = {
        "command": ".venv/bin/python -m benchmarks.quality_tracking " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seed": args.seed,
        "sequences": args.sequences,
        "seconds": args.seconds,
        "noise_levels": {level: cfg.model_dump() for level, cfg in noise_levels().items()},
        "results": results,
    }
    atomic_write_text(args.out, json.dumps(payload, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
