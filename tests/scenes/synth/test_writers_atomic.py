"""Whole outputs from the writers and `drivestack synth`: an interrupted write leaves nothing partial at the destination,
a non-empty --out is refused unless --overwrite, and --overwrite replaces only the items the run writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import scenes.synth.writers.av2 as av2_writer
import scenes.synth.writers.av2_mf as av2_mf_writer
import scenes.synth.writers.cityscapes as cityscapes_writer
import scenes.synth.writers.kitti as kitti_writer
import scenes.synth.writers.nuscenes as nuscenes_writer
from pipelines.cli import SynthStyle, app
from scenes.synth.styles import style_names
from scenes.synth.writers.av2 import write_av2_log
from scenes.synth.writers.cityscapes import write_cityscapes
from scenes.synth.writers.common import STAGING_MARK
from scenes.synth.writers.export import OutputExistsError, write_synthetic_dataset
from scenes.synth.writers.kitti import write_kitti_drive
from scenes.synth.writers.nuscenes import write_nuscenes

runner = CliRunner()


class Interrupted(RuntimeError):
    pass


def fail_on_call(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, call: int = 1, error: type[BaseException] = Interrupted) -> list[int]:
    """Makes `module.name` raise `error` on its `call`-th call (earlier calls run the real function)."""
    real = getattr(module, name)
    calls = [0]

    def patched(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] >= call:
            raise error(f"interrupted in {name}")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, patched)
    return calls


def files_under(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()) if root.exists() else []


def staging_left(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob(f"*{STAGING_MARK}*")) if root.exists() else []


def synth(out: Path, *arguments: str) -> Any:
    return runner.invoke(app, ["synth", "--out", str(out), "--seconds", "0.2", *arguments])


def was_interrupted(result: Any) -> bool:
    """The command failed on the injected error (raised through, or reported by the CLI's error handler)."""
    return result.exit_code != 0 and (isinstance(result.exception, Interrupted) or "interrupted in" in result.output)


# (writer, the module and function made to fail midway, on which call): each step runs after some files are written.
WRITER_INTERRUPTIONS: dict[str, tuple[Callable[[Any, Path], Path], Any, str, int]] = {
    "av2": (lambda log, out: write_av2_log(log, out / "val"), av2_writer, "write_av2_map", 1),
    "kitti": (lambda log, out: write_kitti_drive(log, out), kitti_writer, "oxts_packets", 1),
    "nuscenes": (lambda log, out: write_nuscenes([log], out), nuscenes_writer, "_render_map", 1),
    "cityscapes": (lambda log, out: write_cityscapes(log, out), cityscapes_writer, "write_json", 3),
}


@pytest.mark.parametrize("format_name", sorted(WRITER_INTERRUPTIONS))
@pytest.mark.parametrize("error", [Interrupted, KeyboardInterrupt], ids=["error", "ctrl-c"])
def test_interrupted_writer_leaves_nothing(format_name, error, handmade_log, tmp_path, monkeypatch) -> None:
    write, module, step, call = WRITER_INTERRUPTIONS[format_name]
    calls = fail_on_call(monkeypatch, module, step, call, error)
    with pytest.raises(error):
        write(handmade_log, tmp_path / "out")
    assert calls[0] == call  # the failing step was reached, after files had been written
    assert files_under(tmp_path / "out") == [] or format_name == "kitti"
    if format_name == "kitti":  # the date folder's calibration (shared by its drives) is written first, no drive
        assert all(name.count("/") == 1 and name.split("/")[1].startswith("calib_") for name in files_under(tmp_path / "out"))
    assert staging_left(tmp_path / "out") == []


@pytest.mark.parametrize("format_name", sorted(WRITER_INTERRUPTIONS))
def test_interrupted_rewrite_keeps_the_previous_item_whole(format_name, handmade_log, tmp_path, monkeypatch, tree_digest) -> None:
    write, module, step, call = WRITER_INTERRUPTIONS[format_name]
    write(handmade_log, tmp_path / "out")
    before = tree_digest(tmp_path / "out")
    fail_on_call(monkeypatch, module, step, call)
    with pytest.raises(Interrupted):
        write(handmade_log, tmp_path / "out")
    assert tree_digest(tmp_path / "out") == before
    assert staging_left(tmp_path / "out") == []


@pytest.mark.parametrize(
    ("format_name", "module", "step", "call"),
    [
        ("av2", av2_writer, "write_av2_map", 1),
        ("kitti", kitti_writer, "oxts_packets", 1),
        ("nuscenes", nuscenes_writer, "_render_map", 1),
        ("cityscapes", cityscapes_writer, "write_json", 2),
    ],
)
def test_interrupted_synth_command_leaves_no_partial_log(format_name, module, step, call, tmp_path, monkeypatch) -> None:
    fail_on_call(monkeypatch, module, step, call)
    result = synth(tmp_path / "out", "--format", format_name)
    assert was_interrupted(result), result.output
    leftovers = [name for name in files_under(tmp_path / "out") if "calib_" not in name]
    assert leftovers == [] and staging_left(tmp_path / "out") == []


def test_interrupted_second_log_keeps_the_first_complete(tmp_path, monkeypatch) -> None:
    fail_on_call(monkeypatch, av2_writer, "write_av2_map", 2)
    with pytest.raises(Interrupted):
        write_synthetic_dataset("av2", tmp_path / "out", logs=2, seconds=0.2)
    (log_dir,) = (tmp_path / "out" / "train").iterdir()  # only the log that was completed
    assert (log_dir / "map").is_dir() and (log_dir / "annotations.feather").is_file()
    assert staging_left(tmp_path / "out") == []


def test_interrupted_av2_mf_scenario_leaves_nothing(tmp_path, monkeypatch) -> None:
    calls = fail_on_call(monkeypatch, av2_mf_writer, "write_json", 1)  # the map archive, after the scenario parquet
    result = runner.invoke(app, ["synth", "--out", str(tmp_path / "out"), "--format", "av2-mf", "--seconds", "11"])
    assert was_interrupted(result) and calls[0] == 1, result.output
    assert files_under(tmp_path / "out") == [] and staging_left(tmp_path / "out") == []


def test_non_empty_out_is_refused_with_one_line_naming_it(tmp_path) -> None:
    out = tmp_path / "a folder with a long enough name to be wrapped by a narrow terminal" / "out"
    out.mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    result = synth(out, "--format", "av2")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and str(out) in lines[0] and "--overwrite" in lines[0], result.output
    assert files_under(out) == ["notes.txt"]
    with pytest.raises(OutputExistsError, match="is not empty"):
        write_synthetic_dataset("kitti", out, seconds=0.2)
    (tmp_path / "file").write_text("x")
    result = synth(tmp_path / "file", "--format", "av2")
    assert result.exit_code == 2 and "is not a folder" in result.output


def test_empty_or_missing_out_is_accepted(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    assert synth(tmp_path / "empty", "--format", "av2").exit_code == 0
    assert synth(tmp_path / "missing" / "deeper", "--format", "av2").exit_code == 0
    assert staging_left(tmp_path) == []


def test_overwrite_replaces_the_log_and_keeps_user_files(tmp_path, tree_digest) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["synth", "--out", str(out), "--format", "av2", "--seconds", "0.4"])
    assert result.exit_code == 0, result.output
    (log_dir,) = (out / "train").iterdir()
    assert len(list((log_dir / "sensors" / "lidar").iterdir())) == 4
    (out / "notes.txt").write_text("mine")
    (out / "train" / "another-log").mkdir()
    (log_dir / "stale.txt").write_text("from an older run")
    assert synth(out, "--format", "av2").exit_code == 2  # refused without --overwrite, nothing changed
    assert (log_dir / "stale.txt").is_file()
    result = synth(out, "--format", "av2", "--overwrite")
    assert result.exit_code == 0, result.output
    # the log was replaced as a whole: the 0.2 s run's 2 sweeps only, no stale sweep or file of the 0.4 s run
    assert len(list((log_dir / "sensors" / "lidar").iterdir())) == 2 and not (log_dir / "stale.txt").exists()
    assert (out / "notes.txt").read_text() == "mine" and (out / "train" / "another-log").is_dir()
    assert synth(tmp_path / "fresh", "--format", "av2").exit_code == 0
    assert tree_digest(log_dir) == tree_digest(tmp_path / "fresh" / "train" / log_dir.name)
    assert staging_left(tmp_path) == []


@pytest.mark.parametrize("format_name", ["kitti", "nuscenes", "cityscapes"])
def test_overwrite_every_format(format_name, tmp_path, tree_digest) -> None:
    out = tmp_path / "out"
    assert synth(out, "--format", format_name, "--seconds", "0.3").exit_code == 0
    (out / "notes.txt").write_text("mine")
    result = synth(out, "--format", format_name, "--overwrite")
    assert result.exit_code == 0, result.output
    assert synth(tmp_path / "fresh", "--format", format_name).exit_code == 0
    expected = tree_digest(tmp_path / "fresh")
    assert tree_digest(out) == {**expected, "notes.txt": tree_digest(out)["notes.txt"]}  # no stale frame of the 0.3 s run
    assert staging_left(tmp_path) == []


def test_cityscapes_overwrite_touches_only_its_sequence(tmp_path, handmade_log, tree_digest) -> None:
    write_cityscapes(handmade_log, tmp_path, sequence=0)
    write_cityscapes(handmade_log, tmp_path, sequence=1)
    images = tmp_path / handmade_log.style / "leftImg8bit" / "train" / handmade_log.city_name.lower()
    (images / "mine.png").write_bytes(b"user")
    before = tree_digest(tmp_path)
    write_cityscapes(handmade_log, tmp_path, sequence=1)
    assert tree_digest(tmp_path) == before


def test_style_is_a_choice_of_the_known_styles(tmp_path) -> None:
    assert [style.value for style in SynthStyle] == list(style_names())
    result = synth(tmp_path / "out", "--style", "vaporwave")
    assert result.exit_code == 2 and "vaporwave" in result.output and "desert" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "rename-aside"])
def test_replace_path_swaps_whole_folders(exchange, tmp_path, monkeypatch) -> None:
    from scenes.synth.writers import common

    if not exchange:
        monkeypatch.setattr(common, "_renameat2", lambda: None)
    old, new = tmp_path / "item", tmp_path / "staging"
    (old / "sub").mkdir(parents=True)
    (old / "sub" / "stale.txt").write_text("old")
    (new / "sub").mkdir(parents=True)
    (new / "sub" / "fresh.txt").write_text("new")
    common.replace_path(new, old)
    assert files_under(tmp_path) == ["item/sub/fresh.txt"]
    (tmp_path / "file").write_text("old")
    (tmp_path / "file.new").write_text("new")
    common.replace_path(tmp_path / "file.new", tmp_path / "file")
    assert (tmp_path / "file").read_text() == "new" and not (tmp_path / "file.new").exists()
