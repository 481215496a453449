"""Training videos as integer 4:2:0 code planes, and HDR code planes -> display light.

HDR10 / HLG clips (10-bit, BT.2020) are the ground-truth side of synthesised
pairs and of real graded pairs; SDR clips are the input side of real pairs.
They are probed and decoded as ``convert`` does it
(:func:`sdr2hdr.video.probe.probe` with ``allow_hdr=True``,
:class:`sdr2hdr.video.reader.FrameReader` with ``yuv420_bits``); what is
training-specific lives here: the policy (:func:`decode_frames`'s
``require_hdr``), the spread of kept frames over a clip, and the code planes
-> Y'CbCr (:func:`planes_to_ycbcr`) -> display light (:func:`hdr_to_display`)
conversions.

Frames are kept as integer 4:2:0 planes (``uint16``: ``y`` ``H x W``, ``uv``
``2 x H/2 x W/2``, 10-bit codes from 10/12/16-bit sources, 8-bit codes from
8-bit ones), which is what the bitstream holds and half the memory of 4:4:4;
patches are converted with :func:`planes_to_ycbcr` (the bilinear
"left"-sited chroma up-sampling of ``sdr2hdr convert``,
:func:`sdr2hdr.color.chroma.upsample_chroma`, also used by
:mod:`sdr2hdr.data.degrade` for the synthesised SDR input). Frames keep their
coded size (no display rotation) and are not deinterlaced.

Colour tags are FFmpeg's names (:mod:`sdr2hdr.color.tags`), read from the
decoded frame (the bitstream) before the container:
``androidx_media__hdr10-video-with-sdr-container.mp4`` is PQ although its
container says SDR. Every failure is a one-line
:class:`~sdr2hdr.errors.InputError` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from sdr2hdr import color
from sdr2hdr.color import tags
from sdr2hdr.errors import InputError
from sdr2hdr.video.probe import VideoInfo, probe
from sdr2hdr.video.reader import FrameReader

__all__ = ["HLG", "PQ", "VIDEO_SUFFIXES", "Spread", "VideoFrames", "decode_frames", "hdr_to_display",
           "planes_to_ycbcr", "ycbcr_matrix"]

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".m4v", ".ts", ".m2ts", ".mts", ".hevc", ".h265", ".265", ".ivf", ".y4m", ".avi")

#: The HDR transfers' FFmpeg names (``VideoInfo.transfer``).
PQ = tags.PQ_NAME  # the transfer names training compares with (FFmpeg's)
HLG = tags.HLG_NAME

# Tagged primaries (FFmpeg names) -> the primaries of sdr2hdr.color the light is converted from;
# SD primaries are taken as BT.709 (as players do, see sdr2hdr.video.frames), others are not converted.
_LIGHT_PRIMARIES = {"bt709": "bt709", "bt470bg": "bt709", "smpte170m": "bt709", "smpte432": "p3d65", "bt2020": "bt2020"}


@dataclass
class VideoFrames:
    """Decoded frames: ``y`` ``N x H x W`` and ``uv`` ``N x 2 x H/2 x W/2`` integer codes (uint16).

    ``info`` is the clip's probe with ``info.fmt`` describing these planes
    (4:2:0, ``bits`` 8 or 10, ``full_range``); ``indices`` are the frames'
    0-based positions in the clip.
    """

    info: VideoInfo
    y: np.ndarray
    uv: np.ndarray
    indices: list[int]

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class Spread:
    """Up to ``count`` frames evenly spread over a clip of ``total`` frames (a :class:`~sdr2hdr.video.reader.FramePick`).

    The first frame of each of ``count`` equal buckets of the announced length
    (robust to a container that over-counts); every frame, up to ``count``,
    when ``total`` is unknown (0) or not above ``count``; ``count`` None: all.
    """

    total: int
    count: int | None

    @property
    def _spread(self) -> bool:
        return self.count is not None and self.total > self.count

    def _bucket(self, i: int) -> int:
        return (i * self.count) // self.total  # type: ignore[operator]

    def __contains__(self, i: int) -> bool:
        return not self._spread or i == 0 or self._bucket(i) != self._bucket(i - 1)

    def done(self, i: int) -> bool:
        """Whether ``count`` frames are kept once frame ``i`` has been seen."""
        if self.count is None:
            return False
        return self._bucket(i) + 1 >= self.count if self._spread else i + 1 >= self.count


def _check_side(info: VideoInfo, require_hdr: bool | None) -> None:
    """The training policy: True refuses anything not PQ / HLG, False refuses PQ / HLG (the SDR side of a pair)."""
    if require_hdr is True and not info.is_hdr:
        raise InputError(f"{info.path}: not an HDR video (transfer {info.transfer}); HDR10 (PQ) or HLG expected")
    if require_hdr is False and info.is_hdr:
        what = tags.describe_hdr_transfer(info.transfer)
        raise InputError(f"{info.path}: is an HDR video ({what} transfer) where the SDR side of a pair is expected")


def decode_frames(path: str | Path, max_frames: int | None = 48, *, require_hdr: bool | None = None) -> VideoFrames:
    """Decode up to ``max_frames`` frames, evenly spread over the clip (:class:`Spread`), as integer planes.

    ``require_hdr`` True: refuse anything that is not PQ or HLG; False: refuse
    PQ / HLG (the SDR side of a pair). 10/12-bit sources are kept at 10 bits,
    8-bit ones at 8. Odd frame sizes are cropped to even. A clip that breaks
    off keeps the frames that decode.
    """
    info = probe(path, deinterlace="off", allow_hdr=True)
    _check_side(info, require_hdr)
    reader = FrameReader(info, allow_truncated=True, select=Spread(info.frames_declared or 0, max_frames),
                         yuv420_bits=10 if info.fmt.bits > 8 else 8)
    ys: list[np.ndarray] = []
    uvs: list[np.ndarray] = []
    idx: list[int] = []
    fmt = info.fmt
    for frame in reader:
        y, cb, cr = frame.planes
        hh, ww = y.shape[0] // 2 * 2, y.shape[1] // 2 * 2
        ys.append(y[:hh, :ww].astype(np.uint16))
        uvs.append(np.stack([cb[: hh // 2, : ww // 2], cr[: hh // 2, : ww // 2]]).astype(np.uint16))
        idx.append(frame.index)
        fmt = frame.fmt
    if not ys:
        raise InputError(f"{info.path}: the video has no decodable frames")
    return VideoFrames(info=replace(info, fmt=fmt), y=np.stack(ys), uv=np.stack(uvs), indices=idx)


def ycbcr_matrix(info: VideoInfo, default: str) -> str:
    """The Y'CbCr matrix ("bt709", "bt601", "bt2020") of the planes: the tagged one, ``default`` when untagged."""
    return info.fmt.matrix if info.matrix not in ("unknown", "gbr") else default


