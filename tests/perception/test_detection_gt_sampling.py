"""Ground-truth sampling: banking objects from samples and pasting them, turned about the sensor, into free space."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from perception.detection.config import DetectionConfig
from perception.detection.gt_sampling import FLOOR_M, BankedObject, ObjectBank, _turned
from scenes.categories import CATEGORY_ID
from scenes.records import Boxes3D

PED, RV = CATEGORY_ID["PEDESTRIAN"], CATEGORY_ID["REGULAR_VEHICLE"]


def _box(center: tuple[float, float, float], size: tuple[float, float, float], yaw: float = 0.0, category: int = PED) -> Boxes3D:
    return Boxes3D(np.array([center], float), np.array([size], float), np.array([yaw]), np.array([category]), velocity_m_per_s=np.array([[1.0, 0.0]]))


def _pedestrian(x_m: float, y_m: float = 0.0) -> BankedObject:
    """A pedestrian standing on the ground (z = 0) at (x, y): 40 points filling its box, with intensity and time lag."""
    rng = np.random.default_rng(0)
    box = _box((x_m, y_m, 0.85), (0.6, 0.6, 1.7))
    local = rng.uniform(-0.25, 0.25, (40, 3)) * [1.0, 1.0, 3.0] + [x_m, y_m, 0.9]
    return BankedObject(np.column_stack([local, np.full(40, 0.3), np.zeros(40)]).astype(np.float32), box)


def _ring(radius_m: float, z_m: tuple[float, float], count: int = 20_000) -> np.ndarray:
    """A wall of returns all around the sensor at `radius_m`, between the heights `z_m`."""
    rng = np.random.default_rng(1)
    angle = rng.uniform(-np.pi, np.pi, count)
    z = rng.uniform(*z_m, count)
    return np.column_stack([radius_m * np.cos(angle), radius_m * np.sin(angle), z, np.zeros(count), np.zeros(count)]).astype(np.float32)


@settings(max_examples=40, deadline=None)
@given(st.floats(-10.0, 10.0), st.floats(0.5, 30.0), st.floats(-30.0, 30.0), st.floats(-np.pi, np.pi))
def test_turning_about_the_sensor_keeps_what_the_lidar_sees(angle: float, x_m: float, y_m: float, yaw: float) -> None:
    """Ranges, heights, the box's position in its own frame and the velocity's speed are unchanged; headings and
    velocity turn by the angle."""
    obj = _pedestrian(x_m, y_m)
    obj = BankedObject(obj.points, Boxes3D(obj.box.center_m, obj.box.size_lwh_m, np.array([yaw]), obj.box.category, velocity_m_per_s=np.array([[1.0, 2.0]])))
    turned = _turned(obj, angle)
    np.testing.assert_allclose(np.hypot(turned.points[:, 0], turned.points[:, 1]), np.hypot(obj.points[:, 0], obj.points[:, 1]), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(turned.points[:, 2:], obj.points[:, 2:])
    np.testing.assert_allclose(np.hypot(*turned.box.center_m[0, :2]), np.hypot(*obj.box.center_m[0, :2]))
    assert np.isclose(np.cos(turned.box.yaw_rad[0] - yaw - angle), 1.0)
    assert turned.box.velocity_m_per_s is not None
    c, s = np.cos(angle), np.sin(angle)
    np.testing.assert_allclose(turned.box.velocity_m_per_s[0], [c * 1.0 - s * 2.0, s * 1.0 + c * 2.0], atol=1e-9)


def test_turned_by_a_quarter_turn_by_hand() -> None:
    turned = _turned(_pedestrian(10.0), np.pi / 2)
    np.testing.assert_allclose(turned.box.center_m[0], [0.0, 10.0, 0.85], atol=1e-9)
    assert turned.box.velocity_m_per_s is not None
    np.testing.assert_allclose(turned.box.velocity_m_per_s[0], [0.0, 1.0], atol=1e-9)
    assert np.isclose(turned.box.yaw_rad[0], np.pi / 2)


def test_pasting_into_an_empty_sample_adds_the_object() -> None:
    bank = ObjectBank({"PEDESTRIAN": [_pedestrian(10.0)]})
    points, boxes = bank.paste(np.zeros((0, 5), np.float32), Boxes3D.empty(), {"PEDESTRIAN": 2}, np.random.default_rng(0))
    # The second copy of the only banked object lands at the same range: it overlaps the first unless turned away.
    assert 1 <= len(boxes) <= 2 and len(points) == 40 * len(boxes)
    np.testing.assert_allclose(np.hypot(boxes.center_m[:, 0], boxes.center_m[:, 1]), 10.0)
    assert set(boxes.category.tolist()) == {PED}


def test_an_object_behind_a_wall_or_inside_one_is_not_pasted_and_one_before_it_is() -> None:
    bank = ObjectBank({"PEDESTRIAN": [_pedestrian(10.0)]})
    rng = np.random.default_rng(0)
    for wall_m in (5.0, 10.0):  # in front of it (a facade hides the city's interiors), through it
        _, boxes = bank.paste(_ring(wall_m, (0.5, 2.0)), Boxes3D.empty(), {"PEDESTRIAN": 3}, rng)
        assert len(boxes) == 0
    behind = _ring(20.0, (0.5, 2.0))
    points, boxes = bank.paste(behind, Boxes3D.empty(), {"PEDESTRIAN": 1}, rng)
    assert len(boxes) == 1 and len(points) == len(behind) + 40
    # A wall too low to hide it (kerb, below FREE_SPACE_FLOOR_M above its feet) does not stop it.
    _, boxes = bank.paste(_ring(5.0, (0.0, 0.2)), Boxes3D.empty(), {"PEDESTRIAN": 1}, rng)
    assert len(boxes) == 1


def test_pasting_keeps_clear_of_boxes_and_replaces_the_returns_inside() -> None:
    """An object at the sensor's position lands there at any angle: two stray returns in it are tolerated and removed,
    the floor under it is kept; a sample box there blocks it."""
    obj = _pedestrian(0.0)
    bank = ObjectBank({"PEDESTRIAN": [obj]})
    floor = np.array([[0.1, 0.1, 0.0, 0, 0], [-0.1, 0.1, 0.02, 0, 0], [0.1, -0.1, FLOOR_M / 2, 0, 0]], np.float32)
    stray = np.array([[0.0, 0.0, 1.0, 0, 0], [0.05, 0.0, 1.2, 0, 0]], np.float32)
    points, boxes = bank.paste(np.concatenate([floor, stray]), Boxes3D.empty(), {"PEDESTRIAN": 1}, np.random.default_rng(0))
    assert len(boxes) == 1
    np.testing.assert_array_equal(points[:3], floor)
    assert len(points) == 3 + 40
    three = np.concatenate([stray, [[0.0, 0.05, 1.4, 0, 0]]]).astype(np.float32)
    _, boxes = bank.paste(three, Boxes3D.empty(), {"PEDESTRIAN": 1}, np.random.default_rng(0))
    assert len(boxes) == 0
    car = _box((1.5, 0.0, 0.8), (4.5, 1.9, 1.6), category=RV)
    points, boxes = bank.paste(floor, car, {"PEDESTRIAN": 1}, np.random.default_rng(0))
    assert len(boxes) == 1 and boxes.category[0] == RV and len(points) == 3


def test_placement_beside_structure_picks_the_places_next_to_a_wall() -> None:
    """A wall 0.8 m behind the pasted pedestrian's range (10 m), over a quarter turn of azimuth: with
    `near_structure_share` 1 the pedestrian lands beside it (`NEAR_ATTEMPTS` angles, a quarter of them there); with 0, at a
    random angle (1 in 4). The wall stands outside its free-space margin (0.5 m from its centre), so both may land
    there; a place in front of the wall keeps its returns out of the box."""
    bank = ObjectBank({"PEDESTRIAN": [_pedestrian(10.0)]})
    rng = np.random.default_rng(2)
    angle = rng.uniform(0.0, np.pi / 2, 4000)
    wall = np.column_stack([10.8 * np.cos(angle), 10.8 * np.sin(angle), rng.uniform(0.5, 2.0, 4000), np.zeros((4000, 2))]).astype(np.float32)

    def beside(share: float) -> int:
        landed = 0
        for seed in range(20):
            points, boxes = bank.paste(wall, Boxes3D.empty(), {"PEDESTRIAN": 1}, np.random.default_rng(seed), share)
            assert len(boxes) == 1 and len(points) == len(wall) + 40
            azimuth = np.arctan2(boxes.center_m[0, 1], boxes.center_m[0, 0])
            landed += bool(0.0 < azimuth < np.pi / 2)
        return landed

    assert beside(1.0) >= 18
    assert beside(0.0) <= 10


def test_pasting_is_seeded() -> None:
    bank = ObjectBank({"PEDESTRIAN": [_pedestrian(10.0), _pedestrian(6.0, 3.0)], "REGULAR_VEHICLE": []})
    scene = _ring(30.0, (0.5, 2.0), 2000)
    runs = [bank.paste(scene, Boxes3D.empty(), {"PEDESTRIAN": 3, "REGULAR_VEHICLE": 2}, np.random.default_rng(7)) for _ in range(2)]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1].center_m, runs[1][1].center_m)
    other = bank.paste(scene, Boxes3D.empty(), {"PEDESTRIAN": 3}, np.random.default_rng(8))
    assert not np.array_equal(other[1].center_m, runs[0][1].center_m)


def test_collect_banks_objects_with_enough_points_without_their_floor() -> None:
    ped, car = _pedestrian(5.0), _pedestrian(-5.0)  # the car's box holds the second cloud
    floor = np.array([[5.0, 0.1, 0.0, 0, 0], [-5.0, 0.1, 0.05, 0, 0]], np.float32)
    few = ped.points[:4].copy()
    few[:, 0] += 10.0  # 4 returns of a pedestrian at x = 15
    samples = [
        (np.concatenate([ped.points, floor]), Boxes3D.concatenate([ped.box, _box((-5.0, 0.0, 1.0), (4.5, 1.9, 2.0), category=RV)])),
        (few, _box((15.0, 0.0, 0.85), (0.6, 0.6, 1.7))),
    ]
    samples[0] = (np.concatenate([samples[0][0], car.points]), samples[0][1])
    bank = ObjectBank.collect(len(samples), lambda i: samples[i], ["PEDESTRIAN", "REGULAR_VEHICLE"], max_per_class=10, rng=np.random.default_rng(0))
    assert len(bank.objects["PEDESTRIAN"]) == 1 and len(bank.objects["REGULAR_VEHICLE"]) == 1
    np.testing.assert_array_equal(bank.objects["PEDESTRIAN"][0].points, ped.points)
    assert len(bank.objects["REGULAR_VEHICLE"][0].points) == 40
    capped = ObjectBank.collect(len(samples), lambda i: samples[i], ["REGULAR_VEHICLE"], max_per_class=1, rng=np.random.default_rng(0))
    assert len(capped) == 1 and list(capped.objects) == ["REGULAR_VEHICLE"]


def test_pasted_classes_must_be_detected() -> None:
    with pytest.raises(ValidationError, match=r"train\.paste_objects names classes outside model\.tasks: \['BUS'\]"):
        DetectionConfig.model_validate({"train": {"paste_objects": {"BUS": 2}}})
    with pytest.raises(ValidationError, match=r"train\.paste_objects\.PEDESTRIAN"):
        DetectionConfig.model_validate({"train": {"paste_objects": {"PEDESTRIAN": -1}}})
