"""Truncation a container's index shows before any frame is decoded.

A file cut short (an interrupted download or copy) is normally only noticed
when its frames run out (:class:`~sdr2hdr.video.reader.FrameReader`). Some
containers say so up front, and then the conversion is refused before the
model runs:

* **MP4 / MOV** with the index (``moov``) first ("fast start"): the sample
  table gives every video sample's byte offset and size; samples that end
  past the end of the file are missing. (An MP4 cut before an index at its
  end cannot be opened at all; the probe refuses it.)
* **Matroska / WebM**: the Segment element's size (written by every muxer
  that can seek back) or a SeekHead entry (the Cues, the Tags, ...) pointing
  past the end of the file. Live-written files of unknown segment size
  without a SeekHead are left to the end-of-stream check.

Other containers (MPEG-TS, raw streams) carry no such index.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av

from sdr2hdr.errors import InputError

_EBML, _SEGMENT, _SEEKHEAD, _SEEK, _SEEK_ID, _SEEK_POS = 0x1A45DFA3, 0x18538067, 0x114D9B74, 0x4DBB, 0x53AB, 0x53AC
_ELEMENT_NAMES = {0x1C53BB6B: "Cues", 0x1F43B675: "Cluster", 0x1254C367: "Tags", 0x1043A770: "Chapters",
                  0x1941A469: "Attachments", 0x1654AE6B: "Tracks", 0x1549A966: "Info"}
_HEAD_BYTES = 1 << 16


def truncated_error(path: Path, reason: str) -> InputError:
    """The one-line refusal of a truncated input (same words whenever it is found)."""
    return InputError(f"{path} is truncated or damaged: {reason}; nothing written "
                      "(--allow-truncated converts what decodes)")


def truncated_by_index(container: av.container.InputContainer, stream: av.stream.Stream, path: Path) -> str | None:
    """Why ``path`` is cut short according to its index, or None when the index says nothing."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    name = container.format.name
    if "mp4" in name or "mov" in name:
        return _mov_samples(stream, size)
    if "matroska" in name or "webm" in name:
        return _matroska(path, size)
    return None


def _mov_samples(stream: av.stream.Stream, size: int) -> str | None:
    entries = stream.index_entries
    total = len(entries)
    inside, end = 0, 0
    for e in entries:
        stop = e.pos + e.size
        end = max(end, stop)
        inside += stop <= size
    if total == 0 or inside == total:
        return None
    return (f"only {inside} of the {total} frames its index declares are in the file "
            f"(the index points up to byte {end}, the file ends at {size})")


def _vint(buf: bytes, pos: int, max_len: int, what: str) -> tuple[int, int]:
    """An EBML variable-length integer at ``pos``, marker bits kept -> (raw value, its length in bytes)."""
    first = buf[pos]
    length = 1
    while length <= max_len and not first & (0x80 >> (length - 1)):
        length += 1
    if length > max_len or pos + length > len(buf):
        raise ValueError(f"bad EBML {what}")
    return int.from_bytes(buf[pos : pos + length], "big"), length


def _read_id(buf: bytes, pos: int) -> tuple[int, int]:
    """An EBML element ID (marker bits kept) at ``pos`` -> (id, next position)."""
    raw, length = _vint(buf, pos, 4, "id")
    return raw, pos + length


def _read_size(buf: bytes, pos: int) -> tuple[int | None, int]:
    """An EBML data size at ``pos`` -> (size, or None when "unknown", next position)."""
    raw, length = _vint(buf, pos, 8, "size")
    value = raw & ((1 << (7 * length)) - 1)
    return (None if value == (1 << (7 * length)) - 1 else value), pos + length


def _header(buf: bytes, pos: int) -> tuple[int, int | None, int]:
    """An element header at ``pos`` -> (id, data size or None when "unknown", position of its data)."""
    eid, pos = _read_id(buf, pos)
    n, pos = _read_size(buf, pos)
    return eid, n, pos


def _children(buf: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(id, size, data position) of the elements in ``buf[pos:end]``; an unknown size is a ValueError."""
    while pos < end:
        eid, n, pos = _header(buf, pos)
        if n is None:
            raise ValueError("unknown-size child element")
        yield eid, n, pos
        pos += n


def _matroska(path: Path, size: int) -> str | None:
    try:
        with open(path, "rb") as f:
            buf = f.read(_HEAD_BYTES)
        eid, n, pos = _header(buf, 0)
        if eid != _EBML or n is None:
            return None
        eid, seg_size, start = _header(buf, pos + n)
        if eid != _SEGMENT:
            return None
        if seg_size is not None and start + seg_size > size:
            return f"its Matroska segment declares {start + seg_size} bytes, the file ends at {size}"
        return _seekhead_past_end(buf, start, size)
    except (ValueError, IndexError, OSError):
        return None


def _seekhead_past_end(buf: bytes, start: int, size: int) -> str | None:
    """The first SeekHead entry (at the segment's start) that points past the end of the file, if any.

    Raises ValueError for a malformed or unknown-size entry (the caller then trusts the file)."""
    eid, n, pos = _header(buf, start)
    if eid != _SEEKHEAD or n is None:
        return None
    for eid, n, data in _children(buf, pos, min(pos + n, len(buf))):
        if eid != _SEEK:
            continue
        fields = {sid: int.from_bytes(buf[sub : sub + m], "big") for sid, m, sub in _children(buf, data, data + n)}
        where = fields.get(_SEEK_POS)
        if where is not None and start + where >= size:
            what = _ELEMENT_NAMES.get(fields.get(_SEEK_ID) or 0, "an element")
            return f"its Matroska seek index puts the {what} at byte {start + where}, the file ends at {size}"
    return None
