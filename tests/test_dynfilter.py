"""The dynamic filters' implementations: selection by device, and the fused (compiled) path
against the slow references of tests/test_ops.py, forward and backward, through
``torch.compile`` on CPU (inductor's C++ backend; on CUDA the same graphs become Triton)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from tests.test_ops import ref_local_filter, ref_separable_filter

from sdr2hdr.models import JSInet, dynfilter, dynfilter_fused, ops

CPU = torch.device("cpu")
FUSED_UNAVAILABLE = dynfilter_fused.unavailable_reason(CPU)
needs_compile = pytest.mark.skipif(
    FUSED_UNAVAILABLE is not None, reason=f"torch.compile cannot build CPU kernels here: {FUSED_UNAVAILABLE}"
)


# --------------------------------------------------------------------------
# Selection (no compiling)
# --------------------------------------------------------------------------


def test_select_impl_defaults_and_overrides(monkeypatch):
    monkeypatch.delenv(dynfilter.IMPL_ENV, raising=False)
    assert dynfilter.select_impl(CPU) == dynfilter.CPU_DEFAULT == "taploop"
    assert dynfilter.select_impl(torch.device("meta")) == "taploop"
    assert dynfilter.select_impl(CPU, "taploop") == "taploop"
    monkeypatch.setenv(dynfilter.IMPL_ENV, "taploop")
    monkeypatch.setattr(dynfilter, "fused_unavailable", lambda device_type: None)
    assert dynfilter.select_impl(torch.device("cuda")) == "taploop"  # the variable wins over auto
    assert dynfilter.select_impl(CPU, "fused") == "fused"  # and the argument over the variable
    monkeypatch.setenv(dynfilter.IMPL_ENV, " Fused ")
    assert dynfilter.select_impl(CPU) == "fused"
    monkeypatch.setenv(dynfilter.IMPL_ENV, "auto")
    assert dynfilter.select_impl(torch.device("cuda")) == "fused"
    assert dynfilter.select_impl(torch.device("cuda", 1)) == "fused"
    assert dynfilter.select_impl(CPU) == "taploop"
    with pytest.raises(ValueError, match="not one of"):
        dynfilter.select_impl(CPU, "triton")


def test_select_impl_without_a_compiler(monkeypatch):
    dynfilter.warn_once.cache_clear()
    monkeypatch.delenv(dynfilter.IMPL_ENV, raising=False)
    monkeypatch.setattr(dynfilter, "fused_unavailable", lambda device_type: "Triton is not installed")
    with pytest.warns(RuntimeWarning, match="tap loop on cuda .Triton is not installed"):
        assert dynfilter.select_impl(torch.device("cuda")) == "taploop"
    with pytest.raises(RuntimeError, match="cannot run on cpu: Triton is not installed"):
        dynfilter.select_impl(CPU, "fused")


def test_unknown_env_value_is_warned_and_read_as_auto(monkeypatch):
    dynfilter.warn_once.cache_clear()
    monkeypatch.setenv(dynfilter.IMPL_ENV, "fast")
    with pytest.warns(RuntimeWarning, match="SDR2HDR_DYNFILTER='fast'"):
        assert dynfilter.select_impl(CPU) == "taploop"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        assert dynfilter.select_impl(CPU) == "taploop"


def test_unavailable_reason_names_what_is_missing():
    from torch._inductor import config

    # torch's own patch context: pytest 9.2's monkeypatch undo leaves inductor's config hiding cpp.cxx
    with config.patch({"cpp.cxx": ("no-such-compiler-xyz",)}):
        assert "no C++ compiler" in dynfilter_fused.unavailable_reason(CPU)
    assert "not meta" in dynfilter_fused.unavailable_reason(torch.device("meta"))


# --------------------------------------------------------------------------
# The fused path, compiled on CPU
# --------------------------------------------------------------------------


def _grads(out: torch.Tensor, up: torch.Tensor, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad((out * up).sum(), inputs)


def _close(got: torch.Tensor, ref: torch.Tensor | np.ndarray) -> None:
    ref = torch.as_tensor(ref)
    torch.testing.assert_close(got.double(), ref.double(), atol=1e-5, rtol=1e-5)


@needs_compile
def test_fused_local_softmax_filter_forward_and_backward():
    """9x9 softmax LCE filter at x2, float32, through the compiled path: the values against the
    loop-over-pixels reference, the gradients (x and logits) against autograd of the float64
    unfold reference; a second tile size runs without recompiling.  (Tiles smaller than the
    filter, H or W < 9, get graphs of their own: dynamo guards on H, W >= 9.)"""
    s, k = 2, 9
    g = torch.Generator().manual_seed(11)
    for i, (h, w) in enumerate([(9, 10), (12, 17)]):
        x = torch.rand(1, 3, h, w, generator=g, requires_grad=True)
        z = (3 * torch.randn(1, k * k * s * s, h, w, generator=g)).requires_grad_(True)
        up = torch.randn(1, 3, s * s, h, w, generator=g)
        with torch._dynamo.config.patch(error_on_recompile=i > 0):
            out = ops.dynamic_local_filter(x, z, s, softmax=True, impl="fused")
            gx, gz = _grads(out, up, (x, z))
        sm = np.exp(z.detach().double().numpy().reshape(1, k * k, s * s, h, w))
        sm /= sm.sum(axis=1, keepdims=True)
        _close(out, ref_local_filter(x.detach().double().numpy(), sm.reshape(1, -1, h, w), s, k))
        xr, zr = x.detach().double().requires_grad_(True), z.detach().double().requires_grad_(True)
        smr = torch.softmax(zr.reshape(1, k * k, s * s, h, w), 1).reshape(1, -1, h, w)
        rx, rz = _grads(ops.dynamic_local_filter_unfold(xr, smr, s, k=k), up.double(), (xr, zr))
        _close(gx, rx)
        _close(gz, rz)


@needs_compile
def test_fused_separable_filter_forward_and_backward():
    """41+41 separable DR filter at x2, float32, compiled: values against the loop reference,
    gradients (x, vertical and horizontal filters) against autograd of the float64 unfold one;
    a second tile size runs without recompiling (both below the 41 taps, as guarded)."""
    s, k = 2, 41
    g = torch.Generator().manual_seed(12)
    for i, (h, w) in enumerate([(5, 23), (22, 4)]):
        x = torch.rand(1, 3, h, w, generator=g, requires_grad=True)
        fv, fh = (torch.randn(1, s * s * k, h, w, generator=g).requires_grad_(True) for _ in range(2))
        up = torch.randn(1, 3, s * s, h, w, generator=g)
        with torch._dynamo.config.patch(error_on_recompile=i > 0):
            out = ops.dynamic_separable_filter(x, fv, fh, s, impl="fused")
            got = _grads(out, up, (x, fv, fh))
        ref = ref_separable_filter(*(t.detach().double().numpy() for t in (x, fv, fh)), s, k)
        _close(out, ref)
        ins = tuple(t.detach().double().requires_grad_(True) for t in (x, fv, fh))
        want = _grads(ops.dynamic_separable_filter_unfold(*ins, s, k=k), up.double(), ins)
        for a, b in zip(got, want):
            _close(a, b)


@needs_compile
def test_jsinet_with_fused_filters_matches_tap_loop(monkeypatch):
    """JSInet routes its two dynamic filters through the selection: with SDR2HDR_DYNFILTER=fused
    the output and the weight gradients equal the tap loop's to float32 rounding (the graphs
    compiled by the tests above: x2, batch 1, gradients of the inputs too)."""
    torch.manual_seed(3)
    net = JSInet(2)
    x = (torch.rand(1, 3, 10, 9) * 0.8 + 0.1).requires_grad_(True)
    results = []
    for impl in ("taploop", "fused"):
        monkeypatch.setenv(dynfilter.IMPL_ENV, impl)
        out = net(x)
        params = [net.local_contrast_enhancement.conv_filter.weight, net.detail_restoration.conv_filter_h.weight]
        results.append((out, *torch.autograd.grad(out.square().sum(), params)))
    for a, b in zip(*results):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
