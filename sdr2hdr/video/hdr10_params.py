"""HDR10 signalling for x265: the mastering display (SMPTE ST 2086), content light levels and colour tags.

:func:`x265_params` builds the ``x265-params`` string every HDR10 encode uses (one pass or a
segment); :func:`mastering_codes` gives the ST 2086 integers that the HEVC SEI and the Matroska
``Colour`` element (:mod:`sdr2hdr.video.mkvcolour`) are both written from.
"""

from __future__ import annotations

from sdr2hdr import color
from sdr2hdr.color import tags

#: Mastering display primaries by option name -> :data:`sdr2hdr.color.PRIMARIES_XY` key.
MASTERING_PRIMARIES = {"p3": "p3d65", "bt2020": "bt2020"}
#: x265 parameters the HDR10 signalling owns (``--x265-params`` may not set them).
RESERVED_X265 = ("hdr10", "hdr", "master-display", "max-cll", "colorprim", "transfer", "colormatrix", "range",
                 "chromaloc", "repeat-headers", "input-depth", "output-depth", "input-csp", "annexb")
#: x265 parameters that have their own sdr2hdr option (``--x265-params`` may not set them either).
DEDICATED_X265 = {"crf": "--crf", "preset": "--preset"}

def mastering_codes(mastering: str, peak_nits: float, min_nits: float) -> dict[str, tuple[int, ...]]:
    """The SMPTE ST 2086 values as the HEVC SEI carries them (integers).

    Keys "red", "green", "blue", "white": (x, y) chromaticity in 0.00002 units;
    "luminance": (max, min) in 0.0001 cd/m². ``mastering`` is "p3" (P3-D65) or
    "bt2020". The SEI (:func:`master_display`) and the Matroska Colour element
    (:mod:`sdr2hdr.video.mkvcolour`) are both written from these numbers.
    """
    if mastering not in MASTERING_PRIMARIES:
        raise ValueError(f"unknown mastering display {mastering!r} (choose from {', '.join(MASTERING_PRIMARIES)})")
    if not (0 < peak_nits <= 10000) or not (0 <= min_nits < peak_nits):
        raise ValueError(f"mastering luminance out of range: peak {peak_nits}, min {min_nits} cd/m²")
    r, g, b, wp = color.PRIMARIES_XY[MASTERING_PRIMARIES[mastering]]

    def xy(p: tuple[float, float]) -> tuple[int, int]:
        return round(p[0] / 0.00002), round(p[1] / 0.00002)

    return {"red": xy(r), "green": xy(g), "blue": xy(b), "white": xy(wp),
            "luminance": (round(peak_nits * 10000), round(min_nits * 10000))}


def master_display(mastering: str, peak_nits: float, min_nits: float) -> str:
    """x265 ``master-display`` string: chromaticities in 0.00002 units, luminance in 0.0001 cd/m².

    ``mastering`` is "p3" (P3-D65) or "bt2020".
    """
    c = mastering_codes(mastering, peak_nits, min_nits)

    def xy(key: str) -> str:
        return f"({c[key][0]},{c[key][1]})"

    return f"G{xy('green')}B{xy('blue')}R{xy('red')}WP{xy('white')}L({c['luminance'][0]},{c['luminance'][1]})"


def x265_params(
    *,
    mastering: str,
    peak_nits: float,
    min_nits: float,
    max_cll: tuple[int, int] = (0, 0),
    extra: str = "",
) -> str:
    """The ``x265-params`` string for HDR10 output; ``extra`` (``k=v:k=v``) is appended.

    Raises ``ValueError`` when ``extra`` is not ``k=v`` items or sets a reserved
    or dedicated key; whether x265 knows a key is asked of x265 itself
    (:func:`sdr2hdr.video.x265.check_encoder`).
    """
    for item in filter(None, (extra or "").split(":")):
        check_extra_item(item)
    cll, fall = (max(0, min(65535, int(v))) for v in max_cll)
    params = [
        "hdr10=1",
        "hdr10-opt=1",
        "repeat-headers=1",
        f"master-display={master_display(mastering, peak_nits, min_nits)}",
        f"max-cll={cll},{fall}",
        f"colorprim={tags.PRIMARIES_NAMES[tags.PRI_BT2020]}",
        f"transfer={tags.TRC_NAMES[tags.TRC_SMPTE2084]}",
        f"colormatrix={tags.MATRIX_NAMES[tags.SPC_BT2020_NCL]}",
        "range=limited",
        "chromaloc=0",
        "log-level=error",
    ]
    if extra:
        params.append(extra.strip(":"))
    return ":".join(params)


def check_extra_item(item: str) -> None:
    """Refuse one ``--x265-params`` item that is not ``key=value`` or whose key sdr2hdr sets itself.

    Keys are compared as x265 reads them: a leading ``--`` dropped, ``_`` as
    ``-``, and a ``no``/``no-`` prefix naming the same key.
    """
    key, sep, _ = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--x265-params: {item!r} is not key=value (write e.g. no-sao=1)")
    name = key.lstrip("-").replace("_", "-")
    names = {name}
    if name.startswith("no"):
        names.add(name[2:].lstrip("-"))
    for n in names:
        if n in DEDICATED_X265:
            raise ValueError(f"--x265-params may not set {key!r}: use {DEDICATED_X265[n]}")
        if n in RESERVED_X265:
            raise ValueError(f"--x265-params may not set {key!r}: HDR10 signalling is set by sdr2hdr")
