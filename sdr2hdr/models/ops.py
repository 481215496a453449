"""Tensor operations of JSInet: guided-filter decomposition, TF-order pixel
shuffle and the two dynamic (per-pixel) up-sampling filters.

All tensors are NCHW (``B x C x H x W``); channels_last inputs work too (the
dynamic ops make their filter tensors contiguous first, see below).

Dynamic filtering implementation
--------------------------------
Both dynamic filters are computed as a loop over the *taps* (81 for the 9x9
LCE filter, 41 + 41 for the separable DR filters), each tap one fused,
in-place, broadcasting multiply-accumulate (``addcmul_``) over the whole
image: ``out[b, c, q] += f[b, tap, q] * shift_tap(x)[b, c]`` (``x`` zero padded
once; it has only 3 channels).  The LCE softmax over the taps is fused into the
same loop (one tap's ``exp`` at a time, normalised at the end).

This was chosen over ``unfold`` (im2col) + a per-pixel contraction by
measurement (``benchmarks/bench_model.py --ops``): on CPU the tap loop is
several times faster than unfold + einsum and uses only the output buffer as
extra memory, whereas unfold materialises ``C * 81`` (or ``C * 41``) shifted
copies of the input (about 2 GB for one 1920x1080 LR frame at x2), which
matters for 4K tiles on a GPU.

Precision: the accumulation buffer gets the promoted dtype of ``x`` and the
filters.  JSInet passes the float32 decomposition (``Xb``, ``Xd``) as ``x``,
so under fp16 / bf16 autocast the filters stay half precision (no extra
copies) while the 81- / 41-tap sums accumulate in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

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

LCE_TAPS = 9  # side of the 2D local filter of the LCE subnet (81 taps)
DR_TAPS = 41  # length of each 1D separable filter of the DR subnet
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


# --------------------------------------------------------------------------
# Dynamic filtering
# --------------------------------------------------------------------------


def _acc_dtype(*ts: Tensor) -> torch.dtype:
    dt = ts[0].dtype
    for t in ts[1:]:
        dt = torch.promote_types(dt, t.dtype)
    return dt


def _needs_grad(*ts: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in ts)


def _sum_c(a: Tensor, b: Tensor, out: Tensor) -> Tensor:
    """``out = sum_c a[:, c] * b[:, c]`` (broadcasting), written into ``out``
    (possibly a strided slice) without a C-times larger temporary."""
    torch.mul(a[:, 0], b[:, 0], out=out)
    for c in range(1, a.shape[1]):
        out.addcmul_(a[:, c], b[:, c])
    return out


def _check_local(x: Tensor, filters: Tensor, s2: int, k: int) -> None:
    b, _, h, w = x.shape
    if filters.shape != (b, k * k * s2, h, w):
        raise ValueError(f"filters shape {tuple(filters.shape)} != {(b, k * k * s2, h, w)}")


def _local_forward(x: Tensor, f: Tensor, k: int, softmax: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """No-autograd kernel. ``f``: ``B x k*k x s2 x H x W``. Returns ``(out, max, den)``."""
    b, c, h, w = x.shape
    s2 = f.shape[2]
    half = k // 2
    dt = _acc_dtype(x, f)
    xp = F.pad(x, (half, half, half, half)).unsqueeze(2)  # B x C x 1 x H+2h x W+2h
    out = torch.zeros((b, c, s2, h, w), dtype=dt, device=x.device)
    if not softmax:
        for t in range(k * k):
            dy, dx = divmod(t, k)
            out.addcmul_(f[:, t].unsqueeze(1), xp[..., dy : dy + h, dx : dx + w])
        return out, None, None
    # softmax over the taps, one tap at a time: e_t = exp(z_t - max z), out = sum e_t x_t / sum e_t
    m = f.amax(dim=1)
    den = torch.zeros((b, s2, h, w), dtype=dt, device=x.device)
    e = torch.empty((b, s2, h, w), dtype=dt, device=x.device)
    for t in range(k * k):
        dy, dx = divmod(t, k)
        torch.sub(f[:, t], m, out=e)
        e.exp_()
        den.add_(e)
        out.addcmul_(e.unsqueeze(1), xp[..., dy : dy + h, dx : dx + w])
    out.div_(den.unsqueeze(1))
    return out, m, den


class _DynamicLocalFilter(torch.autograd.Function):
    """Autograd for the LCE filter with a tap-by-tap backward: no per-tap
    full-size gradient buffers, the softmax weights recomputed from the logits
    (``d z_t = w_t * (sum_c g_c x_t,c - sum_c g_c out_c)``)."""

    @staticmethod
    def forward(ctx, x: Tensor, filters: Tensor, s2: int, k: int, softmax: bool) -> Tensor:  # type: ignore[override]
        b, _, h, w = x.shape
        f = filters.contiguous().view(b, k * k, s2, h, w)
        out, m, den = _local_forward(x, f, k, softmax)
        ctx.save_for_backward(x, f, out if softmax else None, m, den)
        ctx.k, ctx.softmax, ctx.filters_dtype = k, softmax, filters.dtype
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: Tensor):  # type: ignore[override]
        x, f, out, m, den = ctx.saved_tensors
        k, softmax = ctx.k, ctx.softmax
        need_x, need_f = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        b, c, h, w = x.shape
        s2 = f.shape[2]
        half = k // 2
        dt = g.dtype
        xp = F.pad(x, (half, half, half, half)).unsqueeze(2)
        gf = torch.empty(f.shape, dtype=dt, device=g.device) if need_f else None
        gxp = torch.zeros(xp.shape, dtype=dt, device=g.device) if need_x else None
        if softmax:
            s_go = _sum_c(g, out, torch.empty((b, s2, h, w), dtype=dt, device=g.device))
            wt = torch.empty((b, s2, h, w), dtype=dt, device=g.device)
        for t in range(k * k):
            dy, dx = divmod(t, k)
            xs = xp[..., dy : dy + h, dx : dx + w]
            if softmax:
                torch.sub(f[:, t], m, out=wt)
                wt.exp_().div_(den)
                ft = wt
            else:
                ft = f[:, t]
            if need_f:
                gft = _sum_c(g, xs, gf[:, t])  # d out / d w_t
                if softmax:
                    gft.sub_(s_go).mul_(wt)
            if need_x:
                gxp[..., dy : dy + h, dx : dx + w] += (g * ft.unsqueeze(1)).sum(2, keepdim=True)
        gx = gxp[..., half : half + h, half : half + w].squeeze(2).to(x.dtype) if need_x else None
        gfl = gf.view(b, k * k * s2, h, w).to(ctx.filters_dtype) if need_f else None
        return gx, gfl, None, None, None


def dynamic_local_filter(
    x: Tensor, filters: Tensor, scale: int, k: int = LCE_TAPS, softmax: bool = False
) -> Tensor:
    """Dynamic 2D local up-sampling filter (LCE subnet), before pixel shuffle.

    ``x``: ``B x C x H x W``.  ``filters``: ``B x (k*k*s*s) x H x W`` in the
    authors' layout, channel ``tap * s*s + subpixel`` with ``tap = row * k + col``
    and ``subpixel = i * s + j`` (HR offset ``(i, j)`` inside the ``s x s``
    block).  With ``softmax=True`` the filters are logits and the softmax over
    the ``k*k`` taps of each (subpixel, pixel) filter is fused into the loop.

    Returns ``out``: ``B x C x s*s x H x W`` with::

        out[b, c, q, y, x] = sum_{row, col} f[b, (row*k + col)*s*s + q, y, x]
                             * x[b, c, y + row - k//2, x + col - k//2]

    (zero outside the image), ``f = softmax_taps(filters)`` or ``filters``.
    ``out.reshape(B, C*s*s, H, W)`` is in PyTorch ``pixel_shuffle`` order.

    The fused softmax computes ``exp(z_t - max_t z)`` one tap at a time, so the
    normalised ``k*k*s*s``-channel filter tensor (float32 under autocast) is
    never materialised, and normalises the ``C*s*s`` outputs at the end.
    Differentiable (custom tap-by-tap backward).
    """
    s2 = scale * scale
    _check_local(x, filters, s2, k)
    if _needs_grad(x, filters):
        return _DynamicLocalFilter.apply(x, filters, s2, k, softmax)
    b, _, h, w = x.shape
    return _local_forward(x, filters.contiguous().view(b, k * k, s2, h, w), k, softmax)[0]


def _sep_forward(x: Tensor, fv: Tensor, fh: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """No-autograd kernel. ``fv``, ``fh``: ``B x s2 x k x H x W``. Returns ``(v, out)``."""
    b, c, h, w = x.shape
    s2 = fv.shape[1]
    half = k // 2
    dt = _acc_dtype(x, fv, fh)
    xp = F.pad(x, (0, 0, half, half)).unsqueeze(2)  # B x C x 1 x H+2h x W
    v = torch.zeros((b, c, s2, h, w), dtype=dt, device=x.device)
    for t in range(k):
        v.addcmul_(fv[:, :, t].unsqueeze(1), xp[..., t : t + h, :])
    vp = F.pad(v, (half, half))  # B x C x s2 x H x W+2h
    out = torch.zeros_like(v)
    for t in range(k):
        out.addcmul_(fh[:, :, t].unsqueeze(1), vp[..., t : t + w])
    return v, out


class _DynamicSeparableFilter(torch.autograd.Function):
    """Autograd for the DR filter with a tap-by-tap backward (no per-tap
    full-size gradient buffers)."""

    @staticmethod
    def forward(ctx, x: Tensor, filters_v: Tensor, filters_h: Tensor, s2: int, k: int) -> Tensor:  # type: ignore[override]
        b, _, h, w = x.shape
        fv = filters_v.contiguous().view(b, s2, k, h, w)
        fh = filters_h.contiguous().view(b, s2, k, h, w)
        v, out = _sep_forward(x, fv, fh, k)
        ctx.save_for_backward(x, fv, fh, v)
        ctx.k, ctx.dtypes = k, (filters_v.dtype, filters_h.dtype)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: Tensor):  # type: ignore[override]
        x, fv, fh, v = ctx.saved_tensors
        k = ctx.k
        need_x, need_fv, need_fh = ctx.needs_input_grad[:3]
        b, c, h, w = x.shape
        s2 = fv.shape[1]
        half = k // 2
        dt = g.dtype
        gfv = gfh = gx = None
        need_v = need_x or need_fv
        vp = F.pad(v, (half, half))
        gvp = torch.zeros(vp.shape, dtype=dt, device=g.device) if need_v else None
        if need_fh:
            gfh = torch.empty(fh.shape, dtype=dt, device=g.device)
        for t in range(k):
            if need_fh:
                _sum_c(g, vp[..., t : t + w], gfh[:, :, t])
            if need_v:
                gvp[..., t : t + w].addcmul_(g, fh[:, :, t].unsqueeze(1))
        if need_v:
            gv = gvp[..., half : half + w]
            xp = F.pad(x, (0, 0, half, half)).unsqueeze(2)
            if need_fv:
                gfv = torch.empty(fv.shape, dtype=dt, device=g.device)
            gxp = torch.zeros(xp.shape, dtype=dt, device=g.device) if need_x else None
            for t in range(k):
                xs = xp[..., t : t + h, :]
                if need_fv:
                    _sum_c(gv, xs, gfv[:, :, t])
                if need_x:
                    gxp[..., t : t + h, :] += (gv * fv[:, :, t].unsqueeze(1)).sum(2, keepdim=True)
            if need_x:
                gx = gxp[..., half : half + h, :].squeeze(2).to(x.dtype)
        if gfv is not None:
            gfv = gfv.view(b, s2 * k, h, w).to(ctx.dtypes[0])
        if gfh is not None:
            gfh = gfh.view(b, s2 * k, h, w).to(ctx.dtypes[1])
        return gx, gfv, gfh, None, None


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
    after ``reshape(B, C*s*s, H, W)``).  Differentiable (custom tap-by-tap
    backward).
    """
    b, c, h, w = x.shape
    s2 = scale * scale
    for name, f in (("filters_v", filters_v), ("filters_h", filters_h)):
        if f.shape != (b, s2 * k, h, w):
            raise ValueError(f"{name} shape {tuple(f.shape)} != {(b, s2 * k, h, w)}")
    if _needs_grad(x, filters_v, filters_h):
        return _DynamicSeparableFilter.apply(x, filters_v, filters_h, s2, k)
    fv = filters_v.contiguous().view(b, s2, k, h, w)
    fh = filters_h.contiguous().view(b, s2, k, h, w)
    return _sep_forward(x, fv, fh, k)[1]


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
