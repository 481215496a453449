"""Fused dynamic filtering: each filter stage one reduction over its taps, compiled.

The tap loop (:mod:`sdr2hdr.models.dynfilter_taploop`) reads and rewrites the whole float32
accumulator once per tap (81 + 82 passes).  Here every filter stage is written as a sum over
the taps of ``filter * window`` (``Tensor.unfold`` views of the zero-padded input), which
``torch.compile`` (inductor) turns into a reduction kernel: each output is accumulated in
registers and written once, the filters are read once for all channels (one accumulator per
channel), half-precision filters are converted to the accumulation dtype as they are loaded,
and the LCE softmax (max, ``exp``, sum, division) is computed in the same reduction.  Inductor
generates Triton on CUDA and C++/OpenMP on CPU.

Gradients come from a custom backward (like the tap loop's): the filter gradients are
compiled pointwise kernels (softmax weights recomputed from the logits), and the input
gradients are the adjoint of the windows, ``F.fold`` (col2im) of compiled per-tap products.
Every compiled graph is an inference graph (no autograd inside), so nothing but the inputs
is saved for backward except ``v``, the separable filter's intermediate.

Eager, these sums would materialise ``C * k*k`` (or ``C * k``) shifted copies: they only run
compiled (``fullgraph=True``, and dynamo fails rather than fall back to eager when its
recompile limit is reached).  Compiled once per process and per (stage, taps, s^2, flags),
with dynamic shapes (``dynamic=True``): tiles of any size share one graph; batch 1 and
batch > 1, and each filter dtype, are separate graphs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sysconfig
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["unavailable_reason", "local_filter", "separable_filter"]

#: Dynamo settings while a fused filter runs: room for the graphs above, and an error
#: instead of the silent eager fallback (which would materialise the unfolded windows).
_DYNAMO_SETTINGS = {"recompile_limit": 64, "fail_on_recompile_limit_hit": True}


def unavailable_reason(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot generate the fused kernels on ``device``, or None if it can.

    Checks the prerequisites without compiling: dynamo support for this Python, then a
    Triton install (CUDA) or a C++ compiler and the Python headers (CPU, inductor's C++
    backend).  Other device types are reported unsupported.
    """
    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile (dynamo) does not support this Python"
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        return None if has_triton() else "Triton is not installed (inductor needs it on CUDA)"
    if device.type != "cpu":
        return f"the fused dynamic filters are written for CUDA and CPU, not {device.type}"
    from torch._inductor import config

    cxx = config.cpp.cxx if isinstance(config.cpp.cxx, (list, tuple)) else (config.cpp.cxx,)
    names = [c for c in cxx if c]
    if not any(shutil.which(c) for c in names):
        return f"no C++ compiler for inductor's CPU backend (looked for {', '.join(names)}; set CXX)"
    include = sysconfig.get_paths().get("include", "")
    if not os.path.exists(os.path.join(include, "Python.h")):
        return f"the Python headers are missing (no Python.h in {include}; install python3-dev)"
    return None


# --------------------------------------------------------------------------
# The sums, as traced by dynamo (never run eager).  Shapes: x padded ``xp`` in the
# accumulation dtype; filters in the authors' layouts, any float dtype; ``g`` the
# gradient of the output, ``B x C x s2 x H x W`` like the output.
# --------------------------------------------------------------------------


def _softmax_taps(z: Tensor, dim: int | tuple[int, ...]) -> Tensor:
    """``exp(z - max z) / sum exp(z - max z)`` over the tap dimension(s) ``dim``."""
    e = (z - z.amax(dim=dim, keepdim=True)).exp()
    return e / e.sum(dim=dim, keepdim=True)


