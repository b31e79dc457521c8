"""Distributed training and inference on Ray, with a tiny linear-regression `fit` that obeys the training contract.

One Ray session is shared by the module (start-up is the expensive part on 2 CPUs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.distributed import (
    CURVE_FILENAME,
    DatasetSpec,
    DistributedError,
    RegistryDataset,
    WorkerContext,
    epoch_batches,
    map_logs,
    mean_across_workers,
    per_worker_batch_size,
    read_metrics_history,
    run_fit,
    shard_by_rank,
    simulate_logs,
    unwrap_model,
    worker_context,
    worker_device,
    wrap_model,
)
from scenes import __version__
from scenes.config import StrictConfig
from scenes.io import atomic_write

REPO_ROOT = Path(__file__).resolve().parents[2]
HEALTH_CHECK_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"


class RegressionConfig(StrictConfig):
    seed: int = 0
    epochs: int = 4
    batch_size: int = 16
    learning_rate: float = 0.1
    crash_epoch: int | None = None
    crash_marker: str | None = None


def regression_dataset(num_samples: int = 64, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(num_samples, 4)).astype(np.float32)
    targets = inputs @ np.array([1.5, -2.0, 0.5, 3.0], np.float32) + 0.1 * rng.normal(size=num_samples)
    return inputs, targets.astype(np.float32)[:, None]


@dataclass(frozen=True)
class RegressionSpec:
    """A `DatasetSpec`: only this travels to the Ray workers, which build the samples themselves."""

    num_samples: int = 64

    def open(self) -> tuple[np.ndarray, np.ndarray]:
        return regression_dataset(self.num_samples)


def regression_fit(
    cfg: RegressionConfig,
    dataset: tuple[np.ndarray, np.ndarray],
    out_dir: Path,
    *,
    on_checkpoint: Callable[[dict[str, float], Path | None], None] | None = None,
) -> Path:
    """A real `fit` to the training contract: DDP, rank-sharded global batches, rank-0 checkpoints, resume."""
    context = worker_context()
    torch.manual_seed(cfg.seed)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.learning_rate)
    start_epoch = 0
    resume_path = out_dir / "last.pt"
    if resume_path.exists():
        state = torch.load(resume_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = int(state["epoch"]) + 1
    device = worker_device()
    ddp_model = wrap_model(model.to(device))
    inputs, targets = (torch.from_numpy(array).to(device) for array in dataset)
    for epoch in range(start_epoch, cfg.epochs):
        if (
            cfg.crash_marker is not None
            and epoch == cfg.crash_epoch
            and context.rank == context.world_size - 1
            and not Path(cfg.crash_marker).exists()
        ):
            Path(cfg.crash_marker).write_text(f"killed rank {context.rank} at epoch {epoch}")
            os._exit(1)
        total, count = 0.0, 0
        for indices in epoch_batches(len(inputs), cfg.batch_size, cfg.seed, epoch, context):
            batch = torch.from_numpy(indices).to(device)
            loss = torch.nn.functional.mse_loss(ddp_model(inputs[batch]), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(indices)
            count += len(indices)
        metrics = {"epoch": float(epoch), "loss": mean_across_workers(total, count), "start_epoch": float(start_epoch)}
        path = None
        if context.is_primary:
            path = resume_path
            state = {"state_dict": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}
            with atomic_write(path) as temporary:
                torch.save(state, temporary)
        if on_checkpoint is not None:
            on_checkpoint(metrics, path)
    final = out_dir / "model.pt"
    if context.is_primary:
        payload = {"state_dict": unwrap_model(ddp_model).state_dict(), "config": cfg.model_dump(), "version": __version__}
        with atomic_write(final) as temporary:
            torch.save(payload, temporary)
    return final


def final_weights(path: Path) -> np.ndarray:
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return torch.cat([state["weight"].flatten(), state["bias"]]).numpy()


def losses(out_dir: Path) -> list[float]:
    return [row["loss"] for row in read_metrics_history(out_dir)]


# ---------------------------------------------------------------------------------------------------------------------
# Pure helpers (no Ray)
# ---------------------------------------------------------------------------------------------------------------------


def test_epoch_batches_union_over_workers_is_the_one_worker_batch() -> None:
    single = epoch_batches(50, 8, seed=3, epoch=2, context=WorkerContext(0, 1))
    assert len(single) == 6  # 50 // 8 global steps, incomplete last batch dropped
    parts = [epoch_batches(50, 8, seed=3, epoch=2, context=WorkerContext(rank, 4)) for rank in range(4)]
    for step, batch in enumerate(single):
        assert all(len(part[step]) == 2 for part in parts)
        assert sorted(np.concatenate([part[step] for part in parts])) == sorted(batch)
    assert not np.array_equal(single[0], epoch_batches(50, 8, seed=3, epoch=3, context=WorkerContext(0, 1))[0])


def test_global_batch_must_split_evenly_over_workers() -> None:
    assert per_worker_batch_size(12, WorkerContext(1, 3)) == 4
    with pytest.raises(ValueError, match="batch_size=10 is the global batch"):
        per_worker_batch_size(10, WorkerContext(0, 3))
    with pytest.raises(ValueError, match="multiple of the number of workers"):
        epoch_batches(20, 1, seed=0, epoch=0, context=WorkerContext(0, 2))


class CountingLogs(Sequence[int]):
    """A lazy dataset of logs that records which logs were read."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.read: list[int] = []

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, slice):
            raise TypeError("not used")
        position = range(self.count)[index]
        self.read.append(position)
        return position * 10

    def __iter__(self) -> Iterator[int]:
        return (self[i] for i in range(self.count))


