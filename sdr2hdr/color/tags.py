"""The one table between FFmpeg / ITU-T H.273 colour enum numbers and their names.

PyAV reports a frame's or stream's ``color_trc``, ``color_primaries``,
``colorspace`` and ``color_range`` as the integers of FFmpeg's
``libavutil/pixfmt.h`` (which are the ITU-T H.273 code points for the first
three). The names here are FFmpeg's own (``av_color_transfer_name`` and
friends, what ``ffprobe`` prints and ``-color_trc`` accepts): "smpte2084",
"arib-std-b67", "bt2020nc", "tv", ... They are the one vocabulary for colour
tags in this package; every "is this HDR" decision goes through
:func:`is_hdr_transfer`.
"""

from __future__ import annotations

# ---------------------------------------------------------------- transfer (AVColorTransferCharacteristic)
TRC_BT709 = 1
TRC_UNSPECIFIED = 2
TRC_GAMMA22 = 4
TRC_GAMMA28 = 5
TRC_SMPTE170M = 6
TRC_SMPTE240M = 7
TRC_LINEAR = 8
TRC_IEC61966_2_1 = 13  # sRGB
TRC_BT2020_10 = 14
TRC_BT2020_12 = 15
TRC_SMPTE2084 = 16  # PQ
TRC_SMPTE428 = 17
TRC_ARIB_STD_B67 = 18  # HLG

#: FFmpeg's transfer names (``av_color_transfer_name``).
TRC_NAMES: dict[int, str] = {
    0: "reserved", 1: "bt709", 2: "unknown", 3: "reserved", 4: "bt470m", 5: "bt470bg", 6: "smpte170m",
    7: "smpte240m", 8: "linear", 9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e",
    13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67",
}

# ---------------------------------------------------------------- primaries (AVColorPrimaries)
PRI_BT709 = 1
PRI_UNSPECIFIED = 2
PRI_BT470M = 4
PRI_BT470BG = 5
PRI_SMPTE170M = 6
PRI_SMPTE240M = 7
PRI_BT2020 = 9
PRI_SMPTE431 = 11
PRI_SMPTE432 = 12  # Display P3

#: FFmpeg's primaries names (``av_color_primaries_name``).
PRIMARIES_NAMES: dict[int, str] = {
    0: "reserved", 1: "bt709", 2: "unknown", 3: "reserved", 4: "bt470m", 5: "bt470bg", 6: "smpte170m",
    7: "smpte240m", 8: "film", 9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213",
}

# ---------------------------------------------------------------- matrix (AVColorSpace)
SPC_RGB = 0
SPC_BT709 = 1
SPC_UNSPECIFIED = 2
SPC_RESERVED = 3
SPC_FCC = 4
SPC_BT470BG = 5
SPC_SMPTE170M = 6
SPC_SMPTE240M = 7
SPC_YCGCO = 8
SPC_BT2020_NCL = 9
SPC_BT2020_CL = 10
SPC_ICTCP = 14

#: FFmpeg's matrix names (``av_color_space_name``).
MATRIX_NAMES: dict[int, str] = {
    0: "gbr", 1: "bt709", 2: "unknown", 3: "reserved", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
    8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc", 13: "chroma-derived-c",
    14: "ictcp", 15: "ipt-c2", 16: "ycgco-re", 17: "ycgco-ro",
}

# ---------------------------------------------------------------- range (AVColorRange)
RANGE_UNSPECIFIED = 0
RANGE_MPEG = 1  # limited ("tv")
RANGE_JPEG = 2  # full ("pc")

#: FFmpeg's range names (``av_color_range_name``).
RANGE_NAMES: dict[int, str] = {0: "unknown", 1: "tv", 2: "pc"}

# ---------------------------------------------------------------- HDR

#: The HDR transfers: SMPTE ST 2084 (PQ) and ARIB STD-B67 (HLG).
HDR_TRANSFERS: frozenset[int] = frozenset({TRC_SMPTE2084, TRC_ARIB_STD_B67})
#: Their FFmpeg names.
HDR_TRANSFER_NAMES: frozenset[str] = frozenset(TRC_NAMES[t] for t in HDR_TRANSFERS)
PQ_NAME = TRC_NAMES[TRC_SMPTE2084]  # "smpte2084"
HLG_NAME = TRC_NAMES[TRC_ARIB_STD_B67]  # "arib-std-b67"


def is_hdr_transfer(trc: int | str | None) -> bool:
    """Whether a transfer (FFmpeg enum number or FFmpeg name) is an HDR one (PQ or HLG)."""
    if trc is None:
        return False
    if isinstance(trc, str):
        return trc in HDR_TRANSFER_NAMES
    return int(trc) in HDR_TRANSFERS


def describe_hdr_transfer(trc: int | str) -> str:
    """"PQ / SMPTE ST 2084" or "HLG / ARIB STD-B67" for an HDR transfer (what messages call it)."""
    code = trc if isinstance(trc, int) else {v: k for k, v in TRC_NAMES.items()}.get(trc, -1)
    return "PQ / SMPTE ST 2084" if code == TRC_SMPTE2084 else "HLG / ARIB STD-B67"


def tag_name(table: dict[int, str], code: int | None, default: str | None = None) -> str:
    """``table[code]``, else ``default`` (else the number as text)."""
    if code in table:
        return table[code]  # type: ignore[index]
    return default if default is not None else str(code)


def guess_matrix(colorspace: int, width: int, height: int) -> str | None:
    """FFmpeg colorspace -> our matrix name; unspecified is guessed from the size
    (BT.709 for HD: width >= 1280 or height > 576, else BT.601, as mpv/ffmpeg do).

    Returns None for matrices we cannot convert (YCgCo, ICtCp, BT.2020 CL, ...).
    """
    if colorspace == SPC_BT709:
        return "bt709"
    if colorspace in (SPC_BT470BG, SPC_SMPTE170M, SPC_FCC):
        return "bt601"
    if colorspace == SPC_BT2020_NCL:
        return "bt2020"
    if colorspace in (SPC_UNSPECIFIED, SPC_RESERVED) or colorspace > SPC_ICTCP:
        return "bt709" if (width >= 1280 or height > 576) else "bt601"
    if colorspace == SPC_SMPTE240M:  # Kr/Kb 0.212/0.087: within 0.0015 of BT.709, treated as it
        return "bt709"
    return None
