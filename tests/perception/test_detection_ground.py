"""The ground surface behind the detector's `ground_relative` heights: hand-built scenes and terrain."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perception.detection.ground import GroundSurface, estimate_ground
from scenes.records import Boxes3D

RANGE = (-20.0, -20.0, 20.0, 20.0)


def _plane(height_m: float, slope_x: float = 0.0, step_m: float = 0.25) -> np.ndarray:
    x, y = np.meshgrid(np.arange(-20, 20, step_m), np.arange(-20, 20, step_m))
    return np.column_stack([x.ravel(), y.ravel(), height_m + slope_x * x.ravel()])


def _block(center_xy: tuple[float, float], size_xy: tuple[float, float], z_range: tuple[float, float]) -> np.ndarray:
    """Points filling a box: a car body (lowest return above the ground) or a building."""
    x, y, z = np.meshgrid(
        np.linspace(center_xy[0] - size_xy[0] / 2, center_xy[0] + size_xy[0] / 2, 20),
        np.linspace(center_xy[1] - size_xy[1] / 2, center_xy[1] + size_xy[1] / 2, 12),
        np.linspace(*z_range, 6),
    )
    return np.column_stack([x.ravel(), y.ravel(), z.ravel()])


def _without(points: np.ndarray, center_xy: tuple[float, float], size_xy: tuple[float, float]) -> np.ndarray:
    """The points outside a footprint (the ground a car or a building hides from the LiDAR)."""
    inside = (np.abs(points[:, 0] - center_xy[0]) <= size_xy[0] / 2) & (np.abs(points[:, 1] - center_xy[1]) <= size_xy[1] / 2)
    return points[~inside]


def test_ground_under_a_car_is_the_road_beside_it() -> None:
    car = ((5.0, 3.0), (4.5, 1.8))
    points = np.concatenate([_without(_plane(-0.35), *car), _block(*car, (0.0, 1.15))])
    ground = estimate_ground(points, RANGE)
    assert np.allclose(ground.height_at(np.array([[5.0, 3.0], [-10.0, 8.0], [19.5, -19.5]])), -0.35, atol=1e-6)
    relative = ground.relative(points)
    assert np.isclose(relative[:, 2].min(), 0.0, atol=1e-6) and np.isclose(relative[:, 2].max(), 1.5, atol=1e-6)


def test_stray_returns_below_the_road_are_ignored() -> None:
    points = np.concatenate([_plane(0.0), np.array([[2.3, 2.4, -1.5], [-7.6, 4.1, -0.9]])])
    ground = estimate_ground(points, RANGE)
    assert np.abs(ground.height_m).max() < 1e-9


def test_a_building_without_visible_floor_takes_the_nearest_ground() -> None:
    """A 12 x 12 m building with no visible floor: a 5 m window from its centre finds only facade and roof."""
    building = ((10.0, -8.0), (12.0, 12.0))
    points = np.concatenate([_without(_plane(0.2), *building), _block(*building, (1.5, 9.0))])
    ground = estimate_ground(points, RANGE)
    assert np.allclose(ground.height_at(np.array([[10.0, -8.0], [14.0, -4.0]])), 0.2, atol=1e-6)


def test_no_return_in_range_gives_the_flat_ground() -> None:
    ground = estimate_ground(np.array([[100.0, 0.0, 3.0]]), RANGE)
    assert ground.height_at(np.array([[0.0, 0.0], [50.0, 50.0]])).tolist() == [0.0, 0.0]


@settings(max_examples=25, deadline=None)
@given(height=st.floats(-2.0, 2.0), slope=st.floats(-0.08, 0.08))
def test_ground_follows_a_sloped_road(height: float, slope: float) -> None:
    """Within one cell's rise plus the 5 m window's (the estimate is the window's lowest return)."""
    points = _plane(height, slope)
    ground = estimate_ground(points, RANGE)
    xy = np.array([[-15.0, 0.0], [0.0, 10.0], [15.0, -12.0]])
    truth = height + slope * xy[:, 0]
    assert np.all(np.abs(ground.height_at(xy) - truth) <= abs(slope) * 4.0 + 1e-6)


def test_boxes_relative_and_absolute_are_inverse() -> None:
    ground = GroundSurface(np.array([[0.0, -0.4], [0.3, 1.0]]), (-2.0, -2.0), 2.0)
    boxes = Boxes3D(
        np.array([[-1.0, -1.0, 0.75], [1.0, -1.0, 0.35], [1.0, 1.0, 1.75]]),
        np.ones((3, 3)),
        np.zeros(3),
        np.zeros(3, dtype=np.int64),
    )
    relative = ground.boxes_relative(boxes)
    assert np.allclose(relative.center_m[:, 2], [0.75, 0.75, 0.75])
    assert np.allclose(ground.boxes_absolute(relative).center_m, boxes.center_m)
