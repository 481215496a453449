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
builds the float batch; only the integer planes cross to the device (uint8,
or uint16 as int16, from pinned staging buffers for CUDA, without waiting
for the copy), where they are widened to float.

Model output
------------
The network gives 4:4:4 BT.2020 PQ limited-range code values / 1023; what
the encoder gets of it (4:2:0 10-bit codes, light levels) is made by
:mod:`sdr2hdr.video.hdr10`. :func:`frame_to_hdr10_ycbcr` turns a decoded
HDR10 frame back into that convention, for checking written files.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import av
import numpy as np
import torch

from sdr2hdr import color
from sdr2hdr.color.chroma import upsample_chroma
from sdr2hdr.video.frames import HDR10_PIX_FMT, PlanarFrame, plane_array

__all__ = ["StagingBuffers", "frame_to_hdr10_ycbcr", "model_input", "stacked_plane", "staging_buffers", "uses_pinned_staging"]


class StagingBuffers:
    """Host buffers the integer planes are stacked into before an upload, reused by (plane slot, shape, dtype).

    Page-locked (``pin``) for CUDA: only from pinned memory is ``.to(device,
    non_blocking=True)`` an asynchronous DMA (from pageable memory the copy
    is staged through a driver buffer and the host waits). Pinning is slow,
    so a buffer is kept for the next batch of the same shape; before it is
    refilled, :meth:`get` waits for the upload last made out of it (the event
    :meth:`uploaded` recorded). At most ``max_buffers`` are kept, least
    recently used dropped first (torch's pinned allocator keeps a dropped
    block until the copies reading it are done).
    """

    def __init__(self, *, pin: bool = True, max_buffers: int = 6) -> None:
        self.pin = pin
        self.max_buffers = max_buffers
        self._buffers: OrderedDict[tuple[object, ...], tuple[torch.Tensor, object | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buffers)

    def get(self, slot: int, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """The buffer for ``slot`` (e.g. the plane index) of this shape and dtype, free to be overwritten."""
        key = (slot, tuple(shape), dtype)
        entry = self._buffers.pop(key, None)
        if entry is None:
            buf = torch.empty(shape, dtype=dtype, pin_memory=self.pin)
        else:
            buf, pending = entry
            if pending is not None:
                pending.synchronize()  # type: ignore[attr-defined]  # the last upload out of it has finished
        self._buffers[key] = (buf, None)
        while len(self._buffers) > self.max_buffers:
            self._buffers.popitem(last=False)
        return buf

    def uploaded(self, slot: int, shape: tuple[int, ...], dtype: torch.dtype, event: object | None) -> None:
        """Note the event after which the upload just made out of :meth:`get`'s buffer is complete."""
        key = (slot, tuple(shape), dtype)
        if key in self._buffers:
            self._buffers[key] = (self._buffers[key][0], event)


_local = threading.local()


def staging_buffers() -> StagingBuffers:
    """This thread's pinned :class:`StagingBuffers` (one per thread: a buffer is never filled by two at once)."""
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = StagingBuffers()
    return buffers


def uses_pinned_staging(device: torch.device) -> bool:
    """Whether uploads to ``device`` go through pinned staging buffers (CUDA only)."""
    return device.type == "cuda" and torch.cuda.is_available()


def _upload_event(device: torch.device) -> object | None:
    """A CUDA event recorded after the copies queued so far on ``device``'s current stream (None off CUDA)."""
    if device.type != "cuda":
        return None
    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(device))
    return event


def stacked_plane(frames: Sequence[PlanarFrame], i: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Plane ``i`` of every frame as one ``B x h x w`` tensor of ``dtype`` on ``device``, code / (2**bits - 1).

    The planes cross to the device as the integers they are, 1 or 2 bytes a
    sample (uint8, or uint16 as its int16 bit pattern: not every backend has
    uint16 ops), from a pinned staging buffer for CUDA (:class:`StagingBuffers`,
    ``non_blocking``); they are widened and scaled on the device.
    """
    bits = frames[0].fmt.bits
    first = frames[0].planes[i]
    wide = first.dtype == np.uint16
    host_dtype = torch.int16 if wide else torch.uint8
    shape = (len(frames), *first.shape)
    pin = uses_pinned_staging(device)
    if pin:
        host = staging_buffers().get(i, shape, host_dtype)
        np.stack([f.planes[i] for f in frames], out=host.numpy().view(first.dtype))
    else:
        a = np.stack([f.planes[i] for f in frames])
        host = torch.from_numpy(a.view(np.int16) if wide else a)
    x = host.to(device, non_blocking=True)
    if pin:
        staging_buffers().uploaded(i, shape, host_dtype, _upload_event(device))
    if wide and bits > 15:  # 16-bit codes do not fit int16: widened on the device, the bit pattern kept
        x = x.to(torch.int32).bitwise_and_(0xFFFF)
    return x.to(dtype).div_(float(2**bits - 1))


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
