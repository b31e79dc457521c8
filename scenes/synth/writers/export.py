"""Simulate N logs and write them in one on-disk format (the body of `drivestack synth`), with a rich progress bar.

Log `i` is `simulate_log(config, seed, index=i)`, so the same arguments give byte-identical files. Output layout:

| format | where the logs go under `out` |
|---|---|
| `av2` | `<split>/<log_id>/` (AV2 sensor dataset) |
| `av2-mf` | `<split>/<scenario_id>/` (AV2 motion forecasting, 11 s scenarios) |
| `kitti` | `<date>/<date>_drive_<NNNN>_sync/` with NNNN = i + 1 (KITTI raw + depth ground truth) |
| `kitti-tracking` | `training/{velodyne,image_02}/<SSSS>/`, `training/{calib,oxts,label_02}/<SSSS>.txt` with SSSS = i (KITTI tracking) |
| `nuscenes` | `v1.0-synth/` tables, `samples/`, `sweeps/`, `maps/`; scenes listed under split `synth_<split>` in splits.json |
| `cityscapes` | `<style>/{leftImg8bit,gtFine,camera}/<split>/<city>/`, sequence number i |

Whole outputs: each item (an AV2 log, an AV2 scenario, a KITTI drive, a KITTI tracking sequence's velodyne and image
folders, the nuScenes database's `samples/`, `sweeps/`, `maps/` and `<version>/`, a Cityscapes sequence's files, a
preview PNG) is written into a hidden temporary folder (`.<name>.synth-partial-*`) beside its destination and renamed
into place when complete; an interrupted run removes its temporary folder and leaves nothing partial under the
destination names (a killed process may leave the hidden folder, which no reader lists and which can be deleted). A
KITTI tracking sequence's text files (calib, oxts, label_02) are each written atomically after its folders, the label
file last.

A non-empty `out` is refused (`OutputExistsError`) unless `overwrite=True`: then each item this run writes replaces the
item of the same name (one rename per item; see `common.replace_path`), and nothing else under `out` is touched, so
files of the user's and items of an earlier run that this run does not write (another log id, a higher log index)
stay as they are. For nuScenes the item is the whole database: its four entries are replaced.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal

from av2.datasets.motion_forecasting.constants import AV2_SCENARIO_TOTAL_TIMESTEPS
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from scenes.synth.world import SynthConfig, SynthLog, simulate_log
from scenes.synth.writers.common import OutputExistsError, SimulatedLog, WriterError
from scenes.synth.writers.nuscenes import NuScenesWriter

__all__ = ["FORMATS", "OutputExistsError", "SynthFormatName", "synth_config_for", "write_synthetic_dataset"]

SynthFormatName = Literal["av2", "av2-mf", "kitti", "kitti-tracking", "nuscenes", "cityscapes"]
FORMATS: Final[tuple[str, ...]] = ("av2", "av2-mf", "kitti", "kitti-tracking", "nuscenes", "cityscapes")
NUSCENES_VERSION: Final = "v1.0-synth"

# Sensors each format needs from the simulator: (LiDAR rig or None, cameras, image width and height in pixels). Each
# format gets its dataset's LiDAR rig (`scenes.synth.lidar.dataset_rig`); KITTI drives get KITTI's colour pair at
# KITTI's field of view and aspect ratio, KITTI tracking sequences its left camera (the benchmark's image_02).
_SENSORS: Final[dict[str, tuple[str | None, tuple[str, ...], tuple[int, int]]]] = {
    "av2": ("av2", ("ring_front_center",), (320, 192)),
    "av2-mf": (None, (), (320, 192)),
    "kitti": ("kitti", ("kitti_left", "kitti_right"), (640, 192)),
    "kitti-tracking": ("kitti", ("kitti_left",), (640, 192)),
    "nuscenes": ("nuscenes", ("ring_front_center",), (320, 192)),
    "cityscapes": (None, ("ring_front_center",), (320, 192)),
}


def synth_config_for(
    format_name: str, *, seconds: float, style: str, bright_people: bool = False, vehicle_paint: bool = False, pedestrian_groups: bool = False
) -> SynthConfig:
    """The simulator configuration that gives `format_name` every sensor it writes, and nothing more (people as bright
    in the LiDAR as real ones with `bright_people`, each vehicle with its own paint with `vehicle_paint`, people
    walking in groups with `pedestrian_groups`: `SynthConfig.bright_people`, `.vehicle_paint`, `.pedestrian_groups`)."""
    if format_name not in _SENSORS:
        raise WriterError(f"format: {format_name!r} is not one of {list(FORMATS)}")
    rig, cameras, (width_px, height_px) = _SENSORS[format_name]
    return SynthConfig(
        seconds=seconds,
        lidar_beams=None if rig is None else 32,
        lidar_rig=rig or "single",
        cameras=cameras,
        image_width_px=width_px,
        image_height_px=height_px,
        style=style,
        bright_people=bright_people,
        vehicle_paint=vehicle_paint,
        pedestrian_groups=pedestrian_groups,
    )


def _preview_writer() -> Callable[[SynthLog, int, Path], object] | None:
    try:
        module = importlib.import_module("scenes.synth.preview")
    except ModuleNotFoundError:
        return None
    return getattr(module, "write_preview", None)


def write_synthetic_dataset(
    format_name: str,
    out: Path,
    *,
    logs: int = 1,
    seconds: float = 15.0,
    style: str = "default",
    seed: int = 0,
    split: str = "train",
    preview: bool = False,
    overwrite: bool = False,
    bright_people: bool = False,
    vehicle_paint: bool = False,
    pedestrian_groups: bool = False,
    console: Console | None = None,
) -> list[Path]:
    """Simulates `logs` logs and writes them under `out` in `format_name`; returns the written log/scene paths.

    With `preview`, `scenes.synth.preview.write_preview` draws each log's middle frame to `out/preview/<log_id>.png`.
    A non-empty `out` raises `OutputExistsError` unless `overwrite` (which replaces only the items this run writes).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} is not a folder")
    if not overwrite and out.is_dir() and any(out.iterdir()):
        raise OutputExistsError(f"{out} is not empty (pass --overwrite to replace the items this run writes)")
    if logs < 1:
        raise WriterError(f"logs: must be >= 1, got {logs}")
    if not split or "/" in split:
        raise WriterError(f"split: {split!r} is not a usable directory name")
    config = synth_config_for(
        format_name, seconds=seconds, style=style, bright_people=bright_people, vehicle_paint=vehicle_paint, pedestrian_groups=pedestrian_groups
    )
    preview_writer = _preview_writer() if preview else None
    if preview and preview_writer is None:
        raise WriterError("preview: scenes.synth.preview.write_preview is not available in this installation")
    frames_per_log = max(1, round(seconds * config.rate_hz))
    if format_name == "av2-mf" and frames_per_log < AV2_SCENARIO_TOTAL_TIMESTEPS:
        raise WriterError(
            f"seconds: an AV2 motion-forecasting scenario spans {AV2_SCENARIO_TOTAL_TIMESTEPS} steps at 10 Hz (11 s), got {seconds} s ({frames_per_log} frames)"
        )
    written: list[Path] = []

    nuscenes = NuScenesWriter(out, NUSCENES_VERSION) if format_name == "nuscenes" else None
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        _write_logs(format_name, config, out, logs, seed, split, frames_per_log, nuscenes, preview_writer, columns, console, written)
        if nuscenes is not None:
            written.append(nuscenes.close())
    except BaseException:
        if nuscenes is not None:
            nuscenes.abort()  # nothing of the database reaches `out`
        raise
    return written


