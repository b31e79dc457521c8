"""Targets/decoding round trip, losses, multi-sweep input, augmentation, overfitting, checkpoints and resume."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from perception.detection.augment import flip_y, ground_height_m, keep_lasers, random_terrain, rotate_scale, vary_intensity, vary_sensor
from perception.detection.box_coder import LAYOUT
from perception.detection.box_ops import count_points_in_boxes
from perception.detection.config import DetectionConfig, ModelConfig
from perception.detection.decode import decode
from perception.detection.detector import Detector
from perception.detection.gt_sampling import MIN_POINTS
from perception.detection.losses import focal_loss, regression_loss
from perception.detection.model import CenterPointNet, PillarFeatureNet, make_pillar_batch, sweep_index
from perception.detection.sweeps import POINT_FEATURES, accumulate_sweeps
from perception.detection.targets import build_targets, draw_gaussian, gaussian_radius
from perception.detection.train import DetectionTask, Sample, fit, prepare, synth_samples
from scenes.categories import CATEGORY_ID
from scenes.config import ConfigError, load_config
from scenes.errors import InputError
from scenes.geometry import SE3
from scenes.records import Boxes3D, Frame, LidarSweep
from scenes.training.checkpoint import CheckpointError, load_checkpoint

REPO = Path(__file__).resolve().parents[2]
RV, PED = CATEGORY_ID["REGULAR_VEHICLE"], CATEGORY_ID["PEDESTRIAN"]
TINY_MODEL = {
    "range_m": (-16.0, -16.0, -3.0, 16.0, 16.0, 3.0),
    "pillar_size_m": (0.5, 0.5),
    "num_sweeps": 1,
    "pillar_channels": 16,
    "backbone_channels": (16, 32),
    "backbone_layers": (2, 2),
    "head_channels": 16,
}


def _annotated_pedestrians(frame: Frame) -> int:
    assert frame.annotations is not None
    return int((frame.annotations.category == PED).sum())


def _scene(seed: int, timestamp_ns: int = 1_000) -> Frame:
    """Boxes filled with points on a flat ground plane, in the ego frame."""
    rng = np.random.default_rng(seed)
    n = 6
    center = np.column_stack([rng.uniform(-12, 12, n), rng.uniform(-12, 12, n), np.full(n, 0.8)])
    size = np.tile([4.5, 1.9, 1.6], (n, 1))
    size[::2] = [0.7, 0.7, 1.7]
    category = np.where(np.arange(n) % 2 == 0, PED, RV)
    yaw = rng.uniform(-np.pi, np.pi, n)
    parts = []
    for k in range(n):
        local = rng.uniform(-0.5, 0.5, (150, 3)) * size[k]
        c, s = np.cos(yaw[k]), np.sin(yaw[k])
        local[:, :2] = local[:, :2] @ np.array([[c, -s], [s, c]]).T
        parts.append(local + center[k])
    parts.append(np.column_stack([rng.uniform(-16, 16, (3000, 2)), np.zeros(3000)]))
    points = np.concatenate(parts).astype(np.float32)
    sweep = LidarSweep(timestamp_ns, points, np.ones(len(points), np.float32), np.zeros(len(points), np.int16))
    velocity = rng.normal(0, 2, (n, 2))
    boxes = Boxes3D(center, size, yaw, category, velocity_m_per_s=velocity)
    return Frame("log", timestamp_ns, SE3.identity(), sweep, annotations=boxes)


def test_gaussian_radius_and_peak() -> None:
    # CornerNet radius of a 10x10 box at IoU 0.7 (hand-solved quadratics: min of the three roots).
    r = gaussian_radius(10.0, 10.0, 0.7)
    b1, c1 = 20.0, 100 * 0.3 / 1.7
    b3, c3 = -2 * 0.7 * 20, (0.7 - 1) * 100
    expected = min((b1 + math.sqrt(b1**2 - 4 * c1)) / 2, (40 + math.sqrt(1600 - 16 * 30)) / 2, (b3 + math.sqrt(b3**2 - 4 * 2.8 * c3)) / 2)
    assert r == pytest.approx(expected)
    heatmap = np.zeros((7, 9), dtype=np.float32)
    draw_gaussian(heatmap, (0, 3), 2)
    assert heatmap[3, 0] == 1.0 and heatmap.argmax() == 3 * 9
    sigma = 5 / 6
    assert heatmap[3, 1] == pytest.approx(math.exp(-1 / (2 * sigma**2)), rel=1e-6)
    assert heatmap[3, 3] == 0.0


@pytest.mark.parametrize("out_stride", [1, 2])
def test_encode_decode_round_trip(out_stride: int) -> None:
    cfg = ModelConfig(**TINY_MODEL, score_threshold=0.5, out_stride=out_stride)
    assert cfg.out_shape_hw == (64 // out_stride, 64 // out_stride)
    truth = _scene(0).annotations
    assert truth is not None
    targets = build_targets(truth, cfg, gaussian_overlap=0.1, min_radius=2, max_objects=32)
    height, width = cfg.out_shape_hw
    outputs = []
    for task in targets:
        heat = np.clip(task.heatmap, 1e-6, 1 - 1e-6)
        logits = torch.from_numpy(np.log(heat / (1 - heat)))[None]
        regression = np.zeros((LAYOUT.width, height * width), dtype=np.float32)
        regression[:, task.indices[task.mask]] = task.regression[task.mask].T
        outputs.append((logits, torch.from_numpy(regression.reshape(1, LAYOUT.width, height, width))))
    decoded = decode(outputs, cfg)[0]
    assert len(decoded) == len(truth)
    order = [int(np.argmin(np.linalg.norm(decoded.center_m - c, axis=1))) for c in truth.center_m]
    matched = decoded.select(np.array(order))
    np.testing.assert_allclose(matched.center_m, truth.center_m, atol=1e-5)
    np.testing.assert_allclose(matched.size_lwh_m, truth.size_lwh_m, rtol=1e-5)
    np.testing.assert_allclose(np.cos(matched.yaw_rad - truth.yaw_rad), 1.0, atol=1e-6)
    assert matched.velocity_m_per_s is not None and truth.velocity_m_per_s is not None
    np.testing.assert_allclose(matched.velocity_m_per_s, truth.velocity_m_per_s, atol=1e-5)
    assert np.array_equal(matched.category, truth.category)


def test_focal_loss_hand_value() -> None:
    # One positive cell with p = 0.5 and one negative cell (target 0.5) with p = 0.5:
    # pos = log(.5)(.5)^2, neg = log(.5)(.5)^2(1-.5)^4 -> loss = -(pos + neg) / 1.
    logits = torch.zeros(1, 1, 1, 2)
    target = torch.tensor([[[[1.0, 0.5]]]])
    expected = -(math.log(0.5) * 0.25 + math.log(0.5) * 0.25 * 0.5**4)
    assert float(focal_loss(logits, target)) == pytest.approx(expected, rel=1e-5)


def test_regression_loss_hand_value_with_squared_velocity() -> None:
    # One object at cell 1 of a 1 x 2 map; prediction - target is 2 on every channel. L1: 2 per channel; squared
    # channels: 0.5 * 2^2 = 2 as well, so use 3 on the velocity channels: 0.5 * 9 = 4.5 there, 3 with L1.
    prediction = torch.zeros(1, LAYOUT.width, 1, 2)
    target = torch.full((1, 1, LAYOUT.width), -2.0)
    target[0, 0, LAYOUT.velocity] = -3.0
    indices, mask = torch.tensor([[1]]), torch.tensor([[True]])
    weights = torch.tensor(LAYOUT.weights(velocity=0.5))
    squared = torch.zeros(LAYOUT.width, dtype=torch.bool)
    squared[LAYOUT.velocity] = True
    others = LAYOUT.width - 2
    assert float(regression_loss(prediction, indices, mask, target, weights)) == pytest.approx(2 * others + 0.5 * 3 * 2)
    assert float(regression_loss(prediction, indices, mask, target, weights, squared)) == pytest.approx(2 * others + 0.5 * 4.5 * 2)
    # A masked-out slot adds nothing.
    two = regression_loss(prediction, torch.tensor([[1, 0]]), torch.tensor([[True, False]]), target.repeat(1, 2, 1), weights, squared)
    assert float(two) == pytest.approx(2 * others + 0.5 * 4.5 * 2)


def test_sweep_occupancy_channels_count_each_sweeps_points() -> None:
    np.testing.assert_array_equal(sweep_index(np.array([0.2, 0.0, 0.1, 0.0], np.float32)), [2, 0, 1, 0])
    np.testing.assert_array_equal(sweep_index(np.array([0.05, 0.0], np.float32)), [1, 0])  # any sweep rate
    cfg = ModelConfig.model_validate({**TINY_MODEL, "num_sweeps": 3, "sweep_occupancy": True})
    # Pillar (row 32, column 32) at x, y in [0, 0.5): 3 current points, 1 from the sweep before; pillar (32, 34): 2
    # points of the oldest sweep (a mover's trail).
    xy = [(0.1, 0.1)] * 4 + [(1.2, 0.2)] * 2
    lag = [0.0, 0.0, 0.0, 0.1, 0.2, 0.2]
    cloud = np.array([(x, y, 0.5, 0.3, t) for (x, y), t in zip(xy, lag, strict=True)], dtype=np.float32)
    net = PillarFeatureNet(cfg).eval()
    assert net.out_channels == cfg.pillar_channels + 3
    with torch.no_grad():
        canvas = net(make_pillar_batch([cloud], cfg))
    occupancy = canvas[0, cfg.pillar_channels :]
    np.testing.assert_allclose(occupancy[:, 32, 32].numpy(), np.log1p([3.0, 1.0, 0.0]), rtol=1e-6)
    np.testing.assert_allclose(occupancy[:, 32, 34].numpy(), np.log1p([0.0, 0.0, 2.0]), rtol=1e-6)
    assert float(occupancy.sum()) == pytest.approx(float(np.log1p(3) + np.log1p(1) + np.log1p(2)), rel=1e-6)


@pytest.mark.parametrize("use_intensity", [True, False])
def test_pillar_encoder_reads_intensity_only_when_asked(use_intensity: bool) -> None:
    cfg = ModelConfig.model_validate({**TINY_MODEL, "use_intensity": use_intensity})
    rng = np.random.default_rng(0)
    cloud = np.column_stack([rng.uniform(-2, 2, (40, 2)), rng.uniform(0, 2, 40), rng.uniform(0, 1, 40), np.zeros(40)]).astype(np.float32)
    dark = cloud.copy()
    dark[:, 3] = 0.0
    torch.manual_seed(0)
    net = PillarFeatureNet(cfg).eval()
    with torch.no_grad():
        bright_canvas, dark_canvas = net(make_pillar_batch([cloud], cfg)), net(make_pillar_batch([dark], cfg))
    # Without intensity the encoder sees the cloud exactly as if every return were dark; with it, it does not.
    assert torch.equal(bright_canvas, dark_canvas) is not use_intensity
    assert torch.equal(make_pillar_batch([cloud], cfg).points[:, 3] == 0, torch.full((40,), not use_intensity))
    assert cloud[:, 3].min() > 0  # the caller's cloud is left as it was


def test_intensity_as_rank_reads_each_kept_points_rank_and_ignores_the_rigs_scale() -> None:
    cfg = ModelConfig.model_validate({**TINY_MODEL, "intensity_as_rank": True})
    # Four points on the grid (intensities 5, 1, 3, 3) and one beyond its range, which must not count in the ranks.
    cloud = np.array(
        [(0.1, 0.1, 0.5, 5.0, 0.0), (1.1, 0.1, 0.5, 1.0, 0.0), (0.1, 1.1, 0.5, 3.0, 0.0), (2.1, 2.1, 0.5, 3.0, 0.1), (500.0, 0.0, 0.5, 0.5, 0.0)],
        dtype=np.float32,
    )
    np.testing.assert_allclose(make_pillar_batch([cloud], cfg).points[:, 3].numpy(), [1.0, 0.25, 0.625, 0.625])
    # Another rig's response to the same reflectances (gain 0.02, gamma 2: monotone) feeds the encoder the same input.
    other_rig = cloud.copy()
    other_rig[:, 3] = 0.02 * cloud[:, 3] ** 2
    torch.manual_seed(0)
    net = PillarFeatureNet(cfg).eval()
    with torch.no_grad():
        assert torch.equal(net(make_pillar_batch([cloud], cfg)), net(make_pillar_batch([other_rig], cfg)))
        raw = ModelConfig.model_validate(TINY_MODEL)
        assert not torch.equal(net(make_pillar_batch([cloud], raw)), net(make_pillar_batch([other_rig], raw)))
    assert cloud[0, 3] == 5.0  # the caller's cloud is left as it was


def test_multi_sweep_motion_compensation() -> None:
    # The ego moves +2 m in x between sweeps; a static point at city x = 10 must land on the same ego-now coordinates.
    def frame(t_ns: int, ego_x: float) -> Frame:
        point = np.array([[10.0 - ego_x, 0.0, 0.5]], dtype=np.float32)
        sweep = LidarSweep(t_ns, point, np.array([0.5], np.float32), np.zeros(1, np.int16))
        return Frame("log", t_ns, SE3.from_yaw(0.0, [ego_x, 0.0, 0.0]), sweep)

    now, past = frame(300_000_000, 2.0), frame(100_000_000, 0.0)
    points = accumulate_sweeps(now, [past], num_sweeps=2)
    np.testing.assert_allclose(points[:, :3], [[8.0, 0.0, 0.5], [8.0, 0.0, 0.5]], atol=1e-6)
    np.testing.assert_allclose(points[:, 4], [0.0, 0.2], atol=1e-9)
    assert len(accumulate_sweeps(now, [past], num_sweeps=1)) == 1


def test_augmentation_keeps_points_in_their_boxes() -> None:
    frame = _scene(1)
    assert frame.lidar is not None and frame.annotations is not None
    points = np.column_stack([frame.lidar.points_xyz_m, np.zeros((len(frame.lidar), 2), np.float32)])
    boxes = frame.annotations
    before = count_points_in_boxes(points[:, :3], boxes.center_m, boxes.size_lwh_m, boxes.yaw_rad)
    for moved, moved_boxes in (flip_y(points, boxes), rotate_scale(points, boxes, 0.7, 1.05)):
        after = count_points_in_boxes(moved[:, :3], moved_boxes.center_m, moved_boxes.size_lwh_m, moved_boxes.yaw_rad)
        assert np.abs(after - before).max() <= 2
    _, flipped = flip_y(points, boxes)
    assert flipped.velocity_m_per_s is not None and boxes.velocity_m_per_s is not None
    np.testing.assert_allclose(flipped.velocity_m_per_s[:, 1], -boxes.velocity_m_per_s[:, 1])


def test_sensor_variation_by_hand() -> None:
    boxes = Boxes3D(np.array([[10.0, 0.0, 0.8]]), np.array([[4.0, 2.0, 1.5]]), np.zeros(1), np.array([CATEGORY_ID["REGULAR_VEHICLE"]]))
    points = np.array([[10.0, 0.0, 0.5, 0.25, 0.0], [5.0, 1.0, 0.0, 1.0, 0.1]], dtype=np.float32)
    # Degenerate ranges pin each draw: gain 2, gamma 0.5; then gain 0.5, gamma 2.
    bright = vary_intensity(points, np.random.default_rng(0), gain_range=(2.0, 2.0), gamma_range=(0.5, 0.5))
    np.testing.assert_allclose(bright[:, 3], [2.0 * 0.5, 1.0])  # 2 * 0.25 ** 0.5 = 1, 2 * 1 ** 0.5 = 2 -> clipped to 1
    dim = vary_intensity(points, np.random.default_rng(0), gain_range=(0.5, 0.5), gamma_range=(2.0, 2.0))
    np.testing.assert_allclose(dim[:, 3], [0.5 * 0.0625, 0.5])
    np.testing.assert_allclose(dim[:, [0, 1, 2, 4]], points[:, [0, 1, 2, 4]])
    # +-0 m shift, every point kept: nothing moves.
    same, same_boxes = vary_sensor(points, boxes, np.random.default_rng(0), ground_shift_m=0.0, point_keep_range=(1.0, 1.0))
    np.testing.assert_array_equal(same, points)
    np.testing.assert_allclose(same_boxes.center_m, boxes.center_m)
    # A ground shift moves points and boxes together.
    moved, moved_boxes = vary_sensor(points, boxes, np.random.default_rng(1), ground_shift_m=0.3, point_keep_range=(1.0, 1.0))
    shift = moved[0, 2] - points[0, 2]
    assert 0.0 < abs(shift) <= 0.3
    np.testing.assert_allclose(moved[:, 2] - points[:, 2], shift, atol=1e-6)
    np.testing.assert_allclose(moved_boxes.center_m[:, 2] - boxes.center_m[:, 2], shift, atol=1e-6)
    # Lasers are dropped consistently across the sweeps of a sample.
    laser = np.arange(8, dtype=np.int16)
    sweeps = [LidarSweep(t, np.zeros((8, 3), np.float32), np.zeros(8, np.float32), laser) for t in (0, 1)]
    kept = keep_lasers(sweeps, 0.5, np.random.default_rng(2))
    assert len(kept[0]) == 4 and kept[0].laser_number.tolist() == kept[1].laser_number.tolist()
    assert keep_lasers(sweeps, 1.0, np.random.default_rng(2)) == sweeps


def test_ground_surface_by_hand() -> None:
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, -20.0], [np.pi, 0.0]])
    # A 2% slope along x and a 0.3 m undulation of wavelength 2 pi m along x, phase 0.
    height = ground_height_m(xy, np.array([0.02, 0.0]), 0.3, np.array([1.0, 0.0]), 0.0)
    np.testing.assert_allclose(height, [0.0, 0.2 + 0.3 * np.sin(10.0), 0.0, 0.02 * np.pi], atol=1e-12)
    # With a phase the surface still passes through the origin: sin(pi/2 + pi/2) - sin(pi/2) = -1 at x = pi/2.
    np.testing.assert_allclose(ground_height_m(np.array([[0.0, 0.0], [np.pi / 2, 5.0]]), np.zeros(2), 0.3, np.array([1.0, 0.0]), np.pi / 2), [0.0, -0.3])


def test_random_terrain_moves_a_box_with_its_points() -> None:
    boxes = Boxes3D(
        np.array([[20.0, 5.0, 0.8], [-30.0, -12.0, 0.9]]), np.array([[4.0, 2.0, 1.5], [0.6, 0.6, 1.8]]), np.zeros(2),
        np.array([CATEGORY_ID["REGULAR_VEHICLE"], CATEGORY_ID["PEDESTRIAN"]]),
    )  # fmt: skip
    points = np.column_stack([boxes.center_m, np.full(2, 0.2)]).astype(np.float32)
    rng = np.random.default_rng(3)
    moved, moved_boxes = random_terrain(points, boxes, rng, max_slope=0.03, max_undulation_m=0.4)
    lift = moved_boxes.center_m[:, 2] - boxes.center_m[:, 2]
    np.testing.assert_allclose(moved[:, 2] - points[:, 2], lift, atol=1e-5)  # a point at a box's centre moves with it
    np.testing.assert_allclose(moved[:, [0, 1, 3]], points[:, [0, 1, 3]])
    assert 0.0 < np.abs(lift).max() <= 0.03 * 36.0 + 0.8  # slope times distance plus twice the amplitude
    assert lift[0] != lift[1]
    # Switched off, the sensor variation draws nothing for terrain: the same stream gives the same sample.
    kwargs: dict[str, Any] = {"ground_shift_m": 0.2, "point_keep_range": (1.0, 1.0)}
    flat, _ = vary_sensor(points, boxes, np.random.default_rng(4), **kwargs)
    flat_again, _ = vary_sensor(points, boxes, np.random.default_rng(4), max_slope=0.0, max_undulation_m=0.0, **kwargs)
    np.testing.assert_array_equal(flat, flat_again)
    hilly, _ = vary_sensor(points, boxes, np.random.default_rng(4), max_slope=0.03, max_undulation_m=0.4, **kwargs)
    assert not np.array_equal(hilly[:, 2], flat[:, 2])


def _tiny_cfg(epochs: int, **train: object) -> DetectionConfig:
    return DetectionConfig.model_validate(
        {
            "model": {**TINY_MODEL, "score_threshold": 0.3},
            "train": {"epochs": epochs, "batch_size": 2, "learning_rate": 0.01, "augment": False, "num_threads": 1, **train},
        }
    )


@pytest.mark.slow
@pytest.mark.parametrize("out_stride", [1, 2])
def test_overfits_a_tiny_batch(tmp_path: Path, out_stride: int) -> None:
    frames = [_scene(2), _scene(3)]
    cfg = _tiny_cfg({1: 100, 2: 60}[out_stride])  # four times the cells at stride 1 take longer to fit
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"out_stride": out_stride})})
    path = fit(cfg, [Sample(f, ()) for f in frames], tmp_path, show_progress=False)
    detector = Detector.from_checkpoint(path)
    for frame in frames:
        detections = detector.run(frame)
        truth = frame.annotations
        assert truth is not None
        for center, category in zip(truth.center_m, truth.category, strict=True):
            same = detections.category == category
            assert same.any()
            assert np.linalg.norm(detections.center_m[same, :2] - center[:2], axis=1).min() < 0.5
    history = load_checkpoint(path)["history"]
    assert history[-1]["loss"] < 0.2 * history[0]["loss"]
    assert (tmp_path / "loss_curve.png").stat().st_size > 0


def _lowered(frame: Frame, drop_m: float, slope_x: float) -> Frame:
    """The frame on a road `drop_m` lower under the ego vehicle and tilted by `slope_x` (dz per m along x)."""
    assert frame.lidar is not None and frame.annotations is not None
    points = frame.lidar.points_xyz_m.copy()
    points[:, 2] += (slope_x * points[:, 0] - drop_m).astype(points.dtype)
    center = frame.annotations.center_m.copy()
    center[:, 2] += slope_x * center[:, 0] - drop_m
    return replace(frame, lidar=replace(frame.lidar, points_xyz_m=points), annotations=replace(frame.annotations, center_m=center))


@pytest.mark.slow
def test_a_ground_relative_detector_trained_on_a_flat_road_finds_objects_below_it(tmp_path: Path) -> None:
    """Trained on flat ground only, it finds every object of a road 0.4 m lower and sloped 3% at the right height; the
    same detector reading absolute heights does not."""
    frames = [_scene(2), _scene(3)]
    found = {}
    for ground_relative in (True, False):
        cfg = _tiny_cfg(60)
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"out_stride": 2, "ground_relative": ground_relative})})
        path = fit(cfg, [Sample(f, ()) for f in frames], tmp_path / str(ground_relative), show_progress=False)
        detector = Detector.from_checkpoint(path)
        hits = []
        for frame in frames:
            lowered = _lowered(frame, 0.4, 0.03)
            truth = lowered.annotations
            assert truth is not None
            detections = detector.run(lowered)
            for center, category in zip(truth.center_m, truth.category, strict=True):
                same = detections.category == category
                distance = np.linalg.norm(detections.center_m[same, :2] - center[:2], axis=1) if same.any() else np.array([np.inf])
                nearest = int(np.argmin(distance))
                hits.append(distance[nearest] < 0.5 and abs(detections.center_m[same][nearest, 2] - center[2]) < 0.3)
        found[ground_relative] = float(np.mean(hits))
    assert found[True] == 1.0
    assert found[False] < 0.5


def test_training_pastes_banked_objects_into_each_sample() -> None:
    """With `paste_objects`, the task banks the samples' pedestrians and every augmented sample gets more pedestrian
    targets than it annotates (the scenes leave room for them); without augmentation nothing is pasted."""
    samples = [Sample(_scene(seed), ()) for seed in (4, 5, 6)]
    cfg = _tiny_cfg(1, augment=True, paste_objects={"PEDESTRIAN": 2})
    task = DetectionTask(cfg, samples)
    assert list(task.banks) == ["single"] and len(task.banks["single"].objects["PEDESTRIAN"]) == 9
    _, targets = task.make_batch(np.arange(3), 0, torch.device("cpu"))
    annotated = [_annotated_pedestrians(s.frame) for s in samples]
    pedestrians = [int(sample_targets[1].mask.sum()) for sample_targets in targets]
    assert all(p > a for p, a in zip(pedestrians, annotated, strict=True))
    assert DetectionTask(_tiny_cfg(1, paste_objects={"PEDESTRIAN": 2}), samples).banks == {}


def test_single_sweep_samples_keep_only_the_current_sweep_and_pasted_objects_too() -> None:
    """With `single_sweep_probability` 1 every augmented two-sweep sample keeps the current sweep's points alone (its
    own and the pasted objects'); with 0 none does; with 0.5 about half of them do; without augmentation none does."""
    samples = [Sample(_scene(seed, 200_000_000), (_scene(seed + 10, 100_000_000),)) for seed in (4, 5, 6)]
    lag = POINT_FEATURES.index("time_lag_s")

    def single_shares(probability: float, augment: bool = True) -> list[bool]:
        cfg = _tiny_cfg(1, augment=augment, paste_objects={"PEDESTRIAN": 2}, single_sweep_probability=probability)
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"num_sweeps": 2})})
        bank = DetectionTask(cfg, samples).banks.get("single")
        shares = []
        for draw in range(40):
            sample = samples[draw % len(samples)]
            points, targets = prepare(sample, cfg, np.random.default_rng(draw) if augment else None, bank)
            current = points[:, lag] == 0.0
            assert current.any()
            if augment:  # banked pedestrians were pasted in either case
                assert int(targets[1].mask.sum()) > _annotated_pedestrians(sample.frame)
            shares.append(bool(current.all()))
        return shares

    assert all(single_shares(1.0))
    assert not any(single_shares(0.0))
    assert 10 <= sum(single_shares(0.5)) <= 30
    assert not any(single_shares(1.0, augment=False))


