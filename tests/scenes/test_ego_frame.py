"""The canonical ego frame and each dataset's: hand-computed lifts, and exact round trips."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scenes.ego_frame import AV2_EGO, KITTI_EGO, NUSCENES_EGO, EgoConvention
from scenes.geometry import SE3
from scenes.records import Boxes3D, LidarSweep

finite = st.floats(-1e3, 1e3, allow_nan=False)


def test_heights_by_hand() -> None:
    assert (AV2_EGO.origin_height_m, KITTI_EGO.origin_height_m, NUSCENES_EGO.origin_height_m) == (0.33, 1.73, 0.0)
    # A KITTI return on the road, 1.73 m below the Velodyne, is at height 0 in the records.
    np.testing.assert_allclose(KITTI_EGO.points_to_ego(np.array([[10.0, 2.0, -1.73]])), [[10.0, 2.0, 0.0]])
    # AV2's rear axle at (5, 0, 10.33) in the city puts the records' ego origin at (5, 0, 10) ...
    city_SE3_axle = SE3.from_yaw(0.5, (5.0, 0.0, 10.33))
    city_SE3_ego = AV2_EGO.pose_to_ego(city_SE3_axle)
    np.testing.assert_allclose(city_SE3_ego.translation, [5.0, 0.0, 10.0])
    # ... and a point keeps its city position whichever frame it is written in.
    point_av2 = np.array([[3.0, -1.0, 0.5]])
    np.testing.assert_allclose(city_SE3_ego.transform_points(AV2_EGO.points_to_ego(point_av2)), city_SE3_axle.transform_points(point_av2))
    # A camera 1.4 m above the rear axle is 1.73 m above the ground.
    assert AV2_EGO.sensor_to_ego(SE3(np.eye(3), np.array([1.6, 0.0, 1.4]))).translation[2] == 1.4 + 0.33
    assert NUSCENES_EGO.pose_to_ego(city_SE3_axle).allclose(city_SE3_axle)


def test_records_keep_dtype_and_everything_but_height() -> None:
    sweep = LidarSweep(7, np.array([[1.0, 2.0, 3.0]], dtype=np.float32), np.array([0.5], dtype=np.float32), np.array([3], dtype=np.int16))
    lifted = KITTI_EGO.sweep_to_ego(sweep)
    assert lifted.points_xyz_m.dtype == np.float32 and lifted.laser_number.tolist() == [3]
    np.testing.assert_allclose(lifted.points_xyz_m, [[1.0, 2.0, 4.73]], rtol=1e-6)
    boxes = Boxes3D(np.array([[1.0, 2.0, 3.0]]), np.array([[4.0, 2.0, 1.5]]), np.array([0.3]), np.array([0]), velocity_m_per_s=np.array([[1.0, 2.0]]))
    moved = AV2_EGO.boxes_to_ego(boxes)
    np.testing.assert_allclose(moved.center_m, [[1.0, 2.0, 3.33]])
    assert moved.velocity_m_per_s is not None and boxes.velocity_m_per_s is not None
    np.testing.assert_allclose(moved.velocity_m_per_s, boxes.velocity_m_per_s)
    np.testing.assert_allclose(moved.yaw_rad, boxes.yaw_rad)
    np.testing.assert_allclose(AV2_EGO.boxes_from_ego(moved).center_m, boxes.center_m)


@settings(max_examples=50, deadline=None)
@given(x=finite, y=finite, z=finite, yaw=st.floats(-np.pi, np.pi), which=st.sampled_from([AV2_EGO, KITTI_EGO, NUSCENES_EGO]))
def test_conversions_invert(x: float, y: float, z: float, yaw: float, which: EgoConvention) -> None:
    pose = SE3.from_yaw(yaw, (x, y, z))
    assert which.pose_from_ego(which.pose_to_ego(pose)).allclose(pose, atol=1e-9)
    assert which.sensor_from_ego(which.sensor_to_ego(pose)).allclose(pose, atol=1e-9)
    points = np.array([[x, y, z]])
    np.testing.assert_allclose(which.points_from_ego(which.points_to_ego(points)), points, atol=1e-9)
    # Both frames agree on where a point is in the city.
    np.testing.assert_allclose(which.pose_to_ego(pose).transform_points(which.points_to_ego(points)), pose.transform_points(points), atol=1e-6)
