"""`fit(cfg, dataset, out_dir) -> checkpoint`: trains the detector in-process or, unchanged, under Ray Train (DDP).

Samples are (frame, past frames) of every log; each epoch visits them in a seeded permutation, augments each with a
generator seeded by `(seed, epoch, sample)` (so a resumed run draws exactly what an uninterrupted one would) and
steps AdamW under a one-cycle schedule. `out_dir/last.pt` (weights, optimizer, schedule, history) is written after
every epoch and resumed from when present; the final `out_dir/detector.pt` holds weights, config and version only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from perception.detection.augment import augment
from perception.detection.config import DetectionConfig, ModelConfig
from perception.detection.detector import load_checkpoint, save_checkpoint
from perception.detection.losses import centerpoint_loss
from perception.detection.model import CenterPointNet, make_pillar_batch
from perception.detection.sweeps import accumulate_sweeps
from perception.detection.targets import TaskTargets, build_targets
from scenes.adapters.base import Dataset
from scenes.io import atomic_write
from scenes.records import Frame

CheckpointCallback = Callable[[dict[str, float], Path | None], None]
LAST = "last.pt"
FINAL = "detector.pt"


@dataclass(frozen=True)
class Sample:
    """One training example: a frame with annotations and the frames before it (for multi-sweep input)."""

    frame: Frame
    past: tuple[Frame, ...]


def crop_to_grid(frame: Frame, cfg: ModelConfig) -> Frame:
    """The frame with only the LiDAR points that can reach the grid (any rotation about z, z within range)."""
    if frame.lidar is None:
        return frame
    x_min, y_min, z_min, x_max, y_max, z_max = cfg.range_m
    radius = float(np.hypot(max(abs(x_min), abs(x_max)), max(abs(y_min), abs(y_max))))
    xyz = frame.lidar.points_xyz_m
    keep = (np.hypot(xyz[:, 0], xyz[:, 1]) <= radius) & (xyz[:, 2] >= z_min) & (xyz[:, 2] < z_max)
    return replace(frame, lidar=frame.lidar.select(keep))


def samples_from_frames(frames: Sequence[Frame], cfg: ModelConfig, frame_stride: int = 1) -> list[Sample]:
    """Every `frame_stride`-th annotated LiDAR frame of one log with its `num_sweeps - 1` predecessors, cropped."""
    lidar_frames = [crop_to_grid(frame, cfg) for frame in frames if frame.lidar is not None]
    return [
        Sample(lidar_frames[index], tuple(lidar_frames[max(0, index - cfg.num_sweeps + 1) : index]))
        for index in range(0, len(lidar_frames), frame_stride)
        if lidar_frames[index].annotations is not None
    ]


def collect_samples(dataset: Dataset, cfg: ModelConfig, frame_stride: int = 1) -> list[Sample]:
    """Training samples of every log of `dataset`."""
    samples = [sample for log_id in dataset.logs() for sample in samples_from_frames(list(dataset.frames(log_id)), cfg, frame_stride)]
    if not samples:
        raise ValueError(f"{dataset.name}:{dataset.root}: no annotated LiDAR frames to train the detector on")
    return samples


def synth_samples(cfg: DetectionConfig, *, show_progress: bool = True) -> list[Sample]:
    """Samples of `cfg.synth.num_logs` simulated logs (seeds `cfg.synth.seed`, indices 0..n-1), LiDAR only."""
    from scenes.synth.world import SynthConfig, simulate_log

    synth = SynthConfig(seconds=cfg.synth.seconds, cameras=())
    samples: list[Sample] = []
    with Progress(TextColumn("[bold]simulating logs"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), disable=not show_progress) as progress:
        for index in progress.track(range(cfg.synth.num_logs)):
            log = simulate_log(synth, cfg.synth.seed, index)
            samples.extend(samples_from_frames(log.frames, cfg.model, cfg.synth.frame_stride))
    return samples


def prepare(sample: Sample, cfg: DetectionConfig, rng: np.random.Generator | None) -> tuple[np.ndarray, list[TaskTargets]]:
    """Multi-sweep points and targets of one sample, augmented when `rng` is given."""
    points = accumulate_sweeps(sample.frame, sample.past, cfg.model.num_sweeps)
    boxes = sample.frame.annotations
    assert boxes is not None
    if boxes.num_interior_pts is not None and cfg.train.min_interior_points > 0:
        boxes = boxes.select(boxes.num_interior_pts >= cfg.train.min_interior_points)
    if rng is not None:
        train = cfg.train
        points, boxes = augment(
            points,
            boxes,
            rng,
            flip_probability=train.flip_probability,
            rotation_range_rad=train.rotation_range_rad,
            scale_range=train.scale_range,
        )
    targets = build_targets(
        boxes,
        cfg.model,
        gaussian_overlap=cfg.train.gaussian_overlap,
        min_radius=cfg.train.min_gaussian_radius,
        max_objects=cfg.train.max_objects,
    )
    return points, targets


def _distributed() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def plot_loss_curve(history: Sequence[dict[str, float]], path: Path) -> None:
    """Per-epoch mean losses (total, heatmap, regression) as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    epochs = [entry["epoch"] for entry in history]
    for key in ("loss", "heatmap_loss", "regression_loss"):
        axis.plot(epochs, [entry[key] for entry in history], marker="o", label=key)
    axis.set_xlabel("epoch")
    axis.set_ylabel("mean training loss")
    axis.set_yscale("log")
    axis.set_title("CenterPoint detector training")
    axis.grid(True, alpha=0.3)
    axis.legend()
    figure.tight_layout()
    with atomic_write(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)


