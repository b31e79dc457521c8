"""Pinhole cameras of the synthetic city, rendered by ray casting the same scene as the LiDAR.

Every pixel gets an exact z-depth, a Cityscapes label id, a Cityscapes-style instance id (`label * 1000 + agent` for
thing classes) and an RGB colour: the style's base colour of the surface, modulated by a procedural solid (3-D)
texture evaluated at the hit point in the city frame (so a surface looks the same from every viewpoint, which is
what photometric self-supervision needs), lit by the sun with cast shadows and ambient light, with headlights and
lit windows at night, road markings, and exponential fog.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

from scenes.geometry import SE3
from scenes.records import CameraFrame
from scenes.synth.kernels import value_noise
from scenes.synth.lidar import FrameScene
from scenes.synth.styles import INSTANCE_LABELS, Style
from scenes.synth.styles import CityscapesLabel as L

__all__ = ["CAMERA_MOUNTS", "CameraMount", "camera_names", "ego_SE3_camera", "intrinsics", "render_camera", "solid_texture"]

# Rotation taking OpenCV camera axes (x right, y down, z forward) to ego axes (x forward, y left, z up) at yaw 0.
_EGO_R_CAMERA: Final = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
STEREO_BASELINE_M: Final = 0.2986
KITTI_BASELINE_M: Final = 0.54


@dataclass(frozen=True)
class CameraMount:
    """Where a camera sits on the ego vehicle (ego frame, metres) and where it looks (yaw about +z, pitch down)."""

    translation_m: tuple[float, float, float]
    yaw_deg: float
    hfov_deg: float
    pitch_deg: float = 0.0


# Argoverse 2 camera names with their approximate mounting on the AV2 vehicle.
CAMERA_MOUNTS: Final[Mapping[str, CameraMount]] = {
    "ring_front_center": CameraMount((1.63, 0.0, 1.42), 0.0, 64.0),
    "ring_front_left": CameraMount((1.55, 0.48, 1.42), 45.0, 64.0),
    "ring_front_right": CameraMount((1.55, -0.48, 1.42), -45.0, 64.0),
    "ring_side_left": CameraMount((1.05, 0.9, 1.42), 99.0, 64.0),
    "ring_side_right": CameraMount((1.05, -0.9, 1.42), -99.0, 64.0),
    "ring_rear_left": CameraMount((-0.85, 0.75, 1.42), 153.0, 64.0),
    "ring_rear_right": CameraMount((-0.85, -0.75, 1.42), -153.0, 64.0),
    "stereo_front_left": CameraMount((1.6, 0.5 * STEREO_BASELINE_M, 1.5), 0.0, 58.0),
    "stereo_front_right": CameraMount((1.6, -0.5 * STEREO_BASELINE_M, 1.5), 0.0, 58.0),
    # KITTI's colour pair (image_02 / image_03): 1.65 m above the road, 0.27 m ahead of the LiDAR, 0.54 m baseline,
    # 81.4 degree horizontal field of view (fx 721 px over 1242 px).
    "kitti_left": CameraMount((1.62, 0.06, 1.65), 0.0, 81.4),
    "kitti_right": CameraMount((1.62, 0.06 - KITTI_BASELINE_M, 1.65), 0.0, 81.4),
}


def camera_names() -> tuple[str, ...]:
    return tuple(CAMERA_MOUNTS)


def ego_SE3_camera(name: str) -> SE3:
    mount = CAMERA_MOUNTS[name]
    yaw, pitch = np.radians(mount.yaw_deg), np.radians(mount.pitch_deg)
    c, s = np.cos(yaw), np.sin(yaw)
    yaw_matrix = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    cp, sp = np.cos(pitch), np.sin(pitch)
    pitch_matrix = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    return SE3(yaw_matrix @ pitch_matrix @ _EGO_R_CAMERA, np.asarray(mount.translation_m, dtype=np.float64))


def intrinsics(name: str, width_px: int, height_px: int) -> np.ndarray:
    """Pinhole intrinsics with square pixels and the principal point at the image centre."""
    focal = 0.5 * width_px / np.tan(0.5 * np.radians(CAMERA_MOUNTS[name].hfov_deg))
    return np.array([[focal, 0.0, 0.5 * (width_px - 1)], [0.0, focal, 0.5 * (height_px - 1)], [0.0, 0.0, 1.0]])


def _hash(cells: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic pseudo-random values in [0, 1) of integer lattice cells `(..., 3)`."""
    h = (cells[..., 0] * 73856093) ^ (cells[..., 1] * 19349663) ^ (cells[..., 2] * 83492791) ^ (salt * 2654435761)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h ^ (h >> 16)) & 0xFFFF).astype(np.float64) / 65536.0


