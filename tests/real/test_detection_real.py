"""The shipped detector on the real sweeps in ../shared/data: canonical ego frame against each dataset's own, heights
relative to the estimated ground against heights in the ego frame, and the real objects it finds."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.quality_detection import OVERHEAD_CUT_M, real_sample_scores
from perception.detection.detector import Detector

pytestmark = pytest.mark.real

CHECKPOINT = Path(__file__).resolve().parents[2] / "perception" / "detection" / "checkpoints" / "centerpoint_synth.pt"
Scores = dict[str, dict[str, float]]


@pytest.fixture(scope="module")
def shipped() -> Detector:
    return Detector.from_checkpoint(CHECKPOINT)


@pytest.fixture(scope="module")
def scores(shared_data: Path, shipped: Detector) -> dict[tuple[bool, str], Scores]:
    return {
        (ground, frame): real_sample_scores(shipped.with_model(ground_relative=ground), shared_data, max_range_m=50.0, dataset_frame=frame == "dataset")
        for ground in (True, False)
        for frame in ("canonical", "dataset")
    }


def test_canonical_ego_frame_is_what_absolute_heights_need(scores: dict[tuple[bool, str], Scores]) -> None:
    canonical, dataset = scores[False, "canonical"], scores[False, "dataset"]
    assert set(canonical) == {"AV2 sweep", "KITTI frames"} and canonical["KITTI frames"]["frames"] == 3
    # With the road at z = 0, as in training, the detector finds more real vehicles than with AV2's road at -0.33 m
    # or KITTI's at -1.73 m (where it finds none).
    av2, av2_raw = canonical["AV2 sweep"], dataset["AV2 sweep"]
    assert av2["vehicle/truths"] == av2_raw["vehicle/truths"] == 16
    assert av2["vehicle/recall"] > av2_raw["vehicle/recall"] and av2["REGULAR_VEHICLE/AP"] > av2_raw["REGULAR_VEHICLE/AP"]
    assert dataset["KITTI frames"]["vehicle/recall"] == dataset["KITTI frames"]["pedestrian/recall"] == 0


def test_ground_relative_heights_find_the_vehicles_below_the_road(scores: dict[tuple[bool, str], Scores]) -> None:
    # Half of the AV2 sweep's vehicles (a row of parked cars) stand 0.2-0.45 m below the road under the ego vehicle.
    with_ground, without = scores[True, "canonical"]["AV2 sweep"], scores[False, "canonical"]["AV2 sweep"]
    assert with_ground["vehicle/recall"] > without["vehicle/recall"]
    assert with_ground["REGULAR_VEHICLE/AP"] > without["REGULAR_VEHICLE/AP"]


def test_ground_relative_heights_do_not_depend_on_the_ego_frame(scores: dict[tuple[bool, str], Scores]) -> None:
    for sample in ("AV2 sweep", "KITTI frames"):
        canonical, dataset = scores[True, "canonical"][sample], scores[True, "dataset"][sample]
        for key in ("vehicle/recall", "vehicle/precision", "REGULAR_VEHICLE/AP"):
            assert canonical[key] == pytest.approx(dataset[key], abs=1e-6, nan_ok=True), (sample, key)


def test_shipped_detector_reads_no_overhead_points_and_finds_real_vehicles_and_pedestrians(shipped: Detector, scores: dict[tuple[bool, str], Scores]) -> None:
    # Tree crowns and awnings over the AV2 sweep's parked cars shift the mean height that describes every point of their
    # pillars: the shipped network reads points up to 3 m above the ground only. With ground-truth sampling in training
    # it meets the vehicle target and finds some of the pedestrians behind the parked cars, beside the facades.
    assert shipped.cfg.model.range_m[5] <= OVERHEAD_CUT_M
    av2 = scores[True, "canonical"]["AV2 sweep"]
    assert av2["vehicle/recall"] >= 0.8 and av2["vehicle/precision"] >= 0.6
    assert av2["pedestrian/recall"] > 0


def test_kitti_pedestrian_is_missed_for_kittis_intensity_scale_alone(shipped: Detector, shared_data: Path, scores: dict[tuple[bool, str], Scores]) -> None:
    # KITTI's intensities run about 3 times the simulator's return strength: the shipped network misses the pedestrian
    # 8.7 m ahead of the first frame, and finds it, with the AV2 sweep's vehicles, when it reads every intensity as 0.
    reading = scores[True, "canonical"]
    blind = real_sample_scores(shipped.with_model(use_intensity=False), shared_data, max_range_m=50.0)
    assert reading["KITTI frames"]["pedestrian/truths"] == blind["KITTI frames"]["pedestrian/truths"] == 1
    assert reading["KITTI frames"]["pedestrian/recall"] == 0 and blind["KITTI frames"]["pedestrian/recall"] == 1
    assert blind["AV2 sweep"]["vehicle/recall"] >= 0.8 and blind["AV2 sweep"]["vehicle/precision"] >= 0.6