def test_pasted_objects_take_the_samples_intensity_response() -> None:
    """The intensity response is drawn once per sample after pasting: scene returns of intensity 1 and pasted ones of
    0.25 both go through `0.5 * intensity ** 2` (0.5 and 0.03125); without a response they keep their intensities."""

    def dimmed(frame: Frame, intensity: float) -> Frame:
        assert frame.lidar is not None
        return replace(frame, lidar=replace(frame.lidar, intensity=np.full(len(frame.lidar), intensity, np.float32)))

    bank_samples = [Sample(dimmed(_scene(seed), 0.25), ()) for seed in (4, 5, 6)]
    sample = Sample(_scene(7), ())
    for response, expected in (({"intensity_gain_range": (0.5, 0.5), "intensity_gamma_range": (2.0, 2.0)}, (0.03125, 0.5)), ({}, (0.25, 1.0))):
        cfg = _tiny_cfg(1, augment=True, paste_objects={"PEDESTRIAN": 2}, **response)
        bank = DetectionTask(cfg, bank_samples).banks["single"]
        points, _ = prepare(sample, cfg, np.random.default_rng(0), bank)
        values, counts = np.unique(points[:, 3], return_counts=True)
        np.testing.assert_allclose(values, expected)
        assert counts.min() >= 2 * MIN_POINTS  # two pedestrians pasted


