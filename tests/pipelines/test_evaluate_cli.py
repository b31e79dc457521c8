"""`drivestack evaluate detection | forecasting | e2e-forecasting` on tiny synthetic datasets and hand-made files.

Each command scores a predictions file, or runs the model and scores it; the JSON of `--json` holds the printed
figures; a file that breaks its format is refused with one `error: <file>: ...` line and exit status 2.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from av2.datasets.motion_forecasting.data_schema import TrackCategory
from av2.datasets.motion_forecasting.eval.submission import ChallengeSubmission
from av2.datasets.motion_forecasting.scenario_serialization import load_argoverse_scenario_parquet
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from forecasting.forecaster import SHIPPED_CHECKPOINT as SHIPPED_FORECASTER
from pipelines.cli import app
from pipelines.evaluate_job import SynthDetectionLogs, run_evaluate_detection
from scenes.adapters.registry import open_dataset
from scenes.submissions.av2_detection import detections_table, read_detections, write_table
from scenes.submissions.av2_e2e_forecasting import read_submission as read_submission_pickle
from scenes.submissions.av2_motion_forecasting import MotionForecastingFormatError, read_submission
from scenes.submissions.nuscenes_detection import NuScenesFormatError, detection_submission, write_submission
from scenes.submissions.nuscenes_detection import read_submission as read_nuscenes_detections
from scenes.submissions.nuscenes_prediction import PredictionFormatError, prediction_records, read_predictions, write_predictions
from scenes.synth.writers.export import write_synthetic_dataset
from tests.conftest import with_points
from tests.forecasting.test_nuscenes_prediction import _forecasts, _write_db

runner = CliRunner()
E2E_CONFIG = "detector: oracle\ntracker: oracle\nforecaster: constant_velocity\nsynth:\n  logs: 1\n  seconds: 3.0\n  seed: 7\n  lidar_beams: null\n"


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})


def one_error_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# --- e2e-forecasting ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def e2e_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """`e2e-forecast --evaluate` on a 3 s synthetic log with oracle boxes and identities: (config, submission, scores)."""
    root = tmp_path_factory.mktemp("e2e")
    config = root / "e2e.yaml"
    config.write_text(E2E_CONFIG)
    result = invoke("e2e-forecast", "--out", str(root / "sub.pkl"), "--evaluate", "--config", str(config))
    assert result.exit_code == 0, result.output
    return config, root / "sub.pkl", root / "sub_scores.json"


def test_e2e_forecasting_gives_the_figures_of_e2e_forecast_evaluate(e2e_run: tuple[Path, Path, Path], tmp_path: Path) -> None:
    config, submission, scores = e2e_run
    expected = json.loads(scores.read_text())
    result = invoke("evaluate", "e2e-forecasting", "--predictions", str(submission), "--config", str(config), "--json", str(tmp_path / "a.json"))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "a.json").read_text()) == expected  # every (profile, category) mAP_F, ADE, FDE
    assert expected["settings"] == {"top_k": 5, "max_range_m": 50, "roi_filtered": True} and expected["mean_mAP_F"] > 0.5
    assert f"{expected['mean_mAP_F']:.3f}" in result.stderr and f"{expected['mean_ADE']:.3f}" in result.stderr
    # Without --predictions the same stack runs again (oracle stages, constant velocity: deterministic).
    rerun = invoke("evaluate", "e2e-forecasting", "--config", str(config), "--json", str(tmp_path / "b.json"))
    assert rerun.exit_code == 0, rerun.output
    assert json.loads((tmp_path / "b.json").read_text()) == expected


def test_e2e_forecasting_refuses_a_wrong_key_and_a_pickle_that_runs_code(e2e_run: tuple[Path, Path, Path], tmp_path: Path, shell_payload: Any) -> None:
    config, submission, _ = e2e_run
    payload = read_submission_pickle(submission)
    log_id = next(iter(payload))
    timestamp_ns, agents = next((ts, agents) for ts, agents in payload[log_id].items() if agents)
    agents[0]["predictions_m"] = agents[0].pop("prediction_m")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps(payload))
    line = one_error_line(invoke("evaluate", "e2e-forecasting", "--predictions", str(bad), "--config", str(config)))
    assert line == f"error: {bad}[{log_id!r}][{timestamp_ns!r}][0].prediction_m: expected a finite ndarray (5, 6, 2), got NoneType"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({log_id: {timestamp_ns: [shell_payload]}}))
    line = one_error_line(invoke("evaluate", "e2e-forecasting", "--predictions", str(evil), "--config", str(config)))
    assert line.startswith(f"error: {evil}: refused global ") and "system" in line
    assert not shell_payload.marker.exists()


# --- detection ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def av2_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One held-out synthetic log of 1 s (10 annotated LiDAR sweeps) in the AV2 sensor format."""
    root = tmp_path_factory.mktemp("av2")
    write_synthetic_dataset("av2", root, logs=1, seconds=1.0, seed=1000, split="val")
    return root


