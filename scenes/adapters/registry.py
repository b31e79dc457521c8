"""`--data NAME:PATH` -> a dataset object; one entry per on-disk format, plus `synth` (simulated on the fly).

    open_dataset("av2:/data/av2/sensor/val")             AV2 sensor dataset (log, split or dataset dir)
    open_dataset("av2-mf:/data/av2/motion/val")          AV2 motion-forecasting scenarios
    open_dataset("nuscenes:/data/nuscenes", version="v1.0-mini")
    open_dataset("kitti:/data/kitti_raw")                KITTI raw drives (+ depth ground truth when merged in)
    open_dataset("kitti-object:/data/kitti/object")      KITTI 3D object benchmark
    open_dataset("kitti-tracking:/data/kitti/tracking")  KITTI tracking benchmark (sequences of a split)
    open_dataset("cityscapes:/data/cityscapes")          Cityscapes-style image/label folders
    open_dataset("synth", logs=2, seed=0)                 the synthetic city

Adapters are imported only when their dataset is opened, so importing the registry stays cheap.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from scenes.adapters.base import AdapterError, Dataset
from scenes.caching import per_instance_lru_cache
from scenes.config import ConfigError, validate_config
from scenes.records import Frame, LaneGraph

if TYPE_CHECKING:
    from scenes.synth.world import SynthLog

# name -> (module, class) of the adapter; the path after "NAME:" is its root directory.
ADAPTERS: Final[dict[str, tuple[str, str]]] = {
    "av2": ("scenes.adapters.av2", "AV2SensorDataset"),
    "av2-mf": ("scenes.adapters.av2_mf", "AV2MotionForecastingDataset"),
    "nuscenes": ("scenes.adapters.nuscenes", "NuScenesDataset"),
    "kitti": ("scenes.adapters.kitti", "KittiRawDataset"),
    "kitti-object": ("scenes.adapters.kitti", "KittiObjectDataset"),
    "kitti-tracking": ("scenes.adapters.kitti_tracking", "KittiTrackingDataset"),
    "cityscapes": ("scenes.adapters.cityscapes", "CityscapesDataset"),
}
DATASET_NAMES: Final = (*ADAPTERS, "synth")


class SynthDataset(Dataset):
    """The synthetic city as a dataset: log `index` is `simulate_log(config, seed, index)`, simulated when first used.

    Listing the logs simulates nothing (their ids follow from the seed and index). The last simulated log is kept, so
    a caller that reads everything it needs of one log before moving to the next (frames, lane graph, timestamps...,
    as the pipelines and `summary` do) simulates each log once and holds one log at a time.
    """

    name = "synth"

    def __init__(self, *, logs: int = 1, seed: int = 0, skip_bad: bool = False, **config: Any) -> None:
        super().__init__(Path("synth"), skip_bad=skip_bad)
        try:
            world = importlib.import_module("scenes.synth.world")
        except ModuleNotFoundError as error:
            raise AdapterError("synth", f"the synthetic city is not available ({error})") from None
        self._simulate: Callable[..., SynthLog] = world.simulate_log
        try:
            self.config = validate_config(config, world.SynthConfig, "synth options")
        except ConfigError as error:
            raise AdapterError("synth", str(error)) from None
        self.num_logs = logs
        self.seed = seed
        self._log_ids = [world.log_id(seed, index) for index in range(logs)]
        self._index_of = {log_id: index for index, log_id in enumerate(self._log_ids)}

    @per_instance_lru_cache(maxsize=1)
    def simulated(self, index: int) -> SynthLog:
        """Log `index`, simulated unless it is the last one simulated."""
        if not 0 <= index < self.num_logs:
            raise AdapterError("synth", f"no log {index}: the dataset has {self.num_logs}")
        log = self._simulate(self.config, self.seed, index)
        if log.log_id != self._log_ids[index]:
            raise AdapterError("synth", f"log {index} was simulated as {log.log_id}, expected {self._log_ids[index]}")
        return log

    def logs(self) -> list[str]:
        return list(self._log_ids)

    def _log(self, log_id: str) -> SynthLog:
        if log_id not in self._index_of:
            raise AdapterError("synth", f"no simulated log {log_id!r}")
        return self.simulated(self._index_of[log_id])

    def frames(self, log_id: str) -> Iterator[Frame]:
        yield from self._log(log_id).frames

    def lane_graph(self, log_id: str) -> LaneGraph | None:
        return self._log(log_id).lane_graph

    def sensors(self) -> tuple[str, ...]:
        names = set()
        if self.config.lidar_beams is not None:
            names.add("lidar")
        names.update(self.config.cameras)
        return tuple(sorted(names))


def parse_spec(spec: str) -> tuple[str, Path | None]:
    """"NAME:PATH" -> (NAME, PATH); "synth" -> ("synth", None)."""
    if spec == "synth":
        return "synth", None
    name, separator, path = spec.partition(":")
    if not separator or not path:
        raise AdapterError(spec, f"expected NAME:PATH or 'synth', with NAME one of {', '.join(ADAPTERS)}")
    if name not in ADAPTERS:
        raise AdapterError(spec, f"unknown dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}")
    return name, Path(path).expanduser()


def open_dataset(spec: str, **options: Any) -> Dataset:
    """Opens the dataset named by `spec`; `options` go to its adapter (e.g. `skip_bad=True`, `version=...`)."""
    name, path = parse_spec(spec)
    if name == "synth":
        return SynthDataset(**options)
    module_name, class_name = ADAPTERS[name]
    adapter = getattr(importlib.import_module(module_name), class_name)
    accepted = set(inspect.signature(adapter).parameters) - {"root"}
    unknown = set(options) - accepted
    if unknown:
        raise AdapterError(spec, f"{name} takes no option(s) {sorted(unknown)}; its options are {sorted(accepted)}")
    if path is None or not path.exists():
        raise AdapterError(path, f"{name} dataset directory not found")
    return adapter(path, **options)
