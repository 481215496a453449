"""What the HDR10 file keeps of its input besides the pictures, audio and subtitles.

:func:`keep` is called by :class:`~sdr2hdr.video.writer.HDR10Writer` once
its streams exist and before anything is muxed:

* **global tags**: the title and every other container tag except the ones
  describing the old file (``encoder``, ``major_brand``, ``minor_version``,
  ``compatible_brands``, ``duration``);
* **chapters**: start, end and title, renumbered 1..n (Matroska chapter UIDs
  are not valid MP4 chapter ids and back);
* **stream flags** (disposition): each copied stream keeps the input's
  (default, forced, hearing impaired, ...); the video is marked default,
  and so is the first copied audio stream when no input audio stream was
  (an MPEG-TS input has no such flags; Matroska players would otherwise
  see every track as not default);
* **cover art** (attached pictures): in Matroska as an attachment (its file
  name and MIME type kept, e.g. ``cover.jpg``), in MP4 as the ``covr``
  picture; FFmpeg writes none in MOV, so there it is reported as not copied,
  as are other Matroska attachments (fonts: PyAV cannot read their data);
* **start offset**: an input whose streams all start late (MPEG-TS starts at
  about 1.4 s) has that offset taken off every timestamp and chapter, so the
  output starts at 0 and its duration is the input's. Offsets at or below 0
  (an AAC priming packet before 0) are kept as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import av

from sdr2hdr.errors import one_line
from sdr2hdr.video.probe import VideoInfo

#: Container tags that describe the old file, not the content.
_DROPPED_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration"}
#: Image codecs of attached pictures -> (file extension, MIME type).
_IMAGES = {"mjpeg": ("jpg", "image/jpeg"), "png": ("png", "image/png"), "bmp": ("bmp", "image/bmp"),
           "gif": ("gif", "image/gif"), "webp": ("webp", "image/webp")}


@dataclass
class Kept:
    """What :func:`keep` set up; ``covers`` are muxed by the writer before its first packet (MP4)."""

    offset: Fraction = Fraction(0)  # seconds taken off every timestamp
    covers: list[tuple[av.stream.Stream, av.Packet]] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def start_offset(src: av.container.InputContainer, indices: list[int]) -> Fraction:
    """The latest time at which all of the streams ``indices`` have started, if after 0 (else 0), in seconds."""
    starts = []
    for i in indices:
        s = src.streams[i]
        if s.start_time is not None and s.time_base:
            starts.append(Fraction(s.start_time) * Fraction(s.time_base))
    first = min(starts, default=Fraction(0))
    return first if first > 0 else Fraction(0)


def shift(pkt: av.Packet, offset: Fraction) -> None:
    """Take ``offset`` seconds off a packet's timestamps (in its own time base)."""
    if offset and pkt.time_base:
        d = round(offset / pkt.time_base)
        if pkt.pts is not None:
            pkt.pts -= d
        if pkt.dts is not None:
            pkt.dts -= d


def keep(out: av.container.OutputContainer, fmt: str, info: VideoInfo, video: av.stream.Stream,
         copies: dict[int, av.stream.Stream]) -> Kept:
    """Copy tags, chapters, stream flags and cover art of ``info``'s file into ``out`` (see module doc)."""
    kept = Kept()
    with av.open(str(info.path), mode="r") as src:
        kept.offset = start_offset(src, [info.stream_index, *copies])
        for k, v in src.metadata.items():
            if k.lower() not in _DROPPED_TAGS and v:
                out.metadata[k] = v
        _chapters(src, out, kept.offset)
        _dispositions(src, info, video, copies)
        for idx, _ in info.attached_pics:
            _cover(src, out, fmt, src.streams[idx], kept)
    for idx, name in info.attachments:
        kept.dropped.append(f"#{idx} attachment {name}: attachments other than cover art are not copied")
    return kept


def _chapters(src: av.container.InputContainer, out: av.container.OutputContainer, offset: Fraction) -> None:
    chapters = []
    for n, ch in enumerate(src.chapters(), start=1):
        tb = Fraction(ch["time_base"])
        shift = round(offset / tb) if tb else 0
        start, end = max(0, ch["start"] - shift), max(0, ch["end"] - shift)
        chapters.append({"id": n, "start": start, "end": max(start, end), "time_base": tb,
                         "metadata": dict(ch.get("metadata") or {})})
    if chapters:
        out.set_chapters(chapters)


def _dispositions(src: av.container.InputContainer, info: VideoInfo, video: av.stream.Stream,
                  copies: dict[int, av.stream.Stream]) -> None:
    default, attached = av.stream.Disposition.default, av.stream.Disposition.attached_pic
    sv = src.streams[info.stream_index]
    video.disposition = (int(sv.disposition) & ~int(attached)) | int(default)
    for k in ("language", "title"):
        if sv.metadata.get(k):
            video.metadata[k] = sv.metadata[k]
    for idx, o in copies.items():
        o.disposition = int(src.streams[idx].disposition)
    audio = [i for i in copies if src.streams[i].type == "audio"]
    if audio and not any(s.disposition & default for s in src.streams.audio):
        copies[audio[0]].disposition = int(copies[audio[0]].disposition) | int(default)


def _cover(src: av.container.InputContainer, out: av.container.OutputContainer, fmt: str,
           s: av.stream.Stream, kept: Kept) -> None:
    """One attached picture: a Matroska attachment or an MP4 cover stream; else a reason in ``kept.dropped``."""
    codec = s.codec_context.name if s.codec_context else "?"
    label = f"#{s.index} cover art {codec}"
    try:
        pkt = next((p for p in src.demux(s) if p.size), None)
    except av.error.FFmpegError:
        pkt = None
    if pkt is None:
        kept.dropped.append(f"{label}: its picture cannot be read")
        return
    ext, mime = _IMAGES.get(codec, ("bin", "application/octet-stream"))
    try:
        if fmt == "matroska":
            name = s.metadata.get("filename") or f"cover.{ext}"
            out.add_attachment(name, s.metadata.get("mimetype") or mime, bytes(pkt))
            kept.copied.append(f"{label} ({name})")
            return
        if fmt != "mp4" or codec not in out.supported_codecs:  # FFmpeg writes a covr picture in MP4 only
            kept.dropped.append(f"{label}: not supported in {fmt} (.mkv and .mp4 keep cover art)")
            return
        o = out.add_stream_from_template(s)
        o.disposition = int(av.stream.Disposition.attached_pic)
    except (av.error.FFmpegError, ValueError, TypeError) as exc:
        kept.dropped.append(f"{label}: {one_line(exc)}")
        return
    kept.covers.append((o, pkt))
    kept.copied.append(label)
