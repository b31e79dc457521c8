"""The registry: spec parsing, every adapter reachable by name, and `synth` simulating on the fly."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

from scenes.adapters.base import AdapterError, Dataset
from scenes.adapters.registry import ADAPTERS, open_dataset, parse_spec


def test_parse_spec() -> None:
    assert parse_spec("synth") == ("synth", None)
    name, path = parse_spec("kitti-object:/data/kitti:odd/object")
    assert name == "kitti-object" and str(path) == "/data/kitti:odd/object"
    for bad in ("kitti", "kitti:"):
        with pytest.raises(AdapterError, match=rf"^{bad}: expected NAME:PATH or 'synth', with NAME one of av2, "):
            parse_spec(bad)
    with pytest.raises(AdapterError, match=r"^lyft:/data: unknown dataset 'lyft'; expected one of av2, "):
        parse_spec("lyft:/data")


def test_unknown_option_names_the_accepted_ones(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match=r"av2 takes no option\(s\) \['version'\]; its options are \['cameras', 'skip_bad', 'split', 'with_map'\]"):
        open_dataset(f"av2:{tmp_path}", version="v1.0-mini")


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_every_adapter_is_a_dataset(name: str) -> None:
    module, cls = ADAPTERS[name]
    adapter = getattr(importlib.import_module(module), cls)
    assert issubclass(adapter, Dataset) and adapter.name == name


def test_synth_simulates_on_the_fly() -> None:
    from scenes.synth.world import SynthConfig, simulate_log

    options = {
        "seconds": 0.3, "lidar_beams": None, "cameras": (), "warmup_s": 0.0,
        "num_vehicles": 3, "num_pedestrians": 2, "num_cyclists": 0, "num_static_objects": 2,
    }  # fmt: skip
    dataset = open_dataset("synth", logs=2, seed=3, **options)
    logs = dataset.logs()
    assert len(logs) == 2 and logs[0] != logs[1]
    truth = simulate_log(SynthConfig(**options), 3, 1)
    frames = list(dataset.frames(logs[1]))
    assert [f.timestamp_ns for f in frames] == [f.timestamp_ns for f in truth.frames]
    assert frames[-1].annotations is not None and truth.frames[-1].annotations is not None
    np.testing.assert_allclose(frames[-1].annotations.center_m, truth.frames[-1].annotations.center_m)
    assert dataset.lane_graph(logs[1]) is not None
    summary = dataset.summary()
    assert summary.num_logs == 2 and summary.num_frames == 2 * len(truth.frames) and summary.sensors == ()


def test_synth_bad_option_is_clear() -> None:
    with pytest.raises(AdapterError, match="synth options: unknown key 'sekonds'"):
        open_dataset("synth", sekonds=3)
