"""Argoverse 2 motion-forecasting dataset (`av2-mf:PATH`) -> `Scenario`s with agent histories, futures and lanes.

Layout: `PATH` is a split dir of `<scenario_id>/scenario_<scenario_id>.parquet` + `log_map_archive_<scenario_id>.json`
(or a dataset dir of split dirs, or one scenario dir). Scenarios are read with av2's
`load_argoverse_scenario_parquet` and maps with `ArgoverseStaticMap.from_json`. Each scenario spans 110 steps at
10 Hz; `current_index` is the last observed step (49). `focal_agent_ids` lists the focal track first, then the other
scored tracks (the agents AV2 asks to forecast). Agents of the types `static`, `background` and `unknown` have no
canonical category and are left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np

from scenes.adapters.av2 import lane_graph_from_avm
from scenes.adapters.base import AdapterError, Dataset, guarded, require_dir, require_file, skip_or_raise
from scenes.categories import category_id
from scenes.records import Frame, LaneGraph, Scenario, source_file

# AV2 motion-forecasting object type -> canonical category (None: no canonical category).
FROM_OBJECT_TYPE: Final[dict[str, str | None]] = {
    "vehicle": "REGULAR_VEHICLE",
    "pedestrian": "PEDESTRIAN",
    "motorcyclist": "MOTORCYCLIST",
    "cyclist": "BICYCLIST",
    "bus": "BUS",
    "riderless_bicycle": "BICYCLE",
    "construction": "CONSTRUCTION_CONE",
    "static": None,
    "background": None,
    "unknown": None,
}


def discover_scenarios(root: Path) -> dict[str, Path]:
    """scenario_id -> scenario dir under a scenario dir, a split dir or a dataset dir of split dirs."""
    require_dir(root, "AV2 motion-forecasting directory")

    def scenario_dirs(folder: Path) -> dict[str, Path]:
        return {child.name: child for child in sorted(folder.iterdir()) if (child / f"scenario_{child.name}.parquet").is_file()}

    if (root / f"scenario_{root.name}.parquet").is_file():
        return {root.name: root}
    found = scenario_dirs(root)
    if not found:
        for split in sorted(root.iterdir()):
            if split.is_dir():
                found.update(scenario_dirs(split))
    if not found:
        raise AdapterError(root, "no AV2 scenario found (expected <scenario_id>/scenario_<scenario_id>.parquet)")
    return found


class AV2MotionForecastingDataset(Dataset):
    """AV2 motion-forecasting scenarios; each scenario is a log with no sensor frames."""

    name = "av2-mf"

    def __init__(self, root: Path, *, with_map: bool = True, skip_bad: bool = False) -> None:
        super().__init__(root, skip_bad=skip_bad)
        self.with_map = with_map
        self._scenarios = discover_scenarios(self.root)

    def logs(self) -> list[str]:
        return list(self._scenarios)

    def scenario_dir(self, scenario_id: str) -> Path:
        if scenario_id not in self._scenarios:
            raise AdapterError(self.root, f"no scenario {scenario_id!r}")
        return self._scenarios[scenario_id]

    def frames(self, log_id: str) -> Iterator[Frame]:
        raise AdapterError(self.scenario_dir(log_id), "motion-forecasting scenarios hold agent tracks, not sensor frames: use scenarios()")

    def sensors(self) -> tuple[str, ...]:
        return ()

    def load(self, scenario_id: str) -> Any:
        from av2.datasets.motion_forecasting.scenario_serialization import load_argoverse_scenario_parquet

        path = require_file(self.scenario_dir(scenario_id) / f"scenario_{scenario_id}.parquet", "scenario parquet")
        try:
            return load_argoverse_scenario_parquet(path)
        except Exception as error:  # pyarrow/pandas raise many types on truncated or foreign files
            raise AdapterError(path, f"unreadable scenario parquet ({type(error).__name__}: {error})") from None

    def timestamps_ns(self, log_id: str) -> list[int]:
        return np.round(self.load(log_id).timestamps_ns).astype(np.int64).tolist()

    def category_counts(self, log_id: str) -> Counter[str]:
        counts: Counter[str] = Counter()
        for track in self.load(log_id).tracks:
            canonical = FROM_OBJECT_TYPE.get(track.object_type.value)
            if canonical is not None:
                counts[canonical] += 1
        return counts

    def lane_graph(self, log_id: str) -> LaneGraph | None:
        if not self.with_map:
            return None
        from av2.map.map_api import ArgoverseStaticMap

        folder = self.scenario_dir(log_id)
        archives = sorted(folder.glob("log_map_archive_*.json"))
        if len(archives) != 1:
            raise AdapterError(folder, f"expected exactly one log_map_archive_*.json, found {len(archives)}")
        try:
            avm = ArgoverseStaticMap.from_json(archives[0])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise AdapterError(archives[0], f"unreadable AV2 map ({type(error).__name__}: {error})") from None
        return lane_graph_from_avm(avm, str(self.load(log_id).city_name), archives[0])

    def scenarios(self) -> Iterator[Scenario]:
        for scenario_id in self.logs():
            try:
                yield self.scenario(scenario_id)
            except AdapterError as error:
                skip_or_raise(error, self.skip_bad, f"scenario {scenario_id}")

    def scenario(self, scenario_id: str) -> Scenario:
        from av2.datasets.motion_forecasting.constants import AV2_SCENARIO_OBS_TIMESTEPS
        from av2.datasets.motion_forecasting.data_schema import TrackCategory

        path = self.scenario_dir(scenario_id) / f"scenario_{scenario_id}.parquet"
        loaded = self.load(scenario_id)
        steps = len(loaded.timestamps_ns)
        agents: list[str] = []
        categories: list[int] = []
        scored: list[str] = []
        xy = np.full((len(loaded.tracks), steps, 2), np.nan)
        heading = np.full((len(loaded.tracks), steps), np.nan)
        velocity = np.full((len(loaded.tracks), steps, 2), np.nan)
        valid = np.zeros((len(loaded.tracks), steps), dtype=bool)
        for track in loaded.tracks:
            object_type = track.object_type.value
            if object_type not in FROM_OBJECT_TYPE:
                raise AdapterError(path, f"track {track.track_id}: unknown object type {object_type!r}")
            canonical = FROM_OBJECT_TYPE[object_type]
            if canonical is None:
                continue
            row = len(agents)
            for state in track.object_states:
                if not 0 <= state.timestep < steps:
                    raise AdapterError(path, f"track {track.track_id}: timestep {state.timestep} outside [0, {steps})")
                xy[row, state.timestep] = state.position
                heading[row, state.timestep] = state.heading
                velocity[row, state.timestep] = state.velocity
                valid[row, state.timestep] = True
            agents.append(track.track_id)
            categories.append(category_id(canonical))
            if track.category == TrackCategory.SCORED_TRACK:
                scored.append(track.track_id)
        count = len(agents)
        focal = [loaded.focal_track_id] if loaded.focal_track_id in agents else []
        lane_graph = self.lane_graph(scenario_id)
        with source_file(path):
            return guarded(
                path,
                lambda: Scenario(
                    scenario_id=str(loaded.scenario_id),
                    city_name=str(loaded.city_name),
                    timestamps_ns=np.round(np.asarray(loaded.timestamps_ns, dtype=np.float64)).astype(np.int64),
                    agent_ids=np.array(agents, dtype=str),
                    category=np.array(categories, dtype=np.int64),
                    xy_m=xy[:count],
                    heading_rad=heading[:count],
                    velocity_m_per_s=velocity[:count],
                    valid=valid[:count],
                    current_index=min(AV2_SCENARIO_OBS_TIMESTEPS, steps) - 1,
                    focal_agent_ids=np.array(focal + scored, dtype=str),
                    lane_graph=lane_graph,
                ),
            )
