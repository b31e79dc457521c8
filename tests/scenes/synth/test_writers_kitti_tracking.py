"""KITTI tracking writer: a simulated log written as a tracking sequence and read back with `kitti-tracking:PATH`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from scenes.adapters.kitti_tracking import KittiTrackingDataset, read_tracking_rows
from scenes.adapters.registry import open_dataset
from scenes.categories import TO_KITTI, category_id, from_kitti
from scenes.ego_frame import KITTI_EGO
from scenes.records import Boxes3D, Frame
from scenes.synth.camera import KITTI_BASELINE_M
from scenes.synth.world import SynthConfig, SynthLog, simulate_log
from scenes.synth.writers import export
from scenes.synth.writers.common import STAGING_MARK, WriterError
from scenes.synth.writers.export import write_synthetic_dataset
from scenes.synth.writers.kitti_tracking import write_kitti_tracking_sequence


def labels_of(frame: Frame) -> Boxes3D:
    assert frame.annotations is not None and frame.annotations.track_id is not None
    return frame.annotations


def ids(boxes: Boxes3D) -> list[str]:
    assert boxes.track_id is not None
    return boxes.track_id.tolist()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthLog, KittiTrackingDataset]:
    """One 1.5 s log written by `write_synthetic_dataset`, and the simulated log it wrote (kept, not simulated twice)."""
    out = tmp_path_factory.mktemp("kitti_tracking")
    simulated: list[SynthLog] = []

    def keep(config: SynthConfig, seed: int, index: int) -> SynthLog:
        simulated.append(simulate_log(config, seed, index))
        return simulated[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(export, "simulate_log", keep)
        assert write_synthetic_dataset("kitti-tracking", out, logs=1, seconds=1.5) == [out / "training" / "label_02" / "0000.txt"]
    (log,) = simulated
    assert log.ego_SE3_sensors.keys() == {"up_lidar", "kitti_left"}
    dataset = open_dataset(f"kitti-tracking:{out}", with_image=True)
    assert isinstance(dataset, KittiTrackingDataset)
    return log, dataset


def test_frames_poses_scans_and_camera(written: tuple[SynthLog, KittiTrackingDataset]) -> None:
    log, dataset = written
    assert dataset.logs() == ["0000"] and dataset.has_poses("0000") and dataset.image_size_px("0000") == (640, 192)
    ego_SE3_velo = log.ego_SE3_sensors["up_lidar"].compose(KITTI_EGO.dataset_SE3_ego)  # KITTI's ego frame
    first_SE3_city = log.frames[0].city_SE3_ego.compose(ego_SE3_velo).inverse()
    frames = list(dataset.frames("0000"))
    assert [frame.timestamp_ns for frame in frames] == [index * 100_000_000 for index in range(len(log.frames))] and len(frames) == 15
    for read, simulated in zip(frames, log.frames, strict=True):
        expected = first_SE3_city.compose(simulated.city_SE3_ego).compose(ego_SE3_velo)
        np.testing.assert_allclose(read.city_SE3_ego.translation, expected.translation, atol=1e-3)
        np.testing.assert_allclose(read.city_SE3_ego.rotation, expected.rotation, atol=1e-6)
        assert read.lidar is not None and simulated.lidar is not None
        np.testing.assert_allclose(read.lidar.points_xyz_m, ego_SE3_velo.inverse().transform_points(simulated.lidar.points_xyz_m), atol=1e-5)
        camera, truth = read.cameras["image_02"], simulated.cameras["kitti_left"]
        np.testing.assert_array_equal(camera.image, truth.image)
        np.testing.assert_allclose(camera.intrinsics, truth.intrinsics)
        assert camera.ego_SE3_camera.allclose(ego_SE3_velo.inverse().compose(truth.ego_SE3_camera), atol=1e-9)
    assert np.linalg.norm(frames[-1].city_SE3_ego.translation) > 1.0  # the ego moved
    calib = dataset.split_dir / "calib" / "0000.txt"
    p3 = np.array(calib.read_text().splitlines()[3].split()[1:], dtype=float).reshape(3, 4)
    assert p3[0, 3] == pytest.approx(-p3[0, 0] * KITTI_BASELINE_M)
    assert [line.split()[0] for line in calib.read_text().splitlines()[4:]] == ["R_rect", "Tr_velo_cam", "Tr_imu_velo"]


def test_labels_are_the_simulated_boxes_in_the_image(written: tuple[SynthLog, KittiTrackingDataset]) -> None:
    log, dataset = written
    velo_SE3_ego = KITTI_EGO.ego_SE3_dataset.compose(log.ego_SE3_sensors["up_lidar"].inverse())  # to KITTI's ego frame
    camera_SE3_ego = log.ego_SE3_sensors["kitti_left"].inverse()
    identity: dict[str, str] = {}
    for index, frame in enumerate(dataset.frames("0000")):
        truth_ego = labels_of(log.frames[index])
        truth, read = truth_ego.transformed(velo_SE3_ego, "ego"), labels_of(frame)
        truth_ids, read_ids = ids(truth), ids(read)
        for row in range(len(read)):
            match = int(np.argmin(np.linalg.norm(truth.center_m - read.center_m[row], axis=1)))
            np.testing.assert_allclose(read.center_m[row], truth.center_m[match], atol=1e-3)
            np.testing.assert_allclose(read.size_lwh_m[row], truth.size_lwh_m[match], atol=1e-5)
            assert abs(np.sin(read.yaw_rad[row] - truth.yaw_rad[match])) < 1e-5 and np.cos(read.yaw_rad[row] - truth.yaw_rad[match]) > 0
            kitti = TO_KITTI[str(truth.category_names[match])]
            assert kitti is not None and read.category[row] == category_id(str(from_kitti(kitti)))
            # One KITTI id per simulated track, and the other way round.
            assert identity.setdefault(read_ids[row], truth_ids[match]) == truth_ids[match]
        # Every box whose centre is 1 m or more ahead of the camera and projects well inside the image is labelled.
        centers = camera_SE3_ego.transform_points(truth_ego.center_m)
        intrinsics = log.frames[index].cameras["kitti_left"].intrinsics
        uv = centers[:, :2] / np.maximum(centers[:, 2:], 1e-9) @ intrinsics[:2, :2].T + intrinsics[:2, 2]
        has_class = np.array([TO_KITTI[name] is not None for name in truth.category_names.tolist()], dtype=bool)
        visible = has_class & (centers[:, 2] > 1.0) & (uv[:, 0] > 5) & (uv[:, 0] < 634) & (uv[:, 1] > 5) & (uv[:, 1] < 186)
        assert {truth_ids[i] for i in np.flatnonzero(visible)} <= {identity[track] for track in read_ids}
    assert len(set(identity.values())) == len(identity) >= 3
    rows = read_tracking_rows(dataset.label_path("0000"))
    assert all(0 <= row.truncated <= 1 and row.occluded == 0 and row.score is None for row in rows)
    assert all(0 <= row.bbox_ltrb_px[0] < row.bbox_ltrb_px[2] <= 639 and 0 <= row.bbox_ltrb_px[1] < row.bbox_ltrb_px[3] <= 191 for row in rows)
    assert any(row.truncated > 0 for row in rows) and any(row.truncated == 0 for row in rows)


def test_bad_arguments_and_nothing_staged_left(written: tuple[SynthLog, KittiTrackingDataset], tmp_path: Path) -> None:
    log, dataset = written
    assert not [path for path in dataset.split_dir.rglob("*") if STAGING_MARK in path.name or path.name.endswith(".tmp")]
    short = replace(log, frames=log.frames[:2])
    with pytest.raises(WriterError, match="sequence: must lie in"):
        write_kitti_tracking_sequence(short, tmp_path, sequence=10_000)
    no_lidar = replace(short, frames=(short.frames[0], replace(short.frames[1], lidar=None)))
    with pytest.raises(WriterError, match=r"SynthLog.frames\[1\] of log .*: KITTI tracking sequences need the LiDAR"):
        write_kitti_tracking_sequence(no_lidar, tmp_path, sequence=0)
    assert not (tmp_path / "training" / "label_02").exists() and not list((tmp_path / "training").rglob("*.bin"))
    calls: list[None] = []
    label = write_kitti_tracking_sequence(short, tmp_path, sequence=12, split_dir="testing", on_frame=lambda: calls.append(None))
    assert label == tmp_path / "testing" / "label_02" / "0012.txt" and len(calls) == 2
    assert KittiTrackingDataset(tmp_path, split="testing").num_frames("0012") == 2


def test_synth_cli_writes_sequences(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["synth", "--format", "kitti-tracking", "--logs", "2", "--seconds", "0.2", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    dataset = open_dataset(f"kitti-tracking:{tmp_path / 'out'}")
    assert isinstance(dataset, KittiTrackingDataset)
    assert dataset.logs() == ["0000", "0001"] and dataset.split_dir == tmp_path / "out" / "training"
    for log_id in dataset.logs():
        frames = list(dataset.frames(log_id))
        assert len(frames) == 2 and all(frame.lidar is not None and len(frame.lidar) > 1000 for frame in frames)


def test_stereo_baseline_and_interrupted_rewrite(handmade_log: SynthLog, tmp_path: Path, tree_digest: Callable[[Path], dict[str, str]]) -> None:
    """A rewrite stopped mid-sequence leaves the previous sequence whole; a stereo rig's baseline goes into P1/P3."""
    write_kitti_tracking_sequence(handmade_log, tmp_path, sequence=3)
    before = tree_digest(tmp_path)
    p3 = np.array((tmp_path / "training" / "calib" / "0003.txt").read_text().splitlines()[3].split()[1:], dtype=float)
    assert p3[3] == pytest.approx(-30.0 * 0.5)  # fx 30 px, the fixture's cameras 0.5 m apart
    dataset = KittiTrackingDataset(tmp_path)
    assert dataset.num_frames("0003") == len(handmade_log.frames) and dataset.image_size_px("0003") == (40, 24)
    # The cone has no KITTI class: only the car and the pedestrian are labelled.
    assert {row.kind for row in read_tracking_rows(dataset.label_path("0003"))} == {"Car", "Pedestrian"}

    def stop() -> None:
        raise KeyboardInterrupt

    moved = replace(handmade_log, frames=tuple(replace(frame, city_SE3_ego=frame.city_SE3_ego.compose(frame.city_SE3_ego)) for frame in handmade_log.frames))
    with pytest.raises(KeyboardInterrupt):
        write_kitti_tracking_sequence(moved, tmp_path, sequence=3, on_frame=stop)
    assert tree_digest(tmp_path) == before
    assert not [path for path in tmp_path.rglob("*") if STAGING_MARK in path.name]
