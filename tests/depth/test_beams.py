"""Few-beam sparsification: scanline recovery from elevations and from ring indices, and the lines LiDARTouch keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depth.beams import elevation_rad, few_beam_mask, kept_scanlines, scanlines_from_elevation, scanlines_from_ring
from scenes.synth.lidar import HDL64_ELEVATIONS_DEG, VLP32C_ELEVATIONS_DEG

KITTI_SCAN: Final = Path("kitti/object/training/velodyne/000000.bin")


def synthetic_scan(elevations_deg: np.ndarray, points_per_line: np.ndarray, noise_deg: float, seed: int) -> np.ndarray:
    """Sensor-frame points of a spinning LiDAR with the given elevation table: line `i` holds `points_per_line[i]`
    returns at random azimuths and ranges, with Gaussian elevation noise."""
    rng = np.random.default_rng(seed)
    elevation = np.radians(np.repeat(elevations_deg, points_per_line) + rng.normal(0.0, noise_deg, points_per_line.sum()))
    azimuth = rng.uniform(-np.pi, np.pi, len(elevation))
    range_m = rng.uniform(2.0, 80.0, len(elevation))
    return np.stack([range_m * np.cos(elevation) * np.cos(azimuth), range_m * np.cos(elevation) * np.sin(azimuth), range_m * np.sin(elevation)], axis=1)


def test_elevation_of_hand_computed_points() -> None:
    points = np.array([[1.0, 0.0, 1.0], [0.0, 2.0, 0.0], [3.0, 4.0, -5.0]])
    np.testing.assert_allclose(elevation_rad(points), [np.pi / 4, 0.0, -np.pi / 4])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_elevation_clustering_recovers_hdl64_lines(seed: int) -> None:
    """Unevenly filled lines (50 to 600 returns each) of the HDL-64E table, 0.03 deg noise: every point gets its line,
    line 0 at +2 deg."""
    counts = np.random.default_rng(100 + seed).integers(50, 600, len(HDL64_ELEVATIONS_DEG))
    points = synthetic_scan(HDL64_ELEVATIONS_DEG, counts, noise_deg=0.03, seed=seed)
    lines = scanlines_from_elevation(points, 64)
    assert lines.dtype == np.int16
    np.testing.assert_array_equal(lines, np.repeat(np.arange(64), counts))


def test_elevation_clustering_is_independent_of_point_order() -> None:
    counts = np.full(32, 200)
    vlp32_top_first = np.sort(VLP32C_ELEVATIONS_DEG)[::-1]
    points = synthetic_scan(vlp32_top_first, counts, noise_deg=0.01, seed=3)
    order = np.random.default_rng(4).permutation(len(points))
    lines = scanlines_from_elevation(points[order], 32)
    np.testing.assert_array_equal(lines, np.repeat(np.arange(32), counts)[order])


def test_elevation_clustering_rejects_too_few_elevations() -> None:
    with pytest.raises(ValueError, match="distinct elevations"):
        scanlines_from_elevation(np.array([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]]), 2)
    with pytest.raises(ValueError, match="num_scanlines"):
        scanlines_from_elevation(np.array([[1.0, 0.0, 0.0]]), 0)


def test_ring_ranking_with_shuffled_laser_numbers() -> None:
    """Laser numbers in the VLP-32C's interleaved order (not by elevation) are ranked by elevation, top first."""
    elevations_deg = VLP32C_ELEVATIONS_DEG  # laser k fires at VLP32C_ELEVATIONS_DEG[k]: -25 deg first, +15 deg last
    laser_of_row = np.random.default_rng(5).permutation(32).astype(np.int16)
    counts = np.full(32, 50)
    points = synthetic_scan(elevations_deg[laser_of_row], counts, noise_deg=0.3, seed=6)
    laser_number = np.repeat(laser_of_row, counts)
    lines = scanlines_from_ring(points, laser_number)
    expected_line_of_laser = np.argsort(np.argsort(-elevations_deg))
    assert lines.dtype == np.int16
    np.testing.assert_array_equal(lines, expected_line_of_laser[laser_number])
    assert set(lines[laser_number == 31]) == {0} and set(lines[laser_number == 0]) == {31}


def test_ring_ranking_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="laser_number"):
        scanlines_from_ring(np.zeros((3, 3)), np.zeros(2, dtype=np.int16))


@pytest.mark.parametrize(
    ("num_scanlines", "keep", "expected"),
    [(64, 4, [8, 24, 40, 56]), (32, 4, [4, 12, 20, 28]), (64, 1, [32]), (64, 64, list(range(64))), (64, 16, list(range(2, 64, 4)))],
)
def test_kept_scanlines(num_scanlines: int, keep: int, expected: list[int]) -> None:
    np.testing.assert_array_equal(kept_scanlines(num_scanlines, keep), expected)


@pytest.mark.parametrize("keep", [0, -1, 65])
def test_kept_scanlines_rejects_bad_keep(keep: int) -> None:
    with pytest.raises(ValueError, match="keep must be in"):
        kept_scanlines(64, keep)


@settings(max_examples=50, deadline=None)
@given(num_scanlines=st.integers(1, 128), data=st.data())
def test_kept_scanlines_are_evenly_spaced_and_in_range(num_scanlines: int, data: st.DataObject) -> None:
    keep = data.draw(st.integers(1, num_scanlines))
    kept = kept_scanlines(num_scanlines, keep)
    assert len(kept) == keep
    assert kept.min() >= 0 and kept.max() < num_scanlines
    assert len(set(np.diff(kept).tolist())) <= 1


def test_few_beam_mask_by_ring_and_by_elevation_agree() -> None:
    counts = np.full(64, 100)
    points = synthetic_scan(HDL64_ELEVATIONS_DEG, counts, noise_deg=0.02, seed=7)
    laser_number = np.repeat(np.arange(64, dtype=np.int16), counts)
    expected = np.isin(laser_number, [8, 24, 40, 56])
    np.testing.assert_array_equal(few_beam_mask(points, 64, 4), expected)
    np.testing.assert_array_equal(few_beam_mask(points, 64, 4, laser_number=laser_number), expected)
    with pytest.raises(ValueError, match="distinct lasers"):
        few_beam_mask(points[: 6400 - 100], 64, 4, laser_number=laser_number[: 6400 - 100])


@pytest.mark.real
def test_real_kitti_scan_splits_into_64_lines(shared_data: Path) -> None:
    """A real KITTI HDL-64E scan: 64 lines of a plausible share each (a laser fires equally often per turn, upper ones
    lose returns to the sky), ordered top down, and 4 kept lines hold about 1/16 of the points."""
    raw = np.fromfile(shared_data / KITTI_SCAN, dtype=np.float32).reshape(-1, 4)
    points_sensor_m = raw[:, :3]
    lines = scanlines_from_elevation(points_sensor_m, 64)
    counts = np.bincount(lines, minlength=64)
    assert len(counts) == 64
    mean_count = len(points_sensor_m) / 64
    assert counts.min() > 0.2 * mean_count and counts.max() < 2.5 * mean_count
    median_elevation = np.array([np.median(elevation_rad(points_sensor_m[lines == line])) for line in range(64)])
    assert np.all(np.diff(median_elevation) < 0)
    assert -0.45 < median_elevation[-1] < -0.38 and 0.0 < median_elevation[0] < 0.08  # about -24 and +2 degrees
    kept_fraction = few_beam_mask(points_sensor_m, 64, 4).mean()
    assert 0.04 < kept_fraction < 0.085
