"""A tiny LiDARTouch config and its simulated drive, shared by the depth tests."""

from __future__ import annotations

import pytest

from depth.config import DepthConfig
from depth.data import DepthSample, synth_samples

TINY = DepthConfig.model_validate(
    {
        "network": {
            "height_px": 64,
            "width_px": 128,
            "image_widths": [8, 8, 16, 16, 32],
            "lidar_widths": [4, 4, 8, 8, 16],
            "decoder_widths": [4, 8, 8, 16, 16],
            "blocks_per_stage": 1,
        },
        "pose": {"method": "oracle"},
        "synth": {"logs": 1, "seconds": 0.5, "validation_logs": 1},
        "train": {"epochs": 1, "batch_size": 2},
    }
)


@pytest.fixture(scope="session")
def tiny_samples() -> list[DepthSample]:
    """Evaluation samples (ground truth, moving-with-ego mask) of one 0.5 s simulated drive with oracle poses."""
    return synth_samples(TINY, 0, 1, evaluation=True)
