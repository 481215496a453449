"""sdr2hdr.models.ops against slow references written from the definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sdr2hdr.models import detail_layer, guided_filter
from sdr2hdr.models import ops

# --------------------------------------------------------------------------
# Slow references (explicit loops over pixels and taps, float64 numpy)
# --------------------------------------------------------------------------


def ref_local_filter(x: np.ndarray, f: np.ndarray, s: int, k: int) -> np.ndarray:
    """x: B C H W; f: B (k*k*s*s) H W, channel tap*s*s + q, tap = row*k + col."""
    b, c, h, w = x.shape
    s2 = s * s
    out = np.zeros((b, c, s2, h, w))
    for y in range(h):
        for xx in range(w):
            for row in range(k):
                for col in range(k):
                    sy, sx = y + row - k // 2, xx + col - k // 2
                    if not (0 <= sy < h and 0 <= sx < w):
                        continue  # zero padding
                    tap = row * k + col
                    for q in range(s2):
                        out[:, :, q, y, xx] += f[:, tap * s2 + q, y, xx][:, None] * x[:, :, sy, sx]
    return out


def ref_separable_filter(x: np.ndarray, fv: np.ndarray, fh: np.ndarray, s: int, k: int) -> np.ndarray:
    """Vertical 1D filter, then horizontal 1D filter of that result; channel q*k + tap."""
    b, c, h, w = x.shape
    s2 = s * s
    v = np.zeros((b, c, s2, h, w))
    for q in range(s2):
        for y in range(h):
            for xx in range(w):
                for t in range(k):
                    sy = y + t - k // 2
                    if 0 <= sy < h:
                        v[:, :, q, y, xx] += fv[:, q * k + t, y, xx][:, None] * x[:, :, sy, xx]
    out = np.zeros_like(v)
    for q in range(s2):
        for y in range(h):
            for xx in range(w):
                for t in range(k):
                    sx = xx + t - k // 2
                    if 0 <= sx < w:
                        out[:, :, q, y, xx] += fh[:, q * k + t, y, xx][:, None] * v[:, :, q, y, sx]
    return out


def _reflect(i: int, n: int) -> int:
    """Reflect without repeating the edge pixel: -1 -> 1, n -> n - 2."""
    if i < 0:
        return -i
    if i >= n:
        return 2 * (n - 1) - i
    return i


def _box_ref(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape
    r = side // 2
    out = np.zeros_like(img)
    for y in range(h):
        for x in range(w):
            acc = 0.0
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    acc += img[_reflect(y + dy, h), _reflect(x + dx, w)]
            out[y, x] = acc / (side * side)
    return out


def ref_guided_filter(p: np.ndarray, guide: np.ndarray, side: int, eps: float) -> np.ndarray:
    """He, Sun and Tang (2012), Algorithm 1, one 2D plane."""
    mean_i = _box_ref(guide, side)
    mean_p = _box_ref(p, side)
    corr_i = _box_ref(guide * guide, side)
    corr_ip = _box_ref(guide * p, side)
    var_i = corr_i - mean_i * mean_i
    cov_ip = corr_ip - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return _box_ref(a, side) * guide + _box_ref(b, side)


# --------------------------------------------------------------------------
# Dynamic local (LCE) filter
# --------------------------------------------------------------------------


@pytest.mark.parametrize("s,k,h,w", [(2, 9, 11, 13), (4, 9, 6, 5), (2, 3, 5, 7), (3, 5, 4, 6)])
def test_dynamic_local_filter_matches_reference(s, k, h, w):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, h, w, generator=g, dtype=torch.float64)
    f = torch.randn(2, k * k * s * s, h, w, generator=g, dtype=torch.float64)
    ref = ref_local_filter(x.numpy(), f.numpy(), s, k)
    out = ops.dynamic_local_filter(x, f, s, k=k)
    assert out.shape == (2, 3, s * s, h, w)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5, rtol=0)
    # float32 too
    out32 = ops.dynamic_local_filter(x.float(), f.float(), s, k=k)
    np.testing.assert_allclose(out32.numpy(), ref, atol=1e-5, rtol=1e-5)
    # the unfold variant agrees
    np.testing.assert_allclose(ops.dynamic_local_filter_unfold(x, f, s, k=k).numpy(), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("s,h,w", [(2, 7, 6), (4, 5, 4)])
def test_fused_softmax_over_81_taps(s, h, w):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 3, h, w, generator=g, dtype=torch.float64)
    logits = 4 * torch.randn(1, 81 * s * s, h, w, generator=g, dtype=torch.float64)
    # softmax over the 81 taps of each (subpixel, pixel): layout tap*s^2 + q
    sm = np.exp(logits.numpy().reshape(1, 81, s * s, h, w))
    sm = sm / sm.sum(axis=1, keepdims=True)
    ref = ref_local_filter(x.numpy(), sm.reshape(1, 81 * s * s, h, w), s, 9)
    out = ops.dynamic_local_filter(x, logits, s, softmax=True)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5, rtol=0)
    # huge logits do not overflow (max subtracted per filter)
    out_big = ops.dynamic_local_filter(x.float(), (logits * 100).float(), s, softmax=True)
    assert torch.isfinite(out_big).all()
    # autograd path gives the same values
    lg = logits.clone().requires_grad_(True)
    out_g = ops.dynamic_local_filter(x, lg, s, softmax=True)
    np.testing.assert_allclose(out_g.detach().numpy(), ref, atol=1e-5, rtol=0)


def test_local_filter_layout_one_hot():
    """Channel tap*s^2 + q with tap = row*9 + col picks x[y + row - 4, x + col - 4]."""
    s, h, w = 2, 12, 12
    x = torch.rand(1, 3, h, w, dtype=torch.float64)
    row, col, q = 1, 7, 3
    logits = torch.full((1, 81 * s * s, h, w), -1e4, dtype=torch.float64)
    logits[:, (row * 9 + col) * s * s + q] = 0.0
    out = ops.dynamic_local_filter(x, logits, s, softmax=True)
    dy, dx = row - 4, col - 4
    inner = out[:, :, q, 4:-4, 4:-4]
    torch.testing.assert_close(inner, x[:, :, 4 + dy : h - 4 + dy, 4 + dx : w - 4 + dx])


def test_dynamic_local_filter_gradcheck():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 2, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    f = torch.randn(1, 9 * 4, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: ops.dynamic_local_filter(a, b, 2, k=3), (x, f))
    assert torch.autograd.gradcheck(lambda a, b: ops.dynamic_local_filter(a, b, 2, k=3, softmax=True), (x, f))


# --------------------------------------------------------------------------
# Dynamic separable (DR) filter
# --------------------------------------------------------------------------


@pytest.mark.parametrize("s,k,h,w", [(2, 41, 3, 45), (2, 41, 44, 3), (4, 41, 5, 7), (2, 5, 6, 7), (3, 7, 5, 9)])
def test_dynamic_separable_filter_matches_reference(s, k, h, w):
    g = torch.Generator().manual_seed(4)
    x = torch.rand(1, 3, h, w, generator=g, dtype=torch.float64)
    fv = torch.randn(1, s * s * k, h, w, generator=g, dtype=torch.float64)
    fh = torch.randn(1, s * s * k, h, w, generator=g, dtype=torch.float64)
    ref = ref_separable_filter(x.numpy(), fv.numpy(), fh.numpy(), s, k)
    out = ops.dynamic_separable_filter(x, fv, fh, s, k=k)
    assert out.shape == (1, 3, s * s, h, w)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(ops.dynamic_separable_filter_unfold(x, fv, fh, s, k=k).numpy(), ref, atol=1e-5, rtol=0)
    out32 = ops.dynamic_separable_filter(x.float(), fv.float(), fh.float(), s, k=k)
    np.testing.assert_allclose(out32.numpy(), ref, atol=1e-4 * max(1.0, np.abs(ref).max()), rtol=0)


def test_separable_filter_layout_one_hot():
    """Channel q*41 + tap; vertical tap tv then horizontal tap th picks x[y+tv-20, x+th-20]."""
    s, h, w, k = 2, 30, 30, 41
    x = torch.rand(1, 3, h, w, dtype=torch.float64)
    q, tv, th = 2, 25, 12
    fv = torch.zeros(1, s * s * k, h, w, dtype=torch.float64)
    fh = torch.zeros_like(fv)
    fv[:, q * k + tv] = 1.0
    fh[:, q * k + th] = 1.0
    out = ops.dynamic_separable_filter(x, fv, fh, s)
    dy, dx = tv - 20, th - 20  # +5, -8
    torch.testing.assert_close(out[:, :, q, : h - dy, -dx:], x[:, :, dy:, : w + dx])
    others = [i for i in range(s * s) if i != q]
    assert out[:, :, others].abs().max() == 0


def test_dynamic_separable_filter_gradcheck():
    g = torch.Generator().manual_seed(5)
    x = torch.rand(1, 2, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    fv = torch.randn(1, 4 * 3, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    fh = torch.randn(1, 4 * 3, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: ops.dynamic_separable_filter(a, b, c, 2, k=3), (x, fv, fh))


def test_dynamic_filter_shape_errors():
    x = torch.rand(1, 3, 5, 5)
    with pytest.raises(ValueError):
        ops.dynamic_local_filter(x, torch.rand(1, 81 * 3, 5, 5), 2)
    with pytest.raises(ValueError):
        ops.dynamic_separable_filter(x, torch.rand(1, 41 * 4, 5, 5), torch.rand(1, 40 * 4, 5, 5), 2)


@pytest.mark.parametrize("s,h,w", [(2, 9, 23), (4, 5, 21)])
def test_custom_backward_matches_autograd_of_unfold_versions(s, h, w):
    """Full-size taps (81, 41 + 41), batch 2, against autograd through the unfold variants."""
    g = torch.Generator().manual_seed(6)
    b = 2
    x = torch.rand(b, 3, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    z = torch.randn(b, 81 * s * s, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    fv = torch.randn(b, 41 * s * s, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    fh = torch.randn(b, 41 * s * s, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    up = torch.randn(b, 3, s * s, h, w, generator=g, dtype=torch.float64)

    def grads(out, inputs):
        return torch.autograd.grad((out * up).sum(), inputs)

    sm = torch.softmax(z.reshape(b, 81, s * s, h, w), 1).reshape(b, -1, h, w)
    ref = grads(ops.dynamic_local_filter_unfold(x, sm, s), (x, z))
    got = grads(ops.dynamic_local_filter(x, z, s, softmax=True), (x, z))
    for r, o in zip(ref, got):
        torch.testing.assert_close(o, r, atol=1e-9, rtol=1e-7)
    ref = grads(ops.dynamic_local_filter_unfold(x, z, s), (x, z))
    got = grads(ops.dynamic_local_filter(x, z, s), (x, z))
    for r, o in zip(ref, got):
        torch.testing.assert_close(o, r, atol=1e-9, rtol=1e-7)
    ref = grads(ops.dynamic_separable_filter_unfold(x, fv, fh, s), (x, fv, fh))
    got = grads(ops.dynamic_separable_filter(x, fv, fh, s), (x, fv, fh))
    for r, o in zip(ref, got):
        torch.testing.assert_close(o, r, atol=1e-9, rtol=1e-7)
    # only the filters require grad (the usual training case: x is data)
    xd = x.detach()
    sm = torch.softmax(z.reshape(b, 81, s * s, h, w), 1).reshape(b, -1, h, w)
    (gz,) = grads(ops.dynamic_local_filter(xd, z, s, softmax=True), (z,))
    (rz,) = grads(ops.dynamic_local_filter_unfold(xd, sm, s), (z,))
    torch.testing.assert_close(gz, rz, atol=1e-9, rtol=1e-7)
    (gh,) = grads(ops.dynamic_separable_filter(xd, fv.detach(), fh, s), (fh,))
    (rh,) = grads(ops.dynamic_separable_filter_unfold(xd, fv.detach(), fh, s), (fh,))
    torch.testing.assert_close(gh, rh, atol=1e-9, rtol=1e-7)


# --------------------------------------------------------------------------
# Pixel shuffle in TensorFlow order
# --------------------------------------------------------------------------


@pytest.mark.parametrize("s", [2, 3, 4])
def test_depth_to_space_tf_definition(s):
    b, c, h, w = 2, 3, 3, 5
    x = torch.randn(b, s * s * c, h, w)
    out = ops.depth_to_space_tf(x, s)
    assert out.shape == (b, c, h * s, w * s)
    for i in range(s):
        for j in range(s):
            for ch in range(c):
                # TF: input channel (i*s + j)*C + c -> output (y*s + i, x*s + j, c)
                torch.testing.assert_close(out[:, ch, i::s, j::s], x[:, (i * s + j) * c + ch])
    torch.testing.assert_close(ops.space_to_depth_tf(out, s), x)
    # unlike PyTorch's pixel_shuffle order (c*s*s + i*s + j)
    assert not torch.equal(out, F.pixel_shuffle(x, s))
    perm = [(i * c + ch) for ch in range(c) for i in range(s * s)]  # torch channel -> tf channel
    torch.testing.assert_close(out, F.pixel_shuffle(x[:, perm], s))


# --------------------------------------------------------------------------
# Guided filter / decomposition
# --------------------------------------------------------------------------


def test_box_filter_matches_reference():
    img = np.random.default_rng(0).random((7, 9))
    out = ops.box_filter(torch.from_numpy(img)[None, None].float(), 5)[0, 0].double().numpy()
    np.testing.assert_allclose(out, _box_ref(img, 5), atol=1e-6)


@pytest.mark.parametrize("h,w", [(9, 11), (3, 4)])
def test_guided_filter_matches_he_et_al(h, w):
    rng = np.random.default_rng(1)
    x = rng.random((2, 3, h, w))
    out = guided_filter(torch.from_numpy(x).float(), 5, 0.01)
    assert out.dtype == torch.float32 and out.shape == x.shape
    ref = np.stack([[ref_guided_filter(x[b, c], x[b, c], 5, 0.01) for c in range(3)] for b in range(2)])
    np.testing.assert_allclose(out.double().numpy(), ref, atol=1e-5, rtol=0)


def test_guided_filter_with_guide():
    rng = np.random.default_rng(2)
    p, gd = rng.random((1, 1, 8, 10)), rng.random((1, 1, 8, 10))
    out = guided_filter(torch.from_numpy(p).float(), 3, 0.05, guide=torch.from_numpy(gd).float())
    np.testing.assert_allclose(out[0, 0].double().numpy(), ref_guided_filter(p[0, 0], gd[0, 0], 3, 0.05), atol=1e-5)


def test_decompose_and_detail_layer():
    x = torch.rand(1, 3, 10, 12) * 0.8 + 0.1
    xb, xd = ops.decompose(x)
    torch.testing.assert_close(xb, guided_filter(x, 5, 0.01))
    torch.testing.assert_close(xd, x / (xb + 1e-15))
    torch.testing.assert_close(detail_layer(x), xd)
    # a constant image is its own base layer, detail 1
    c = torch.full((1, 3, 8, 8), 0.3)
    torch.testing.assert_close(detail_layer(c), torch.ones_like(c))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_decomposition_in_half_is_computed_in_float32(dtype):
    x = torch.rand(1, 3, 16, 16)
    x[..., :8, :8] = 0.0  # black region: Xb = 0 -> X / (Xb + 1e-15) must not be 0/0
    xb, xd = ops.decompose(x.to(dtype))
    assert xb.dtype == torch.float32 and xd.dtype == torch.float32
    assert torch.isfinite(xd).all()
    assert (xd[..., :2, :2] == 0).all()
    ref_b, _ = ops.decompose(x.to(dtype).float())
    torch.testing.assert_close(xb, ref_b)
    d = detail_layer(x.to(dtype))
    assert d.dtype == dtype and torch.isfinite(d).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        xb2, _ = ops.decompose(x)
    assert xb2.dtype == torch.float32
    torch.testing.assert_close(xb2, ops.decompose(x)[0])


def test_detail_layer_is_differentiable():
    x = (torch.rand(1, 1, 5, 6, dtype=torch.float64) + 0.1).requires_grad_(True)
    assert guided_filter(x).dtype == torch.float64
    assert torch.autograd.gradcheck(lambda t: guided_filter(t, 5, 0.01), (x,), fast_mode=True)
    detail_layer(x.float()).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
