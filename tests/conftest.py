"""Shared fixtures. Real data samples live in ../shared/data beside the repository (never copied into it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"real data samples not found at {root} (set DRIVESTACK_SHARED_DATA)")
    return root