def _write_logs(
    format_name: str,
    config: SynthConfig,
    out: Path,
    logs: int,
    seed: int,
    split: str,
    frames_per_log: int,
    nuscenes: NuScenesWriter | None,
    preview_writer: Callable[[SynthLog, int, Path], object] | None,
    columns: tuple[ProgressColumn, ...],
    console: Console | None,
    written: list[Path],
) -> None:
    with Progress(*columns, console=console or Console(stderr=True), transient=False) as progress:
        task = progress.add_task(f"synth {format_name}", total=logs * frames_per_log)
        for index in range(logs):
            progress.update(task, description=f"simulating log {index + 1}/{logs}")
            log = simulate_log(config, seed, index)
            progress.update(task, description=f"writing log {index + 1}/{logs} ({format_name})")

            def advance() -> None:
                progress.advance(task)

            written += _write_one(format_name, log, out, index, split, nuscenes, advance)
            if preview_writer is not None:
                preview_writer(log, len(log.frames) // 2, out / "preview" / f"{log.log_id}.png")
            progress.update(task, completed=(index + 1) * frames_per_log)


def _write_one(
    format_name: str, log: SimulatedLog, out: Path, index: int, split: str, nuscenes: NuScenesWriter | None, advance: Callable[[], None]
) -> list[Path]:
    if format_name == "av2":
        from scenes.synth.writers.av2 import write_av2_log

        return [write_av2_log(log, out / split, on_frame=advance)]
    if format_name == "av2-mf":
        from scenes.synth.writers.av2_mf import write_av2_scenarios

        return write_av2_scenarios(log, out / split, on_frame=advance)
    if format_name == "kitti":
        from scenes.synth.writers.kitti import write_kitti_drive

        return [write_kitti_drive(log, out, drive_number=index + 1, on_frame=advance)]
    if format_name == "kitti-tracking":
        from scenes.synth.writers.kitti_tracking import write_kitti_tracking_sequence

        return [write_kitti_tracking_sequence(log, out, sequence=index, on_frame=advance)]
    if format_name == "nuscenes":
        assert nuscenes is not None
        nuscenes.add(log, f"synth_{split}", on_frame=advance)
        return []
    from scenes.synth.writers.cityscapes import write_cityscapes

    return [write_cityscapes(log, out, split=split, sequence=index, on_frame=advance)]
