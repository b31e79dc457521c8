"""Generated scenes as a Cityscapes folder, and a contact sheet of layouts and images.

`write_cityscapes_scenes(scenes, out)` writes `leftImg8bit/<split>/<city>/<city>_000000_<i>_leftImg8bit.png` and
beside it in `gtFine/...` the `labelIds` and `labelTrainIds` PNGs, the layout the `cityscapes:` adapter and
`drivestack train segmentation --data cityscapes:DIR` read; `palettes.json` lists each scene's requested and
realised class proportions. Everything is written to a staging folder first and moved into place with the images
last, so an interrupted run leaves the previous contents of `out` as they were (and no staging folder).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Final

import numpy as np

from perception.segmentation.classes import colorize
from scenegen.data import CLASS_NAMES, CLASS_TABLE, proportions_of
from scenegen.generator import GeneratedScenes
from scenes.adapters.cityscapes import train_ids_to_label_ids
from scenes.io import atomic_write_text
from scenes.synth.writers.common import publish_entries, write_png

__all__ = ["CITY", "contact_sheet", "write_cityscapes_scenes"]

CITY: Final = "palette"
SPLIT: Final = "train"
_GAP_PX: Final = 2


def write_cityscapes_scenes(scenes: GeneratedScenes, out: Path, *, split: str = SPLIT, city: str = CITY) -> Path:
    """Writes the scenes under `out` (see the module docstring); returns the image folder."""
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".generate-", dir=out))
    try:
        image_dir = staging / "leftImg8bit" / split / city
        label_dir = staging / "gtFine" / split / city
        image_dir.mkdir(parents=True)
        label_dir.mkdir(parents=True)
        realised = proportions_of(scenes.labels, len(CLASS_NAMES))
        records = []
        for index, (image, labels) in enumerate(zip(scenes.images, scenes.labels, strict=True)):
            stem = f"{city}_000000_{index:06d}"
            write_png(image_dir / f"{stem}_leftImg8bit.png", image)
            write_png(label_dir / f"{stem}_gtFine_labelIds.png", train_ids_to_label_ids(labels))
            write_png(label_dir / f"{stem}_gtFine_labelTrainIds.png", labels)
            records.append(
                {
                    "image": f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png",
                    "requested": {name: round(float(share), 5) for name, share in zip(CLASS_NAMES, scenes.requested[index], strict=True) if share > 0},
                    "realised": {name: round(float(share), 5) for name, share in zip(CLASS_NAMES, realised[index], strict=True) if share > 0},
                }
            )
        atomic_write_text(staging / "palettes.json", json.dumps({"classes": CLASS_TABLE, "scenes": records}, indent=2) + "\n")
        publish_entries(staging, out, last=["leftImg8bit"])
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when published
    return out / "leftImg8bit" / split / city


def contact_sheet(scenes: GeneratedScenes, columns: int = 4) -> np.ndarray:
    """`(H', W', 3)` uint8: for each scene its colour-coded layout above its image, `columns` scenes per row."""
    count, height, width = scenes.labels.shape
    rows = -(-count // columns)
    cell_h, cell_w = 2 * height + _GAP_PX, width + _GAP_PX
    sheet = np.full((rows * cell_h, min(count, columns) * cell_w, 3), 255, dtype=np.uint8)
    for index in range(count):
        top, left = (index // columns) * cell_h, (index % columns) * cell_w
        sheet[top : top + height, left : left + width] = colorize(scenes.labels[index], CLASS_TABLE)
        sheet[top + height : top + 2 * height, left : left + width] = scenes.images[index]
    return sheet
