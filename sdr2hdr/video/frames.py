"""The one place where PyAV frames become tensors and tensors become PyAV frames.

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
differ by less than 0.01 in xy).

Chroma is up-sampled at the source's siting ("left", "center", "topleft") by
:func:`sdr2hdr.color.chroma.upsample_chroma`, which describes the filters.

HDR10 output (what :func:`hdr10_420` makes of the model output)
-----------------------------------------------------------------
The network gives 4:4:4 BT.2020 PQ limited-range code values / 1023. Chroma is
down-sampled to 4:2:0 with **"left" siting** (the HEVC default, signalled as
``chromaloc=0``): a ``[1, 2, 1] / 4`` low-pass horizontally centred on the
even luma columns, and the mean of the two luma rows vertically (``[1, 1] /
2``), edges repeated. Unlike the authors' plain 2x2 block average (whose
result sits at the block centre) this puts each chroma sample where every
decoder (tag-aware or not) places it. Then all planes are rounded to integer
10-bit codes and clipped to ``[4, 1019]`` (codes 0-3 and 1020-1023 are
reserved in 10-bit video; overshoots beyond nominal 64-940 / 64-960 are kept).

Light levels (:func:`light_levels`) are measured on exactly those 10-bit
4:2:0 frames handed to the encoder: chroma up-sampled back with the "left"
bilinear filter above, BT.2020 NCL Y'CbCr -> R'G'B' clipped to [0, 1], PQ EOTF
to cd/m², per pixel ``max(R, G, B)``; MaxCLL is the maximum of that over all
pixels, MaxFALL the frame average of it (CTA-861.3), both per frame here.
:func:`hdr10_420`, :func:`light_levels` and :class:`HDR10Batch` live in
:mod:`sdr2hdr.video.hdr10` (they work a strip of rows at a time, so no
whole-frame float32 copies are made) and are re-exported here.

Memory: decoded frames stay compact uint8 / uint16 planes
(:class:`PlanarFrame`) until :func:`model_input` builds the float batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import av
import numpy as np
import torch

from sdr2hdr import color
from sdr2hdr.color.chroma import CENTER_SITED_CODECS, downsample_chroma, upsample_chroma
from sdr2hdr.color.tags import (
    MATRIX_NAMES,
    PRI_BT709,
    PRI_BT2020,
    PRI_SMPTE170M,
    RANGE_JPEG,
    RANGE_MPEG,
    RANGE_UNSPECIFIED,
    SPC_BT709,
    SPC_BT2020_NCL,
    SPC_SMPTE170M,
    SPC_UNSPECIFIED,
    TRC_BT709,
    TRC_BT2020_10,
    TRC_SMPTE170M,
    TRC_SMPTE2084,
    guess_matrix,
)

#: HDR10 output code range (10-bit, reserved codes excluded).
HDR10_CODE_MIN, HDR10_CODE_MAX = 4, 1019
HDR10_PIX_FMT = "yuv420p10le"

# Formats read plane by plane as they are; other formats are re-packed by swscale first.
_SEMI_PLANAR = {"nv12": "yuv420p", "nv21": "yuv420p", "nv16": "yuv422p", "nv24": "yuv444p", "nv42": "yuv444p",
                "p010le": "yuv420p10le", "p010be": "yuv420p10le", "p016le": "yuv420p16le", "p210le": "yuv422p10le",
                "p410le": "yuv444p10le", "yuyv422": "yuv422p", "uyvy422": "yuv422p", "y210le": "yuv422p10le"}


@dataclass(frozen=True)
class SourceFormat:
    """How a decoded frame's samples are to be read (constant along a stream, checked per frame).

    ``kind`` is "yuv", "rgb" (planes G, B, R) or "gray"; ``sub_x``/``sub_y`` are
    the chroma subsampling factors (1 or 2); ``siting`` one of :data:`sdr2hdr.color.chroma.SITING_OFFSETS`;
    ``width`` / ``height`` the coded size; ``rotation`` the display rotation
    (degrees counter-clockwise, 0 / 90 / 180 / 270) :func:`model_input` applies.
    """

    kind: str
    bits: int
    sub_x: int
    sub_y: int
    matrix: str
    full_range: bool
    siting: str
    width: int
    height: int
    pix_fmt: str
    rotation: int = 0

    def describe(self) -> str:
        chroma = {(2, 2): "4:2:0", (2, 1): "4:2:2", (1, 1): "4:4:4"}.get((self.sub_x, self.sub_y), "?")
        if self.kind != "yuv":
            chroma = self.kind.upper()
        rng = "full" if self.full_range else "limited"
        return f"{self.width}x{self.height} {self.bits}-bit {chroma} {self.matrix} {rng} range"


@dataclass
class PlanarFrame:
    """One decoded frame as compact numpy planes (what travels between threads).

    ``planes`` are Y, Cb, Cr (or G, B, R for RGB) uint8/uint16 arrays, chroma
    still subsampled. ``pts``/``duration`` are in the input stream's time base.
    """

    fmt: SourceFormat
    planes: tuple[np.ndarray, ...]
    pts: int
    duration: int = 0
    index: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Bytes of the sample planes (what a queue of decoded frames is bounded by)."""
        return sum(p.nbytes for p in self.planes)


