"""nuScenes prediction challenge evaluation with the devkit's `compute_metrics`.

Submissions are written by `scenes.submissions.nuscenes_prediction`. Evaluation runs the official `compute_metrics`
(MinADEK, MinFDEK, MissRateTopK_2 with k in {1, 5, 10}). The official `OffRoadRate` needs the four map-expansion files
under `<dataroot>/maps/expansion/`: it is used when they are all there; otherwise, when the caller passes drivable
areas (e.g. the synthetic city's lane graph), our own off-road rate (`forecasting.metrics.off_road_rate`: fraction of
modes with a point off the drivable area) is reported under the same name, and without either no off-road rate is
reported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from forecasting.metrics import DrivableArea, off_road_rate

__all__ = ["MAP_EXPANSION_LOCATIONS", "prediction_config", "evaluate_predictions"]

MAP_EXPANSION_LOCATIONS: Final = ("singapore-onenorth", "singapore-hollandvillage", "singapore-queenstown", "boston-seaport")
_K_TO_REPORT: Final = [1, 5, 10]


def _has_map_expansion(dataroot: Path) -> bool:
    return all((dataroot / "maps" / "expansion" / f"{location}.json").is_file() for location in MAP_EXPANSION_LOCATIONS)


def prediction_config(helper: Any, dataroot: Path, seconds: int = 6) -> tuple[Any, bool]:
    """The challenge config (with the official OffRoadRate when the map expansion exists) and whether it has it."""
    from nuscenes.eval.prediction.config import PredictionConfig, load_prediction_config
    from nuscenes.eval.prediction.metrics import MinADEK, MinFDEK, MissRateTopK, RowMean

    if _has_map_expansion(dataroot) and seconds == 6:
        return load_prediction_config(helper, "predict_2020_icra.json"), True
    metrics = [
        MinFDEK(_K_TO_REPORT, [RowMean()]),
        MinADEK(_K_TO_REPORT, [RowMean()]),
        MissRateTopK(_K_TO_REPORT, [RowMean()], tolerance=2),
    ]
    return PredictionConfig(metrics, seconds=seconds, frequency=2), False


def evaluate_predictions(
    predictions: Sequence[Mapping[str, Any]],
    dataroot: str | os.PathLike[str],
    version: str,
    *,
    drivable_areas: Mapping[str, DrivableArea] | None = None,
    seconds: int = 6,
) -> dict[str, dict[str, list[float]]]:
    """Official `compute_metrics` on `predictions`; `drivable_areas` maps a log location to a `DrivableArea`.

    Every predicted agent needs `2 * seconds` future annotations in the DB (the devkit fails otherwise).
    """
    from nuscenes import NuScenes
    from nuscenes.eval.prediction.compute_metrics import compute_metrics
    from nuscenes.prediction import PredictHelper

    root = Path(dataroot)
    nusc = NuScenes(version=version, dataroot=str(root), verbose=False)
    helper = PredictHelper(nusc)
    for index, record in enumerate(predictions):
        future = helper.get_future_for_agent(record["instance"], record["sample"], seconds, in_agent_frame=False)
        if len(future) < 2 * seconds:
            raise ValueError(
                f"{root}/{version}: prediction {index} (instance {record['instance']}, sample {record['sample']}) has "
                f"{len(future)} future annotations, the evaluation needs {2 * seconds}"
            )
    config, official_off_road = prediction_config(helper, root, seconds)
    results = {name: dict(aggregations) for name, aggregations in compute_metrics(list(predictions), helper, config).items()}
    if not official_off_road and drivable_areas is not None and predictions:
        rates = []
        for record in predictions:
            location = helper.get_map_name_from_sample_token(record["sample"])
            if location not in drivable_areas:
                raise ValueError(f"evaluate_predictions: no drivable area given for location {location!r}")
            modes = np.asarray(record["prediction"], dtype=np.float64)[None]
            rates.append(off_road_rate(modes, drivable_areas[location]))
        results["OffRoadRate"] = {"RowMean": [float(np.mean(rates))]}
    return results
