"""Config loading: unknown keys and wrong types are errors naming the file and the key; a `base` config is merged under
the config."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from scenes.config import ConfigError, StrictConfig, load_config


class Optimizer(StrictConfig):
    lr: float = 1e-3
    epochs: int = 10


class Example(StrictConfig):
    name: str
    optimizer: Optimizer = Optimizer()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "example.yaml"
    path.write_text(text)
    return path


def test_valid_config_and_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\noptimizer:\n  lr: 0.5\n")
    config = load_config(path, Example)
    assert config.optimizer.lr == 0.5 and config.optimizer.epochs == 10
    assert load_config(path, Example, overrides={"optimizer.epochs": 3}).optimizer.epochs == 3


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\noptimizer:\n  learning_rate: 0.5\n")
    with pytest.raises(ConfigError, match=r"example\.yaml: unknown key 'optimizer\.learning_rate'"):
        load_config(path, Example)


def test_wrong_type_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\noptimizer:\n  epochs: many\n")
    with pytest.raises(ConfigError, match=r"example\.yaml: key 'optimizer\.epochs'.*'many'"):
        load_config(path, Example)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [("name: [unclosed\n", "invalid YAML"), ("- a\n- b\n", "top level must be a mapping"), ("", "key 'name'")],
)
def test_malformed_files(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_config(write(tmp_path, text), Example)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.yaml: cannot read config"):
        load_config(tmp_path / "missing.yaml", Example)


def test_configs_are_frozen(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "name: a\n"), Example)
    with pytest.raises(ValidationError, match=r"(?s)^1 validation error for Example\nname\n  Instance is frozen"):
        config.name = "b"  # type: ignore[misc]
    with pytest.raises(ValidationError, match=r"(?s)for Optimizer\nlr\n  Instance is frozen"):
        config.optimizer.lr = 1.0  # type: ignore[misc]
    assert (config.name, config.optimizer.lr) == ("a", 1e-3)


class Stage(StrictConfig):
    name: str
    tags: list[str] = []
    optimizer: Optimizer = Optimizer()


def test_base_config_is_merged_under_the_config(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "root.yaml").write_text("name: root\ntags: [a, b]\noptimizer:\n  lr: 0.5\n  epochs: 4\n")
    (tmp_path / "shared" / "middle.yaml").write_text("base: root.yaml\noptimizer:\n  epochs: 7\n")
    leaf = tmp_path / "leaf.yaml"
    leaf.write_text("base: shared/middle.yaml\ntags: [c]\n")
    config = load_config(leaf, Stage)
    # The leaf's list replaces the root's; the middle config's epochs replace the root's, its lr is kept.
    assert (config.name, config.tags, config.optimizer.lr, config.optimizer.epochs) == ("root", ["c"], 0.5, 7)
    assert load_config(leaf, Stage, overrides={"optimizer.lr": 0.25}).optimizer == Optimizer(lr=0.25, epochs=7)


def test_bad_bases_name_the_config_that_names_them(tmp_path: Path) -> None:
    path = write(tmp_path, "base: missing.yaml\nname: a\n")
    with pytest.raises(ConfigError, match=r"example\.yaml: key 'base': cannot read .*missing\.yaml"):
        load_config(path, Example)
    path = write(tmp_path, "base: [a.yaml]\nname: a\n")
    with pytest.raises(ConfigError, match=r"example\.yaml: key 'base': expected the path of another config, got \['a\.yaml'\]"):
        load_config(path, Example)
    (tmp_path / "other.yaml").write_text("base: example.yaml\n")
    path = write(tmp_path, "base: other.yaml\nname: a\n")
    with pytest.raises(ConfigError, match=r"other\.yaml: key 'base': configs name each other as base \(.*example\.yaml -> .*other\.yaml -> .*example\.yaml\)"):
        load_config(path, Example)
    (tmp_path / "other.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"other\.yaml: invalid YAML"):
        load_config(path, Example)
    (tmp_path / "other.yaml").write_text("optimizer:\n  momentum: 0.9\n")
    with pytest.raises(ConfigError, match=r"example\.yaml: unknown key 'optimizer\.momentum'"):
        load_config(path, Example)


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60))
def test_fuzzed_yaml_never_crashes_obscurely(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fuzz.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_config(path, Example)
        except ConfigError as error:
            assert str(error).startswith(f"{path}: ")