def plane_array(plane: av.video.plane.VideoPlane, width: int, height: int, dtype: np.dtype) -> np.ndarray:
    """A (height, width) view on a plane's buffer (line padding skipped)."""
    item = np.dtype(dtype).itemsize
    buf = np.frombuffer(plane, dtype=dtype)
    return buf.reshape(-1, plane.line_size // item)[:height, :width]


def source_format(
    frame: av.VideoFrame,
    *,
    codec_name: str = "",
    fallback_colorspace: int = SPC_UNSPECIFIED,
    fallback_range: int = RANGE_UNSPECIFIED,
) -> SourceFormat:
    """Describe ``frame``'s samples. Frame tags win over the stream's (``fallback_*``).

    Raises ValueError for a matrix that cannot be converted (caught by the probe).
    """
    fmt = frame.format
    name = fmt.name
    w, h = frame.width, frame.height
    comps = fmt.components
    bits = max(c.bits for c in comps)
    cs = frame.colorspace if frame.colorspace not in (SPC_UNSPECIFIED, None) else fallback_colorspace
    rng = frame.color_range if frame.color_range not in (RANGE_UNSPECIFIED, None) else fallback_range
    full = rng == RANGE_JPEG or name.startswith("yuvj")
    if fmt.is_rgb or name.startswith(("gbr", "rgb", "bgr", "argb", "abgr", "rgba", "bgra", "0rgb", "rgb0", "x2rgb")):
        return SourceFormat("rgb", 16 if bits > 8 else 8, 1, 1, "bt709", True, "left", w, h, "gbrp16le" if bits > 8 else "gbrp")
    siting = "center" if codec_name in CENTER_SITED_CODECS else "left"
    if name.startswith(("gray", "ya")) or len([c for c in comps if not c.is_alpha]) == 1:
        gray_bits = 16 if bits > 8 else 8
        return SourceFormat("gray", gray_bits, 1, 1, guess_matrix(cs, w, h) or "bt709", full, siting, w, h,
                            "gray16le" if gray_bits > 8 else "gray")
    matrix = guess_matrix(cs, w, h)
    if matrix is None:
        raise ValueError(f"unsupported Y'CbCr matrix {MATRIX_NAMES.get(cs, cs)}")
    pix = _SEMI_PLANAR.get(name, name)
    if pix != name or fmt.is_big_endian or not fmt.is_planar or bits not in (8, 9, 10, 12, 14, 16):
        pix = _canonical_planar(name, bits, fmt)
    pf = av.video.format.VideoFormat(pix)
    sub_x = 2 if pf.chroma_width(2) == 1 else 1
    sub_y = 2 if pf.chroma_height(2) == 1 else 1
    return SourceFormat("yuv", max(cc.bits for cc in pf.components), sub_x, sub_y, matrix, full, siting, w, h, pix)


def _canonical_planar(name: str, bits: int, fmt: av.video.format.VideoFormat) -> str:
    """A planar little-endian Y'CbCr format with the same chroma subsampling and enough bits."""
    if name in _SEMI_PLANAR:
        return _SEMI_PLANAR[name]
    cw, ch = fmt.chroma_width(2), fmt.chroma_height(2)
    sub = "420" if (cw, ch) == (1, 1) else "422" if (cw, ch) == (1, 2) else "444"
    if bits <= 8:
        return f"yuv{sub}p"
    if bits <= 10:
        return f"yuv{sub}p10le"
    if bits <= 12:
        return f"yuv{sub}p12le"
    return f"yuv{sub}p16le"


def frame_to_planar(frame: av.VideoFrame, fmt: SourceFormat, *, pts: int = 0) -> PlanarFrame:
    """Copy a decoded frame's planes into numpy arrays (re-packing semi-planar / packed formats)."""
    if frame.format.name != fmt.pix_fmt:
        frame = frame.reformat(format=fmt.pix_fmt)
    dtype = np.dtype(np.uint16) if fmt.bits > 8 else np.dtype(np.uint8)
    w, h = fmt.width, fmt.height
    if fmt.kind == "gray":
        y = np.ascontiguousarray(plane_array(frame.planes[0], w, h, dtype))
        return PlanarFrame(fmt, (y,), pts)
    if fmt.kind == "rgb":
        planes = tuple(np.ascontiguousarray(plane_array(frame.planes[i], w, h, dtype)) for i in range(3))
        return PlanarFrame(fmt, planes, pts)
    cw, ch = -(-w // fmt.sub_x), -(-h // fmt.sub_y)
    planes = (
        np.ascontiguousarray(plane_array(frame.planes[0], w, h, dtype)),
        np.ascontiguousarray(plane_array(frame.planes[1], cw, ch, dtype)),
        np.ascontiguousarray(plane_array(frame.planes[2], cw, ch, dtype)),
    )
    return PlanarFrame(fmt, planes, pts)


# ------------------------------------------------------------------ model input


def _stacked_plane(frames: Sequence[PlanarFrame], i: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
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
    planes = [_stacked_plane(frames, i, device, work) for i in range(1 if fmt.kind == "gray" else 3)]
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


# ------------------------------------------------------------------ HDR10 output

_HDR10_NAMES = ("HDR10Batch", "hdr10_420", "light_levels")


def __getattr__(name: str) -> object:
    """The HDR10 quantisation names, from :mod:`sdr2hdr.video.hdr10` (imported on first use: it imports this module)."""
    if name in _HDR10_NAMES:
        from sdr2hdr.video import hdr10

        return getattr(hdr10, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def hdr10_frame(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> av.VideoFrame:
    """uint16 10-bit planes (4:2:0) -> a ``yuv420p10le`` VideoFrame tagged BT.2020 / PQ / BT.2020 NCL / limited."""
    h, w = y.shape
    frame = av.VideoFrame(w, h, HDR10_PIX_FMT)
    for plane, data in zip(frame.planes, (y, cb, cr)):
        ph, pw = data.shape
        plane_array(plane, pw, ph, np.dtype(np.uint16))[...] = data
    tag_hdr10(frame)
    return frame


def tag_hdr10(obj: object) -> None:
    """Set BT.2020 primaries, SMPTE ST 2084 transfer, BT.2020 NCL matrix, limited range on a frame or codec context."""
    obj.color_primaries = PRI_BT2020  # type: ignore[attr-defined]
    obj.color_trc = TRC_SMPTE2084  # type: ignore[attr-defined]
    obj.colorspace = SPC_BT2020_NCL  # type: ignore[attr-defined]
    obj.color_range = RANGE_MPEG  # type: ignore[attr-defined]


def frame_to_hdr10_ycbcr(frame: av.VideoFrame, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A decoded 10-bit 4:2:0 frame -> ``3 x H x W`` Y'CbCr code / 1023, chroma up-sampled ("left").

    For checking written files (tests, ``light_levels`` of a decoded output).
    """
    fr = frame if frame.format.name == HDR10_PIX_FMT else frame.reformat(format=HDR10_PIX_FMT)
    w, h = fr.width, fr.height
    y = torch.from_numpy(plane_array(fr.planes[0], w, h, np.dtype(np.uint16)).astype(np.int32)).to(dtype)
    cw, ch = -(-w // 2), -(-h // 2)
    c = torch.stack([torch.from_numpy(plane_array(fr.planes[i], cw, ch, np.dtype(np.uint16)).astype(np.int32)).to(dtype) for i in (1, 2)])
    c = upsample_chroma(c, h, w, 2, 2, "left")
    return torch.cat((y.unsqueeze(0), c), dim=0) / 1023.0


# --------------------------------------------------------------- SDR encoding


def sdr_frame(
    rgb: torch.Tensor,
    *,
    pix_fmt: str = "yuv420p",
    matrix: str = "bt709",
    full_range: bool = False,
) -> av.VideoFrame:
    """Non-linear R'G'B' ``3 x H x W`` in [0, 1] -> an 8/10-bit Y'CbCr VideoFrame, tagged.

    Chroma is subsampled with :func:`downsample_chroma` ("left" siting).
    Used by the sample clip and the test clip generators.
    """
    pf = av.video.format.VideoFormat(pix_fmt)
    bits = max(c.bits for c in pf.components)
    ycc = color.quantize(color.rgb_to_ycbcr(rgb.double().clamp(0, 1), matrix, full_range=full_range, bits=bits), bits)  # type: ignore[arg-type]
    h, w = rgb.shape[-2:]
    sub_x = 2 if pf.chroma_width(2) == 1 else 1
    sub_y = 2 if pf.chroma_height(2) == 1 else 1
    c = color.quantize(downsample_chroma(ycc[1:3].unsqueeze(0), sub_x, sub_y)[0], bits)
    peak = float(2**bits - 1)
    dtype = np.uint16 if bits > 8 else np.uint8
    planes = [torch.round(ycc[0] * peak).numpy().astype(dtype)] + [torch.round(c[i] * peak).numpy().astype(dtype) for i in (0, 1)]
    frame = av.VideoFrame(w, h, pix_fmt)
    for plane, data in zip(frame.planes, planes):
        ph, pw = data.shape
        plane_array(plane, pw, ph, np.dtype(dtype))[...] = data
    frame.colorspace = {"bt709": SPC_BT709, "bt601": SPC_SMPTE170M, "bt2020": SPC_BT2020_NCL}[matrix]
    frame.color_range = RANGE_JPEG if full_range else RANGE_MPEG
    frame.color_primaries = {"bt709": PRI_BT709, "bt601": PRI_SMPTE170M, "bt2020": PRI_BT2020}[matrix]
    frame.color_trc = {"bt709": TRC_BT709, "bt601": TRC_SMPTE170M, "bt2020": TRC_BT2020_10}[matrix]
    return frame
