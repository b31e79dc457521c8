"""YAML configs validated into pydantic models: an unknown key or a wrong type names the file and the key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from scenes.errors import DrivestackError

ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigError(DrivestackError, ValueError):
    """A config file that does not exist, does not parse, or does not match its schema."""


class StrictConfig(BaseModel):
    """Base of every drivestack config: unknown keys are errors and values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


def validate_config(data: Any, model: type[ModelT], source: str = "<config>") -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            key = _location(item["loc"])
            if item["type"] == "extra_forbidden":
                problems.append(f"unknown key '{key}'")
            else:
                problems.append(f"key '{key}': {item['msg']} (got {item.get('input')!r})")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def load_config(path: str | os.PathLike[str], model: type[ModelT], overrides: dict[str, Any] | None = None) -> ModelT:
    """Loads `path` (YAML) into `model`; `overrides` (dotted keys) are applied on top before validation."""
    config_path = Path(path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{config_path}: cannot read config ({error.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{config_path}: invalid YAML ({error})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{config_path}: the top level must be a mapping, got {type(data).__name__}")
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{config_path}: override '{dotted}' goes through a non-mapping key '{part}'")
        node[leaf] = value
    return validate_config(data, model, str(config_path))