def _local_taps(xp: Tensor, z: Tensor, k: int, s2: int, softmax: bool) -> Tensor:
    """LCE forward.  ``xp``: ``B x C x (H+k-1) x (W+k-1)``; ``z``: ``B x (k*k*s2) x H x W``,
    channel ``tap * s2 + q``.  Returns ``B x C x s2 x H x W`` in ``xp.dtype``."""
    b, c = xp.shape[0], xp.shape[1]
    h, w = z.shape[2], z.shape[3]
    f = z.to(xp.dtype).reshape(b, k, k, s2, h, w).permute(0, 3, 4, 5, 1, 2)  # B s2 H W k k
    windows = xp.unfold(2, k, 1).unfold(3, k, 1)  # B C H W k k (views)
    taps = (-2, -1)
    if softmax:
        f = (f - f.amax(dim=taps, keepdim=True)).exp()
        den = f.sum(dim=taps)
    # One reduction per channel: inductor fuses them into one kernel that reads f once.
    outs = [(f * windows[:, ch].unsqueeze(1)).sum(dim=taps) for ch in range(c)]
    if softmax:
        outs = [o / den for o in outs]
    return torch.stack(outs, 1)


def _local_grads(
    xp: Tensor, z: Tensor, g: Tensor, out: Tensor, k: int, s2: int, softmax: bool, need_x: bool
) -> tuple[Tensor, Tensor | None]:
    """LCE backward.  Returns ``(dz, cols)``: ``dz`` like ``z`` (accumulation dtype) and, with
    ``need_x``, ``cols = sum_q g[:, c, q] * w[:, tap, q]`` as ``B x (C*k*k) x (H*W)``, whose
    ``F.fold`` is the gradient of ``x``.  ``w`` is the filter (the softmax of ``z``).

    Broadcast as in the forward, taps last (``B x s2 x H x W x k x k``), then permuted to
    the outputs' layouts: broadcasting in the taps-first layouts made dynamo specialise H."""
    b, c = xp.shape[0], xp.shape[1]
    h, w = z.shape[2], z.shape[3]
    taps = (-2, -1)
    wt = z.to(xp.dtype).reshape(b, k, k, s2, h, w).permute(0, 3, 4, 5, 1, 2)  # B s2 H W k k
    if softmax:
        wt = _softmax_taps(wt, taps)
    windows = xp.unfold(2, k, 1).unfold(3, k, 1)  # B C H W k k
    dw = sum(g[:, ch, ..., None, None] * windows[:, ch].unsqueeze(1) for ch in range(c))  # B s2 H W k k
    if softmax:
        dw = wt * (dw - (g * out).sum(1)[..., None, None])
    cols = None
    if need_x:
        cols = (g[..., None, None] * wt.unsqueeze(1)).sum(2)  # B C H W k k
        cols = cols.permute(0, 1, 4, 5, 2, 3).reshape(b, c * k * k, h * w)
    return dw.permute(0, 4, 5, 1, 2, 3).reshape(b, k * k * s2, h, w), cols


def _separable_taps(xp: Tensor, zv: Tensor, zh: Tensor, k: int, s2: int) -> tuple[Tensor, Tensor]:
    """DR forward.  ``xp``: ``B x C x (H+k-1) x W``; ``zv``, ``zh``: ``B x (s2*k) x H x W``,
    channel ``q * k + tap``.  Returns ``(v, out)``, both ``B x C x s2 x H x W``: the vertical
    pass, written once, and the horizontal pass over zero-padded windows of it."""
    b, c = xp.shape[0], xp.shape[1]
    h, w = zv.shape[2], zv.shape[3]
    half = k // 2
    fv = zv.to(xp.dtype).reshape(b, s2, k, h, w).permute(0, 1, 3, 4, 2)  # B s2 H W k
    fh = zh.to(xp.dtype).reshape(b, s2, k, h, w).permute(0, 1, 3, 4, 2)
    windows = xp.unfold(2, k, 1)  # B C H W k
    v = [(fv * windows[:, ch].unsqueeze(1)).sum(dim=-1) for ch in range(c)]  # C x (B s2 H W)
    outs = [(fh * F.pad(vc, (half, half)).unfold(3, k, 1)).sum(dim=-1) for vc in v]
    return torch.stack(v, 1), torch.stack(outs, 1)