def test_each_rig_pastes_only_objects_its_own_rig_recorded() -> None:
    """Samples of two rigs, one whose returns all have intensity 0.25 and one whose have 1: each rig gets its own bank,
    and every pasted point of a batch keeps the intensity of the sample's own rig."""

    def lit(frame: Frame, intensity: float) -> Frame:
        assert frame.lidar is not None
        return replace(frame, lidar=replace(frame.lidar, intensity=np.full(len(frame.lidar), intensity, np.float32)))

    samples = [Sample(lit(_scene(seed), 0.25), (), "av2") for seed in (4, 5)] + [Sample(lit(_scene(seed), 1.0), (), "single") for seed in (6, 7)]
    task = DetectionTask(_tiny_cfg(1, augment=True, paste_objects={"PEDESTRIAN": 2}), samples)
    assert sorted(task.banks) == ["av2", "single"]
    assert {len(bank.objects["PEDESTRIAN"]) for bank in task.banks.values()} == {6}
    pillars, targets = task.make_batch(np.arange(4), 0, torch.device("cpu"))
    sample_of_point = pillars.pillar_coords[pillars.point_pillar, 0]
    for index, (sample, intensity) in enumerate(zip(samples, (0.25, 0.25, 1.0, 1.0), strict=True)):
        assert int(targets[index][1].mask.sum()) > _annotated_pedestrians(sample.frame)
        assert torch.unique(pillars.points[sample_of_point == index, 3]).tolist() == [intensity]


