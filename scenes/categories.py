"""The one category table of drivestack: Argoverse 2's 26 competition categories, mapped to nuScenes and KITTI.

The index of a category in `CATEGORIES` is its id in every record (`Boxes3D.category`) and model head. The order is
the label-index order of the AV2 end-to-end forecasting baselines, so ids agree with their checkpoints and writers.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

CATEGORIES: Final[tuple[str, ...]] = (
    "REGULAR_VEHICLE",
    "PEDESTRIAN",
    "BICYCLIST",
    "MOTORCYCLIST",
    "WHEELED_RIDER",
    "BOLLARD",
    "CONSTRUCTION_CONE",
    "SIGN",
    "CONSTRUCTION_BARREL",
    "STOP_SIGN",
    "MOBILE_PEDESTRIAN_CROSSING_SIGN",
    "LARGE_VEHICLE",
    "BUS",
    "BOX_TRUCK",
    "TRUCK",
    "VEHICULAR_TRAILER",
    "TRUCK_CAB",
    "SCHOOL_BUS",
    "ARTICULATED_BUS",
    "MESSAGE_BOARD_TRAILER",
    "BICYCLE",
    "MOTORCYCLE",
    "WHEELED_DEVICE",
    "WHEELCHAIR",
    "STROLLER",
    "DOG",
)
CATEGORY_ID: Final[dict[str, int]] = {name: index for index, name in enumerate(CATEGORIES)}

# AV2 annotation categories that the competitions (and therefore this table) leave out.
AV2_NON_COMPETITION: Final[frozenset[str]] = frozenset(
    {"ANIMAL", "OFFICIAL_SIGNALER", "RAILED_VEHICLE", "TRAFFIC_LIGHT_TRAILER"}
)

# Categories whose objects do not move (used by static-mode post-processing and the simulator).
STATIC_CATEGORIES: Final[frozenset[str]] = frozenset(
    {
        "BOLLARD",
        "CONSTRUCTION_CONE",
        "CONSTRUCTION_BARREL",
        "SIGN",
        "STOP_SIGN",
        "MOBILE_PEDESTRIAN_CROSSING_SIGN",
        "MESSAGE_BOARD_TRAILER",
    }
)

# Motor vehicles: cars, vans, trucks, buses and their trailers.
VEHICLE_CATEGORIES: Final[frozenset[str]] = frozenset(
    {"REGULAR_VEHICLE", "LARGE_VEHICLE", "BUS", "BOX_TRUCK", "TRUCK", "TRUCK_CAB", "VEHICULAR_TRAILER", "SCHOOL_BUS", "ARTICULATED_BUS"}
)

NUSCENES_DETECTION_NAMES: Final[tuple[str, ...]] = (
    "car",
    "truck",
    "bus",
    "trailer",
    "construction_vehicle",
    "pedestrian",
    "motorcycle",
    "bicycle",
    "traffic_cone",
    "barrier",
)

# Canonical category -> nuScenes detection class (None: not evaluated by nuScenes).
TO_NUSCENES_DETECTION: Final[dict[str, str | None]] = {
    "REGULAR_VEHICLE": "car",
    "PEDESTRIAN": "pedestrian",
    "BICYCLIST": "bicycle",
    "MOTORCYCLIST": "motorcycle",
    "WHEELED_RIDER": None,
    "BOLLARD": "barrier",
    "CONSTRUCTION_CONE": "traffic_cone",
    "SIGN": None,
    "CONSTRUCTION_BARREL": "barrier",
    "STOP_SIGN": None,
    "MOBILE_PEDESTRIAN_CROSSING_SIGN": None,
    "LARGE_VEHICLE": "construction_vehicle",
    "BUS": "bus",
    "BOX_TRUCK": "truck",
    "TRUCK": "truck",
    "VEHICULAR_TRAILER": "trailer",
    "TRUCK_CAB": "truck",
    "SCHOOL_BUS": "bus",
    "ARTICULATED_BUS": "bus",
    "MESSAGE_BOARD_TRAILER": "trailer",
    "BICYCLE": "bicycle",
    "MOTORCYCLE": "motorcycle",
    "WHEELED_DEVICE": None,
    "WHEELCHAIR": "pedestrian",
    "STROLLER": "pedestrian",
    "DOG": None,
}

# nuScenes general (annotation) categories and the Lyft Level 5 names that share the nuScenes schema ->
# canonical category. None: a known category that the canonical table leaves out.
FROM_NUSCENES: Final[dict[str, str | None]] = {
    "vehicle.car": "REGULAR_VEHICLE",
    "vehicle.emergency.police": "REGULAR_VEHICLE",
    "vehicle.emergency.ambulance": "LARGE_VEHICLE",
    "vehicle.truck": "TRUCK",
    "vehicle.trailer": "VEHICULAR_TRAILER",
    "vehicle.construction": "LARGE_VEHICLE",
    "vehicle.bus.bendy": "ARTICULATED_BUS",
    "vehicle.bus.rigid": "BUS",
    "vehicle.motorcycle": "MOTORCYCLE",
    "vehicle.bicycle": "BICYCLE",
    "human.pedestrian.adult": "PEDESTRIAN",
    "human.pedestrian.child": "PEDESTRIAN",
    "human.pedestrian.construction_worker": "PEDESTRIAN",
    "human.pedestrian.police_officer": "PEDESTRIAN",
    "human.pedestrian.stroller": "STROLLER",
    "human.pedestrian.wheelchair": "WHEELCHAIR",
    "human.pedestrian.personal_mobility": "WHEELED_RIDER",
    "movable_object.barrier": "CONSTRUCTION_BARREL",
    "movable_object.trafficcone": "CONSTRUCTION_CONE",
    "movable_object.pushable_pullable": None,
    "movable_object.debris": None,
    "static_object.bicycle_rack": None,
    "animal": "DOG",
    # Lyft Level 5 (nuScenes schema)
    "car": "REGULAR_VEHICLE",
    "pedestrian": "PEDESTRIAN",
    "truck": "TRUCK",
    "bus": "BUS",
    "bicycle": "BICYCLIST",
    "motorcycle": "MOTORCYCLIST",
    "other_vehicle": "LARGE_VEHICLE",
    "emergency_vehicle": "REGULAR_VEHICLE",
}

# Canonical category -> nuScenes general category written by the nuScenes-format writer.
TO_NUSCENES_GENERAL: Final[dict[str, str]] = {
    "REGULAR_VEHICLE": "vehicle.car",
    "PEDESTRIAN": "human.pedestrian.adult",
    "BICYCLIST": "vehicle.bicycle",
    "MOTORCYCLIST": "vehicle.motorcycle",
    "WHEELED_RIDER": "human.pedestrian.personal_mobility",
    "BOLLARD": "movable_object.barrier",
    "CONSTRUCTION_CONE": "movable_object.trafficcone",
    "SIGN": "static_object.bicycle_rack",
    "CONSTRUCTION_BARREL": "movable_object.barrier",
    "STOP_SIGN": "static_object.bicycle_rack",
    "MOBILE_PEDESTRIAN_CROSSING_SIGN": "static_object.bicycle_rack",
    "LARGE_VEHICLE": "vehicle.construction",
    "BUS": "vehicle.bus.rigid",
    "BOX_TRUCK": "vehicle.truck",
    "TRUCK": "vehicle.truck",
    "VEHICULAR_TRAILER": "vehicle.trailer",
    "TRUCK_CAB": "vehicle.truck",
    "SCHOOL_BUS": "vehicle.bus.rigid",
    "ARTICULATED_BUS": "vehicle.bus.bendy",
    "MESSAGE_BOARD_TRAILER": "vehicle.trailer",
    "BICYCLE": "vehicle.bicycle",
    "MOTORCYCLE": "vehicle.motorcycle",
    "WHEELED_DEVICE": "movable_object.pushable_pullable",
    "WHEELCHAIR": "human.pedestrian.wheelchair",
    "STROLLER": "human.pedestrian.stroller",
    "DOG": "animal",
}

KITTI_CLASSES: Final[tuple[str, ...]] = (
    "Car",
    "Van",
    "Truck",
    "Pedestrian",
    "Person_sitting",
    "Cyclist",
    "Tram",
    "Misc",
    "DontCare",
)

# KITTI object class -> canonical category (None: not in the canonical table; such labels are skipped).
FROM_KITTI: Final[dict[str, str | None]] = {
    "Car": "REGULAR_VEHICLE",
    "Van": "REGULAR_VEHICLE",
    "Truck": "TRUCK",
    "Pedestrian": "PEDESTRIAN",
    "Person_sitting": "PEDESTRIAN",
    "Cyclist": "BICYCLIST",
    "Tram": None,
    "Misc": None,
    "DontCare": None,
}

# Canonical category -> KITTI class for the KITTI writer (None: written as DontCare-free omission).
TO_KITTI: Final[dict[str, str | None]] = {
    name: {
        "REGULAR_VEHICLE": "Car",
        "PEDESTRIAN": "Pedestrian",
        "BICYCLIST": "Cyclist",
        "TRUCK": "Truck",
        "BOX_TRUCK": "Truck",
        "TRUCK_CAB": "Truck",
        "LARGE_VEHICLE": "Van",
    }.get(name)
    for name in CATEGORIES
}


class UnknownCategoryError(ValueError):
    """A dataset category that the mapping tables do not know."""


def category_id(name: str) -> int:
    try:
        return CATEGORY_ID[name]
    except KeyError:
        raise UnknownCategoryError(f"unknown category {name!r}; expected one of the 26 AV2 competition categories") from None


def category_ids(names: npt.ArrayLike) -> npt.NDArray[np.int64]:
    return np.array([category_id(str(name)) for name in np.asarray(names).reshape(-1)], dtype=np.int64)


def category_names(ids: npt.ArrayLike) -> npt.NDArray[np.str_]:
    table = np.asarray(CATEGORIES)
    return table[np.asarray(ids, dtype=np.int64)]


def _lookup(table: dict[str, str | None], name: str, dataset: str) -> str | None:
    if name not in table:
        raise UnknownCategoryError(f"unknown {dataset} category {name!r}")
    return table[name]


def from_nuscenes(name: str) -> str | None:
    """Canonical category of a nuScenes general (or Lyft) category name; None when it is not in the table."""
    return _lookup(FROM_NUSCENES, name, "nuScenes")


def from_kitti(name: str) -> str | None:
    return _lookup(FROM_KITTI, name, "KITTI")


def from_av2(name: str) -> str | None:
    """Canonical category of an AV2 annotation category (None for the 4 non-competition ones)."""
    if name in CATEGORY_ID:
        return name
    if name in AV2_NON_COMPETITION:
        return None
    raise UnknownCategoryError(f"unknown AV2 category {name!r}")
