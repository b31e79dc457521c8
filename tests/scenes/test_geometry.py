"""Geometry: hand-computed cases and hypothesis properties (inverse, composition, round trips)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from scenes.geometry import (
    SE3,
    Sim2,
    bev_box_corners,
    box_corners,
    city_to_ego,
    ego_to_city,
    matrix_to_quat_wxyz,
    points_at_arc,
    points_in_box_mask,
    polyline_arc_m,
    project_to_image,
    quat_wxyz_to_matrix,
    quat_wxyz_to_yaw,
    unproject_depth,
    wrap_angle,
    yaw_to_quat_wxyz,
)

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
angles = st.floats(-np.pi, np.pi, allow_nan=False)
quaternions = arrays(np.float64, 4, elements=st.floats(-1, 1, allow_nan=False)).filter(
    lambda q: np.linalg.norm(q) > 0.1
)
translations = arrays(np.float64, 3, elements=finite)
points = arrays(np.float64, st.tuples(st.integers(1, 20), st.just(3)), elements=finite)


@st.composite
def transforms(draw: st.DrawFn) -> SE3:
    return SE3.from_quat_wxyz(draw(quaternions), draw(translations))


def test_quaternion_hand_cases() -> None:
    # 90 degrees about z: x -> y.
    quat = np.array([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)])
    np.testing.assert_allclose(quat_wxyz_to_matrix(quat) @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    assert quat_wxyz_to_yaw(quat) == pytest.approx(np.pi / 2)
    np.testing.assert_allclose(yaw_to_quat_wxyz(np.pi / 2), quat, atol=1e-12)
    # scalar-first identity
    np.testing.assert_allclose(quat_wxyz_to_matrix([1.0, 0.0, 0.0, 0.0]), np.eye(3))


def test_se3_hand_case() -> None:
    city_SE3_ego = SE3.from_yaw(np.pi / 2, [10.0, 0.0, 0.0])
    np.testing.assert_allclose(ego_to_city(city_SE3_ego, [[1.0, 0.0, 0.0]]), [[10.0, 1.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(city_to_ego(city_SE3_ego, [[10.0, 1.0, 0.0]]), [[1.0, 0.0, 0.0]], atol=1e-12)
    center, yaw = city_SE3_ego.transform_boxes([[2.0, 0.0, 0.0]], [np.pi / 2])
    np.testing.assert_allclose(center, [[10.0, 2.0, 0.0]], atol=1e-12)
    assert yaw[0] == pytest.approx(-np.pi)  # pi wraps to -pi


@given(quaternions)
def test_quaternion_round_trip(quat: np.ndarray) -> None:
    matrix = quat_wxyz_to_matrix(quat)
    np.testing.assert_allclose(quat_wxyz_to_matrix(matrix_to_quat_wxyz(matrix)), matrix, atol=1e-9)
    unit = quat / np.linalg.norm(quat) * np.sign(quat[0] if quat[0] != 0 else 1.0)
    if abs(quat[0]) > 1e-6:
        np.testing.assert_allclose(matrix_to_quat_wxyz(matrix), unit, atol=1e-6)


@given(transforms(), points)
def test_se3_inverse_round_trip(transform: SE3, pts: np.ndarray) -> None:
    back = transform.inverse().transform_points(transform.transform_points(pts))
    np.testing.assert_allclose(back, pts, atol=1e-6)
    assert transform.compose(transform.inverse()).allclose(SE3.identity(), atol=1e-9)


@given(transforms(), transforms(), points)
def test_se3_composition(a_SE3_b: SE3, b_SE3_c: SE3, pts: np.ndarray) -> None:
    composed = a_SE3_b.compose(b_SE3_c).transform_points(pts)
    sequential = a_SE3_b.transform_points(b_SE3_c.transform_points(pts))
    np.testing.assert_allclose(composed, sequential, atol=1e-6)
    np.testing.assert_allclose(a_SE3_b.compose(b_SE3_c).as_matrix(), a_SE3_b.as_matrix() @ b_SE3_c.as_matrix(), atol=1e-9)


@given(transforms())
def test_se3_matrix_round_trip(transform: SE3) -> None:
    assert SE3.from_matrix(transform.as_matrix()).allclose(transform)


@given(angles, st.floats(0.1, 10.0), arrays(np.float64, 2, elements=finite), arrays(np.float64, (5, 2), elements=finite))
def test_sim2_inverse_and_composition(theta: float, scale: float, translation: np.ndarray, pts: np.ndarray) -> None:
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    transform = Sim2(rotation, translation, scale)
    np.testing.assert_allclose(transform.inverse().transform_points(transform.transform_points(pts)), pts, atol=1e-6)
    twice = transform.compose(transform)
    np.testing.assert_allclose(
        twice.transform_points(pts), transform.transform_points(transform.transform_points(pts)), rtol=1e-9, atol=1e-6
    )
    assert Sim2.from_json_dict(transform.to_json_dict()).transform_points(pts) == pytest.approx(transform.transform_points(pts))


def test_sim2_matches_av2_convention() -> None:
    from av2.geometry.sim2 import Sim2 as AV2Sim2

    theta, translation, scale = 0.7, np.array([3.0, -2.0]), 3.3333
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    pts = np.array([[1.0, 2.0], [-5.0, 0.5]])
    ours = Sim2(rotation, translation, scale)
    theirs = AV2Sim2(rotation, translation, scale)
    np.testing.assert_allclose(ours.transform_points(pts), theirs.transform_from(pts))
    np.testing.assert_allclose(ours.inverse().transform_points(pts), theirs.inverse().transform_from(pts))


def test_box_corners_hand_case() -> None:
    corners = box_corners([[1.0, 2.0, 3.0]], [[4.0, 2.0, 1.0]], [np.pi / 2])[0]
    # front-left-top: box (+2, +1, +0.5) rotated by 90 deg -> (-1, +2, +0.5)
    np.testing.assert_allclose(corners[0], [0.0, 4.0, 3.5], atol=1e-12)
    np.testing.assert_allclose(corners.mean(axis=0), [1.0, 2.0, 3.0], atol=1e-12)
    bev = bev_box_corners([[0.0, 0.0]], [[4.0, 2.0]], [0.0])[0]
    np.testing.assert_allclose(bev, [[2, 1], [-2, 1], [-2, -1], [2, -1]])


def test_box_corners_match_av2() -> None:
    from av2.geometry.geometry import quat_to_mat
    from av2.geometry.se3 import SE3 as AV2SE3
    from av2.structures.cuboid import Cuboid

    yaw = 0.4
    cuboid = Cuboid(
        dst_SE3_object=AV2SE3(quat_to_mat(yaw_to_quat_wxyz(yaw)), np.array([1.0, -2.0, 0.5])),
        length_m=4.0,
        width_m=2.0,
        height_m=1.5,
        category="REGULAR_VEHICLE",
        timestamp_ns=0,
    )
    ours = box_corners([[1.0, -2.0, 0.5]], [[4.0, 2.0, 1.5]], [yaw])[0]
    np.testing.assert_allclose(ours, cuboid.vertices_m, atol=1e-9)


@given(
    arrays(np.float64, (30, 3), elements=st.floats(-5, 5)),
    arrays(np.float64, 3, elements=st.floats(-2, 2)),
    arrays(np.float64, 3, elements=st.floats(0.5, 4)),
    angles,
)
def test_points_in_box_matches_local_frame(pts: np.ndarray, center: np.ndarray, size: np.ndarray, yaw: float) -> None:
    mask = points_in_box_mask(pts, center, size, yaw)
    local = SE3.from_yaw(yaw, center).inverse().transform_points(pts)
    inside = np.all(np.abs(local) <= size / 2 + 1e-9, axis=1)
    strictly = np.all(np.abs(local) < size / 2 - 1e-9, axis=1)
    assert np.all(mask[strictly]) and not np.any(mask[~inside])


def test_projection_and_unprojection_agree() -> None:
    intrinsics = np.array([[100.0, 0.0, 32.0], [0.0, 100.0, 24.0], [0.0, 0.0, 1.0]])
    depth = np.full((48, 64), 5.0)
    pts = unproject_depth(depth, intrinsics).reshape(-1, 3)
    uv, valid = project_to_image(pts, intrinsics, 64, 48)
    assert valid.all()
    rows, cols = np.indices((48, 64))
    np.testing.assert_allclose(uv, np.stack([cols.ravel(), rows.ravel()], axis=1), atol=1e-9)
    _, behind = project_to_image([[0.0, 0.0, -1.0]], intrinsics, 64, 48)
    assert not behind[0]


@given(st.floats(-100, 100, allow_nan=False))
@settings(max_examples=50)
def test_wrap_angle_range(angle: float) -> None:
    wrapped = wrap_angle(angle)
    assert -np.pi <= wrapped < np.pi
    assert np.cos(wrapped) == pytest.approx(np.cos(angle), abs=1e-9)


def test_invalid_transforms_raise() -> None:
    with pytest.raises(ValueError, match="SE3.rotation"):
        SE3(np.ones((3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        SE3(np.eye(3), np.array([np.nan, 0.0, 0.0]))
    with pytest.raises(ValueError, match="zero-norm"):
        SE3.from_quat_wxyz([0, 0, 0, 0], [0, 0, 0])
    with pytest.raises(ValueError, match="Sim2.scale"):
        Sim2(np.eye(2), np.zeros(2), 0.0)


def test_polyline_arc_lengths_and_points_at_arc_by_hand() -> None:
    polyline = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 10.0]])
    arc = polyline_arc_m(polyline)
    np.testing.assert_allclose(arc, [0.0, 5.0, 11.0])
    np.testing.assert_allclose(points_at_arc(polyline, arc, [2.5, 8.0, -1.0, 20.0]), [[1.5, 2.0], [3.0, 7.0], [0.0, 0.0], [3.0, 10.0]])
    np.testing.assert_allclose(points_at_arc(polyline, arc, 5.0), [3.0, 4.0])  # a scalar arc length gives one point
