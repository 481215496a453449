"""HDR-VDP 2.2.2 §3.7 (``../shared/spec/hdrvdp.md``): the order-3, 4-orientation steerable pyramid.

Spatial-domain correlations with mirror borders, computed by FFT, in float64 on the
input's device; used by :mod:`sdr2hdr.metrics.hdrvdp`'s front end.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import sp3_filters

_PAD = 8  # largest steerable-pyramid kernel radius (lof is 17x17)


def next_fast_len(n: int) -> int:
    while True:
        m = n
        for p in (2, 3, 5, 7):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def pyramid_height(h: int, w: int) -> int:
    ht = 0
    while min(h, w) >= 17:
        ht += 1
        h, w = h // 2, w // 2
    return ht


class Correlator:
    """2-D correlation with a fixed set of kernels, mirror borders, by FFT.

    ``out[y, x] = sum_{u,v} K[u, v] * X[m(y+u-r), m(x+v-r)]`` with torch 'reflect'
    (= scipy 'mirror') borders. The input is reflect-padded by 8 (the largest radius),
    each kernel is placed so that its centre lines up, and one circular correlation
    on a zero-extended 5/7-smooth grid gives every output without wrap-around.
    Kernel spectra are cached per grid size.
    """

    def __init__(self, kernels: tuple[np.ndarray, ...], device: torch.device):
        self.kernels = kernels
        self.device = device
        self._spectra: dict[tuple[int, int], torch.Tensor] = {}

    def _spectrum(self, nh: int, nw: int) -> torch.Tensor:
        key = (nh, nw)
        if key not in self._spectra:
            stack = torch.zeros((len(self.kernels), nh, nw), dtype=torch.float64, device=self.device)
            for i, k in enumerate(self.kernels):
                off = _PAD - (k.shape[0] - 1) // 2
                stack[i, off : off + k.shape[0], off : off + k.shape[1]] = torch.from_numpy(k.copy())
            self._spectra[key] = torch.conj(torch.fft.rfft2(stack))
        return self._spectra[key]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: h x w (h, w >= 9). Returns ``len(kernels) x h x w``."""
        h, w = x.shape
        xp = F.pad(x[None, None], (_PAD, _PAD, _PAD, _PAD), mode="reflect")[0, 0]
        nh, nw = next_fast_len(h + 2 * _PAD), next_fast_len(w + 2 * _PAD)
        spec = torch.fft.rfft2(xp, s=(nh, nw))
        out = torch.fft.irfft2(spec[None] * self._spectrum(nh, nw), s=(nh, nw))
        return out[:, :h, :w]


def steerable_pyramid(p: torch.Tensor, cache: dict) -> list[torch.Tensor]:
    """§3.7: bands fine to coarse, each ``count x h x w`` (count 1 for high-pass and base)."""
    device = p.device
    if "sp_top" not in cache:
        cache["sp_top"] = Correlator((sp3_filters.HI0, sp3_filters.LO0), device)
        cache["sp_level"] = Correlator((*sp3_filters.BANDS, sp3_filters.LOF), device)
    hi, lo = cache["sp_top"](p)
    bands = [hi[None]]
    for _ in range(pyramid_height(*p.shape)):
        out = cache["sp_level"](lo)
        bands.append(out[:4])
        lo = out[4, ::2, ::2]
    bands.append(lo[None])
    return bands
