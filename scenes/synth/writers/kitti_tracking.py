"""KITTI tracking writer: a simulated log -> one sequence of the KITTI tracking benchmark, as `kitti-tracking:PATH` reads it.

`<base>/<split_dir>/` receives, for sequence SEQ (4 digits):

- `velodyne/SEQ/NNNNNN.bin`: the scan in the Velodyne (= simulated LiDAR) frame, float32 x, y, z, reflectance;
- `image_02/SEQ/NNNNNN.png`: the left camera (`kitti.stereo_pair`);
- `calib/SEQ.txt`: camera 0 coincides with the left camera, so `R_rect` is the identity and `P0 = P2 = [K | 0]`;
  `P1 = P3 = [K | -fx * baseline]` with the log's stereo baseline, KITTI's 0.54 m without a right camera;
  `Tr_velo_cam` (Velodyne -> camera 0) and `Tr_imu_velo` (IMU = ego -> Velodyne) in the tracking files' no-colon form;
- `oxts/SEQ.txt`: one OXTS packet per frame (`kitti.oxts_packets`);
- `label_02/SEQ.txt`: every annotated object that projects into image_02 (near-plane clipped 2D box overlapping the
  image, `scenes.submissions.kitti_tracking.project_boxes_2d`) and has a KITTI class, with its track id as a stable
  int (`track_numbers`), truncation = fraction of its 2D box outside the image, occlusion 0, 6-decimal geometry.

The image and velodyne folders of the sequence are staged and renamed into place when complete, then the text files
are written atomically, the label file last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from scenes.adapters.kitti_tracking import KittiTrackingCalibration, format_tracking_row
from scenes.categories import TO_KITTI
from scenes.ego_frame import KITTI_EGO
from scenes.io import atomic_write_bytes, atomic_write_text
from scenes.records import Boxes3D
from scenes.submissions.kitti_tracking import project_boxes_2d, track_numbers, tracking_rows
from scenes.synth.camera import KITTI_BASELINE_M
from scenes.synth.writers.common import FrameCallback, SimulatedLog, WriterError, check_log, lidar_sensor_name, staged_directory, write_png
from scenes.synth.writers.kitti import _oxts_line, oxts_packets, stereo_pair

__all__ = ["write_kitti_tracking_sequence"]

MAX_SEQUENCE: Final = 9999


def _calib_line(key: str, values: npt.ArrayLike, *, colon: bool) -> str:
    return f"{key}{':' if colon else ''} " + " ".join(f"{float(v):.12e}" for v in np.asarray(values).reshape(-1)) + "\n"


def _calibration(path: Path, log: SimulatedLog, left: str, right: str | None, intrinsics: np.ndarray) -> tuple[str, KittiTrackingCalibration]:
    """The text of the calibration file `path` and the calibration the adapter reads from it."""
    lidar = log.ego_SE3_sensors[lidar_sensor_name(log)]
    left_pose = log.ego_SE3_sensors[left]
    cam0_SE3_velo = left_pose.inverse().compose(lidar)
    baseline = KITTI_BASELINE_M
    if right is not None:
        baseline = float(left_pose.inverse().transform_points(log.ego_SE3_sensors[right].translation[None])[0, 0])
    p_left = np.column_stack([intrinsics, np.zeros(3)])
    p_right = np.column_stack([intrinsics, [-intrinsics[0, 0] * baseline, 0.0, 0.0]])
    velo_to_cam = cam0_SE3_velo.as_matrix()[:3]
    imu_to_velo = lidar.inverse().as_matrix()[:3]
    text = "".join(
        [
            *(_calib_line(f"P{index}", projection, colon=True) for index, projection in enumerate((p_left, p_right, p_left, p_right))),
            _calib_line("R_rect", np.eye(3), colon=False),
            _calib_line("Tr_velo_cam", velo_to_cam, colon=False),
            _calib_line("Tr_imu_velo", imu_to_velo, colon=False),
        ]
    )
    calibration = KittiTrackingCalibration.from_matrices(path, p_left, np.eye(3), velo_to_cam, imu_to_velo)
    return text, calibration


def _label_text(log: SimulatedLog, calibration: KittiTrackingCalibration, image_size_px: tuple[int, int]) -> str:
    # The simulated ego frame -> KITTI's ego frame (1.73 m below the Velodyne), which the calibration maps from.
    kitti_SE3_ego = KITTI_EGO.ego_SE3_dataset.compose(log.ego_SE3_sensors[lidar_sensor_name(log)].inverse())
    visible: list[Boxes3D] = []
    for index, frame in enumerate(log.frames):
        if frame.annotations is None:
            visible.append(Boxes3D.empty(with_tracks=True))
            continue
        if frame.annotations.track_id is None:
            raise WriterError(f"SynthLog.frames[{index}].annotations of log {log.log_id}: KITTI tracking labels need track ids")
        boxes = frame.annotations.transformed(kitti_SE3_ego, "ego")
        has_class = np.array([TO_KITTI[name] is not None for name in boxes.category_names.tolist()], dtype=bool)
        visible.append(boxes.select(has_class & project_boxes_2d(boxes, calibration, image_size_px).in_image))
    numbers = track_numbers(visible)
    rows = [row for index, boxes in enumerate(visible) for row in tracking_rows(index, boxes, calibration, image_size_px, numbers, label=True)]
    return "".join(f"{format_tracking_row(row)}\n" for row in rows)


def write_kitti_tracking_sequence(
    log: SimulatedLog, base_dir: Path, *, sequence: int, split_dir: str = "training", on_frame: FrameCallback | None = None
) -> Path:
    """Writes `log` as sequence `sequence` of `<base_dir>/<split_dir>/` and returns its label file (written last)."""
    check_log(log)
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise WriterError(f"sequence: must lie in [0, {MAX_SEQUENCE}], got {sequence}")
    if not split_dir or "/" in split_dir or split_dir in (".", ".."):
        raise WriterError(f"split_dir: {split_dir!r} is not a usable directory name")
    left, right = stereo_pair(log)
    for index, frame in enumerate(log.frames):
        if frame.lidar is None or left not in frame.cameras:
            raise WriterError(f"SynthLog.frames[{index}] of log {log.log_id}: KITTI tracking sequences need the LiDAR and camera {left!r} in every frame")
    root = Path(base_dir) / split_dir
    name = f"{sequence:04d}"
    first_camera = log.frames[0].cameras[left]
    image_size_px = (first_camera.width_px, first_camera.height_px)
    calib_path = root / "calib" / f"{name}.txt"
    calib_text, calibration = _calibration(calib_path, log, left, right, first_camera.intrinsics)
    label_text = _label_text(log, calibration, image_size_px)
    lidar_SE3_ego = log.ego_SE3_sensors[lidar_sensor_name(log)].inverse()
    with staged_directory(root / "velodyne" / name) as velodyne_dir, staged_directory(root / "image_02" / name) as image_dir:
        for index, frame in enumerate(log.frames):
            sweep = frame.lidar
            assert sweep is not None  # checked above
            points = lidar_SE3_ego.transform_points(sweep.points_xyz_m)
            atomic_write_bytes(velodyne_dir / f"{index:06d}.bin", np.column_stack([points, sweep.intensity]).astype("<f4").tobytes())
            write_png(image_dir / f"{index:06d}.png", frame.cameras[left].image)
            if on_frame is not None:
                on_frame()
    atomic_write_text(calib_path, calib_text)
    atomic_write_text(root / "oxts" / f"{name}.txt", "".join(_oxts_line(packet) for packet in oxts_packets(log.frames)))
    label_path = root / "label_02" / f"{name}.txt"
    atomic_write_text(label_path, label_text)
    return label_path
