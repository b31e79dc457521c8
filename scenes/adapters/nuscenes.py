"""nuScenes (`nuscenes:PATH`, `version=v1.0-mini|v1.0-trainval|...`) -> `Frame`s, prediction `Scenario`s, `LaneGraph`s.

Without a version, the one version folder under PATH is read (several: the version must be named).

Tables are read by `nuscenes.nuscenes.NuScenes` (its table loading and reverse indices). Releases that share the
schema without the semantic-prior map PNGs (such as the Lyft Level 5 sample) are opened with the same table logic
minus the map masks; a partial database whose `prev`/`next` links point outside it has those links cut. Each scene
is a log whose frames are the LIDAR_TOP key frames (and, with `sweeps=True`, the sweeps between them). Points are
moved from the LIDAR_TOP sensor frame to the ego frame; boxes from the global frame to the ego frame, their sizes
from `w, l, h` to `l, w, h`, their track ids are instance tokens. Timestamps (microseconds) become nanoseconds.
Prediction-challenge agents come from `nuscenes.prediction.PredictHelper`; lanes from the map expansion
(`maps/expansion/<location>.json`) when it is installed.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from scenes.adapters.base import LOGGER, AdapterError, Dataset, guarded, read_image, require_dir, skip_or_raise
from scenes.caching import per_instance_lru_cache
from scenes.categories import category_id, from_nuscenes
from scenes.geometry import SE3, quat_wxyz_to_matrix
from scenes.records import Boxes3D, CameraFrame, Frame, LaneGraph, LidarSweep, Scenario, source_file

TABLES: Final = (
    "category",
    "attribute",
    "visibility",
    "instance",
    "sensor",
    "calibrated_sensor",
    "ego_pose",
    "log",
    "scene",
    "sample",
    "sample_data",
    "sample_annotation",
    "map",
)
LIDAR_CHANNEL: Final = "LIDAR_TOP"
POINT_VALUES: Final = 5  # x, y, z, intensity, ring index (float32)
HISTORY_S: Final = 2.0
FUTURE_S: Final = 6.0
STEP_HZ: Final = 2
LANE_POINTS: Final = 10
# Half the period of the slowest nuScenes camera (12 Hz): an image farther from the sweep is not the sweep's image.
MAX_CAMERA_OFFSET_US: Final = 42_000
LINKED_TABLES: Final = ("sample", "sample_data", "sample_annotation")
# The fields of a sample_annotation record the adapter reads, with the count of numbers of the numeric ones.
ANNOTATION_VECTOR_FIELDS: Final = {"translation": 3, "size": 3, "rotation": 4}
ANNOTATION_STRING_FIELDS: Final = ("instance_token", "category_name")


def _tables_only_nuscenes(version: str, dataroot: Path) -> Any:
    """A `NuScenes` database built by the devkit's own table loader and reverse index, without map masks."""
    from nuscenes.nuscenes import NuScenes, NuScenesExplorer
    from nuscenes.utils.color_map import get_colormap

    class TablesOnlyNuScenes(NuScenes):
        def __init__(self) -> None:
            self.version = version
            self.dataroot = str(dataroot)
            self.verbose = False
            self.table_names = list(TABLES)
            for table in TABLES:
                setattr(self, table, self.__load_table__(table))
            self.colormap = get_colormap()
            self.__make_reverse_index__(False)
            self.explorer = NuScenesExplorer(self)

    return TablesOnlyNuScenes()


def detect_version(dataroot: Path) -> str:
    """The one version folder (a folder holding `scene.json`, e.g. `v1.0-mini`, `v1.0-synth`) under `dataroot`."""
    require_dir(dataroot, "nuScenes directory")
    versions = sorted(path.name for path in dataroot.iterdir() if (path / "scene.json").is_file())
    if not versions:
        raise AdapterError(dataroot, "no nuScenes version folder (a folder with scene.json, e.g. v1.0-mini)")
    if len(versions) > 1:
        raise AdapterError(dataroot, f"several nuScenes versions {versions}: name one (--nuscenes-version)")
    return versions[0]


