"""The detector's training task for the harness (`scenes.training.harness`): samples, augmentation, loss.

Samples are (frame, past frames) of every log; the harness visits them in a seeded permutation per epoch and the task
augments each with a generator seeded by `(seed, epoch, sample)`, so a resumed run draws exactly what an
uninterrupted one would. AdamW under a one-cycle schedule; `out_dir/last.pt` after every epoch, `out_dir/detector.pt`
at the end, both in the one checkpoint format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from perception.detection.augment import augment, keep_lasers, vary_intensity, vary_sensor
from perception.detection.box_coder import LAYOUT
from perception.detection.config import DetectionConfig, ModelConfig
from perception.detection.detector import STAGE
from perception.detection.ground import estimate_ground
from perception.detection.gt_sampling import ObjectBank
from perception.detection.losses import centerpoint_loss
from perception.detection.model import CenterPointNet, PillarBatch, make_pillar_batch
from perception.detection.sweeps import POINT_FEATURES, accumulate_sweeps
from perception.detection.targets import TaskTargets, build_targets
from scenes.adapters.base import Dataset
from scenes.errors import InputError
from scenes.records import Boxes3D, Frame
from scenes.training.checkpoint import CheckpointError, load_checkpoint
from scenes.training.harness import LoopSettings, OnCheckpoint, TrainingTask
from scenes.training.harness import fit as harness_fit

FINAL: Final = "detector.pt"
GRAD_CLIP_NORM: Final = 35.0


@dataclass(frozen=True)
class Sample:
    """One training example: a frame with annotations and the frames before it (for multi-sweep input), and the
    LiDAR rig that recorded it (ground-truth sampling pastes objects seen by the same rig only)."""

    frame: Frame
    past: tuple[Frame, ...]
    rig: str = "single"


def crop_to_grid(frame: Frame, cfg: ModelConfig) -> Frame:
    """The frame with only the LiDAR points that can reach the grid (any rotation about z, z within range)."""
    if frame.lidar is None:
        return frame
    x_min, y_min, z_min, x_max, y_max, z_max = cfg.range_m
    radius = float(np.hypot(max(abs(x_min), abs(x_max)), max(abs(y_min), abs(y_max))))
    xyz = frame.lidar.points_xyz_m
    keep = (np.hypot(xyz[:, 0], xyz[:, 1]) <= radius) & (xyz[:, 2] >= z_min) & (xyz[:, 2] < z_max)
    return replace(frame, lidar=frame.lidar.select(keep))


def samples_from_frames(frames: Sequence[Frame], cfg: ModelConfig, frame_stride: int = 1, rig: str = "single") -> list[Sample]:
    """Every `frame_stride`-th annotated LiDAR frame of one log (recorded by `rig`) with its `num_sweeps - 1`
    predecessors, cropped."""
    lidar_frames = [crop_to_grid(frame, cfg) for frame in frames if frame.lidar is not None]
    return [
        Sample(lidar_frames[index], tuple(lidar_frames[max(0, index - cfg.num_sweeps + 1) : index]), rig)
        for index in range(0, len(lidar_frames), frame_stride)
        if lidar_frames[index].annotations is not None
    ]


def collect_samples(dataset: Dataset, cfg: ModelConfig, frame_stride: int = 1) -> list[Sample]:
    """Training samples of every log of `dataset`."""
    samples = [sample for log_id in dataset.logs() for sample in samples_from_frames(list(dataset.frames(log_id)), cfg, frame_stride, dataset.name)]
    if not samples:
        raise InputError(f"{dataset.name}:{dataset.root}: no annotated LiDAR frames to train the detector on")
    return samples


def synth_samples(cfg: DetectionConfig, *, show_progress: bool = True) -> list[Sample]:
    """Samples of `cfg.synth.num_logs` simulated logs (seeds `cfg.synth.seed`, indices 0..n-1; rigs and styles in
    turn), LiDAR only."""
    from scenes.synth.world import SynthConfig, simulate_log

    rigs, styles = cfg.synth.lidar_rigs, cfg.synth.styles
    samples: list[Sample] = []
    with Progress(TextColumn("[bold]simulating logs"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), disable=not show_progress) as progress:
        for index in progress.track(range(cfg.synth.num_logs)):
            synth = SynthConfig(
                seconds=cfg.synth.seconds,
                cameras=(),
                lidar_rig=rigs[index % len(rigs)],
                street_clutter=cfg.synth.street_clutter,
                bright_people=cfg.synth.bright_people,
                vehicle_paint=cfg.synth.vehicle_paint,
                pedestrian_groups=cfg.synth.pedestrian_groups,
                style=styles[index % len(styles)],
            )
            log = simulate_log(synth, cfg.synth.seed, index)
            samples.extend(samples_from_frames(log.frames, cfg.model, cfg.synth.frame_stride, synth.lidar_rig))
    return samples


def network_input(sample: Sample, cfg: DetectionConfig, rng: np.random.Generator | None) -> tuple[np.ndarray, Boxes3D]:
    """Multi-sweep points and boxes of one sample as the network reads them (ground-relative heights when the model
    reads them), augmented when `rng` is given."""
    train = cfg.train
    frame, past = sample.frame, sample.past
    if rng is not None and train.laser_keep_range != (1.0, 1.0):
        frames = [frame, *past]
        sweeps = keep_lasers([f.lidar for f in frames if f.lidar is not None], float(rng.uniform(*train.laser_keep_range)), rng)
        frame, *rest = [replace(f, lidar=sweep) for f, sweep in zip(frames, sweeps, strict=True)]
        past = tuple(rest)
    points = accumulate_sweeps(frame, past, cfg.model.num_sweeps)
    assert frame.annotations is not None
    boxes = frame.annotations.observed(train.min_interior_points)
    if rng is not None and train.varies_sensor:
        points, boxes = vary_sensor(
            points,
            boxes,
            rng,
            ground_shift_m=train.ground_shift_m,
            point_keep_range=train.point_keep_range,
            max_slope=train.max_ground_slope,
            max_undulation_m=train.max_ground_undulation_m,
        )
    if rng is not None:
        points, boxes = augment(
            points,
            boxes,
            rng,
            flip_probability=train.flip_probability,
            rotation_range_rad=train.rotation_range_rad,
            scale_range=train.scale_range,
        )
    if cfg.model.ground_relative:
        ground = estimate_ground(points, cfg.model.range_xy_m)
        points, boxes = ground.relative(points), ground.boxes_relative(boxes)
    return points, boxes


def object_bank(samples: Sequence[Sample], cfg: DetectionConfig) -> ObjectBank:
    """The ground-truth sampling bank of the classes in `cfg.train.paste_objects`, from the samples without
    augmentation (seeded by `cfg.train.seed`)."""
    return ObjectBank.collect(
        len(samples),
        lambda index: network_input(samples[index], cfg, None),
        list(cfg.train.paste_objects),
        max_per_class=cfg.train.paste_bank_size,
        rng=np.random.default_rng(cfg.train.seed),
    )


def object_banks(samples: Sequence[Sample], cfg: DetectionConfig) -> dict[str, ObjectBank]:
    """One `object_bank` per rig, from that rig's samples. An object pasted into another rig's sweep would carry its
    own rig's beams, mounting and intensity scale: in a sweep of AV2's two 32-beam LiDARs (intensity scale
    `0.7 * s ** 2`), a pedestrian cut from a single-LiDAR sweep is denser and several times brighter than the ones the
    sweep holds."""
    by_rig: dict[str, list[Sample]] = {}
    for sample in samples:
        by_rig.setdefault(sample.rig, []).append(sample)
    return {rig: object_bank(own, cfg) for rig, own in by_rig.items()}


def prepare(sample: Sample, cfg: DetectionConfig, rng: np.random.Generator | None, bank: ObjectBank | None = None) -> tuple[np.ndarray, list[TaskTargets]]:
    """Multi-sweep points and targets of one sample, augmented when `rng` is given (with objects of `bank` pasted in
    when it is given too, then one intensity response for all, and only the current sweep kept with probability
    `single_sweep_probability`)."""
    train = cfg.train
    points, boxes = network_input(sample, cfg, rng)
    if rng is not None and bank is not None:
        points, boxes = bank.paste(points, boxes, train.paste_objects, rng, train.paste_near_structure)
    if rng is not None and train.varies_intensity:
        points = vary_intensity(points, rng, gain_range=train.intensity_gain_range, gamma_range=train.intensity_gamma_range)
    if rng is not None and train.single_sweep_probability > 0 and rng.random() < train.single_sweep_probability:
        points = points[points[:, POINT_FEATURES.index("time_lag_s")] == 0.0]
    targets = build_targets(
        boxes,
        cfg.model,
        gaussian_overlap=train.gaussian_overlap,
        min_radius=train.min_gaussian_radius,
        max_objects=train.max_objects,
    )
    return points, targets


class DetectionTask(TrainingTask):
    """The detector on the training harness: pillar batches of augmented multi-sweep samples, CenterPoint loss."""

    stage = "detection"
    final_name = FINAL
    config: DetectionConfig
    plot_title = "CenterPoint detector training"

    def __init__(self, cfg: DetectionConfig, samples: Sequence[Sample], config_source: str = "this run's config") -> None:
        self.config = cfg
        self.samples = list(samples)
        self.config_source = config_source
        self.loop = LoopSettings.one_cycle(cfg.train, GRAD_CLIP_NORM)
        self.banks = object_banks(self.samples, cfg) if cfg.train.augment and cfg.train.paste_objects else {}

    def __len__(self) -> int:
        return len(self.samples)

    def build_model(self) -> CenterPointNet:
        """The network, warm-started from `train.init_checkpoint` when given (all but the added heads frozen with
        `train.freeze_initialised`)."""
        model = CenterPointNet(self.config.model)
        train = self.config.train
        if train.init_checkpoint is not None:
            loaded = warm_start(model, train.init_checkpoint)
            if train.freeze_initialised:
                added = [index for index in range(len(model.heads)) if index not in loaded]
                if not added:
                    raise InputError(f"{train.init_checkpoint}: train.freeze_initialised leaves nothing to train (the checkpoint holds every task)")
                model.freeze_all_but(added)
        return model

    def make_batch(self, indices: np.ndarray, epoch: int, device: torch.device) -> tuple[PillarBatch, list[list[TaskTargets]]]:
        train = self.config.train
        prepared = [
            prepare(
                self.samples[i],
                self.config,
                np.random.default_rng([train.seed, epoch, int(i)]) if train.augment else None,
                self.banks.get(self.samples[i].rig),
            )
            for i in indices
        ]
        pillars = make_pillar_batch([points for points, _ in prepared], self.config.model).to(device)
        return pillars, [targets for _, targets in prepared]

    def loss(self, model: torch.nn.Module, batch: tuple[PillarBatch, list[list[TaskTargets]]]) -> tuple[torch.Tensor, dict[str, float]]:
        pillars, targets = batch
        device = pillars.points.device
        code_weights = torch.tensor(self.config.train.code_weights, dtype=torch.float32, device=device)
        squared = None
        if self.config.train.velocity_loss == "l2":
            squared = torch.zeros(LAYOUT.width, dtype=torch.bool, device=device)
            squared[LAYOUT.velocity] = True
        return centerpoint_loss(model(pillars), targets, code_weights, self.config.train.regression_weight, squared)


def warm_start(model: CenterPointNet, path: str) -> set[int]:
    """Loads a detector checkpoint into `model`, whose config must be the checkpoint's with, at most, tasks added;
    returns the indices of `model`'s heads that were loaded (the others keep their fresh initialisation)."""
    initial = load_checkpoint(path, STAGE)
    saved_cfg = ModelConfig.model_validate(initial["config"]["model"])  # later settings at their defaults
    saved, wanted = saved_cfg.model_dump(mode="json"), model.cfg.model_dump(mode="json")
    saved_tasks, tasks = saved.pop("tasks"), wanted.pop("tasks")
    del saved["backbone_fed_tasks"], wanted["backbone_fed_tasks"]
    head_of = {index: tasks.index(task) for index, task in enumerate(saved_tasks) if task in tasks}
    same_inputs = all(saved_cfg.backbone_fed(i) == model.cfg.backbone_fed(j) for i, j in head_of.items())
    if saved != wanted or len(head_of) < len(saved_tasks) or not same_inputs:
        raise CheckpointError(f"{path}: train.init_checkpoint has another model config than this run (only added tasks may differ)")
    state = {}
    for key, value in initial["state_dict"].items():
        if key.startswith("heads."):
            _, index, rest = key.split(".", 2)
            key = f"heads.{head_of[int(index)]}.{rest}"
        state[key] = value
    missing, unexpected = model.load_state_dict(state, strict=False)
    added = {f"heads.{index}." for index in range(len(tasks)) if index not in head_of.values()}
    if unexpected or any(not key.startswith(tuple(added)) for key in missing):
        raise CheckpointError(f"{path}: weights do not fit the model config it holds ({(unexpected or missing)[0]})")
    return set(head_of.values())


def fit(
    cfg: DetectionConfig,
    samples: Sequence[Sample],
    out_dir: Path,
    *,
    on_checkpoint: OnCheckpoint | None = None,
    show_progress: bool = True,
) -> Path:
    """Trains the detector on prepared samples with the harness; returns the final checkpoint path."""
    return harness_fit(DetectionTask(cfg, samples), out_dir, on_checkpoint=on_checkpoint, show_progress=show_progress)