def solid_texture(points: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Multiplicative texture around 1: coarse and fine noise whose strength depends on the material."""
    strength = np.full(len(points), 0.25)
    strength[np.isin(label, (L.ROAD, L.SIDEWALK))] = 0.35
    strength[np.isin(label, (L.VEGETATION, L.TERRAIN))] = 0.6
    strength[np.isin(label, (L.CAR, L.TRUCK, L.BUS))] = 0.1
    noise = 0.6 * value_noise(points, 2.0, 1) + 0.4 * value_noise(points, 0.25, 2)
    return 1.0 + strength * (noise - 0.5) * 2.0


def _windows(points: np.ndarray, normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Window mask on vertical building faces and which windows are lit (for night scenes)."""
    along = np.where(np.abs(normal[:, 0]) > np.abs(normal[:, 1]), points[:, 1], points[:, 0])
    floor = np.floor(points[:, 2] / 3.2)
    column = np.floor(along / 2.6)
    inside = (np.mod(points[:, 2], 3.2) > 1.0) & (np.mod(points[:, 2], 3.2) < 2.4) & (np.mod(along, 2.6) > 0.6) & (np.mod(along, 2.6) < 2.0)
    vertical = np.abs(normal[:, 2]) < 0.3
    cells = np.stack([column, floor, np.zeros_like(floor)], axis=1)
    cells = np.where(np.isfinite(cells), cells, 0.0).astype(np.int64)
    return inside & vertical & (points[:, 2] > 1.0), _hash(cells, 7) < 0.3


def render_camera(
    scene: FrameScene,
    name: str,
    city_SE3_ego: SE3,
    width_px: int,
    height_px: int,
    timestamp_ns: int,
    style: Style,
    rng: np.random.Generator,
    agent_colors: np.ndarray,
    marking: Callable[[np.ndarray], np.ndarray],
) -> CameraFrame:
    """Renders camera `name`: RGB, z-depth (0 for sky), Cityscapes label ids and instance ids.

    `agent_colors[a]` is the body colour (RGB in [0, 1]) of agent `a`; `marking(xy)` says which road points are paint.
    """
    k = intrinsics(name, width_px, height_px)
    ego_T_camera = ego_SE3_camera(name)
    city_SE3_camera = city_SE3_ego.compose(ego_T_camera)
    cols, rows = np.meshgrid(np.arange(width_px, dtype=np.float64), np.arange(height_px, dtype=np.float64))
    rays_camera = np.stack([(cols - k[0, 2]) / k[0, 0], (rows - k[1, 2]) / k[1, 1], np.ones_like(cols)], axis=-1).reshape(-1, 3)
    directions = rays_camera @ city_SE3_camera.rotation.T
    origin = city_SE3_camera.translation
    hits = scene.cast(origin, directions)
    hit = hits.hit
    depth = np.where(hit, hits.t, 0.0)
    lighting = style.lighting
    palette = style.palette_array()
    albedo = palette[hits.label] * hits.albedo[:, None]
    vehicle = hit & (hits.owner >= 0) & np.isin(hits.label, (L.CAR, L.TRUCK, L.BUS))
    albedo[vehicle] = agent_colors[hits.owner[vehicle]] * hits.albedo[vehicle, None]
    on_road = hit & (hits.label == L.ROAD) & (hits.owner < 0)
    paint = np.zeros(len(hit), dtype=bool)
    paint[on_road] = marking(hits.points[on_road, :2])
    albedo[paint] = 0.85
    albedo[hit] *= solid_texture(hits.points[hit], hits.label[hit])[:, None]
    windows, lit = _windows(hits.points, hits.normal)
    windows &= hit & (hits.label == L.BUILDING)
    albedo[windows] *= 0.35
    sun = np.asarray(lighting.sun_direction, dtype=np.float64)
    sun /= np.linalg.norm(sun)
    lambert = np.clip(hits.normal @ sun, 0.0, None)
    shadow = np.ones(len(hit))
    lit_side = hit & (lambert > 0)
    if lit_side.any() and lighting.sun_intensity > 0.1:
        occluded = scene.cast(hits.points[lit_side] + 0.05 * hits.normal[lit_side], np.broadcast_to(sun, (int(lit_side.sum()), 3))).hit
        shadow[lit_side] = np.where(occluded, 0.0, 1.0)
    light = lighting.ambient * (0.75 + 0.25 * hits.normal[:, 2]) + lighting.sun_intensity * lambert * shadow
    if lighting.night:
        forward = city_SE3_ego.rotation[:, 0]
        unit = directions / np.linalg.norm(directions, axis=1, keepdims=True)
        beam = np.clip(unit @ forward, 0.0, 1.0) ** 6
        distance = np.where(hit, hits.t * np.linalg.norm(directions, axis=1), np.inf)
        light = light + 0.9 * beam / (1.0 + (distance / 10.0) ** 2)
    color = albedo * light[:, None]
    if lighting.night:
        glow = windows & lit
        color[glow] = np.array([1.0, 0.85, 0.5])
    elevation = np.clip(directions[:, 2] / np.linalg.norm(directions, axis=1), 0.0, 1.0) ** 0.6
    sky = (np.outer(1.0 - elevation, lighting.sky_horizon_rgb) + np.outer(elevation, lighting.sky_zenith_rgb)) / 255.0
    color[~hit] = sky[~hit]
    if lighting.fog_density_per_m > 0:
        distance = np.where(hit, hits.t * np.linalg.norm(directions, axis=1), np.inf)
        transmittance = np.exp(-lighting.fog_density_per_m * distance)[:, None]
        color = color * transmittance + (np.asarray(lighting.fog_rgb) / 255.0) * (1.0 - transmittance)
    color = np.clip(color * lighting.exposure, 0.0, 1.0) ** (1.0 / 1.2) * 255.0
    color += rng.normal(0.0, lighting.sensor_noise_std, color.shape)
    image = np.clip(np.round(color), 0, 255).astype(np.uint8).reshape(height_px, width_px, 3)
    labels = np.where(hit, hits.label, L.SKY).astype(np.uint8)
    instances = labels.astype(np.int32)
    things = hit & (hits.owner >= 0) & np.isin(labels, tuple(INSTANCE_LABELS))
    instances[things] = labels[things].astype(np.int32) * 1000 + hits.owner[things] % 1000
    return CameraFrame(
        timestamp_ns,
        name,
        image,
        k,
        ego_T_camera,
        depth_m=depth.reshape(height_px, width_px).astype(np.float32),
        semantics=labels.reshape(height_px, width_px),
        instances=instances.reshape(height_px, width_px),
    )