def planes_to_ycbcr(y: np.ndarray, uv: np.ndarray, bits: int) -> torch.Tensor:
    """Integer 4:2:0 planes -> ``3 x H x W`` float32 code values / (2**bits - 1), chroma up-sampled
    ("left" siting, bilinear, as ``sdr2hdr convert`` does)."""
    from sdr2hdr.color.chroma import upsample_chroma

    peak = float(2**bits - 1)
    yt = torch.from_numpy(np.ascontiguousarray(y).astype(np.float32))[None] / peak
    ct = torch.from_numpy(np.ascontiguousarray(uv).astype(np.float32)) / peak
    cu = upsample_chroma(ct, yt.shape[1], yt.shape[2], 2, 2, "left")
    return torch.cat([yt, cu], dim=0)


def hdr_to_display(ycbcr: torch.Tensor, info: VideoInfo, *, hlg_peak: float = 1000.0) -> torch.Tensor:
    """HDR Y'CbCr code/(2**bits-1) (``info.fmt``'s bits and range) -> display light, linear BT.2020 RGB in cd/m².

    PQ: the ST 2084 EOTF. HLG: the BT.2100 HLG EOTF for a ``hlg_peak`` display.
    The matrix is BT.2020 NCL unless tagged otherwise.
    """
    matrix = ycbcr_matrix(info, "bt2020")
    rgb_p = color.ycbcr_to_rgb(ycbcr, matrix, full_range=info.fmt.full_range, bits=info.fmt.bits).clamp(0.0, 1.0)  # type: ignore[arg-type]
    if info.transfer == PQ:
        lin = color.pq_eotf(rgb_p)
    elif info.transfer == HLG:
        lin = color.hlg_eotf(rgb_p, peak=hlg_peak)
    else:
        raise InputError(f"{info.path}: not an HDR video (transfer {info.transfer})")
    primaries = _LIGHT_PRIMARIES.get(info.primaries, "bt2020")
    if primaries != "bt2020":
        lin = color.convert_primaries(lin, primaries, "bt2020")
    return lin
