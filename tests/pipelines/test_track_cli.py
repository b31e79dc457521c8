"""`drivestack track` on external detections and `drivestack evaluate tracking`, on synthetic KITTI tracking and AV2 logs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.oracle_detector import OracleDetector, OracleDetectorConfig
from scenes.adapters.kitti_tracking import KittiTrackingDataset, read_tracking_rows
from scenes.categories import TO_KITTI
from scenes.submissions.av2_detection import detections_table, write_table
from scenes.submissions.kitti_tracking import project_boxes_2d, read_pointrcnn_detections, write_pointrcnn_detections
from scenes.synth.writers.export import write_synthetic_dataset
from tests.conftest import with_points

runner = CliRunner()


@pytest.fixture(scope="module")
def kitti(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kitti_tracking")
    write_synthetic_dataset("kitti-tracking", root / "data", logs=1, seconds=2.0, seed=21)
    return root


def _detections(root: Path, name: str, cfg: OracleDetectorConfig) -> Path:
    dataset = KittiTrackingDataset(root / "data")
    out = root / name
    for sequence in dataset.logs():
        frames = [(index, OracleDetector(cfg).run(frame)) for index, frame in enumerate(dataset.frames(sequence))]
        write_pointrcnn_detections(out / f"{sequence}.txt", frames, dataset.calibration(sequence), dataset.image_size_px(sequence))
    return out


def test_pointrcnn_files_round_trip(kitti: Path) -> None:
    dataset = KittiTrackingDataset(kitti / "data")
    frame = next(iter(dataset.frames("0000")))
    assert frame.annotations is not None
    boxes = OracleDetector(OracleDetectorConfig(center_noise_m=0.5, seed=2)).run(frame)
    path = write_pointrcnn_detections(kitti / "one.txt", [(0, boxes)], dataset.calibration("0000"), dataset.image_size_px("0000"))
    back = read_pointrcnn_detections(path, dataset.calibration("0000"))[0]
    # The format holds the boxes in the image with a KITTI class (noise can push a box at the image's edge out of it).
    in_image = project_boxes_2d(boxes, dataset.calibration("0000"), dataset.image_size_px("0000")).in_image
    kept = boxes.select(np.flatnonzero(in_image & np.array([TO_KITTI[name] is not None for name in boxes.category_names.tolist()])))
    assert len(kept) >= 10
    order = np.argsort(back.center_m[:, 0])
    expected = kept.select(np.argsort(kept.center_m[:, 0]))
    np.testing.assert_allclose(back.center_m[order], expected.center_m, atol=1e-4)
    assert back.score is not None and expected.score is not None
    np.testing.assert_allclose(back.score[order], expected.score, atol=1e-5)


def test_track_then_evaluate_exact_detections(kitti: Path, tmp_path: Path) -> None:
    detections = _detections(kitti, "exact", OracleDetectorConfig())
    out = tmp_path / "tracks"
    result = runner.invoke(app, ["track", "--data", f"kitti-tracking:{kitti / 'data'}", "--detections", str(detections), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = read_tracking_rows(out / "0000.txt")
    assert rows and all(row.score is not None for row in rows)
    scores = tmp_path / "scores.json"
    evaluated = runner.invoke(app, ["evaluate", "tracking", "--data", f"kitti-tracking:{kitti / 'data'}", "--predictions", str(out), "--json", str(scores)])
    assert evaluated.exit_code == 0, evaluated.output
    figures = json.loads(scores.read_text())
    # Exact boxes: every labelled object tracked under one id from its first frame (AB3DMOT reports young logs' tracks).
    assert figures["MOTA"] > 0.98 and figures["IDSW"] == 0 and figures["HOTA"] > 0.95
    again = tmp_path / "again.json"
    direct = runner.invoke(app, ["evaluate", "tracking", "--data", f"kitti-tracking:{kitti / 'data'}", "--detections", str(detections), "--json", str(again)])
    assert direct.exit_code == 0, direct.output
    assert json.loads(again.read_text()) == figures


def test_a_sequence_without_poses_is_tracked_in_its_velodyne_frame(kitti: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(kitti / "data", data)
    shutil.rmtree(data / "training" / "oxts")
    assert not KittiTrackingDataset(data).has_poses("0000")
    detections = _detections(kitti, "noisy", OracleDetectorConfig(center_noise_m=0.1, seed=4))
    scores = tmp_path / "scores.json"
    result = runner.invoke(app, ["evaluate", "tracking", "--data", f"kitti-tracking:{data}", "--detections", str(detections), "--json", str(scores)])
    assert result.exit_code == 0, result.output
    assert json.loads(scores.read_text())["MOTA"] > 0.8


def test_bad_detection_file_is_one_line(kitti: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "0000.txt").write_text("0,2,1,2,3,4,0.5,1.5,1.6,3.9,1.0,1.6,10.0\n")
    result = runner.invoke(app, ["track", "--data", f"kitti-tracking:{kitti / 'data'}", "--detections", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == f"error: {bad / '0000.txt'}: line 1: expected 15 comma-separated fields, got 13"
    missing = runner.invoke(app, ["track", "--data", f"kitti-tracking:{kitti / 'data'}", "--detections", str(tmp_path / "none"), "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2 and str(tmp_path / "none") in missing.output


def test_track_av2_detection_feather(tmp_path: Path) -> None:
    root = tmp_path / "av2"
    write_synthetic_dataset("av2", root, logs=1, seconds=1.5, seed=8)
    from scenes.adapters.registry import open_dataset

    dataset = open_dataset(f"av2:{root}")
    (log_id,) = dataset.logs()
    frames = list(dataset.frames(log_id))
    # The boxes with LiDAR points (those the labels keep), as a perfect detector would give them.
    ground_truth = [(log_id, f.timestamp_ns, with_points(f.annotations)) for f in frames if f.annotations is not None]
    feather = write_table(tmp_path / "detections.feather", detections_table(ground_truth))
    out = tmp_path / "tracks"
    result = runner.invoke(app, ["track", "--data", f"av2:{root}", "--detections", str(feather), "--out", str(out)])
    assert result.exit_code == 0, result.output
    scores = tmp_path / "scores.json"
    evaluated = runner.invoke(app, ["evaluate", "tracking", "--data", f"av2:{root}", "--predictions", str(out / "tracks.pkl"), "--json", str(scores)])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(scores.read_text())["MOTA"] > 0.9


def test_track_the_real_av2_log_from_its_annotations(shared_data: Path, tmp_path: Path) -> None:
    """The real AV2 log (real poses and motion, 156 annotated timestamps) with its boxes as detections: the tracker for
    external detections keeps nearly every object under one identity."""
    from scenes.adapters.registry import open_dataset

    root = shared_data / "av2" / "sensor" / "val"
    dataset = open_dataset(f"av2:{root}")
    (log_id,) = dataset.logs()
    boxes = [(log_id, f.timestamp_ns, with_points(f.annotations)) for f in dataset.frames(log_id) if f.annotations is not None]
    feather = write_table(tmp_path / "annotations.feather", detections_table(boxes))
    scores = tmp_path / "scores.json"
    result = runner.invoke(app, ["evaluate", "tracking", "--data", f"av2:{root}", "--detections", str(feather), "--json", str(scores)])
    assert result.exit_code == 0, result.output
    figures = json.loads(scores.read_text())
    assert figures["MOTA"] > 0.95 and figures["REGULAR_VEHICLE/HOTA"] > 0.85


def test_evaluate_tracking_runs_the_shipped_detector_and_a_given_tracker(kitti: Path, tmp_path: Path) -> None:
    scores = tmp_path / "scores.json"
    data = f"kitti-tracking:{kitti / 'data'}"
    result = runner.invoke(app, ["evaluate", "tracking", "--data", data, "--checkpoint", "configs/tracking/ab3dmot.yaml", "--json", str(scores)])
    assert result.exit_code == 0, result.output
    figures = json.loads(scores.read_text())
    assert 0.0 <= figures["HOTA"] <= 1.0 and figures["MOTA"] <= 1.0
    both = runner.invoke(app, ["evaluate", "tracking", "--data", data, "--predictions", str(tmp_path), "--detections", str(tmp_path)])
    assert both.exit_code == 2 and "not both" in both.output


def test_detect_then_track_a_kitti_tracking_sequence(kitti: Path, tmp_path: Path) -> None:
    """`detect` writes the shipped detector's boxes as PointRCNN files, which `track` reads."""
    data = f"kitti-tracking:{kitti / 'data'}"
    detected = runner.invoke(app, ["detect", "--data", data, "--out", str(tmp_path / "dets")])
    assert detected.exit_code == 0, detected.output
    dataset = KittiTrackingDataset(kitti / "data")
    boxes = read_pointrcnn_detections(tmp_path / "dets" / "0000.txt", dataset.calibration("0000"))
    assert set(boxes) <= set(range(dataset.num_frames("0000")))
    tracked = runner.invoke(app, ["track", "--data", data, "--detections", str(tmp_path / "dets"), "--out", str(tmp_path / "tracks")])
    assert tracked.exit_code == 0, tracked.output
    assert (tmp_path / "tracks" / "0000.txt").is_file()


