"""YAML configs validated into pydantic models: an unknown key or a wrong type names the file and the key.

A config may start from another: `base: other.yaml` (a path relative to the config's folder) loads that one first, and
the config's own keys replace the base's, mapping by mapping (a list or a value is replaced whole, so a key of the base
cannot be removed). Bases may have bases of their own; the checkpoint of a run keeps the merged config."""

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


BASE_KEY = "base"


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` on top: mappings present in both are merged key by key, anything else is replaced."""
    result = dict(base)
    for key, value in changes.items():
        result[key] = _merged(result[key], value) if isinstance(value, dict) and isinstance(result.get(key), dict) else value
    return result


def _read_mapping(config_path: Path, included_from: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping of `config_path`, its bases merged under it; `included_from` are the configs that named it as base."""
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as error:
        if included_from:
            raise ConfigError(f"{included_from[-1]}: key '{BASE_KEY}': cannot read {config_path} ({error.strerror})") from None
        raise ConfigError(f"{config_path}: cannot read config ({error.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{config_path}: invalid YAML ({error})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{config_path}: the top level must be a mapping, got {type(data).__name__}")
    if BASE_KEY not in data:
        return data
    base = data.pop(BASE_KEY)
    if not isinstance(base, str) or not base or "\x00" in base:
        raise ConfigError(f"{config_path}: key '{BASE_KEY}': expected the path of another config, got {base!r}")
    base_path = config_path.parent / base
    chain = (*included_from, config_path)
    if any(base_path.resolve() == seen.resolve() for seen in chain):
        raise ConfigError(f"{config_path}: key '{BASE_KEY}': configs name each other as base (" + " -> ".join(map(str, (*chain, base_path))) + ")")
    return _merged(_read_mapping(base_path, chain), data)


def load_config(path: str | os.PathLike[str], model: type[ModelT], overrides: dict[str, Any] | None = None) -> ModelT:
    """Loads `path` (YAML, its `base` merged under it: module docstring) into `model`; `overrides` (dotted keys) are
    applied on top before validation."""
    config_path = Path(path)
    data = _read_mapping(config_path)
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{config_path}: override '{dotted}' goes through a non-mapping key '{part}'")
        node[leaf] = value
    return validate_config(data, model, str(config_path))
