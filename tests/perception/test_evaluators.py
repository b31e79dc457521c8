"""Our writers scored by the official evaluators on known inputs (perfect and corrupted predictions)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from benchmarks.quality_detection import motion_scores, scored_classes, scored_ground_truth
from perception.detection.config import DetectionConfig
from perception.detection.detector import Detector
from perception.detection.evaluate import evaluate_av2_detection, evaluate_nuscenes_detection
from perception.tracking.evaluate import evaluate_av2_tracking, evaluate_nuscenes_tracking
from scenes.categories import CATEGORY_ID
from scenes.geometry import SE3
from scenes.records import Boxes3D, Frame, Tracks
from scenes.submissions.av2_detection import detections_table, ground_truth_table, read_table, write_table
from scenes.submissions.av2_tracking import labels_from_frames, predictions_from_tracks, read_sequences, write_sequences
from scenes.submissions.nuscenes_detection import detection_submission, write_submission
from scenes.submissions.nuscenes_tracking import tracking_submission
from tests.conftest import annotations_of, with_points

if TYPE_CHECKING:
    from scenes.adapters.nuscenes import NuScenesDataset

RV, PED = CATEGORY_ID["REGULAR_VEHICLE"], CATEGORY_ID["PEDESTRIAN"]
CLASSES = ["REGULAR_VEHICLE", "PEDESTRIAN"]


def _log(log_id: str, seed: int, steps: int = 12) -> list[Frame]:
    """Six agents (3 vehicles, 3 pedestrians) moving straight, seen from a moving, turning ego."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(-25, 25, (6, 2))
    velocity = rng.normal(0, 3, (6, 2))
    category = np.array([RV, RV, RV, PED, PED, PED])
    size = np.where(category[:, None] == RV, [4.5, 1.9, 1.6], [0.7, 0.7, 1.7])
    frames = []
    for t in range(steps):
        city_SE3_ego = SE3.from_yaw(0.05 * t, [2.0 * t * 0.1, 0.0, 0.0])
        boxes = Boxes3D(
            np.column_stack([start + velocity * t * 0.1, np.ones(6)]),
            size,
            np.arctan2(velocity[:, 1], velocity[:, 0]),
            category,
            velocity_m_per_s=velocity,
            track_id=np.array([f"{log_id}-{k}" for k in range(6)]),
            num_interior_pts=np.array([10, 10, 0, 10, 10, 10]),
            frame="city",
        )
        frames.append(Frame(log_id, 1_000_000_000 + t * 100_000_000, city_SE3_ego, annotations=boxes.transformed(city_SE3_ego.inverse(), "ego")))
    return frames


def test_av2_detection_perfect_and_g9(tmp_path: Path) -> None:
    frames = _log("log-a", 0) + _log("log-b", 1)
    detections = [(f.log_id, f.timestamp_ns, replace(annotations_of(f), track_id=None, num_interior_pts=None)) for f in frames]
    dts = read_table(write_table(tmp_path / "dts.feather", detections_table(detections)))
    gts = read_table(write_table(tmp_path / "gts.feather", ground_truth_table(frames)))
    metrics = evaluate_av2_detection(dts, gts, CLASSES)
    assert metrics.per_category["AP"].tolist() == [1.0, 1.0]
    assert metrics.per_category["ATE"].tolist() == [0.0, 0.0] and metrics.mean_ap == 1.0
    # Without the G9 workaround the detections on the empty box would be false positives.
    from av2.evaluation.detection.eval import evaluate
    from av2.evaluation.detection.utils import DetectionCfg

    _, _, raw = evaluate(dts, gts, DetectionCfg(categories=tuple(CLASSES), eval_only_roi_instances=False), n_jobs=1)
    assert raw.loc["REGULAR_VEHICLE", "AP"] < 1.0


def test_av2_tracking_perfect_misordered_and_swapped(tmp_path: Path) -> None:
    frames = _log("log-b", 2) + _log("log-a", 3)
    labels = labels_from_frames(frames)
    tracks = []
    for log_id in ("log-a", "log-b"):  # the other order than the labels': G7
        own = [f for f in frames if f.log_id == log_id]
        observed = [with_points(annotations_of(f)) for f in own]
        boxes = [b.transformed(f.city_SE3_ego, "city") for b, f in zip(observed, own, strict=True)]
        tracks.append(Tracks(log_id, np.array([f.timestamp_ns for f in own]), tuple(boxes)))
    predictions = read_sequences(write_sequences(tmp_path / "tracks.pkl", predictions_from_tracks(tracks)))
    metrics = evaluate_av2_tracking(predictions, labels, CLASSES, output_dir=tmp_path / "trackeval")
    assert metrics.hota == {"REGULAR_VEHICLE": 1.0, "PEDESTRIAN": 1.0} and metrics.mean_mota == 1.0
    # Swapping two vehicle ids halfway: identity switches lower HOTA but not detection accuracy.
    swapped = []
    for log in tracks:
        boxes = []
        for index, b in enumerate(log.boxes):
            assert b.track_id is not None
            ids = b.track_id.copy()
            if index >= len(log.boxes) // 2:
                ids[[0, 1]] = ids[[1, 0]]
            boxes.append(replace(b, track_id=ids))
        swapped.append(Tracks(log.log_id, log.timestamps_ns, tuple(boxes)))
    worse = evaluate_av2_tracking(predictions_from_tracks(swapped), labels, CLASSES)
    assert worse.hota["REGULAR_VEHICLE"] < 0.9 and worse.hota["PEDESTRIAN"] == 1.0


