"""Training and evaluation samples for LiDARTouch, built from scene records.

A sample is a target camera frame with its previous and next frames (the photometric sources), the few-beam LiDAR
depth projected into the target image, the relative poses from the configured pose source and, for evaluation, the
ground-truth depth and the mask of pixels on vehicles moving with the ego vehicle.

Sources of frames:
- the synthetic city (`--data synth`), simulated in memory with KITTI's rig (64-beam LiDAR, `kitti_left` camera),
  rendered at twice the network resolution: ground truth is the renderer's exact depth, and the simulator knows which
  agents move with the ego vehicle;
- KITTI raw drives (`kitti:PATH`): ground truth is the drive's `proj_depth` when present, else the full scan;
- KITTI object frames (`kitti-object:PATH`, evaluation only, no neighbouring frames): ground truth = all 64 beams
  projected into the image, input = 4 of them.

KITTI `.bin` scans carry no ring index, so their scanlines are recovered from the elevation angle (`depth.beams`);
the synthetic LiDAR numbers its lasers from the top down, so its laser number is the scanline.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import cv2
import numpy as np

from depth.beams import few_beam_mask, kept_scanlines
from depth.config import DepthConfig
from depth.interpolation import interpolate_sparse_depth
from depth.pose import icp_pose, oracle_pose, pnp_pose, to_camera
from depth.projection import camera_points, project_points, scale_intrinsics
from scenes.adapters.base import Dataset
from scenes.ego_frame import KITTI_EGO
from scenes.errors import InputError
from scenes.geometry import SE3
from scenes.records import CameraFrame, Frame, LidarSweep

__all__ = [
    "DepthSample",
    "Rig",
    "dataset_samples",
    "few_beam_points",
    "full_scan_depth",
    "make_sample",
    "moving_with_ego_mask",
    "prior_depth",
    "synth_logs",
    "synth_samples",
]

# How scanlines are found: the laser number is the scanline ("index": the synthetic LiDAR numbers its lasers from the
# top down), laser numbers ranked by elevation ("ring": interleaved numbering such as AV2's), or clustering of the
# elevation angle ("elevation": KITTI .bin scans carry no laser number).
ScanlineSource = Literal["index", "ring", "elevation"]
# Relative speed under which a vehicle "moves with" the ego vehicle, and the ego speed above which that matters (m/s).
CO_MOVING_SPEED_M_PER_S: Final = 1.0
EGO_MOVING_SPEED_M_PER_S: Final = 2.0
SYNTH_RENDER_SCALE: Final = 2


@dataclass(frozen=True)
class Rig:
    """Which camera of the frames to use, where the LiDAR sits, and how to find its scanlines."""

    camera: str
    lidar_SE3_ego: SE3
    scanlines_from: ScanlineSource


@dataclass(frozen=True, eq=False)
class DepthSample:
    """One target frame at network resolution (`H x W`), with `S` source frames (S = 2 for training, 0 allowed).

    `source_T_target (S, 4, 4)` maps target-camera points into each source camera (identity where `pose_valid` is
    False or the pose is predicted by the pose network). `prior_depth_m` is `lidar_depth_m` interpolated to every
    pixel (the no-network baseline, and the prior of the `interpolated_prior` network). `gt_depth_m` and `moving_with_ego` are at the camera's native
    resolution, for evaluation.
    """

    log_id: str
    timestamp_ns: int
    image: np.ndarray
    source_images: np.ndarray
    lidar_depth_m: np.ndarray
    prior_depth_m: np.ndarray
    intrinsics: np.ndarray
    source_T_target: np.ndarray
    pose_valid: np.ndarray
    gt_depth_m: np.ndarray | None = None
    moving_with_ego: np.ndarray | None = None


def few_beam_points(sweep: LidarSweep, rig: Rig, scanlines: int, keep: int) -> np.ndarray:
    """Ego-frame points of the `keep` scanlines (of `scanlines`) a few-beam LiDAR would return."""
    points = sweep.points_xyz_m.astype(np.float64)
    if rig.scanlines_from == "index":
        return points[np.isin(sweep.laser_number, kept_scanlines(scanlines, keep))]
    laser = sweep.laser_number if rig.scanlines_from == "ring" else None
    mask = few_beam_mask(rig.lidar_SE3_ego.transform_points(points), scanlines, keep, laser)
    return points[mask]


def full_scan_depth(sweep: LidarSweep, camera: CameraFrame) -> np.ndarray:
    """Every return of the scan projected into `camera` at its native resolution (KITTI-style LiDAR ground truth)."""
    return project_points(camera_points(sweep.points_xyz_m, camera.ego_SE3_camera), camera.intrinsics, camera.height_px, camera.width_px)


def _resize(image: np.ndarray, height_px: int, width_px: int) -> np.ndarray:
    if image.shape[:2] == (height_px, width_px):
        return image
    return cv2.resize(image, (width_px, height_px), interpolation=cv2.INTER_AREA)


def _relative_pose(target: Frame, source: Frame, rig: Rig, config: DepthConfig, target_sparse_native: np.ndarray | None) -> np.ndarray | None:
    camera = target.cameras[rig.camera]
    pose = config.pose
    if pose.method == "posenet":
        return np.eye(4)
    if pose.method == "oracle":
        return oracle_pose(target.city_SE3_ego, source.city_SE3_ego, camera.ego_SE3_camera)
    if pose.method == "pnp":
        assert target_sparse_native is not None
        return pnp_pose(
            camera.image,
            source.cameras[rig.camera].image,
            target_sparse_native,
            camera.intrinsics,
            max_keypoints=pose.pnp_max_keypoints,
            ratio=pose.pnp_ratio,
            reprojection_px=pose.pnp_reprojection_px,
            min_translation_m=pose.pnp_min_translation_m,
            max_translation_m=pose.pnp_max_speed_m_per_s * abs(source.timestamp_ns - target.timestamp_ns) / 1e9,
            ego_R_camera=camera.ego_SE3_camera.rotation,
            max_sideslip_deg=pose.pnp_max_sideslip_deg,
        )
    assert target.lidar is not None and source.lidar is not None
    beams = config.beams
    ego_pose = icp_pose(few_beam_points(target.lidar, rig, beams.scanlines, beams.keep), few_beam_points(source.lidar, rig, beams.scanlines, beams.keep))
    return None if ego_pose is None else to_camera(ego_pose, camera.ego_SE3_camera)


def make_sample(
    target: Frame,
    sources: Sequence[Frame],
    rig: Rig,
    config: DepthConfig,
    *,
    gt_depth_m: np.ndarray | None = None,
    moving_with_ego: np.ndarray | None = None,
) -> DepthSample:
    """The sample of `target` with photometric `sources`, resized to the network resolution."""
    if rig.camera not in target.cameras:
        raise InputError(f"frame {target.log_id}@{target.timestamp_ns}: no camera {rig.camera!r} (has {sorted(target.cameras)})")
    if target.lidar is None:
        raise InputError(f"frame {target.log_id}@{target.timestamp_ns}: no LiDAR sweep")
    camera = target.cameras[rig.camera]
    height, width = config.network.height_px, config.network.width_px
    few = camera_points(few_beam_points(target.lidar, rig, config.beams.scanlines, config.beams.keep), camera.ego_SE3_camera)
    intrinsics = scale_intrinsics(camera.intrinsics, (camera.height_px, camera.width_px), (height, width))
    # PnP lifts its keypoints with the few-beam depth at the camera's native resolution; no other pose source needs it.
    native_sparse = project_points(few, camera.intrinsics, camera.height_px, camera.width_px) if config.pose.method == "pnp" else None
    lidar_depth = project_points(few, intrinsics, height, width)
    poses, valid = [], []
    for source in sources:
        pose = _relative_pose(target, source, rig, config, native_sparse)
        poses.append(np.eye(4) if pose is None else pose)
        valid.append(pose is not None)
    return DepthSample(
        log_id=target.log_id,
        timestamp_ns=target.timestamp_ns,
        image=_resize(camera.image, height, width),
        source_images=np.array([_resize(s.cameras[rig.camera].image, height, width) for s in sources], dtype=np.uint8).reshape(-1, height, width, 3),
        lidar_depth_m=lidar_depth,
        prior_depth_m=prior_depth(lidar_depth, config.network.max_depth_m),
        intrinsics=intrinsics.astype(np.float32),
        source_T_target=np.array(poses, dtype=np.float32).reshape(-1, 4, 4),
        pose_valid=np.array(valid, dtype=bool),
        gt_depth_m=gt_depth_m,
        moving_with_ego=moving_with_ego,
    )


def prior_depth(lidar_depth_m: np.ndarray, fallback_m: float) -> np.ndarray:
    """The few-beam depth interpolated to every pixel; `fallback_m` everywhere when no return reaches the image."""
    if not (lidar_depth_m > 0).any():
        return np.full(lidar_depth_m.shape, fallback_m, dtype=np.float32)
    return interpolate_sparse_depth(lidar_depth_m)


def _triplets(frames: Sequence[Frame], stride: int) -> Iterator[tuple[Frame, list[Frame]]]:
    for index in range(1, len(frames) - 1, stride):
        yield frames[index], [frames[index - 1], frames[index + 1]]


def moving_with_ego_mask(camera: CameraFrame, agent_velocity_m_per_s: np.ndarray, ego_index: int) -> np.ndarray:
    """Pixels of agents whose velocity is within 1 m/s of a moving ego vehicle's (the simulator's instance ids are
    `label * 1000 + agent % 1000`): what a photometric loss alone cannot tell from infinitely far surfaces."""
    mask = np.zeros((camera.height_px, camera.width_px), dtype=bool)
    ego_velocity = agent_velocity_m_per_s[ego_index, :2]
    if camera.instances is None or np.linalg.norm(ego_velocity) < EGO_MOVING_SPEED_M_PER_S:
        return mask
    relative = np.linalg.norm(agent_velocity_m_per_s[:, :2] - ego_velocity, axis=1)
    co_moving = np.flatnonzero(relative < CO_MOVING_SPEED_M_PER_S)
    co_moving = co_moving[co_moving != ego_index]
    things = camera.instances >= 1000
    return things & np.isin(camera.instances % 1000, co_moving % 1000)


def synth_logs(config: DepthConfig, seed: int, count: int, workers: int | None = None) -> list:
    """The synthetic city's KITTI-like drives for depth: 64-beam LiDAR and the `kitti_left` camera rendered at twice
    the network resolution; styles cycle over `config.synth.styles`."""
    from scenes.synth.world import SynthConfig, simulate_logs

    synth = config.synth
    logs = []
    for style_index, style in enumerate(synth.styles):
        count_for_style = len(range(style_index, count, len(synth.styles)))
        sim = SynthConfig(
            seconds=synth.seconds,
            rate_hz=synth.rate_hz,
            lidar_beams=config.beams.scanlines,
            cameras=(synth.camera,),
            image_width_px=SYNTH_RENDER_SCALE * config.network.width_px,
            image_height_px=SYNTH_RENDER_SCALE * config.network.height_px,
            style=style,
        )
        logs += simulate_logs(sim, seed + style_index, count_for_style, workers=workers)
    return logs


def synth_samples(config: DepthConfig, seed: int, count: int, *, evaluation: bool = False, workers: int | None = None) -> list[DepthSample]:
    """Samples of `count` simulated drives of `seed` (training samples; with `evaluation`, ground truth and the
    moving-with-ego mask too)."""
    from scenes.synth.world import LIDAR_NAME

    samples = []
    for log in synth_logs(config, seed, count, workers):
        rig = Rig(config.synth.camera, log.ego_SE3_sensors[LIDAR_NAME].inverse(), "index")
        for index in range(1, len(log.frames) - 1, config.train.frame_stride):
            target = log.frames[index]
            camera = target.cameras[rig.camera]
            extras = {}
            if evaluation:
                agents = log.agents
                extras = {"gt_depth_m": camera.depth_m, "moving_with_ego": moving_with_ego_mask(camera, agents.velocity_m_per_s[index], agents.ego_index)}
            samples.append(make_sample(target, [log.frames[index - 1], log.frames[index + 1]], rig, config, **extras))
    return samples


def dataset_samples(dataset: Dataset, config: DepthConfig, *, evaluation: bool = False, camera: str | None = None) -> list[DepthSample]:
    """Samples of a KITTI raw (`kitti:`, triplets of consecutive frames) or KITTI object (`kitti-object:`, single
    frames, evaluation only) dataset. The ego frame of both is KITTI's, 1.73 m below the Velodyne (`KITTI_EGO`)."""
    name = getattr(dataset, "name", "")
    if name not in ("kitti", "kitti-object"):
        raise InputError(f"{dataset.root}: depth reads KITTI raw drives (kitti:PATH) or KITTI object frames (kitti-object:PATH), not {name or 'this dataset'}")
    rig = Rig(camera or ("image_02" if name == "kitti" else "image_2"), KITTI_EGO.dataset_SE3_ego, "elevation")
    samples = []
    for log_id in dataset.logs():
        frames = list(dataset.frames(log_id))
        if name == "kitti-object":
            if not evaluation:
                raise InputError(f"{dataset.root}: KITTI object frames have no neighbouring frames to train on; use kitti:PATH (raw drives)")
            groups: Iterator[tuple[Frame, list[Frame]]] = ((frame, []) for frame in frames)
        else:
            groups = _triplets(frames, config.train.frame_stride)
        for target, sources in groups:
            extras = {}
            if evaluation:
                camera_frame = target.cameras[rig.camera]
                assert target.lidar is not None
                gt = camera_frame.depth_m if camera_frame.depth_m is not None else full_scan_depth(target.lidar, camera_frame)
                extras = {"gt_depth_m": gt}
            samples.append(make_sample(target, sources, rig, config, **extras))
    return samples
