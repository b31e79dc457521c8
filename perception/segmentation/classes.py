"""The class tables of the segmentation stage, in one place: MTAF's 7 super-classes and the 19 Cityscapes train ids.

Both are lookups from Cityscapes `labelIds` (what the synthetic city renders and what Cityscapes ships in
`*_gtFine_labelIds.png`) through a 256-entry table; everything not listed maps to `IGNORE_INDEX`.

- `super7`: the paper's 7 super-classes, from the official code's `dataset/cityscapes_list/info7class.json`
  (flat 7, 8; construction 11, 12, 13; object 17, 19, 20; nature 21, 22; sky 23; human 24, 25; vehicle 26-33).
  As in that file, caravan (29) and trailer (30) are vehicles; only the GTA5 loader of the official code ignores them.
- `cityscapes19`: the standard 19 train ids of the Cityscapes label table (`scenes.adapters.cityscapes.LABELS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal, get_args

import numpy as np

from scenes.adapters.cityscapes import LABEL_TO_TRAIN, TRAIN_CLASSES
from scenes.errors import InputError

__all__ = [
    "IGNORE_INDEX",
    "SUPER7_LABEL_IDS",
    "ClassTable",
    "class_names",
    "colorize",
    "label_ids_to_classes",
    "num_classes",
    "palette",
]

ClassTable = Literal["super7", "cityscapes19"]
IGNORE_INDEX: Final = 255

SUPER7_LABEL_IDS: Final[Mapping[str, tuple[int, ...]]] = MappingProxyType(
    {
        "flat": (7, 8),
        "construction": (11, 12, 13),
        "object": (17, 19, 20),
        "nature": (21, 22),
        "sky": (23,),
        "human": (24, 25),
        "vehicle": (26, 27, 28, 29, 30, 31, 32, 33),
    }
)

# Colours of the Cityscapes palette (cityscapesScripts `labels.py`); a super-class takes its first member's colour.
_CITYSCAPES19_PALETTE: Final = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153), (250, 170, 30),
    (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142),
    (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)  # fmt: skip
_SUPER7_PALETTE: Final = ((128, 64, 128), (70, 70, 70), (153, 153, 153), (107, 142, 35), (70, 130, 180), (220, 20, 60), (0, 0, 142))


def _super7_lut() -> np.ndarray:
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for index, label_ids in enumerate(SUPER7_LABEL_IDS.values()):
        lut[list(label_ids)] = index
    return lut


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


_LUTS: Final[Mapping[str, np.ndarray]] = MappingProxyType({"super7": _read_only(_super7_lut()), "cityscapes19": _read_only(LABEL_TO_TRAIN.copy())})
_NAMES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType({"super7": tuple(SUPER7_LABEL_IDS), "cityscapes19": TRAIN_CLASSES})
_PALETTES: Final[Mapping[str, np.ndarray]] = MappingProxyType(
    {
        "super7": _read_only(np.array(_SUPER7_PALETTE, dtype=np.uint8)),
        "cityscapes19": _read_only(np.array(_CITYSCAPES19_PALETTE, dtype=np.uint8)),
    }
)


def _check(table: str) -> None:
    if table not in _LUTS:
        raise InputError(f"unknown class table {table!r}; known: {', '.join(get_args(ClassTable))}")


def class_names(table: ClassTable) -> tuple[str, ...]:
    _check(table)
    return _NAMES[table]


def num_classes(table: ClassTable) -> int:
    return len(class_names(table))


def palette(table: ClassTable) -> np.ndarray:
    """`(C, 3)` uint8 RGB colour of each class of `table` (read-only)."""
    _check(table)
    return _PALETTES[table]


def label_ids_to_classes(label_ids: np.ndarray, table: ClassTable) -> np.ndarray:
    """Cityscapes `labelIds` (any shape, values 0..255) -> class indices of `table` (uint8, `IGNORE_INDEX` = ignored)."""
    _check(table)
    values = np.asarray(label_ids)
    if values.size and (values.min() < 0 or values.max() > 255):
        raise InputError(f"label ids must lie in 0..255, got {values.min()}..{values.max()}")
    return _LUTS[table][values.astype(np.uint8, copy=False)]


def colorize(labels: np.ndarray, table: ClassTable) -> np.ndarray:
    """Class indices `(H, W)` -> `(H, W, 3)` uint8 RGB with the table's palette; ignored pixels are black."""
    colours = np.zeros((256, 3), dtype=np.uint8)
    table_palette = palette(table)
    colours[: len(table_palette)] = table_palette
    return colours[np.asarray(labels, dtype=np.uint8)]
