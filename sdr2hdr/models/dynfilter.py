"""Dynamic (per-pixel) up-sampling filters of JSInet.

Implemented as a loop over the taps (:mod:`sdr2hdr.models.dynfilter_taploop`); the
im2col (unfold) variants below are the reference-speed alternatives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from . import dynfilter_taploop

__all__ = [
    "LCE_TAPS",
    "DR_TAPS",
    "dynamic_local_filter",
    "dynamic_separable_filter",
    "dynamic_local_filter_unfold",
    "dynamic_separable_filter_unfold",
]

LCE_TAPS = 9  # side of the 2D local filter of the LCE subnet (81 taps)
DR_TAPS = 41  # length of each 1D separable filter of the DR subnet


def dynamic_local_filter(
    x: Tensor, filters: Tensor, scale: int, k: int = LCE_TAPS, softmax: bool = False
) -> Tensor:
    """Dynamic 2D local up-sampling filter (LCE subnet), before pixel shuffle.

    ``x``: ``B x C x H x W``.  ``filters``: ``B x (k*k*s*s) x H x W`` in the
    authors' layout, channel ``tap * s*s + subpixel`` with ``tap = row * k + col``
    and ``subpixel = i * s + j`` (HR offset ``(i, j)`` inside the ``s x s``
    block).  With ``softmax=True`` the filters are logits and the softmax over
    the ``k*k`` taps of each (subpixel, pixel) filter is fused into the filtering.

    Returns ``out``: ``B x C x s*s x H x W`` with::

        out[b, c, q, y, x] = sum_{row, col} f[b, (row*k + col)*s*s + q, y, x]
                             * x[b, c, y + row - k//2, x + col - k//2]

    (zero outside the image), ``f = softmax_taps(filters)`` or ``filters``.
    ``out.reshape(B, C*s*s, H, W)`` is in PyTorch ``pixel_shuffle`` order.
    Accumulated in the promoted dtype of ``x`` and ``filters``.  Differentiable.
    """
    s2 = scale * scale
    b, _, h, w = x.shape
    if filters.shape != (b, k * k * s2, h, w):
        raise ValueError(f"filters shape {tuple(filters.shape)} != {(b, k * k * s2, h, w)}")
    return dynfilter_taploop.local_filter(x, filters, s2, k, softmax)


def dynamic_separable_filter(
    x: Tensor, filters_v: Tensor, filters_h: Tensor, scale: int, k: int = DR_TAPS
) -> Tensor:
    """Dynamic separable 1D up-sampling filter (DR subnet), before pixel shuffle.

    ``x``: ``B x C x H x W``.  ``filters_v``, ``filters_h``: ``B x (s*s*k) x H x W``
    in the authors' layout, channel ``subpixel * k + tap``.  For every sub-pixel
    ``q`` and channel ``c``, first filter vertically, then filter *that result*
    horizontally with the horizontal filters of the same sub-pixel (zero
    padding both times; no normalisation)::

        v[b, c, q, y, x]   = sum_t filters_v[b, q*k + t, y, x] * x[b, c, y + t - k//2, x]
        out[b, c, q, y, x] = sum_t filters_h[b, q*k + t, y, x] * v[b, c, q, y, x + t - k//2]

    Returns ``out``: ``B x C x s*s x H x W`` (PyTorch ``pixel_shuffle`` order
    after ``reshape(B, C*s*s, H, W)``), accumulated in the promoted dtype of the
    inputs.  Differentiable.
    """
    b, _, h, w = x.shape
    s2 = scale * scale
    for name, f in (("filters_v", filters_v), ("filters_h", filters_h)):
        if f.shape != (b, s2 * k, h, w):
            raise ValueError(f"{name} shape {tuple(f.shape)} != {(b, s2 * k, h, w)}")
    return dynfilter_taploop.separable_filter(x, filters_v, filters_h, s2, k)


# Reference-speed alternatives kept for the benchmark (``--ops``) and as a
# cross-check in the tests: im2col (unfold) followed by a per-pixel contraction.


def dynamic_local_filter_unfold(x: Tensor, filters: Tensor, scale: int, k: int = LCE_TAPS) -> Tensor:
    """Same result as :func:`dynamic_local_filter`, via ``F.unfold`` + einsum."""
    b, c, h, w = x.shape
    s2 = scale * scale
    cols = F.unfold(x, k, padding=k // 2).view(b, c, k * k, h, w)
    f = filters.reshape(b, k * k, s2, h, w)
    return torch.einsum("bcthw,btqhw->bcqhw", cols, f)


def dynamic_separable_filter_unfold(
    x: Tensor, filters_v: Tensor, filters_h: Tensor, scale: int, k: int = DR_TAPS
) -> Tensor:
    """Same result as :func:`dynamic_separable_filter`, via strided unfold views + einsum."""
    b, c, h, w = x.shape
    s2 = scale * scale
    half = k // 2
    fv = filters_v.reshape(b, s2, k, h, w)
    fh = filters_h.reshape(b, s2, k, h, w)
    cols = F.pad(x, (0, 0, half, half)).unfold(2, k, 1)  # B C H W k
    v = torch.einsum("bchwt,bqthw->bcqhw", cols, fv)
    cols = F.pad(v, (half, half)).unfold(4, k, 1)  # B C q H W k
    return torch.einsum("bcqhwt,bqthw->bcqhw", cols, fh)
