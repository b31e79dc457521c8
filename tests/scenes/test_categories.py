"""The category table and its dataset mappings."""

from __future__ import annotations

import pytest
from av2.evaluation import SensorCompetitionCategories
from nuscenes.eval.detection.constants import DETECTION_NAMES

from scenes.categories import (
    CATEGORIES,
    FROM_KITTI,
    FROM_NUSCENES,
    NUSCENES_DETECTION_NAMES,
    TO_KITTI,
    TO_NUSCENES_DETECTION,
    TO_NUSCENES_GENERAL,
    UnknownCategoryError,
    category_ids,
    category_names,
    from_av2,
    from_kitti,
    from_nuscenes,
)


def test_table_is_the_av2_competition_set() -> None:
    assert len(CATEGORIES) == 26 == len(set(CATEGORIES))
    assert set(CATEGORIES) == {c.value for c in SensorCompetitionCategories}
    assert CATEGORIES[:2] == ("REGULAR_VEHICLE", "PEDESTRIAN")


def test_nuscenes_mappings_are_total_and_valid() -> None:
    assert tuple(DETECTION_NAMES) == NUSCENES_DETECTION_NAMES
    assert set(TO_NUSCENES_DETECTION) == set(CATEGORIES) == set(TO_NUSCENES_GENERAL)
    assert {v for v in TO_NUSCENES_DETECTION.values() if v} <= set(NUSCENES_DETECTION_NAMES)
    assert all(v is None or v in CATEGORIES for v in FROM_NUSCENES.values())
    # the general category written for a canonical class maps back to a category of the same nuScenes class
    for name, general in TO_NUSCENES_GENERAL.items():
        back = from_nuscenes(general)
        if back is not None and TO_NUSCENES_DETECTION[name] is not None:
            assert TO_NUSCENES_DETECTION[back] == TO_NUSCENES_DETECTION[name] or back == name


def test_kitti_mappings() -> None:
    assert from_kitti("Car") == "REGULAR_VEHICLE" and from_kitti("DontCare") is None
    assert set(TO_KITTI) == set(CATEGORIES)
    for kitti in TO_KITTI.values():
        if kitti is not None:
            assert kitti in FROM_KITTI


def test_unknown_names_raise() -> None:
    with pytest.raises(UnknownCategoryError, match="'SPACESHIP'"):
        category_ids(["REGULAR_VEHICLE", "SPACESHIP"])
    with pytest.raises(UnknownCategoryError, match="nuScenes category 'vehicle.boat'"):
        from_nuscenes("vehicle.boat")
    assert from_av2("RAILED_VEHICLE") is None
    with pytest.raises(UnknownCategoryError, match="unknown AV2 category 'UFO'"):
        from_av2("UFO")


def test_ids_round_trip() -> None:
    ids = category_ids(list(CATEGORIES))
    assert ids.tolist() == list(range(26))
    assert category_names(ids).tolist() == list(CATEGORIES)
