"""One checkpoint format for every stage: one file, written atomically, read without executing code.

A checkpoint is a dict saved with `torch.save`:

| key | value |
|---|---|
| `format` | `CHECKPOINT_FORMAT` |
| `stage` | `detection`, `tracking`, `forecasting`, ... |
| `drivestack_version` | the version that wrote it |
| `config` | the stage's config as JSON-compatible data (validated by the stage when it loads) |
| `state_dict` | the model's weights (empty for stages without weights) |
| anything else | training state (`epoch`, `optimizer`, `scheduler`, `history`) or the stage's own numbers |

It is read with `torch.load(weights_only=True)`, which only rebuilds tensors and plain containers, so a crafted file
cannot run code; every problem is a `CheckpointError` whose message starts with the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

import torch
from pydantic import BaseModel

from scenes import __version__
from scenes.errors import DrivestackError
from scenes.io import atomic_write

ConfigT = TypeVar("ConfigT", bound=BaseModel)
ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)

CHECKPOINT_FORMAT: Final = "drivestack-checkpoint-1"
REQUIRED_KEYS: Final = ("format", "stage", "drivestack_version", "config", "state_dict")


class CheckpointError(DrivestackError, ValueError):
    """A checkpoint that is missing, unreadable, of another stage or malformed; the message names the file."""


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    stage: str,
    state_dict: Mapping[str, torch.Tensor],
    config: BaseModel | Mapping[str, Any],
    **extra: Any,
) -> Path:
    """Writes one checkpoint file atomically (see the module docstring); returns its path."""
    reserved = set(REQUIRED_KEYS) & set(extra)
    if reserved:
        raise ValueError(f"{path}: checkpoint extras cannot use the reserved keys {sorted(reserved)}")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "stage": stage,
        "drivestack_version": __version__,
        "config": config.model_dump(mode="json") if isinstance(config, BaseModel) else dict(config),
        "state_dict": dict(state_dict),
        **extra,
    }
    with atomic_write(path) as temporary:
        torch.save(payload, temporary)
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str], stage: str | None = None) -> dict[str, Any]:
    """The checkpoint's payload, checked to be in `CHECKPOINT_FORMAT` and, when given, of `stage`."""
    checkpoint_path = Path(path)
    if not checkpoint_path.is_file():
        raise CheckpointError(f"{checkpoint_path}: checkpoint not found")
    try:
        payload = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types (pickle, zip, OSError) for corrupt or unsafe files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{checkpoint_path}: not a readable drivestack checkpoint ({reason})") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{checkpoint_path}: not a drivestack checkpoint (a {type(payload).__name__}, not a dict)")
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{checkpoint_path}: not a drivestack checkpoint: format is {payload.get('format')!r}, expected {CHECKPOINT_FORMAT!r}"
        )
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"{checkpoint_path}: checkpoint lacks {', '.join(missing)}")
    if stage is not None and payload["stage"] != stage:
        raise CheckpointError(f"{checkpoint_path}: a {payload['stage']} checkpoint, expected a {stage} checkpoint")
    if not isinstance(payload["config"], dict) or not isinstance(payload["state_dict"], dict):
        raise CheckpointError(f"{checkpoint_path}: checkpoint fields 'config' and 'state_dict' must be mappings")
    return payload


def first_difference(stored: Any, current: Any, prefix: str = "") -> str | None:
    """The dotted key of the first difference between two JSON-like values, None when they are equal."""
    if isinstance(stored, dict) and isinstance(current, dict):
        for key in sorted(set(stored) | set(current), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in stored or key not in current:
                return where
            found = first_difference(stored[key], current[key], where)
            if found is not None:
                return found
        return None
    if isinstance(stored, list | tuple) and isinstance(current, list | tuple):
        if len(stored) != len(current):
            return prefix or "<root>"
        for index, (a, b) in enumerate(zip(stored, current, strict=True)):
            found = first_difference(a, b, f"{prefix}[{index}]")
            if found is not None:
                return found
        return None
    return None if stored == current else (prefix or "<root>")


def load_stage(
    path: str | os.PathLike[str], stage: str, config_type: type[ConfigT], net_factory: Callable[[ConfigT], ModuleT], prefix: str = ""
) -> tuple[ConfigT, ModuleT]:
    """The validated config and the network of a `stage` checkpoint: `net_factory(config)` loaded with the state-dict
    entries under `prefix` (e.g. "depth." when the checkpoint holds a training model around the network). A config or
    weights that do not fit are a `CheckpointError` naming the file."""
    from scenes.config import ConfigError, validate_config

    payload = load_checkpoint(path, stage)
    try:
        config = validate_config(payload["config"], config_type, f"{path}:config")
    except ConfigError as error:
        raise CheckpointError(str(error)) from None
    net = net_factory(config)
    weights = {key[len(prefix) :]: value for key, value in payload["state_dict"].items() if key.startswith(prefix)}
    try:
        net.load_state_dict(weights)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit the stored config ({str(error).splitlines()[0]})") from None
    return config, net
