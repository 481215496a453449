"""Dynamic filtering as a loop over the taps: the default on CPU, and the fallback elsewhere.

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
copies of the input (about 2 GB for one 1920x1080 LR frame at x2).  On CPU it is
also faster than the compiled single-pass kernels of :mod:`sdr2hdr.models.dynfilter_fused`
(see ``dynfilter.CPU_DEFAULT``); on a GPU each pass is a kernel and a round trip of the
accumulator through memory, so there the fused kernels are the default.

Precision: the accumulation buffer gets the promoted dtype of ``x`` and the
filters.  JSInet passes the float32 decomposition (``Xb``, ``Xd``) as ``x``,
so under fp16 / bf16 autocast the filters stay half precision (no extra
copies) while the 81- / 41-tap sums accumulate in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["local_filter", "separable_filter"]


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



def local_filter(x: Tensor, filters: Tensor, s2: int, k: int, softmax: bool) -> Tensor:
    """Tap-loop LCE filter, the contract of :func:`sdr2hdr.models.dynfilter.dynamic_local_filter`.

    ``x``: ``B x C x H x W``; ``filters``: ``B x (k*k*s2) x H x W`` (shape already checked).
    Returns ``B x C x s2 x H x W``.  The fused softmax computes ``exp(z_t - max_t z)`` one
    tap at a time, so the normalised ``k*k*s2``-channel filter tensor (float32 under
    autocast) is never materialised.  Differentiable (custom tap-by-tap backward).
    """
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


def separable_filter(x: Tensor, filters_v: Tensor, filters_h: Tensor, s2: int, k: int) -> Tensor:
    """Tap-loop DR filter, the contract of :func:`sdr2hdr.models.dynfilter.dynamic_separable_filter`.

    ``x``: ``B x C x H x W``; ``filters_v``, ``filters_h``: ``B x (s2*k) x H x W`` (shapes
    already checked).  Returns ``B x C x s2 x H x W``.  Differentiable (custom tap-by-tap
    backward).
    """
    if _needs_grad(x, filters_v, filters_h):
        return _DynamicSeparableFilter.apply(x, filters_v, filters_h, s2, k)
    b, _, h, w = x.shape
    fv = filters_v.contiguous().view(b, s2, k, h, w)
    fh = filters_h.contiguous().view(b, s2, k, h, w)
    return _sep_forward(x, fv, fh, k)[1]
