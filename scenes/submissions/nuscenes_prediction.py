"""nuScenes prediction challenge submissions: the `Prediction` JSON writer and reader.

A submission is a JSON list of `nuscenes.eval.prediction.data_classes.Prediction.serialize()` dicts:
`{"instance", "sample", "prediction": [K][12][2] (global frame, 6 s at 2 Hz), "probabilities": [K]}`, K <= 25.
Records are built through the devkit's `Prediction` class, so its validation applies. Scoring a submission is
`forecasting.evaluate.evaluate_predictions`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
from nuscenes.eval.prediction.data_classes import MAX_NUMBER_OF_MODES, Prediction

from scenes.errors import DrivestackError
from scenes.io import atomic_write_text
from scenes.records import Forecasts

__all__ = [
    "CHALLENGE_STEPS",
    "PredictionFormatError",
    "prediction_records",
    "write_predictions",
    "read_predictions",
]

CHALLENGE_STEPS: Final = 12  # 6 s at 2 Hz
RECORD_KEYS: Final = ("instance", "sample", "prediction", "probabilities")


class PredictionFormatError(DrivestackError, ValueError):
    """A prediction submission that the devkit's evaluation cannot read."""


def prediction_records(
    forecasts: Forecasts, sample_token: str, instance_tokens: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Serialized `Prediction`s of every agent of `forecasts` made at the nuScenes sample `sample_token`.

    Agent ids are nuScenes instance tokens unless `instance_tokens` maps them; modes are written in decreasing score.
    """
    if forecasts.trajectories_m.shape[1] > MAX_NUMBER_OF_MODES:
        raise ValueError(f"Forecasts.trajectories_m: {forecasts.trajectories_m.shape[1]} modes > {MAX_NUMBER_OF_MODES}")
    if forecasts.trajectories_m.shape[2] != CHALLENGE_STEPS:
        raise ValueError(
            f"Forecasts.trajectories_m: {forecasts.trajectories_m.shape[2]} steps, the challenge needs {CHALLENGE_STEPS} (6 s at 2 Hz)"
        )
    records = []
    for agent, trajectories, scores in zip(forecasts.agent_ids.tolist(), forecasts.trajectories_m, forecasts.mode_scores, strict=True):
        instance = instance_tokens[agent] if instance_tokens is not None else agent
        order = np.argsort(-scores, kind="stable")
        prediction = Prediction(instance, sample_token, trajectories[order].astype(np.float64), scores[order].astype(np.float64))
        records.append(prediction.serialize())
    return records


def write_predictions(records: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Writes the submission JSON list atomically; every record is validated by the devkit first."""
    for index, record in enumerate(records):
        try:
            Prediction.deserialize(dict(record))
        except (KeyError, ValueError) as error:
            raise ValueError(f"{path}: prediction {index} is invalid ({error})") from None
    atomic_write_text(path, json.dumps(list(records)))
    return Path(path)


def _check_record(where: str, record: Any) -> None:
    if not isinstance(record, dict):
        raise PredictionFormatError(f"{where}: expected an object, got {type(record).__name__}")
    missing = [key for key in RECORD_KEYS if key not in record]
    if missing:
        raise PredictionFormatError(f"{where}: missing key(s) {missing}")
    for key in ("instance", "sample"):
        if not isinstance(record[key], str) or not record[key]:
            raise PredictionFormatError(f"{where}.{key}: expected a token string, got {record[key]!r}")
    arrays: dict[str, np.ndarray] = {}
    for key in ("prediction", "probabilities"):
        try:
            array = np.asarray(record[key])
        except ValueError:  # ragged nesting
            array = None
        if array is None or array.dtype.kind not in "iuf":
            raise PredictionFormatError(f"{where}.{key}: expected (nested lists of) numbers")
        arrays[key] = array.astype(np.float64)
    prediction, probabilities = arrays["prediction"], arrays["probabilities"]
    if prediction.ndim != 3 or prediction.shape[1:] != (CHALLENGE_STEPS, 2) or not 1 <= len(prediction) <= MAX_NUMBER_OF_MODES:
        raise PredictionFormatError(
            f"{where}.prediction: expected [K][{CHALLENGE_STEPS}][2] with 1 <= K <= {MAX_NUMBER_OF_MODES} (6 s at 2 Hz), got shape {prediction.shape}"
        )
    if not np.all(np.isfinite(prediction)):
        raise PredictionFormatError(f"{where}.prediction: NaN or inf")
    if probabilities.shape != (len(prediction),) or not np.all(np.isfinite(probabilities)) or np.any(probabilities < 0):
        raise PredictionFormatError(
            f"{where}.probabilities: expected {len(prediction)} finite non-negative numbers (one per mode), got {record['probabilities']!r}"
        )


def read_predictions(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Reads a submission and checks every record (keys, token strings, `[K][12][2]` finite positions, K
    non-negative probabilities); errors name the file, the record index and the field."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PredictionFormatError(f"{path}: cannot read prediction submission ({error})") from None
    if not isinstance(payload, list):
        raise PredictionFormatError(f"{path}: a prediction submission is a JSON list, got {type(payload).__name__}")
    for index, record in enumerate(payload):
        _check_record(f"{path}: prediction {index}", record)
    return payload
