"""The training-source interface and the helpers every source shares.

A :class:`Source` is a family of scenes that can produce random (LR SDR, HR
HDR10) patches as integer codes: SDR ``uint8`` ``3 x h x w`` (BT.709 limited
Y'CbCr, /255 for the network) and HDR ``int16`` ``3 x H x W`` (BT.2020 PQ
limited Y'CbCr, /1023). Concrete sources live in :mod:`sdr2hdr.data.datasets`
(synthesised from HDR stills and videos, graded video pairs, the authors'
.mat files) and :mod:`sdr2hdr.data.stillpairs` (real SDR/HDR photo pairs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sdr2hdr.data.degrade import Degradation

__all__ = ["Source", "scene_name", "single_thread"]


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside (per-patch ops are tiny: threads only add overhead)."""
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def scene_name(path: str | Path) -> str:
    """The scene name of a file: its stem (``polyhaven/assets__sky.exr`` -> ``assets__sky``)."""
    return Path(path).stem


def _crop_flip_rng(rng: np.random.Generator) -> tuple[bool, bool]:
    return bool(rng.random() < 0.5), bool(rng.random() < 0.5)


def _flip(a: np.ndarray | torch.Tensor, fh: bool, fv: bool):  # noqa: ANN202
    if isinstance(a, torch.Tensor):
        dims = [d for d, f in ((-1, fh), (-2, fv)) if f]
        return a.flip(dims) if dims else a
    if fh:
        a = a[..., :, ::-1]
    if fv:
        a = a[..., ::-1, :]
    return np.ascontiguousarray(a)


def _codes(sdr: torch.Tensor, hdr: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    s = np.round(sdr.numpy() * 255.0).astype(np.uint8)
    h = np.round(hdr.numpy() * 1023.0).astype(np.int16)
    return s, h


@dataclass
class Source:
    """A family of scenes that can produce (SDR LR, HDR HR) patches. Subclasses fill ``names``."""

    names: list[str] = field(default_factory=list)
    kind: str = ""
    #: True for real SDR/HDR pairs (the SDR is what a camera or colourist made, not synthesised).
    real: bool = False

    def weight(self, i: int, hr: int) -> float:
        """Patches scene ``i`` holds (non-overlapping HR patches); sampling weight."""
        raise NotImplementedError

    def patch(self, i: int, rng: np.random.Generator, hr: int, scale: int, deg: Degradation) -> tuple[np.ndarray, np.ndarray]:
        """One random patch of scene ``i`` as integer codes (SDR uint8, HDR int16)."""
        raise NotImplementedError

    def describe(self) -> str:
        return f"{len(self.names)} {self.kind}"


