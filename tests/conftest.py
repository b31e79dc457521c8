"""Shared fixtures. Real data samples live in ../shared/data beside the repository (never copied into it)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import rankdata

from scenes.records import Boxes3D, Frame

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker gets one intra-op thread (and so do the commands it starts): `-n 2` on 2 cores
    with torch's default thread count runs the detector about 10x slower from oversubscription."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


def shared_data_dir() -> Path:
    """`$DRIVESTACK_SHARED_DATA`, else `../shared/data` beside the repository."""
    return Path(os.environ.get("DRIVESTACK_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def annotations_of(frame: Frame) -> Boxes3D:
    """The frame's annotations, which the test's data must have."""
    assert frame.annotations is not None
    return frame.annotations


def with_points(boxes: Boxes3D) -> Boxes3D:
    """The boxes with at least one LiDAR return inside (what the AV2 evaluators score)."""
    assert boxes.num_interior_pts is not None
    return boxes.observed()


def intensity_ranks(frame: Frame, category: str, min_points: int = 10, max_range_m: float = 50.0) -> list[float]:
    """For each `category` box within `max_range_m` holding at least `min_points` returns, the median rank of its
    returns' intensities among the sweep's (0 darkest, 1 brightest): a scale-free brightness that compares rigs whose
    intensity responses differ."""
    from perception.detection.box_ops import points_in_each_box

    assert frame.lidar is not None
    boxes = annotations_of(frame)
    boxes = boxes.select((np.asarray(boxes.category_names) == category) & (np.hypot(boxes.center_m[:, 0], boxes.center_m[:, 1]) <= max_range_m))
    rank = (rankdata(frame.lidar.intensity) - 1) / max(len(frame.lidar) - 1, 1)  # ties share their mean rank
    inside = points_in_each_box(frame.lidar.points_xyz_m, boxes.center_m, boxes.size_lwh_m, boxes.yaw_rad)
    return [float(np.median(rank[points])) for points in inside if len(points) >= min_points]


class ShellPayload:
    """Unpickling this object runs a shell command that creates `marker`: a safe loader must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def shell_payload(tmp_path: Path) -> ShellPayload:
    """A live code-execution payload whose marker file `tmp_path/pwned` must never appear."""
    return ShellPayload(tmp_path / "pwned")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"real data samples not found at {root} (set DRIVESTACK_SHARED_DATA)")
    return root
