"""People walking in groups (`TrafficConfig.pedestrian_groups`): how many walk with others, that a group keeps its
formation and stays off the road, and that a standing group faces each other."""

from __future__ import annotations

import numpy as np
import pytest

from scenes.synth.agents import AgentKind
from scenes.synth.world import SynthConfig, SynthLog, simulate_log


def _log(groups: bool) -> SynthLog:
    return simulate_log(SynthConfig(seconds=10.0, lidar_beams=None, cameras=(), pedestrian_groups=groups), seed=3)


@pytest.fixture(scope="module")
def grouped() -> SynthLog:
    return _log(True)


def _people(log: SynthLog) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions `(T, P, 2)`, velocities `(T, P, 2)` and yaws `(T, P)` of the log's pedestrians."""
    agents = log.agents
    assert agents is not None
    people = np.flatnonzero(agents.kind == AgentKind.PEDESTRIAN)
    return agents.center_m[:, people, :2], agents.velocity_m_per_s[:, people], agents.yaw_rad[:, people]


def _distances(xy: np.ndarray) -> np.ndarray:
    distance = np.linalg.norm(xy[:, :, None] - xy[:, None], axis=-1)
    distance[:, np.arange(xy.shape[1]), np.arange(xy.shape[1])] = np.inf
    return distance


def _share_beside_another(log: SynthLog) -> float:
    """Share of pedestrian observations with another pedestrian within 1.4 m (28 % on the real AV2 log)."""
    return float((_distances(_people(log)[0]).min(axis=2) < 1.4).mean())


def test_a_third_of_the_people_walk_beside_another_and_alone_almost_nobody_does(grouped: SynthLog) -> None:
    alone = _log(False)
    assert 0.2 < _share_beside_another(grouped) < 0.45
    assert _share_beside_another(alone) < 0.08
    # Groups take their members from the same head count.
    assert len(_people(grouped)[0][0]) == len(_people(alone)[0][0])


def test_a_group_keeps_its_formation_and_moves_as_one(grouped: SynthLog) -> None:
    xy, velocity, _ = _people(grouped)
    distance = _distances(xy)
    # Companions: pairs never more than 1.6 m apart over the 10 s (abreast at most 0.9 m, a row behind 1.0 +- 0.25 m).
    together = np.argwhere(np.triu(distance.max(axis=0) < 1.6))
    assert len(together) >= 5
    for i, j in together:
        assert distance[:, i, j].min() >= 0.6  # neighbours never walk into each other
        # Both move with the same velocity, or stand together (at corners each cuts across to its new place alone).
        same = np.linalg.norm(velocity[:, i] - velocity[:, j], axis=-1) < 1e-6
        assert same.mean() > 0.9, (i, j)


def test_groups_stay_on_the_sidewalk_or_the_crosswalk(grouped: SynthLog) -> None:
    network = grouped.network
    assert network is not None
    xy = _people(grouped)[0].reshape(-1, 2)
    off_path = network.on_drivable_area(xy) & ~network.on_crosswalk(xy)
    assert off_path.mean() < 0.01


def test_a_standing_group_faces_each_other(grouped: SynthLog) -> None:
    xy, velocity, yaw = _people(grouped)
    still = np.all(np.linalg.norm(velocity, axis=-1) < 1e-6, axis=0)
    distance = _distances(xy)[0]
    pairs = [(i, j) for i in np.flatnonzero(still) for j in np.flatnonzero(still) if i != j and distance[i, j] < 1.6]
    assert pairs
    # Every standing member faces a member of its group (the leader faces its first follower, each follower the leader).
    for i in {i for i, _ in pairs}:
        bearing = [np.arctan2(*(xy[0, j] - xy[0, i])[::-1]) for k, j in pairs if k == i]
        assert min(abs(np.angle(np.exp(1j * (yaw[0, i] - b)))) for b in bearing) < 1e-6
