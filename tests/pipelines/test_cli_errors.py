"""The command line's error contract: one line `error: <file>: <what>` on stderr and exit 2 for expected errors, exit 1
with a `--debug` hint for bugs, the full traceback with `drivestack --debug`; `--out` checked before any work; the
dataset options (`--split`, `--skip-bad`, `--nuscenes-version`, `--address ray://`) and the default training folders.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import pipelines.cli as cli
import pipelines.e2e_job as e2e_job
from pipelines.cli import app
from scenes.adapters.base import AdapterError
from scenes.config import ConfigError
from scenes.errors import DrivestackError, InputError, check_output_path
from scenes.records import RecordError
from scenes.submissions.av2_e2e_forecasting import SubmissionError, evaluation_timestamps
from scenes.synth.writers.common import WriterError
from scenes.training.checkpoint import CheckpointError

runner = CliRunner()


def installed_drivestack() -> Path:
    return Path(sys.executable).parent / "drivestack"


def run_installed(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "40", "NO_COLOR": "1"}  # a narrow terminal: a wrapped message would show
    return subprocess.run([str(installed_drivestack()), *args], capture_output=True, text=True, check=False, env=env, timeout=120, cwd=cwd)


@pytest.fixture
def deep(tmp_path: Path) -> Path:
    """A directory with a long path (longer than the 40 columns of the terminal)."""
    path = tmp_path / "a_rather_long_directory_name_for_wrapping" / "and_another_long_one_below_it"
    path.mkdir(parents=True)
    return path


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


# --- 1. one-line errors, end to end through the installed console script ---------------------------------------------


def test_installed_e2e_forecast_config_and_checkpoint_mistakes_are_one_line(deep: Path) -> None:
    unknown = deep / "unknown_key.yaml"
    unknown.write_text("bogus_key: 1\n")
    completed = run_installed("e2e-forecast", "--config", str(unknown), "--out", str(deep / "s.pkl"))
    assert (completed.returncode, completed.stdout) == (2, "")
    assert completed.stderr == f"error: {unknown}: unknown key 'bogus_key'\n"


def test_installed_debug_shows_the_traceback(deep: Path) -> None:
    completed = run_installed("--debug", "e2e-forecast", "--data", f"av2:{deep / 'nonexistent'}", "--out", str(deep / "s.pkl"))
    assert completed.returncode == 1
    assert "Traceback" in completed.stderr and "AdapterError" in completed.stderr


@pytest.mark.parametrize(
    ("config_text", "expected"),
    [
        ("bogus_key: 1\n", "{config}: unknown key 'bogus_key'"),
        ("detector: oracle\ntracker: oracle\nforecaster_checkpoint: {missing}\n", "{missing}: checkpoint not found"),
        ("detector: oracle\ntracker: oracle\nforecaster_checkpoint: {config}\n", "{config}: not a readable drivestack checkpoint"),
        ("detector: [\n", "{config}: invalid YAML"),
    ],
)
def test_e2e_forecast_config_mistakes_exit_2_with_one_line(deep: Path, config_text: str, expected: str) -> None:
    config, missing = deep / "config.yaml", deep / "missing.pt"
    config.write_text(config_text.format(missing=missing, config=config))
    result = runner.invoke(app, ["e2e-forecast", "--config", str(config), "--out", str(deep / "s.pkl")])
    assert result.exit_code == 2 and result.stdout == ""
    assert one_error_line(result.stderr).startswith("error: " + expected.format(config=config, missing=missing))
    assert not (deep / "s.pkl").exists()


def test_e2e_forecast_missing_dataset_is_one_line(deep: Path) -> None:
    result = runner.invoke(app, ["e2e-forecast", "--data", f"av2:{deep / 'nonexistent'}", "--out", str(deep / "s.pkl")])
    assert result.exit_code == 2
    assert one_error_line(result.stderr) == f"error: {deep / 'nonexistent'}: av2 dataset directory not found"
    result = runner.invoke(app, ["e2e-forecast", "--data", f"kitti:{deep}", "--out", str(deep / "s.pkl")])
    assert result.exit_code == 2 and one_error_line(result.stderr).startswith(f"error: --data kitti:{deep}: end-to-end forecasting reads AV2")


def test_finetune_forecasting_config_and_checkpoint_mistakes_are_one_line(deep: Path) -> None:
    config = deep / "finetune.yaml"
    config.write_text("stack:\n  bogus: 1\n")
    result = runner.invoke(app, ["finetune", "forecasting", "--config", str(config), "--out", str(deep / "run")])
    assert result.exit_code == 2 and one_error_line(result.stderr).startswith(f"error: {config}: ")
    assert "stack.bogus" in result.stderr
    missing = deep / "pretrained.pt"
    config.write_text(f"pretrained: {missing}\n")
    result = runner.invoke(app, ["finetune", "forecasting", "--config", str(config), "--out", str(deep / "run")])
    assert result.exit_code == 2 and one_error_line(result.stderr) == f"error: {missing}: checkpoint not found"
    result = runner.invoke(app, ["finetune", "forecasting", "--out", str(deep / "run")])
    assert result.exit_code == 2 and one_error_line(result.stderr).startswith("error: --config: required")


def test_train_and_inspect_errors_are_one_line_exit_2(deep: Path) -> None:
    config = deep / "detection.yaml"
    config.write_text("bogus_key: 1\n")
    for command in (["train", "detection"], ["train", "tracking"], ["train", "forecasting"]):
        result = runner.invoke(app, [*command, "--config", str(config), "--out", str(deep / "run")])
        assert result.exit_code == 2, (command, result.output)
        assert one_error_line(result.stderr) == f"error: {config}: unknown key 'bogus_key'"
    result = runner.invoke(app, ["inspect", "--data", f"av2:{deep / 'missing'}"])
    assert result.exit_code == 2 and one_error_line(result.stderr) == f"error: {deep / 'missing'}: av2 dataset directory not found"


def test_bad_option_values_are_one_line_exit_2() -> None:
    for args, expected in (
        (["e2e-forecast", "--workers", "0"], "'--workers'"),
        (["frobnicate"], "No such command 'frobnicate'."),
        (["--bogus"], "No such option: --bogus"),
        (["inspect"], "Missing option '--data'"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and expected in one_error_line(result.stderr), (args, result.output)


def test_unexpected_failure_exits_1_with_a_debug_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_job(**kwargs: Any) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(e2e_job, "run_job", broken_job)
    result = runner.invoke(app, ["e2e-forecast"])
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert line.startswith("error: unexpected RuntimeError: boom second line") and "--debug" in line
    result = runner.invoke(app, ["--debug", "e2e-forecast"])
    assert isinstance(result.exception, RuntimeError) and "error:" not in result.stderr


def test_file_errors_name_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def missing(**kwargs: Any) -> None:
        (tmp_path / "gone.txt").read_text()  # FileNotFoundError with the file name

    monkeypatch.setattr(e2e_job, "run_job", missing)
    result = runner.invoke(app, ["e2e-forecast"])
    assert result.exit_code == 2 and one_error_line(result.stderr) == f"error: {tmp_path / 'gone.txt'}: No such file or directory"


def test_project_errors_share_the_base_class_and_stay_value_errors() -> None:
    for error_type in (ConfigError, AdapterError, CheckpointError, WriterError, RecordError, SubmissionError, InputError):
        assert issubclass(error_type, DrivestackError) and issubclass(error_type, ValueError), error_type


# --- 2. --out is checked before any work -------------------------------------------------------------------------------


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any config loading (the first work of a job) fails the test."""

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("work started before --out was checked")

    monkeypatch.setattr(e2e_job, "load_e2e_config", fail)
    monkeypatch.setattr("pipelines.sequential_finetune.load_config", fail)