def fit(
    cfg: DetectionConfig,
    dataset: Dataset | Sequence[Sample],
    out_dir: Path,
    *,
    on_checkpoint: CheckpointCallback | None = None,
    show_progress: bool = True,
) -> Path:
    """Trains the detector on `dataset` (a `Dataset` or prepared samples); returns the final checkpoint path."""
    out_dir = Path(out_dir)
    train = cfg.train
    rank, world_size = _distributed()
    if train.batch_size % world_size:
        raise ValueError(f"train.batch_size {train.batch_size} is not divisible by the {world_size} workers")
    if train.num_threads is not None:
        torch.set_num_threads(train.num_threads)
    samples = list(dataset) if not isinstance(dataset, Dataset) else collect_samples(dataset, cfg.model, cfg.synth.frame_stride)
    torch.manual_seed(train.seed)
    net = CenterPointNet(cfg.model)
    model: torch.nn.Module = net
    if world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(net)
    optimizer = torch.optim.AdamW(net.parameters(), lr=train.learning_rate, weight_decay=train.weight_decay)
    steps_per_epoch = math.ceil(len(samples) / train.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=train.learning_rate, total_steps=steps_per_epoch * train.epochs, pct_start=0.3
    )
    if train.init_checkpoint is not None:
        initial = load_checkpoint(train.init_checkpoint)
        if initial["config"]["model"] != cfg.model.model_dump(mode="json"):
            raise ValueError(f"{train.init_checkpoint}: train.init_checkpoint has another model config than this run")
        net.load_state_dict(initial["state_dict"])
    history: list[dict[str, float]] = []
    start_epoch = 0
    last_path = out_dir / LAST
    if last_path.is_file():
        state = torch.load(last_path, map_location="cpu", weights_only=False)
        net.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = list(state["history"])
        start_epoch = int(state["epoch"]) + 1
    code_weights = torch.tensor(train.code_weights, dtype=torch.float32)
    per_worker = train.batch_size // world_size
    progress = Progress(
        TextColumn("[bold]detector[/] epoch {task.fields[epoch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeRemainingColumn(),
        disable=not show_progress or rank != 0,
    )
    with progress:
        bar = progress.add_task("train", total=steps_per_epoch * (train.epochs - start_epoch), epoch=start_epoch, loss=float("nan"))
        for epoch in range(start_epoch, train.epochs):
            model.train()
            order = np.random.default_rng([train.seed, epoch]).permutation(len(samples))
            sums = {"loss": 0.0, "heatmap_loss": 0.0, "regression_loss": 0.0}
            for step in range(steps_per_epoch):
                global_batch = order[step * train.batch_size : (step + 1) * train.batch_size]
                local = global_batch[rank::world_size][:per_worker]
                prepared = [
                    prepare(samples[i], cfg, np.random.default_rng([train.seed, epoch, int(i)]) if train.augment else None)
                    for i in local
                ]
                outputs = model(make_pillar_batch([points for points, _ in prepared], cfg.model))
                loss, parts = centerpoint_loss(outputs, [targets for _, targets in prepared], code_weights, train.regression_weight)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm=35.0)
                optimizer.step()
                scheduler.step()
                sums["loss"] += float(loss.detach())
                for key, value in parts.items():
                    sums[key] += value
                progress.update(bar, advance=1, epoch=epoch, loss=float(loss.detach()))
            metrics = {key: value / steps_per_epoch for key, value in sums.items()}
            if world_size > 1:
                reduced = torch.tensor([metrics[k] for k in sorted(metrics)], dtype=torch.float64)
                dist.all_reduce(reduced)
                metrics = {k: float(v) / world_size for k, v in zip(sorted(metrics), reduced)}
            metrics["epoch"] = float(epoch)
            metrics["learning_rate"] = float(scheduler.get_last_lr()[0])
            history.append(metrics)
            checkpoint_path: Path | None = None
            if rank == 0:
                checkpoint_path = save_checkpoint(
                    last_path,
                    net,
                    cfg,
                    optimizer=optimizer.state_dict(),
                    scheduler=scheduler.state_dict(),
                    history=history,
                    epoch=epoch,
                )
                plot_loss_curve(history, out_dir / "loss_curve.png")
            if on_checkpoint is not None:
                on_checkpoint(dict(metrics), checkpoint_path)
    final = out_dir / FINAL
    if rank == 0:
        net.eval()
        save_checkpoint(final, net, cfg, history=history)
    if world_size > 1:
        dist.barrier()
    return final