def test_detection_of_the_ground_truth_itself_has_ap_1(av2_log: Path, tmp_path: Path) -> None:
    dataset = open_dataset(f"av2:{av2_log}")
    annotations = [(f.log_id, f.timestamp_ns, f.annotations) for log_id in dataset.logs() for f in dataset.frames(log_id) if f.annotations is not None]
    detections = [(log_id, timestamp_ns, replace(boxes, track_id=None, num_interior_pts=None)) for log_id, timestamp_ns, boxes in annotations]
    path = write_table(tmp_path / "perfect.feather", detections_table(detections))
    result = invoke("evaluate", "detection", "--data", f"av2:{av2_log}", "--predictions", str(path), "--json", str(tmp_path / "d.json"))
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "d.json").read_text())
    # The categories scored are those with at least one box that has LiDAR points.
    present = {str(name) for _, _, boxes in annotations for name in boxes.category_names[np.asarray(boxes.num_interior_pts) > 0]}
    assert set(scores["categories"]) == present and "REGULAR_VEHICLE" in present
    assert scores["frames"] == 10 and scores["mAP"] == 1.0
    for name in present:
        assert scores["per_category"][name] == {"AP": 1.0, "ATE": 0.0, "ASE": 0.0, "AOE": 0.0, "CDS": 1.0}


def test_detection_feather_missing_a_column_is_one_line(av2_log: Path, tmp_path: Path) -> None:
    table = detections_table([]).drop(columns=["score"])
    path = tmp_path / "noscore.feather"
    feather.write_feather(pa.Table.from_pandas(table, preserve_index=False), path)
    assert one_error_line(invoke("evaluate", "detection", "--data", f"av2:{av2_log}", "--predictions", str(path))) == (
        f"error: {path}: missing column(s) ['score']"
    )


def test_detection_runs_the_shipped_detector_and_its_file_scores_the_same(av2_log: Path, tmp_path: Path) -> None:
    out = tmp_path / "detections.feather"
    result = invoke("evaluate", "detection", "--data", f"av2:{av2_log}", "--out", str(out), "--json", str(tmp_path / "model.json"))
    assert result.exit_code == 0, result.output
    model = json.loads((tmp_path / "model.json").read_text())
    assert model["frames"] == 10 and model["per_category"]["REGULAR_VEHICLE"]["AP"] > 0.2
    assert f"{model['mAP']:.3f}" in result.stderr
    detections = read_detections(out)
    assert set(detections["timestamp_ns"].unique()) <= {int(p.stem) for p in av2_log.glob("val/*/sensors/lidar/*.feather")}
    rescored = invoke("evaluate", "detection", "--data", f"av2:{av2_log}", "--predictions", str(out), "--json", str(tmp_path / "file.json"))
    assert rescored.exit_code == 0, rescored.output
    from_file = json.loads((tmp_path / "file.json").read_text())
    assert {k: v for k, v in from_file.items() if k != "source"} == {k: v for k, v in model.items() if k != "source"}


def test_detection_on_held_out_synthetic_logs(tmp_path: Path) -> None:
    from rich.console import Console

    result = run_evaluate_detection(
        "synth", {"skip_bad": False}, predictions=None, checkpoint=None, eval_set=None, out=None, json_path=tmp_path / "s.json",
        console=Console(file=io.StringIO()), synth=SynthDetectionLogs(logs=1, seconds=0.3),
    )  # fmt: skip
    assert result["frames"] == 3 and result["data"] == "synth"
    assert json.loads((tmp_path / "s.json").read_text())["per_category"] == result["per_category"]


