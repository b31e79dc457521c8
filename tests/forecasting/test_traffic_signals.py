"""Traffic-signal states as a forecaster input: the record, the state each lane segment carries, and a network that
uses them where the past cannot tell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.quality_forecasting_context import restricted, with_signals
from forecasting.config import LANE_POINT_DIM, FeatureConfig
from forecasting.dataset import LaneSegments, build_samples, encode_scenario, scenario_from_tracks, scenarios_from_tracks
from forecasting.forecaster import Forecaster
from forecasting.train import fit
from scenes.categories import CATEGORY_ID
from scenes.records import Boxes3D, LaneGraph, RecordError, SignalState, Tracks, TrafficSignalStates

from .conftest import tiny_config

STEP_NS = 100_000_000  # 10 Hz


def junction_graph() -> LaneGraph:
    """Approach lane 1 (eastbound, x -60..0) into connectors 2 (straight) and 3 (left turn); exit 4; lane 5 westbound."""

    def line(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        t = np.linspace(0.0, 1.0, 10)[:, None]
        return np.hstack([np.array([x0, y0]) + t * np.array([x1 - x0, y1 - y0]), np.zeros((10, 1))])

    angles = np.linspace(-np.pi / 2, 0.0, 10)
    turn = np.stack([10.0 * np.cos(angles), 10.0 + 10.0 * np.sin(angles), np.zeros(10)], axis=1)
    centerlines = np.stack([line(-60, 0, 0, 0), line(0, 0, 20, 0), turn, line(20, 0, 80, 0), line(80, 3.5, -60, 3.5)])
    return LaneGraph("TEST", np.arange(1, 6), centerlines, ((2, 3), (4,), (), (), ()), np.full(5, -1), np.full(5, -1),
                     np.array([False, True, True, False, False]))  # fmt: skip


def signal_states(states_2_3: list[tuple[SignalState, SignalState]]) -> TrafficSignalStates:
    """Lights on connectors 2 and 3, one state pair per 10 Hz step from t = 0."""
    times = np.arange(len(states_2_3), dtype=np.int64) * STEP_NS
    return TrafficSignalStates(times, np.array([2, 3]), np.array([[-4.0, 0.0, 0.0], [-4.0, 0.0, 0.0]]), np.array(states_2_3, dtype=np.int8))


def test_record_rejects_unknown_states_repeated_lanes_and_unordered_times() -> None:
    good = signal_states([(SignalState.STOP, SignalState.GO)] * 3)
    with pytest.raises(RecordError, match="TrafficSignalStates.state"):
        TrafficSignalStates(good.timestamps_ns, good.lane_ids, good.stop_points_m, np.full((3, 2), 7, dtype=np.int8))
    with pytest.raises(RecordError, match="TrafficSignalStates.lane_ids"):
        TrafficSignalStates(good.timestamps_ns, np.array([2, 2]), good.stop_points_m, good.state)
    with pytest.raises(RecordError, match="TrafficSignalStates.timestamps_ns"):
        TrafficSignalStates(good.timestamps_ns[::-1].copy(), good.lane_ids, good.stop_points_m, good.state)
    with pytest.raises(RecordError, match="TrafficSignalStates.state"):
        TrafficSignalStates(good.timestamps_ns, good.lane_ids, good.stop_points_m, good.state[:, :1])


def test_states_at_a_time_come_from_the_nearest_record_within_the_tolerance() -> None:
    signals = signal_states([(SignalState.GO, SignalState.GO), (SignalState.CAUTION, SignalState.GO), (SignalState.STOP, SignalState.STOP)])
    assert signals.at(STEP_NS + 10, tolerance_ns=STEP_NS // 4) == {2: SignalState.CAUTION, 3: SignalState.GO}
    assert signals.at(2 * STEP_NS - 20_000_000, tolerance_ns=STEP_NS // 4) == {2: SignalState.STOP, 3: SignalState.STOP}
    assert signals.at(10 * STEP_NS, tolerance_ns=STEP_NS // 4) == {}


def test_each_lane_carries_its_own_light_else_the_most_restrictive_light_ahead() -> None:
    segments = LaneSegments.from_lane_graph(junction_graph(), segment_length_m=12.0, num_points=4)
    channels = segments.signal_channels({2: SignalState.STOP, 3: SignalState.GO})
    stop, go = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    expected = {1: stop, 2: stop, 3: go, 4: np.zeros(3), 5: np.zeros(3)}  # the approach lane waits for lane 2's red
    assert set(np.unique(segments.lane_ids).tolist()) == set(expected)
    for lane_id, row in expected.items():
        np.testing.assert_array_equal(channels[segments.lane_ids == lane_id], np.tile(row, (np.sum(segments.lane_ids == lane_id), 1)))
    assert (segments.lane_ids == 1).sum() == 5  # 60 m in 12 m pieces
    caution = segments.signal_channels({2: SignalState.GO, 3: SignalState.CAUTION})
    np.testing.assert_array_equal(caution[segments.lane_ids == 1], np.tile([0.0, 1.0, 0.0], (5, 1)))
    assert not segments.signal_channels({}).any()


def _approach_tracks(seconds: float, speed_m_per_s: float) -> Tracks:
    """One car on the approach lane from x = -40 at a constant speed (10 Hz)."""
    boxes = []
    for step in range(int(seconds * 10)):
        center = np.array([[-40.0 + speed_m_per_s * step / 10, 0.0, 0.8]])
        boxes.append(Boxes3D(center, np.array([[4.5, 1.9, 1.6]]), np.zeros(1), np.array([CATEGORY_ID["REGULAR_VEHICLE"]]),
                             velocity_m_per_s=np.array([[speed_m_per_s, 0.0]]), track_id=np.array(["car"]), frame="city"))  # fmt: skip
    return Tracks("log", np.arange(len(boxes), dtype=np.int64) * STEP_NS, tuple(boxes))


def test_lane_points_carry_the_light_at_the_prediction_time_and_nothing_without_records() -> None:
    features = FeatureConfig(history_steps=3, horizon_steps=2, max_neighbors=1, max_lanes=6, lane_points=4, traffic_signals=True)
    graph, tracks = junction_graph(), _approach_tracks(3.0, 2.0)
    states = [(SignalState.GO, SignalState.GO)] * 10 + [(SignalState.STOP, SignalState.STOP)] * 20  # red from t = 1 s
    signals = signal_states(states)
    segments = LaneSegments.from_lane_graph(graph, features.lane_segment_length_m, features.lane_points)
    scenario = scenarios_from_tracks(tracks, graph, features, 1, signals)[0]
    assert scenario.timestamps_ns[scenario.current_index] == 10 * STEP_NS  # t = 1 s: the first red step
    batch = encode_scenario(scenario, segments, features)
    assert batch.lanes.shape == (1, 6, 4, LANE_POINT_DIM + 3)
    kept = batch.lanes[0, batch.lane_mask[0]]
    assert np.all(kept[:, :, LANE_POINT_DIM:].sum(axis=-1) <= 1.0)
    # Every kept piece of the approach lane and of its connectors shows red, the westbound lane nothing.
    on_approach = np.isclose(kept[:, :, 1] * features.position_scale_m, 0.0, atol=1e-4).all(axis=1) & (kept[:, 0, 0] < 0.0)
    assert on_approach.any()
    np.testing.assert_array_equal(kept[on_approach][:, :, LANE_POINT_DIM:], np.broadcast_to([1.0, 0.0, 0.0], kept[on_approach][:, :, 5:].shape))
    westbound = np.isclose(kept[:, :, 1] * features.position_scale_m, 3.5, atol=1e-4).all(axis=1)
    assert westbound.any() and not kept[westbound][:, :, LANE_POINT_DIM:].any()
    # Without signal records (as from AV2 or nuScenes) the channels are zero (unknown) and the rest is unchanged.
    bare_scenario = scenario_from_tracks(tracks, graph, 10, features)
    assert bare_scenario.traffic_signals is None
    bare = encode_scenario(bare_scenario, segments, features)
    assert not bare.lanes[..., LANE_POINT_DIM:].any()
    np.testing.assert_array_equal(bare.lanes[..., :LANE_POINT_DIM], batch.lanes[..., :LANE_POINT_DIM])


def test_benchmark_rows_without_signals_equal_encoding_without_them() -> None:
    cfg = tiny_config("plain")
    graph = junction_graph()
    tracks = _approach_tracks(6.0, 3.0)
    signals = signal_states([(SignalState.GO, SignalState.GO)] * 60)
    scenarios = scenarios_from_tracks(tracks, graph, cfg.features, 1, signals)
    full = build_samples(scenarios, with_signals(cfg).features)
    assert full.lanes.shape[-1] == LANE_POINT_DIM + 3 and full.lanes[..., LANE_POINT_DIM + 2].any()
    np.testing.assert_array_equal(restricted(full, True, True).lanes, build_samples(scenarios, cfg.features).lanes)


def test_a_forecaster_with_signals_learns_what_the_light_decides(tmp_path: Path) -> None:
    """Identical pasts (a car rolling at 1 m/s towards the line); on green it speeds up, on red it stops. Only the
    model that sees the lights can tell the two apart."""
    graph = junction_graph()
    cfg = tiny_config("plain", epochs=60, learning_rate=0.01)
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"num_modes": 1})})
    scenarios = []
    for index, light in enumerate([SignalState.GO, SignalState.STOP] * 8):
        start = -30.0 + index
        xs = [start + 0.1 * step for step in range(16)]  # 1.5 s at 1 m/s: the history
        for step in range(1, 31):
            xs.append(xs[-1] + (0.1 + 0.02 * step if light == SignalState.GO else max(0.0, 0.1 - 0.01 * step)) * 1.0)
        boxes = [Boxes3D(np.array([[x, 0.0, 0.8]]), np.array([[4.5, 1.9, 1.6]]), np.zeros(1), np.array([CATEGORY_ID["REGULAR_VEHICLE"]]),
                         track_id=np.array(["car"]), frame="city") for x in xs]  # fmt: skip
        tracks = Tracks(f"log{index}", np.arange(len(xs), dtype=np.int64) * STEP_NS, tuple(boxes))
        lights = signal_states([(light, light)] * len(xs))
        scenarios.append(scenarios_from_tracks(tracks, graph, cfg.features, 1, lights)[0])
    errors = {}
    for name, run in (("blind", cfg), ("signals", with_signals(cfg))):
        torch.manual_seed(0)
        samples = build_samples(scenarios, run.features)
        forecaster = Forecaster.from_checkpoint(fit(run, samples, tmp_path / name, progress=False))
        with torch.no_grad():
            prediction, _ = forecaster.network(samples.to_torch())
        errors[name] = float(torch.linalg.vector_norm(prediction.trajectories_m[:, 0, -1] - samples.to_torch()["future_m"][:, -1], dim=-1).mean())
    # The futures end 12 m apart (green: 12.3 m ahead, red: 0.45 m); the blind model can only split the difference.
    assert errors["blind"] > 4.0
    assert errors["signals"] < 0.25 * errors["blind"]
