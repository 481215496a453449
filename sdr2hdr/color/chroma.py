"""Chroma siting and chroma up- / down-sampling (4:2:0 / 4:2:2 <-> 4:4:4), torch, any device.

Up-sampling (source 4:2:0 / 4:2:2 -> 4:4:4, :func:`upsample_chroma`):
separable **bilinear** interpolation at the source's chroma sample positions,
edge samples repeated. Positions follow the codec's chroma siting: "left"
(MPEG-2, H.264, HEVC, VP9, AV1 default: horizontally co-sited with even luma
columns, vertically half-way between two luma rows), "center" (MPEG-1, JPEG)
or "topleft" (co-sited both ways). For "left" 4:2:0 that means luma column
``2i`` takes chroma sample ``i`` and column ``2i+1`` the mean of ``i`` and
``i+1``; luma rows ``2j`` / ``2j+1`` take ``3/4, 1/4`` mixes of chroma rows
``j-1, j`` / ``j, j+1``. 4:2:2 is co-sited horizontally.

Down-sampling (4:4:4 -> 4:2:0 / 4:2:2, :func:`downsample_chroma`) is always
**"left" sited** (the HEVC default, signalled as ``chromaloc=0``): a
``[1, 2, 1] / 4`` low-pass horizontally centred on the even luma columns, and
the mean of the two luma rows vertically (``[1, 1] / 2``), edges repeated.
Unlike a plain 2x2 block average (whose result sits at the block centre) this
puts each chroma sample where every decoder (tag-aware or not) places it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["CENTER_SITED_CODECS", "SITING_OFFSETS", "downsample_chroma", "interp_axis", "interp_table",
           "upsample_chroma"]

#: Horizontal / vertical chroma sample offset in luma pixels, by siting.
SITING_OFFSETS = {"left": (0.0, 0.5), "center": (0.5, 0.5), "topleft": (0.0, 0.0)}
#: Codecs whose 4:2:0 chroma is centred (everything else is MPEG-2 style "left").
CENTER_SITED_CODECS = {"mjpeg", "mpeg1video", "jpeg2000", "ljpeg"}


@lru_cache(maxsize=128)
def interp_table(
    n_out: int, n_in: int, factor: int, offset: float, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear taps: output i reads (1-w)*in[i0] + w*in[i1], input sample k sits at ``factor*k + offset``."""
    pos = (np.arange(n_out, dtype=np.float64) - offset) / factor
    pos = np.clip(pos, 0.0, n_in - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w = pos - i0
    return (torch.from_numpy(i0).to(device), torch.from_numpy(i1).to(device),
            torch.from_numpy(w).to(device=device, dtype=dtype))


def interp_axis(x: torch.Tensor, dim: int, n_out: int, factor: int, offset: float) -> torch.Tensor:
    """``x`` interpolated along ``dim`` to ``n_out`` samples with the :func:`interp_table` taps."""
    if factor == 1 and x.shape[dim] == n_out:
        return x
    i0, i1, w = interp_table(n_out, x.shape[dim], factor, offset, x.device, x.dtype)
    shape = [1] * x.ndim
    shape[dim] = n_out
    w = w.reshape(shape)
    a = x.index_select(dim, i0)
    b = x.index_select(dim, i1)
    return torch.lerp(a, b, w)


def upsample_chroma(c: torch.Tensor, height: int, width: int, sub_x: int, sub_y: int, siting: str = "left") -> torch.Tensor:
    """Chroma planes ``(..., ceil(H/sub_y), ceil(W/sub_x))`` -> ``(..., H, W)``, bilinear at the sited positions.

    4:2:2 (``sub_y == 1``) is horizontally co-sited whatever ``siting`` says
    about vertical placement; "center" moves 4:2:2 too.
    """
    off_x, off_y = SITING_OFFSETS[siting]
    off_x = off_x if sub_x == 2 else 0.0
    off_y = off_y if sub_y == 2 else 0.0
    c = interp_axis(c, c.ndim - 2, height, sub_y, off_y)
    return interp_axis(c, c.ndim - 1, width, sub_x, off_x)


def downsample_chroma(c: torch.Tensor, sub_x: int = 2, sub_y: int = 2) -> torch.Tensor:
    """Full-resolution chroma ``(B, C, H, W)`` -> "left"-sited subsampled chroma.

    Horizontally ``[1, 2, 1] / 4`` centred on even columns, vertically the mean
    of rows ``2j, 2j+1``; edges repeated; odd sizes give ``ceil(n / 2)`` samples.
    """
    if sub_y == 2:
        if c.shape[-2] % 2:
            c = torch.cat((c, c[..., -1:, :]), dim=-2)
        c = 0.5 * (c[..., 0::2, :] + c[..., 1::2, :])
    if sub_x == 2:
        w = c.shape[-1]
        p = F.pad(c.reshape(-1, 1, *c.shape[-2:]), (1, 1, 0, 0), mode="replicate").reshape(*c.shape[:-1], w + 2)
        c = 0.25 * p[..., 0:w:2] + 0.5 * p[..., 1 : w + 1 : 2] + 0.25 * p[..., 2 : w + 2 : 2]
    return c
