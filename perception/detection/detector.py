"""`Detector`: the CenterPoint-style stage, `run(frame, past) -> Boxes3D` (ego frame, scores, velocity)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from perception.detection.config import DetectionConfig
from perception.detection.decode import decode
from perception.detection.model import CenterPointNet, make_pillar_batch
from perception.detection.sweeps import accumulate_sweeps
from scenes import __version__
from scenes.config import ConfigError, validate_config
from scenes.io import atomic_write
from scenes.records import Boxes3D, Frame

CHECKPOINT_KEYS = ("state_dict", "config", "drivestack_version")
# Trained on simulated logs; `benchmarks/quality_detection.py` gives its scores and the commands that reproduce it.
SHIPPED_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "centerpoint_synth.pt"


def save_checkpoint(path: str | os.PathLike[str], net: torch.nn.Module, cfg: DetectionConfig, **extra: Any) -> Path:
    """One file, written atomically: state dict, config, drivestack version and any `extra` (epoch, optimizer...)."""
    payload = {"state_dict": net.state_dict(), "config": cfg.model_dump(mode="json"), "drivestack_version": __version__, **extra}
    with atomic_write(path) as temporary:
        torch.save(payload, temporary)
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Reads a detector checkpoint, naming the file and the missing key on a malformed one."""
    checkpoint_path = Path(path)
    if not checkpoint_path.is_file():
        raise FileNotFoundError(f"{checkpoint_path}: detector checkpoint not found")
    try:
        payload = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt files
        raise ValueError(f"{checkpoint_path}: not a readable checkpoint ({error})") from None
    missing = [key for key in CHECKPOINT_KEYS if not isinstance(payload, dict) or key not in payload]
    if missing:
        raise ValueError(f"{checkpoint_path}: checkpoint lacks {missing}")
    return payload


class Detector:
    """Pillars -> CenterPoint heads -> decoded ego-frame boxes, for one frame and its past sweeps."""

    def __init__(self, cfg: DetectionConfig, net: CenterPointNet | None = None) -> None:
        self.cfg = cfg
        self.net = net if net is not None else CenterPointNet(cfg.model)
        self.net.eval()

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str]) -> Detector:
        payload = load_checkpoint(path)
        try:
            cfg = validate_config(payload["config"], DetectionConfig, f"{path}:config")
        except ConfigError as error:
            raise ValueError(str(error)) from None
        net = CenterPointNet(cfg.model)
        net.load_state_dict(payload["state_dict"])
        return cls(cfg, net)

    @property
    def past_sweeps(self) -> int:
        """Previous frames `run` uses (multi-sweep input)."""
        return self.cfg.model.num_sweeps - 1

    @torch.no_grad()
    def run_batch(self, frames: Sequence[Frame], pasts: Sequence[Sequence[Frame]]) -> list[Boxes3D]:
        clouds = [accumulate_sweeps(frame, past, self.cfg.model.num_sweeps) for frame, past in zip(frames, pasts)]
        outputs = self.net(make_pillar_batch(clouds, self.cfg.model))
        return decode(outputs, self.cfg.model)

    def run(self, frame: Frame, past: Sequence[Frame] = ()) -> Boxes3D:
        """Ego-frame boxes of `frame` (with `score` and `velocity_m_per_s`), using up to `num_sweeps - 1` past frames."""
        return self.run_batch([frame], [past])[0]

    def run_log(self, frames: Sequence[Frame]) -> list[Boxes3D]:
        """Detections of every frame of a log, each with its own preceding frames as past sweeps."""
        return [self.run(frame, frames[max(0, i - self.past_sweeps) : i]) for i, frame in enumerate(frames)]
