"""The training harness: one checkpoint format, the one loop (seeding, resume, metrics), in-process and on Ray Train.

A tiny linear regression is the module plugged in. One Ray session is shared by the Ray tests (start-up is the
expensive part on 2 CPUs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from scenes import __version__
from scenes.config import StrictConfig
from scenes.parallel import map_logs
from scenes.training.checkpoint import CHECKPOINT_FORMAT, CheckpointError, first_difference, load_checkpoint, save_checkpoint
from scenes.training.distributed import worker_context
from scenes.training.harness import EstimationTask, LoopSettings, OnCheckpoint, TrainingTask, estimate, fit
from scenes.training.history import CURVE_FILENAME, read_history
from scenes.training.launch import train

REPO_ROOT = Path(__file__).resolve().parents[2]
HEALTH_CHECK_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
WEIGHTS = np.array([1.5, -2.0, 0.5, 3.0], np.float32)


class RegressionConfig(StrictConfig):
    seed: int = 0
    epochs: int = 4
    batch_size: int = 16
    learning_rate: float = 0.3
    crash_epoch: int | None = None
    crash_marker: str | None = None
    epoch_log: str | None = None


def regression_dataset(num_samples: int = 64, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(num_samples, 4)).astype(np.float32)
    targets = inputs @ WEIGHTS + 0.1 * rng.normal(size=num_samples)
    return inputs, targets.astype(np.float32)[:, None]


@dataclass(frozen=True)
class RegressionSpec:
    """A dataset spec: only this travels to the Ray workers, which build the samples themselves."""

    num_samples: int = 64

    def open(self) -> tuple[np.ndarray, np.ndarray]:
        return regression_dataset(self.num_samples)


class RegressionTask(TrainingTask):
    stage = "regression"
    final_name = "model.pt"
    config: RegressionConfig

    def __init__(self, cfg: RegressionConfig, data: tuple[np.ndarray, np.ndarray]) -> None:
        self.config = cfg
        self.inputs, self.targets = (torch.from_numpy(array) for array in data)
        self.epochs_started: set[int] = set()
        self.loop = LoopSettings(
            epochs=cfg.epochs, batch_size=cfg.batch_size, learning_rate=cfg.learning_rate, weight_decay=0.0,
            seed=cfg.seed, grad_clip_norm=10.0, schedule="cosine",
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.inputs)

    def build_model(self) -> torch.nn.Module:
        return torch.nn.Linear(4, 1)

    def make_batch(self, indices: np.ndarray, epoch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        context = worker_context()
        cfg = self.config
        if cfg.epoch_log is not None and epoch not in self.epochs_started:
            self.epochs_started.add(epoch)
            with open(f"{cfg.epoch_log}.{context.rank}", "a") as log:
                log.write(f"{os.getpid()} {epoch}\n")
        if cfg.crash_marker is not None and epoch == cfg.crash_epoch and context.rank == context.world_size - 1:
            if not Path(cfg.crash_marker).exists():
                Path(cfg.crash_marker).write_text(f"killed rank {context.rank} at epoch {epoch}")
                os._exit(1)
        index = torch.from_numpy(indices)
        return self.inputs[index].to(device), self.targets[index].to(device)

    def loss(self, model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, Mapping[str, float]]:
        inputs, targets = batch
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        return loss, {"rmse": float(loss.detach().sqrt())}


def final_weights(path: Path) -> np.ndarray:
    state = load_checkpoint(path, "regression")["state_dict"]
    return torch.cat([state["weight"].flatten(), state["bias"]]).numpy()


def losses(out_dir: Path) -> list[float]:
    return [row["loss"] for row in read_history(out_dir)]


# ---------------------------------------------------------------------------------------------------------------------
# The checkpoint format
# ---------------------------------------------------------------------------------------------------------------------


def test_checkpoint_round_trip_and_errors_name_the_file(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "a.pt", stage="regression", state_dict={"w": torch.ones(2)}, config=RegressionConfig(), epoch=3)
    payload = load_checkpoint(path, "regression")
    assert payload["format"] == CHECKPOINT_FORMAT and payload["drivestack_version"] == __version__
    assert payload["config"] == RegressionConfig().model_dump(mode="json") and payload["epoch"] == 3
    assert torch.equal(payload["state_dict"]["w"], torch.ones(2))
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)  # readable like any file the user writes
    with pytest.raises(CheckpointError, match=r"a\.pt: a regression checkpoint, expected a detection checkpoint"):
        load_checkpoint(path, "detection")
    with pytest.raises(CheckpointError, match=r"missing\.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "truncated.pt").write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"truncated\.pt: not a readable drivestack checkpoint"):
        load_checkpoint(tmp_path / "truncated.pt")
    torch.save({"state_dict": {}}, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match=r"old\.pt: not a drivestack checkpoint: format is None"):
        load_checkpoint(tmp_path / "old.pt")
    torch.save({"format": CHECKPOINT_FORMAT, "stage": "regression"}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match=r"partial\.pt: checkpoint lacks drivestack_version, config, state_dict"):
        load_checkpoint(tmp_path / "partial.pt")
    with pytest.raises(ValueError, match="reserved keys"):
        save_checkpoint(tmp_path / "b.pt", stage="x", state_dict={}, config={}, stage_name=None, format=1)


def test_a_crafted_checkpoint_cannot_run_code(tmp_path: Path, shell_payload: Any) -> None:
    torch.save({"format": CHECKPOINT_FORMAT, "payload": shell_payload}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=r"evil\.pt: not a readable drivestack checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not shell_payload.marker.exists()


def test_first_difference_names_the_dotted_key() -> None:
    assert first_difference({"a": {"b": [1, 2]}}, {"a": {"b": [1, 2]}}) is None
    assert first_difference({"a": {"b": [1, 2]}}, {"a": {"b": [1, 3]}}) == "a.b[1]"
    assert first_difference({"a": 1, "z": 1}, {"a": 1}) == "z"
    assert first_difference({"optim": {"epochs": 3}}, {"optim": {"epochs": 4}}) == "optim.epochs"


# ---------------------------------------------------------------------------------------------------------------------
# The loop, in-process
# ---------------------------------------------------------------------------------------------------------------------


def test_fit_learns_writes_metrics_plot_and_checkpoints(tmp_path: Path) -> None:
    final = fit(RegressionTask(RegressionConfig(epochs=10), regression_dataset()), tmp_path, show_progress=False)
    assert final == tmp_path / "model.pt"
    curve = losses(tmp_path)
    assert len(curve) == 10 and curve[-1] < curve[0] / 20
    np.testing.assert_allclose(final_weights(final)[:4], WEIGHTS, atol=0.5)
    history = read_history(tmp_path)
    assert [row["epoch"] for row in history] == list(range(10))
    assert history[0]["learning_rate"] == pytest.approx(0.3) and history[5]["learning_rate"] == pytest.approx(0.15)
    assert all(row["rmse"] ** 2 <= row["loss"] + 1e-6 for row in history)  # mean of roots <= root of means
    assert (tmp_path / CURVE_FILENAME).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    last = load_checkpoint(tmp_path / "last.pt", "regression")
    assert last["epoch"] == 9 and len(last["history"]) == 10 and "optimizer" in last


class _FrozenBias(RegressionTask):
    def build_model(self) -> torch.nn.Module:
        model = torch.nn.Linear(4, 1)
        model.bias.requires_grad_(False)
        return model


def test_the_default_optimizer_group_holds_only_trainable_parameters(tmp_path: Path) -> None:
    torch.manual_seed(0)
    initial_bias = float(torch.nn.Linear(4, 1).bias.detach())  # build_model runs right after the seed (0) is set
    final = fit(_FrozenBias(RegressionConfig(epochs=10), regression_dataset()), tmp_path, show_progress=False)
    weights = final_weights(final)
    assert weights[4] == initial_bias and np.abs(weights[:4] - WEIGHTS).max() < 0.5
    (group,) = load_checkpoint(tmp_path / "last.pt", "regression")["optimizer"]["param_groups"]
    assert len(group["params"]) == 1  # the weight alone: the frozen bias never reaches AdamW


class _Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    cfg = RegressionConfig(epochs=4)
    straight = fit(RegressionTask(cfg, regression_dataset()), tmp_path / "straight", show_progress=False)

    def stop_after_second_epoch(metrics: dict[str, float], path: Path | None) -> None:
        assert path == tmp_path / "resumed" / "last.pt"
        if metrics["epoch"] == 1:
            raise _Interrupted

    with pytest.raises(_Interrupted):
        fit(RegressionTask(cfg, regression_dataset()), tmp_path / "resumed", on_checkpoint=stop_after_second_epoch, show_progress=False)
    seen: list[float] = []
    resumed = fit(
        RegressionTask(cfg, regression_dataset()), tmp_path / "resumed", on_checkpoint=lambda m, p: seen.append(m["epoch"]), show_progress=False
    )
    assert seen == [2.0, 3.0]
    np.testing.assert_array_equal(final_weights(resumed), final_weights(straight))
    assert losses(tmp_path / "resumed") == losses(tmp_path / "straight")


def test_resume_refuses_another_config(tmp_path: Path) -> None:
    fit(RegressionTask(RegressionConfig(epochs=1), regression_dataset()), tmp_path, show_progress=False)
    other = RegressionTask(RegressionConfig(epochs=1, learning_rate=0.5), regression_dataset())
    other.config_source = "configs/other.yaml"
    with pytest.raises(CheckpointError, match=r"last\.pt: was written with another config than configs/other\.yaml \(first difference: 'learning_rate'\)"):
        fit(other, tmp_path, show_progress=False)


def test_resume_reads_a_setting_added_since_the_run_began_as_its_default(tmp_path: Path) -> None:
    cfg = RegressionConfig(epochs=3)
    straight = fit(RegressionTask(cfg, regression_dataset()), tmp_path / "straight", show_progress=False)

    def stop_after_first_epoch(metrics: dict[str, float], path: Path | None) -> None:
        if metrics["epoch"] == 0:
            raise _Interrupted

    with pytest.raises(_Interrupted):
        fit(RegressionTask(cfg, regression_dataset()), tmp_path / "resumed", on_checkpoint=stop_after_first_epoch, show_progress=False)
    last = tmp_path / "resumed" / "last.pt"
    payload = torch.load(last, weights_only=True)
    del payload["config"]["crash_marker"]
    torch.save(payload, last)
    resumed = fit(RegressionTask(cfg, regression_dataset()), tmp_path / "resumed", show_progress=False)
    np.testing.assert_array_equal(final_weights(resumed), final_weights(straight))

    # A setting this version does not know still refuses the resume, by name.
    payload = torch.load(last, weights_only=True)
    payload["config"]["momentum"] = 0.9
    torch.save(payload, last)
    with pytest.raises(CheckpointError, match=r"first difference: 'momentum'"):
        fit(RegressionTask(cfg, regression_dataset()), tmp_path / "resumed", show_progress=False)


def test_seed_determines_the_run(tmp_path: Path) -> None:
    runs = [
        fit(RegressionTask(RegressionConfig(epochs=2, seed=seed), regression_dataset()), tmp_path / name, show_progress=False)
        for seed, name in ((0, "a"), (0, "b"), (1, "c"))
    ]
    np.testing.assert_array_equal(final_weights(runs[0]), final_weights(runs[1]))
    assert not np.array_equal(final_weights(runs[0]), final_weights(runs[2]))


def test_a_corrupt_last_checkpoint_is_named(tmp_path: Path) -> None:
    (tmp_path / "last.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match=r"last\.pt: not a readable drivestack checkpoint"):
        fit(RegressionTask(RegressionConfig(epochs=1), regression_dataset()), tmp_path, show_progress=False)


class _MeanEstimate(EstimationTask):
    stage = "mean"
    final_name = "mean.pt"

    def estimate(self) -> tuple[dict[str, torch.Tensor], RegressionConfig, dict[str, float]]:
        inputs, _ = regression_dataset()
        return {"mean": torch.from_numpy(inputs.mean(0))}, RegressionConfig(), {"samples": float(len(inputs))}


def test_estimation_tasks_write_the_same_checkpoint_format(tmp_path: Path) -> None:
    path = estimate(_MeanEstimate(), tmp_path, show_progress=False)
    payload = load_checkpoint(path, "mean")
    np.testing.assert_allclose(payload["state_dict"]["mean"].numpy(), regression_dataset()[0].mean(0))
    assert payload["statistics"] == {"samples": 64.0}
    assert read_history(tmp_path) == [{"epoch": 0.0, "samples": 64.0}]


def test_bad_arguments_are_rejected_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workers must be at least 1"):
        train(lambda data: RegressionTask(RegressionConfig(), data), regression_dataset(), tmp_path, workers=0)
    with pytest.raises(ValueError, match="give --workers N too"):
        train(lambda data: RegressionTask(RegressionConfig(), data), regression_dataset(), tmp_path, address="ray://x:10001")
    with pytest.raises(ValueError, match="give --workers N too"):
        map_logs(str, [1], address="auto")
    with pytest.raises(ValueError, match=r"epochs \(0\) and batch_size \(16\) must be >= 1"):
        RegressionTask(RegressionConfig(epochs=0), regression_dataset())
    with pytest.raises(ValueError, match="regression: no training samples"):
        fit(RegressionTask(RegressionConfig(), regression_dataset(0)), tmp_path, show_progress=False)


def test_cli_training_helper_runs_in_process_and_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    from pipelines.cli import run_training

    def factory(data: tuple[np.ndarray, np.ndarray]) -> RegressionTask:
        return RegressionTask(RegressionConfig(epochs=2), data)

    final = run_training("train regression", factory, RegressionSpec(), tmp_path, None, None)
    assert final == tmp_path / "model.pt" and len(read_history(tmp_path)) == 2
    with pytest.raises(typer.Exit) as exit_info:
        run_training("train regression", factory, RegressionSpec(), tmp_path, None, "auto")
    assert exit_info.value.exit_code == 2
    assert "error: --address connects to a Ray cluster" in capsys.readouterr().err


def test_plain_run_and_cli_help_do_not_import_ray() -> None:
    script = (
        "import sys\n"
        "from scenes.parallel import map_logs\n"
        "from scenes.training.launch import train\n"
        "from pipelines.cli import app\n"
        "from typer.testing import CliRunner\n"
        "assert CliRunner().invoke(app, ['train', 'detection', '--help']).exit_code == 0\n"
        "assert map_logs(abs, [-1, -2]) == [1, 2]\n"
        "print(sorted(name for name in sys.modules if name == 'ray' or name.startswith('ray.')))\n"
    )
    output = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "[]", output.stdout + output.stderr


# ---------------------------------------------------------------------------------------------------------------------
# On Ray Train (one local session for the module)
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    from scenes.ray_cluster import ensure_ray

    # Ray Train's controller polls its workers every 2 s by default; these runs last a few seconds.
    previous = os.environ.get(HEALTH_CHECK_ENV)
    os.environ[HEALTH_CHECK_ENV] = "0.2"
    ensure_ray(address=None, num_cpus=2)
    yield
    ray.shutdown()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    if previous is None:
        os.environ.pop(HEALTH_CHECK_ENV)
    else:
        os.environ[HEALTH_CHECK_ENV] = previous


def _factory(cfg: RegressionConfig) -> Callable[[tuple[np.ndarray, np.ndarray]], RegressionTask]:
    return lambda data: RegressionTask(cfg, data)


def _epochs_run(log: Path, rank: int) -> list[list[int]]:
    """The epochs that worker `rank` started, per worker process in the order they ran."""
    runs: dict[str, list[int]] = {}
    for line in Path(f"{log}.{rank}").read_text().splitlines():
        pid, epoch = line.split()
        runs.setdefault(pid, []).append(int(epoch))
    return list(runs.values())


@pytest.mark.slow
def test_two_workers_follow_the_one_worker_loss_curve_and_a_rerun_resumes(ray_session: None, tmp_path: Path) -> None:
    log = tmp_path / "epochs"
    single = train(_factory(RegressionConfig(epochs=4)), regression_dataset(), tmp_path / "single", show_progress=False)
    # Two epochs, then the same out_dir again: the second run resumes from the first one's checkpoint.
    first = RegressionConfig(epochs=4, epoch_log=str(log))
    with pytest.raises(_Interrupted):
        fit(RegressionTask(first, regression_dataset()), tmp_path / "double", show_progress=False, on_checkpoint=_stop_at(1))
    double = train(_factory(first), RegressionSpec(), tmp_path / "double", workers=2)
    assert double == tmp_path / "double" / "model.pt"
    assert _epochs_run(log, 0) == [[0, 1], [2, 3]] and _epochs_run(log, 1) == [[2, 3]]
    np.testing.assert_allclose(losses(tmp_path / "double"), losses(tmp_path / "single"), rtol=1e-4)
    np.testing.assert_allclose(final_weights(double), final_weights(single), rtol=1e-4, atol=1e-6)
    reported = [json.loads(path.read_text()) for path in (tmp_path / "double" / "ray").rglob("drivestack_checkpoint.json")]
    assert any(meta["final"] and meta["file"] == "model.pt" and meta["resume_file"] == "last.pt" for meta in reported)


def _stop_at(epoch: int) -> OnCheckpoint:
    def callback(metrics: dict[str, float], path: Path | None) -> None:
        if metrics["epoch"] == epoch:
            raise _Interrupted

    return callback


@pytest.mark.slow
def test_killed_worker_resumes_from_the_last_checkpoint(ray_session: None, tmp_path: Path) -> None:
    marker, log = tmp_path / "killed.txt", tmp_path / "epochs"
    cfg = RegressionConfig(epochs=4, crash_epoch=2, crash_marker=str(marker), epoch_log=str(log))
    final = train(_factory(cfg), regression_dataset(), tmp_path / "run", workers=2, max_failures=1)
    assert marker.read_text() == "killed rank 1 at epoch 2"
    assert [row["epoch"] for row in read_history(tmp_path / "run")] == [0, 1, 2, 3]
    # Rank 0's first process ran epochs 0-2 (or 0-1: rank 1 may die before rank 0 starts epoch 2); its second, after
    # the restart, from the latest registered checkpoint, not from 0.
    before, after = _epochs_run(log, 0)
    assert before in ([0, 1], [0, 1, 2]) and after[0] in (1, 2) and after == list(range(after[0], 4))
    reference = train(_factory(RegressionConfig(epochs=4)), regression_dataset(), tmp_path / "ref", show_progress=False)
    np.testing.assert_allclose(losses(tmp_path / "run"), losses(tmp_path / "ref"), rtol=1e-4)
    np.testing.assert_allclose(final_weights(final), final_weights(reference), rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_parallel_map_and_synth_generation_equal_the_sequential_ones(ray_session: None) -> None:
    from scenes.synth.world import SynthConfig, simulate_logs

    assert map_logs(lambda value: value * value, [5, 1, 4, 2, 3], workers=2) == [25, 1, 16, 4, 9]
    config = SynthConfig(seconds=1.0, lidar_beams=None, cameras=())
    sequential = simulate_logs(config, seed=3, count=2)
    parallel = simulate_logs(config, seed=3, count=2, workers=2)
    assert len({log.log_id for log in sequential}) == 2
    for one, other in zip(sequential, parallel, strict=True):
        assert one.log_id == other.log_id and len(one.frames) == len(other.frames) == 10
        for frame, twin in zip(one.frames, other.frames, strict=True):
            assert frame.timestamp_ns == twin.timestamp_ns
            np.testing.assert_array_equal(frame.city_SE3_ego.translation, twin.city_SE3_ego.translation)
            assert frame.annotations is not None and twin.annotations is not None
            assert frame.annotations.track_id is not None and twin.annotations.track_id is not None
            np.testing.assert_array_equal(frame.annotations.center_m, twin.annotations.center_m)
            np.testing.assert_array_equal(frame.annotations.track_id, twin.annotations.track_id)