def _separable_grads_h(v: Tensor, zh: Tensor, g: Tensor, k: int, s2: int) -> tuple[Tensor, Tensor]:
    """DR backward, horizontal pass.  Returns ``(dzh, cols)``: ``dzh`` like ``zh`` and
    ``cols = g * fh`` as ``B x (C*s2*k) x (H*W)``, whose ``F.fold`` along W is ``dv``.
    (Taps last while broadcasting, as in :func:`_local_grads`.)"""
    b, c, _, h, w = v.shape
    half = k // 2
    fh = zh.to(v.dtype).reshape(b, s2, k, h, w).permute(0, 1, 3, 4, 2)  # B s2 H W k
    windows = F.pad(v, (half, half)).unfold(4, k, 1)  # B C s2 H W k
    dfh = sum(g[:, ch, ..., None] * windows[:, ch] for ch in range(c))  # B s2 H W k
    cols = (g[..., None] * fh.unsqueeze(1)).permute(0, 1, 2, 5, 3, 4)  # B C s2 k H W
    return dfh.permute(0, 1, 4, 2, 3).reshape(b, s2 * k, h, w), cols.reshape(b, c * s2 * k, h * w)


def _separable_grads_v(
    xp: Tensor, zv: Tensor, dv: Tensor, k: int, s2: int, need_x: bool
) -> tuple[Tensor, Tensor | None]:
    """DR backward, vertical pass.  Returns ``(dzv, cols)``: ``dzv`` like ``zv`` and, with
    ``need_x``, ``cols = sum_q dv[:, c, q] * fv[:, q]`` as ``B x (C*k) x (H*W)``, whose
    ``F.fold`` along H is the gradient of ``x``."""
    b, c, _, h, w = dv.shape
    fv = zv.to(dv.dtype).reshape(b, s2, k, h, w).permute(0, 1, 3, 4, 2)  # B s2 H W k
    windows = xp.unfold(2, k, 1)  # B C H W k
    dfv = sum(dv[:, ch, ..., None] * windows[:, ch].unsqueeze(1) for ch in range(c))  # B s2 H W k
    cols = None
    if need_x:
        cols = (dv[..., None] * fv.unsqueeze(1)).sum(2).permute(0, 1, 4, 2, 3).reshape(b, c * k, h * w)
    return dfv.permute(0, 1, 4, 2, 3).reshape(b, s2 * k, h, w), cols


_TRACED: dict[str, Callable[..., Any]] = {
    "local": _local_taps,
    "local_grads": _local_grads,
    "separable": _separable_taps,
    "separable_grads_h": _separable_grads_h,
    "separable_grads_v": _separable_grads_v,
}


@functools.cache
def _compiled(name: str, consts: tuple[int | bool, ...]) -> Callable[..., Any]:
    """``_TRACED[name]`` with its trailing int / bool arguments fixed, compiled once per process."""
    traced = _TRACED[name]

    def fused(*tensors: Tensor) -> Any:
        return traced(*tensors, *consts)

    return torch.compile(fused, dynamic=True, fullgraph=True)


def _call(name: str, consts: tuple[int | bool, ...], *tensors: Tensor) -> Any:
    """Run ``_TRACED[name]`` compiled, with autocast off (traced and guarded in one state).
    Inside a graph that is being compiled already, the sums are traced into it instead."""
    tensors = tuple(t.detach() for t in tensors)
    if torch.compiler.is_compiling():
        return _TRACED[name](*tensors, *consts)
    dev = tensors[0].device.type
    autocast = torch.autocast(dev, enabled=False) if dev in ("cuda", "cpu") else contextlib.nullcontext()
    with autocast, torch._dynamo.config.patch(**_DYNAMO_SETTINGS):
        return _compiled(name, consts)(*tensors)


