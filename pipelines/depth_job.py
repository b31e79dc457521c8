"""The depth commands: `train depth` samples, `evaluate depth` (shipped LiDARTouch against interpolation) and
`predict depth` on one KITTI frame."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from rich.console import Console

from depth.beams import few_beam_mask
from depth.config import BeamConfig, DepthConfig
from depth.data import DepthSample, dataset_samples, synth_samples
from depth.evaluate import depth_table, evaluate_depth, interpolation_predictor, network_predictor
from depth.model import SHIPPED_CHECKPOINT, DepthEstimator
from depth.projection import camera_points
from scenes.adapters.base import read_image
from scenes.adapters.kitti import read_object_calibration, read_velodyne
from scenes.adapters.registry import open_dataset
from scenes.errors import InputError, check_output_path
from scenes.io import atomic_write_text
from scenes.synth.writers.common import write_png
from scenes.synth.writers.kitti import depth_to_png

__all__ = ["colour_depth", "depth_samples", "run_evaluate_depth", "run_predict_depth"]


def depth_samples(config: DepthConfig, data: str, dataset_options: dict[str, Any], *, evaluation: bool, workers: int | None = None) -> list[DepthSample]:
    """Samples of `--data`: the synthetic city's training drives (its held-out drives with `evaluation`), KITTI raw
    drives or KITTI object frames."""
    if data == "synth":
        synth = config.synth
        if evaluation:
            return synth_samples(config, synth.validation_seed, max(1, synth.validation_logs), evaluation=True, workers=workers)
        return synth_samples(config, synth.seed, synth.logs, workers=workers)
    samples = dataset_samples(open_dataset(data, **dataset_options), config, evaluation=evaluation)
    if not samples:
        raise InputError(f"{data}: no frame to {'evaluate' if evaluation else 'train'} on")
    return samples


def _with_beams(config: DepthConfig, beams: int | None) -> DepthConfig:
    if beams is None:
        return config
    return config.model_copy(update={"beams": BeamConfig(scanlines=config.beams.scanlines, keep=beams)})


def run_evaluate_depth(
    data: str, dataset_options: dict[str, Any], *, checkpoint: Path | None, beams: int | None, json_path: Path | None, console: Console
) -> dict[str, Any]:
    """Scores the model of `checkpoint` (default: the shipped one) and the interpolation baseline on `data`."""
    if json_path is not None:
        check_output_path(json_path, directory=False, option="--json")
    path = checkpoint or SHIPPED_CHECKPOINT
    estimator = DepthEstimator.from_checkpoint(path)
    config = _with_beams(estimator.config, beams)
    samples = depth_samples(config, data, dataset_options, evaluation=True)
    rows = evaluate_depth(samples, {"lidartouch": network_predictor(estimator), "interpolation": interpolation_predictor})
    result = {"data": data, "checkpoint": str(path), "beams": config.beams.keep, "images": len(samples), "rows": rows}
    console.print(depth_table(rows, f"depth on {data}: {len(samples)} image(s), {config.beams.keep} of {config.beams.scanlines} beams, cap 80 m"))
    if json_path is not None:
        atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")
        console.print(f"wrote {json_path}", soft_wrap=True)
    return result


def colour_depth(depth_m: np.ndarray, max_depth_m: float = 80.0) -> np.ndarray:
    """An `(H, W, 3)` uint8 rendering of depth: inverse depth through the magma colour map (near = bright)."""
    inverse = np.clip(1.0 / np.maximum(depth_m, 1e-3), 1.0 / max_depth_m, None)
    scaled = (inverse - inverse.min()) / max(float(np.percentile(inverse, 95) - inverse.min()), 1e-6)
    colours = matplotlib.colormaps["magma"](np.clip(scaled, 0.0, 1.0))[..., :3]
    return (colours * 255.0).round().astype(np.uint8)


def run_predict_depth(image: Path, lidar: Path, calib: Path, out: Path, *, checkpoint: Path | None, beams: int | None, console: Console) -> tuple[Path, Path]:
    """Depth of one KITTI frame (image_2 PNG, Velodyne `.bin`, object-benchmark calibration) -> a coloured PNG and a
    KITTI 16-bit depth PNG (depth * 256) in `out`."""
    check_output_path(out, directory=True)
    estimator = DepthEstimator.from_checkpoint(checkpoint or SHIPPED_CHECKPOINT)
    config = _with_beams(estimator.config, beams)
    _, intrinsics, velo_SE3_camera = read_object_calibration(calib)
    rgb = read_image(image)
    sweep = read_velodyne(lidar, 0)
    points = sweep.points_xyz_m.astype(np.float64)
    kept = points[few_beam_mask(points, config.beams.scanlines, config.beams.keep)]
    depth = estimator.predict(rgb, camera_points(kept, velo_SE3_camera), intrinsics)
    out.mkdir(parents=True, exist_ok=True)
    coloured, kitti = out / f"{image.stem}_depth_color.png", out / f"{image.stem}_depth.png"
    write_png(coloured, colour_depth(depth))
    write_png(kitti, depth_to_png(depth))
    console.print(f"wrote {coloured} and {kitti} (median depth {np.median(depth):.1f} m, {len(kept)} of {len(points)} LiDAR points used)", soft_wrap=True)
    return coloured, kitti
