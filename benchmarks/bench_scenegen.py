"""Speed of Semantic Palette generation with the shipped checkpoint on 2 CPU cores: completing a partial palette,
generating a batch of 16 scenes (layout generator, argmax, SPADE), and writing them as a Cityscapes folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from benchmarks.harness import Result, measure
from scenegen.export import write_cityscapes_scenes
from scenegen.generator import SHIPPED_CHECKPOINT, SceneGenerator

BATCH = 16


def run() -> list[Result]:
    torch.set_num_threads(2)
    generator = SceneGenerator.from_checkpoint(SHIPPED_CHECKPOINT)
    request = {"road": 0.35, "sky": 0.2, "car": 0.08}
    palettes = np.stack([generator.complete(request)] * BATCH)
    scenes = generator.generate(palettes, seed=0)
    size = f"{generator.config.width_px}x{generator.config.height_px}"
    with tempfile.TemporaryDirectory() as folder:
        return [
            measure("palette completion (3 classes named)", lambda: generator.complete(request), items=1, unit="palettes/s", repeats=51),
            measure(f"generate {BATCH} scenes at {size}", lambda: generator.generate(palettes, seed=0), items=BATCH, unit="scenes/s", repeats=7),
            measure(f"write {BATCH} scenes (Cityscapes PNGs)", lambda: write_cityscapes_scenes(scenes, Path(folder)), items=BATCH, unit="scenes/s", repeats=7),
        ]