def test_shard_by_rank_reads_only_its_own_logs() -> None:
    logs = CountingLogs(7)
    shard = shard_by_rank(logs, WorkerContext(rank=1, world_size=3))
    assert len(shard) == 2
    assert list(shard) == [10, 40]
    assert shard[-1] == 40
    assert logs.read == [1, 4, 4]
    assert sum(len(shard_by_rank(logs, WorkerContext(r, 3))) for r in range(3)) == 7


def test_in_process_fit_writes_history_plot_and_resumes(tmp_path: Path) -> None:
    final = run_fit(regression_fit, RegressionConfig(epochs=3), regression_dataset(), tmp_path, workers=None)
    assert final == tmp_path / "model.pt"
    curve = losses(tmp_path)
    assert len(curve) == 3 and curve[-1] < curve[0] / 4
    assert (tmp_path / CURVE_FILENAME).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Same out_dir, more epochs: resumes from last.pt and keeps the history of the first run.
    run_fit(regression_fit, RegressionConfig(epochs=5), regression_dataset(), tmp_path)
    history = read_metrics_history(tmp_path)
    assert [row["epoch"] for row in history] == [0, 1, 2, 3, 4]
    assert [row["start_epoch"] for row in history] == [0, 0, 0, 3, 3]
    fresh = tmp_path / "fresh"
    run_fit(regression_fit, RegressionConfig(epochs=5), regression_dataset(), fresh)
    np.testing.assert_allclose(losses(fresh), [row["loss"] for row in history], rtol=1e-6)


def test_registry_dataset_spec_opens_the_named_dataset() -> None:
    spec = RegistryDataset("synth", (("logs", 2), ("seconds", 1.0), ("lidar_beams", None), ("cameras", ())))
    assert isinstance(spec, DatasetSpec)
    dataset = spec.open()
    assert len(dataset.logs()) == 2
    assert len(list(dataset.frames(dataset.logs()[1]))) == 10  # 1 s at 10 Hz
    with pytest.raises(ValueError, match="nuscenes"):
        RegistryDataset("nuscenes:/nonexistent/path").open()


def test_bad_arguments_are_rejected_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workers must be at least 1"):
        run_fit(regression_fit, RegressionConfig(), regression_dataset(), tmp_path, workers=0)
    with pytest.raises(ValueError, match="give --workers N too"):
        run_fit(regression_fit, RegressionConfig(), regression_dataset(), tmp_path, address="ray://x:10001")
    with pytest.raises(ValueError, match="give --workers N too"):
        map_logs(str, [1], address="auto")

    def no_path_fit(cfg, dataset, out_dir, *, on_checkpoint=None):  # type: ignore[no-untyped-def]
        return None

    with pytest.raises(DistributedError, match="must return the path of its final checkpoint"):
        run_fit(no_path_fit, RegressionConfig(), regression_dataset(), tmp_path)

    def bad_metrics_fit(cfg, dataset, out_dir, *, on_checkpoint=None):  # type: ignore[no-untyped-def]
        on_checkpoint({"loss": "low"}, None)

    with pytest.raises(TypeError, match="not a number: loss"):
        run_fit(bad_metrics_fit, RegressionConfig(), regression_dataset(), tmp_path)