class _Interrupted(Exception):
    pass


@pytest.mark.slow
def test_resume_reproduces_an_uninterrupted_run(tmp_path: Path) -> None:
    samples = [Sample(_scene(4), ()), Sample(_scene(5), ())]
    sensor = {"ground_shift_m": 0.2, "intensity_gain_range": (0.5, 2.0), "laser_keep_range": (0.5, 1.0), "point_keep_range": (0.7, 1.0)}
    cfg = _tiny_cfg(3, augment=True, **sensor)
    straight = fit(cfg, samples, tmp_path / "straight", show_progress=False)

    def stop_after_second_epoch(metrics: dict[str, float], path: Path | None) -> None:
        assert path is not None and path.name == "last.pt"
        if metrics["epoch"] == 1:
            raise _Interrupted

    with pytest.raises(_Interrupted):
        fit(cfg, samples, tmp_path / "resumed", show_progress=False, on_checkpoint=stop_after_second_epoch)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt", "detection")["epoch"] == 1
    epochs_seen: list[int] = []
    resumed = fit(cfg, samples, tmp_path / "resumed", show_progress=False, on_checkpoint=lambda m, p: epochs_seen.append(int(m["epoch"])))
    assert epochs_seen == [2]
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]


def test_checkpoint_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"missing\.pt: checkpoint not found"):
        Detector.from_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(CheckpointError, match=r"bad\.pt: not a drivestack checkpoint"):
        Detector.from_checkpoint(bad)
    tracker = Path(__file__).resolve().parents[2] / "perception" / "tracking" / "checkpoints" / "ab3dmot_synth.pt"
    with pytest.raises(CheckpointError, match=r"ab3dmot_synth\.pt: a tracking checkpoint, expected a detection checkpoint"):
        Detector.from_checkpoint(tracker)
    (tmp_path / "corrupt.pt").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match=r"corrupt\.pt: not a readable drivestack checkpoint"):
        Detector.from_checkpoint(tmp_path / "corrupt.pt")


