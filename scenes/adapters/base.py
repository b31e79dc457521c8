"""What every dataset adapter shares: the dataset interface, the clear-error type, bad-input skipping, the summary.

An adapter turns one on-disk dataset into scene records, lazily: `frames(log_id)` reads one frame's files when that
frame is requested, never the whole log. Bad input raises `AdapterError` naming the file and the problem; with
`skip_bad=True` the offending frame (or log) is logged and skipped instead.
"""

from __future__ import annotations

import abc
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather

from scenes.categories import UnknownCategoryError
from scenes.errors import DrivestackError
from scenes.records import Frame, LaneGraph, RecordError, Scenario
from scenes.regions import RasterRegionOfInterest, RegionOfInterest

LOGGER: Final = logging.getLogger("scenes.adapters")

T = TypeVar("T")


class AdapterError(DrivestackError, ValueError):
    """A dataset file that is missing, truncated or inconsistent; the message names the file and the problem."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def require_file(path: Path, what: str = "file") -> Path:
    if not path.is_file():
        raise AdapterError(path, f"{what} not found")
    return path


def require_dir(path: Path, what: str = "directory") -> Path:
    if not path.is_dir():
        raise AdapterError(path, f"{what} not found")
    return path


def read_image(path: Path) -> np.ndarray:
    """An image file (PNG, JPEG) -> (H, W, 3) uint8 RGB."""
    from PIL import Image, UnidentifiedImageError

    require_file(path, "image")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as error:
        raise AdapterError(path, f"unreadable image ({error})") from None


def read_feather_columns(path: Path, columns: Mapping[str, str]) -> pa.Table:
    """Reads a feather file and checks that it has `columns` (name -> kind: "float", "int", "str") with finite floats."""
    require_file(path, "feather file")
    try:
        table = feather.read_table(path, memory_map=True)
        # Full validation turns corrupt buffers (e.g. string offsets past the data) into errors instead of crashes.
        table.validate(full=True)
        names = table.column_names  # decoding the schema's names may fail on a corrupt file too
    except (pa.ArrowException, OSError, UnicodeDecodeError) as error:
        raise AdapterError(path, f"not a readable feather file (truncated or corrupt: {error})") from None
    missing = [name for name in columns if name not in names]
    if missing:
        raise AdapterError(path, f"missing column(s) {missing}; found {names}")
    for name, kind in columns.items():
        column_type = table.schema.field(name).type
        ok = {
            "float": pa.types.is_floating(column_type) or pa.types.is_integer(column_type),
            "int": pa.types.is_integer(column_type),
            "str": pa.types.is_string(column_type) or pa.types.is_large_string(column_type),
        }[kind]
        if not ok:
            raise AdapterError(path, f"column {name!r} has type {column_type}, expected {kind}")
        if table.column(name).null_count:
            raise AdapterError(path, f"column {name!r} has {table.column(name).null_count} null value(s)")
        if kind == "float":
            values = table.column(name).to_numpy()
            bad = ~np.isfinite(values.astype(np.float64))
            if bad.any():
                raise AdapterError(path, f"column {name!r} has NaN or inf at row {int(np.flatnonzero(bad)[0])}")
    return table


def guarded(path: object, build: Callable[[], T]) -> T:
    """Runs `build`, turning record-validation and category errors into an `AdapterError` naming `path`."""
    try:
        return build()
    except AdapterError:
        raise
    except (RecordError, UnknownCategoryError) as error:
        raise AdapterError(path, str(error)) from None


def skip_or_raise(error: AdapterError, skip_bad: bool, what: str) -> None:
    """With `skip_bad`, logs the error and returns (the caller skips `what`); otherwise re-raises it."""
    if not skip_bad:
        raise error
    LOGGER.warning("skipping %s: %s", what, error)


@dataclass(frozen=True)
class DatasetSummary:
    """What `drivestack inspect` prints about a dataset."""

    name: str
    root: str
    num_logs: int
    num_frames: int
    sensors: tuple[str, ...]
    category_counts: Mapping[str, int]
    start_timestamp_ns: int | None
    end_timestamp_ns: int | None
    notes: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        if self.start_timestamp_ns is None or self.end_timestamp_ns is None:
            return math.nan
        return (self.end_timestamp_ns - self.start_timestamp_ns) * 1e-9


class Dataset(abc.ABC):
    """A dataset on disk seen as logs of frames; subclasses implement the abstract methods for one format."""

    name: str = "dataset"

    def __init__(self, root: Path, *, skip_bad: bool = False) -> None:
        self.root = Path(root)
        self.skip_bad = skip_bad

    @abc.abstractmethod
    def logs(self) -> list[str]:
        """Ids of the dataset's logs (scenes, drives, splits...), in a stable order."""

    @abc.abstractmethod
    def frames(self, log_id: str) -> Iterator[Frame]:
        """The frames of one log in time order, read lazily."""

    def lane_graph(self, log_id: str) -> LaneGraph | None:
        return None

    def region_of_interest(self, log_id: str) -> RegionOfInterest | None:
        """The region of the log's map that evaluations consider: by default from the lane graph's rasters (its `roi`
        layer, else its drivable area dilated by 5 m); None when the log has no such map."""
        lane_graph = self.lane_graph(log_id)
        return RasterRegionOfInterest.from_lane_graph(lane_graph) if lane_graph is not None else None

    def scenarios(self) -> Iterator[Scenario]:
        raise AdapterError(self.root, f"{self.name} provides no forecasting scenarios")

    def sensors(self) -> tuple[str, ...]:
        return ()

    def timestamps_ns(self, log_id: str) -> list[int]:
        """Frame timestamps of a log, cheaply (without reading sensor data)."""
        return [frame.timestamp_ns for frame in self.frames(log_id)]

    def category_counts(self, log_id: str) -> Counter[str]:
        counts: Counter[str] = Counter()
        for frame in self.frames(log_id):
            if frame.annotations is not None:
                counts.update(frame.annotations.category_names.tolist())
        return counts

    def notes(self) -> tuple[str, ...]:
        return ()

    def summary(self, *, progress: bool = False) -> DatasetSummary:
        """Counts over every log (timestamps and annotations only: no sensor data is read where avoidable)."""
        from rich.progress import track

        logs = self.logs()
        num_frames = 0
        counts: Counter[str] = Counter()
        start: int | None = None
        end: int | None = None
        for log_id in track(logs, description=f"summarising {self.name}", disable=not progress, transient=True):
            try:
                stamps = self.timestamps_ns(log_id)
                counts.update(self.category_counts(log_id))
            except AdapterError as error:
                skip_or_raise(error, self.skip_bad, f"log {log_id}")
                continue
            num_frames += len(stamps)
            if stamps:
                start = min(stamps) if start is None else min(start, min(stamps))
                end = max(stamps) if end is None else max(end, max(stamps))
        return DatasetSummary(
            name=self.name,
            root=str(self.root),
            num_logs=len(logs),
            num_frames=num_frames,
            sensors=self.sensors(),
            category_counts=dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))),
            start_timestamp_ns=start,
            end_timestamp_ns=end,
            notes=self.notes(),
        )