def test_cli_training_helper_runs_in_process_and_reports_bad_options(tmp_path: Path) -> None:
    import typer

    from pipelines.cli import run_training

    final = run_training("train regression", regression_fit, RegressionConfig(epochs=2), regression_dataset(), tmp_path, None, None)
    assert final == tmp_path / "model.pt" and len(read_metrics_history(tmp_path)) == 2
    with pytest.raises(typer.Exit) as exit_info:
        run_training("train regression", regression_fit, RegressionConfig(), regression_dataset(), tmp_path, None, "auto")
    assert exit_info.value.exit_code == 2


def test_plain_run_and_cli_help_do_not_import_ray(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from pipelines.distributed import map_logs, run_fit\n"
        "from pipelines.cli import app\n"
        "from typer.testing import CliRunner\n"
        "assert CliRunner().invoke(app, ['train', 'detection', '--help']).exit_code == 0\n"
        "assert map_logs(abs, [-1, -2]) == [1, 2]\n"
        "print(sorted(name for name in sys.modules if name == 'ray' or name.startswith('ray.')))\n"
    )
    output = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "[]", output.stdout + output.stderr


# ---------------------------------------------------------------------------------------------------------------------
# On Ray (one local session for the module)
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    from pipelines.ray_train import ensure_ray

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


def test_two_workers_follow_the_one_worker_loss_curve_and_a_rerun_resumes(ray_session: None, tmp_path: Path) -> None:
    single = run_fit(regression_fit, RegressionConfig(epochs=4), regression_dataset(), tmp_path / "single")
    # Two epochs, then the same out_dir again with four: the second run resumes from the first one's checkpoint.
    run_fit(regression_fit, RegressionConfig(epochs=2), RegressionSpec(), tmp_path / "double", workers=2)
    double = run_fit(regression_fit, RegressionConfig(epochs=4), RegressionSpec(), tmp_path / "double", workers=2)
    assert double == tmp_path / "double" / "model.pt"
    assert [row["start_epoch"] for row in read_metrics_history(tmp_path / "double")] == [0, 0, 2, 2]
    np.testing.assert_allclose(losses(tmp_path / "double"), losses(tmp_path / "single"), rtol=1e-4)
    np.testing.assert_allclose(final_weights(double), final_weights(single), rtol=1e-4, atol=1e-6)
    reported = [json.loads(path.read_text()) for path in (tmp_path / "double" / "ray").rglob("drivestack_checkpoint.json")]
    assert any(meta["final"] and meta["file"] == "model.pt" and meta["resume_file"] == "last.pt" for meta in reported)


def test_killed_worker_resumes_from_the_last_checkpoint(ray_session: None, tmp_path: Path) -> None:
    marker = tmp_path / "killed.txt"
    cfg = RegressionConfig(epochs=4, crash_epoch=2, crash_marker=str(marker))
    final = run_fit(regression_fit, cfg, regression_dataset(), tmp_path / "run", workers=2, max_failures=1)
    assert marker.read_text() == "killed rank 1 at epoch 2"
    history = read_metrics_history(tmp_path / "run")
    assert [row["epoch"] for row in history] == [0, 1, 2, 3]
    # Resumed from the latest checkpoint Ray had registered when rank 1 died (epoch 0 or 1), not from scratch.
    starts = [row["start_epoch"] for row in history]
    assert starts[0] == 0 and starts[-1] in (1, 2) and starts == sorted(starts)
    reference = run_fit(regression_fit, RegressionConfig(epochs=4), regression_dataset(), tmp_path / "ref")
    np.testing.assert_allclose(losses(tmp_path / "run"), losses(tmp_path / "ref"), rtol=1e-4)
    np.testing.assert_allclose(final_weights(final), final_weights(reference), rtol=1e-4, atol=1e-6)


def test_parallel_map_and_synth_generation_equal_the_sequential_ones(ray_session: None) -> None:
    from scenes.synth.world import SynthConfig

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
            np.testing.assert_array_equal(frame.annotations.center_m, twin.annotations.center_m)
            np.testing.assert_array_equal(frame.annotations.track_id, twin.annotations.track_id)
