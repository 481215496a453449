"""Run a super-resolution model tile by tile, with overlap and blending.

The low-resolution frame is cut into a grid of *cores* of at most ``tile``
pixels a side that cover it exactly. Each core is run with ``pad`` pixels of
real context on every side (clipped at the frame edge, where the model's own
padding then applies exactly as for the whole frame). Of each tile's output
the core plus ``blend = pad // 4`` pixels on each inner side is kept, and
neighbouring tiles are cross-faded over that ``2 * blend`` pixel overlap
with complementary linear ramps (weights sum to one; the 2D weights are the
product of the row and column ramps, which still sums to one at corners).

Exactness: a kept pixel has at least ``pad - blend`` pixels of context, so
when ``pad - pad // 4 >= receptive field`` every kept pixel equals the
whole-frame result and the blend only mixes equal values: tiled output
matches whole-frame output to float rounding (tested to 1e-4 in fp32). For
JSInet (receptive field 34 LR pixels) that needs ``pad >= 46``;
:func:`default_tile_pad` gives 48. With a smaller pad the ramps hide seams.

:class:`TiledModel` adds precision handling (``--precision``: fp16 autocast on
CUDA, bf16 on CPUs with AMX / AVX512-BF16, fp32 otherwise; analytic baselines always fp32),
automatic tile size, frame batching, and recovery from CUDA out-of-memory:
the batch is split, then the tile halved, and the same frames run again.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from sdr2hdr.errors import Sdr2HdrError
from sdr2hdr.inference.device import tune_for_fixed_shapes
from sdr2hdr.precision import Precision, resolve_precision

#: Smallest tile side (LR pixels) the out-of-memory recovery goes down to.
MIN_TILE = 32
#: Receptive field assumed for a model without a ``receptive_field`` attribute.
DEFAULT_RECEPTIVE_FIELD = 34
#: CPU automatic tile budget: tiles of at most this many HR pixels (1024 x 1024).
CPU_TILE_HR_PIXELS = 1024 * 1024

OutOfMemory: type[BaseException] = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
#: Allocation failures that cuDNN / cuBLAS report as a plain RuntimeError.
_ALLOC_FAILED = ("CUDNN_STATUS_ALLOC_FAILED", "CUBLAS_STATUS_ALLOC_FAILED", "CUDA out of memory", "out of memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """An out-of-memory error of any device library (torch's own, or cuDNN / cuBLAS allocation failures)."""
    return isinstance(exc, OutOfMemory) or (isinstance(exc, RuntimeError) and any(k in str(exc) for k in _ALLOC_FAILED))


def receptive_field(model: nn.Module) -> int:
    return int(getattr(model, "receptive_field", DEFAULT_RECEPTIVE_FIELD))


#: Elements one tensor may hold: CUDA kernels index with 32-bit ints (2**31 - 1).
MAX_TENSOR_ELEMENTS = 2**31 - 1
#: Channels per LR pixel of the widest tensor JSInet makes: the LCE filter logits, 81 taps x s^2.
WIDEST_CHANNELS_PER_SCALE2 = 81


def index_safe_tile(scale: int, batch: int, pad: int, channels_per_s2: int = WIDEST_CHANNELS_PER_SCALE2) -> int:
    """Largest tile side (LR, a multiple of 8) whose widest tensor stays below 2**31 elements.

    A whole 1080p frame at x4 makes a 1296 x 1080 x 1920 = 2.69e9-element filter tensor: past
    32-bit indexing. Every tile (core + ``2 * pad`` context) is kept under the limit.
    """
    per_px = batch * channels_per_s2 * scale * scale
    side = int(math.isqrt(MAX_TENSOR_ELEMENTS // per_px)) - 2 * pad
    return max(MIN_TILE, side // 8 * 8)


def default_tile_pad(rf: int) -> int:
    """Smallest multiple of 8 with ``pad - pad // 4 >= rf`` (exact tiling, with a blend ramp)."""
    pad = rf
    while pad - pad // 4 < rf:
        pad += 1
    return int(math.ceil(pad / 8) * 8)


def blend_width(pad: int) -> int:
    return pad // 4


@dataclass(frozen=True)
class Span:
    """One tile along one axis (LR pixels, half-open): input ``[i0, i1)``, kept ``[k0, k1)``."""

    i0: int
    i1: int
    k0: int
    k1: int
    ramp_in: int  # LR pixels of rising ramp at the start of the kept span (0 at the frame edge)
    ramp_out: int  # LR pixels of falling ramp at its end


def plan_axis(length: int, tile: int, pad: int, blend: int) -> list[Span]:
    """Cut ``[0, length)`` into cores of at most ``tile``; see the module doc."""
    if tile <= 0 or tile >= length:
        return [Span(0, length, 0, length, 0, 0)]
    n = math.ceil(length / tile)
    base, extra = divmod(length, n)
    sizes = [base + (1 if i < extra else 0) for i in range(n)]
    blend = min(blend, min(sizes) // 2, pad)
    spans = []
    start = 0
    for i, size in enumerate(sizes):
        c0, c1 = start, start + size
        first, last = i == 0, i == n - 1
        k0 = c0 if first else c0 - blend
        k1 = c1 if last else c1 + blend
        spans.append(Span(max(0, c0 - pad), min(length, c1 + pad), k0, k1, 0 if first else 2 * blend, 0 if last else 2 * blend))
        start = c1
    return spans


@functools.lru_cache(maxsize=256)
def blend_ramp(span: Span, scale: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor | None:
    """The blending weights of one span, built once per tile geometry directly on ``device``.

    Cached: rebuilding them per tile on the host and copying them over would make every tile
    wait for the device queue to drain (a host sync per tile on CUDA).
    """
    if not span.ramp_in and not span.ramp_out:
        return None
    n = (span.k1 - span.k0) * scale
    w = torch.ones(n, dtype=dtype, device=device)
    if span.ramp_in:
        m = span.ramp_in * scale
        w[:m] = (torch.arange(m, dtype=torch.float64, device=device) + 0.5).div_(m).to(dtype)
    if span.ramp_out:
        m = span.ramp_out * scale
        w[n - m :] = (1.0 - (torch.arange(m, dtype=torch.float64, device=device) + 0.5) / m).to(dtype)
    return w


def tiled_forward(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    scale: int,
    tile: int,
    pad: int,
    blend: int | None = None,
    out_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``model(x)`` for ``x`` of ``B x C x H x W`` computed tile by tile (``tile <= 0``: whole frame)."""
    b, _, h, w = x.shape
    blend = blend_width(pad) if blend is None else blend
    rows, cols = plan_axis(h, tile, pad, blend), plan_axis(w, tile, pad, blend)
    if len(rows) == 1 and len(cols) == 1:
        return model(x).to(out_dtype)
    out: torch.Tensor | None = None
    for ry in rows:
        wy = blend_ramp(ry, scale, x.device, out_dtype)
        for rx in cols:
            wx = blend_ramp(rx, scale, x.device, out_dtype)
            y = model(x[:, :, ry.i0 : ry.i1, rx.i0 : rx.i1]).to(out_dtype)
            if out is None:
                out = torch.zeros((b, y.shape[1], h * scale, w * scale), dtype=out_dtype, device=x.device)
            part = y[:, :, (ry.k0 - ry.i0) * scale : (ry.k1 - ry.i0) * scale, (rx.k0 - rx.i0) * scale : (rx.k1 - rx.i0) * scale]
            if wy is not None:
                part = part * wy.view(-1, 1)
            if wx is not None:
                part = part * wx.view(1, -1)
            dst = out[:, :, ry.k0 * scale : ry.k1 * scale, rx.k0 * scale : rx.k1 * scale]
            if wy is None and wx is None:
                dst.copy_(part)
            else:
                dst.add_(part)
    assert out is not None
    return out


class TiledModel:
    """A model run in tiles and batches on one device, with precision and OOM handling.

    ``tile=0`` picks the tile size automatically (:meth:`auto_tile`); ``pad``
    defaults to :func:`default_tile_pad` of the model's receptive field.
    Calling it with ``B x 3 x H x W`` returns float32 ``B x 3 x sH x sW``.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        scale: int | None = None,
        tile: int = 0,
        pad: int | None = None,
        device: torch.device | str = "cpu",
        precision: str | Precision = "auto",
    ) -> None:
        self.model = model
        self.scale = int(scale or getattr(model, "scale"))
        self.device = torch.device(device)
        if getattr(model, "fp32_only", False):
            self.prec = Precision("fp32", self.device.type, "analytic model: colour maths in fp32")
        elif isinstance(precision, Precision):
            self.prec = precision
        else:
            self.prec = resolve_precision(precision, self.device)
        self.receptive_field = receptive_field(model)
        self.pad = default_tile_pad(self.receptive_field) if pad is None else int(pad)
        if self.pad < 0:
            raise ValueError("tile pad must be >= 0")
        tune_for_fixed_shapes(self.device)  # fixed tile shapes repeat every frame
        self.requested_tile = int(tile)
        self.tile: int | None = int(tile) if tile > 0 else None  # None: decided on the first frame
        self.max_batch: int | None = None
        self.oom_retries = 0
        self.seconds = 0.0

    @property
    def precision(self) -> str:
        """The precision that runs: fp32, bf16 or fp16 (see :mod:`sdr2hdr.precision`)."""
        return self.prec.name

    @property
    def precision_reason(self) -> str:
        return self.prec.reason

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), self.prec.autocast():
            return self.model(x)

    def auto_tile(self, h: int, w: int, batch: int) -> int:
        """Tile side (LR pixels) for frames of ``h x w`` in batches of ``batch``.

        CPU: whole frame up to :data:`CPU_TILE_HR_PIXELS` HR pixels per tile.
        CUDA: measure the model's peak memory on two small tiles, fit bytes per
        LR pixel, and use 70 % of the free memory left after the output buffer.
        """
        whole = max(h, w)
        if self.device.type != "cuda":
            side = int(math.sqrt(CPU_TILE_HR_PIXELS) / self.scale)
            return whole if h * w * self.scale**2 <= CPU_TILE_HR_PIXELS else max(MIN_TILE, side - 2 * self.pad)
        torch.cuda.synchronize(self.device)
        torch.cuda.empty_cache()
        peaks = []
        sides = (64, 128)
        for s in sides:
            torch.cuda.reset_peak_memory_stats(self.device)
            base = torch.cuda.memory_allocated(self.device)
            probe = torch.zeros((batch, 3, s, s), device=self.device)
            self._run(probe)
            torch.cuda.synchronize(self.device)
            peaks.append(torch.cuda.max_memory_allocated(self.device) - base)
            del probe
        per_px = max((peaks[1] - peaks[0]) / (sides[1] ** 2 - sides[0] ** 2), peaks[1] / sides[1] ** 2 * 0.5, 1.0)
        free, _ = torch.cuda.mem_get_info(self.device)
        out_bytes = batch * 3 * h * w * self.scale**2 * 4
        budget = 0.7 * max(free - out_bytes, 0)
        side_in = int(math.sqrt(budget / per_px))
        cap = index_safe_tile(self.scale, batch, self.pad)
        fits = side_in >= whole + 2 * self.pad or (h + 2 * self.pad) * (w + 2 * self.pad) * per_px <= budget
        if fits and (h + 2 * self.pad) * (w + 2 * self.pad) <= (cap + 2 * self.pad) ** 2:
            return whole
        return min(cap, max(MIN_TILE, (side_in - 2 * self.pad) // 8 * 8))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        if self.tile is None:
            self.tile = self.auto_tile(h, w, b)
        t0 = time.perf_counter()
        out = self._forward(x)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.seconds += time.perf_counter() - t0
        return out

    def _attempt(self, x: torch.Tensor) -> torch.Tensor | None:
        """One tiled attempt; None on out-of-memory (the exception and its traceback end here)."""
        try:
            return tiled_forward(self._run, x, scale=self.scale, tile=self.tile or 0, pad=self.pad)
        except (OutOfMemory, RuntimeError) as exc:
            if not is_out_of_memory(exc):
                raise
            return None

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        if self.max_batch is not None and b > self.max_batch:
            step = self.max_batch  # may shrink further inside; each chunk then splits itself
            return torch.cat([self._forward(x[i : i + step]) for i in range(0, b, step)])
        while True:
            assert self.tile is not None
            out = self._attempt(x)
            if out is not None:
                return out
            # The retry runs outside the handler: the failed attempt's traceback and tensors are
            # gone, so empty_cache() really frees their memory before the smaller attempt.
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            self.oom_retries += 1
            if b > 1:
                self.max_batch = max(1, b // 2)
                return self._forward(x)
            current = min(self.tile or max(h, w), max(h, w))
            if current <= MIN_TILE:
                raise Sdr2HdrError(
                    f"out of {self.device.type.upper()} memory even with {MIN_TILE}-pixel tiles; "
                    "free memory on the device or use --device cpu"
                )
            self.tile = max(MIN_TILE, current // 2)
