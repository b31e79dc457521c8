"""`scenes.io.atomic_write`: written files get the permissions the umask allows, not mkstemp's 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scenes import io as scenes_io
from scenes.io import atomic_write_bytes, atomic_write_text


@pytest.fixture
def umask() -> Iterator[None]:
    """Restores the process umask a test changes."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
@pytest.mark.usefixtures("umask")
def test_atomic_write_text_mode_follows_umask(tmp_path: Path, mask: int, expected: int) -> None:
    os.umask(mask)
    target = tmp_path / "sub" / "file.txt"
    atomic_write_text(target, "hello")
    assert target.read_text() == "hello"
    assert _mode(target) == expected, oct(_mode(target))


@pytest.mark.usefixtures("umask")
def test_atomic_write_overwrite_mode_and_no_leftovers(tmp_path: Path) -> None:
    os.umask(0o022)
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert _mode(target) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


@pytest.mark.usefixtures("umask")
def test_umask_fallback_without_proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where /proc is unavailable the umask is read with os.umask and left unchanged."""
    os.umask(0o027)
    real_read_text = Path.read_text

    def no_proc(self: Path, *args: Any, **kwargs: Any) -> str:
        if str(self).startswith("/proc/"):
            raise OSError("no /proc")
        return real_read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", no_proc)
    assert scenes_io._current_umask() == 0o027
    atomic_write_text(tmp_path / "f.txt", "x")
    assert _mode(tmp_path / "f.txt") == 0o640
    assert os.umask(0o027) == 0o027  # unchanged by the read
