"""HDR10 static metadata in the Matroska container: the video track's ``Colour`` element, set with mkvpropedit.

FFmpeg's Matroska muxer (what PyAV writes with) fills the track's ``Colour``
element from the codec parameters only: matrix, range, transfer, primaries.
The mastering display and the content light level are in the HEVC SEI, but
PyAV cannot attach them to the stream as side data, so the container would
lack them (``mediainfo`` then says ``MasteringDisplay_*_Source: Stream``, and
players and media scanners that read only the container see no HDR10 metadata).

:func:`write_colour` runs ``mkvpropedit`` on the finished temporary file,
before it is renamed over the target, and sets on the first video track:

* ``MatrixCoefficients`` 9 (BT.2020 NCL), ``Range`` 1 (broadcast / limited),
  ``TransferCharacteristics`` 16 (SMPTE ST 2084), ``Primaries`` 9 (BT.2020),
  ``ChromaSitingHorz`` 1 (left, co-sited) and ``ChromaSitingVert`` 2 (half):
  HEVC ``chroma_sample_loc_type`` 0, as written;
* ``MaxCLL`` / ``MaxFALL``: the values signalled in the SEI (0 = unknown, as
  in CTA-861.3, with ``--cll unknown``);
* ``MasteringMetadata``: primaries and white point chromaticities and max / min
  luminance, from the same integers as the SEI
  (:func:`sdr2hdr.video.hdr10_params.mastering_codes`); Matroska stores them as
  floats, which round back to the SEI's 0.00002 / 0.0001 cd/m² units exactly.

Layout. FFmpeg writes ``Chapters`` and ``Tags`` right after ``Tracks`` and
leaves no room for ``Tracks`` to grow (about 90 bytes here), so a plain
mkvpropedit edit moves ``Tracks`` behind the clusters: valid Matroska, found
through the SeekHead, but ``mediainfo`` then calls the file not streamable and
some TV players do not find the tracks. To keep ``Tracks`` in front, the tags
and chapters are saved with ``mkvextract`` (XML), removed (which leaves a Void
right after ``Tracks``) and written back in the same mkvpropedit run that grows
``Tracks`` into that room; what no longer fits before the clusters goes after
them (where mkvmerge puts tags too). Packets and timestamps are untouched.
Attachments (cover art) right after ``Tracks`` leave no room: then mkvpropedit
moves ``Tracks`` behind the clusters (still valid, found through the SeekHead).

Without ``mkvpropedit`` / ``mkvextract`` (MKVToolNix), or with one too old to
know the colour properties, :func:`missing_tools` returns the one warning line
``convert`` reports, and the file carries the metadata in the SEI only.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

from sdr2hdr.color import tags
from sdr2hdr.errors import OutputError
from sdr2hdr.video.hdr10_params import mastering_codes

#: Matroska codes written besides the light levels (ITU-T H.273 / Matroska ChromaSiting values).
FIXED_PROPERTIES = (
    ("color-matrix-coefficients", str(tags.SPC_BT2020_NCL)),  # 9: BT.2020 non-constant luminance
    ("color-range", str(tags.RANGE_MPEG)),  # 1: broadcast (limited) range
    ("color-transfer-characteristics", str(tags.TRC_SMPTE2084)),  # 16: SMPTE ST 2084 (PQ)
    ("color-primaries", str(tags.PRI_BT2020)),  # 9: BT.2020
    ("chroma-siting-horizontal", "1"),  # left (co-sited with luma)
    ("chroma-siting-vertical", "2"),  # half (between the two luma rows)
)
#: Every mkvpropedit property name :func:`colour_properties` sets.
PROPERTY_NAMES = tuple(n for n, _ in FIXED_PROPERTIES) + (
    "max-content-light", "max-frame-light", "max-luminance", "min-luminance",
    *(f"chromaticity-coordinates-{c}-{a}" for c in ("red", "green", "blue") for a in "xy"),
    "white-coordinates-x", "white-coordinates-y",
)


def colour_properties(mastering: str, peak_nits: float, min_nits: float,
                      max_cll: tuple[int, int]) -> list[tuple[str, str]]:
    """``(mkvpropedit property, value)`` pairs for the video track: the codes above, the SEI's light levels
    ``max_cll`` (MaxCLL, MaxFALL in cd/m²; 0 = unknown) and mastering display (``mastering``: "p3" | "bt2020")."""
    codes = mastering_codes(mastering, peak_nits, min_nits)
    cll, fall = (max(0, min(65535, int(v))) for v in max_cll)
    props = list(FIXED_PROPERTIES) + [("max-content-light", str(cll)), ("max-frame-light", str(fall))]
    for name in ("red", "green", "blue"):
        x, y = codes[name]
        props += [(f"chromaticity-coordinates-{name}-x", f"{x / 50000:.5f}"),
                  (f"chromaticity-coordinates-{name}-y", f"{y / 50000:.5f}")]
    wx, wy = codes["white"]
    lmax, lmin = codes["luminance"]
    props += [("white-coordinates-x", f"{wx / 50000:.5f}"), ("white-coordinates-y", f"{wy / 50000:.5f}"),
              ("max-luminance", f"{lmax / 10000:.4f}"), ("min-luminance", f"{lmin / 10000:.4f}")]
    return props


@lru_cache(maxsize=8)
def _knows_properties(mkvpropedit: str) -> bool:
    """Whether this mkvpropedit (MKVToolNix 13 and later) can set every Colour property we write."""
    try:
        out = subprocess.run([mkvpropedit, "--list-property-names"], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    known = {line.split("|", 1)[0].strip() for line in out.splitlines()}
    return all(n in known for n in PROPERTY_NAMES)


def missing_tools() -> str | None:
    """None when mkvpropedit and mkvextract can write the Colour element, else the one-line warning to report."""
    prop, extract = shutil.which("mkvpropedit"), shutil.which("mkvextract")
    if prop is None or extract is None:
        which = " and ".join(n for n, p in (("mkvpropedit", prop), ("mkvextract", extract)) if p is None)
        return (f"{which} (MKVToolNix) not found: the .mkv carries the HDR10 mastering display and light levels "
                "in the HEVC SEI only, not in its Matroska Colour element (install mkvtoolnix to add them)")
    if not _knows_properties(prop):
        return ("this mkvpropedit cannot set Matroska colour properties (MKVToolNix 13 or later needed): the .mkv "
                "carries the HDR10 mastering display and light levels in the HEVC SEI only")
    return None


def _run(args: list[str], path: Path) -> None:
    """Run an MKVToolNix tool; exit status 1 means warnings only. Failure is one :class:`OutputError` line."""
    try:
        res = subprocess.run(args, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    except OSError as exc:
        raise OutputError(f"cannot run {args[0]} on {path}: {exc.strerror or exc}") from None
    if res.returncode in (0, 1):
        return
    lines = [ln.strip() for ln in (res.stdout + "\n" + res.stderr).splitlines() if ln.strip()]
    why = next((ln for ln in lines if ln.startswith("Error")), lines[-1] if lines else f"exit status {res.returncode}")
    raise OutputError(f"{Path(args[0]).name} could not add the HDR10 metadata to the Matroska file {path.name}: {why}")


def write_colour(path: Path, properties: list[tuple[str, str]]) -> None:
    """Set ``properties`` (:func:`colour_properties`) on the first video track of the Matroska file ``path``,
    in place, keeping ``Tracks`` before the clusters (module doc). Call only when :func:`missing_tools` is None."""
    prop, extract = shutil.which("mkvpropedit"), shutil.which("mkvextract")
    if prop is None or extract is None:
        raise OutputError("mkvpropedit / mkvextract (MKVToolNix) not found")
    edit = [prop, "--quiet", str(path), "--edit", "track:v1"]
    for name, value in properties:
        edit += ["--set", f"{name}={value}"]
    with tempfile.TemporaryDirectory(prefix="sdr2hdr-mkv-") as tmp:
        saved = []  # (option that removes / writes back, XML file)
        for kind, option in (("tags", "--tags"), ("chapters", "--chapters")):
            xml = Path(tmp) / f"{kind}.xml"
            _run([extract, "--quiet", str(path), kind, str(xml)], path)
            if xml.is_file() and xml.stat().st_size > 0:
                saved.append((option, xml))
        if saved:
            _run([prop, "--quiet", str(path), *(a for opt, _ in saved for a in (opt, _all(opt, "")))], path)
        _run(edit + [a for opt, xml in saved for a in (opt, _all(opt, str(xml)))], path)


def _all(option: str, value: str) -> str:
    """mkvpropedit's argument for ``option``: tags name their target (``all:FILE``), chapters do not."""
    return f"all:{value}" if option == "--tags" else value