def test_shipped_config_files_validate() -> None:
    for path in sorted((REPO / "configs" / "detection").glob("*.yaml")):
        load_config(path, DetectionConfig)
    bad = {"model": {"tasks": [["NOT_A_CLASS"]]}}
    with pytest.raises(ValidationError, match=r"model\.tasks\n  Value error, unknown categories \['NOT_A_CLASS'\]"):
        DetectionConfig.model_validate(bad)
    with pytest.raises(ValidationError, match=r"synth\.styles\n  Value error, styles must name styles among default, .*got \['suburb'\]"):
        DetectionConfig.model_validate({"synth": {"styles": ["suburb"]}})


def test_training_logs_take_the_styles_in_turn_and_the_citys_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import scenes.synth.world as world

    simulated: list[tuple[str, bool, bool, bool]] = []
    simulate_log = world.simulate_log

    def recording(config: world.SynthConfig, seed: int, index: int) -> world.SynthLog:
        simulated.append((config.style, config.bright_people, config.vehicle_paint, config.pedestrian_groups))
        return simulate_log(config, seed, index)

    monkeypatch.setattr(world, "simulate_log", recording)
    synth = {"num_logs": 3, "seconds": 0.2, "styles": ["default", "downtown"], "bright_people": True, "pedestrian_groups": True}
    cfg = DetectionConfig.model_validate({"model": TINY_MODEL, "synth": synth})
    samples = synth_samples(cfg, show_progress=False)
    assert simulated == [("default", True, False, True), ("downtown", True, False, True), ("default", True, False, True)]
    assert {sample.frame.log_id for sample in samples} == {world.log_id(0, index) for index in range(3)}


