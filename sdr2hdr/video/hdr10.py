"""Model output -> 10-bit 4:2:0 HDR10 codes and their light levels, a strip of rows at a time.

The network gives 4:4:4 BT.2020 PQ limited-range code values / 1023. Chroma is
down-sampled to 4:2:0 with **"left" siting** (the HEVC default, signalled as
``chromaloc=0``; the filter is :func:`sdr2hdr.color.chroma.downsample_chroma`).
Then all planes are rounded to integer 10-bit codes and clipped to
``[4, 1019]`` (codes 0-3 and 1020-1023 are reserved in 10-bit video;
overshoots beyond nominal 64-940 / 64-960 are kept).

Light levels (:func:`light_levels`) are measured on exactly those 10-bit
4:2:0 frames handed to the encoder: chroma up-sampled back with the "left"
bilinear filter (:func:`sdr2hdr.color.chroma.upsample_chroma`), BT.2020 NCL
Y'CbCr -> R'G'B' clipped to [0, 1], PQ EOTF to cd/m², per pixel
``max(R, G, B)``; MaxCLL is the maximum of that over all pixels, MaxFALL the
frame average of it (CTA-861.3), both per frame here.

Everything full-resolution that is kept is integer (int16 codes:
24.9 MB a 3840x2160 frame); the float work (rounding, the chroma filter, the
chroma up-sampling, the PQ EOTF of the light-level measurement) runs on
strips of rows of at most :data:`STRIP_PIXELS` pixels, so no float32 copy of
a whole frame is made besides the model's output itself. Every output
sample is computed from the same inputs by the same elementwise operations
as on the whole frame, so the codes and MaxCLL are bit-identical to a
whole-frame computation (MaxFALL to float64 rounding of its sum).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from sdr2hdr import color
from sdr2hdr.color.chroma import downsample_chroma, interp_axis, interp_table

__all__ = ["HDR10_CODE_MAX", "HDR10_CODE_MIN", "STRIP_PIXELS", "HDR10Batch", "hdr10_420", "light_levels", "row_strips"]

#: HDR10 output code range (10-bit, reserved codes excluded).
HDR10_CODE_MIN, HDR10_CODE_MAX = 4, 1019

#: Pixels (frames x rows x width) of one strip of the float work: 2 MB per float32 plane.
STRIP_PIXELS = 2**18


def row_strips(batch: int, height: int, width: int, pixels: int = STRIP_PIXELS) -> Iterator[tuple[int, int]]:
    """``[r0, r1)`` row ranges covering ``height``; even bounds (4:2:0 row pairs), about ``pixels`` each."""
    rows = max(2, pixels // max(1, batch * width) // 2 * 2)
    for r0 in range(0, height, rows):
        yield r0, min(height, r0 + rows)


@dataclass
class HDR10Batch:
    """Model output made ready for the encoder: integer 10-bit codes, 4:2:0, "left" sited.

    ``y`` is ``B x H x W`` and ``c`` ``B x 2 x H/2 x W/2`` (int16 tensors on the
    model's device until :meth:`numpy`); ``max_cll`` / ``fall`` are per-frame
    light levels in cd/m² measured on these codes (see above).
    """

    y: torch.Tensor
    c: torch.Tensor
    max_cll: list[float]
    fall: list[float]

    @property
    def nbytes(self) -> int:
        """Bytes of the code planes (2 per sample)."""
        return self.y.numel() * self.y.element_size() + self.c.numel() * self.c.element_size()

    def numpy(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per frame (Y, Cb, Cr) uint16 views on host copies of the codes."""
        y = self.y.cpu().numpy().view(np.uint16)
        c = self.c.cpu().numpy().view(np.uint16)
        return [(y[i], c[i, 0], c[i, 1]) for i in range(y.shape[0])]


def _codes(x: torch.Tensor) -> torch.Tensor:
    """Code value / 1023 -> integer 10-bit code in [4, 1019], still float."""
    return torch.clamp(torch.round(x * 1023.0), float(HDR10_CODE_MIN), float(HDR10_CODE_MAX))


def hdr10_420(out: torch.Tensor, *, measure: bool = True) -> HDR10Batch:
    """Model output ``B x 3 x H x W`` (BT.2020 PQ limited Y'CbCr code / 1023, 4:4:4) -> :class:`HDR10Batch`.

    ``H`` and ``W`` must be even (always true for x2 / x4 output). Any float
    dtype; computed in float32 strip by strip.
    """
    if out.shape[-1] % 2 or out.shape[-2] % 2:
        raise ValueError(f"4:2:0 output needs even sizes, got {tuple(out.shape[-2:])}")
    b, _, h, w = out.shape
    y = torch.empty((b, h, w), dtype=torch.int16, device=out.device)
    c = torch.empty((b, 2, h // 2, w // 2), dtype=torch.int16, device=out.device)
    for r0, r1 in row_strips(b, h, w):
        s = out[:, :, r0:r1].float()
        y[:, r0:r1] = _codes(s[:, 0])
        c[:, :, r0 // 2 : r1 // 2] = _codes(downsample_chroma(s[:, 1:3]))
        del s
    cll: list[float] = []
    fall: list[float] = []
    if measure:
        cll, fall = light_levels(y, c)
    return HDR10Batch(y, c, cll, fall)


def light_levels(y: torch.Tensor, c: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-frame (max, mean) of ``max(R, G, B)`` in cd/m² of 10-bit HDR10 4:2:0 codes.

    ``y``: ``B x H x W``, ``c``: ``B x 2 x ceil(H/2) x ceil(W/2)`` integer code
    values (any dtype). Chroma is up-sampled ("left" siting, bilinear) strip by
    strip from the rows each output row reads, as the whole-frame filter would.
    """
    b, h, w = y.shape
    i0, i1, wt = interp_table(h, c.shape[-2], 2, 0.5, c.device, torch.float32)
    peak = torch.full((b,), float("-inf"), dtype=torch.float32, device=y.device)
    total = torch.zeros((b,), dtype=torch.float64, device=y.device)
    for r0, r1 in row_strips(b, h, w):
        a = c.index_select(-2, i0[r0:r1]).float() / 1023.0
        z = c.index_select(-2, i1[r0:r1]).float() / 1023.0
        cf = interp_axis(torch.lerp(a, z, wt[r0:r1].view(-1, 1)), 3, w, 2, 0.0)
        yf = y[:, r0:r1].float() / 1023.0
        lin = color.hdr10_to_linear(torch.cat((yf.unsqueeze(1), cf), dim=1), bits=10)
        m = lin.amax(dim=1).reshape(b, -1)
        peak = torch.maximum(peak, m.amax(dim=1))
        total += m.sum(dim=1, dtype=torch.float64)
    return peak.tolist(), (total / float(h * w)).tolist()
