"""Argoverse 2 motion-forecasting writer: a simulated log -> 11 s scenarios (`scenario_<id>.parquet` + map JSON).

Each scenario is a window of `AV2_SCENARIO_TOTAL_TIMESTEPS` (110) states at 10 Hz, the first
`AV2_SCENARIO_OBS_TIMESTEPS` (50) observed, serialised with av2's own `serialize_argoverse_scenario_parquet`, so
`load_argoverse_scenario_parquet` reads it back. Track categories follow AV2's definitions:

- `FOCAL_TRACK`: the scored, moving agent that travels farthest over the window (one per scenario);
- `SCORED_TRACK`: present at every one of the 110 steps and not a static object;
- `UNSCORED_TRACK`: present at the last observed step, but not scored (the ego vehicle "AV" is one);
- `TRACK_FRAGMENT`: absent at the last observed step.

Positions, headings and velocities are in the city frame; the vector map is the log's lane graph restricted to the
lanes within `MAP_RADIUS_M` of the ego path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
from av2.datasets.motion_forecasting.constants import AV2_SCENARIO_OBS_TIMESTEPS, AV2_SCENARIO_TOTAL_TIMESTEPS
from av2.datasets.motion_forecasting.data_schema import ArgoverseScenario, ObjectState, ObjectType, Track, TrackCategory
from av2.datasets.motion_forecasting.scenario_serialization import serialize_argoverse_scenario_parquet

from scenes.categories import CATEGORIES
from scenes.io import atomic_write
from scenes.synth.writers.av2 import av2_map_payload, map_number
from scenes.synth.writers.common import FrameCallback, SimulatedLog, WriterError, check_log, stable_uuid, staged_directory, write_json

__all__ = ["write_av2_scenarios", "scenario_id", "OBJECT_TYPES"]

STEP_NS: Final = 100_000_000
STEP_TOLERANCE_NS: Final = 1_000
MAP_RADIUS_M: Final = 100.0
AV_TRACK_ID: Final = "AV"

# Canonical category -> AV2 motion-forecasting object type.
OBJECT_TYPES: Final[dict[str, ObjectType]] = {
    "REGULAR_VEHICLE": ObjectType.VEHICLE,
    "LARGE_VEHICLE": ObjectType.VEHICLE,
    "BOX_TRUCK": ObjectType.VEHICLE,
    "TRUCK": ObjectType.VEHICLE,
    "TRUCK_CAB": ObjectType.VEHICLE,
    "VEHICULAR_TRAILER": ObjectType.VEHICLE,
    "MESSAGE_BOARD_TRAILER": ObjectType.STATIC,
    "BUS": ObjectType.BUS,
    "SCHOOL_BUS": ObjectType.BUS,
    "ARTICULATED_BUS": ObjectType.BUS,
    "PEDESTRIAN": ObjectType.PEDESTRIAN,
    "WHEELCHAIR": ObjectType.PEDESTRIAN,
    "STROLLER": ObjectType.PEDESTRIAN,
    "BICYCLIST": ObjectType.CYCLIST,
    "MOTORCYCLIST": ObjectType.MOTORCYCLIST,
    "BICYCLE": ObjectType.RIDERLESS_BICYCLE,
    "MOTORCYCLE": ObjectType.RIDERLESS_BICYCLE,
    "BOLLARD": ObjectType.STATIC,
    "SIGN": ObjectType.STATIC,
    "STOP_SIGN": ObjectType.STATIC,
    "MOBILE_PEDESTRIAN_CROSSING_SIGN": ObjectType.STATIC,
    "CONSTRUCTION_CONE": ObjectType.CONSTRUCTION,
    "CONSTRUCTION_BARREL": ObjectType.CONSTRUCTION,
    "WHEELED_RIDER": ObjectType.UNKNOWN,
    "WHEELED_DEVICE": ObjectType.UNKNOWN,
    "DOG": ObjectType.UNKNOWN,
}
_FOCAL_TYPES: Final = frozenset(
    {ObjectType.VEHICLE, ObjectType.BUS, ObjectType.PEDESTRIAN, ObjectType.CYCLIST, ObjectType.MOTORCYCLIST}
)
_UNSCORED_TYPES: Final = frozenset({ObjectType.STATIC, ObjectType.CONSTRUCTION, ObjectType.BACKGROUND})


def scenario_id(log_id: str, start_index: int) -> str:
    return stable_uuid("av2-mf", log_id, start_index)


def _check_rate(log: SimulatedLog) -> np.ndarray:
    timestamps = np.array([frame.timestamp_ns for frame in log.frames], dtype=np.int64)
    steps = np.diff(timestamps)
    if len(steps) and np.any(np.abs(steps - STEP_NS) > STEP_TOLERANCE_NS):
        raise WriterError(f"SynthLog.frames of log {log.log_id}: AV2 scenarios need 10 Hz frames, got steps {np.unique(steps)[:3]} ns")
    return timestamps


def _ego_track(log: SimulatedLog, window: range) -> Track:
    positions = np.array([log.frames[i].city_SE3_ego.translation[:2] for i in window])
    headings = np.array([log.frames[i].city_SE3_ego.yaw_rad for i in window])
    velocities = np.gradient(positions, STEP_NS * 1e-9, axis=0) if len(window) > 1 else np.zeros_like(positions)
    states = [
        ObjectState(step < AV2_SCENARIO_OBS_TIMESTEPS, step, (float(p[0]), float(p[1])), float(h), (float(v[0]), float(v[1])))
        for step, (p, h, v) in enumerate(zip(positions, headings, velocities, strict=True))
    ]
    return Track(AV_TRACK_ID, states, ObjectType.VEHICLE, TrackCategory.UNSCORED_TRACK)


def _agent_states(log: SimulatedLog, window: range) -> dict[str, tuple[ObjectType, list[ObjectState]]]:
    tracks = log.ground_truth_tracks()
    agents: dict[str, tuple[ObjectType, list[ObjectState]]] = {}
    for step, index in enumerate(window):
        boxes = tracks.boxes[index]
        if not len(boxes):
            continue
        assert boxes.track_id is not None  # Tracks requires track ids
        velocity = boxes.velocity_m_per_s
        if velocity is None:
            raise WriterError(f"SynthLog.frames[{index}].annotations.velocity_m_per_s of log {log.log_id}: AV2 scenarios need velocities")
        for box in range(len(boxes)):
            track_id = str(boxes.track_id[box])
            object_type = OBJECT_TYPES[CATEGORIES[int(boxes.category[box])]]
            state = ObjectState(
                step < AV2_SCENARIO_OBS_TIMESTEPS,
                step,
                (float(boxes.center_m[box, 0]), float(boxes.center_m[box, 1])),
                float(boxes.yaw_rad[box]),
                (float(velocity[box, 0]), float(velocity[box, 1])),
            )
            agents.setdefault(track_id, (object_type, []))[1].append(state)
    return agents


def _categorise(agents: dict[str, tuple[ObjectType, list[ObjectState]]]) -> tuple[list[Track], str | None]:
    current = AV2_SCENARIO_OBS_TIMESTEPS - 1
    categories: dict[str, TrackCategory] = {}
    travelled: dict[str, float] = {}
    for track_id, (object_type, states) in agents.items():
        steps = {state.timestep for state in states}
        if current not in steps:
            categories[track_id] = TrackCategory.TRACK_FRAGMENT
        elif len(steps) == AV2_SCENARIO_TOTAL_TIMESTEPS and object_type not in _UNSCORED_TYPES:
            categories[track_id] = TrackCategory.SCORED_TRACK
            if object_type in _FOCAL_TYPES:
                path = np.array([state.position for state in states])
                travelled[track_id] = float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())
        else:
            categories[track_id] = TrackCategory.UNSCORED_TRACK
    focal = None
    if travelled:
        focal = min(travelled, key=lambda track_id: (-round(travelled[track_id], 6), track_id))
        categories[focal] = TrackCategory.FOCAL_TRACK
    tracks = [Track(track_id, agents[track_id][1], agents[track_id][0], categories[track_id]) for track_id in sorted(agents)]
    return tracks, focal


def _nearby_lanes(log: SimulatedLog, window: range) -> np.ndarray:
    ego_xy = np.array([log.frames[i].city_SE3_ego.translation[:2] for i in window])
    centerlines = log.lane_graph.centerlines_m[..., :2]
    distance = np.min(np.linalg.norm(centerlines[:, :, None, :] - ego_xy[None, None, ::10, :], axis=-1), axis=(1, 2))
    return log.lane_graph.lane_ids[distance <= MAP_RADIUS_M]


def write_av2_scenarios(
    log: SimulatedLog, split_dir: Path, *, stride_steps: int = AV2_SCENARIO_TOTAL_TIMESTEPS, on_frame: FrameCallback | None = None
) -> list[Path]:
    """Cuts `log` into 110-step scenarios every `stride_steps` frames, writes `split_dir/<id>/` for each one with a
    focal agent, and returns their directories (raises when the log yields none)."""
    check_log(log)
    if stride_steps < 1:
        raise WriterError(f"stride_steps: must be >= 1, got {stride_steps}")
    timestamps = _check_rate(log)
    if len(timestamps) < AV2_SCENARIO_TOTAL_TIMESTEPS:
        raise WriterError(
            f"SynthLog.frames of log {log.log_id}: {len(timestamps)} frames, an AV2 scenario needs "
            f"{AV2_SCENARIO_TOTAL_TIMESTEPS} (11 s at 10 Hz)"
        )
    written = []
    for start in range(0, len(timestamps) - AV2_SCENARIO_TOTAL_TIMESTEPS + 1, stride_steps):
        window = range(start, start + AV2_SCENARIO_TOTAL_TIMESTEPS)
        tracks, focal = _categorise(_agent_states(log, window))
        if focal is not None:
            identifier = scenario_id(log.log_id, start)
            scenario = ArgoverseScenario(
                scenario_id=identifier,
                timestamps_ns=timestamps[start : start + AV2_SCENARIO_TOTAL_TIMESTEPS].astype(np.float64),
                tracks=[*tracks, _ego_track(log, window)],
                focal_track_id=focal,
                city_name=log.city_name,
                map_id=map_number(log.city_name, log.lane_graph),
                slice_id=None,
            )
            scenario_dir = Path(split_dir) / identifier
            with staged_directory(scenario_dir) as staging:  # renamed into place once both files are written
                with atomic_write(staging / f"scenario_{identifier}.parquet") as temporary:
                    serialize_argoverse_scenario_parquet(temporary, scenario)
                write_json(staging / f"log_map_archive_{identifier}.json", av2_map_payload(log.lane_graph, _nearby_lanes(log, window)))
            written.append(scenario_dir)
        if on_frame is not None:
            for _ in range(min(stride_steps, len(timestamps) - start)):
                on_frame()
    if not written:
        raise WriterError(f"SynthLog of log {log.log_id}: no 11 s window has a moving agent present at all 110 steps")
    return written
