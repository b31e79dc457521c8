"""nuScenes tracking submission JSON (FORMATS §4.5): detection fields with `tracking_id`, `tracking_name` (7 classes)
and `tracking_score` instead of the detection name, score and attribute."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from scenes.categories import TO_NUSCENES_DETECTION
from scenes.records import Boxes3D
from scenes.submissions.nuscenes_detection import LIDAR_META, NuScenesFormatError, box_entries

TRACKING_NAMES: Final = ("bicycle", "bus", "car", "motorcycle", "pedestrian", "trailer", "truck")
TO_NUSCENES_TRACKING: Final = {
    name: (target if target in TRACKING_NAMES else None) for name, target in TO_NUSCENES_DETECTION.items()
}


def tracking_submission(results: Mapping[str, Boxes3D], meta: Mapping[str, bool] = LIDAR_META) -> dict[str, Any]:
    """`{sample_token: city-frame boxes with track ids and scores}` -> the tracking submission dict."""
    payload: dict[str, list[dict[str, Any]]] = {}
    for sample_token, boxes in results.items():
        if boxes.track_id is None:
            raise NuScenesFormatError(f"sample {sample_token}: tracking boxes need track ids")
        entries = []
        for entry in box_entries(sample_token, boxes, TO_NUSCENES_TRACKING):
            name, score, index = entry.pop("name"), entry.pop("score"), entry.pop("index")
            entry.update(tracking_id=str(boxes.track_id[index]), tracking_name=name, tracking_score=score)
            entries.append(entry)
        payload[sample_token] = entries
    return {"meta": dict(meta), "results": payload}
