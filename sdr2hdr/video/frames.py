"""PyAV frames <-> numpy planes: the one place that reads and writes PyAV frame buffers.

Decoding side: :func:`source_format` describes how a decoded frame's samples
are read (:class:`SourceFormat`: Y'CbCr / RGB / gray, bit depth, chroma
subsampling and siting, matrix and range from the tags, see
:mod:`sdr2hdr.color.tags`), and :func:`frame_to_planar` copies its planes
into compact uint8 / uint16 numpy arrays (:class:`PlanarFrame`, what travels
between threads; semi-planar and packed layouts are re-packed by swscale
first). They stay integers until :func:`sdr2hdr.inference.model_io.model_input`
builds the model's float batch.

Encoding side: :func:`hdr10_frame` wraps 10-bit 4:2:0 code planes (made by
:func:`sdr2hdr.video.hdr10.hdr10_420`) in a ``yuv420p10le`` frame tagged
HDR10 (:func:`tag_hdr10`); :func:`sdr_frame` encodes R'G'B' as a tagged SDR
frame (the sample clip and the test clip generators).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import av
import numpy as np
import torch

from sdr2hdr import color
from sdr2hdr.color.chroma import CENTER_SITED_CODECS, downsample_chroma
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
    (degrees counter-clockwise, 0 / 90 / 180 / 270) :func:`~sdr2hdr.inference.model_io.model_input` applies.
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


# ------------------------------------------------------------------ HDR10 frames


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
