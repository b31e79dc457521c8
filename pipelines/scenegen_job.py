"""The scene-generation commands: `train scenegen` data and `generate` (Cityscapes folders from class proportions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console

from scenegen.config import ScenegenConfig
from scenegen.data import LayoutSample, proportions_of, training_samples
from scenegen.export import contact_sheet, write_cityscapes_scenes
from scenegen.generator import SHIPPED_CHECKPOINT, SceneGenerator, parse_proportions
from scenegen.metrics import control_error
from scenes.adapters.registry import parse_spec
from scenes.errors import InputError, check_output_path
from scenes.synth.writers.common import write_png

__all__ = ["PREVIEW_NAME", "run_generate", "scenegen_training_samples"]

PREVIEW_NAME = "preview.png"
_PREVIEW_SCENES = 16


def scenegen_training_samples(config: ScenegenConfig, data: str, split: str | None, workers: int | None) -> list[LayoutSample]:
    """The synthetic city's labelled views (`synth`) or a Cityscapes-style folder (`cityscapes:PATH`)."""
    if data == "synth":
        return training_samples(config, "synth", workers=workers)
    name, path = parse_spec(data)
    if name != "cityscapes" or path is None:
        raise InputError(f"--data {data}: scene generation trains on Cityscapes-style folders (cityscapes:PATH) or 'synth'")
    if not path.is_dir():
        raise InputError(f"{path}: Cityscapes directory not found")
    return training_samples(config, path, split=split)


def run_generate(
    num: int,
    out: Path,
    *,
    proportions: str | None,
    sample_palette: bool,
    seed: int,
    checkpoint: Path | None,
    preview: bool,
    console: Console,
) -> Path:
    """Generates `num` scenes into `out` as a Cityscapes folder; returns the image folder."""
    if (proportions is None) == (not sample_palette):
        raise InputError("--proportions / --sample-palette: give exactly one of them")
    request = parse_proportions(proportions) if proportions is not None else None
    check_output_path(out, directory=True)
    generator = SceneGenerator.from_checkpoint(checkpoint or SHIPPED_CHECKPOINT)
    rng = np.random.default_rng(seed)
    if request is not None:
        palettes = np.stack([generator.complete(request, rng) for _ in range(num)])
    else:
        palettes = generator.sample_palettes(num, rng)
    scenes = generator.generate(palettes, seed)
    folder = write_cityscapes_scenes(scenes, out)
    realised = proportions_of(scenes.labels, palettes.shape[1])
    if request is not None:
        named = np.zeros_like(palettes, dtype=bool)
        named[:, [generator.palette.class_names.index(name) for name in request]] = True
        console.print(f"control error on the named classes: {control_error(palettes, realised, named):.4f} (mean |requested - realised|)")
    console.print(f"control error over all classes: {control_error(palettes, realised):.4f}")
    console.print(f"wrote {num} scenes to {folder} (labels in {out / 'gtFine'}, palettes in {out / 'palettes.json'})", soft_wrap=True)
    if preview:
        sheet_path = out / PREVIEW_NAME
        write_png(sheet_path, contact_sheet(type(scenes)(scenes.images[:_PREVIEW_SCENES], scenes.labels[:_PREVIEW_SCENES], scenes.requested[:_PREVIEW_SCENES])))
        console.print(f"wrote {sheet_path}", soft_wrap=True)
    return folder