@pytest.mark.real
def test_detection_on_the_real_av2_log_scores_its_one_sweep(shared_data: Path, tmp_path: Path) -> None:
    """The real log's annotations cover ~150 timestamps but only one sweep is on disk: only that frame is scored."""
    root = shared_data / "av2" / "sensor" / "val"
    dataset: Any = open_dataset(f"av2:{root}")
    (log_id,) = dataset.logs()
    (timestamp_ns,) = dataset.lidar_paths(log_id)
    boxes = dataset.frame(log_id, timestamp_ns).annotations
    path = write_table(tmp_path / "one.feather", detections_table([(log_id, timestamp_ns, replace(boxes, track_id=None, num_interior_pts=None))]))
    result = invoke("evaluate", "detection", "--data", f"av2:{root}", "--predictions", str(path), "--json", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "r.json").read_text())
    assert scores["frames"] == 1 and scores["mAP"] == 1.0
    assert set(scores["categories"]) == {str(name) for name in boxes.category_names[boxes.num_interior_pts > 0]}
    elsewhere = next(ts for ts in dataset.annotations(log_id).unique_timestamps_ns() if ts != timestamp_ns)  # annotated, no sweep on disk
    stray = write_table(tmp_path / "stray.feather", detections_table([(log_id, elsewhere, replace(boxes, track_id=None, num_interior_pts=None))]))
    assert one_error_line(invoke("evaluate", "detection", "--data", f"av2:{root}", "--predictions", str(stray))) == (
        f"error: {stray}: columns 'log_id', 'timestamp_ns': 1 (log, timestamp) pair(s) are not annotated LiDAR sweeps of av2:{root}, "
        f"e.g. {[(log_id, elsewhere)]}"
    )


def _nuscenes_box(token: str) -> dict[str, Any]:
    return {
        "sample_token": token, "translation": [1.0, 2.0, 0.5], "size": [1.9, 4.5, 1.6], "rotation": [1.0, 0.0, 0.0, 0.0],
        "velocity": [0.0, 0.0], "detection_name": "car", "detection_score": 0.9, "attribute_name": "vehicle.parked",
    }  # fmt: skip


NUMERIC_FIELDS = {"translation": 3, "size": 3, "rotation": 4, "velocity": 2}
NOT_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


def _with_one(values: list[float], bad: float, index: int) -> list[float]:
    return [*values[:index], bad, *values[index:]]


@st.composite
def bad_box_field(draw: st.DrawFn) -> tuple[str, Any]:
    """A field of a nuScenes detection box and a value the format does not allow there."""
    from nuscenes.eval.detection.constants import ATTRIBUTE_NAMES, DETECTION_NAMES

    key = draw(st.sampled_from([*NUMERIC_FIELDS, "detection_name", "detection_score", "attribute_name", "sample_token"]))
    not_a_list = st.one_of(st.none(), st.text(max_size=3), st.booleans(), st.floats(-10, 10))
    if key in NUMERIC_FIELDS:
        count = NUMERIC_FIELDS[key]
        finite = st.floats(-1e3, 1e3)
        wrong_count = st.lists(finite, max_size=6).filter(lambda v: len(v) != count)
        one_not_finite = st.builds(_with_one, st.lists(finite, min_size=count - 1, max_size=count - 1), NOT_FINITE, st.integers(0, count - 1))
        special = {"size": st.builds(_with_one, st.lists(st.floats(0.1, 10), min_size=2, max_size=2), st.floats(-10, 0), st.integers(0, 2)),
                   "rotation": st.just([0.0, 0.0, 0.0, 0.0])}.get(key, st.nothing())  # fmt: skip
        return key, draw(st.one_of(not_a_list, wrong_count, one_not_finite, special))
    if key == "detection_name":
        return key, draw(st.one_of(st.none(), st.text(max_size=8).filter(lambda name: name not in DETECTION_NAMES)))
    if key == "detection_score":
        return key, draw(st.one_of(NOT_FINITE, st.none(), st.booleans(), st.text(max_size=3)))
    if key == "attribute_name":
        return key, draw(st.one_of(st.none(), st.text(max_size=8).filter(lambda name: name not in ("", *ATTRIBUTE_NAMES))))
    return key, draw(st.one_of(st.none(), st.text(max_size=4).filter(lambda token: token != "s0")))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=bad_box_field())
def test_nuscenes_detection_reader_names_the_bad_field(tmp_path: Path, field: tuple[str, Any]) -> None:
    key, value = field
    box = {
        "sample_token": "s0", "translation": [1.0, 2.0, 0.5], "size": [1.9, 4.5, 1.6], "rotation": [1.0, 0.0, 0.0, 0.0],
        "velocity": [0.0, 0.0], "detection_name": "car", "detection_score": 0.9, "attribute_name": "vehicle.parked", key: value,
    }  # fmt: skip
    meta = {"use_camera": False, "use_lidar": True, "use_radar": False, "use_map": False, "use_external": False}
    path = tmp_path / "det.json"
    path.write_text(json.dumps({"meta": meta, "results": {"s0": [box]}}))
    with pytest.raises(NuScenesFormatError, match=rf"^{re.escape(str(path))}: results\['s0'\]\[0\]\.{key}: "):
        read_nuscenes_detections(path)