@pytest.fixture(scope="module")
def nuscenes_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, NuScenesDataset]:
    from scenes.adapters.nuscenes import NuScenesDataset
    from scenes.synth.world import SynthConfig, simulate_log
    from scenes.synth.writers.nuscenes import write_nuscenes

    root = tmp_path_factory.mktemp("nuscenes")
    config = SynthConfig(
        seconds=3.0, lidar_beams=8, lidar_azimuth_steps=360, cameras=(), num_vehicles=6, num_pedestrians=6, num_cyclists=0, num_static_objects=0
    )
    write_nuscenes([simulate_log(config, seed=7)], root, split="synth_val")
    return root, NuScenesDataset(root, version="v1.0-synth")


def _perfect_results(dataset: NuScenesDataset, with_tracks: bool) -> dict[str, Boxes3D]:
    results = {}
    for log_id in dataset.logs():
        for sample, frame in zip(dataset.samples(log_id), dataset.frames(log_id), strict=True):
            boxes = with_points(annotations_of(frame)).transformed(frame.city_SE3_ego, "city")
            results[sample["token"]] = boxes if with_tracks else replace(boxes, track_id=None)
    return results


def test_nuscenes_detection_eval_on_perfect_boxes(nuscenes_db: tuple[Path, NuScenesDataset], tmp_path: Path) -> None:
    root, dataset = nuscenes_db
    path = write_submission(tmp_path / "det.json", detection_submission(_perfect_results(dataset, False)))
    metrics = evaluate_nuscenes_detection(path, root, "v1.0-synth", "synth_val", tmp_path / "eval")
    # Every class with ground truth is detected perfectly; classes without any score 0 and still enter the mean.
    assert metrics.label_aps["car"] == pytest.approx(1.0)
    perfect = [name for name, ap in metrics.label_aps.items() if ap == pytest.approx(1.0)]
    assert all(ap == pytest.approx(1.0) or ap == 0.0 for ap in metrics.label_aps.values())
    assert metrics.mean_ap == pytest.approx(len(perfect) / 10)


def test_nuscenes_tracking_eval_on_perfect_tracks(nuscenes_db: tuple[Path, NuScenesDataset], tmp_path: Path) -> None:
    root, dataset = nuscenes_db
    path = write_submission(tmp_path / "trk.json", tracking_submission(_perfect_results(dataset, True)))
    metrics = evaluate_nuscenes_tracking(path, root, "v1.0-synth", "synth_val", tmp_path / "eval")
    assert metrics.label_amota["car"] == pytest.approx(1.0) and np.isnan(metrics.label_amota["bus"])  # absent: NaN, not averaged
    assert metrics.amota == pytest.approx(1.0) and metrics.amotp == pytest.approx(0.0, abs=1e-4)


def test_evaluate_tracking_cli_scores_a_nuscenes_tracking_submission(nuscenes_db: tuple[Path, NuScenesDataset], tmp_path: Path) -> None:
    """`drivestack evaluate tracking` on nuScenes: the devkit's AMOTA, the eval set found in splits.json."""
    import json

    from typer.testing import CliRunner

    from pipelines.cli import app

    root, dataset = nuscenes_db
    path = write_submission(tmp_path / "trk.json", tracking_submission(_perfect_results(dataset, True)))
    scores = tmp_path / "scores.json"
    result = CliRunner().invoke(app, ["evaluate", "tracking", "--data", f"nuscenes:{root}", "--predictions", str(path), "--json", str(scores)])
    assert result.exit_code == 0, result.output
    figures = json.loads(scores.read_text())
    assert figures["AMOTA"] == pytest.approx(1.0) and figures["car/AMOTA"] == pytest.approx(1.0)
    missing = CliRunner().invoke(app, ["evaluate", "tracking", "--data", f"nuscenes:{root}"])
    assert missing.exit_code == 2 and "give --predictions FILE" in missing.output


