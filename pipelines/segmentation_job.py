"""The segmentation commands: `train segmentation` data, `evaluate segmentation` (per-class IoU and mIoU on a
Cityscapes-style folder or on held-out synthetic target styles) and `predict segmentation` on one image."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import numpy as np
from rich.console import Console

from perception.segmentation.config import SegmentationConfig
from perception.segmentation.data import SegmentationSample, TrainingData, cityscapes_samples, synth_target_eval_samples, training_data
from perception.segmentation.evaluate import evaluate_domains, scores_table
from perception.segmentation.segmenter import SHIPPED_CHECKPOINT, Segmenter
from scenes.adapters.base import read_image
from scenes.adapters.registry import parse_spec
from scenes.errors import InputError, check_output_path
from scenes.io import atomic_write_text
from scenes.synth.writers.common import write_png

__all__ = ["EVAL_SEED", "run_evaluate_segmentation", "run_predict_segmentation", "segmentation_training_data"]

# Held-out drives of the target styles (training uses seeds 0..3, model selection the source's seed 1000).
EVAL_SEED: Final = 2000
EVAL_LOGS: Final = 2
OVERLAY_ALPHA: Final = 0.5


def _cityscapes_root(data: str, option: str = "--data") -> Path:
    name, path = parse_spec(data)
    if name != "cityscapes" or path is None:
        accepted = "Cityscapes-style folders (cityscapes:PATH)" + (" or 'synth'" if option == "--data" else "")
        raise InputError(f"{option} {data}: segmentation reads {accepted}")
    if not path.is_dir():
        raise InputError(f"{path}: Cityscapes directory not found")
    return path


def segmentation_training_data(config: SegmentationConfig, data: str, split: str | None, workers: int | None, *, augment: str | None = None) -> TrainingData:
    """The labelled source (the synthetic `default` style, or a Cityscapes-style folder), the synthetic targets and,
    with `augment` (cityscapes:PATH, every split), the labelled pairs mixed 1:1 with the source."""
    source: str | Path = "synth" if data == "synth" else _cityscapes_root(data)
    pairs: list[SegmentationSample] = []
    if augment is not None:
        root = _cityscapes_root(augment, "--augment")
        pairs = cityscapes_samples(root, config)
        if not pairs:
            raise InputError(f"{root}: no image with gtFine labelIds to augment with")
    return replace(training_data(config, source, split=split, workers=workers), augmentation=pairs)


def run_evaluate_segmentation(data: str, *, split: str | None, checkpoint: Path | None, json_path: Path | None, console: Console) -> dict[str, Any]:
    """Scores the segmenter of `checkpoint` (default: the shipped MTKT student) on `data`."""
    if json_path is not None:
        check_output_path(json_path, directory=False, option="--json")
    segmenter = Segmenter.from_checkpoint(checkpoint or SHIPPED_CHECKPOINT)
    if data == "synth":
        domains = synth_target_eval_samples(segmenter.config, EVAL_SEED, EVAL_LOGS)
    else:
        samples = cityscapes_samples(_cityscapes_root(data), segmenter.config, split=split, resize=False)
        if not samples:
            raise InputError(f"--data {data}: no image with gtFine labelIds to evaluate")
        domains = {"cityscapes": samples}
    scores = evaluate_domains(segmenter, domains)
    console.print(scores_table(scores, f"segmentation IoU (%) on {data}"), width=200)
    overall = scores["mean"] if "mean" in scores else next(iter(scores.values()))
    result: dict[str, Any] = {**overall.to_dict(), "domains": {name: score.to_dict() for name, score in scores.items()}, "data": data}
    if json_path is not None:
        atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")
        console.print(f"wrote {json_path}", soft_wrap=True)
    return result


def run_predict_segmentation(image: Path, out: Path, *, checkpoint: Path | None, console: Console) -> tuple[Path, Path]:
    """A colour-coded label PNG and an overlay of it on the image, in `out`."""
    check_output_path(out, directory=True)
    segmenter = Segmenter.from_checkpoint(checkpoint or SHIPPED_CHECKPOINT)
    rgb = read_image(image)
    labels = segmenter.predict(rgb[None])[0]
    colours = segmenter.colorize(labels)
    overlay = np.round((1.0 - OVERLAY_ALPHA) * rgb + OVERLAY_ALPHA * colours).astype(np.uint8)
    out.mkdir(parents=True, exist_ok=True)
    label_path, overlay_path = out / f"{image.stem}_labels.png", out / f"{image.stem}_overlay.png"
    write_png(label_path, colours)
    write_png(overlay_path, overlay)
    console.print(f"wrote {label_path} and {overlay_path} ({segmenter.config.classes} classes)", soft_wrap=True)
    return label_path, overlay_path
