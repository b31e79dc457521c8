"""Submission pickles are read with a restricted unpickler: only builtin containers/scalars and numpy arrays."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scenes.submissions.av2_e2e_forecasting import NUM_MODES, NUM_STEPS, SubmissionError, read_submission, write_submission
from scenes.submissions.av2_tracking import Sequences, TrackingFormatError, read_sequences, write_sequences
from scenes.submissions.safe_pickle import UnsafePickleError, load_pickle, loads_pickle


def _malicious_file(tmp_path: Path, protocol: int, shell_payload: Any) -> tuple[Path, Path]:
    path = tmp_path / f"evil-{protocol}.pkl"
    path.write_bytes(pickle.dumps({"log": {1: [shell_payload]}}, protocol=protocol))
    return path, shell_payload.marker


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_os_system_pickle_is_refused_by_both_readers(tmp_path: Path, protocol: int, shell_payload: Any) -> None:
    path, marker = _malicious_file(tmp_path, protocol, shell_payload)
    with pytest.raises(SubmissionError, match=rf"{path.name}.*refused global (posix|os|nt)\.system") as e2e:
        read_submission(path)
    assert isinstance(e2e.value.__cause__, UnsafePickleError)
    with pytest.raises(TrackingFormatError, match=rf"{path.name}.*refused global (posix|os|nt)\.system"):
        read_sequences(path)
    with pytest.raises(UnsafePickleError, match=str(path)):
        load_pickle(path)
    assert not marker.exists()


def test_crafted_pickle_would_run_under_plain_pickle(tmp_path: Path, shell_payload: Any) -> None:
    """Guards the test above: the payload is live, so its refusal is what keeps the marker absent."""
    path, marker = _malicious_file(tmp_path, pickle.HIGHEST_PROTOCOL, shell_payload)
    pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        b"cbuiltins\neval\n(S'1+1'\ntR.",
        b"csubprocess\ncheck_output\n(S'true'\ntR.",
        b"cnumpy\nload\n(S'x.npy'\ntR.",  # numpy, but not a reconstruct function
        b"c_codecs\nencode\n(S'eJwDAAAAAAE='\nS'base64'\ntR.",  # codecs other than latin1/utf-8
    ],
)
def test_other_globals_are_refused(payload: bytes) -> None:
    with pytest.raises(UnsafePickleError, match="submission.pkl: refused"):
        loads_pickle(payload, "submission.pkl")


def _agent(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "current_translation_m": rng.normal(size=2),
        "detection_score": 0.75,
        "name": "REGULAR_VEHICLE",
        "prediction_m": rng.normal(size=(NUM_MODES, NUM_STEPS, 2)),
        "score": rng.random(NUM_MODES),
        "size": np.array([4.5, 1.9, 1.6]),
        "yaw": 0.25,
        "label": 0,
        "instance_id": "track-1",
    }


def test_real_submission_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    submission = {"log-a": {315_000_000_000: [_agent(rng), _agent(rng)], 315_500_000_000: []}, "log-b": {1: [_agent(rng)]}}
    path = write_submission(tmp_path / "submission.pkl", submission)
    loaded = read_submission(path)
    assert loaded.keys() == submission.keys()
    for log_id, log in submission.items():
        assert loaded[log_id].keys() == log.keys()
        for timestamp_ns, agents in log.items():
            for ours, theirs in zip(loaded[log_id][timestamp_ns], agents, strict=True):
                assert ours.keys() == theirs.keys()
                for key, value in theirs.items():
                    np.testing.assert_array_equal(ours[key], value)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_and_builtin_values_round_trip_at_every_protocol(protocol: int) -> None:
    value = {
        "f": np.arange(6, dtype=np.float32).reshape(2, 3),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "names": np.array(["REGULAR_VEHICLE", "PEDESTRIAN"]),
        "ids": np.array([1, 2], dtype=np.int64),
        "scalar": np.float64(1.5),
        "int_scalar": np.int64(7),
        "empty": np.zeros((0, 3)),
        "set": {1, 2},
        "frozen": frozenset({"a"}),
        "tuple": (1, 2.0, None, True, b"raw", bytearray(b"x"), 3j),
        "list": [[], {}],
    }
    loaded = loads_pickle(pickle.dumps(value, protocol=protocol))
    assert loaded.keys() == value.keys()
    for key, expected in value.items():
        if isinstance(expected, np.ndarray):
            assert loaded[key].dtype == expected.dtype
            np.testing.assert_array_equal(loaded[key], expected)
        else:
            assert loaded[key] == expected and type(loaded[key]) is type(expected)


def test_tracking_sequences_round_trip(tmp_path: Path) -> None:
    sequences: Sequences = {
        "log-a": [
            {
                "seq_id": "log-a",
                "timestamp_ns": 1,
                "translation_m": np.ones((2, 3)),
                "name": np.array(["REGULAR_VEHICLE", "PEDESTRIAN"]),
                "track_id": np.array([3, 4]),
                "ego_translation_m": [0.0, 1.0, 2.0],
            }
        ]
    }
    loaded = read_sequences(write_sequences(tmp_path / "tracks.pkl", sequences))
    frame = loaded["log-a"][0]
    np.testing.assert_array_equal(frame["name"], sequences["log-a"][0]["name"])
    assert frame["ego_translation_m"] == [0.0, 1.0, 2.0]


def test_corrupt_pickle_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.pkl"
    path.write_bytes(b"\x80\x05not a pickle")
    with pytest.raises(SubmissionError, match="broken.pkl"):
        read_submission(path)