def test_detect_writes_kitti_object_result_files_for_the_real_frames(shared_data: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["detect", "--data", f"kitti-object:{shared_data / 'kitti' / 'object'}", "--out", str(tmp_path / "results")])
    assert result.exit_code == 0, result.output
    files = sorted(path.name for path in (tmp_path / "results").iterdir())
    assert files == ["000000.txt", "000001.txt", "000002.txt"]
    for path in (tmp_path / "results").iterdir():
        for line in path.read_text().splitlines():
            fields = line.split()
            assert len(fields) == 16 and fields[0] in ("Car", "Pedestrian", "Cyclist", "Truck", "Van")
            assert 0.0 <= float(fields[15]) <= 1.0


def test_detect_writes_an_av2_feather_that_evaluate_detection_scores(tmp_path: Path) -> None:
    root = tmp_path / "av2"
    write_synthetic_dataset("av2", root, logs=1, seconds=1.0, seed=9)
    feather = tmp_path / "detections.feather"
    detected = runner.invoke(app, ["detect", "--data", f"av2:{root}", "--out", str(feather)])
    assert detected.exit_code == 0, detected.output
    from_file, from_model = tmp_path / "file.json", tmp_path / "model.json"
    scored = runner.invoke(app, ["evaluate", "detection", "--data", f"av2:{root}", "--predictions", str(feather), "--json", str(from_file)])
    assert scored.exit_code == 0, scored.output
    again = runner.invoke(app, ["evaluate", "detection", "--data", f"av2:{root}", "--json", str(from_model)])
    assert again.exit_code == 0, again.output
    assert json.loads(from_file.read_text())["mAP"] == pytest.approx(json.loads(from_model.read_text())["mAP"])


