"""CenterPoint's box coder: the layout of the regression code and the box <-> code conversion at heatmap cells.

A box is coded at the output cell holding its centre: `offset` of the centre inside that cell (cells), `z` of the
centre (m), `size` as log length, width, height (m), `rotation` as sin yaw, cos yaw and `velocity` vx, vy (m/s), in
the ego frame or, with `velocity_frame="box"`, along and across the box's heading.

Why the box frame: a LiDAR shows a moving car's speed by how far its trail reaches, the same on both ends, but its
direction only by which end holds the newest points. Coded in the ego frame, a velocity is wrong in sign as long as the
network cannot yet tell front from back, so its mean over that ambiguity is 0 and the head learns nothing; coded along
the heading (cars and pedestrians move forwards), it is the speed, which the trail's length gives directly. Decoding
turns it back with the decoded heading, so a flipped heading flips the velocity with it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final, Literal

import numpy as np

from scenes.geometry import yaw_to_matrix
from scenes.records import Boxes3D

# Decoded log sizes are clipped to +-this before `exp` (an untrained head must not overflow).
LOG_SIZE_CLIP: Final = 5.0


@dataclass(frozen=True)
class CodeLayout:
    """Named slices of the regression code; in field order they tile channels `0 .. width`."""

    offset: slice
    z: slice
    size: slice
    rotation: slice
    velocity: slice

    @property
    def parts(self) -> dict[str, slice]:
        return {field.name: getattr(self, field.name) for field in fields(self)}

    @property
    def width(self) -> int:
        """Number of regression channels."""
        return max(int(part.stop) for part in self.parts.values())

    def weights(self, **per_part: float) -> tuple[float, ...]:
        """One weight per channel: `per_part[name]` on the channels of part `name`, 1.0 elsewhere."""
        unknown = sorted(set(per_part) - set(self.parts))
        if unknown:
            raise ValueError(f"unknown code parts {unknown}")
        weights = [1.0] * self.width
        for name, weight in per_part.items():
            part = self.parts[name]
            weights[part] = [weight] * (part.stop - part.start)
        return tuple(weights)


LAYOUT: Final = CodeLayout(
    offset=slice(0, 2), z=slice(2, 3), size=slice(3, 6), rotation=slice(6, 8), velocity=slice(8, 10)
)


@dataclass(frozen=True)
class CellCodes:
    """Boxes coded at their centre cells: `(N,)` int64 column and row, `(N, LAYOUT.width)` float32 code."""

    column: np.ndarray
    row: np.ndarray
    code: np.ndarray


@dataclass(frozen=True)
class DecodedBoxes:
    """Box parameters decoded from the code at `N` cells (float64, ego frame)."""

    center_m: np.ndarray  # (N, 3)
    size_lwh_m: np.ndarray  # (N, 3)
    yaw_rad: np.ndarray  # (N,)
    velocity_m_per_s: np.ndarray  # (N, 2)


@dataclass(frozen=True)
class BoxCoder:
    """Codes boxes on a BEV grid of `cell_m` (x, y) cells whose column 0, row 0 corner lies at `origin_m` (x, y)."""

    origin_m: tuple[float, float]
    cell_m: tuple[float, float]
    velocity_frame: Literal["ego", "box"] = "ego"

    def encode(self, boxes: Boxes3D) -> CellCodes:
        """The centre cell of every box and its code (zero velocity where `boxes` have none); cells may lie off-grid."""
        uv = (boxes.center_m[:, :2] - np.array(self.origin_m)) / np.array(self.cell_m)
        cells = np.floor(uv).astype(np.int64)
        velocity = boxes.velocity_m_per_s if boxes.velocity_m_per_s is not None else np.zeros((len(boxes), 2))
        code = np.zeros((len(boxes), LAYOUT.width))
        code[:, LAYOUT.offset] = uv - cells
        code[:, LAYOUT.z] = boxes.center_m[:, 2:3]
        code[:, LAYOUT.size] = np.log(boxes.size_lwh_m)
        code[:, LAYOUT.rotation] = np.column_stack([np.sin(boxes.yaw_rad), np.cos(boxes.yaw_rad)])
        code[:, LAYOUT.velocity] = velocity if self.velocity_frame == "ego" else _turned(velocity, -boxes.yaw_rad)
        return CellCodes(cells[:, 0], cells[:, 1], code.astype(np.float32))

    def decode(self, regression: np.ndarray, row: np.ndarray, column: np.ndarray) -> DecodedBoxes:
        """Boxes coded in the `(LAYOUT.width, H, W)` regression map at cells `(row, column)`."""
        width = regression.shape[2]
        code = regression.reshape(LAYOUT.width, -1)[:, row * width + column].astype(np.float64).T
        cells = np.column_stack([column, row])
        center_xy = (cells + code[:, LAYOUT.offset]) * np.array(self.cell_m) + np.array(self.origin_m)
        rotation = code[:, LAYOUT.rotation]
        yaw = np.arctan2(rotation[:, 0], rotation[:, 1])
        velocity = code[:, LAYOUT.velocity]
        return DecodedBoxes(
            center_m=np.column_stack([center_xy, code[:, LAYOUT.z]]),
            size_lwh_m=np.exp(np.clip(code[:, LAYOUT.size], -LOG_SIZE_CLIP, LOG_SIZE_CLIP)),
            yaw_rad=yaw,
            velocity_m_per_s=velocity.copy() if self.velocity_frame == "ego" else _turned(velocity, yaw),
        )


def _turned(vectors: np.ndarray, angle_rad: np.ndarray) -> np.ndarray:
    """`(N, 2)` vectors each turned by its own `(N,)` angle about z."""
    return np.einsum("nij,nj->ni", yaw_to_matrix(angle_rad)[:, :2, :2], vectors)
