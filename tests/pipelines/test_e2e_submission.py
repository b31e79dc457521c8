"""AV2 E2E forecasting: GT builder, submission writer and the corrected official evaluation, on hand-made cases."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
from av2.evaluation.forecasting.constants import CATEGORY_TO_VELOCITY_M_PER_S
from av2.evaluation.forecasting.eval import evaluate as official_evaluate
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.evaluate_e2e import evaluate_submission, roi_keep_mask
from scenes.categories import CATEGORY_ID
from scenes.geometry import SE3, Sim2
from scenes.records import Boxes3D, Forecasts, Frame, LaneGraph, MapRaster
from scenes.regions import RasterRegionOfInterest
from scenes.submissions.av2_e2e_forecasting import (
    SubmissionError,
    build_submission,
    evaluation_timestamps,
    ground_truth_from_frames,
    read_submission,
    validate_submission,
    write_submission,
)
from scenes.submissions.safe_pickle import load_pickle

LOG = "log-a"
RV = CATEGORY_ID["REGULAR_VEHICLE"]
T0 = 1_000_000_000


def _frame(step: int, xs: list[float], ids: list[str], ego_x: float = 0.0, interior: list[int] | None = None) -> Frame:
    """A 10 Hz frame whose ego sits at (ego_x, 0) facing +x; agents (city x, y=3) become ego-frame boxes."""
    city_SE3_ego = SE3.from_yaw(0.0, [ego_x, 0.0, 0.0])
    n = len(xs)
    boxes_city = Boxes3D(
        np.stack([xs, np.full(n, 3.0), np.zeros(n)], axis=1).reshape(-1, 3),
        np.tile([4.0, 2.0, 1.5], (n, 1)),
        np.zeros(n),
        np.full(n, RV),
        track_id=np.array(ids, dtype=str),
        num_interior_pts=None if interior is None else np.array(interior),
        frame="city",
    )
    return Frame(LOG, T0 + step * 100_000_000, city_SE3_ego, annotations=boxes_city.transformed(city_SE3_ego.inverse(), "ego"))


def test_evaluation_timestamps_every_fifth_sweep() -> None:
    stamps = T0 + np.arange(23) * 100_000_000 + np.array([0, 3000] * 11 + [0])
    assert evaluation_timestamps(stamps).tolist() == stamps[::5].tolist()
    with pytest.raises(SubmissionError, match="strictly increasing"):
        evaluation_timestamps(stamps[::-1])


def test_ground_truth_builder_matches_hand_made_annotations() -> None:
    frames = [_frame(step, [10.0 + step, 20.0], ["a", "b"], ego_x=step * 0.5, interior=[5, 0 if step == 5 else 3]) for step in range(11)]
    sequences = ground_truth_from_frames(frames)
    gt = sequences[LOG]
    assert [f["timestamp_ns"] for f in gt] == [T0, T0 + 500_000_000, T0 + 1_000_000_000]
    second = gt[1]
    # Box "b" has no LiDAR point at step 5: dropped, like the organisers' `num_interior_pts > 0`.
    assert second["track_id"].tolist() == ["a"]
    np.testing.assert_allclose(second["translation_m"], [[15.0, 3.0, 0.0]], atol=1e-9)
    # AV2's ego origin (the rear axle) sits 0.33 m above the records' ego origin on the ground.
    assert second["ego_translation_m"] == pytest.approx([2.5, 0.0, 0.33]) and isinstance(second["ego_translation_m"], list)
    assert second["name"].tolist() == ["REGULAR_VEHICLE"] and second["seq_id"] == LOG
    assert second["velocity_m_per_s"].shape == (1, 3)


def _moving_vehicle_frames(speed_m_per_s: float, seconds_present: float) -> list[Frame]:
    steps = int(round(seconds_present * 10)) + 1
    return [_frame(step, [5.0 + speed_m_per_s * step * 0.1], ["car"]) for step in range(steps)] + [
        _frame(step, [], []) for step in range(steps, steps + 20)
    ]


def _perfect_submission(frames: list[Frame], speed_m_per_s: float, scores: dict[int, float], required: list[int]) -> dict:
    """Constant-velocity forecasts of the one car, which are exact (it moves at constant speed)."""
    entries = []
    for frame in frames:
        if frame.timestamp_ns not in scores:
            continue
        assert frame.annotations is not None
        boxes = frame.annotations.transformed(frame.city_SE3_ego, "city")
        if not len(boxes):
            continue
        assert boxes.track_id is not None
        current = boxes.center_m[:, :2]
        steps = np.arange(1, 7)[:, None] * 0.5 * np.array([speed_m_per_s, 0.0])
        trajectory = np.repeat((current[0] + steps)[None], 5, axis=0)
        forecasts = Forecasts(
            LOG, frame.timestamp_ns, boxes.track_id, current, trajectory[None], np.full((1, 5), 0.2),
            np.array([scores[frame.timestamp_ns]]), np.array([RV]),
        )
        entries.append((forecasts, boxes))
    return build_submission(entries, {LOG: required})


def test_perfect_forecasts_get_the_known_g5_scores() -> None:
    """A car at 1.5 m/s seen for 3 s: GT frames with a 1- or 2-step future are typed static, the rest linear.

    Predictions always span 6 steps, so all six are typed linear; the two at the static-GT frames are false positives
    in the linear profile. With the later frames ranked first, precision/recall per rank are (0,0,1/3,1/2,3/5,2/3) /
    (0,0,1/4,1/2,3/4,1) at every threshold; the static profile is perfect.
    """
    speed = 1.5
    assert CATEGORY_TO_VELOCITY_M_PER_S["REGULAR_VEHICLE"] == pytest.approx(2.36)
    frames = _moving_vehicle_frames(speed, seconds_present=3.0)
    gt = ground_truth_from_frames(frames)
    stamps = [f["timestamp_ns"] for f in gt[LOG]]
    scores = {ts: 0.1 + 0.1 * index for index, ts in enumerate(stamps[:6])}
    submission = _perfect_submission(frames, speed, scores, stamps)
    assert set(submission[LOG]) == set(stamps)  # a key for every GT frame, empty lists included (G2)

    expected_linear = np.mean(
        np.interp(np.linspace(0, 1, 101), [0, 0, 0.25, 0.5, 0.75, 1.0], [0, 0, 1 / 3, 1 / 2, 3 / 5, 2 / 3], right=0)
    )
    ours = evaluate_submission(submission, gt)
    official = official_evaluate(copy.deepcopy(submission), copy.deepcopy(gt), 5, 50, None)
    assert ours.per_profile["linear"]["REGULAR_VEHICLE"]["mAP_F"] == pytest.approx(round(expected_linear, 3))
    assert ours.per_profile["static"]["REGULAR_VEHICLE"] == {"mAP_F": 1.0, "ADE": 0.0, "FDE": 0.0}
    assert np.isnan(ours.per_profile["non-linear"]["REGULAR_VEHICLE"]["mAP_F"])
    for profile in ("static", "linear"):
        assert ours.per_profile[profile]["REGULAR_VEHICLE"] == official[profile]["REGULAR_VEHICLE"]


def test_written_pickle_is_accepted_by_the_official_evaluator(tmp_path) -> None:
    frames = _moving_vehicle_frames(6.0, seconds_present=4.0)
    gt = ground_truth_from_frames(frames)
    stamps = [f["timestamp_ns"] for f in gt[LOG]]
    submission = _perfect_submission(frames, 6.0, {ts: 1.0 for ts in stamps}, stamps)
    path = write_submission(tmp_path / "submission.pkl", submission)
    raw = load_pickle(path)
    agent = raw[LOG][stamps[0]][0]
    assert agent["prediction_m"].shape == (5, 6, 2) and agent["score"].shape == (5,) and agent["name"] == "REGULAR_VEHICLE"
    assert isinstance(agent["detection_score"], float) and agent["current_translation_m"].shape == (2,)
    results = official_evaluate(raw, copy.deepcopy(gt), 5, 50, None)
    assert results["linear"]["REGULAR_VEHICLE"]["mAP_F"] > 0.9
    assert read_submission(path).keys() == submission.keys()


def test_missing_keys_and_bad_fields_are_named() -> None:
    frames = _moving_vehicle_frames(6.0, seconds_present=2.0)
    gt = ground_truth_from_frames(frames)
    first = gt[LOG][0]["timestamp_ns"]
    submission = _perfect_submission(frames, 6.0, {first: 1.0}, [first])
    with pytest.raises(SubmissionError, match="lacks"):
        evaluate_submission(submission, gt)
    broken = copy.deepcopy(submission)
    broken[LOG][first][0]["prediction_m"] = np.zeros((3, 6, 2))
    with pytest.raises(SubmissionError, match=r"\[0\]\.prediction_m"):
        evaluate_submission(broken, {})
    with pytest.raises(ValueError, match="top_k"):
        evaluate_submission(submission, {}, top_k=3)


def test_frame_with_every_agent_out_of_range_does_not_crash() -> None:
    """G2: the official evaluator raises IndexError on a GT frame emptied by the range filter; ours drops it."""
    frames = [_frame(step, [5.0 + 0.6 * step], ["near"]) for step in range(10)]
    frames += [_frame(step, [80.0 + 0.6 * (step - 10)], ["far"]) for step in range(10, 30)]
    gt = ground_truth_from_frames(frames)
    stamps = [f["timestamp_ns"] for f in gt[LOG]]
    submission = build_submission([], {LOG: stamps})
    with pytest.raises(IndexError, match="list index out of range"):  # av2 0.3.6 reads frame[0] of the emptied frame
        official_evaluate(copy.deepcopy(submission), copy.deepcopy(gt), 5, 50, None)
    scores = evaluate_submission(submission, gt)
    assert scores.per_profile["linear"]["REGULAR_VEHICLE"]["mAP_F"] == 0.0


def test_roi_filter_keeps_boxes_touching_the_region() -> None:
    values = np.zeros((10, 10), dtype=bool)
    values[:, :5] = True  # city x in [0, 5) m at 1 m cells
    roi = RasterRegionOfInterest(MapRaster("roi", values, Sim2(np.eye(2), np.zeros(2), 1.0)))
    agents = [
        {"current_translation_m": np.array([2.0, 5.0]), "size": np.array([1.0, 1.0, 1.0]), "yaw": 0.0},
        {"current_translation_m": np.array([6.0, 5.0]), "size": np.array([4.0, 1.0, 1.0]), "yaw": 0.0},  # corner at 4
        {"current_translation_m": np.array([6.0, 5.0]), "size": np.array([4.0, 1.0, 1.0]), "yaw": np.pi / 2},
        {"current_translation_m": np.array([8.0, 5.0]), "size": np.array([1.0, 1.0, 1.0]), "yaw": 0.0},
    ]
    assert roi_keep_mask(agents, roi).tolist() == [True, True, False, False]


def test_roi_from_a_drivable_area_raster_is_dilated_by_five_metres() -> None:
    drivable = np.zeros((41, 61), dtype=np.uint8)
    drivable[20, 20:41] = 1  # a one-cell road along city y = 10 m, x in [10, 20] m (0.5 m cells)
    lane_graph = LaneGraph(
        "SYN", np.array([0]), np.zeros((1, 2, 3)), ((),), np.array([-1]), np.array([-1]), np.array([False]),
        rasters={"drivable_area": MapRaster("drivable_area", drivable, Sim2(np.eye(2), np.zeros(2), 2.0))},
    )  # fmt: skip
    roi = RasterRegionOfInterest.from_lane_graph(lane_graph)
    assert roi is not None
    queries = np.array([[15.0, 14.5], [15.0, 4.5], [23.0, 13.0], [24.0, 14.0]])  # 4.5, 5.5, 4.24, 5.66 m from the road
    assert roi.contains_xy(queries).tolist() == [True, False, True, False]
    assert RasterRegionOfInterest.from_lane_graph(replace(lane_graph, rasters={})) is None


_CORRUPTIONS: dict[str, list[object]] = {
    "current_translation_m": [np.zeros(3), np.array([np.nan, 0.0]), [1.0, 2.0], None],
    "prediction_m": [np.zeros((5, 6, 3)), np.zeros((4, 6, 2)), np.full((5, 6, 2), np.inf), "traj"],
    "score": [np.zeros(4), np.zeros((5, 1)), None],
    "size": [np.zeros(2), np.array([1.0, np.nan, 1.0])],
    "name": ["CAR", "", None, 3],
    "detection_score": [np.nan, "high", None, 1],
    "yaw": [np.inf, None, "0"],
}


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(sorted(_CORRUPTIONS)), choice=st.integers(0, 3), remove=st.booleans())
def test_any_corrupted_agent_field_is_named(field: str, choice: int, remove: bool) -> None:
    agent = {
        "current_translation_m": np.zeros(2), "detection_score": 0.5, "name": "BUS", "label": 12, "instance_id": "a",
        "prediction_m": np.zeros((5, 6, 2)), "score": np.full(5, 0.2), "size": np.ones(3), "yaw": 0.0,
    }  # fmt: skip
    validate_submission({LOG: {T0: [agent]}})
    if remove:
        del agent[field]
    else:
        options = _CORRUPTIONS[field]
        agent[field] = options[choice % len(options)]
    with pytest.raises(SubmissionError, match=rf"\[{T0}\]\[0\]\.{field}"):
        validate_submission({LOG: {T0: [agent]}})
