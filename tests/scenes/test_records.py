"""Record validation (bad shape/dtype/NaN -> ValueError naming record and field) and lossless serialization."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from scenes.categories import CATEGORIES
from scenes.geometry import SE3, Sim2
from scenes.records import (
    Boxes3D,
    BoxFrame,
    CameraFrame,
    DepthMap,
    Forecasts,
    Frame,
    LaneGraph,
    LidarSweep,
    MapRaster,
    RecordError,
    Scenario,
    SegMask,
    SemanticLayout,
    Tracks,
    TrafficSignalStates,
    source_file,
)
from scenes.serialize import (
    load_boxes_feather,
    load_npz,
    load_sweep_feather,
    save_boxes_feather,
    save_npz,
    save_sweep_feather,
)


def make_boxes(n: int = 3, frame: BoxFrame = "ego", seed: int = 0) -> Boxes3D:
    rng = np.random.default_rng(seed)
    return Boxes3D(
        center_m=rng.normal(size=(n, 3)),
        size_lwh_m=rng.uniform(0.5, 5, size=(n, 3)),
        yaw_rad=rng.uniform(-np.pi, np.pi, size=n),
        category=rng.integers(0, len(CATEGORIES), size=n),
        score=rng.uniform(size=n).astype(np.float32),
        velocity_m_per_s=rng.normal(size=(n, 2)),
        track_id=np.array([f"track-{i}" for i in range(n)]),
        num_interior_pts=rng.integers(0, 100, size=n),
        frame=frame,
    )


def make_sweep(n: int = 50) -> LidarSweep:
    rng = np.random.default_rng(1)
    return LidarSweep(
        timestamp_ns=315_973_157_959_879_000,
        points_xyz_m=rng.normal(size=(n, 3)).astype(np.float32),
        intensity=rng.uniform(size=n).astype(np.float32),
        laser_number=rng.integers(0, 32, size=n).astype(np.int16),
        offset_ns=rng.integers(0, 100_000_000, size=n),
    )


def make_lane_graph() -> LaneGraph:
    centerlines = np.zeros((2, 5, 3))
    centerlines[0, :, 0] = np.linspace(0, 10, 5)
    centerlines[1, :, 0] = np.linspace(10, 20, 5)
    raster = MapRaster("drivable_area", np.ones((20, 30), dtype=bool), Sim2(np.eye(2), np.array([5.0, 5.0]), 1.0))
    return LaneGraph(
        city_name="SYN",
        lane_ids=np.array([11, 12]),
        centerlines_m=centerlines,
        successors=((12,), ()),
        left_neighbor_id=np.array([-1, -1]),
        right_neighbor_id=np.array([-1, -1]),
        is_intersection=np.array([False, True]),
        drivable_areas_m=(np.array([[0.0, -5, 0], [20, -5, 0], [20, 5, 0], [0, 5, 0]]),),
        crosswalks_m=np.zeros((1, 4, 3)),
        rasters={"drivable_area": raster},
    )


def make_frame() -> Frame:
    camera = CameraFrame(
        timestamp_ns=10,
        name="ring_front_center",
        image=np.zeros((4, 6, 3), dtype=np.uint8),
        intrinsics=np.array([[5.0, 0, 3], [0, 5, 2], [0, 0, 1]]),
        ego_SE3_camera=SE3.from_yaw(0.1, [1.0, 0.0, 1.5]),
        depth_m=np.ones((4, 6), dtype=np.float32),
        semantics=np.full((4, 6), 7, dtype=np.uint8),
    )
    return Frame("log-a", 10, SE3.from_yaw(0.3, [1.0, 2.0, 0.0]), make_sweep(), {"ring_front_center": camera}, make_boxes())


def assert_records_equal(a: object, b: object) -> None:
    assert type(a) is type(b)
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, (SE3, Sim2)) or hasattr(a, "__dataclass_fields__"):
        for name in a.__dataclass_fields__:
            assert_records_equal(getattr(a, name), getattr(b, name))
    elif isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list))
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_records_equal(x, y)
    elif isinstance(a, Mapping):
        assert isinstance(b, Mapping)
        assert list(a.keys()) == list(b.keys())
        for key in a.keys():
            assert_records_equal(a[key], b[key])
    else:
        assert a == b


def test_boxes_validation_names_record_and_field() -> None:
    good = make_boxes()
    with pytest.raises(RecordError, match=r"Boxes3D\.size_lwh_m: .*shape"):
        Boxes3D(good.center_m, np.ones((3, 2)), good.yaw_rad, good.category)
    with pytest.raises(RecordError, match=r"Boxes3D\.yaw_rad: contains NaN"):
        Boxes3D(good.center_m, good.size_lwh_m, np.array([0.0, np.nan, 0.0]), good.category)
    with pytest.raises(RecordError, match=r"Boxes3D\.category: expected an integer dtype"):
        Boxes3D(good.center_m, good.size_lwh_m, good.yaw_rad, np.array([0.5, 1.0, 2.0]))
    with pytest.raises(RecordError, match=r"Boxes3D\.category: category ids"):
        Boxes3D(good.center_m, good.size_lwh_m, good.yaw_rad, np.array([0, 1, 26]))
    with pytest.raises(RecordError, match=r"Boxes3D\.size_lwh_m: sizes must be positive"):
        Boxes3D(good.center_m, -good.size_lwh_m, good.yaw_rad, good.category)
    with pytest.raises(RecordError, match=r"Boxes3D\.frame"):
        Boxes3D(good.center_m, good.size_lwh_m, good.yaw_rad, good.category, frame="lidar")  # type: ignore[arg-type]


def test_validation_error_names_source_file() -> None:
    with source_file("/data/log/annotations.feather"):
        with pytest.raises(RecordError, match=r"LidarSweep\.points_xyz_m: .*\(from /data/log/annotations.feather\)"):
            LidarSweep(0, np.zeros((4, 2)), np.zeros(4), np.zeros(4, dtype=np.int16))
    with pytest.raises(RecordError, match=r"^LidarSweep\.points_xyz_m: expected shape \('N', 3\), got \(4, 2\) \(axis 1\)$"):
        LidarSweep(0, np.zeros((4, 2)), np.zeros(4), np.zeros(4, dtype=np.int16))  # outside the context: no source named


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda: LidarSweep(-1, np.zeros((1, 3)), np.zeros(1), np.zeros(1, dtype=np.int16)), r"LidarSweep\.timestamp_ns"),
        (lambda: LidarSweep(0, np.zeros((2, 3)), np.zeros(3), np.zeros(2, dtype=np.int16)), r"LidarSweep\.intensity"),
        (lambda: CameraFrame(0, "cam", np.zeros((4, 4, 3), dtype=np.uint8), np.eye(3), SE3(), depth_m=np.ones((4, 5))), r"CameraFrame\.depth_m"),
        (lambda: Frame("", 0, SE3()), r"Frame\.log_id"),
        (lambda: Frame("log", 0, np.eye(4)), r"Frame\.city_SE3_ego"),  # type: ignore[arg-type]
        (lambda: Frame("log", 0, SE3(), annotations=make_boxes(frame="city")), r"Frame\.annotations"),
        (lambda: Tracks("log", np.array([2, 1]), (make_boxes(frame="city"), make_boxes(frame="city"))), r"Tracks\.timestamps_ns"),
        (lambda: Tracks("log", np.array([1, 2]), (make_boxes(frame="city"), make_boxes(frame="ego"))), r"Tracks\.boxes\[1\]"),
        (lambda: DepthMap(0, "cam", -np.ones((2, 2))), r"DepthMap\.depth_m"),
        (lambda: SegMask(np.zeros((2, 2), dtype=np.uint8), class_table="ade20k"), r"SegMask\.class_table"),
        (lambda: SemanticLayout(np.full((2, 2), 5, dtype=np.uint8), num_classes=3), r"SemanticLayout\.labels"),
    ],
)
def test_invalid_records_raise(build: Callable[[], object], pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        build()


def test_boxes_transform_and_select() -> None:
    boxes = make_boxes()
    city_SE3_ego = SE3.from_yaw(np.pi / 2, [10.0, 0.0, 0.0])
    city = boxes.transformed(city_SE3_ego, "city")
    np.testing.assert_allclose(city.center_m[:, 0], 10.0 - boxes.center_m[:, 1])
    assert boxes.velocity_m_per_s is not None and city.velocity_m_per_s is not None
    np.testing.assert_allclose(city.velocity_m_per_s, np.stack([-boxes.velocity_m_per_s[:, 1], boxes.velocity_m_per_s[:, 0]], 1))
    back = city.transformed(city_SE3_ego.inverse(), "ego")
    np.testing.assert_allclose(back.center_m, boxes.center_m, atol=1e-12)
    np.testing.assert_allclose(np.cos(back.yaw_rad - boxes.yaw_rad), 1.0)
    picked = boxes.select(np.array([2, 0]))
    assert picked.track_id is not None
    assert list(picked.track_id) == ["track-2", "track-0"]
    both = Boxes3D.concatenate([boxes, picked])
    assert len(both) == 5 and both.track_id is not None
    assert len(Boxes3D.empty()) == 0


def test_boxes_observed_keeps_boxes_with_enough_points() -> None:
    boxes = replace(make_boxes(), num_interior_pts=np.array([0, 3, 1]))

    def ids(picked: Boxes3D) -> list[str]:
        assert picked.track_id is not None
        return list(picked.track_id)

    assert ids(boxes.observed()) == ["track-1", "track-2"]
    assert ids(boxes.observed(2)) == ["track-1"]
    assert ids(boxes.observed(0)) == ["track-0", "track-1", "track-2"]
    unknown = replace(boxes, num_interior_pts=None)
    assert unknown.observed(5) is unknown


def test_tracks_history() -> None:
    frames = []
    for t in range(4):
        boxes = make_boxes(2, frame="city")
        center = boxes.center_m.copy()
        center[0] = [t, 0, 0]
        ids = np.array(["a", "b"]) if t != 2 else np.array(["b", "c"])
        frames.append(Boxes3D(center, boxes.size_lwh_m, boxes.yaw_rad, boxes.category, track_id=ids, frame="city"))
    tracks = Tracks("log", np.array([0, 100, 200, 300]), tuple(frames))
    history = tracks.history("a", 6)
    np.testing.assert_array_equal(history.valid, [False, False, True, True, False, True])
    np.testing.assert_array_equal(history.timestamps_ns, [0, 0, 0, 100, 200, 300])
    np.testing.assert_allclose(history.center_m[[2, 3, 5], 0], [0, 1, 3])
    assert list(tracks.track_ids) == ["a", "b", "c"]
    assert tracks.history("a", 2, until_index=1).valid.tolist() == [True, True]


def test_scenario_validation() -> None:
    xy = np.zeros((2, 4, 2))
    xy[1, 0] = np.nan
    valid = np.ones((2, 4), dtype=bool)
    valid[1, 0] = False
    kwargs: dict[str, Any] = dict(
        scenario_id="s", city_name="SYN", timestamps_ns=np.arange(4), agent_ids=np.array(["a", "b"]),
        category=np.array([0, 1]), xy_m=xy, heading_rad=np.zeros((2, 4)), velocity_m_per_s=np.zeros((2, 4, 2)),
        valid=valid, current_index=2, focal_agent_ids=np.array(["a"]),
    )
    Scenario(**kwargs)  # NaN where not valid is fine
    valid_everywhere = np.ones((2, 4), dtype=bool)
    with pytest.raises(RecordError, match=r"Scenario\.xy_m: NaN or inf at a valid step"):
        Scenario(**{**kwargs, "valid": valid_everywhere})
    with pytest.raises(RecordError, match=r"Scenario\.focal_agent_ids"):
        Scenario(**{**kwargs, "focal_agent_ids": np.array(["z"])})
    with pytest.raises(RecordError, match=r"Scenario\.current_index"):
        Scenario(**{**kwargs, "current_index": 4})


def test_lane_graph_and_raster_lookup() -> None:
    graph = make_lane_graph()
    assert graph.index_of(12) == 1
    with pytest.raises(KeyError, match="lane id 99 is not in the lane graph"):
        graph.index_of(99)
    raster = graph.rasters["drivable_area"]
    assert raster.lookup(np.array([[0.0, 0.0], [100.0, 0.0]])).tolist() == [True, False]
    with pytest.raises(RecordError, match=r"LaneGraph\.successors"):
        LaneGraph("SYN", np.array([1]), np.zeros((1, 2, 3)), (), np.array([-1]), np.array([-1]), np.array([False]))


def test_npz_round_trip_of_nested_records(tmp_path: Path) -> None:
    forecasts = Forecasts(
        "log", 5, np.array(["a", "b"]), np.zeros((2, 2)), np.ones((2, 5, 6, 2)), np.full((2, 5), 0.2), np.ones(2), np.array([0, 1])
    )
    records = [make_frame(), make_lane_graph(), forecasts, Tracks("log", np.array([1, 2]), (make_boxes(frame="city"),) * 2), _signals()]
    for index, record in enumerate(records):
        path = tmp_path / f"record{index}.npz"
        save_npz(record, path)
        assert_records_equal(load_npz(path), record)


def test_feather_round_trips(tmp_path: Path) -> None:
    sweep = make_sweep()
    save_sweep_feather(sweep, tmp_path / "sweep.feather")
    assert_records_equal(load_sweep_feather(tmp_path / "sweep.feather"), sweep)
    boxes = make_boxes()
    save_boxes_feather(boxes, tmp_path / "boxes.feather")
    assert_records_equal(load_boxes_feather(tmp_path / "boxes.feather"), boxes)
    minimal = Boxes3D(np.zeros((1, 3)), np.ones((1, 3)), np.zeros(1), np.array([3]), frame="city")
    save_boxes_feather(minimal, tmp_path / "minimal.feather")
    assert_records_equal(load_boxes_feather(tmp_path / "minimal.feather"), minimal)


@given(arrays(np.float64, st.tuples(st.integers(0, 8), st.just(3)), elements=st.floats(-1e6, 1e6)), st.integers(0, 2**62))
@settings(max_examples=25, deadline=None)
def test_boxes_npz_round_trip_property(centers: np.ndarray, timestamp: int) -> None:
    import tempfile

    n = len(centers)
    boxes = Boxes3D(centers, np.ones((n, 3)), np.zeros(n), np.zeros(n, dtype=np.int64), track_id=np.array([str(i) for i in range(n)], dtype=str))
    frame = Frame("log", timestamp, SE3(), annotations=boxes)
    with tempfile.TemporaryDirectory() as directory:
        save_npz(frame, Path(directory) / "f.npz")
        assert_records_equal(load_npz(Path(directory) / "f.npz"), frame)


def test_damaged_files_raise_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(RecordError, match="broken.npz"):
        load_npz(path)
    feather_path = tmp_path / "broken.feather"
    feather_path.write_bytes(b"ARROW1\x00\x00garbage")
    with pytest.raises(RecordError, match="broken.feather"):
        load_boxes_feather(feather_path)
    save_sweep_feather(make_sweep(), tmp_path / "sweep.feather")
    with pytest.raises(RecordError, match="not a drivestack.Boxes3D"):
        load_boxes_feather(tmp_path / "sweep.feather")


def test_atomic_write_leaves_no_partial_file(tmp_path: Path) -> None:
    from scenes.io import atomic_write

    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="^crash$"):  # the writer's own error propagates unchanged
        with atomic_write(target) as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def _record_arrays(record: object, path: str = "") -> list[tuple[str, np.ndarray]]:
    """Every ndarray a record holds, nested records included (SE3/Sim2 are geometry values, checked elsewhere)."""
    found: list[tuple[str, np.ndarray]] = []
    if isinstance(record, np.ndarray):
        found.append((path, record))
    elif isinstance(record, (SE3, Sim2)):
        pass
    elif hasattr(record, "__dataclass_fields__"):
        for name in record.__dataclass_fields__:
            found += _record_arrays(getattr(record, name), f"{path}.{name}" if path else f"{type(record).__name__}.{name}")
    elif isinstance(record, (tuple, list)):
        for index, item in enumerate(record):
            found += _record_arrays(item, f"{path}[{index}]")
    elif isinstance(record, Mapping):
        for key in record.keys():
            found += _record_arrays(record[key], f"{path}[{key!r}]")
    return found


def _signals() -> TrafficSignalStates:
    return TrafficSignalStates(np.arange(4), np.array([11, 12]), np.zeros((2, 3)), np.array([[1, 3]] * 2 + [[2, 0]] * 2, dtype=np.int8))


def _every_record() -> list[object]:
    from scenes.records import TrackHistory

    forecasts = Forecasts(
        "log", 5, np.array(["a", "b"]), np.zeros((2, 2)), np.ones((2, 5, 6, 2)), np.full((2, 5), 0.2), np.ones(2), np.array([0, 1])
    )
    scenario = Scenario(
        "s", "SYN", np.arange(4), np.array(["a", "b"]), np.array([0, 1]), np.zeros((2, 4, 2)), np.zeros((2, 4)),
        np.zeros((2, 4, 2)), np.ones((2, 4), dtype=bool), 2, np.array(["a"]), make_lane_graph(), _signals(),
    )  # fmt: skip
    history = TrackHistory(np.array([0, 100, 200]), np.zeros((3, 3)), np.zeros(3), np.array([False, True, True]))
    return [
        make_frame(),
        make_lane_graph(),
        forecasts,
        scenario,
        history,
        Tracks("log", np.array([1, 2]), (make_boxes(frame="city"),) * 2),
        DepthMap(0, "cam", np.ones((2, 3), dtype=np.float32)),
        SegMask(np.zeros((2, 2), dtype=np.uint8)),
        SemanticLayout(np.zeros((2, 2), dtype=np.uint8), num_classes=3),
        Boxes3D.empty(with_tracks=True),
    ]


@pytest.mark.parametrize("record", _every_record(), ids=lambda record: type(record).__name__)
def test_every_record_array_is_a_read_only_copy(record: object) -> None:
    arrays_held = _record_arrays(record)
    assert arrays_held
    for path, array in arrays_held:
        assert not array.flags.writeable, f"{path} is writeable"
        assert array.flags.owndata, f"{path} is a view of an array the caller may still hold"
        with pytest.raises(ValueError, match="read-only"):
            array[...] = array  # the validated record cannot be changed in place


def test_input_written_after_construction_does_not_reach_the_record() -> None:
    rng = np.random.default_rng(3)
    center, size, yaw = rng.normal(size=(2, 3)), np.ones((2, 3)), np.zeros(2)
    category = np.array([0, 1])
    boxes = Boxes3D(center, size, yaw, category)  # float64/int64 inputs: the old code kept these very arrays
    center[0, 0], yaw[1], size[0, 0], category[0] = np.nan, np.inf, -1.0, 999
    assert np.all(np.isfinite(boxes.center_m)) and np.all(np.isfinite(boxes.yaw_rad))
    assert np.all(boxes.size_lwh_m > 0) and boxes.category.tolist() == [0, 1]
    with pytest.raises(ValueError, match="read-only"):
        boxes.size_lwh_m[0, 0] = -1
    with pytest.raises(ValueError, match="read-only"):
        boxes.yaw_rad[0] = np.nan

    points = np.zeros((4, 3), dtype=np.float32)
    sweep = LidarSweep(0, points, np.zeros(4, dtype=np.float32), np.zeros(4, dtype=np.int16))
    points[:] = np.nan
    assert np.all(np.isfinite(sweep.points_xyz_m))

    raster_values = np.ones((3, 3))
    raster = MapRaster("ground_height", raster_values, Sim2(np.eye(2), np.zeros(2), 1.0))
    raster_values[0, 0] = np.nan
    assert np.all(np.isfinite(raster.values)) and not raster.values.flags.writeable

    polygon = np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0]])
    graph = LaneGraph("SYN", np.array([1]), np.zeros((1, 2, 3)), ((),), np.array([-1]), np.array([-1]), np.array([False]), (polygon,))
    polygon[0, 0] = np.nan
    assert np.all(np.isfinite(graph.drivable_areas_m[0])) and not graph.drivable_areas_m[0].flags.writeable


def test_derived_records_stay_read_only() -> None:
    boxes = make_boxes()
    derived = [boxes.select(slice(0, 2)), boxes.transformed(SE3.from_yaw(0.2, [1.0, 0, 0]), "city"), Boxes3D.concatenate([boxes, boxes])]
    for record in derived:
        for path, array in _record_arrays(record):
            assert not array.flags.writeable, path
    assert not np.shares_memory(boxes.select(slice(0, 2)).center_m, boxes.center_m)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"center_m": np.zeros((3, 2))}, r"TrackHistory\.center_m: expected shape"),
        ({"center_m": np.full((3, 3), np.nan)}, r"TrackHistory\.center_m: contains NaN"),
        ({"yaw_rad": np.array([0.0, np.inf, 0.0])}, r"TrackHistory\.yaw_rad: contains NaN or inf"),
        ({"yaw_rad": np.zeros(4)}, r"TrackHistory\.yaw_rad: dimension T=4"),
        ({"valid": np.array([0, 1, 1])}, r"TrackHistory\.valid: expected a bool dtype"),
        ({"timestamps_ns": np.array([0.5, 1.0, 2.0])}, r"TrackHistory\.timestamps_ns: expected an integer dtype"),
        ({"timestamps_ns": np.array([0, 300, 200])}, r"TrackHistory\.timestamps_ns: must be strictly increasing"),
        ({"timestamps_ns": np.array([-5, 100, 200])}, r"TrackHistory\.timestamps_ns: negative"),
    ],
)
def test_track_history_is_validated(kwargs: dict[str, np.ndarray], pattern: str) -> None:
    from scenes.records import TrackHistory

    good = {"timestamps_ns": np.array([0, 100, 200]), "center_m": np.zeros((3, 3)), "yaw_rad": np.zeros(3), "valid": np.array([False, True, True])}
    TrackHistory(**good)
    with pytest.raises(RecordError, match=pattern):
        TrackHistory(**{**good, **kwargs})
