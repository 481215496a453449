"""Dynamic (per-pixel) up-sampling filters of JSInet and the choice of their implementation.

Two implementations compute the same sums (to float32 rounding):

* ``"taploop"`` (:mod:`sdr2hdr.models.dynfilter_taploop`): one in-place multiply-accumulate
  over the whole image per tap, 81 + 82 passes over a float32 accumulator.  Eager PyTorch,
  no compiler needed, custom tap-by-tap backward.  The faster one on CPU, and the default
  there (measured with ``python benchmarks/bench_model.py --dynfilter``; see
  :data:`CPU_DEFAULT`).
* ``"fused"`` (:mod:`sdr2hdr.models.dynfilter_fused`): each filter stage one reduction over
  its taps, compiled by ``torch.compile`` (inductor: Triton on CUDA, C++ on CPU); every
  output is written once and the filters read once.  The default on CUDA, where each tap of
  the loop is a kernel and a round trip of the accumulator through memory.

:func:`select_impl` picks one per call: the ``impl`` argument, else ``$SDR2HDR_DYNFILTER``
(``auto``, ``fused`` or ``taploop``), else ``auto``: fused on CUDA when ``torch.compile``
can work there (Triton installed), :data:`CPU_DEFAULT` on CPU, the tap loop elsewhere.
"""

from __future__ import annotations

import functools
import os
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

from . import dynfilter_fused, dynfilter_taploop

__all__ = [
    "LCE_TAPS",
    "DR_TAPS",
    "IMPL_ENV",
    "IMPLS",
    "CPU_DEFAULT",
    "select_impl",
    "dynamic_local_filter",
    "dynamic_separable_filter",
    "dynamic_local_filter_unfold",
    "dynamic_separable_filter_unfold",
]

LCE_TAPS = 9  # side of the 2D local filter of the LCE subnet (81 taps)
DR_TAPS = 41  # length of each 1D separable filter of the DR subnet

#: Environment variable that overrides the automatic choice (tests, benchmarks).
IMPL_ENV = "SDR2HDR_DYNFILTER"
IMPLS = ("auto", "fused", "taploop")
#: What ``auto`` runs on CPU: the tap loop.  Faster there (one forward's filtering at LR
#: 256x448 on one thread of this project's AVX2 CPU, medians of 9 alternating runs: x2 389 vs
#: 654 ms, x4 1.9 vs 2.7 s; ``bench_model.py --dynfilter``: each pass streams one filter
#: plane, inductor's C++ reductions read 81 at once), bit-identical to earlier releases, and
#: free of the per-process compile (1-3 minutes on a busy 2-core CPU) and the C++ compiler.
CPU_DEFAULT = "taploop"


@functools.cache
def fused_unavailable(device_type: str) -> str | None:
    """:func:`dynfilter_fused.unavailable_reason`, checked once per device type."""
    return dynfilter_fused.unavailable_reason(torch.device(device_type))


@functools.cache
def warn_once(message: str) -> None:
    """Warn about ``message`` once per process (cached: the same choice is made for every forward)."""
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def select_impl(device: torch.device, impl: str | None = None) -> str:
    """``"fused"`` or ``"taploop"`` for tensors on ``device``.

    ``impl`` (``auto``, ``fused``, ``taploop``; an unknown value is a ValueError) wins over
    ``$SDR2HDR_DYNFILTER`` (an unknown value there is warned about once and read as
    ``auto``).  ``fused`` asked for explicitly where ``torch.compile`` cannot work is a
    RuntimeError naming the reason; ``auto`` then falls back to the tap loop with a warning.
    """
    if impl is None:
        impl = os.environ.get(IMPL_ENV, "").strip().lower() or "auto"
        if impl not in IMPLS:
            warn_once(f"{IMPL_ENV}={impl!r} is not one of {', '.join(IMPLS)}; using auto")
            impl = "auto"
    elif impl not in IMPLS:
        raise ValueError(f"dynamic filter implementation {impl!r} is not one of {', '.join(IMPLS)}")
    if impl == "taploop":
        return impl
    if impl == "auto" and device.type != "cuda":
        return CPU_DEFAULT if device.type == "cpu" else "taploop"
    reason = fused_unavailable(device.type)
    if reason is None:
        return "fused"
    if impl == "fused":
        raise RuntimeError(f"the fused dynamic filters cannot run on {device.type}: {reason}")
    warn_once(f"dynamic filters: using the tap loop on {device.type} ({reason})")
    return "taploop"


def dynamic_local_filter(
    x: Tensor, filters: Tensor, scale: int, k: int = LCE_TAPS, softmax: bool = False, impl: str | None = None
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
    Accumulated in the promoted dtype of ``x`` and ``filters``.  ``impl``: see
    :func:`select_impl`.  Differentiable with either implementation.
    """
    s2 = scale * scale
    b, _, h, w = x.shape
    if filters.shape != (b, k * k * s2, h, w):
        raise ValueError(f"filters shape {tuple(filters.shape)} != {(b, k * k * s2, h, w)}")
    if select_impl(x.device, impl) == "fused":
        return dynfilter_fused.local_filter(x, filters, s2, k, softmax)
    return dynfilter_taploop.local_filter(x, filters, s2, k, softmax)


def dynamic_separable_filter(
    x: Tensor, filters_v: Tensor, filters_h: Tensor, scale: int, k: int = DR_TAPS, impl: str | None = None
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
    inputs.  ``impl``: see :func:`select_impl`.  Differentiable with either implementation.
    """
    b, _, h, w = x.shape
    s2 = scale * scale
    for name, f in (("filters_v", filters_v), ("filters_h", filters_h)):
        if f.shape != (b, s2 * k, h, w):
            raise ValueError(f"{name} shape {tuple(f.shape)} != {(b, s2 * k, h, w)}")
    if select_impl(x.device, impl) == "fused":
        return dynfilter_fused.separable_filter(x, filters_v, filters_h, s2, k)
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