@pytest.mark.usefixtures("no_work")
def test_e2e_forecast_out_is_checked_before_any_work(deep: Path) -> None:
    result = runner.invoke(app, ["e2e-forecast", "--out", str(deep)])
    assert result.exit_code == 2
    assert one_error_line(result.stderr) == f"error: {deep}: --out must be a file path, and this is an existing directory"
    a_file = deep / "file"
    a_file.write_text("")
    result = runner.invoke(app, ["e2e-forecast", "--out", str(a_file / "sub" / "s.pkl")])
    assert result.exit_code == 2 and one_error_line(result.stderr) == f"error: {a_file / 'sub' / 's.pkl'}: --out: {a_file} is not a directory"
    result = runner.invoke(app, ["finetune", "forecasting", "--config", str(a_file), "--out", str(a_file)])
    assert result.exit_code == 2 and one_error_line(result.stderr) == f"error: {a_file}: --out must be a directory, and this is a file"


def test_unwritable_parent_is_reported(deep: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("scenes.errors.tempfile.mkstemp", refuse)  # root may write anywhere: simulate the refusal
    with pytest.raises(InputError, match=r"--out: cannot write in .*and_another_long_one_below_it \(Permission denied\)"):
        check_output_path(deep / "new" / "s.pkl", directory=False)
    monkeypatch.undo()
    check_output_path(deep / "new" / "s.pkl", directory=False)  # a missing parent is fine: it is created
    assert not list(deep.iterdir())  # the probe file is removed


# --- 3. no evaluated timestamp with a sweep ----------------------------------------------------------------------------


class _DropSweeps:
    """A dataset whose frames lose their sweep at the first `drop` evaluation timestamps of each log (-1: all)."""

    def __init__(self, dataset: Any, drop: int) -> None:
        self.dataset, self.drop = dataset, drop

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dataset, name)

    def frames(self, log_id: str) -> Iterator[Any]:
        frames = sorted(self.dataset.frames(log_id), key=lambda frame: frame.timestamp_ns)
        evaluated = evaluation_timestamps([frame.timestamp_ns for frame in frames]).tolist()
        dropped = set(evaluated if self.drop < 0 else evaluated[: self.drop])
        return iter([replace(frame, lidar=None) if frame.timestamp_ns in dropped else frame for frame in frames])


