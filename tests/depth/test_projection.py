"""Sparse depth images from camera-frame points: pixel rounding, nearest point wins, points behind or outside."""

from __future__ import annotations

import numpy as np

from depth.projection import project_points

INTRINSICS = np.array([[10.0, 0.0, 2.0], [0.0, 10.0, 1.0], [0.0, 0.0, 1.0]])


def test_nearest_point_wins_and_points_behind_or_outside_are_dropped() -> None:
    points = np.array(
        [
            [0.0, 0.0, 5.0],  # -> pixel (u 2, v 1)
            [0.0, 0.0, 4.0],  # same pixel, nearer: wins
            [0.5, 0.5, 5.0],  # u = 2 + 10 * 0.1 = 3, v = 1 + 1 = 2
            [0.0, 0.0, -3.0],  # behind the camera
            [10.0, 0.0, 5.0],  # u = 22: outside the 5-pixel-wide image
        ]
    )
    depth = project_points(points, INTRINSICS, 3, 5)
    expected_depth = np.zeros((3, 5), np.float32)
    expected_depth[1, 2], expected_depth[2, 3] = 4.0, 5.0
    np.testing.assert_array_equal(depth, expected_depth)


def test_no_point_in_front_gives_an_empty_image() -> None:
    behind = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 0.05]])  # behind the camera, nearer than min_depth_m
    assert not project_points(behind, INTRINSICS, 3, 5).any()