def open_nuscenes(dataroot: Path, version: str) -> tuple[Any, list[str]]:
    """Opens a nuScenes-schema database; returns it with notes on what the release lacks."""
    from nuscenes.nuscenes import NuScenes

    table_dir = require_dir(dataroot / version, f"nuScenes version {version!r} directory")
    notes: list[str] = []
    for table in TABLES:
        path = table_dir / f"{table}.json"
        if not path.is_file():
            raise AdapterError(path, "nuScenes table not found")
        try:
            json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise AdapterError(path, f"not valid JSON ({error})") from None
    maps = json.loads((table_dir / "map.json").read_text())
    missing_masks = [m.get("filename", "?") for m in maps if not (dataroot / str(m.get("filename", ""))).is_file()]
    try:
        if missing_masks:
            notes.append(f"map mask PNG(s) {missing_masks} not found under {dataroot}: semantic-prior masks unavailable")
            nusc = _tables_only_nuscenes(version, dataroot)
        else:
            nusc = NuScenes(version=version, dataroot=str(dataroot), verbose=False)
    except (KeyError, IndexError, TypeError, AssertionError) as error:
        raise AdapterError(table_dir, f"inconsistent nuScenes tables ({type(error).__name__}: {error})") from None
    cut = _cut_dangling_links(nusc)
    if cut:
        notes.append(f"partial database: {cut} prev/next link(s) to records outside it were cut")
    return nusc, notes


def _cut_dangling_links(nusc: Any) -> int:
    cut = 0
    for table in LINKED_TABLES:
        index = nusc._token2ind[table]
        for record in getattr(nusc, table):
            for link in ("prev", "next"):
                if record.get(link) and record[link] not in index:
                    record[link] = ""
                    cut += 1
    return cut


def _se3(record: dict[str, Any], source: Path) -> SE3:
    try:
        return SE3(quat_wxyz_to_matrix(np.asarray(record["rotation"], dtype=np.float64)), np.asarray(record["translation"], dtype=np.float64))
    except (KeyError, ValueError, TypeError) as error:
        raise AdapterError(source, f"record {record.get('token', '?')}: bad rotation/translation ({error})") from None


def check_annotation(annotation: dict[str, Any], source: Path) -> dict[str, Any]:
    """A `sample_annotation` record with the fields the adapter reads (`translation`, `size`, `rotation`: finite numbers
    of the right count; `instance_token`, `category_name`: strings); an `AdapterError` naming `source` and the field
    otherwise. Returns the record."""
    token = annotation.get("token", "?")
    for key in ANNOTATION_STRING_FIELDS:
        if key not in annotation:
            raise AdapterError(source, f"annotation {token}: missing key {key!r}")
        if not isinstance(annotation[key], str):
            raise AdapterError(source, f"annotation {token}: key {key!r} must be a string, got {annotation[key]!r}")
    for key, size in ANNOTATION_VECTOR_FIELDS.items():
        if key not in annotation:
            raise AdapterError(source, f"annotation {token}: missing key {key!r}")
        value = annotation[key]
        if not isinstance(value, list | tuple) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            raise AdapterError(source, f"annotation {token}: key {key!r} must be a list of {size} numbers, got {value!r}")
        if len(value) != size:
            raise AdapterError(source, f"annotation {token}: key {key!r} has {len(value)} values, expected {size}")
        try:
            finite = bool(np.all(np.isfinite(np.asarray(value, dtype=np.float64))))
        except OverflowError:
            finite = False
        if not finite:
            raise AdapterError(source, f"annotation {token}: key {key!r} has NaN, inf or a number out of float64 range")
    return annotation


def _timestamp_ns(microseconds: float) -> int:
    """Microseconds (int, or float in some releases) -> int nanoseconds, without float64 rounding at 1e18 ns."""
    whole = int(microseconds)
    return whole * 1000 + int(round((float(microseconds) - whole) * 1000.0))


