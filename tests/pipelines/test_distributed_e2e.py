"""`drivestack e2e-forecast --workers N`: logs processed in parallel Ray tasks merge into the sequential submission."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.e2e_forecast import E2EForecastConfig, SynthSplitConfig, open_e2e_dataset, run_e2e
from pipelines.e2e_parallel import merge_results, run_one_log
from pipelines.oracle_detector import OracleDetectorConfig
from scenes.submissions.av2_e2e_forecasting import read_submission


def assert_same(left: Any, right: Any, where: str = "submission") -> None:
    """Exact equality of nested dicts/lists of numpy arrays and scalars, in the same key order."""
    assert type(left) is type(right), where
    if isinstance(left, dict):
        assert list(left) == list(right), where
        for key in left:
            assert_same(left[key], right[key], f"{where}[{key!r}]")
    elif isinstance(left, list | tuple):
        assert len(left) == len(right), where
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_same(a, b, f"{where}[{index}]")
    elif isinstance(left, np.ndarray):
        np.testing.assert_array_equal(left, right, err_msg=where)
    else:
        assert left == right, where


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    from scenes.ray_cluster import ensure_ray

    ensure_ray(address=None, num_cpus=2)
    yield
    ray.shutdown()


def small_config() -> E2EForecastConfig:
    # A degraded oracle (missed boxes, position noise) makes each log's output depend on its own random stream.
    oracle = OracleDetectorConfig(miss_rate=0.2, center_noise_m=0.3)
    return E2EForecastConfig(detector="oracle", forecaster="constant_velocity", oracle=oracle, synth=SynthSplitConfig(logs=2, seconds=2.0, lidar_beams=None))


def test_merge_of_per_log_results_equals_the_sequential_run() -> None:
    cfg = small_config()
    sequential = run_e2e(cfg, open_e2e_dataset(None, "val", cfg), progress=False)
    merged = merge_results(cfg, [run_one_log(cfg, None, None, False, index) for index in range(2)])
    assert len(sequential.submission) == 2 and sum(len(log) for log in sequential.submission.values()) > 0
    assert_same(merged.submission, sequential.submission)
    assert_same(merged.ground_truth, sequential.ground_truth, "ground_truth")
    assert merged.num_sweeps == sequential.num_sweeps
    assert [log.log_id for log in merged.logs] == list(sequential.submission)
    with pytest.raises(ValueError, match="processed twice"):
        merge_results(cfg, [merged, merged])


def test_cli_workers_option_writes_the_sequential_submission(ray_session: None, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    config = tmp_path / "e2e.yaml"
    config.write_text("detector: oracle\nsynth:\n  logs: 2\n  seconds: 2.0\n  lidar_beams: null\noracle:\n  miss_rate: 0.2\n")
    runner = CliRunner()
    outputs = {}
    for name, extra in {"sequential": [], "parallel": ["--workers", "2"]}.items():
        out = tmp_path / f"{name}.pkl"
        result = runner.invoke(app, ["e2e-forecast", "--config", str(config), "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
        outputs[name] = read_submission(out)
    assert len(outputs["sequential"]) == 2
    assert_same(outputs["parallel"], outputs["sequential"])
    result = runner.invoke(app, ["e2e-forecast", "--address", "auto", "--out", str(tmp_path / "x.pkl")])
    assert result.exit_code == 2 and "give --workers N too" in " ".join(result.output.split())