@pytest.mark.parametrize("drop", [-1, 1])
def test_e2e_forecast_reports_evaluated_timestamps_with_a_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drop: int) -> None:
    config = tmp_path / "e2e.yaml"
    config.write_text("synth:\n  logs: 1\n  seconds: 1.0\n")
    opened = e2e_job.open_e2e_dataset
    monkeypatch.setattr(e2e_job, "open_e2e_dataset", lambda *args, **kwargs: _DropSweeps(opened(*args, **kwargs), drop))
    out = tmp_path / "s.pkl"
    result = runner.invoke(app, ["e2e-forecast", "--config", str(config), "--out", str(out)])
    if drop < 0:
        assert result.exit_code == 2, result.output
        assert one_error_line(result.stderr) == (
            "error: synth: none of the 2 evaluated (2 Hz) timestamps of 1 log(s) had a LiDAR sweep to run the stack on; "
            "nothing to forecast, no submission written"
        )
        assert not out.exists()
    else:
        assert result.exit_code == 0, result.output
        assert "1 of 2 evaluated timestamps had a sweep and were forecast" in result.stderr and out.is_file()


# --- 4. options ----------------------------------------------------------------------------------------------------


DATASET_COMMANDS = (
    ["e2e-forecast"], ["train", "detection"], ["train", "tracking"], ["train", "forecasting"], ["finetune", "forecasting"], ["inspect"]
)


@pytest.mark.parametrize("command", DATASET_COMMANDS)
def test_dataset_commands_share_split_and_skip_bad(command: list[str]) -> None:
    params = {param.name: param for param in app_command(command).params}
    assert params["split"].default is None and params["skip_bad"].default is False
    assert params["split"].help == typing.get_args(cli.SplitOption)[1].help
    assert "default: every split under PATH" in (params["split"].help or "")


def app_command(command: list[str]) -> Any:
    from typer.main import get_command

    group: Any = get_command(app)
    for name in command:
        group = group.commands[name]
    return group


def test_dataset_options_pass_split_and_skip_bad_to_the_adapter() -> None:
    assert cli.dataset_options("av2:/x", split="val", skip_bad=True) == {"skip_bad": True, "split": "val"}
    assert cli.dataset_options("av2:/x") == {"skip_bad": False}
    assert cli.dataset_options("synth", split="val") == {"skip_bad": False}


def test_inspect_nuscenes_version_does_not_clash_with_the_global_version(tmp_path: Path) -> None:
    params = {param.name for param in app_command(["inspect"]).params}
    assert "nuscenes_version" in params and "version" not in params
    result = runner.invoke(app, ["inspect", "--data", f"nuscenes:{tmp_path / 'none'}", "--nuscenes-version", "v1.0-mini"])
    assert result.exit_code == 2 and one_error_line(result.stderr) == f"error: {tmp_path / 'none'}: nuscenes dataset directory not found"


def test_ray_client_address_needs_the_client_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_missing_ray_client_module", lambda: "grpc")
    for command in (["e2e-forecast"], ["train", "detection"], ["train", "forecasting"]):
        result = runner.invoke(app, [*command, "--workers", "2", "--address", "ray://head:10001"])
        assert result.exit_code == 2, result.output
        assert one_error_line(result.stderr) == (
            "error: --address ray://head:10001: a ray:// address needs the Ray client extra (module 'grpc' is missing): "
            "pip install 'ray[client]'"
        )
    result = runner.invoke(app, ["e2e-forecast", "--address", "auto"])
    assert result.exit_code == 2 and "give --workers N too" in one_error_line(result.stderr)
    monkeypatch.setattr(cli, "_missing_ray_client_module", lambda: None)
    cli.check_ray_options(2, "ray://head:10001")


# --- 5. default training folders ----------------------------------------------------------------------------------------


def test_train_default_out_follows_the_config_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli.default_train_out("detection", Path("configs/detection/centerpoint_synth.yaml")) == Path("runs/detection/centerpoint_synth")
    assert cli.default_train_out("forecasting", None) == Path("runs/forecasting/default")
    seen: list[Path] = []

    def fake_fit(cfg: Any, dataset: Any, out_dir: Path) -> Path:
        seen.append(out_dir)
        return out_dir / "tracker.pt"

    monkeypatch.setattr("perception.tracking.train.fit", fake_fit)
    monkeypatch.chdir(tmp_path)
    for name in ("one", "two"):
        (tmp_path / f"{name}.yaml").write_text("{}\n")
        assert runner.invoke(app, ["train", "tracking", "--config", f"{name}.yaml"]).exit_code == 0
    assert runner.invoke(app, ["train", "tracking"]).exit_code == 0
    assert seen == [Path("runs/tracking/one"), Path("runs/tracking/two"), Path("runs/tracking/default")]
