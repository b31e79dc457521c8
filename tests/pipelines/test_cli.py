"""The drivestack CLI: help for every sub-command and every evaluate task; an expected error is one line on stderr.

Most checks drive the Typer app in-process (fast); the `installed_*` tests run the console script pip installed
beside this interpreter, so a broken `[project.scripts]` entry point or a packaging regression fails here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from scenes import __version__

SUBCOMMANDS = ["e2e-forecast", "detect", "track", "train", "finetune", "generate", "synth", "evaluate", "predict", "inspect"]
TRAIN_MODULES = ["detection", "tracking", "forecasting", "depth", "segmentation", "scenegen"]
EVALUATE_TASKS = ["detection", "tracking", "forecasting", "e2e-forecasting", "depth", "segmentation"]

runner = CliRunner()


def installed_drivestack() -> Path:
    """The `drivestack` console script of the environment running the tests (fails, not skips, when absent)."""
    script = Path(sys.executable).parent / "drivestack"
    if not script.is_file() or not os.access(script, os.X_OK):
        pytest.fail(f"console script {script} is missing or not executable: install the package (`make install`)")
    return script


def run_installed(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}  # no wrapping or colour codes in rich's output
    return subprocess.run([str(installed_drivestack()), *args], capture_output=True, text=True, check=False, env=env, timeout=120)


def test_root_help_lists_subcommands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in SUBCOMMANDS:
        assert name in result.output


FINETUNE_STEPS = ["forecasting", "tracking"]


@pytest.mark.parametrize("command", [[name] for name in SUBCOMMANDS] + [["train", m] for m in TRAIN_MODULES] + [["finetune", m] for m in FINETUNE_STEPS])
def test_every_subcommand_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: drivestack {' '.join(command)} [OPTIONS]" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"drivestack {__version__}\n"


@pytest.mark.parametrize("task", EVALUATE_TASKS)
def test_every_evaluate_task_is_built(task: str) -> None:
    result = runner.invoke(app, ["evaluate", task, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: drivestack evaluate {task} [OPTIONS]" in result.output and "not available" not in result.output
    assert "--json" in result.output


def test_installed_console_script_help_lists_subcommands() -> None:
    completed = run_installed("--help")
    assert completed.returncode == 0, completed.stderr
    assert "Usage: drivestack [OPTIONS] COMMAND [ARGS]..." in completed.stdout
    for name in SUBCOMMANDS:
        assert f"│ {name} " in completed.stdout, name


def test_installed_console_script_reports_the_installed_version() -> None:
    completed = run_installed("--version")
    assert (completed.returncode, completed.stdout, completed.stderr) == (0, f"drivestack {version('drivestack')}\n", "")
    assert version("drivestack") == __version__


def test_installed_console_script_expected_error_is_one_line_on_stderr(tmp_path: Path) -> None:
    missing = tmp_path / "missing.feather"
    completed = run_installed("evaluate", "detection", "--predictions", str(missing), "--data", "synth")
    assert completed.returncode == 2 and completed.stdout == ""
    assert completed.stderr == f"error: {missing}: detection table not found\n"


def test_installed_console_script_rejects_an_unknown_command() -> None:
    completed = run_installed("frobnicate")
    assert completed.returncode == 2 and completed.stdout == ""
    assert "No such command 'frobnicate'." in completed.stderr