class NuScenesDataset(Dataset):
    """A nuScenes-schema database: scenes are logs, LIDAR_TOP key frames (and optionally sweeps) are frames."""

    name = "nuscenes"

    def __init__(
        self,
        root: Path,
        *,
        version: str | None = None,
        sweeps: bool = False,
        cameras: Sequence[str] = (),
        skip_bad: bool = False,
    ) -> None:
        super().__init__(root, skip_bad=skip_bad)
        version = version if version is not None else detect_version(self.root)
        self.version = version
        self.sweeps = sweeps
        self.cameras = tuple(cameras)
        self.nusc, self._notes = open_nuscenes(self.root, version)
        self.table_dir = self.root / version
        self._scenes = {scene["name"]: scene for scene in self.nusc.scene}
        lidar_files = [sd["filename"] for sd in self.nusc.sample_data if sd["channel"] == LIDAR_CHANNEL]
        self.has_point_clouds = any((self.root / name).is_file() for name in lidar_files)
        if lidar_files and not self.has_point_clouds:
            self._notes.append(f"no {LIDAR_CHANNEL} point-cloud file under {self.root}: frames carry no LiDAR")
        for note in self._notes:
            LOGGER.info("%s: %s", self.root, note)

    def notes(self) -> tuple[str, ...]:
        return tuple(self._notes)

    def logs(self) -> list[str]:
        return list(self._scenes)

    def scene(self, log_id: str) -> dict[str, Any]:
        if log_id not in self._scenes:
            raise AdapterError(self.table_dir / "scene.json", f"no scene named {log_id!r}")
        return self._scenes[log_id]

    def sensors(self) -> tuple[str, ...]:
        return tuple(sorted({record["channel"] for record in self.nusc.sensor}))

    @functools.cached_property
    def _samples_by_scene(self) -> dict[str, list[dict[str, Any]]]:
        by_scene: dict[str, list[dict[str, Any]]] = {}
        for sample in sorted(self.nusc.sample, key=lambda s: s["timestamp"]):
            by_scene.setdefault(sample["scene_token"], []).append(sample)
        return by_scene

    def samples(self, log_id: str) -> list[dict[str, Any]]:
        """The scene's key frames present in the database, in time order."""
        return self._samples_by_scene.get(self.scene(log_id)["token"], [])

    def lidar_records(self, log_id: str) -> list[dict[str, Any]]:
        """LIDAR_TOP sample_data records of the scene: key frames, plus the sweeps after each when `sweeps`."""
        records = []
        for sample in self.samples(log_id):
            token = sample["data"].get(LIDAR_CHANNEL)
            if token is None:
                raise AdapterError(self.table_dir / "sample_data.json", f"sample {sample['token']} has no {LIDAR_CHANNEL} data")
            record = self.nusc.get("sample_data", token)
            records.append(record)
            while self.sweeps and record["next"]:
                record = self.nusc.get("sample_data", record["next"])
                if record["is_key_frame"]:
                    break
                records.append(record)
        return records

    def timestamps_ns(self, log_id: str) -> list[int]:
        return [_timestamp_ns(record["timestamp"]) for record in self.lidar_records(log_id)]

    def category_counts(self, log_id: str) -> Counter[str]:
        counts: Counter[str] = Counter()
        for sample in self.samples(log_id):
            for token in sample["anns"]:
                name = self._canonical(self.nusc.get("sample_annotation", token)["category_name"])
                if name is not None:
                    counts[name] += 1
        return counts

    def _canonical(self, nuscenes_name: str) -> str | None:
        return guarded(self.table_dir / "category.json", lambda: from_nuscenes(nuscenes_name))

    def frames(self, log_id: str) -> Iterator[Frame]:
        try:
            records = self.lidar_records(log_id)
        except AdapterError as error:
            skip_or_raise(error, self.skip_bad, f"scene {log_id}")
            return
        for record in records:
            try:
                yield self.frame(log_id, record)
            except AdapterError as error:
                skip_or_raise(error, self.skip_bad, f"frame {log_id}/{record['token']}")

    def frame(self, log_id: str, lidar_record: dict[str, Any]) -> Frame:
        city_SE3_ego = _se3(self.nusc.get("ego_pose", lidar_record["ego_pose_token"]), self.table_dir / "ego_pose.json")
        timestamp_ns = _timestamp_ns(lidar_record["timestamp"])
        lidar = None
        if self.has_point_clouds:
            ego_SE3_lidar = _se3(self.nusc.get("calibrated_sensor", lidar_record["calibrated_sensor_token"]), self.table_dir / "calibrated_sensor.json")
            lidar = read_point_cloud(self.root / lidar_record["filename"], timestamp_ns, ego_SE3_lidar)
        boxes = self.boxes(lidar_record["sample_token"], city_SE3_ego) if lidar_record["is_key_frame"] else None
        cameras = {}
        for channel in self.cameras:
            record = self.nearest_record(log_id, channel, float(lidar_record["timestamp"]))
            if record is not None:
                cameras[channel] = self.camera_frame(channel, record)
        return Frame(log_id, timestamp_ns, city_SE3_ego, lidar, cameras, boxes)

    @functools.cached_property
    def _records_by_scene_channel(self) -> dict[tuple[str, str], tuple[np.ndarray, list[dict[str, Any]]]]:
        scene_of_sample = {sample["token"]: sample["scene_token"] for sample in self.nusc.sample}
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for record in self.nusc.sample_data:
            scene = scene_of_sample.get(record["sample_token"])
            if scene is not None:
                grouped.setdefault((scene, record["channel"]), []).append(record)
        result = {}
        for key, records in grouped.items():
            records.sort(key=lambda r: r["timestamp"])
            result[key] = (np.array([float(r["timestamp"]) for r in records]), records)
        return result

    def nearest_record(self, log_id: str, channel: str, timestamp_us: float) -> dict[str, Any] | None:
        """The `channel` sample_data of the scene nearest in time (None beyond `MAX_CAMERA_OFFSET_US`)."""
        stamps, records = self._records_by_scene_channel.get((self.scene(log_id)["token"], channel), (np.zeros(0), []))
        if not len(stamps):
            return None
        index = int(np.argmin(np.abs(stamps - timestamp_us)))
        return records[index] if abs(stamps[index] - timestamp_us) <= MAX_CAMERA_OFFSET_US else None

    def camera_frame(self, channel: str, record: dict[str, Any]) -> CameraFrame:
        calibration_path = self.table_dir / "calibrated_sensor.json"
        calibration = self.nusc.get("calibrated_sensor", record["calibrated_sensor_token"])
        intrinsics = np.asarray(calibration.get("camera_intrinsic") or [], dtype=np.float64)
        if intrinsics.shape != (3, 3):
            raise AdapterError(calibration_path, f"record {calibration['token']}: {channel} has no 3x3 camera_intrinsic")
        path = self.root / record["filename"]
        image = read_image(path)
        ego_SE3_camera = _se3(calibration, calibration_path)
        with source_file(path):
            return guarded(path, lambda: CameraFrame(_timestamp_ns(record["timestamp"]), channel, image, intrinsics, ego_SE3_camera))

    def boxes(self, sample_token: str, city_SE3_ego: SE3) -> Boxes3D:
        """Ego-frame boxes of a key frame (categories outside the canonical table dropped)."""
        source = self.table_dir / "sample_annotation.json"
        sample = self.nusc.get("sample", sample_token)
        rows = []
        for token in sample["anns"]:
            annotation = check_annotation(self.nusc.get("sample_annotation", token), source)
            canonical = self._canonical(annotation["category_name"])
            if canonical is not None:
                rows.append((annotation, category_id(canonical)))
        if not rows:
            return Boxes3D.empty(with_tracks=True)
        ego_SE3_city = city_SE3_ego.inverse()
        try:
            centers = np.array([a["translation"] for a, _ in rows], dtype=np.float64)
            sizes_wlh = np.array([a["size"] for a, _ in rows], dtype=np.float64)
            rotations = quat_wxyz_to_matrix(np.array([a["rotation"] for a, _ in rows], dtype=np.float64))
        except (ValueError, TypeError) as error:
            raise AdapterError(source, f"malformed annotation of sample {sample_token} ({error})") from None
        if centers.shape != (len(rows), 3) or sizes_wlh.shape != (len(rows), 3):
            raise AdapterError(source, f"annotations of sample {sample_token}: translation/size must have 3 values")
        ego_rotations = ego_SE3_city.rotation @ rotations
        with source_file(source):
            return guarded(
                source,
                lambda: Boxes3D(
                    center_m=ego_SE3_city.transform_points(centers),
                    size_lwh_m=sizes_wlh[:, [1, 0, 2]],
                    yaw_rad=np.arctan2(ego_rotations[:, 1, 0], ego_rotations[:, 0, 0]),
                    category=np.array([cid for _, cid in rows], dtype=np.int64),
                    track_id=np.array([a["instance_token"] for a, _ in rows], dtype=str),
                    num_interior_pts=np.array([max(0, int(a.get("num_lidar_pts", 0))) for a, _ in rows], dtype=np.int64),
                ),
            )

    @functools.cached_property
    def helper(self) -> Any:
        from nuscenes.prediction import PredictHelper

        return PredictHelper(self.nusc)

    def scenarios(self) -> Iterator[Scenario]:
        """One scenario per key frame: every annotated agent's 2 s history and 6 s future at 2 Hz (PredictHelper)."""
        for log_id in self.logs():
            for sample in self.samples(log_id):
                try:
                    yield self.scenario(log_id, sample["token"])
                except AdapterError as error:
                    skip_or_raise(error, self.skip_bad, f"scenario {sample['token']}")

    def scenario(self, log_id: str, sample_token: str, focal_instance: str | None = None) -> Scenario:
        helper = self.helper
        source = self.table_dir / "sample_annotation.json"
        history_steps, future_steps = int(HISTORY_S * STEP_HZ), int(FUTURE_S * STEP_HZ)
        steps = history_steps + 1 + future_steps
        sample = self.nusc.get("sample", sample_token)
        current_us = float(sample["timestamp"])
        agents, categories, xy, heading, valid = [], [], [], [], []
        for annotation in helper.get_annotations_for_sample(sample_token):
            canonical = self._canonical(check_annotation(annotation, source)["category_name"])
            if canonical is None:
                continue
            track = [(history_steps, annotation)]
            past = helper.get_past_for_agent(annotation["instance_token"], sample_token, HISTORY_S, in_agent_frame=False, just_xy=False)
            future = helper.get_future_for_agent(annotation["instance_token"], sample_token, FUTURE_S, in_agent_frame=False, just_xy=False)
            for record in [*past, *future]:
                offset_s = (float(self.nusc.get("sample", record["sample_token"])["timestamp"]) - current_us) * 1e-6
                step = history_steps + int(round(offset_s * STEP_HZ))
                if 0 <= step < steps:
                    track.append((step, record))
            agent_xy = np.full((steps, 2), np.nan)
            agent_heading = np.full(steps, np.nan)
            agent_valid = np.zeros(steps, dtype=bool)
            for step, record in track:
                check_annotation(record, source)
                agent_xy[step] = np.asarray(record["translation"], dtype=np.float64)[:2]
                rotation = quat_wxyz_to_matrix(np.asarray(record["rotation"], dtype=np.float64))
                agent_heading[step] = np.arctan2(rotation[1, 0], rotation[0, 0])
                agent_valid[step] = True
            agents.append(annotation["instance_token"])
            categories.append(category_id(canonical))
            xy.append(agent_xy)
            heading.append(agent_heading)
            valid.append(agent_valid)
        xy_array = np.array(xy).reshape(-1, steps, 2)
        valid_array = np.array(valid).reshape(-1, steps)
        velocity = finite_difference_velocity(xy_array, valid_array, 1.0 / STEP_HZ)
        step_ns = int(1e9 / STEP_HZ)
        timestamps = _timestamp_ns(current_us) + step_ns * (np.arange(steps) - history_steps)
        focal = [focal_instance] if focal_instance is not None else []
        location = self.nusc.get("log", self.scene(log_id)["log_token"])["location"]
        with source_file(source):
            return guarded(
                source,
                lambda: Scenario(
                    scenario_id=f"{focal_instance}_{sample_token}" if focal_instance else sample_token,
                    city_name=location,
                    timestamps_ns=timestamps,
                    agent_ids=np.array(agents, dtype=str),
                    category=np.array(categories, dtype=np.int64),
                    xy_m=xy_array,
                    heading_rad=np.array(heading).reshape(-1, steps),
                    velocity_m_per_s=velocity,
                    valid=valid_array,
                    current_index=history_steps,
                    focal_agent_ids=np.array(focal, dtype=str),
                    lane_graph=self.lane_graph(log_id),
                ),
            )

    def prediction_scenarios(self, split: str) -> Iterator[Scenario]:
        """The prediction challenge's agents of `split` (needs `maps/prediction/prediction_scenes.json`)."""
        from nuscenes.eval.prediction.splits import get_prediction_challenge_split

        path = self.root / "maps" / "prediction" / "prediction_scenes.json"
        if not path.is_file():
            raise AdapterError(path, "prediction-challenge split file not found (part of the nuScenes map expansion)")
        scene_of_sample = {s["token"]: self.nusc.get("scene", s["scene_token"])["name"] for s in self.nusc.sample}
        for item in get_prediction_challenge_split(split, dataroot=str(self.root)):
            instance, sample_token = item.split("_")
            if sample_token not in scene_of_sample:
                raise AdapterError(path, f"sample {sample_token} of split {split!r} is not in the database")
            yield self.scenario(scene_of_sample[sample_token], sample_token, focal_instance=instance)

    def lane_graph(self, log_id: str) -> LaneGraph | None:
        location = self.nusc.get("log", self.scene(log_id)["log_token"])["location"]
        return self._lane_graph(location)

    @per_instance_lru_cache(maxsize=4)
    def _lane_graph(self, location: str) -> LaneGraph | None:
        path = self.root / "maps" / "expansion" / f"{location}.json"
        if not path.is_file():
            message = f"no map expansion at {path}: lane graph unavailable for {location}"
            if message not in self._notes:
                self._notes.append(message)
                LOGGER.info(message)
            return None
        return read_map_expansion(self.root, location, path)


