"""Sequential finetuning: matching tracker outputs to ground truth (hand-made cases) and the finetuning step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pytest
import torch

from forecasting.config import FeatureConfig, ForecastingConfig, ModelConfig, OptimConfig, TrackerNoiseConfig
from forecasting.dataset import build_samples, scenario_from_tracks, scenarios_from_tracks
from forecasting.finetune import FinetuneConfig, finetune, finetune_samples, match_tracks
from forecasting.train import fit, load_checkpoint
from perception.tracking.tracker import Tracker
from scenes.categories import CATEGORY_ID
from scenes.records import Boxes3D, Tracks

FEATURES = FeatureConfig(history_steps=3, horizon_steps=2, step_s=0.5, max_neighbors=2, max_lanes=0)
STEP_NS = 500_000_000


def _tracks(log_id: str, paths: Mapping[str, Sequence[tuple[float, float] | None]], period_ns: int = STEP_NS) -> Tracks:
    """Tracks (2 Hz unless `period_ns` says otherwise) from per-id xy paths (None: not observed at that step)."""
    steps = len(next(iter(paths.values())))
    boxes = []
    for step in range(steps):
        ids = [agent for agent, path in paths.items() if path[step] is not None]
        xy = np.array([paths[agent][step] for agent in ids], dtype=np.float64).reshape(-1, 2)
        boxes.append(
            Boxes3D(
                np.column_stack([xy, np.zeros(len(ids))]),
                np.tile([4.0, 2.0, 1.5], (len(ids), 1)),
                np.zeros(len(ids)),
                np.full(len(ids), CATEGORY_ID["REGULAR_VEHICLE"]),
                track_id=np.array(ids, dtype=str),
                frame="city",
            )
        )
    return Tracks(log_id, np.arange(steps, dtype=np.int64) * period_ns + period_ns, tuple(boxes))


def _line(x0: float, y: float, dx: float, steps: int = 6) -> list[tuple[float, float]]:
    return [(x0 + dx * i, y) for i in range(steps)]


def test_hungarian_matching_on_hand_made_tracks() -> None:
    gt = _tracks("log", {"A": _line(0, 0, 1), "B": _line(0, 3, 1), "C": _line(50, 0, 0)})
    # p1 follows A with 0.5 m error; p2 lies between A and B (1.2 m from B, 1.8 m from A); p3 is 2.5 m off C.
    predicted = _tracks(
        "log",
        {"p1": _line(0, 0.5, 1), "p2": _line(0, 1.8, 1), "p3": _line(50, 2.5, 0), "p4": [None, None, *_line(2, 0.1, 1, 4)]},
    )
    index = 2
    pred_scenario = scenario_from_tracks(predicted, None, index, FEATURES)
    gt_scenario = scenario_from_tracks(gt, None, index, FEATURES)
    hungarian = match_tracks(pred_scenario, gt_scenario, FinetuneConfig())
    # p1 and p4 both follow A: p4's mean past error (0.1 m, one shared step) beats p1's 0.5 m, so the one-to-one
    # assignment gives A to p4, B to p2 (1.2 m); p1 is then only 2.5 m from B: unmatched, as is p3 (2.5 m from C).
    assert hungarian == {"p4": "A", "p2": "B"}
    nearest = match_tracks(pred_scenario, gt_scenario, FinetuneConfig(assignment="nearest"))
    assert nearest == {"p1": "A", "p2": "B", "p4": "A"}
    strict = match_tracks(pred_scenario, gt_scenario, FinetuneConfig(max_mean_l2_m=1.0, min_shared_steps=2))
    assert strict == {"p1": "A"}


def test_samples_take_the_tracker_past_and_the_matched_ground_truth_future() -> None:
    gt = _tracks("log", {"A": _line(0, 0, 1), "B": _line(0, 40, 2)})
    predicted = _tracks("log", {"p": _line(0, 0.6, 1), "ghost": _line(20, 20, 0)})
    batch, counts = finetune_samples(predicted, gt, None, FEATURES, FinetuneConfig())
    assert batch is not None
    # Prediction times with 3 past and 2 future steps in a 6-step log: steps 2 and 3; "ghost" is never supervised.
    assert counts == {"tracks": 4, "matched": 2, "samples": 2}
    assert len(batch) == 2
    np.testing.assert_allclose(batch.origin_xy_m, [[2.0, 0.6], [3.0, 0.6]])
    # Future in the agent frame (heading 0, origin at the tracker's position): GT A is 0.6 m to the right (-y).
    np.testing.assert_allclose(batch.future_m[0], [[1.0, -0.6], [2.0, -0.6]], atol=1e-6)
    assert batch.future_valid.all()
    # The ghost remains visible as a neighbour of the supervised agent.
    assert batch.neighbor_mask[:, 0].all()


def test_prediction_times_of_a_10_hz_tracker() -> None:
    period_ns = STEP_NS // 5
    # 3.1 s of 10 Hz frames (t = 0.1 .. 3.1 s), two agents moving at 1 m/s; tracker and GT agree.
    gt = _tracks("log", {"A": _line(0, 0, 0.1, 31), "B": _line(0, 9, 0.1, 31)}, period_ns)
    predicted = _tracks("log", {"a": _line(0, 0.2, 0.1, 31), "b": _line(0, 9.2, 0.1, 31)}, period_ns)
    # A prediction time needs 1 s of past (3 steps of 0.5 s) and 1 s of future: t in [1.1 s, 2.1 s].
    every_frame, counts = finetune_samples(predicted, gt, None, FEATURES, FinetuneConfig(sample_every_s=0.1))
    assert every_frame is not None
    assert counts == {"tracks": 22, "matched": 22, "samples": 22}
    np.testing.assert_allclose(np.unique(every_frame.origin_xy_m[:, 0]), 0.1 * np.arange(10, 21), atol=1e-9)
    every_step, counts = finetune_samples(predicted, gt, None, FEATURES, FinetuneConfig(sample_every_s=0.5))
    assert every_step is not None
    assert counts["samples"] == 6
    np.testing.assert_allclose(np.unique(every_step.origin_xy_m[:, 0]), [1.0, 1.5, 2.0], atol=1e-9)
    # Past from the tracker (0.2 m off), future from GT, on the 0.5 s grid whatever the tracker's rate.
    np.testing.assert_allclose(every_step.future_m[0], [[0.5, -0.2], [1.0, -0.2]], atol=1e-6)


def _tiny_config() -> ForecastingConfig:
    return ForecastingConfig(
        seed=0,
        features=FEATURES,
        model=ModelConfig(hidden_dim=16, category_dim=4, num_modes=5),
        optim=OptimConfig(epochs=2, batch_size=8, learning_rate=1e-2),
    )


def test_finetuning_starts_from_the_pretrained_weights_and_is_deterministic(tmp_path) -> None:
    cfg = _tiny_config().model_copy(update={"tracker_noise": TrackerNoiseConfig(velocity_std_m_per_s=0.5)})
    gt = _tracks("log", {"A": _line(0, 0, 1, 12), "B": _line(0, 5, 2, 12)})
    pretrain_samples = build_samples(scenarios_from_tracks(gt, None, cfg.features), cfg.features)
    pretrained = fit(cfg, pretrain_samples, tmp_path / "pre", progress=False)
    noisy = _tracks("log", {"a": [(x + 0.3 * (-1) ** i, y) for i, (x, y) in enumerate(_line(0, 0, 1, 12))], "b": _line(0, 5.4, 2, 12)})
    samples, counts = finetune_samples(noisy, gt, None, cfg.features, FinetuneConfig())
    assert samples is not None
    assert counts["samples"] == len(samples) == 2 * 8

    losses: list[float] = []
    ft_cfg = FinetuneConfig(epochs=3, learning_rate=1e-3, batch_size=8)
    first = finetune(pretrained, samples, tmp_path / "ft1", ft_cfg, on_checkpoint=lambda m, _: losses.append(m["loss"]), progress=False)
    second = finetune(pretrained, samples, tmp_path / "ft2", ft_cfg, progress=False)
    a, b = load_checkpoint(first), load_checkpoint(second)
    assert a["config"]["optim"]["epochs"] == 3 and a["config"]["optim"]["learning_rate"] == pytest.approx(1e-3)
    # the pretraining's simulated tracker noise is not added to a real tracker's outputs
    assert load_checkpoint(pretrained)["config"]["tracker_noise"]["velocity_std_m_per_s"] == 0.5
    assert not TrackerNoiseConfig.model_validate(a["config"]["tracker_noise"]).enabled
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), name
    assert len(losses) == 3 and losses[-1] < losses[0]
    # Warm start: the first finetuning epoch begins from the pretrained network, not from a fresh initialisation.
    fresh = fit(cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"epochs": 1})}), samples, tmp_path / "scratch", progress=False)
    scratch_loss = load_checkpoint(fresh)["history"][0]["loss"]
    assert losses[0] < scratch_loss


def test_finetune_cli_runs_the_stack_then_finetunes(tmp_path) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    cfg = _tiny_config().model_copy(update={"tracker_noise": TrackerNoiseConfig(velocity_std_m_per_s=0.5)})
    gt = _tracks("log", {"A": _line(0, 0, 1, 12), "B": _line(0, 5, 2, 12)})
    pretrained = fit(cfg, build_samples(scenarios_from_tracks(gt, None, cfg.features), cfg.features), tmp_path / "pre", progress=False)
    config = tmp_path / "finetune.yaml"
    config.write_text(
        f"pretrained: {pretrained}\nstack:\n  detector: oracle\n  oracle:\n    center_noise_m: 0.3\n"
        "finetune:\n  epochs: 1\n  batch_size: 32\n  sample_every_s: 2.0\ntrain_split:\n  logs: 1\n  seconds: 4.0\n  seed: 3\n  lidar_beams: null\n"
    )
    out = tmp_path / "ft"
    result = CliRunner().invoke(app, ["finetune", "forecasting", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(out / "forecaster.pt")["config"]["optim"]["epochs"] == 1
    # Detector outputs -> tracker refit -> forecaster: the refitted tracker measured the oracle's 0.3 m jitter.
    refitted = Tracker.from_checkpoint(out / "tracker" / "tracker.pt").cfg.noise.position_m
    assert 0.2 < refitted < 0.4
    (saved,) = (out / "tracks").glob("*.npz")
    again = CliRunner().invoke(app, ["finetune", "forecasting", "--config", str(config), "--out", str(tmp_path / "ft2"), "--on-tracks", str(saved.parent)])
    assert again.exit_code == 0, again.output
    first, second = load_checkpoint(out / "forecaster.pt"), load_checkpoint(tmp_path / "ft2" / "forecaster.pt")
    for name, tensor in first["state_dict"].items():
        assert torch.equal(tensor, second["state_dict"][name]), name
