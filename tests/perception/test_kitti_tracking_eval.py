"""KITTI tracking evaluation on hand-made sequences: TrackEval (HOTA / CLEAR / Identity) and AB3DMOT's 3D metrics."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perception.tracking.kitti_eval import evaluate_kitti_tracking, kitti_iou_3d, recall_thresholds, write_seqmap
from scenes.errors import InputError

CAR_HWL = (1.5, 1.6, 4.0)
PEDESTRIAN_HWL = (1.7, 0.6, 0.8)
# (2D box ltrb px, bottom-centre location in the camera frame m) of a few places in the image, far apart in 2D and 3D.
LEFT = ((300.0, 160.0, 420.0, 240.0), (-3.0, 1.6, 15.0))
RIGHT = ((700.0, 160.0, 820.0, 240.0), (3.0, 1.6, 15.0))
MIDDLE = ((560.0, 120.0, 600.0, 260.0), (0.0, 1.7, 10.0))
FAR = ((1000.0, 170.0, 1040.0, 210.0), (20.0, 1.6, 60.0))
LOW = ((200.0, 100.0, 240.0, 120.0), (-9.0, 1.6, 40.0))  # 20 px high


def _row(
    frame: int,
    track_id: int,
    kind: str,
    place: tuple[tuple[float, ...], tuple[float, ...]],
    *,
    size_hwl_m: tuple[float, ...] = CAR_HWL,
    truncated: int = 0,
    occluded: int = 0,
    score: float | None = None,
) -> str:
    bbox, location = place
    fields: list[object] = [frame, track_id, kind, truncated, occluded, -1.57, *bbox, *size_hwl_m, *location, 0.0]
    if score is not None:
        fields.append(score)
    return " ".join(str(value) for value in fields)


def _dataset(tmp_path: Path, gt: Mapping[str, Sequence[str]], results: Mapping[str, Sequence[str]]) -> tuple[Path, Path]:
    gt_dir, results_dir = tmp_path / "gt", tmp_path / "results"
    (gt_dir / "label_02").mkdir(parents=True)
    results_dir.mkdir()
    for name, lines in gt.items():
        (gt_dir / "label_02" / f"{name}.txt").write_text("".join(f"{line}\n" for line in lines))
    for name, lines in results.items():
        (results_dir / f"{name}.txt").write_text("".join(f"{line}\n" for line in lines))
    return gt_dir, results_dir


def _with_score(line: str, score: float) -> str:
    return f"{line} {score}"


def test_perfect_results_score_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 41 frames: with 41 TPs AB3DMOT's thresholds reach all 40 recall levels.
    car = [_row(frame, 0, "Car", LEFT) for frame in range(41)]
    pedestrian = [_row(frame, 1, "Pedestrian", MIDDLE, size_hwl_m=PEDESTRIAN_HWL) for frame in range(41)]
    results = [_with_score(line, 0.8) for line in car] + [_with_score(line, 0.6) for line in pedestrian]
    gt_dir, results_dir = _dataset(tmp_path, {"0000": car + pedestrian}, {"0000": results})

    metrics = evaluate_kitti_tracking(gt_dir, results_dir, {"0000": 41})

    assert capsys.readouterr() == ("", "")
    for cls in ("car", "pedestrian"):
        for figure in (metrics.hota, metrics.det_a, metrics.ass_a, metrics.loc_a, metrics.mota, metrics.motp, metrics.idf1):
            assert figure[cls] == pytest.approx(1.0)
        assert (metrics.idsw[cls], metrics.fp[cls], metrics.fn[cls], metrics.mt[cls], metrics.ml[cls]) == (0, 0, 0, 1, 0)
        assert metrics.samota[cls] == pytest.approx(1.0)
        assert metrics.amota[cls] == pytest.approx(1.0)
        assert metrics.amotp[cls] == pytest.approx(1.0)
        assert metrics.mota_3d[cls] == pytest.approx(1.0)
        assert (metrics.tp_3d[cls], metrics.fp_3d[cls], metrics.fn_3d[cls], metrics.idsw_3d[cls]) == (41, 0, 0, 0)
    flat = metrics.as_dict()
    assert flat["HOTA"] == pytest.approx(1.0) and flat["car/sAMOTA"] == pytest.approx(1.0) and flat["MT"] == 2
    assert json.loads(json.dumps(flat)) == flat
    table = metrics.table()
    assert [column.header for column in table.columns] == ["class", "HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "sAMOTA", "AMOTA"]
    assert list(table.columns[0].cells) == ["car", "pedestrian", "all"]


def _id_switch_sequence() -> tuple[list[str], list[str]]:
    """One car over 6 frames, tracked as id 1 in frames 0-2 and id 2 in frames 3-5."""
    gt = [_row(frame, 0, "Car", LEFT) for frame in range(6)]
    results = [_row(frame, 1 if frame < 3 else 2, "Car", LEFT, score=0.9) for frame in range(6)]
    return gt, results


def test_one_id_switch(tmp_path: Path) -> None:
    gt, results = _id_switch_sequence()
    gt_dir, results_dir = _dataset(tmp_path, {"0000": gt}, {"0000": results})

    metrics = evaluate_kitti_tracking(gt_dir, results_dir, {"0000": 6}, classes=["car"])

    assert metrics.idsw["car"] == 1
    assert metrics.mota["car"] == pytest.approx(1 - 1 / 6)
    assert metrics.det_a["car"] == pytest.approx(1.0)
    # Each track covers half of the GT trajectory: association score 3 / (3 + 3 + 0) for every TP.
    assert metrics.ass_a["car"] == pytest.approx(0.5)
    assert metrics.hota["car"] == pytest.approx(math.sqrt(0.5))
    assert metrics.idf1["car"] == pytest.approx(2 * 3 / (6 + 6))
    assert metrics.idsw_3d["car"] == 1
    assert metrics.mota_3d["car"] == pytest.approx(1 - 1 / 6)
    # 6 TP scores give 5 recall levels (1/40 .. 5/40); sMOTA there is clamped to 1, the 35 others count 0.
    assert metrics.samota["car"] == pytest.approx(5 / 40)
    assert metrics.amota["car"] == pytest.approx(5 * (5 / 6) / 40)
    assert metrics.amotp["car"] == pytest.approx(5 / 40)


def test_id_switch_across_a_missed_frame(tmp_path: Path) -> None:
    gt = [_row(frame, 0, "Car", LEFT) for frame in range(5)]
    results = [_row(frame, 1 if frame < 2 else 2, "Car", LEFT, score=0.9) for frame in (0, 1, 3, 4)]
    gt_dir, results_dir = _dataset(tmp_path, {"0000": gt}, {"0000": results})

    metrics = evaluate_kitti_tracking(gt_dir, results_dir, {"0000": 5}, classes=["car"])

    # TrackEval compares with the last matched id; AB3DMOT only with the previous appearance's.
    assert (metrics.idsw["car"], metrics.fn["car"]) == (1, 1)
    assert (metrics.idsw_3d["car"], metrics.fn_3d["car"]) == (0, 1)
    assert metrics.mota_3d["car"] == pytest.approx(1 - 1 / 5)


def _fp_and_miss_sequence() -> tuple[list[str], list[str]]:
    """One car over 4 frames, missed in frame 2; a low-score false track far away in frame 1."""
    gt = [_row(frame, 0, "Car", LEFT) for frame in range(4)]
    results = [_row(frame, 1, "Car", LEFT, score=0.9) for frame in (0, 1, 3)] + [_row(1, 2, "Car", FAR, score=0.3)]
    return gt, results


def test_false_positive_and_missed_frame(tmp_path: Path) -> None:
    gt, results = _fp_and_miss_sequence()
    gt_dir, results_dir = _dataset(tmp_path, {"0000": gt}, {"0000": results})

    metrics = evaluate_kitti_tracking(gt_dir, results_dir, {"0000": 4})

    assert (metrics.fp["car"], metrics.fn["car"], metrics.idsw["car"]) == (1, 1, 0)
    assert metrics.mota["car"] == pytest.approx(1 - 2 / 4)
    assert metrics.det_a["car"] == pytest.approx(3 / 5)
    assert metrics.ass_a["car"] == pytest.approx(3 / 4)
    assert metrics.hota["car"] == pytest.approx(math.sqrt(0.6 * 0.75))
    assert metrics.idf1["car"] == pytest.approx(6 / 8)
    assert (metrics.mt["car"], metrics.ml["car"]) == (0, 0)  # tracked 3/4: partly tracked
    assert set(metrics.hota) == {"car"}  # no pedestrian GT
    assert metrics.as_dict()["HOTA"] == metrics.hota["car"]
    assert (metrics.tp_3d["car"], metrics.fp_3d["car"], metrics.fn_3d["car"], metrics.idsw_3d["car"]) == (3, 1, 1, 0)
    assert metrics.mota_3d["car"] == pytest.approx(1 - 2 / 4)
    # 3 TPs -> 2 recall levels at threshold 0.9, where the 0.3 track is gone: FN 1, FP 0, MOTA 3/4.
    assert metrics.amota["car"] == pytest.approx(2 * 0.75 / 40)
    assert metrics.samota["car"] == pytest.approx(2 / 40)


def test_sequences_are_combined(tmp_path: Path) -> None:
    gt_a, results_a = _fp_and_miss_sequence()
    gt_b, results_b = _id_switch_sequence()
    gt_dir, results_dir = _dataset(tmp_path, {"0000": gt_a, "0001": gt_b}, {"0000": results_a, "0001": results_b})

    metrics = evaluate_kitti_tracking(gt_dir, results_dir, {"0000": 4, "0001": 6}, classes=["car"])

    assert (metrics.fp["car"], metrics.fn["car"], metrics.idsw["car"]) == (1, 1, 1)
    assert metrics.mota["car"] == pytest.approx(1 - 3 / 10)
    assert (metrics.fp_3d["car"], metrics.fn_3d["car"], metrics.idsw_3d["car"]) == (1, 1, 1)
    assert metrics.mota_3d["car"] == pytest.approx(1 - 3 / 10)


def _ignore_rules_sequence(*, ignored: bool) -> tuple[list[str], list[str]]:
    """Car 0 tracked in frames 0-1; car 1 (occluded 3 when `ignored`) never tracked; car 2 (truncated 1) and a van,
    both tracked as cars; a result far away inside a DontCare region (when `ignored`) and one 20 px high."""
    van = "Van" if ignored else "Car"
    gt = [
        _row(0, 0, "Car", LEFT),
        _row(1, 0, "Car", LEFT),
        _row(0, 1, "Car", RIGHT, occluded=3 if ignored else 0),
        _row(1, 2, "Car", MIDDLE, truncated=1 if ignored else 0),
        _row(0, 3, van, MIDDLE),
    ]
    if ignored:
        gt += [_row(frame, -1, "DontCare", ((950.0, 100.0, 1100.0, 300.0), (-1000.0, -1000.0, -1000.0)), size_hwl_m=(-1, -1, -1)) for frame in (0, 1)]
    results = [
        _row(0, 1, "Car", LEFT, score=0.9),
        _row(1, 1, "Car", LEFT, score=0.9),
        _row(1, 7, "Car", MIDDLE, score=0.8),
        _row(0, 8, "Car", MIDDLE, score=0.8),
        _row(0, 5, "Car", FAR, score=0.7),
        _row(1, 6, "Car", LOW, score=0.7),
    ]
    return gt, results


def test_ignored_ground_truth_and_dontcare(tmp_path: Path) -> None:
    gt, results = _ignore_rules_sequence(ignored=True)
    gt_dir, results_dir = _dataset(tmp_path, {"0000": gt}, {"0000": results})

    metrics = evaluate_kitti_tracking(gt_dir, results_dir, {"0000": 2}, classes=["car"])

    # Only car 0 counts: the occluded car is no FN, the truncated car and the van matched are neither TP nor FP,
    # the result in the DontCare region and the 20 px one are no FP.
    assert (metrics.tp_3d["car"], metrics.fp_3d["car"], metrics.fn_3d["car"]) == (2, 0, 0)
    assert metrics.mota_3d["car"] == pytest.approx(1.0)
    assert metrics.motp_3d["car"] == pytest.approx(1.0)
    assert (metrics.fp["car"], metrics.fn["car"]) == (0, 0)
    assert metrics.mota["car"] == pytest.approx(1.0)
    # As in AB3DMOT the matched ignored GT (truncated car, van) still add their scores to the recall levels: 4 scores,
    # recall denominator 4 -> 3 levels, each with MOTA 1.
    assert metrics.samota["car"] == pytest.approx(3 / 40)
    assert metrics.amota["car"] == pytest.approx(3 / 40)


def test_without_ignore_rules_the_same_results_count(tmp_path: Path) -> None:
    gt, results = _ignore_rules_sequence(ignored=False)
    gt_dir, results_dir = _dataset(tmp_path, {"0000": gt}, {"0000": results})

    metrics = evaluate_kitti_tracking(gt_dir, results_dir, {"0000": 2}, classes=["car"])

    # 5 GT cars, 4 tracked; the far result is a FP, the 20 px one stays ignored.
    assert (metrics.tp_3d["car"], metrics.fp_3d["car"], metrics.fn_3d["car"]) == (4, 1, 1)
    assert metrics.mota_3d["car"] == pytest.approx(1 - 2 / 5)
    assert (metrics.fp["car"], metrics.fn["car"]) == (1, 1)
    assert metrics.mota["car"] == pytest.approx(1 - 2 / 5)


def test_low_score_track_and_recall_thresholds(tmp_path: Path) -> None:
    # Two cars over 40 frames: track 1 (score 0.9) follows car A, track 2 (0.2) car B; track 3 (0.5) is a false
    # track in frames 0-9.
    gt = [_row(frame, 0, "Car", LEFT) for frame in range(40)] + [_row(frame, 1, "Car", RIGHT) for frame in range(40)]
    results = [_row(frame, 1, "Car", LEFT, score=0.9) for frame in range(40)]
    results += [_row(frame, 2, "Car", RIGHT, score=0.2) for frame in range(40)]
    results += [_row(frame, 3, "Car", FAR, score=0.5) for frame in range(10)]
    gt_dir, results_dir = _dataset(tmp_path, {"0000": gt}, {"0000": results})

    metrics = evaluate_kitti_tracking(gt_dir, results_dir, {"0000": 40}, classes=["car"])

    # 80 TP scores (40 x 0.9, 40 x 0.2): the 41 taken are the first and every second one after it, so recall
    # m/40 gets threshold 0.9 for m <= 20 and 0.2 above.
    thresholds, recalls = recall_thresholds([0.9] * 40 + [0.2] * 40, 80)
    assert thresholds == [0.9] * 20 + [0.2] * 20
    assert recalls == pytest.approx([m / 40 for m in range(1, 41)])
    # At 0.9 only track 1 is left: FN 40, MOTA 0.5, sMOTA = min(1, 20/m) = 1. At 0.2 all three: FP 10, MOTA 0.875,
    # sMOTA = 1 - (10 - (80 - 2m)) / (2m) = 35/m, below 1 for m = 36..40.
    samota = (35 + sum(35 / m for m in range(36, 41))) / 40
    assert metrics.samota["car"] == pytest.approx(samota)
    assert metrics.amota["car"] == pytest.approx((20 * 0.5 + 20 * 0.875) / 40)
    assert metrics.amotp["car"] == pytest.approx(1.0)
    assert metrics.mota_3d["car"] == pytest.approx(0.875)
    assert (metrics.tp_3d["car"], metrics.fp_3d["car"], metrics.fn_3d["car"]) == (80, 10, 0)


def test_recall_thresholds_midpoint_rule() -> None:
    # 23 TPs of 42 GT: score i (0-based, descending) has recall (i + 1) / 42 and is taken for level i / 40 while the
    # midpoint to the next, (2i + 3) / 84, reaches it (i <= 30): all 23, the level-0 one dropped. At i = 21 the
    # score's own recall 22/42 is just below 21/40.
    scores = [1.0 - index / 100 for index in range(23)]
    thresholds, recalls = recall_thresholds(scores, 42)
    assert thresholds == scores[1:]
    assert recalls == pytest.approx([k / 40 for k in range(1, 23)])
    # Far more GT than TPs: after the first, only the last (always taken) remains.
    assert recall_thresholds([0.9, 0.8, 0.7, 0.6, 0.5], 200) == ([0.5], [1 / 40])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=120), st.integers(0, 50))
def test_recall_thresholds_walk_the_levels(scores: list[float], misses: int) -> None:
    thresholds, recalls = recall_thresholds(scores, len(scores) + misses)
    assert len(thresholds) == len(recalls) <= min(len(scores) - 1, 40)
    assert recalls == pytest.approx([k / 40 for k in range(1, len(recalls) + 1)])
    assert thresholds == sorted(thresholds, reverse=True)
    assert set(thresholds) <= set(scores)
    if len(scores) > 1:
        assert thresholds[-1] == min(scores)  # the lowest score is always taken


def test_cyclist_is_scored_by_ab3dmot_only(tmp_path: Path) -> None:
    cyclist = [_row(frame, 0, "Cyclist", MIDDLE, size_hwl_m=(1.7, 0.6, 1.8)) for frame in range(3)]
    gt_dir, results_dir = _dataset(tmp_path, {"0000": cyclist}, {"0000": [_with_score(line, 0.5) for line in cyclist]})

    metrics = evaluate_kitti_tracking(gt_dir, results_dir, {"0000": 3}, classes=["Cyclist", "car"])

    assert metrics.classes == ("cyclist", "car")
    # No car GT: car is absent from both parts' figures; TrackEval does not score cyclists.
    assert metrics.mota_3d == {"cyclist": pytest.approx(1.0)}
    assert metrics.hota == {} and metrics.overall("HOTA") is None
    flat = metrics.as_dict()
    assert "cyclist/HOTA" not in flat and flat["sAMOTA"] == pytest.approx(2 / 40) and flat["cyclist/sAMOTA"] == flat["sAMOTA"]
    assert list(metrics.table().columns[1].cells) == ["-", "-", "-"]


def test_output_dir_gets_trackeval_summaries_and_metrics(tmp_path: Path) -> None:
    gt, results = _fp_and_miss_sequence()
    gt_dir, results_dir = _dataset(tmp_path, {"0000": gt}, {"0000": results})
    out = tmp_path / "out"

    metrics = evaluate_kitti_tracking(gt_dir, results_dir, {"0000": 4}, output_dir=out)

    names = sorted(path.name for path in out.iterdir())
    assert names == ["car_detailed.csv", "car_summary.txt", "metrics.json", "pedestrian_detailed.csv", "pedestrian_summary.txt"]
    assert json.loads((out / "metrics.json").read_text()) == pytest.approx(metrics.as_dict())
    header, values = (out / "car_summary.txt").read_text().splitlines()
    assert float(values.split()[header.split().index("MOTA")]) == pytest.approx(50.0)  # TrackEval writes percentages
    assert sorted(path.name for path in tmp_path.iterdir()) == ["gt", "out", "results"]


def test_seqmap_lines(tmp_path: Path) -> None:
    write_seqmap(tmp_path / "evaluate_tracking.seqmap.training", {"0000": 154, "0013": 7})
    assert (tmp_path / "evaluate_tracking.seqmap.training").read_text() == "0000 empty 000000 000154\n0013 empty 000000 000007\n"


def test_iou_3d_hand_computed() -> None:
    box = ((0.0, 1.6, 10.0), CAR_HWL, 0.0)
    assert kitti_iou_3d(*box, *box)[0, 0] == pytest.approx(1.0)
    assert kitti_iou_3d(*box, (10.0, 1.6, 10.0), CAR_HWL, 0.0)[0, 0] == 0.0
    # Shifted by half a length along the length (camera x for ry = 0): overlap l/2, union 3/2 of a box.
    assert kitti_iou_3d(*box, (2.0, 1.6, 10.0), CAR_HWL, 0.0)[0, 0] == pytest.approx(1 / 3)
    # ry = pi/2 turns the length onto camera z.
    assert kitti_iou_3d((0.0, 1.6, 10.0), CAR_HWL, np.pi / 2, (0.0, 1.6, 12.0), CAR_HWL, np.pi / 2)[0, 0] == pytest.approx(1 / 3)
    # Half a height apart: the spans [y - h, y] overlap by h/2.
    assert kitti_iou_3d(*box, (0.0, 1.6 + 0.75, 10.0), CAR_HWL, 0.0)[0, 0] == pytest.approx(1 / 3)
    # A 4 x 2 footprint crossed with itself turned by 90 degrees: 2 x 2 common, union 8 + 8 - 4.
    assert kitti_iou_3d((0, 1, 0), (1, 2, 4), 0.0, (0, 1, 0), (1, 2, 4), np.pi / 2)[0, 0] == pytest.approx(4 / 12)
    assert kitti_iou_3d(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), *box).shape == (0, 1)


_coordinate = st.floats(-20.0, 20.0)
_extent = st.floats(0.3, 6.0)
_box = st.tuples(st.tuples(_coordinate, st.floats(-2.0, 3.0), _coordinate), st.tuples(_extent, _extent, _extent), st.floats(-np.pi, np.pi))


@settings(max_examples=60, deadline=None)
@given(st.lists(_box, min_size=1, max_size=4), st.lists(_box, min_size=1, max_size=4), st.tuples(_coordinate, _coordinate, _coordinate))
def test_iou_3d_symmetric_bounded_translation_invariant(
    boxes_a: list[tuple[tuple[float, ...], tuple[float, ...], float]],
    boxes_b: list[tuple[tuple[float, ...], tuple[float, ...], float]],
    shift: tuple[float, float, float],
) -> None:
    a = [np.array([box[i] for box in boxes_a]) for i in range(3)]
    b = [np.array([box[i] for box in boxes_b]) for i in range(3)]
    iou = kitti_iou_3d(*a, *b)
    assert iou.shape == (len(boxes_a), len(boxes_b))
    assert np.all((iou >= 0.0) & (iou <= 1.0))
    np.testing.assert_allclose(kitti_iou_3d(*b, *a), iou.T, atol=1e-9)
    moved = kitti_iou_3d(a[0] + shift, a[1], a[2], b[0] + shift, b[1], b[2])
    np.testing.assert_allclose(moved, iou, atol=1e-7)


def _single_car(tmp_path: Path, result_lines: list[str], num_frames: int = 3) -> tuple[Path, Path]:
    gt = [_row(frame, 0, "Car", LEFT) for frame in range(num_frames)]
    return _dataset(tmp_path, {"0000": gt}, {"0000": result_lines})


def test_result_frame_beyond_the_sequence(tmp_path: Path) -> None:
    gt_dir, results_dir = _single_car(tmp_path, [_row(3, 1, "Car", LEFT, score=0.5)])
    with pytest.raises(InputError, match=r"frame 3 is outside the sequence's 3 frames") as error:
        evaluate_kitti_tracking(gt_dir, results_dir, {"0000": 3})
    assert str(error.value).startswith(f"{results_dir / '0000.txt'}: ")


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10), st.integers(0, 500))
def test_any_frame_beyond_names_the_file(tmp_path_factory: pytest.TempPathFactory, frames: int, beyond: int) -> None:
    gt_dir, results_dir = _single_car(tmp_path_factory.mktemp("beyond"), [_row(frames + 1 + beyond, 4, "Car", FAR, score=0.1)], frames + 1)
    with pytest.raises(InputError) as error:
        evaluate_kitti_tracking(gt_dir, results_dir, {"0000": frames + 1})
    assert str(error.value).startswith(f"{results_dir / '0000.txt'}: frame {frames + 1 + beyond} is outside")


def test_ground_truth_frame_beyond_the_sequence(tmp_path: Path) -> None:
    gt_dir, results_dir = _single_car(tmp_path, [], num_frames=5)
    with pytest.raises(InputError) as error:
        evaluate_kitti_tracking(gt_dir, results_dir, {"0000": 4})
    assert str(error.value).startswith(f"{gt_dir / 'label_02' / '0000.txt'}: frame 4 is outside")


def test_missing_results_file(tmp_path: Path) -> None:
    gt_dir, results_dir = _single_car(tmp_path, [])
    (gt_dir / "label_02" / "0001.txt").write_text(_row(0, 0, "Car", LEFT) + "\n")
    with pytest.raises(InputError) as error:
        evaluate_kitti_tracking(gt_dir, results_dir, {"0000": 3, "0001": 1})
    assert str(error.value) == f"{results_dir / '0001.txt'}: results file of sequence 0001 not found"


@pytest.mark.parametrize(
    ("results", "num_frames", "message"),
    [
        ([_row(0, 1, "Car", LEFT, score=0.5), _row(0, 1, "Car", RIGHT, score=0.5)], {"0000": 3}, "frame 0: track id 1 appears twice"),
        ([_row(0, 1, "Car", LEFT)], {"0000": 3}, "frame 0, track 1: result rows need a score"),
        ([], {"0000": 0}, "the number of frames must be a positive integer"),
        ([], {"../0000": 3}, "is not a sequence name"),
    ],
)
def test_bad_results_and_options(tmp_path: Path, results: list[str], num_frames: dict[str, int], message: str) -> None:
    gt_dir, results_dir = _single_car(tmp_path, results)
    with pytest.raises(InputError, match=message):
        evaluate_kitti_tracking(gt_dir, results_dir, num_frames)


def test_unknown_class(tmp_path: Path) -> None:
    gt_dir, results_dir = _single_car(tmp_path, [])
    with pytest.raises(InputError, match=r"classes: \['truck'\] are not KITTI tracking classes"):
        evaluate_kitti_tracking(gt_dir, results_dir, {"0000": 3}, classes=["car", "Truck"])
