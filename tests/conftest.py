"""Shared fixtures: where ../shared lives, deterministic torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SDR2HDR_SHARED", REPO.parent / "shared"))

# One thread per xdist worker (CI runs -n 2 on 2 cores), else both cores.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def shared() -> Path:
    """The ../shared folder beside the checkout (data, spec, reference values)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED} (set SDR2HDR_SHARED)")
    return SHARED


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