def test_config_error_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "det.yaml"
    path.write_text("model:\n  pillar_channels: many\n")
    with pytest.raises(ConfigError, match="det.yaml.*model.pillar_channels"):
        load_config(path, DetectionConfig)


def test_detector_handles_empty_and_missing_sweeps() -> None:
    cfg = DetectionConfig.model_validate({"model": TINY_MODEL})
    detector = Detector(cfg)
    empty = LidarSweep(5, np.zeros((0, 3), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int16))
    boxes = detector.run(Frame("log", 5, SE3.identity(), empty))
    assert len(boxes) == 0 and boxes.frame == "ego"  # an empty BEV leaves every heatmap at its 0.01 prior
    with pytest.raises(ValueError, match="Frame.lidar"):
        detector.run(Frame("log", 6, SE3.identity()))


@pytest.mark.slow
def test_train_detection_command_on_synth(tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from pipelines.cli import app

    config = tmp_path / "det.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": {**{k: list(v) if isinstance(v, tuple) else v for k, v in TINY_MODEL.items()}},
                "train": {"epochs": 1, "batch_size": 2, "num_threads": 1},
                "synth": {"num_logs": 1, "seconds": 0.4},
            }
        )
    )
    result = CliRunner().invoke(app, ["train", "detection", "--config", str(config), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert Detector.from_checkpoint(tmp_path / "run" / "detector.pt").cfg.model.pillar_channels == 16
    assert (tmp_path / "run" / "loss_curve.png").is_file()


@pytest.mark.slow
def test_warm_start_from_a_checkpoint(tmp_path: Path) -> None:
    samples = [Sample(_scene(6), ()), Sample(_scene(7), ())]
    trained = fit(_tiny_cfg(20), samples, tmp_path / "first", show_progress=False)
    cold = load_checkpoint(fit(_tiny_cfg(1), samples, tmp_path / "cold", show_progress=False))["history"][0]["loss"]
    warm_cfg = _tiny_cfg(1, init_checkpoint=str(trained))
    warm = load_checkpoint(fit(warm_cfg, samples, tmp_path / "warm", show_progress=False))["history"][0]["loss"]
    assert warm < 0.5 * cold
    other = DetectionConfig.model_validate({**warm_cfg.model_dump(), "model": {**warm_cfg.model.model_dump(), "head_channels": 8}})
    with pytest.raises(CheckpointError, match="first/detector.pt: train.init_checkpoint has another model config"):
        fit(other, samples, tmp_path / "other", show_progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("added_index", [1, 2])
def test_a_head_added_to_a_frozen_network_leaves_its_detections_alone(tmp_path: Path, added_index: int) -> None:
    samples = [Sample(_scene(6), ()), Sample(_scene(7), ())]
    base_cfg = _tiny_cfg(3)
    base = fit(base_cfg, samples, tmp_path / "base", show_progress=False)
    tasks = [list(task) for task in base_cfg.model.tasks]
    tasks.insert(added_index, ["CONSTRUCTION_CONE", "BOLLARD"])
    fed = int(added_index == len(tasks) - 1)  # appended last: its head reads the backbone (its own wider conv)
    cfg = _tiny_cfg(3, init_checkpoint=str(base), freeze_initialised=True)
    cfg = DetectionConfig.model_validate({**cfg.model_dump(), "model": {**cfg.model.model_dump(), "tasks": tasks, "backbone_fed_tasks": fed}})
    added = fit(cfg, samples, tmp_path / "added", show_progress=False)
    before, after = load_checkpoint(base)["state_dict"], load_checkpoint(added)["state_dict"]
    moved = {"heads.1.": "heads.2."} if added_index == 1 else {}  # inserted before the pedestrians: theirs is the third head
    for key, value in before.items():
        renamed = next((key.replace(old, new, 1) for old, new in moved.items() if key.startswith(old)), key)
        assert torch.equal(after[renamed], value), key  # weights and BatchNorm statistics alike
    fresh = CenterPointNet(cfg.model).state_dict()
    new_head = f"heads.{added_index}."
    # Input channels: the backbone's (twice its first stage's 16) or the shared conv's (head_channels, 16).
    assert fresh[new_head + "conv.0.weight"].shape[1] == (32 if fed else 16)
    assert not torch.equal(after[new_head + "heatmap.weight"], fresh[new_head + "heatmap.weight"])
    frame = _scene(8)
    old, new = Detector.from_checkpoint(base).run(frame), Detector.from_checkpoint(added).run(frame)
    kept = np.isin(new.category, old.category)
    assert new.score is not None and old.score is not None
    np.testing.assert_array_equal(new.category[kept], old.category)
    np.testing.assert_allclose(new.center_m[kept], old.center_m, atol=1e-5)
    np.testing.assert_allclose(new.score[kept], old.score, atol=1e-6)


def test_warm_start_with_tasks_removed_or_frozen_without_init_is_refused(tmp_path: Path) -> None:
    samples = [Sample(_scene(6), ())]
    base = fit(_tiny_cfg(1), samples, tmp_path / "base", show_progress=False)
    cfg = _tiny_cfg(1, init_checkpoint=str(base))
    fewer = DetectionConfig.model_validate({**cfg.model_dump(), "model": {**cfg.model.model_dump(), "tasks": [["REGULAR_VEHICLE"]]}})
    with pytest.raises(CheckpointError, match="base/detector.pt: .*only added tasks may differ"):
        fit(fewer, samples, tmp_path / "fewer", show_progress=False)
    with pytest.raises(InputError, match="base/detector.pt: train.freeze_initialised leaves nothing to train"):
        fit(_tiny_cfg(1, init_checkpoint=str(base), freeze_initialised=True), samples, tmp_path / "same", show_progress=False)
    rewired = DetectionConfig.model_validate({**cfg.model_dump(), "model": {**cfg.model.model_dump(), "backbone_fed_tasks": 1}})
    with pytest.raises(CheckpointError, match="only added tasks may differ"):  # a trained head would read other features
        fit(rewired, samples, tmp_path / "rewired", show_progress=False)
    with pytest.raises(ValidationError, match="freeze_initialised needs train.init_checkpoint"):
        _tiny_cfg(1, freeze_initialised=True)
    with pytest.raises(ValidationError, match="backbone_fed_tasks .2. must leave at least one of the 2 tasks"):
        ModelConfig.model_validate({**TINY_MODEL, "backbone_fed_tasks": 2})