class _FusedLocal(torch.autograd.Function):
    """LCE filter: compiled forward, compiled filter gradient, ``F.fold`` for the input's."""

    @staticmethod
    def forward(ctx, xp: Tensor, z: Tensor, s2: int, k: int, softmax: bool) -> Tensor:  # type: ignore[override]
        out = _call("local", (k, s2, softmax), xp, z)
        ctx.save_for_backward(xp, z, out)
        ctx.consts = (k, s2, softmax)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: Tensor):  # type: ignore[override]
        xp, z, out = ctx.saved_tensors
        k, s2, softmax = ctx.consts
        need_x = ctx.needs_input_grad[0]
        dz, cols = _call("local_grads", (k, s2, softmax, need_x), xp, z, g.contiguous(), out)
        dxp = None
        if need_x:
            dxp = F.pad(F.fold(cols, z.shape[2:], k, padding=k // 2), (k // 2,) * 4).to(xp.dtype)
        return dxp, dz.to(z.dtype), None, None, None


class _FusedSeparable(torch.autograd.Function):
    """DR filter: compiled forward (keeps ``v``), compiled filter gradients, ``F.fold`` for ``v``'s and the input's."""

    @staticmethod
    def forward(ctx, xp: Tensor, zv: Tensor, zh: Tensor, s2: int, k: int) -> Tensor:  # type: ignore[override]
        v, out = _call("separable", (k, s2), xp, zv, zh)
        ctx.save_for_backward(xp, zv, zh, v)
        ctx.consts = (k, s2)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: Tensor):  # type: ignore[override]
        xp, zv, zh, v = ctx.saved_tensors
        k, s2 = ctx.consts
        half = k // 2
        b, c, _, h, w = v.shape
        dzh, cols = _call("separable_grads_h", (k, s2), v, zh, g.contiguous())
        dv = F.fold(cols, (h, w), (1, k), padding=(0, half)).view(b, c, s2, h, w)
        need_x = ctx.needs_input_grad[0]
        dzv, cols = _call("separable_grads_v", (k, s2, need_x), xp, zv, dv)
        dxp = None
        if need_x:
            dxp = F.pad(F.fold(cols, (h, w), (k, 1), padding=(half, 0)), (0, 0, half, half)).to(xp.dtype)
        return dxp, dzv.to(zv.dtype), dzh.to(zh.dtype), None, None


def local_filter(x: Tensor, filters: Tensor, s2: int, k: int, softmax: bool) -> Tensor:
    """Fused LCE filter, same contract as :func:`sdr2hdr.models.dynfilter.dynamic_local_filter`.

    ``x``: ``B x C x H x W``; ``filters``: ``B x (k*k*s2) x H x W`` (shape already checked).
    Accumulates in the promoted dtype of ``x`` and ``filters`` (float32 for float32 ``x`` and
    half filters).  Returns ``B x C x s2 x H x W``; differentiable.
    """
    half = k // 2
    xp = F.pad(x.to(torch.promote_types(x.dtype, filters.dtype)), (half, half, half, half))
    return _FusedLocal.apply(xp, filters, s2, k, softmax)


def separable_filter(x: Tensor, filters_v: Tensor, filters_h: Tensor, s2: int, k: int) -> Tensor:
    """Fused DR filter, same contract as :func:`sdr2hdr.models.dynfilter.dynamic_separable_filter`.

    ``x``: ``B x C x H x W``; ``filters_v``, ``filters_h``: ``B x (s2*k) x H x W`` (shapes
    already checked).  Returns ``B x C x s2 x H x W``; differentiable.
    """
    half = k // 2
    dt = torch.promote_types(torch.promote_types(x.dtype, filters_v.dtype), filters_h.dtype)
    xp = F.pad(x.to(dt), (0, 0, half, half))
    return _FusedSeparable.apply(xp, filters_v, filters_h, s2, k)