def finite_difference_velocity(xy_m: np.ndarray, valid: np.ndarray, step_s: float) -> np.ndarray:
    """Per-step velocity (A, T, 2) from positions: central differences where both neighbours are valid, one-sided
    at gaps and ends, NaN at unobserved steps and 0 at an observed step with no observed neighbour (its motion is
    unknown, and `Scenario` needs finite values wherever `valid`)."""
    velocity = np.full(xy_m.shape, np.nan)
    forward = valid[:, 1:] & valid[:, :-1]
    diff = np.where(forward[..., None], (xy_m[:, 1:] - xy_m[:, :-1]) / step_s, np.nan)
    has_prev = np.zeros(valid.shape, dtype=bool)
    has_next = np.zeros(valid.shape, dtype=bool)
    has_prev[:, 1:] = forward
    has_next[:, :-1] = forward
    prev = np.full(xy_m.shape, np.nan)
    nxt = np.full(xy_m.shape, np.nan)
    prev[:, 1:] = diff
    nxt[:, :-1] = diff
    both = has_prev & has_next
    velocity[both] = 0.5 * (prev[both] + nxt[both])
    velocity[has_prev & ~has_next] = prev[has_prev & ~has_next]
    velocity[~has_prev & has_next] = nxt[~has_prev & has_next]
    velocity[valid & ~has_prev & ~has_next] = 0.0
    return velocity