def test_nuscenes_detection_default_eval_set_and_perfect_boxes(tmp_path: Path) -> None:
    root = tmp_path / "nuscenes"
    write_synthetic_dataset("nuscenes", root, logs=1, seconds=1.0, seed=1000, split="val")
    dataset: Any = open_dataset(f"nuscenes:{root}", version="v1.0-synth")
    results = {}
    for scene in dataset.logs():
        for sample, frame in zip(dataset.samples(scene), dataset.frames(scene), strict=True):
            boxes = with_points(frame.annotations).transformed(frame.city_SE3_ego, "city")
            results[sample["token"]] = replace(boxes, track_id=None)
    path = write_submission(tmp_path / "det.json", detection_submission(results))
    result = invoke("evaluate", "detection", "--data", f"nuscenes:{root}", "--predictions", str(path), "--json", str(tmp_path / "n.json"))
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "n.json").read_text())
    assert scores["eval_set"] == "synth_val" and scores["samples"] == len(results) == 2  # the writer lists its scene under synth_val
    assert scores["label_aps"]["car"] == pytest.approx(1.0)
    perfect = [name for name, ap in scores["label_aps"].items() if ap == pytest.approx(1.0)]
    assert scores["mAP"] == pytest.approx(len(perfect) / 10)  # classes without ground truth score 0 and count
    line = one_error_line(invoke("evaluate", "detection", "--data", f"nuscenes:{root}", "--predictions", str(path), "--eval-set", "mini_val"))
    assert line.startswith("error: --eval-set mini_val: not a split of nuScenes v1.0-synth (splits: ")


# --- forecasting ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def av2_mf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One 11 s synthetic AV2 motion-forecasting scenario, and the scenario as av2 reads it."""
    root = tmp_path_factory.mktemp("av2_mf")
    (scenario_dir,) = write_synthetic_dataset("av2-mf", root, logs=1, seconds=11.0, split="val")
    return root, load_argoverse_scenario_parquet(scenario_dir / f"scenario_{scenario_dir.name}.parquet")


def _futures(scenario: Any) -> dict[str, np.ndarray]:
    """Future positions (timesteps 50..109) of the focal and scored tracks, read from the scenario."""
    scored = (TrackCategory.FOCAL_TRACK, TrackCategory.SCORED_TRACK)
    return {
        track.track_id: np.array([state.position for state in sorted(track.object_states, key=lambda s: s.timestep) if state.timestep >= 50])
        for track in scenario.tracks
        if track.category in scored
    }


def test_forecasting_of_the_true_futures_scores_zero_and_worlds_are_ranked(av2_mf: tuple[Path, Any], tmp_path: Path) -> None:
    root, scenario = av2_mf
    futures = _futures(scenario)
    assert all(future.shape == (60, 2) for future in futures.values()) and scenario.focal_track_id in futures
    # World 0 (p = 0.6) is every track shifted 3 m along x, world 1 (p = 0.4) the truth.
    tracks = {track_id: np.stack([future + [3.0, 0.0], future]) for track_id, future in futures.items()}
    path = tmp_path / "submission.parquet"
    ChallengeSubmission({scenario.scenario_id: (np.array([0.6, 0.4]), tracks)}).to_parquet(path)
    result = invoke("evaluate", "forecasting", "--data", f"av2-mf:{root}", "--predictions", str(path), "--json", str(tmp_path / "f.json"))
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "f.json").read_text())
    assert scores["scenarios"] == 1 and scores["actors"] == len(futures)
    for group in ("focal", "scored"):
        # K = 6: the true world, whose brier term is (1 - 0.4)^2; K = 1: the shifted world, 3 m off (a miss), (1 - 0.6)^2.
        assert scores[group]["K=6"] == pytest.approx({"minADE": 0.0, "minFDE": 0.0, "MR": 0.0, "brier-minFDE": 0.36})
        assert scores[group]["K=1"] == pytest.approx({"minADE": 3.0, "minFDE": 3.0, "MR": 1.0, "brier-minFDE": 3.16})
    assert "3.160" in result.stderr and "0.360" in result.stderr


