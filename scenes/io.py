"""Crash-safe file writing: every writer in drivestack goes through `atomic_write`."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _current_umask() -> int:
    """The process umask, read without changing it where Linux reports it (os.umask alone must set it to read it)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def current_umask() -> int:
    """The process umask (without changing it where /proc is available)."""
    return _current_umask()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a temporary path beside `path`; on success it is fsynced and renamed onto `path`, else removed.

    Readers never see a half-written file, and a crash leaves the previous version intact.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp makes 0600; a written file is readable as any other
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        with open(temporary_path, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary_path, target)
    finally:
        temporary_path.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes) -> None:
    with atomic_write(path) as temporary:
        temporary.write_bytes(payload)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
