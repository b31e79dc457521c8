"""The base class of drivestack's expected errors, and the check of an output path before any work.

An expected error is a mistake in what the user gave (a config, a dataset, a checkpoint, an option, an output path):
its message starts with the file it is about and says what is wrong, and the `drivestack` command prints it as one
line, `error: <file>: <what>`, with exit status 2 (`pipelines/cli.py`). Every other exception is a bug: exit status 1.
The project's error classes (`ConfigError`, `AdapterError`, `CheckpointError`, `RecordError`, `WriterError`, the
submission format errors) subclass `DrivestackError`, and `ValueError` as before.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["DrivestackError", "InputError", "check_output_path"]


class DrivestackError(Exception):
    """An expected error: the message names the file (or option) and the problem."""


class InputError(DrivestackError, ValueError):
    """Input that cannot be used as given (an option value, an output path, data with nothing to process)."""


def check_output_path(path: Path, *, directory: bool, option: str = "--out") -> None:
    """Raises `InputError` unless `path` can be written: a file (`directory=False`) or a directory of outputs.

    Checked before any work, so a bad `--out` fails at once rather than after the whole run: an existing directory
    where a file is expected (or the reverse), a parent that is a file, or a nearest existing folder where nothing
    can be created (tried with a temporary file, which also covers read-only file systems and root).
    """
    if directory and path.exists() and not path.is_dir():
        raise InputError(f"{path}: {option} must be a directory, and this is a file")
    if not directory and path.is_dir():
        raise InputError(f"{path}: {option} must be a file path, and this is an existing directory")
    ancestor = path if directory and path.is_dir() else path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{path}: {option}: {ancestor} is not a directory")
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".drivestack-probe-", dir=ancestor)
    except OSError as error:
        raise InputError(f"{path}: {option}: cannot write in {ancestor} ({error.strerror or error})") from None
    os.close(descriptor)
    os.unlink(probe)
