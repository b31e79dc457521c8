"""The shipped detector on the real sweeps in ../shared/data, in the canonical ego frame and in each dataset's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.quality_detection import real_sample_scores
from perception.detection.detector import Detector

pytestmark = pytest.mark.real

CHECKPOINT = Path(__file__).resolve().parents[2] / "perception" / "detection" / "checkpoints" / "centerpoint_synth.pt"


@pytest.fixture(scope="module")
def scores(shared_data: Path) -> dict[str, dict[str, dict[str, float]]]:
    detector = Detector.from_checkpoint(CHECKPOINT)
    return {frame: real_sample_scores(detector, shared_data, max_range_m=50.0, dataset_frame=frame == "dataset") for frame in ("canonical", "dataset")}


def test_canonical_ego_frame_is_what_a_synthetic_detector_needs(scores: dict[str, dict[str, dict[str, float]]]) -> None:
    canonical, dataset = scores["canonical"], scores["dataset"]
    assert set(canonical) == {"AV2 sweep", "KITTI frames"} and canonical["KITTI frames"]["frames"] == 3
    # With the road at z = 0, as in training, the detector finds more real vehicles than with AV2's road at -0.33 m
    # or KITTI's at -1.73 m (where it finds none).
    av2, av2_raw = canonical["AV2 sweep"], dataset["AV2 sweep"]
    assert av2["vehicle/truths"] == av2_raw["vehicle/truths"] == 16
    assert av2["vehicle/recall"] > av2_raw["vehicle/recall"] and av2["REGULAR_VEHICLE/AP"] > av2_raw["REGULAR_VEHICLE/AP"]
    kitti = canonical["KITTI frames"]
    assert kitti["vehicle/recall"] + kitti["pedestrian/recall"] > dataset["KITTI frames"]["vehicle/recall"] + dataset["KITTI frames"]["pedestrian/recall"] == 0
