"""Tiled inference: exact against whole-frame output (stand-in net and JSInet), blending, OOM recovery."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sdr2hdr.models import JSInet
from sdr2hdr.inference.tiling import (
    MIN_TILE,
    OutOfMemory,
    TiledModel,
    blend_ramp,
    default_tile_pad,
    plan_axis,
    tiled_forward,
)


class ConvNet(nn.Module):
    """A stand-in SR net: ``depth`` 3x3 convs (receptive field ``depth`` LR pixels) + pixel shuffle."""

    def __init__(self, depth: int = 6, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.receptive_field = depth
        self.convs = nn.ModuleList(nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1) for i in range(depth))
        self.out = nn.Conv2d(8, 3 * scale * scale, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c in self.convs:
            x = torch.relu(c(x))
        return F.pixel_shuffle(self.out(x), self.scale)


def test_default_pad_is_exact_for_jsinet() -> None:
    assert JSInet(scale=2).receptive_field == 34
    pad = default_tile_pad(34)
    assert pad == 48 and pad - pad // 4 >= 34


@pytest.mark.parametrize(("length", "tile", "pad", "blend"), [(37, 16, 8, 2), (100, 24, 48, 12), (10, 3, 4, 1), (64, 64, 8, 2)])
def test_plan_covers_and_weights_sum_to_one(length: int, tile: int, pad: int, blend: int) -> None:
    spans = plan_axis(length, tile, pad, blend)
    scale = 2
    total = torch.zeros(length * scale, dtype=torch.float64)
    for s in spans:
        assert 0 <= s.i0 <= s.k0 < s.k1 <= s.i1 <= length
        w = blend_ramp(s, scale, torch.device("cpu"), torch.float64)
        total[s.k0 * scale : s.k1 * scale] += 1.0 if w is None else w
    torch.testing.assert_close(total, torch.ones_like(total))
    assert spans[0].k0 == 0 and spans[-1].k1 == length


@pytest.mark.parametrize(("tile", "pad"), [(8, 8), (16, 8), (10, 11), (13, 9), (20, 40)])
def test_tiled_equals_whole_standin(tile: int, pad: int) -> None:
    net = ConvNet(depth=6).eval()
    x = torch.rand(2, 3, 37, 53)
    with torch.no_grad():
        whole = net(x)
        tiled = tiled_forward(net, x, scale=2, tile=tile, pad=pad)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


def test_too_small_pad_is_not_exact_but_blended() -> None:
    net = ConvNet(depth=6).eval()
    x = torch.rand(1, 3, 24, 64)
    with torch.no_grad():
        err = (tiled_forward(net, x, scale=2, tile=16, pad=2) - net(x)).abs().max()
    assert err > 1e-4  # the pad, not luck, makes the default exact


@pytest.mark.parametrize("scale", [2, 4])
def test_tiled_equals_whole_jsinet_fp32(scale: int) -> None:
    """The middle tile's input [2, 148) does not touch the frame edge: real context, not the same image."""
    torch.manual_seed(0)
    net = JSInet(scale=scale).eval()
    x = (torch.rand(1, 3, 16, 150) * 0.8 + 0.1)
    runner = TiledModel(net, tile=50, device="cpu", precision="fp32")
    assert runner.pad == 48
    with torch.inference_mode():
        whole = net(x)
    tiled = runner(x)
    assert tiled.shape == whole.shape == (1, 3, 16 * scale, 150 * scale)
    assert (tiled - whole).abs().max() <= 1e-4
    if scale == 2:  # and with too little context the seams show
        small = TiledModel(net, tile=50, pad=8, device="cpu", precision="fp32")(x)
        assert (small - whole).abs().max() > 1e-4


def test_tiled_equals_whole_jsinet_bf16() -> None:
    """bf16 (CPU autocast): tiled output equals the bf16 whole frame to the bf16 accuracy bar (<= 1 code at p99.9)."""
    from sdr2hdr.precision import Precision

    torch.manual_seed(0)
    net = JSInet(scale=2).eval()
    x = (torch.rand(1, 3, 16, 150) * 0.8 + 0.1)
    bf16 = Precision("bf16", "cpu", "test")
    whole = TiledModel(net, tile=0, device="cpu", precision=bf16)(x)
    tiled = TiledModel(net, tile=50, device="cpu", precision=bf16)(x)
    d = (torch.round(tiled.clamp(0, 1) * 1023) - torch.round(whole.clamp(0, 1) * 1023)).abs()
    assert torch.quantile(d.flatten(), 0.999) <= 1.0


class OOMNet(ConvNet):
    """Raises CUDA-style out-of-memory for inputs above ``limit`` pixels (batch included)."""

    def __init__(self, limit: int) -> None:
        super().__init__(depth=4)
        self.limit = limit
        self.sizes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(x.shape))
        if x.shape[0] * x.shape[-1] * x.shape[-2] > self.limit:
            raise OutOfMemory("CUDA out of memory (simulated)")
        return super().forward(x)