def test_forecasting_constant_velocity_is_scored(av2_mf: tuple[Path, Any], tmp_path: Path) -> None:
    root, scenario = av2_mf
    result = invoke("evaluate", "forecasting", "--data", f"av2-mf:{root}", "--forecaster", "constant-velocity", "--json", str(tmp_path / "cv.json"))
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "cv.json").read_text())
    # The most probable world keeps every track's velocity at the last observed step (timestep 49) for 6 s.
    (focal,) = [track for track in scenario.tracks if track.track_id == scenario.focal_track_id]
    states = {state.timestep: state for state in focal.object_states}
    times = 0.1 * np.arange(1, 61)[:, None]
    forecast = np.array(states[49].position) + times * np.array(states[49].velocity)
    truth = _futures(scenario)[focal.track_id]
    errors = np.linalg.norm(forecast - truth, axis=1)
    assert scores["focal"]["K=1"]["minADE"] == pytest.approx(errors.mean(), rel=1e-4)
    assert scores["focal"]["K=1"]["minFDE"] == pytest.approx(errors[-1], rel=1e-4)
    assert scores["focal"]["K=1"]["MR"] == float(errors[-1] > 2.0)
    assert scores["focal"]["K=6"]["minFDE"] <= scores["focal"]["K=1"]["minFDE"]


def test_forecasting_a_3_s_forecaster_cannot_give_6_s_at_10_hz(av2_mf: tuple[Path, Any]) -> None:
    root, _ = av2_mf
    assert one_error_line(invoke("evaluate", "forecasting", "--data", f"av2-mf:{root}", "--checkpoint", str(SHIPPED_FORECASTER))) == (
        f"error: {SHIPPED_FORECASTER}: the forecaster predicts 6 steps of 0.5 s (3 s ahead); AV2 motion forecasting scores 60 steps of 0.1 s (6 s ahead)"
    )


def test_forecasting_the_shipped_motion_forecaster_is_scored_at_k_6(av2_mf: tuple[Path, Any], tmp_path: Path) -> None:
    root, _ = av2_mf
    result = invoke("evaluate", "forecasting", "--data", f"av2-mf:{root}", "--json", str(tmp_path / "shipped.json"))
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "shipped.json").read_text())
    assert figures["source"].endswith("lane_goals_av2_mf.pt")
    assert figures["focal"]["K=6"]["minFDE"] <= figures["focal"]["K=1"]["minFDE"]  # six modes can only help


def _submission_table(scenario: Any) -> pd.DataFrame:
    futures = _futures(scenario)
    rows = [(scenario.scenario_id, track_id, 1.0, future[:, 0], future[:, 1]) for track_id, future in futures.items()]
    return pd.DataFrame(rows, columns=["scenario_id", "track_id", "probability", "predicted_trajectory_x", "predicted_trajectory_y"])


def test_forecasting_parquet_with_a_wrong_column_is_one_line(av2_mf: tuple[Path, Any], tmp_path: Path) -> None:
    root, scenario = av2_mf
    path = tmp_path / "renamed.parquet"
    _submission_table(scenario).rename(columns={"probability": "prob"}).to_parquet(path)
    assert one_error_line(invoke("evaluate", "forecasting", "--data", f"av2-mf:{root}", "--predictions", str(path))) == (
        f"error: {path}: missing column(s) ['probability']; a submission has the columns "
        "['scenario_id', 'track_id', 'probability', 'predicted_trajectory_x', 'predicted_trajectory_y']"
    )


@st.composite
def bad_cell(draw: st.DrawFn) -> tuple[str, Any]:
    """A column of the challenge parquet and a value the format does not allow in it."""
    column = draw(st.sampled_from(["track_id", "probability", "predicted_trajectory_x", "predicted_trajectory_y"]))
    if column == "track_id":
        return column, draw(st.sampled_from(["", None]))
    if column == "probability":  # outside [0, 1], or a world probability that no longer matches the other tracks' / sums to 1
        return column, draw(st.one_of(st.floats(allow_nan=True, allow_infinity=True).filter(lambda p: not 0.0 <= p <= 1.0), st.floats(0.0, 0.99)))
    wrong_length = st.integers(0, 70).filter(lambda n: n != 60).map(lambda n: np.zeros(n))
    one_not_finite = st.builds(lambda bad, index: np.insert(np.zeros(59), index, bad), NOT_FINITE, st.integers(0, 59))
    return column, draw(st.one_of(wrong_length, one_not_finite))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cell=bad_cell(), row=st.integers(0, 1000))