def test_finetune_tracking_on_detections_made_elsewhere(kitti: Path, tmp_path: Path) -> None:
    """The refit reads PointRCNN files of a KITTI tracking sequence and measures their 0.3 m centre noise."""
    detections = _detections(kitti, "refit", OracleDetectorConfig(center_noise_m=0.3, seed=6))
    out = tmp_path / "refit"
    result = runner.invoke(app, ["finetune", "tracking", "--data", f"kitti-tracking:{kitti / 'data'}", "--detections", str(detections), "--out", str(out)])
    assert result.exit_code == 0, result.output
    from perception.tracking.tracker import Tracker

    assert Tracker.from_checkpoint(out / "tracker.pt").cfg.noise.position_m == pytest.approx(0.3, rel=0.3)
    synth = runner.invoke(app, ["finetune", "tracking", "--detections", str(detections), "--out", str(tmp_path / "x")])
    assert synth.exit_code == 2 and "give the dataset they were made on" in synth.output


@pytest.mark.parametrize("command", [["track"], ["finetune", "tracking"]])
def test_detections_beyond_the_sequence_are_one_line(kitti: Path, tmp_path: Path, command: list[str]) -> None:
    """Both readers of external KITTI detections reject a frame the sequence does not have, naming the file."""
    detections = shutil.copytree(_detections(kitti, "late", OracleDetectorConfig(seed=8)), tmp_path / "late")
    path = detections / "0000.txt"
    last = path.read_text().splitlines()[-1].split(",")
    count = KittiTrackingDataset(kitti / "data").num_frames("0000")
    path.write_text(path.read_text() + ",".join([str(count + 5), *last[1:]]) + "\n")
    result = runner.invoke(app, [*command, "--data", f"kitti-tracking:{kitti / 'data'}", "--detections", str(detections), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == f"error: {path}: frame {count + 5} is beyond the sequence's {count} frames"
