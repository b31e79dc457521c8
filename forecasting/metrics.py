"""Forecasting metrics: accuracy (minADE_k, minFDE_k, miss rate), off-road rate and temporal consistency.

Accuracy follows the nuScenes prediction challenge: the `k` most probable modes are kept, ADE/FDE are minimised over
them, and a forecast *misses* when the maximum pointwise L2 error of every kept mode is >= 2 m.

Temporal consistency follows CAB (Ben-Younes et al., "Raising context awareness in motion forecasting",
arXiv 2109.08048, section 4.4). An agent is forecast again at every step, so a ground-truth point `y_gt` at time `t^`
is predicted by the forecasts issued `t = 1 .. T` steps before it; `y^t` is the most likely trajectory's point for
`t^` in the forecast issued at `t^ - t`:

- dispersion `D_t^ = STD_t(||y^t - ybar||)` (m), with `ybar` the barycenter of the `T` predictions: the standard
  deviation of their distances to the barycenter (equation of section 4.4, population standard deviation);
- convergence-to-range `C_t^(tau) = max {T0 in 1..T : ||y^t - y_gt|| <= tau for every t <= T0}`, expressed in
  seconds (`T0` times the step): how long ahead of `t^` all later predictions are within `tau` of the ground truth.
  Larger is better; 0 when even the one-step-ahead prediction misses the range.

Both are averaged over every (agent, t^) predicted at all `T` lead times (the paper's `t in [1, T]`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
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
    "GroundTruth",
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
    """CAB's dispersion: standard deviation of the distances of predictions `(n, 2)` of one point to their barycenter."""
    points = np.asarray(points_xy_m, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 1:
        raise ValueError(f"points_xy_m: expected (n>=1, 2), got {points.shape}")
    return float(np.std(np.linalg.norm(points - points.mean(axis=0), axis=1)))


def convergence_to_range_s(
    points_xy_m: npt.ArrayLike, lead_times_s: npt.ArrayLike, ground_truth_xy_m: npt.ArrayLike, tau_m: float
) -> float:
    """CAB's convergence-to-range(tau) in seconds: the longest lead time up to which every prediction is within tau.

    `points_xy_m[i]` is the prediction of the ground-truth point `ground_truth_xy_m` issued `lead_times_s[i]` before
    it (strictly increasing). The result is the largest `lead_times_s[i]` such that the predictions `0 .. i` all lie
    within `tau_m` of the ground truth, 0 when the shortest-lead prediction already misses.
    """
    points = np.asarray(points_xy_m, dtype=np.float64)
    leads = np.asarray(lead_times_s, dtype=np.float64)
    truth = np.asarray(ground_truth_xy_m, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 1 or leads.shape != (len(points),):
        raise ValueError(f"points_xy_m {points.shape} and lead_times_s {leads.shape}: expected (n, 2) and (n,)")
    if truth.shape != (2,):
        raise ValueError(f"ground_truth_xy_m: expected (2,), got {truth.shape}")
    if np.any(np.diff(leads) <= 0) or leads[0] <= 0:
        raise ValueError("lead_times_s must be positive and strictly increasing")
    outside = np.flatnonzero(np.linalg.norm(points - truth, axis=1) > tau_m)
    converged = len(points) if not len(outside) else int(outside[0])
    return float(leads[converged - 1]) if converged else 0.0


@dataclass(frozen=True)
class TemporalConsistency:
    """Mean dispersion (m) and convergence-to-range (s) per tau over `num_groups` (agent, target time) pairs."""

    dispersion_m: float
    convergence_s: dict[float, float]
    num_groups: int


GroundTruth = Mapping[tuple[str, str, int], np.ndarray]


def temporal_consistency(
    forecasts: Iterable[Forecasts],
    step_s: float,
    ground_truth_xy_m: GroundTruth,
    taus_m: Sequence[float] = CONVERGENCE_TAUS_M,
) -> TemporalConsistency:
    """CAB's dispersion and convergence-to-range over successive forecasts of the same agents (section 4.4).

    Forecasts of one log are issued at several timestamps; step `j` (0-based) of a forecast issued at `s` predicts
    time `s + (j + 1) * step_s`. `ground_truth_xy_m[(log_id, agent_id, t_ms)]` is the agent's true position at
    `t_ms` milliseconds (same frame as the forecasts). A target `(agent, t^)` counts when the most likely modes of
    forecasts issued `1 .. T` steps before it (`T` the horizon) all exist and its ground truth is known.
    """
    if step_s <= 0:
        raise ValueError(f"step_s must be positive, got {step_s}")
    groups: dict[tuple[str, str, int], dict[int, np.ndarray]] = defaultdict(dict)
    horizon = 0
    for forecast in forecasts:
        if not len(forecast):
            continue
        issue_s = forecast.timestamp_ns * 1e-9
        best = np.argmax(forecast.mode_scores, axis=1)
        top = forecast.trajectories_m[np.arange(len(forecast)), best]  # (A, T, 2)
        horizon = max(horizon, top.shape[1])
        for agent, path in zip(forecast.agent_ids.tolist(), top, strict=True):
            for step, point in enumerate(path):
                target_ms = int(round((issue_s + (step + 1) * step_s) * 1000))
                groups[(forecast.log_id, agent, target_ms)][step + 1] = point
    leads_s = step_s * np.arange(1, horizon + 1)
    dispersions: list[float] = []
    convergence: dict[float, list[float]] = {float(tau): [] for tau in taus_m}
    for key, by_lead in groups.items():
        if len(by_lead) < horizon or key not in ground_truth_xy_m:
            continue
        points = np.stack([by_lead[lead] for lead in range(1, horizon + 1)])
        truth = np.asarray(ground_truth_xy_m[key], dtype=np.float64)
        dispersions.append(dispersion_m(points))
        for tau in convergence:
            convergence[tau].append(convergence_to_range_s(points, leads_s, truth, tau))
    return TemporalConsistency(
        dispersion_m=float(np.mean(dispersions)) if dispersions else float("nan"),
        convergence_s={tau: float(np.mean(values)) if values else float("nan") for tau, values in convergence.items()},
        num_groups=len(dispersions),
    )
