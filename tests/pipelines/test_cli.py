"""The drivestack CLI: help for every sub-command; unbuilt capabilities exit non-zero with one line."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

SUBCOMMANDS = ["e2e-forecast", "train", "finetune", "generate", "synth", "evaluate", "inspect"]
TRAIN_MODULES = ["detection", "tracking", "forecasting", "depth", "segmentation", "scenegen"]

runner = CliRunner()


def test_root_help_lists_subcommands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in SUBCOMMANDS:
        assert name in result.output


@pytest.mark.parametrize("command", [[name] for name in SUBCOMMANDS] + [["train", m] for m in TRAIN_MODULES] + [["finetune", "forecasting"]])
def test_every_subcommand_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("drivestack ")


def test_console_script_is_installed() -> None:
    completed = subprocess.run([sys.executable, "-m", "pipelines.cli", "--help"], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr


@pytest.mark.parametrize("command", [["train", "depth"], ["train", "segmentation"], ["train", "scenegen"], ["generate"]])
def test_unbuilt_capabilities_exit_nonzero_with_one_line(command: list[str]) -> None:
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "not available yet" in lines[0]
