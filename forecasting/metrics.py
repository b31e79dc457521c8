"""Forecasting metrics: accuracy (minADE_k, minFDE_k, miss rate), off-road rate and temporal consistency.

Accuracy follows the nuScenes prediction challenge: the `k` most probable modes are kept, ADE/FDE are minimised over
them, and a forecast *misses* when the maximum pointwise L2 error of every kept mode is >= 2 m.

Temporal consistency follows CAB (Ben-Younes et al., "Raising context awareness in motion forecasting", section 4.4):
an agent is forecast again at every step, so several forecasts issued at successive times `s_1 < ... < s_n` target
the same future instant `t*`. Taking each forecast's most likely mode at `t*` gives points `p_1 ... p_n`:

- dispersion (m) = sqrt(mean_i ||p_i - mean(p)||^2), the spread of the successive predictions of one future point;
- convergence-to-range(tau) (s) = t* - s_i, with `i` the earliest forecast such that every later one (`j >= i`)
  lies within `tau` metres of the last one `p_n`: how long before `t*` the predictions stop moving by more than tau.
  Larger is better (earlier convergence); it is 0 when only the last forecast is within range of itself.

Both are averaged over every (agent, t*) pair seen by at least two forecasts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import shapely

from scenes.records import Forecasts, LaneGraph

MISS_THRESHOLD_M: Final = 2.0
CONVERGENCE_TAUS_M: Final = (0.2, 1.0, 5.0)

__all__ = [
    "MISS_THRESHOLD_M",
    "CONVERGENCE_TAUS_M",
    "top_k_modes",
    "min_ade_k",
    "min_fde_k",
    "miss_rate_k",
    "DrivableArea",
    "off_road_rate",
    "dispersion_m",
    "convergence_to_range_s",
    "TemporalConsistency",
    "temporal_consistency",
]


def _check_shapes(trajectories_m: np.ndarray, mode_scores: np.ndarray, ground_truth_m: np.ndarray) -> None:
    if trajectories_m.ndim != 4 or trajectories_m.shape[-1] != 2:
        raise ValueError(f"trajectories_m: expected (A, K, T, 2), got {trajectories_m.shape}")
    agents, modes, steps, _ = trajectories_m.shape
    if mode_scores.shape != (agents, modes):
        raise ValueError(f"mode_scores: expected {(agents, modes)}, got {mode_scores.shape}")
    if ground_truth_m.shape != (agents, steps, 2):
        raise ValueError(f"ground_truth_m: expected {(agents, steps, 2)}, got {ground_truth_m.shape}")


def top_k_modes(trajectories_m: npt.ArrayLike, mode_scores: npt.ArrayLike, k: int) -> np.ndarray:
    """The `k` most probable modes of every agent, most probable first: `(A, min(k, K), T, 2)`."""
    trajectories = np.asarray(trajectories_m, dtype=np.float64)
    scores = np.asarray(mode_scores, dtype=np.float64)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(trajectories, order[:, :, None, None], axis=1)


def _errors(trajectories_m: npt.ArrayLike, mode_scores: npt.ArrayLike, ground_truth_m: npt.ArrayLike, k: int) -> np.ndarray:
    trajectories = np.asarray(trajectories_m, dtype=np.float64)
    scores = np.asarray(mode_scores, dtype=np.float64)
    truth = np.asarray(ground_truth_m, dtype=np.float64)
    _check_shapes(trajectories, scores, truth)
    kept = top_k_modes(trajectories, scores, k)
    return np.linalg.norm(kept - truth[:, None], axis=-1)  # (A, k, T)


def min_ade_k(trajectories_m: npt.ArrayLike, mode_scores: npt.ArrayLike, ground_truth_m: npt.ArrayLike, k: int) -> float:
    """Mean over agents of the smallest average displacement error among the `k` most probable modes (m)."""
    errors = _errors(trajectories_m, mode_scores, ground_truth_m, k)
    return float(errors.mean(axis=2).min(axis=1).mean()) if len(errors) else float("nan")


def min_fde_k(trajectories_m: npt.ArrayLike, mode_scores: npt.ArrayLike, ground_truth_m: npt.ArrayLike, k: int) -> float:
    """Mean over agents of the smallest final displacement error among the `k` most probable modes (m)."""
    errors = _errors(trajectories_m, mode_scores, ground_truth_m, k)
    return float(errors[:, :, -1].min(axis=1).mean()) if len(errors) else float("nan")


def miss_rate_k(
    trajectories_m: npt.ArrayLike,
    mode_scores: npt.ArrayLike,
    ground_truth_m: npt.ArrayLike,
    k: int,
    threshold_m: float = MISS_THRESHOLD_M,
) -> float:
    """Fraction of agents whose `k` most probable modes all have a maximum pointwise error >= `threshold_m`."""
    errors = _errors(trajectories_m, mode_scores, ground_truth_m, k)
    if not len(errors):
        return float("nan")
    return float((errors.max(axis=2).min(axis=1) >= threshold_m).mean())


@dataclass(frozen=True)
class DrivableArea:
    """The drivable area of a map: a raster layer when the lane graph has one, else the union of its polygons."""

    lane_graph: LaneGraph
    polygons: shapely.Geometry | None

    @classmethod
    def from_lane_graph(cls, lane_graph: LaneGraph) -> DrivableArea:
        if "drivable_area" in lane_graph.rasters:
            return cls(lane_graph, None)
        if not lane_graph.drivable_areas_m:
            raise ValueError(
                f"LaneGraph({lane_graph.city_name}): neither a 'drivable_area' raster nor drivable_areas_m polygons"
            )
        polygons = [shapely.Polygon(area[:, :2]).buffer(0) for area in lane_graph.drivable_areas_m]
        union = shapely.union_all(polygons)
        shapely.prepare(union)
        return cls(lane_graph, union)

    def contains(self, points_xy_city_m: npt.ArrayLike) -> np.ndarray:
        """Whether each city point `(N, 2)` lies on the drivable area (outside the raster counts as off-road)."""
        points = np.asarray(points_xy_city_m, dtype=np.float64).reshape(-1, 2)
        if self.polygons is None:
            return self.lane_graph.rasters["drivable_area"].lookup(points, outside=0).astype(bool)
        return shapely.contains_xy(self.polygons, points[:, 0], points[:, 1]) | shapely.intersects_xy(
            self.polygons.boundary, points[:, 0], points[:, 1]
        )


def off_road_rate(trajectories_m: npt.ArrayLike, drivable: DrivableArea) -> float:
    """Fraction of predicted modes `(A, K, T, 2)` (city frame) with at least one point off the drivable area."""
    trajectories = np.asarray(trajectories_m, dtype=np.float64)
    if trajectories.ndim != 4 or trajectories.shape[-1] != 2:
        raise ValueError(f"trajectories_m: expected (A, K, T, 2), got {trajectories.shape}")
    if not trajectories.size:
        return float("nan")
    on_road = drivable.contains(trajectories.reshape(-1, 2)).reshape(trajectories.shape[:3])
    return float((~on_road.all(axis=2)).mean())


def dispersion_m(points_xy_m: npt.ArrayLike) -> float:
    """Root-mean-square distance of successive predictions `(n, 2)` of one future point to their centroid."""
    points = np.asarray(points_xy_m, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 1:
        raise ValueError(f"points_xy_m: expected (n>=1, 2), got {points.shape}")
    return float(np.sqrt(np.mean(np.sum((points - points.mean(axis=0)) ** 2, axis=1))))


def convergence_to_range_s(
    points_xy_m: npt.ArrayLike, issue_times_s: npt.ArrayLike, target_time_s: float, tau_m: float
) -> float:
    """Seconds before `target_time_s` from which every prediction stays within `tau_m` of the last one.

    `points_xy_m[i]` is the prediction of the position at `target_time_s` issued at `issue_times_s[i]` (increasing).
    """
    points = np.asarray(points_xy_m, dtype=np.float64)
    times = np.asarray(issue_times_s, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 1 or times.shape != (len(points),):
        raise ValueError(f"points_xy_m {points.shape} and issue_times_s {times.shape}: expected (n, 2) and (n,)")
    if np.any(np.diff(times) <= 0):
        raise ValueError("issue_times_s must be strictly increasing")
    within = np.linalg.norm(points - points[-1], axis=1) <= tau_m
    outside = np.flatnonzero(~within)
    first = 0 if not len(outside) else int(outside[-1]) + 1
    return float(target_time_s - times[first])


@dataclass(frozen=True)
class TemporalConsistency:
    """Mean dispersion (m) and convergence-to-range (s) per tau over `num_groups` (agent, target time) pairs."""

    dispersion_m: float
    convergence_s: dict[float, float]
    num_groups: int


def temporal_consistency(
    forecasts: Iterable[Forecasts], step_s: float, taus_m: Sequence[float] = CONVERGENCE_TAUS_M
) -> TemporalConsistency:
    """CAB's dispersion and convergence-to-range over successive forecasts of the same agents.

    Forecasts of one log are issued at several timestamps; step `j` (0-based) of a forecast issued at `s` predicts
    time `s + (j + 1) * step_s`. Every (agent, target time) reached by at least two forecasts' most likely modes forms
    one group; target times are matched to the nearest millisecond.
    """
    if step_s <= 0:
        raise ValueError(f"step_s must be positive, got {step_s}")
    groups: dict[tuple[str, str, int], list[tuple[float, np.ndarray]]] = defaultdict(list)
    for forecast in forecasts:
        if not len(forecast):
            continue
        issue_s = forecast.timestamp_ns * 1e-9
        best = np.argmax(forecast.mode_scores, axis=1)
        top = forecast.trajectories_m[np.arange(len(forecast)), best]  # (A, T, 2)
        for agent, path in zip(forecast.agent_ids.tolist(), top):
            for step, point in enumerate(path):
                target_ms = int(round((issue_s + (step + 1) * step_s) * 1000))
                groups[(forecast.log_id, agent, target_ms)].append((issue_s, point))
    dispersions: list[float] = []
    convergence: dict[float, list[float]] = {float(tau): [] for tau in taus_m}
    for (_, _, target_ms), predictions in groups.items():
        if len(predictions) < 2:
            continue
        predictions.sort(key=lambda item: item[0])
        times = np.array([time for time, _ in predictions])
        points = np.stack([point for _, point in predictions])
        dispersions.append(dispersion_m(points))
        for tau in convergence:
            convergence[tau].append(convergence_to_range_s(points, times, target_ms / 1000.0, tau))
    return TemporalConsistency(
        dispersion_m=float(np.mean(dispersions)) if dispersions else float("nan"),
        convergence_s={tau: float(np.mean(values)) if values else float("nan") for tau, values in convergence.items()},
        num_groups=len(dispersions),
    )