def test_oom_splits_batch_then_shrinks_tile_and_loses_no_frame() -> None:
    net = OOMNet(limit=48 * 48).eval()
    x = torch.rand(4, 3, 40, 72)
    with torch.no_grad():
        whole = ConvNet.forward(net, x)
    runner = TiledModel(net, tile=0, pad=8, device="cpu", precision="fp32")
    out = runner(x)
    assert out.shape == (4, 3, 80, 144)
    torch.testing.assert_close(out, whole, atol=1e-5, rtol=0)
    assert runner.oom_retries >= 2 and runner.max_batch == 1 and runner.tile is not None and runner.tile < 72
    net.limit = 1  # nothing fits: a clear error, not a hang
    runner2 = TiledModel(net, tile=MIN_TILE, pad=8, device="cpu")
    with pytest.raises(Exception, match="out of CPU memory even with"):
        runner2(torch.rand(1, 3, 40, 72))


class LeakCheckNet(ConvNet):
    """Allocates a large buffer, then fails like cuDNN does when the batch is above ``limit``; records on
    every later call whether the buffers of the failed attempts are still alive (weakrefs)."""

    def __init__(self, limit: int, error: BaseException) -> None:
        super().__init__(depth=1)
        self.limit, self.error = limit, error
        self.refs: list[weakref.ref] = []
        self.alive_at_retry: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gc.collect()
        self.alive_at_retry.append(sum(r() is not None for r in self.refs))
        if x.shape[0] > self.limit:
            scratch = torch.empty(x.shape[0], 1 << 16)  # the failed forward's activations
            self.refs.append(weakref.ref(scratch))
            raise type(self.error)(*self.error.args)  # a fresh exception: a stored one would keep its traceback
        return super().forward(x)


@pytest.mark.parametrize("error", [OutOfMemory("CUDA out of memory (simulated)"),
                                   RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED")])
def test_oom_retry_frees_the_failed_attempt(error: BaseException) -> None:
    """The retry runs outside the except block: no traceback keeps the failed batch's tensors alive,
    and cuDNN / cuBLAS allocation failures count as out-of-memory."""
    net = LeakCheckNet(limit=1, error=error).eval()
    runner = TiledModel(net, tile=0, pad=8, device="cpu", precision="fp32")
    out = runner(torch.rand(4, 3, 12, 12))
    assert out.shape == (4, 3, 24, 24) and runner.oom_retries == 2 and runner.max_batch == 1
    assert len(net.refs) == 2 and net.alive_at_retry[1:] == [0] * (len(net.alive_at_retry) - 1)


def test_other_runtime_errors_are_not_retried() -> None:
    net = LeakCheckNet(limit=0, error=RuntimeError("shape mismatch")).eval()
    with pytest.raises(RuntimeError, match="shape mismatch"):
        TiledModel(net, tile=0, pad=8, device="cpu", precision="fp32")(torch.rand(1, 3, 8, 8))


def test_blend_ramps_are_built_once_per_geometry() -> None:
    from sdr2hdr.inference import tiling

    tiling.blend_ramp.cache_clear()
    net = ConvNet(depth=2).eval()
    x = torch.rand(1, 3, 40, 72)
    for _ in range(3):
        tiled_forward(net, x, scale=2, tile=16, pad=8)
    info = tiling.blend_ramp.cache_info()
    assert info.misses <= 8 and info.hits >= 2 * info.misses  # frames 2 and 3 reuse every ramp


def test_auto_tile_cpu_rule() -> None:
    net = ConvNet(depth=2)
    r = TiledModel(net, device="cpu", pad=8)
    assert r.auto_tile(180, 320, 1) == 320  # whole frame fits the CPU budget
    t = r.auto_tile(1080, 1920, 1)
    assert MIN_TILE <= t < 1080


def test_index_safe_tile_keeps_every_tensor_under_2_31_elements() -> None:
    """x4 on a whole 1080p frame would make a 2.69e9-element LCE filter tensor (32-bit indexing overflows)."""
    from sdr2hdr.inference.tiling import MAX_TENSOR_ELEMENTS, index_safe_tile

    assert 81 * 16 * 1080 * 1920 > MAX_TENSOR_ELEMENTS
    for scale, batch in ((2, 1), (4, 1), (4, 4), (2, 4)):
        side = index_safe_tile(scale, batch, pad=48)
        assert side % 8 == 0 and side >= 32
        assert batch * 81 * scale**2 * (side + 96) ** 2 <= MAX_TENSOR_ELEMENTS
        assert batch * 81 * scale**2 * (side + 8 + 96) ** 2 > MAX_TENSOR_ELEMENTS  # and it is the largest such
    assert index_safe_tile(4, 1, pad=48) < 1920  # a 1080p frame at x4 is tiled


def test_fixed_tile_shapes_turn_on_cudnn_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    """Convert's tiles repeat every frame: a CUDA TiledModel lets cuDNN benchmark (issue #14 item 3)."""
    from sdr2hdr.inference import device as devmod
    from sdr2hdr.inference import tiling
    from sdr2hdr.models.baselines import BT2408DirectMapping

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    devmod.tune_for_fixed_shapes(torch.device("cpu"))
    assert not torch.backends.cudnn.benchmark
    devmod.tune_for_fixed_shapes(torch.device("cuda", 0))
    assert torch.backends.cudnn.benchmark
    seen: list[torch.device] = []
    monkeypatch.setattr(tiling, "tune_for_fixed_shapes", seen.append)
    tiling.TiledModel(BT2408DirectMapping(2), scale=2, device="cpu", precision="fp32")
    assert seen == [torch.device("cpu")]
