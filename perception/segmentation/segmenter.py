"""Inference with a trained MTAF segmenter: `Segmenter.from_checkpoint(path).predict(images)`.

The checkpoint holds the whole training model (segmenter and discriminators); only the segmenter's weights are
loaded. Images of any size are resized to the network size, and the logits of the main output of head 0 (the MTKT
student; the only head otherwise) are upsampled back to the input size before the argmax.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from perception.segmentation.classes import class_names, colorize
from perception.segmentation.config import SegmentationConfig
from perception.segmentation.deeplab import DeepLabV2
from perception.segmentation.train import STAGE
from scenes.errors import InputError
from scenes.training.checkpoint import load_stage

__all__ = ["SHIPPED_CHECKPOINT", "Segmenter"]

# The shipped MTKT segmenter (its student head), trained by
# `drivestack train segmentation --config configs/segmentation/mtkt_synth.yaml --data synth`.
SHIPPED_CHECKPOINT: Final = Path(__file__).resolve().parent / "checkpoints" / "mtkt_synth.pt"

_PREFIX = "segmenter."


class Segmenter:
    """Class indices `(B, H, W)` uint8 of the config's class table from RGB images `(B, H, W, 3)` uint8."""

    def __init__(self, config: SegmentationConfig, net: DeepLabV2, device: torch.device | str = "cpu") -> None:
        self.config = config
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Segmenter:
        config, net = load_stage(
            path, STAGE, SegmentationConfig, lambda config: DeepLabV2(config.network, len(class_names(config.classes)), config.num_heads), prefix=_PREFIX
        )
        return cls(config, net, device)

    @property
    def class_names(self) -> tuple[str, ...]:
        return class_names(self.config.classes)

    def colorize(self, labels: np.ndarray) -> np.ndarray:
        """Class indices `(H, W)` -> `(H, W, 3)` uint8 RGB with the class table's palette."""
        return colorize(labels, self.config.classes)

    @torch.inference_mode()
    def predict(self, images: np.ndarray) -> np.ndarray:
        """`(B, H, W, 3)` uint8 RGB (one size) -> class indices `(B, H, W)` uint8 at the same size."""
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise InputError(f"expected (B, H, W, 3) uint8 images, got shape {images.shape} and dtype {images.dtype}")
        height, width = images.shape[1:3]
        network = self.config.network
        resized = np.stack([cv2.resize(image, (network.width_px, network.height_px), interpolation=cv2.INTER_AREA) for image in images])
        batch = torch.from_numpy(resized).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        logits = self.net(batch)[0].main
        upsampled = F.interpolate(logits, (height, width), mode="bilinear", align_corners=False)
        return upsampled.argmax(dim=1).to(torch.uint8).cpu().numpy()
