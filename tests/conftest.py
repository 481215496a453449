"""Shared fixtures: where ../shared lives, deterministic torch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers import SHARED

# One torch thread: the tests use tiny tensors, CI runs two xdist workers on 2 cores, and
# on a shared CPU a second OpenMP thread that gets descheduled stalls every parallel region.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The ../shared folder beside the checkout (data, spec, reference values)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED} (set SDR2HDR_SHARED)")
    return SHARED


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
