"""KITTI tracking results and detections: 2D projection by hand, result round trip, the PointRCNN and label readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenes.adapters.base import AdapterError
from scenes.adapters.kitti import labels_to_boxes, read_labels
from scenes.adapters.kitti_tracking import (
    KittiTrackingCalibration,
    LabelLine,
    labels_by_frame,
    read_numbered_tracking_rows,
    read_tracking_calibration,
    read_tracking_rows,
    row_label,
)
from scenes.categories import CATEGORY_ID
from scenes.ego_frame import KITTI_EGO
from scenes.records import Boxes3D
from scenes.submissions.kitti_tracking import (
    KittiTrackingFormatError,
    project_boxes_2d,
    read_detection_dir,
    read_kitti_detections,
    track_numbers,
    tracking_lines,
    write_tracking_results,
)

# Velodyne -> camera 0 without a lever arm (x_cam = -y, y_cam = -z, z_cam = x); P2 = K [I | 0], a 100 x 80 image.
VELO_TO_CAM = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
P2 = np.array([[100.0, 0.0, 50.0, 0.0], [0.0, 100.0, 40.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
CALIB = KittiTrackingCalibration.from_matrices(Path("calib.txt"), P2, np.eye(3), VELO_TO_CAM)
SIZE = (100, 80)
CAR, PEDESTRIAN, DOG = CATEGORY_ID["REGULAR_VEHICLE"], CATEGORY_ID["PEDESTRIAN"], CATEGORY_ID["DOG"]


def velodyne_to_ego(points: list[list[float]]) -> np.ndarray:
    return KITTI_EGO.points_to_ego(np.array(points, dtype=np.float64))


def ids(boxes: Boxes3D) -> list[str]:
    assert boxes.track_id is not None
    return boxes.track_id.tolist()


def scores(boxes: Boxes3D) -> np.ndarray:
    assert boxes.score is not None  # Boxes3D fills a missing score with ones
    return boxes.score


def cubes(centers: list[list[float]], categories: list[int] | None = None, track_ids: list[str] | None = None) -> Boxes3D:
    """2 m cubes (yaw 0) at `centers` in the Velodyne frame, as ego-frame boxes (KITTI's ego is 1.73 m lower)."""
    count = len(centers)
    return Boxes3D(
        velodyne_to_ego(centers),
        np.full((count, 3), 2.0),
        np.zeros(count),
        np.array(categories or [CAR] * count),
        score=np.linspace(0.9, 0.5, count).astype(np.float32),
        track_id=None if track_ids is None else np.array(track_ids),
    )


def test_projection_by_hand() -> None:
    projected = project_boxes_2d(cubes([[10, 0, 0], [10, -5, 0], [0.5, 0, 0], [-10, 0, 0], [10, 30, 0]]), CALIB, SIZE)
    # Ahead: camera x, y in [-1, 1], z in [9, 11] -> u = 50 + 100 x / z, v = 40 + 100 y / z.
    np.testing.assert_allclose(projected.bbox_ltrb_px[0], [50 - 100 / 9, 40 - 100 / 9, 50 + 100 / 9, 40 + 100 / 9])
    # Right of the image edge: x in [4, 6] -> u in [50 + 400 / 11, 50 + 600 / 9], clipped at 99.
    u_min, u_max = 50 + 400 / 11, 50 + 600 / 9
    np.testing.assert_allclose(projected.bbox_ltrb_px[1], [u_min, 40 - 100 / 9, 99.0, 40 + 100 / 9])
    # Straddling the near plane (z in [-0.5, 1.5]): the edges cross z = 0.1 at x, y = +-1 -> u in [-950, 1050],
    # v in [-960, 1040]; the clipped box is the whole image.
    np.testing.assert_allclose(projected.bbox_ltrb_px[2], [0.0, 0.0, 99.0, 79.0])
    assert projected.in_image.tolist() == [True, True, True, False, False]
    np.testing.assert_allclose(projected.truncation[:3], [0.0, 1 - (99 - u_min) / (u_max - u_min), 1 - 99 * 79 / 2000**2])
    np.testing.assert_allclose(projected.truncation[3:], 1.0)
    assert project_boxes_2d(Boxes3D.empty(), CALIB, SIZE).bbox_ltrb_px.shape == (0, 4)


@settings(max_examples=80, deadline=None)
@given(
    center=st.tuples(st.floats(-20, 40), st.floats(-30, 30), st.floats(-3, 3)),
    size=st.tuples(st.floats(0.3, 10.0), st.floats(0.3, 3.0), st.floats(0.3, 4.0)),
    yaw=st.floats(-np.pi, np.pi),
)
def test_projection_contains_every_visible_corner(center, size, yaw) -> None:
    """Corners in front of the near plane that land in the image lie inside the 2D box; none land in a box not in it."""
    boxes = Boxes3D(np.array([center]), np.array([size]), np.array([yaw]), np.array([CAR]))
    projected = project_boxes_2d(boxes, CALIB, SIZE)
    corners = CALIB.rect_SE3_ego.transform_points(boxes.corners()[0])
    front = corners[corners[:, 2] > 0.1]
    uv = front[:, :2] / front[:, 2:] * 100.0 + [50.0, 40.0]
    inside = uv[(uv[:, 0] >= 0) & (uv[:, 0] <= 99) & (uv[:, 1] >= 0) & (uv[:, 1] <= 79)]
    x1, y1, x2, y2 = projected.bbox_ltrb_px[0]
    assert 0 <= x1 <= x2 <= 99 and 0 <= y1 <= y2 <= 79 and 0 <= projected.truncation[0] <= 1
    if projected.in_image[0]:
        assert np.all((inside[:, 0] >= x1 - 1e-6) & (inside[:, 0] <= x2 + 1e-6) & (inside[:, 1] >= y1 - 1e-6) & (inside[:, 1] <= y2 + 1e-6))
    else:
        assert not np.any((inside[:, 0] > 0) & (inside[:, 0] < 99) & (inside[:, 1] > 0) & (inside[:, 1] < 79))


def test_track_numbers_keep_numeric_ids() -> None:
    frames = [cubes([[10, 0, 0]] * 3, track_ids=["2", "a", "0"]), cubes([[10, 0, 0]] * 3, track_ids=["b", "007", "a"])]
    assert track_numbers(frames) == {"2": 2, "a": 1, "0": 0, "b": 3, "007": 4}
    with pytest.raises(KittiTrackingFormatError, match="without track ids"):
        track_numbers([cubes([[10, 0, 0]])])


def test_results_round_trip(tmp_path: Path) -> None:
    first = cubes([[10, 0, 0], [12, -3, 0.5], [10, 1, 0], [-10, 0, 0]], [CAR, PEDESTRIAN, DOG, CAR], ["7", "ped-b", "dog", "behind"])
    second = cubes([[11, 0.5, 0]], [CAR], ["car-a"])
    path = write_tracking_results(tmp_path / "results" / "0003.txt", [(4, second), (0, first)], CALIB, SIZE)
    rows = read_tracking_rows(path)
    # The dog has no KITTI class and the box behind the camera is not in the image; frames in index order, string
    # ids numbered in that order around the numeric id 7 ("behind" and "dog" take 1 and 2).
    assert [(row.frame, row.track_id, row.kind) for row in rows] == [(0, 7, "Car"), (0, 0, "Pedestrian"), (4, 3, "Car")]
    assert all(row.truncated == 0 and row.occluded == 0 for row in rows)
    np.testing.assert_allclose([row.score or 0.0 for row in rows], [0.9, 0.7666667, 0.9], atol=1e-6)
    np.testing.assert_allclose(rows[0].bbox_ltrb_px, [50 - 100 / 9, 40 - 100 / 9, 50 + 100 / 9, 40 + 100 / 9], atol=0.005)
    # Pedestrian at camera (3, -0.5, 12) (bottom at y = 0.5): alpha = ry - atan2(x, z) with ry = -pi/2 (yaw 0).
    np.testing.assert_allclose(rows[1].location_cam_m, [3.0, 0.5, 12.0], atol=1e-6)
    assert rows[1].alpha_rad == pytest.approx(-np.pi / 2 - np.arctan2(3.0, 12.0), abs=1e-6)
    lines = [LabelLine(number, row.frame, row_label(row), row.track_id) for number, row in read_numbered_tracking_rows(path)]
    boxes = labels_by_frame(path, lines, CALIB.rect_SE3_ego, with_tracks=True)
    assert sorted(boxes) == [0, 4] and ids(boxes[0]) == ["7", "0"] and ids(boxes[4]) == ["3"]
    np.testing.assert_allclose(boxes[0].center_m, first.center_m[:2], atol=1e-6)
    np.testing.assert_allclose(boxes[4].center_m, second.center_m, atol=1e-6)
    np.testing.assert_allclose(np.cos(boxes[0].yaw_rad), 1.0, atol=1e-6)
    np.testing.assert_allclose(scores(boxes[0]), [0.9, 0.7666667], atol=1e-6)
    assert boxes[0].category.tolist() == [CAR, PEDESTRIAN]
    assert len(path.read_text().splitlines()[0].split()) == 18


def test_result_writer_errors(tmp_path: Path) -> None:
    with pytest.raises(KittiTrackingFormatError, match=r"0000.txt: frame\(s\) \[1\] given more than once"):
        write_tracking_results(tmp_path / "0000.txt", [(1, cubes([[10, 0, 0]], track_ids=["a"]))] * 2, CALIB, SIZE)
    with pytest.raises(KittiTrackingFormatError, match="0000.txt: boxes without track ids"):
        write_tracking_results(tmp_path / "0000.txt", [(0, cubes([[10, 0, 0]]))], CALIB, SIZE)
    city = cubes([[10, 0, 0]], track_ids=["a"]).transformed(CALIB.rect_SE3_ego.identity(), "city")
    with pytest.raises(KittiTrackingFormatError, match="0000.txt: frame 0: expected ego-frame"):
        write_tracking_results(tmp_path / "0000.txt", [(0, city)], CALIB, SIZE)
    with pytest.raises(KittiTrackingFormatError, match="frame 2: track 'a' has no track number"):
        tracking_lines(2, cubes([[10, 0, 0]], track_ids=["a"]), CALIB, SIZE, {})
    assert not (tmp_path / "0000.txt").exists()


def test_pointrcnn_detections(tmp_path: Path) -> None:
    path = tmp_path / "0000.txt"
    path.write_text(
        "0,2,296.0,161.7,455.2,292.5,0.0,1.5,1.6,3.9,1.0,1.5,10.0,0.0,-0.1\n\n"
        "3, 1, 1, 2, 3, 4, 2.0, 1.8, 0.6, 0.8, -2.0, 1.6, 20.0, 1.5707963267948966, 1.67\n"
    )
    detections = read_kitti_detections(path, CALIB)
    assert sorted(detections) == [0, 3]
    car, pedestrian = detections[0], detections[3]
    # Bottom (1, 1.5, 10) in camera 0, h = 1.5 -> centre (1, 0.75, 10) -> Velodyne (10, -1, -0.75).
    np.testing.assert_allclose(car.center_m, velodyne_to_ego([[10.0, -1.0, -0.75]]), atol=1e-12)
    np.testing.assert_allclose(car.size_lwh_m, [[3.9, 1.6, 1.5]])
    np.testing.assert_allclose([np.cos(car.yaw_rad[0]), np.sin(car.yaw_rad[0])], [0.0, -1.0], atol=1e-12)
    assert scores(car).tolist() == [0.5] and car.track_id is None and car.category.tolist() == [CAR]
    np.testing.assert_allclose(pedestrian.center_m, velodyne_to_ego([[20.0, 2.0, -0.7]]), atol=1e-12)
    assert scores(pedestrian)[0] == pytest.approx(1 / (1 + np.exp(-2.0))) and pedestrian.category.tolist() == [PEDESTRIAN]


def test_tracking_format_detections_and_directory(tmp_path: Path) -> None:
    (tmp_path / "0001.txt").write_text(
        "2 -1 Car 0 0 0 1 2 3 4 1.5 1.6 3.9 1.0 1.5 10.0 0.0\n2 -1 Cyclist 0 0 0 1 2 3 4 1.7 0.6 1.8 0.0 1.7 8.0 0.0 0.25\n"
        "5 -1 DontCare -1 -1 -10 1 2 3 4 -1 -1 -1 -1000 -1000 -1000 -10\n"
    )
    (tmp_path / "0002.txt").write_text("")
    detections = read_detection_dir(tmp_path, ["0001", "0002"], {"0001": CALIB, "0002": CALIB})
    assert sorted(detections) == ["0001", "0002"] and detections["0002"] == {}
    boxes = detections["0001"]
    assert sorted(boxes) == [2, 5] and len(boxes[5]) == 0
    np.testing.assert_allclose(scores(boxes[2]), [1.0, 0.25])
    np.testing.assert_allclose(boxes[2].center_m[1], velodyne_to_ego([[8.0, 0.0, -0.85]])[0], atol=1e-12)
    assert boxes[2].category_names.tolist() == ["REGULAR_VEHICLE", "BICYCLIST"] and boxes[2].track_id is None
    with pytest.raises(AdapterError, match="0003.txt: detection file of sequence 0003 not found"):
        read_detection_dir(tmp_path, ["0001", "0003"], {"0001": CALIB, "0003": CALIB})
    with pytest.raises(AdapterError, match="0002.txt: no calibration given for sequence 0002"):
        read_detection_dir(tmp_path, ["0002"], {})


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0,2,1,2,3,4,0.5,1.5,1.6,3.9,1.0,1.5,10.0,0.0\n", "line 1: expected 15 comma-separated fields, got 14"),
        ("0,4,1,2,3,4,0.5,1.5,1.6,3.9,1.0,1.5,10.0,0.0,0.1\n", r"line 1: field 'type' must be one of 1 \(Pedestrian\), 2 \(Car\), 3 \(Cyclist\), got 4"),
        (
            "0,2,1,2,3,4,0.5,1.5,1.6,3.9,1.0,1.5,10.0,0.0,0.1\n1,2,1,2,3,4,high,1.5,1.6,3.9,1.0,1.5,10.0,0.0,0.1\n",
            "line 2: field 'score' is not a number: 'high'",
        ),
        ("-1,2,1,2,3,4,0.5,1.5,1.6,3.9,1.0,1.5,10.0,0.0,0.1\n", "line 1: field 'frame' is negative: -1"),
        ("0,2,1,2,3,4,0.5,1.5,-1.6,3.9,1.0,1.5,10.0,0.0,0.1\n", "line 1: field 'w' must be positive, got -1.6"),
        (
            "0,2,1,2,3,4,0.5,1.5,1.6,3.9,1.0,1.5,10.0,0.0,0.1\n1 -1 Car 0 0 0 1 2 3 4 1.5 1.6 3.9 1.0 1.5 10.0 0.0\n",
            "line 2: expected 15 comma-separated fields, got 1",
        ),
        ("0 -1 Car 0 0 0 1 2 3 4 1.5 1.6 3.9 1.0 1.5 10.0\n", "line 1: expected 17 or 18 fields, got 16"),
    ],
)
def test_bad_detection_lines(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "0007.txt"
    path.write_text(text)
    with pytest.raises(AdapterError, match=f"0007.txt: {problem}"):
        read_kitti_detections(path, CALIB)


@pytest.mark.real
def test_projection_matches_real_kitti_labels(shared_data: Path) -> None:
    """Real KITTI object frames: the projected 3D labels reproduce the annotated 2D boxes of vehicles within a pixel."""
    root = shared_data / "kitti" / "object" / "training"
    compared = 0
    for frame in ("000000", "000001", "000002"):
        calib = read_tracking_calibration(root / "calib" / f"{frame}.txt")  # the object benchmark's key names
        labels = [label for label in read_labels(root / "label_2" / f"{frame}.txt") if label.kind in ("Car", "Truck", "Cyclist")]
        boxes = labels_to_boxes(root / "label_2" / f"{frame}.txt", labels, calib.rect_SE3_ego)
        projected = project_boxes_2d(boxes, calib, (1242, 375))
        assert projected.in_image.all()
        np.testing.assert_allclose(projected.bbox_ltrb_px, np.reshape([label.bbox_ltrb_px for label in labels], (-1, 4)), atol=1.0)
        compared += len(labels)
    assert compared == 4
