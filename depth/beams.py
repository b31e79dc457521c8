"""Few-beam LiDAR sparsification: assign each point of a spinning-LiDAR sweep to a scanline, keep a few evenly spaced lines.

LiDARTouch trains and evaluates with a 4-beam LiDAR simulated from KITTI's 64-beam HDL-64E by keeping scanlines
8, 24, 40 and 56 (every 16th line, starting half a step below the top). Scanlines are numbered by decreasing elevation:
line 0 is the highest laser.

Two ways to find a point's scanline:
- with a ring/laser index (AV2, nuScenes, the synthetic LiDAR): lasers are not numbered by elevation on every sensor
  (the VLP-32C interleaves them), so the distinct laser numbers are ranked by the median elevation of their points;
- without one (KITTI `.bin` scans): the elevation angle `atan2(z, hypot(x, y))` is clustered into lines with a 1-D
  k-means.

Elevations are only meaningful about the LiDAR's own origin, so every function here takes points in the LiDAR sensor
frame (KITTI's Velodyne frame is both), not in an ego frame whose origin is elsewhere. On real HDL-64E scans each
laser's elevation seen from the sensor origin wanders by a few tenths of a degree (the lasers sit off the rotation
axis, which shifts near returns most), comparable to the 0.33-0.5 degree line spacing: elevation clusters are then
horizontal bands that approximate the lasers, which is what the sparsification needs (one thin ring of points per
kept line, about 1/16 of the sweep for 4 of 64).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from sklearn.cluster import KMeans

__all__ = ["elevation_rad", "few_beam_mask", "kept_scanlines", "scanlines_from_elevation", "scanlines_from_ring"]

KMEANS_MAX_ITERATIONS: Final = 100


def elevation_rad(points_sensor_m: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Elevation angle `(N,)` of sensor-frame points `(N, 3)` above the sensor's horizontal plane."""
    points = _points(points_sensor_m)
    return np.arctan2(points[:, 2], np.hypot(points[:, 0], points[:, 1]))


def scanlines_from_elevation(points_sensor_m: np.ndarray, num_scanlines: int) -> npt.NDArray[np.int16]:
    """Scanline `(N,)` int16 of each sensor-frame point `(N, 3)`, from a 1-D k-means of the elevation angles into
    `num_scanlines` lines; line 0 has the highest elevation.

    K-means runs twice, initialised at the elevation quantiles (right when the lines hold similar point counts, as on a
    real scan) and at the means of the segments between the `num_scanlines - 1` widest gaps of the sorted elevations
    (right when the lines are well separated but unevenly filled, e.g. upper lasers that mostly see sky); the solution
    with the lower within-line variance wins.
    """
    if num_scanlines < 1:
        raise ValueError(f"num_scanlines must be >= 1, got {num_scanlines}")
    elevation = elevation_rad(points_sensor_m)
    distinct = np.unique(elevation)
    if len(distinct) < num_scanlines:
        raise ValueError(f"{len(distinct)} distinct elevations cannot form {num_scanlines} scanlines")
    samples = elevation[:, None]
    best: KMeans | None = None
    for initial_centres in (_quantile_centres(elevation, num_scanlines), _gap_centres(distinct, num_scanlines)):
        fitted = KMeans(num_scanlines, init=initial_centres[:, None], n_init=1, max_iter=KMEANS_MAX_ITERATIONS).fit(samples)
        if best is None or fitted.inertia_ < best.inertia_:
            best = fitted
    assert best is not None
    return _rank_descending(best.cluster_centers_[:, 0])[best.labels_]


def scanlines_from_ring(points_sensor_m: np.ndarray, laser_number: np.ndarray) -> npt.NDArray[np.int16]:
    """Scanline `(N,)` int16 of each sensor-frame point `(N, 3)` from its laser number: the distinct laser numbers
    ranked by the median elevation of their points, line 0 the highest."""
    elevation = elevation_rad(points_sensor_m)
    lasers = np.asarray(laser_number)
    if lasers.shape != elevation.shape:
        raise ValueError(f"laser_number: expected shape {elevation.shape}, got {lasers.shape}")
    distinct, laser_index = np.unique(lasers, return_inverse=True)
    median_elevation = np.asarray(ndimage.median(elevation, labels=laser_index, index=np.arange(len(distinct))), dtype=np.float64)
    return _rank_descending(median_elevation)[laser_index]


def kept_scanlines(num_scanlines: int, keep: int) -> npt.NDArray[np.int64]:
    """Indices of the `keep` scanlines kept out of `num_scanlines`: every `step = num_scanlines // keep`-th line from
    `step // 2` (64 -> 4 keeps 8, 24, 40, 56 as LiDARTouch; 32 -> 4 keeps 4, 12, 20, 28)."""
    if keep < 1 or keep > num_scanlines:
        raise ValueError(f"keep must be in [1, num_scanlines={num_scanlines}], got {keep}")
    step = num_scanlines // keep
    return step // 2 + step * np.arange(keep, dtype=np.int64)


def few_beam_mask(points_sensor_m: np.ndarray, num_scanlines: int, keep: int, laser_number: np.ndarray | None = None) -> npt.NDArray[np.bool_]:
    """Mask `(N,)` of the sensor-frame points `(N, 3)` on the `keep` scanlines of `kept_scanlines(num_scanlines, keep)`.

    Scanlines come from `laser_number` when given (it must hold exactly `num_scanlines` distinct lasers, so apply the
    mask to a whole sweep, before any cropping), otherwise from the elevation angles.
    """
    kept = kept_scanlines(num_scanlines, keep)
    if laser_number is None:
        lines = scanlines_from_elevation(points_sensor_m, num_scanlines)
    else:
        lasers_present = len(np.unique(laser_number))
        if lasers_present != num_scanlines:
            raise ValueError(f"laser_number holds {lasers_present} distinct lasers, expected num_scanlines={num_scanlines}")
        lines = scanlines_from_ring(points_sensor_m, laser_number)
    return np.isin(lines, kept)


def _points(points_sensor_m: npt.ArrayLike) -> npt.NDArray[np.float64]:
    points = np.asarray(points_sensor_m, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f"points_sensor_m: expected (N, 3), got {points.shape}")
    return points[:, :3]


def _rank_descending(values: npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
    """Rank of each value, 0 for the largest."""
    rank = np.empty(len(values), dtype=np.int16)
    rank[np.argsort(-values, kind="stable")] = np.arange(len(values), dtype=np.int16)
    return rank


def _quantile_centres(elevation: npt.NDArray[np.float64], count: int) -> npt.NDArray[np.float64]:
    """The `count` elevation quantiles at `(i + 1/2) / count`, nudged apart where they coincide (k-means needs
    distinct initial centres)."""
    centres = np.quantile(elevation, (np.arange(count) + 0.5) / count)
    return centres + np.arange(count) * 1e-9


def _gap_centres(sorted_distinct: npt.NDArray[np.float64], count: int) -> npt.NDArray[np.float64]:
    """Means of the `count` runs of sorted distinct elevations split at the `count - 1` widest gaps."""
    cuts = np.sort(np.argsort(np.diff(sorted_distinct), kind="stable")[len(sorted_distinct) - count :] + 1)
    return np.array([run.mean() for run in np.split(sorted_distinct, cuts)])
