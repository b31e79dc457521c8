"""`Detector`: the CenterPoint-style stage, `run(frame, past) -> Boxes3D` (ego frame, scores, velocity)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import torch

from perception.detection.config import DetectionConfig, ModelConfig
from perception.detection.decode import decode
from perception.detection.ground import estimate_ground
from perception.detection.model import CenterPointNet, make_pillar_batch
from perception.detection.motion_heading import resolve_headings
from perception.detection.sweep_velocity import velocity_from_sweeps
from perception.detection.sweeps import accumulate_sweeps
from scenes.records import Boxes3D, Frame
from scenes.training.checkpoint import load_stage

STAGE: Final = "detection"
# Trained on simulated logs; `benchmarks/quality_detection.py` gives its scores and the commands that reproduce it.
SHIPPED_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "centerpoint_synth.pt"


class Detector:
    """Pillars -> CenterPoint heads -> decoded ego-frame boxes, for one frame and its past sweeps."""

    def __init__(self, cfg: DetectionConfig, net: CenterPointNet | None = None, device: torch.device | str = "cpu") -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.net = (net if net is not None else CenterPointNet(cfg.model)).to(self.device)
        self.net.eval()

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Detector:
        cfg, net = load_stage(path, STAGE, DetectionConfig, lambda config: CenterPointNet(config.model))
        return cls(cfg, net, device)

    def with_model(self, **changes: Any) -> Detector:
        """The same network with `ModelConfig` settings that do not change its weights replaced, whichever way it was
        trained: the ablations of one checkpoint (`ground_relative`, the height range in `range_m`, the velocity from the
        sweeps, the heading from motion, `use_intensity`)."""
        model = ModelConfig.model_validate({**self.cfg.model.model_dump(), **changes})
        return Detector(self.cfg.model_copy(update={"model": model}), self.net, self.device)

    @property
    def past_sweeps(self) -> int:
        """Previous frames `run` uses (multi-sweep input)."""
        return self.cfg.model.num_sweeps - 1

    @torch.no_grad()
    def run_batch(self, frames: Sequence[Frame], pasts: Sequence[Sequence[Frame]]) -> list[Boxes3D]:
        model = self.cfg.model
        clouds = [accumulate_sweeps(frame, past, model.num_sweeps) for frame, past in zip(frames, pasts, strict=True)]
        grounds = [estimate_ground(cloud, model.range_xy_m) for cloud in clouds] if model.ground_relative else []
        if grounds:
            clouds = [ground.relative(cloud) for ground, cloud in zip(grounds, clouds, strict=True)]
        outputs = self.net(make_pillar_batch(clouds, model).to(self.device))
        boxes = decode([(heatmap.cpu(), regression.cpu()) for heatmap, regression in outputs], model)
        if model.velocity_from_sweeps:
            boxes = [
                velocity_from_sweeps(cloud, found, turn_min_speed_m_per_s=model.motion_heading_min_speed_m_per_s)
                for cloud, found in zip(clouds, boxes, strict=True)
            ]
        elif model.motion_heading_min_speed_m_per_s is not None:
            boxes = [
                resolve_headings(cloud, found, min_speed_m_per_s=model.motion_heading_min_speed_m_per_s)
                for cloud, found in zip(clouds, boxes, strict=True)
            ]
        return [ground.boxes_absolute(found) for ground, found in zip(grounds, boxes, strict=True)] if grounds else boxes

    def run(self, frame: Frame, past: Sequence[Frame] = ()) -> Boxes3D:
        """Ego-frame boxes of `frame` (with `score` and `velocity_m_per_s`), using up to `num_sweeps - 1` past frames."""
        return self.run_batch([frame], [past])[0]

    def run_log(self, frames: Sequence[Frame]) -> list[Boxes3D]:
        """Detections of every frame of a log, each with its own preceding frames as past sweeps."""
        return [self.run(frame, frames[max(0, i - self.past_sweeps) : i]) for i, frame in enumerate(frames)]
