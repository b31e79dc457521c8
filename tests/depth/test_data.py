"""Depth samples from the synthetic city and from real KITTI object frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from depth.config import DepthConfig
from depth.data import DepthSample, Rig, dataset_samples, few_beam_points, make_sample, moving_with_ego_mask, synth_logs
from depth.losses import photometric_error
from depth.train import augmented
from scenes.adapters.kitti import KittiObjectDataset
from scenes.errors import InputError
from scenes.geometry import SE3
from scenes.records import CameraFrame
from scenes.synth.world import LIDAR_NAME
from tests.depth.conftest import TINY


def test_samples_have_network_resolution_and_four_beams(tiny_samples: list[DepthSample]) -> None:
    assert len(tiny_samples) == 3  # 5 frames: every frame with a previous and a next one
    sample = tiny_samples[0]
    assert sample.image.shape == (64, 128, 3) and sample.source_images.shape == (2, 64, 128, 3)
    assert sample.gt_depth_m is not None and sample.gt_depth_m.shape == (128, 256)  # rendered at twice the network size
    assert sample.pose_valid.all()
    lidar = sample.lidar_depth_m
    assert 0.01 < float((lidar > 0).mean()) < 0.15  # 4 scanlines: a few percent of the pixels
    # The few-beam depth agrees with the renderer's depth where both exist.
    gt = sample.gt_depth_m[::2, ::2]
    both = (lidar > 0) & (gt > 0)
    assert np.median(np.abs(lidar[both] - gt[both]) / gt[both]) < 0.05


def test_few_beam_points_keep_the_lidartouch_lines() -> None:
    (log,) = synth_logs(TINY, 0, 1)
    sweep = log.frames[0].lidar
    rig = Rig("kitti_left", log.ego_SE3_sensors[LIDAR_NAME].inverse(), "index")
    kept = few_beam_points(sweep, rig, 64, 4)
    expected = np.isin(sweep.laser_number, [8, 24, 40, 56])
    np.testing.assert_array_equal(kept, sweep.points_xyz_m[expected].astype(np.float64))
    by_elevation = few_beam_points(sweep, Rig("kitti_left", rig.lidar_SE3_ego, "elevation"), 64, 4)
    assert abs(len(by_elevation) - len(kept)) < 0.05 * len(kept)  # clustering finds the same lines


def test_pnp_pose_agrees_with_the_simulator() -> None:
    """PnP poses of the tiny synthetic KITTI drive against the simulator's, for sources one and two frames away.

    On these 256x128 frames PnP keeps only the poses it can trust (enough RANSAC inliers, a plausible speed), the
    others fall back to the identity. A trusted pose is typically 10-30 % off the travelled distance at this size, and
    never as far off as the distance itself: along rows of identical street furniture a RANSAC consensus of wrong
    matches can otherwise put the camera tens of metres away.
    """
    config = TINY.model_copy(update={"pose": TINY.pose.model_copy(update={"method": "pnp"})})
    relative_errors, pairs = [], 0
    for seed in range(6):
        (log,) = synth_logs(config, seed, 1)
        rig = Rig("kitti_left", log.ego_SE3_sensors[LIDAR_NAME].inverse(), "index")
        frames = log.frames
        for target, sources in ((1, [0, 2]), (2, [0, 1, 3, 4]), (3, [2, 4])):
            source_frames = [frames[index] for index in sources]
            pnp = make_sample(frames[target], source_frames, rig, config)
            oracle = make_sample(frames[target], source_frames, rig, TINY)
            error = np.linalg.norm(pnp.source_T_target[:, :3, 3] - oracle.source_T_target[:, :3, 3], axis=1)
            travelled = np.linalg.norm(oracle.source_T_target[:, :3, 3], axis=1)
            assert travelled.min() > 0.3
            relative_errors.extend(error[pnp.pose_valid] / travelled[pnp.pose_valid])
            identity = np.broadcast_to(np.eye(4), (int((~pnp.pose_valid).sum()), 4, 4))
            np.testing.assert_array_equal(pnp.source_T_target[~pnp.pose_valid], identity)
            pairs += len(sources)
    assert len(relative_errors) >= pairs // 4
    assert max(relative_errors) < 1.0 and np.median(relative_errors) < 0.3


def test_flip_mirrors_images_intrinsics_and_poses_consistently(tiny_samples: list[DepthSample]) -> None:
    """The warp of a flipped sample with the flipped pose reproduces the flipped warp: photometric errors match."""
    from kornia.geometry.depth import warp_frame_depth

    sample = tiny_samples[1]
    assert sample.gt_depth_m is not None
    gt = torch.from_numpy(sample.gt_depth_m[::2, ::2].copy())
    gt[gt <= 0] = 1000.0

    def warp_error(target: np.ndarray, sources: np.ndarray, intrinsics: np.ndarray, poses: np.ndarray, depth: torch.Tensor) -> float:
        t = torch.from_numpy(np.ascontiguousarray(target)).permute(2, 0, 1)[None].float()
        s = torch.from_numpy(np.ascontiguousarray(sources[0])).permute(2, 0, 1)[None].float()
        warped = warp_frame_depth(s, depth[None, None], torch.from_numpy(np.ascontiguousarray(poses[0]))[None], torch.from_numpy(intrinsics)[None])
        return float(photometric_error(t, warped, 0.85)[..., 4:-4, 8:-8].mean())

    plain = augmented(sample, None, TINY)
    flipped = None
    for seed in range(10):  # find a seed that flips
        candidate = augmented(sample, np.random.default_rng(seed), TINY.model_copy(update={"train": TINY.train.model_copy(update={"color_jitter": 0.0})}))
        if not np.array_equal(candidate[1], plain[1]):
            flipped = candidate
            break
    assert flipped is not None
    np.testing.assert_array_equal(flipped[1], plain[1][:, ::-1])
    original = warp_error(plain[1], plain[2], plain[4], plain[5], gt)
    mirrored = warp_error(flipped[1], flipped[2], flipped[4], flipped[5], gt.flip(-1))
    assert original < 0.1 and mirrored == pytest.approx(original, abs=0.01)


def test_moving_with_ego_mask_marks_co_moving_vehicles_only() -> None:
    instances = np.array([[26 * 1000 + 1, 26 * 1000 + 2], [7, 26 * 1000 + 3]], dtype=np.int32)
    camera = CameraFrame(0, "cam", np.zeros((2, 2, 3), np.uint8), np.eye(3), SE3.identity(), instances=instances)
    velocity = np.array([[10.0, 0.0], [10.5, 0.0], [0.0, 0.0], [10.0, 0.9]])  # agent 0 is the ego vehicle
    np.testing.assert_array_equal(moving_with_ego_mask(camera, velocity, 0), [[True, False], [False, True]])
    assert not moving_with_ego_mask(camera, np.zeros((4, 2)), 0).any()  # a stopped ego: nothing is co-moving


def test_kitti_object_samples_take_four_of_the_sixty_four_beams(shared_data: Path) -> None:
    dataset = KittiObjectDataset(shared_data / "kitti" / "object")
    samples = dataset_samples(dataset, DepthConfig(), evaluation=True)
    assert len(samples) == 3
    for sample in samples:
        assert sample.gt_depth_m is not None and 370 <= sample.gt_depth_m.shape[0] <= 376 and 1224 <= sample.gt_depth_m.shape[1] <= 1242
        assert sample.source_images.shape[0] == 0
        gt_returns = int((sample.gt_depth_m > 0).sum())
        input_returns = int((sample.lidar_depth_m > 0).sum())
        assert 10_000 < gt_returns and 300 < input_returns < gt_returns / 8
    with pytest.raises(InputError, match="no neighbouring frames"):
        dataset_samples(dataset, DepthConfig(), evaluation=False)
