"""Tensor operations of JSInet: guided-filter decomposition, TF-order pixel
shuffle, and (re-exported from :mod:`sdr2hdr.models.dynfilter`) the two dynamic
(per-pixel) up-sampling filters.

All tensors are NCHW (``B x C x H x W``); channels_last inputs work too.

The dynamic filters have two implementations, a tap loop (eager, the CPU default)
and a fused single-pass formulation compiled by ``torch.compile`` (the CUDA
default); :mod:`sdr2hdr.models.dynfilter` chooses between them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .dynfilter import (
    DR_TAPS,
    LCE_TAPS,
    dynamic_local_filter,
    dynamic_local_filter_unfold,
    dynamic_separable_filter,
    dynamic_separable_filter_unfold,
)

__all__ = [
    "box_filter",
    "guided_filter",
    "decompose",
    "detail_layer",
    "depth_to_space_tf",
    "space_to_depth_tf",
    "dynamic_local_filter",
    "dynamic_separable_filter",
    "dynamic_local_filter_unfold",
    "dynamic_separable_filter_unfold",
    "LCE_TAPS",
    "DR_TAPS",
    "GUIDED_FILTER_WINDOW",
    "GUIDED_FILTER_EPS",
    "DETAIL_EPS",
]

GUIDED_FILTER_WINDOW = 5  # box side (radius 2)
GUIDED_FILTER_EPS = 0.01
DETAIL_EPS = 1e-15  # Xd = X / (Xb + 1e-15)


# --------------------------------------------------------------------------
# Guided filter / decomposition
# --------------------------------------------------------------------------


def box_filter(x: Tensor, r: int = GUIDED_FILTER_WINDOW) -> Tensor:
    """Mean over an ``r x r`` window (``r`` odd, the window *side*), per channel,
    with reflect padding that does not repeat the edge pixel (torch ``'reflect'``,
    numpy ``'reflect'``, MATLAB ``'symmetric'`` is the other one).

    Every window holds ``r*r`` real pixels, so the result is an exact mean.
    Needs ``H, W > r // 2``.
    """
    if r % 2 != 1:
        raise ValueError(f"box window side must be odd, got {r}")
    p = r // 2
    xp = F.pad(x, (p, p, p, p), mode="reflect")
    # Separable: mean along H then along W (10 adds per pixel instead of 25).
    xp = F.avg_pool2d(xp, (r, 1), stride=1)
    return F.avg_pool2d(xp, (1, r), stride=1)


def _autocast_off(x: Tensor):
    dev = x.device.type
    if dev in ("cuda", "cpu", "xpu", "mps", "hpu"):
        return torch.autocast(device_type=dev, enabled=False)
    import contextlib

    return contextlib.nullcontext()


def _compute_dtype(x: Tensor) -> torch.dtype:
    if x.dtype == torch.float64:
        return torch.float64
    return torch.float32


def guided_filter(
    x: Tensor,
    r: int = GUIDED_FILTER_WINDOW,
    eps: float = GUIDED_FILTER_EPS,
    guide: Tensor | None = None,
) -> Tensor:
    """Guided filter of He, Sun and Tang (2012), per channel.

    ``r`` is the box window *side* (the authors' ``r = 5``, i.e. radius 2),
    ``eps`` the regulariser.  Self-guided when ``guide`` is None (JSI-GAN)::

        mean_I = box(I); mean_p = box(p); cov = box(I*p) - mean_I*mean_p
        var = box(I*I) - mean_I**2; a = cov / (var + eps); b = mean_p - a*mean_I
        q = box(a) * I + box(b)

    Computed in at least **float32** (float64 stays float64) with autocast
    disabled, whatever the input dtype, and returned in that dtype: in half
    precision ``box(I*I) - mean_I**2``
    cancels catastrophically and the later ``X / (Xb + 1e-15)`` would divide by
    an ``eps`` that underflows to 0 (fp16 cannot hold 1e-15).  The cost is
    negligible (three channels, a few passes).
    """
    cdt = _compute_dtype(x)
    with _autocast_off(x):
        p = x.to(cdt)  # filtering input
        i = p if guide is None else guide.to(cdt)  # guide I
        mean_i = box_filter(i, r)
        if guide is None:
            mean_p = mean_i
            var = box_filter(i * i, r) - mean_i * mean_i
            cov = var
        else:
            mean_p = box_filter(p, r)
            var = box_filter(i * i, r) - mean_i * mean_i
            cov = box_filter(i * p, r) - mean_i * mean_p
        a = cov / (var + eps)
        b = mean_p - a * mean_i
        return box_filter(a, r) * i + box_filter(b, r)


def decompose(x: Tensor) -> tuple[Tensor, Tensor]:
    """Base / detail decomposition of JSInet: ``Xb = guided_filter(X, 5, 0.01)``,
    ``Xd = X / (Xb + 1e-15)``.  Both returned in float32 (float64 for float64
    input), see ``guided_filter``."""
    xb = guided_filter(x)
    with _autocast_off(x):
        xd = x.to(xb.dtype) / (xb + DETAIL_EPS)
    return xb, xd


def detail_layer(x: Tensor) -> Tensor:
    """Detail layer ``x / (guided_filter(x, 5, 0.01) + 1e-15)`` (the input of
    the DR subnet, and of discriminator D2 for ``Yd`` and ``Pd``).

    Computed in float32, returned in ``x.dtype`` (float32 for non-float input).
    Differentiable (the generator gets gradients through ``Pd``)."""
    xd = decompose(x)[1]
    return xd.to(x.dtype) if x.is_floating_point() else xd


# --------------------------------------------------------------------------
# Pixel shuffle in TensorFlow's channel order
# --------------------------------------------------------------------------


def depth_to_space_tf(x: Tensor, s: int) -> Tensor:
    """TensorFlow ``depth_to_space`` on an NCHW tensor.

    Input channel ``(i * s + j) * C + c`` goes to output channel ``c`` at
    position ``(y * s + i, x * s + j)``.  PyTorch's ``pixel_shuffle`` instead
    reads channel ``c * s*s + i * s + j``.  JSInet uses this order for the IR
    up-sampling conv so that the authors' TF weights map 1:1 (no output-channel
    permutation of ``image_reconstruction.conv_up``).
    """
    b, cs, h, w = x.shape
    c = cs // (s * s)
    if c * s * s != cs:
        raise ValueError(f"channels {cs} not divisible by {s * s}")
    x = x.reshape(b, s, s, c, h, w).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(b, c, h * s, w * s)


def space_to_depth_tf(x: Tensor, s: int) -> Tensor:
    """Inverse of :func:`depth_to_space_tf` (TensorFlow ``space_to_depth``)."""
    b, c, hs, ws = x.shape
    h, w = hs // s, ws // s
    x = x.reshape(b, c, h, s, w, s).permute(0, 3, 5, 1, 2, 4)
    return x.reshape(b, s * s * c, h, w)
