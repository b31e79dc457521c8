"""Numba kernels against brute-force numpy / shapely references, on hypothesis-generated inputs; mmcv cross-checks."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon

from perception.detection.box_ops import bev_iou, count_points_in_boxes, points_in_boxes, points_in_each_box, rotated_nms
from perception.detection.voxelize import VoxelGrid, voxelize_dynamic, voxelize_hard
from scenes.geometry import bev_box_corners, points_in_box_mask

GRID = VoxelGrid((-4.0, -3.0, -1.0, 4.0, 3.0, 1.0), (0.5, 0.5, 0.5))
HAS_MMCV = importlib.util.find_spec("mmcv") is not None
needs_mmcv = pytest.mark.skipif(not HAS_MMCV, reason="mmcv is not installed (`make test-mmcv` builds it)")

seeds = st.integers(min_value=0, max_value=2**31 - 1)


def _cloud(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xyz = rng.uniform(-5.0, 5.0, size=(n, 3)).astype(np.float32)
    return np.concatenate([xyz, rng.uniform(0, 1, size=(n, 2)).astype(np.float32)], axis=1)


def _brute_voxel_keys(points: np.ndarray, grid: VoxelGrid) -> np.ndarray:
    low, size, shape = grid.as_arrays()
    cell_float = np.floor((points[:, :3].astype(np.float64) - low) / size)
    inside = np.all((cell_float >= 0) & (cell_float < shape), axis=1)
    cell = np.where(inside[:, None], cell_float, 0).astype(np.int64)
    keys = np.full(len(points), -1, dtype=np.int64)
    keys[inside] = (cell[inside, 2] * shape[1] + cell[inside, 1]) * shape[0] + cell[inside, 0]
    return keys


@settings(max_examples=30, deadline=None)
@given(seed=seeds, n=st.integers(min_value=0, max_value=400))
def test_dynamic_voxelization_matches_brute_force(seed: int, n: int) -> None:
    points = _cloud(seed, n)
    voxels = voxelize_dynamic(points, GRID)
    keys = _brute_voxel_keys(points, GRID)
    assert np.array_equal(voxels.point_voxel >= 0, keys >= 0)
    _, _, shape = GRID.as_arrays()
    coords = voxels.coords_zyx.astype(np.int64)
    voxel_keys = (coords[:, 0] * shape[1] + coords[:, 1]) * shape[0] + coords[:, 2]
    inside = keys >= 0
    assert np.array_equal(voxel_keys[voxels.point_voxel[inside]], keys[inside])
    assert len(np.unique(voxel_keys)) == len(voxel_keys) == len(np.unique(keys[inside]))
    assert np.array_equal(voxels.num_points, np.bincount(voxels.point_voxel[inside], minlength=len(voxel_keys)))
    first_seen = [k for k in dict.fromkeys(keys[inside].tolist())]
    assert voxel_keys.tolist() == first_seen


@settings(max_examples=30, deadline=None)
@given(seed=seeds, n=st.integers(min_value=0, max_value=400), max_points=st.integers(1, 5), max_voxels=st.integers(1, 60))
def test_hard_voxelization_matches_brute_force(seed: int, n: int, max_points: int, max_voxels: int) -> None:
    points = _cloud(seed, n)
    result = voxelize_hard(points, GRID, max_points, max_voxels)
    keys = _brute_voxel_keys(points, GRID)
    expected: dict[int, list[np.ndarray]] = {}
    for point, key in zip(points, keys, strict=True):
        if key < 0 or (key not in expected and len(expected) >= max_voxels):
            continue
        bucket = expected.setdefault(int(key), [])
        if len(bucket) < max_points:
            bucket.append(point)
    assert len(result.voxels) == len(expected)
    for slot, bucket in enumerate(expected.values()):
        assert result.num_points[slot] == len(bucket)
        assert np.array_equal(result.voxels[slot, : len(bucket)], np.array(bucket))
        assert not result.voxels[slot, len(bucket) :].any()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(*[st.floats(allow_nan=False, allow_infinity=False, width=32)] * 3), max_size=30))
def test_voxelization_never_indexes_out_of_the_grid(values: list[tuple[float, float, float]]) -> None:
    points = np.array(values, dtype=np.float32).reshape(-1, 3)
    voxels = voxelize_dynamic(points, GRID)
    keys = _brute_voxel_keys(points, GRID)
    assert np.array_equal(voxels.point_voxel >= 0, keys >= 0)
    assert np.all((voxels.coords_zyx >= 0) & (voxels.coords_zyx < np.array(GRID.shape_zyx)))


def test_voxelization_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="expected \\(N, >=3\\)"):
        voxelize_dynamic(np.zeros((4, 2)), GRID)
    with pytest.raises(ValueError, match="max <= min"):
        VoxelGrid((0, 0, 0, -1, 1, 1), (1, 1, 1))
    with pytest.raises(ValueError, match="max_points"):
        voxelize_hard(np.zeros((4, 3)), GRID, 0, 10)


boxes_strategy = st.integers(min_value=0, max_value=12)


def _boxes(seed: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(-4, 4, size=(m, 3)), rng.uniform(0.3, 4.0, size=(m, 3)), rng.uniform(-np.pi, np.pi, size=m)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, m=boxes_strategy)
def test_points_in_boxes_matches_geometry_mask(seed: int, m: int) -> None:
    points = _cloud(seed + 1, 300)[:, :3]
    center, size, yaw = _boxes(seed, m)
    index = points_in_boxes(points, center, size, yaw)
    expected = np.full(len(points), -1)
    for j in range(m)[::-1]:
        expected[points_in_box_mask(points, center[j], size[j], yaw[j])] = j
    assert np.array_equal(index, expected)
    assert count_points_in_boxes(points, center, size, yaw).sum() == np.count_nonzero(expected >= 0)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, m=boxes_strategy)
def test_points_in_each_box_lists_every_box_of_overlapping_ones(seed: int, m: int) -> None:
    points = _cloud(seed + 1, 300)[:, :3]
    center, size, yaw = _boxes(seed, m)
    inside = points_in_each_box(points, center, size, yaw)
    assert len(inside) == m
    for j in range(m):
        assert np.array_equal(inside[j], np.flatnonzero(points_in_box_mask(points, center[j], size[j], yaw[j])))


def test_points_in_each_box_by_hand() -> None:
    # Boxes on x in [-1, 1] and [0.5, 1.5]: the point at x = 0.7 is in both, x = -0.5 in the first, x = 1.8 and the
    # point 2 m up in none.
    points = np.array([[0.7, 0.0, 0.0], [-0.5, 0.0, 0.0], [1.8, 0.0, 0.0], [0.7, 0.0, 2.0]])
    inside = points_in_each_box(points, [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], [[2.0, 1.0, 1.0], [1.0, 1.0, 1.0]], [0.0, 0.0])
    assert [part.tolist() for part in inside] == [[0, 1], [0]]


def _shapely_iou(a: np.ndarray, b: np.ndarray) -> float:
    pa, pb = Polygon(a), Polygon(b)
    union = pa.union(pb).area
    return pa.intersection(pb).area / union if union > 0 else 0.0


@settings(max_examples=40, deadline=None)
@given(seed=seeds, n=st.integers(0, 6), m=st.integers(0, 6))
def test_bev_iou_matches_shapely(seed: int, n: int, m: int) -> None:
    ca, sa, ya = _boxes(seed, n)
    cb, sb, yb = _boxes(seed + 7, m)
    iou = bev_iou(ca[:, :2], sa[:, :2], ya, cb[:, :2], sb[:, :2], yb)
    corners_a = bev_box_corners(ca[:, :2], sa[:, :2], ya)
    corners_b = bev_box_corners(cb[:, :2], sb[:, :2], yb)
    expected = np.array([[_shapely_iou(a, b) for b in corners_b] for a in corners_a]).reshape(n, m)
    np.testing.assert_allclose(iou, expected, atol=1e-9)


def test_bev_iou_hand_cases() -> None:
    # Identical boxes: 1; half-overlapping unit squares: 1/3; the same square rotated 90 degrees: 1.
    iou = bev_iou([[0, 0]], [[2, 1]], [0.0], [[0.0, 0.0], [0.5, 0.0], [0.0, 0.0]], [[2, 1], [1, 1], [1, 2]], [0.0, 0.0, np.pi / 2])
    np.testing.assert_allclose(iou, [[1.0, 0.5, 1.0]], atol=1e-12)
    unit = bev_iou([[0, 0]], [[1, 1]], [0.0], [[0.5, 0]], [[1, 1]], [0.0])
    np.testing.assert_allclose(unit, [[1 / 3]], atol=1e-12)


def _brute_nms(center: np.ndarray, size: np.ndarray, yaw: np.ndarray, score: np.ndarray, threshold: float) -> list[int]:
    corners = bev_box_corners(center, size, yaw)
    order = list(np.argsort(-score, kind="stable"))
    keep: list[int] = []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        order = [j for j in order if _shapely_iou(corners[i], corners[j]) <= threshold]
    return keep


@settings(max_examples=30, deadline=None)
@given(seed=seeds, m=st.integers(0, 15), threshold=st.sampled_from([0.1, 0.3, 0.5]))
def test_rotated_nms_matches_brute_force(seed: int, m: int, threshold: float) -> None:
    center, size, yaw = _boxes(seed, m)
    score = np.random.default_rng(seed).random(m)
    keep = rotated_nms(center[:, :2], size[:, :2], yaw, score, threshold)
    assert keep.tolist() == _brute_nms(center[:, :2], size[:, :2], yaw, score, threshold)


@pytest.mark.mmcv
@needs_mmcv
def test_voxelization_matches_mmcv() -> None:
    import torch
    from mmcv.ops import Voxelization

    points = _cloud(0, 5000)
    grid = VoxelGrid((-4.0, -3.0, -1.0, 4.0, 3.0, 1.0), (0.5, 0.5, 0.5))
    ours = voxelize_hard(points, grid, 5, 1000)
    layer = Voxelization(list(grid.voxel_size_m), list(grid.range_m), 5, 1000, deterministic=True)
    voxels, coords, counts = layer(torch.from_numpy(points))
    np.testing.assert_array_equal(ours.coords_zyx, coords.numpy())
    np.testing.assert_array_equal(ours.num_points, counts.numpy())
    np.testing.assert_allclose(ours.voxels, voxels.numpy())


@pytest.mark.mmcv
@needs_mmcv
def test_points_in_boxes_matches_mmcv() -> None:
    import torch
    from mmcv.ops import points_in_boxes_cpu

    points = _cloud(1, 2000)[:, :3].astype(np.float64)
    center, size, yaw = _boxes(2, 8)
    bottom = center.copy()
    bottom[:, 2] -= size[:, 2] / 2  # mmcv boxes are (x, y, z_bottom, dx, dy, dz, yaw)
    boxes = torch.from_numpy(np.concatenate([bottom, size, yaw[:, None]], axis=1)[None]).float()
    inside = points_in_boxes_cpu(torch.from_numpy(points[None]).float(), boxes)[0].numpy().astype(bool)
    ours = points_in_boxes(points, center, size, yaw)
    # mmcv computes in float32: only points within float32 rounding of a face may disagree (none on random data).
    assert np.count_nonzero((ours >= 0) != inside.any(axis=1)) <= 1


@pytest.mark.mmcv
@needs_mmcv
def test_rotated_iou_and_nms_match_mmcv() -> None:
    import torch
    from mmcv.ops import box_iou_rotated, nms_rotated

    center, size, yaw = _boxes(3, 12)
    rboxes = torch.from_numpy(np.concatenate([center[:, :2], size[:, :2], yaw[:, None]], axis=1)).float()
    np.testing.assert_allclose(
        bev_iou(center[:, :2], size[:, :2], yaw, center[:, :2], size[:, :2], yaw), box_iou_rotated(rboxes, rboxes).numpy(), atol=1e-4
    )
    score = np.random.default_rng(3).random(12)
    _, keep = nms_rotated(rboxes, torch.from_numpy(score).float(), 0.3)
    assert sorted(keep.numpy().tolist()) == sorted(rotated_nms(center[:, :2], size[:, :2], yaw, score, 0.3).tolist())
