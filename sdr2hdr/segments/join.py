"""Join finished segment files into the target container, with the source's other streams copied.

The joiner is the one-pass path's :class:`~sdr2hdr.video.writer.HDR10Writer`
in packet mode: its video stream is a copy of the first segment's (HEVC
parameters, ``hvcC`` / CodecPrivate), tagged HDR10 like an encoded one, and
every segment's packets are fed in order through
:meth:`~sdr2hdr.video.writer.HDR10Writer.write_packet`, which shifts them by
the same start offset and interleaves the source's audio / subtitles (stream
copy), chapters, tags and cover art exactly as when encoding. Nothing is
decoded or re-encoded: each segment starts with an IDR frame and repeats its
parameter sets, so the joined stream decodes to the segments' frames.

Decode timestamps stay increasing across a join (x265 starts a segment's
DTS a few frames before its first PTS, after the previous segment's last
DTS); where a variable frame rate makes them collide, a packet's DTS is
moved up by one tick, never past its PTS. Each packet's duration is its
frame's, as the one-pass writer sets it: the distance to the next frame's
timestamp, and for a segment's last frame to ``end`` (its timestamp plus
duration as decoded, recorded by the worker): an MP4 segment file keeps only
decode-time deltas, which are other frames' durations with B-frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av

from sdr2hdr.errors import OutputError, one_line
from sdr2hdr.video.probe import VideoInfo
from sdr2hdr.video.writer import HDR10Writer

if TYPE_CHECKING:
    from sdr2hdr.convert import Encoding


@dataclass
class Joined:
    """What the join wrote: video packets, presentation seconds, and the streams copied or not."""

    packets: int = 0
    video_seconds: float = 0.0
    copied: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise OutputError(f"cannot read the finished segment {path}: {one_line(exc)}; run again with --restart") from None


def _durations(c: av.container.InputContainer, end: Fraction) -> dict[int, int]:
    """Frame durations by timestamp (the file's time base): to the next frame, the last one to ``end`` seconds."""
    st = c.streams.video[0]
    pts = sorted(p.pts for p in c.demux(st) if p.size and p.pts is not None)
    c.seek(0, stream=st, backward=True)
    nxt = pts[1:] + [round(end / Fraction(st.time_base))]
    return {p: max(0, q - p) for p, q in zip(pts, nxt)}


def _feed(writer: HDR10Writer, path: Path, end: Fraction, last_dts: int | None) -> tuple[int, int | None]:
    """All video packets of one segment file into ``writer``: (packets, the last DTS, in the file's time base)."""
    n = 0
    with _open(path) as c:
        durations = _durations(c, end)
        for pkt in c.demux(c.streams.video[0]):
            if pkt.size == 0:
                continue
            if pkt.pts is not None:
                pkt.duration = durations.get(pkt.pts, pkt.duration or 0)
            if pkt.dts is not None and last_dts is not None and pkt.dts <= last_dts:
                if pkt.pts is None or last_dts + 1 > pkt.pts:
                    raise OutputError(f"{path.name}: its decode timestamps overlap the previous segment's")
                pkt.dts = last_dts + 1
            last_dts = pkt.dts if pkt.dts is not None else last_dts
            writer.write_packet(pkt)
            n += 1
    return n, last_dts


def join(files: list[Path], ends: list[int], target: Path, enc: Encoding, info: VideoInfo, scale: int,
         signalled: tuple[int, int]) -> Joined:
    """Write ``files`` (finished segments, in order) into ``target`` as ``enc.fmt`` (module doc); ``ends``: each
    segment's last timestamp + duration in the input's time base."""
    done = Joined()
    with _open(files[0]) as first:
        writer = enc.open_writer(target, info, scale, signalled, template=first.streams.video[0])
    try:
        last_dts: int | None = None
        for path, end in zip(files, ends):
            n, last_dts = _feed(writer, path, end * info.time_base, last_dts)
            done.packets += n
        writer.close()
    finally:
        writer.abort()
    done.video_seconds = writer.duration_seconds
    done.copied, done.dropped = list(writer.report.copied), list(writer.report.dropped)
    enc.write_container_colour(target, signalled)
    return done
