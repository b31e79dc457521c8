"""CenterPoint-style network: pillar feature net -> BEV scatter -> 2D backbone -> class-grouped center heads.

Pillar feature net (PointPillars): each point is decorated with its offset to the mean of its pillar and to the
pillar centre, passed through Linear-BN-ReLU and max-pooled per pillar (dynamic pillars, no point limit).
Backbone: two strided conv stages (stride 2 and 4 of the pillar grid) upsampled to the output stride (2, as CenterPoint's
pillar model, or 1) and concatenated.
Heads (CenterPoint): a 3x3 conv shared by all heads (or, for heads added to a trained network, the backbone's features
directly), then per class group a 3x3 conv, one heatmap (one channel per class) and a shared regression of
the box code (`perception.detection.box_coder`) at every output cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from perception.detection.box_coder import LAYOUT
from perception.detection.config import ModelConfig
from perception.detection.sweeps import POINT_FEATURES
from perception.detection.voxelize import voxelize_dynamic

HEATMAP_PRIOR = 0.01


@dataclass(frozen=True)
class PillarBatch:
    """Points of a batch of samples and their pillars (dynamic voxelization), ready for `CenterPointNet`."""

    points: torch.Tensor  # (N, 5) x, y, z, intensity, time lag
    point_pillar: torch.Tensor  # (N,) global pillar index
    pillar_coords: torch.Tensor  # (P, 3) batch index, row (y), column (x)
    batch_size: int
    point_sweep: torch.Tensor  # (N,) sweep of each point: 0 the current one, 1 the latest past one, ...

    def to(self, device: torch.device) -> PillarBatch:
        return PillarBatch(
            self.points.to(device), self.point_pillar.to(device), self.pillar_coords.to(device), self.batch_size, self.point_sweep.to(device)
        )


def sweep_index(time_lag_s: np.ndarray) -> np.ndarray:
    """`(N,)` int64 rank of each point's time lag among the cloud's distinct lags: 0 for the current sweep, 1 for the
    latest past one, ... (independent of the dataset's sweep rate)."""
    _, rank = np.unique(time_lag_s, return_inverse=True)
    return rank.astype(np.int64).reshape(-1)


def make_pillar_batch(point_clouds: list[np.ndarray], cfg: ModelConfig) -> PillarBatch:
    """Voxelizes each `(N, 5)` point cloud into pillars of `cfg.grid` and stacks them into one batch (every intensity
    read as 0 without `cfg.use_intensity`, as its rank within the kept points with `cfg.intensity_as_rank`)."""
    grid = cfg.grid
    intensity, time_lag = POINT_FEATURES.index("intensity"), POINT_FEATURES.index("time_lag_s")
    points, point_pillar, coords, sweeps = [], [], [], []
    offset = 0
    for batch_index, cloud in enumerate(point_clouds):
        if cloud.ndim != 2 or cloud.shape[1] != len(POINT_FEATURES):
            raise ValueError(f"make_pillar_batch: expected (N, {len(POINT_FEATURES)}) points, got {cloud.shape}")
        voxels = voxelize_dynamic(cloud, grid)
        inside = voxels.point_voxel >= 0
        kept = cloud[inside]
        if not cfg.use_intensity:
            kept[:, intensity] = 0.0
        elif cfg.intensity_as_rank and len(kept):
            kept[:, intensity] = rankdata(kept[:, intensity]) / len(kept)
        points.append(kept)
        sweeps.append(sweep_index(kept[:, time_lag]))
        point_pillar.append(voxels.point_voxel[inside].astype(np.int64) + offset)
        pillar = np.empty((len(voxels.coords_zyx), 3), dtype=np.int64)
        pillar[:, 0] = batch_index
        pillar[:, 1:] = voxels.coords_zyx[:, 1:]
        coords.append(pillar)
        offset += len(voxels.coords_zyx)
    return PillarBatch(
        torch.from_numpy(np.concatenate(points)),
        torch.from_numpy(np.concatenate(point_pillar)),
        torch.from_numpy(np.concatenate(coords)),
        len(point_clouds),
        torch.from_numpy(np.concatenate(sweeps)),
    )


class PillarFeatureNet(nn.Module):
    """Decorated points -> Linear/BN/ReLU -> per-pillar max -> dense BEV pseudo-image (with `cfg.sweep_occupancy`,
    plus one channel per sweep: log(1 + that sweep's points in the pillar))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.range_low = (cfg.range_m[0], cfg.range_m[1])
        self.pillar_size = cfg.pillar_size_m
        _, self.ny, self.nx = cfg.grid.shape_zyx
        in_channels = len(POINT_FEATURES) + 3 + 2
        self.linear = nn.Linear(in_channels, cfg.pillar_channels, bias=False)
        self.norm = nn.BatchNorm1d(cfg.pillar_channels, eps=1e-3)
        self.occupancy_sweeps = cfg.num_sweeps if cfg.sweep_occupancy else 0
        self.out_channels = cfg.pillar_channels + self.occupancy_sweeps

    def forward(self, batch: PillarBatch) -> torch.Tensor:
        points, index = batch.points, batch.point_pillar
        num_pillars = batch.pillar_coords.shape[0]
        counts = torch.zeros(num_pillars, dtype=points.dtype, device=points.device).index_add_(0, index, torch.ones_like(index, dtype=points.dtype))
        sums = torch.zeros(num_pillars, 3, dtype=points.dtype, device=points.device).index_add_(0, index, points[:, :3])
        mean = sums / counts.clamp(min=1)[:, None]
        coords = batch.pillar_coords[index]
        center_x = (coords[:, 2].to(points.dtype) + 0.5) * self.pillar_size[0] + self.range_low[0]
        center_y = (coords[:, 1].to(points.dtype) + 0.5) * self.pillar_size[1] + self.range_low[1]
        decorated = torch.cat(
            [points, points[:, :3] - mean[index], (points[:, 0] - center_x)[:, None], (points[:, 1] - center_y)[:, None]],
            dim=1,
        )
        features = torch.relu(self.norm(self.linear(decorated)))
        pooled = torch.zeros(num_pillars, features.shape[1], dtype=features.dtype, device=features.device)
        pooled = pooled.scatter_reduce(0, index[:, None].expand_as(features), features, reduce="amax", include_self=False)
        if self.occupancy_sweeps:
            sweep = batch.point_sweep.clamp(max=self.occupancy_sweeps - 1)
            occupancy = torch.zeros(num_pillars * self.occupancy_sweeps, dtype=points.dtype, device=points.device)
            occupancy.index_add_(0, index * self.occupancy_sweeps + sweep, torch.ones_like(points[:, 0]))
            pooled = torch.cat([pooled, torch.log1p(occupancy.view(num_pillars, self.occupancy_sweeps))], dim=1)
        canvas = torch.zeros(batch.batch_size, self.ny * self.nx, pooled.shape[1], dtype=features.dtype, device=features.device)
        flat = batch.pillar_coords[:, 1] * self.nx + batch.pillar_coords[:, 2]
        canvas[batch.pillar_coords[:, 0], flat] = pooled
        return canvas.view(batch.batch_size, self.ny, self.nx, -1).permute(0, 3, 1, 2).contiguous()


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels, eps=1e-3),
        nn.ReLU(inplace=True),
    )


def _upsample(in_channels: int, out_channels: int, factor: int) -> nn.Sequential:
    """Transposed convolution by `factor` (a 1x1 convolution when `factor` is 1), BN, ReLU."""
    layer: nn.Module
    if factor > 1:
        layer = nn.ConvTranspose2d(in_channels, out_channels, factor, stride=factor, bias=False)
    else:
        layer = nn.Conv2d(in_channels, out_channels, 1, bias=False)
    return nn.Sequential(layer, nn.BatchNorm2d(out_channels, eps=1e-3), nn.ReLU(inplace=True))


class BEVBackbone(nn.Module):
    """Two downsampling stages (stride 2, 4) and their concatenation upsampled to `out_stride` (1 or 2)."""

    def __init__(self, in_channels: int, channels: tuple[int, int], layers: tuple[int, int], out_stride: int = 2) -> None:
        super().__init__()
        c1, c2 = channels
        self.stage1 = nn.Sequential(_conv(in_channels, c1, 2), *[_conv(c1, c1) for _ in range(layers[0] - 1)])
        self.stage2 = nn.Sequential(_conv(c1, c2, 2), *[_conv(c2, c2) for _ in range(layers[1] - 1)])
        self.up1 = _upsample(c1, c1, 2 // out_stride)
        self.up2 = _upsample(c2, c1, 4 // out_stride)
        self.out_channels = 2 * c1

    def forward(self, bev: torch.Tensor) -> torch.Tensor:
        x1 = self.stage1(bev)
        x2 = self.stage2(x1)
        return torch.cat([self.up1(x1), self.up2(x2)], dim=1)


class CenterHead(nn.Module):
    """One class group: a 3x3 conv shared by 1x1 heatmap logits (C, H, W) and box-code regression (LAYOUT.width, H, W)."""

    def __init__(self, in_channels: int, channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = _conv(in_channels, channels)
        self.heatmap = nn.Conv2d(channels, num_classes, 1)
        self.regression = nn.Conv2d(channels, LAYOUT.width, 1)
        assert self.heatmap.bias is not None  # nn.Conv2d has a bias unless built with bias=False
        nn.init.constant_(self.heatmap.bias, float(-np.log((1 - HEATMAP_PRIOR) / HEATMAP_PRIOR)))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.conv(features)
        return self.heatmap(hidden), self.regression(hidden)


class CenterPointNet(nn.Module):
    """Pillars -> per-task (heatmap logits, regression) at `cfg.out_stride` of the pillar grid."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.pillars = PillarFeatureNet(cfg)
        self.backbone = BEVBackbone(self.pillars.out_channels, cfg.backbone_channels, cfg.backbone_layers, cfg.out_stride)
        self.shared = _conv(self.backbone.out_channels, cfg.head_channels)
        self.heads = nn.ModuleList(
            CenterHead(self.backbone.out_channels if cfg.backbone_fed(index) else cfg.head_channels, cfg.head_channels, len(task))
            for index, task in enumerate(cfg.tasks)
        )
        self.frozen: list[nn.Module] = []

    def freeze_all_but(self, trainable_heads: Sequence[int]) -> None:
        """Freezes everything but the heads at `trainable_heads`: no gradients, and BatchNorm statistics kept in
        training too (the frozen modules stay in eval mode), so the frozen heads' outputs do not change."""
        trainable = set(trainable_heads)
        self.frozen = [self.pillars, self.backbone, self.shared, *(head for index, head in enumerate(self.heads) if index not in trainable)]
        for module in self.frozen:
            module.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> CenterPointNet:
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

    def forward(self, batch: PillarBatch) -> list[tuple[torch.Tensor, torch.Tensor]]:
        backbone = self.backbone(self.pillars(batch))
        shared = self.shared(backbone)
        return [head(backbone if self.cfg.backbone_fed(index) else shared) for index, head in enumerate(self.heads)]