def read_point_cloud(path: Path, timestamp_ns: int, ego_SE3_lidar: SE3) -> LidarSweep:
    """A nuScenes `.pcd.bin` (float32 x, y, z, intensity, ring per point, sensor frame) -> ego-frame `LidarSweep`."""
    if not path.is_file():
        raise AdapterError(path, "point-cloud file not found")
    raw = path.read_bytes()
    if len(raw) % (4 * POINT_VALUES):
        raise AdapterError(path, f"truncated point cloud: {len(raw)} bytes is not a multiple of {4 * POINT_VALUES}")
    points = np.frombuffer(raw, dtype=np.float32).reshape(-1, POINT_VALUES)
    if not np.all(np.isfinite(points)):
        raise AdapterError(path, "point cloud holds NaN or inf")
    xyz = ego_SE3_lidar.transform_points(points[:, :3]).astype(np.float32)
    with source_file(path):
        return guarded(
            path,
            lambda: LidarSweep(timestamp_ns, xyz, np.clip(points[:, 3] / 255.0, 0.0, 1.0), points[:, 4].astype(np.int16)),
        )


def read_map_expansion(dataroot: Path, location: str, path: Path) -> LaneGraph:
    """Lanes and lane connectors of a nuScenes map expansion -> `LaneGraph` (10-point centerlines, outgoing links)."""
    from av2.geometry.interpolate import interp_arc
    from nuscenes.map_expansion import arcline_path_utils
    from nuscenes.map_expansion.map_api import NuScenesMap

    try:
        nusc_map = NuScenesMap(dataroot=str(dataroot), map_name=location)
    except (KeyError, ValueError, json.JSONDecodeError, AssertionError) as error:
        raise AdapterError(path, f"unreadable map expansion ({type(error).__name__}: {error})") from None
    records = [*nusc_map.lane, *nusc_map.lane_connector]
    tokens = [record["token"] for record in records]
    index = {token: i for i, token in enumerate(tokens)}
    centerlines = []
    for token in tokens:
        arcline = nusc_map.arcline_path_3.get(token)
        if not arcline:
            raise AdapterError(path, f"lane {token} has no arcline_path_3 entry")
        poses = np.array(arcline_path_utils.discretize_lane(arcline, resolution_meters=0.5))[:, :2]
        centerlines.append(interp_arc(LANE_POINTS, np.hstack([poses, np.zeros((len(poses), 1))])))
    successors = tuple(
        tuple(index[t] for t in nusc_map.connectivity.get(token, {}).get("outgoing", []) if t in index) for token in tokens
    )
    drivable = []
    for area in nusc_map.drivable_area:
        for polygon_token in area["polygon_tokens"]:
            exterior = np.asarray(nusc_map.extract_polygon(polygon_token).exterior.coords)
            drivable.append(np.hstack([exterior, np.zeros((len(exterior), 1))]))
    lane_tokens = {record["token"] for record in nusc_map.lane_connector}
    with source_file(path):
        return guarded(
            path,
            lambda: LaneGraph(
                city_name=location,
                lane_ids=np.arange(len(tokens), dtype=np.int64),
                centerlines_m=np.array(centerlines).reshape(-1, LANE_POINTS, 3),
                successors=successors,
                left_neighbor_id=np.full(len(tokens), -1, dtype=np.int64),
                right_neighbor_id=np.full(len(tokens), -1, dtype=np.int64),
                is_intersection=np.array([token in lane_tokens for token in tokens], dtype=bool),
                drivable_areas_m=tuple(drivable),
            ),
        )