@example(cell=("predicted_trajectory_x", np.zeros(1)), row=0)
def test_forecasting_parquet_reader_names_the_bad_column(av2_mf: tuple[Path, Any], tmp_path: Path, cell: tuple[str, Any], row: int) -> None:
    column, value = cell
    table = pa.Table.from_pandas(_submission_table(av2_mf[1]), preserve_index=False)
    cells = table.column(column).to_pylist()
    cells[row % len(cells)] = value.tolist() if isinstance(value, np.ndarray) else value
    # built by pyarrow from Python lists: pandas cannot hold a 1-element array as one cell of an object column
    table = table.set_column(table.schema.get_field_index(column), column, pa.array(cells, type=table.schema.field(column).type))
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    with pytest.raises(MotionForecastingFormatError, match=rf"^{re.escape(str(path))}: column '{column}'"):
        read_submission(path)


GOOD_RECORD: dict[str, Any] = {"instance": "car_a", "sample": "s1", "prediction": [[[0.0, 0.0]] * 12], "probabilities": [1.0]}


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ({"prediction": [[[0.0, 0.0]] * 6]}, ".prediction: expected [K][12][2]"),
        ({"prediction": [[["0", "0"]] * 12]}, ".prediction: expected (nested lists of) numbers"),
        ({"prediction": [[[0.0, 0.0]] * 12, [[0.0, 0.0]] * 11]}, ".prediction: expected (nested lists of) numbers"),
        ({"prediction": [[[math.nan, 0.0]] * 12]}, ".prediction: NaN or inf"),
        ({"probabilities": [0.5, 0.5]}, ".probabilities: expected 1 finite non-negative numbers"),
        ({"probabilities": [-1.0]}, ".probabilities: expected 1 finite non-negative numbers"),
        ({"instance": ""}, ".instance: expected a token string"),
        ({"sample": None}, ".sample: expected a token string"),
    ],
)
def test_nuscenes_prediction_reader_names_the_bad_field(tmp_path: Path, change: dict[str, Any], what: str) -> None:
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps([GOOD_RECORD, {**GOOD_RECORD, **change}]))
    with pytest.raises(PredictionFormatError, match=rf"^{re.escape(f'{path}: prediction 1{what}')}"):
        read_predictions(path)
    path.write_text(json.dumps([GOOD_RECORD]))
    assert read_predictions(path) == [GOOD_RECORD]


def test_nuscenes_prediction_file_and_constant_velocity(tmp_path: Path) -> None:
    root = tmp_path / "nuscenes"
    truth = _write_db(root)
    data = ["--data", f"nuscenes:{root}", "--nuscenes-version", "v1.0-mini"]
    path = write_predictions(prediction_records(_forecasts(truth, offset_m=3.0), "s1"), tmp_path / "predictions.json")
    result = invoke("evaluate", "forecasting", *data, "--predictions", str(path), "--json", str(tmp_path / "p.json"))
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "p.json").read_text())["metrics"]
    # Top-1 mode is 3 m off everywhere, the second is exact.
    assert metrics["MinADEK"]["RowMean"] == pytest.approx([3.0, 0.0, 0.0]) and metrics["MissRateTopK_2"]["RowMean"] == pytest.approx([1.0, 0.0, 0.0])
    # Constant velocity at the key frames with a full 6 s future (s0..s3, two cars at 4 m/s): at s0 nothing is observed
    # before, so the cars stand still (errors 2, 4, ..., 24 m: ADE 13, FDE 24, a miss); from s1 on they are exact.
    result = invoke("evaluate", "forecasting", *data, "--forecaster", "constant-velocity", "--json", str(tmp_path / "cv.json"))
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "cv.json").read_text())
    assert scores["predictions"] == 8
    assert scores["metrics"]["MinADEK"]["RowMean"] == pytest.approx([13 * 2 / 8] * 3)
    assert scores["metrics"]["MinFDEK"]["RowMean"] == pytest.approx([24 * 2 / 8] * 3)
    assert scores["metrics"]["MissRateTopK_2"]["RowMean"] == pytest.approx([2 / 8] * 3)
    late = write_predictions(prediction_records(_forecasts(truth, offset_m=0.0), "s10"), tmp_path / "late.json")
    assert one_error_line(invoke("evaluate", "forecasting", *data, "--predictions", str(late))) == (
        f"error: {late}: prediction 0 (instance car_a, sample s10): 5 future annotations in {root / 'v1.0-mini'}, the evaluation needs 12"
    )
