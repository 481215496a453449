"""Decoded planes -> the model's input batch, and decoded HDR10 frames -> the model's output convention.

Model input (what :func:`model_input` returns)
-----------------------------------------------
``B x 3 x H x W`` float, **BT.709 non-constant-luminance Y'CbCr, limited
range, 8-bit code values / 255**, planes in Y, Cb, Cr order, chroma at full
resolution (the JSInet convention, see :mod:`sdr2hdr.color`). Sources in
another matrix (BT.601), range (full / "PC" / yuvj) or bit depth (10-bit
ProRes, ...) are *converted* to it with :func:`sdr2hdr.color.convert_ycbcr`
(exact re-encoding of the same R'G'B', not rounded), never relabelled. RGB
sources (gbrp, rgb24, ...) are encoded with the BT.709 matrix. The primaries
and transfer of SD sources (SMPTE 170M / BT.470BG primaries, BT.601
transfer) are taken as BT.709 / BT.1886, as players do (their primaries
differ by less than 0.01 in xy). Chroma is up-sampled at the source's siting
by :func:`sdr2hdr.color.chroma.upsample_chroma`; a display rotation is
applied last.

Memory: decoded frames stay compact uint8 / uint16 planes
(:class:`~sdr2hdr.video.frames.PlanarFrame`) until :func:`model_input`
builds the float batch; only the integer planes cross to the device.

Model output
------------
The network gives 4:4:4 BT.2020 PQ limited-range code values / 1023; what
the encoder gets of it (4:2:0 10-bit codes, light levels) is made by
:mod:`sdr2hdr.video.hdr10`. :func:`frame_to_hdr10_ycbcr` turns a decoded
HDR10 frame back into that convention, for checking written files.
"""

from __future__ import annotations

from collections.abc import Sequence

import av
import numpy as np
import torch

from sdr2hdr import color
from sdr2hdr.color.chroma import upsample_chroma
from sdr2hdr.video.frames import HDR10_PIX_FMT, PlanarFrame, plane_array

__all__ = ["frame_to_hdr10_ycbcr", "model_input", "stacked_plane"]


def stacked_plane(frames: Sequence[PlanarFrame], i: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Plane ``i`` of every frame as one ``B x h x w`` tensor of ``dtype`` on ``device``, code / (2**bits - 1).

    The planes are stacked as the integers they are (1 or 2 bytes a sample) and
    only that compact batch crosses to the device; the float copy is made there.
    """
    bits = frames[0].fmt.bits
    a = np.stack([f.planes[i] for f in frames])
    if a.dtype == np.uint16:  # not every op supports uint16: codes of up to 15 bits fit int16, 16-bit go to int32
        a = a.view(np.int16) if bits <= 15 else a.astype(np.int32)
    return torch.from_numpy(a).to(device, non_blocking=True).to(dtype).div_(float(2**bits - 1))


def model_input(
    frames: Sequence[PlanarFrame], *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Decoded frames (same format and size) -> ``B x 3 x H x W`` BT.709 limited Y'CbCr code / 255.

    Chroma is up-sampled and the matrix / range / bit depth converted on
    ``device`` (only the compact planes cross to it). Computed in float32
    at least; returned in ``dtype``. A display rotation (``fmt.rotation``) is
    applied last, to the 4:4:4 planes, so chroma is interpolated at its coded
    siting and the result is upright (``H x W`` swapped for 90 / 270 degrees).
    """
    fmt = frames[0].fmt
    if any(f.fmt != fmt for f in frames):
        raise ValueError("model_input needs frames of one format; batch them by format")
    device = torch.device(device)
    work = torch.float64 if dtype == torch.float64 else torch.float32
    peak = float(2**fmt.bits - 1)
    h, w = fmt.height, fmt.width
    planes = [stacked_plane(frames, i, device, work) for i in range(1 if fmt.kind == "gray" else 3)]
    if fmt.kind == "rgb":
        g, b, r = planes
        out = color.rgb_to_ycbcr(torch.stack((r, g, b), dim=1), "bt709", full_range=False, bits=8)
        return _upright(out, fmt.rotation).to(dtype)
    if fmt.kind == "gray":
        y = planes[0]
        neutral = torch.full_like(y, 2 ** (fmt.bits - 1) / peak)
        ycc = torch.stack((y, neutral, neutral), dim=1)
    else:
        y, cb, cr = planes
        cc = upsample_chroma(torch.stack((cb, cr), dim=1), h, w, fmt.sub_x, fmt.sub_y, fmt.siting)
        ycc = torch.cat((y.unsqueeze(1), cc), dim=1)
    out = color.convert_ycbcr(
        ycc, src_matrix=fmt.matrix, src_full_range=fmt.full_range, src_bits=fmt.bits,  # type: ignore[arg-type]
        dst_matrix="bt709", dst_full_range=False, dst_bits=8,
    )
    return _upright(out, fmt.rotation).to(dtype)


def _upright(x: torch.Tensor, rotation: int) -> torch.Tensor:
    """``B x C x H x W`` turned ``rotation`` degrees counter-clockwise (a multiple of 90), as players show it."""
    k = (rotation // 90) % 4
    return torch.rot90(x, k, dims=(-2, -1)).contiguous() if k else x


def frame_to_hdr10_ycbcr(frame: av.VideoFrame, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A decoded 10-bit 4:2:0 frame -> ``3 x H x W`` Y'CbCr code / 1023, chroma up-sampled ("left").

    For checking written files (tests, ``light_levels`` of a decoded output).
    """
    fr = frame if frame.format.name == HDR10_PIX_FMT else frame.reformat(format=HDR10_PIX_FMT)
    w, h = fr.width, fr.height
    y = torch.from_numpy(plane_array(fr.planes[0], w, h, np.dtype(np.uint16)).astype(np.int32)).to(dtype)
    cw, ch = -(-w // 2), -(-h // 2)
    c = torch.stack([torch.from_numpy(plane_array(fr.planes[i], cw, ch, np.dtype(np.uint16)).astype(np.int32)).to(dtype)
                     for i in (1, 2)])
    c = upsample_chroma(c, h, w, 2, 2, "left")
    return torch.cat((y.unsqueeze(0), c), dim=0) / 1023.0
