"""The conversion as a plan of independent segments, cut at the source's keyframes.

:func:`scan` demuxes the video stream once (no decoding: about a second per
film) and records every packet's presentation timestamp and keyframe flag.
:func:`make_plan` then walks the keyframes in presentation order and starts a
new segment at the first keyframe at least ``segment_seconds`` after the
current segment's start. Each :class:`Segment` is the frames with
``start_pts <= pts < end_pts`` (input time base): it is decoded from its
keyframe (:mod:`sdr2hdr.segments.source`), and its frame range
(``first_frame``, ``frames``, 0-based presentation order) is what the
segment's decoder must deliver, checked frame by frame.

Frames are independent (the model has no temporal state), so segmenting
changes nothing a viewer sees. Inputs whose frames cannot be located from
their packets are one segment (:func:`single_reason`): packets without a
timestamp or with repeated ones, deinterlacing (``bwdif`` looks at the
neighbouring frames), ``--allow-truncated`` (what decodes is only known by
decoding), and a first keyframe that is not the first frame of the plan.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from sdr2hdr.errors import one_line
from sdr2hdr.video.probe import VideoInfo, open_input


@dataclass(frozen=True)
class Segment:
    """Frames ``[first_frame, first_frame + frames)`` (presentation order) = ``start_pts <= pts < end_pts``.

    ``start_pts`` None: from the stream's first frame (no seek); ``end_pts`` None: to the stream's end.
    Timestamps are in the input video stream's time base.
    """

    index: int
    first_frame: int
    frames: int
    start_pts: int | None
    end_pts: int | None

    def to_json(self) -> dict[str, int | None]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Segment:
        """The segment of a manifest entry (:meth:`to_json`'s keys; the entry's other keys are ignored)."""
        return cls(**{f.name: doc[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class Scan:
    """Presentation timestamps of every video packet (sorted) and of the keyframes among them (sorted)."""

    pts: list[int]
    keyframes: list[int]
    problem: str | None = None  # why the packets cannot place frames (then one segment)


def scan(path: Path, stream_index: int) -> Scan:
    """Demux (not decode) ``path``'s video stream ``stream_index`` and collect packet timestamps."""
    pts: list[int] = []
    keys: list[int] = []
    problem: str | None = None
    container = open_input(path)
    try:
        stream = container.streams[stream_index]
        for pkt in container.demux(stream):
            if pkt.size == 0:
                continue
            if pkt.pts is None:
                problem = "video packets without timestamps"
                continue
            pts.append(pkt.pts)
            if pkt.is_keyframe:
                keys.append(pkt.pts)
    except av.error.FFmpegError as exc:
        problem = f"the video stream cannot be read to its end ({one_line(exc)})"
    finally:
        container.close()
    pts.sort()
    if problem is None and any(a == b for a, b in zip(pts, pts[1:])):
        problem = "repeated video timestamps"
    return Scan(pts, sorted(keys), problem)


def single_reason(info: VideoInfo, *, allow_truncated: bool) -> str | None:
    """Why ``info`` must be converted as one segment whatever its length (None: it can be cut)."""
    if info.deinterlace:
        return "deinterlacing looks at neighbouring frames"
    if allow_truncated or info.truncated_index:
        return "--allow-truncated converts what decodes, known only by decoding"
    return None


def make_plan(found: Scan, time_base: Fraction, segment_seconds: float) -> list[Segment]:
    """Segments of about ``segment_seconds`` (seconds), each starting at a keyframe; at least one."""
    pts = found.pts
    whole = [Segment(0, 0, len(pts), None, None)]
    if found.problem is not None or len(pts) < 2:
        return whole
    step = Fraction(segment_seconds) / time_base  # ticks
    starts = [pts[0]]
    for k in found.keyframes:
        if k > starts[-1] and k - starts[-1] >= step and k > pts[0]:
            starts.append(k)
    if len(starts) == 1:
        return whole
    firsts = [bisect_left(pts, s) for s in starts] + [len(pts)]
    segs = []
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else None
        segs.append(Segment(i, firsts[i], firsts[i + 1] - firsts[i], None if i == 0 else s, end))
    return segs