def test_motion_scores_by_hand() -> None:
    # Truth: a car at 10 m/s along x, a parked car, a pedestrian at 1.5 m/s along y.
    truth = Boxes3D(
        np.array([[10.0, 0.0, 0.8], [20.0, 5.0, 0.8], [5.0, -5.0, 0.9]]), np.array([[4.5, 1.9, 1.6], [4.5, 1.9, 1.6], [0.7, 0.7, 1.7]]),
        np.array([0.0, 0.0, np.pi / 2]), np.array([RV, RV, PED]), velocity_m_per_s=np.array([[10.0, 0.0], [0.0, 0.0], [0.0, 1.5]]),
    )  # fmt: skip
    frame = Frame("log", 0, SE3.identity(), annotations=truth)
    # Detections: the moving car 0.5 m off with velocity (7, 0) and a flipped heading; the parked car coming out at
    # 1.5 m/s (a still object predicted moving); a detection near the pedestrian but below the score threshold, so the
    # pedestrian is unmatched.
    detected = Boxes3D(
        np.array([[10.5, 0.0, 0.8], [20.0, 5.0, 0.8], [5.0, -5.0, 0.9]]), truth.size_lwh_m, np.array([np.pi - 0.1, 0.0, np.pi / 2]),
        np.array([RV, RV, PED]), score=np.array([0.9, 0.9, 0.2]), velocity_m_per_s=np.array([[7.0, 0.0], [1.5, 0.0], [0.0, 1.5]]),
    )  # fmt: skip
    scores = motion_scores([frame], [detected])
    assert scores["vehicle"] == {
        "matched": 1.0, "velocity_error_m_per_s": 3.0, "predicted_speed_m_per_s": 7.0, "true_speed_m_per_s": 10.0, "heading_flips": 1.0,
        "still_matched": 1.0, "still_predicted_moving": 1.0,
    }  # fmt: skip
    assert scores["pedestrian"]["matched"] == 0.0 and np.isnan(scores["pedestrian"]["velocity_error_m_per_s"])
    assert scores["pedestrian"]["still_matched"] == 0.0 and np.isnan(scores["pedestrian"]["still_predicted_moving"])
    # The parked car at 0.5 m/s is still, as predicted.
    slower = replace(detected, velocity_m_per_s=np.array([[7.0, 0.0], [0.5, 0.0], [0.0, 1.5]]))
    assert motion_scores([frame], [slower])["vehicle"]["still_predicted_moving"] == 0.0


def test_scored_ground_truth_counts_what_the_evaluator_scores() -> None:
    def frame(log_id: str, centers: list[list[float]], categories: list[int], points: list[int]) -> Frame:
        n = len(centers)
        boxes = Boxes3D(
            np.array(centers), np.tile([[0.7, 0.7, 1.7]], (n, 1)), np.zeros(n), np.array(categories), num_interior_pts=np.array(points)
        )
        return Frame(log_id, 0, SE3.identity(), annotations=boxes)

    frames = [
        # Log a: a pedestrian scored, one without returns, one 50.1 m away (3D distance: 50 m in x, 3 m up).
        frame("a", [[5.0, 0.0, 0.9], [6.0, 0.0, 0.9], [50.0, 0.0, 3.0]], [PED, PED, PED], [12, 0, 40]),
        # Log b: two cars scored, a pedestrian just inside the range.
        frame("b", [[10.0, 0.0, 0.8], [-20.0, 3.0, 0.8], [0.0, 49.9, 0.0]], [RV, RV, PED], [100, 3, 1]),
    ]
    observed = scored_ground_truth(ground_truth_table(frames), 50.0)
    assert observed == {"REGULAR_VEHICLE": {"boxes": 2, "logs": 1}, "PEDESTRIAN": {"boxes": 2, "logs": 2}}
    assert scored_ground_truth(ground_truth_table(frames[:1]), 50.0)["REGULAR_VEHICLE"] == {"boxes": 0, "logs": 0}


def test_real_rows_score_the_static_classes_the_detector_has_a_head_for() -> None:
    plain = Detector(DetectionConfig.model_validate({"model": {"tasks": [["REGULAR_VEHICLE"], ["PEDESTRIAN"]]}}))
    static = Detector(DetectionConfig.model_validate({"model": {"tasks": [["REGULAR_VEHICLE"], ["PEDESTRIAN"], ["SIGN", "BOLLARD"]]}}))
    assert scored_classes(plain) == ("REGULAR_VEHICLE", "PEDESTRIAN")
    assert scored_classes(static) == ("REGULAR_VEHICLE", "PEDESTRIAN", "BOLLARD", "SIGN")
