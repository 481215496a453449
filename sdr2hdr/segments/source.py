"""The decoded frames of one segment: seek to its keyframe, decode, hand on exactly its frames.

:class:`SegmentFrames` wraps :class:`~sdr2hdr.video.reader.FrameReader` (so
formats, timestamps and the truncation checks are the one-pass reader's)
with a seek to the segment's keyframe before decoding. Frames before
``start_pts`` (the leading pictures of an open GOP, which belong to the
previous segment) are dropped; decoding goes on to the first frame at or after
``end_pts`` so the segment's last frame gets the same duration (next
timestamp minus its own) as in a one-pass decode, and stops there. The
frames delivered are checked against the plan: the first one's timestamp and
the count; a mismatch is a one-line :class:`~sdr2hdr.errors.InputError`,
never a silently different output.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace


from sdr2hdr.errors import InputError
from sdr2hdr.segments.plan import Segment
from sdr2hdr.video import frames as fr
from sdr2hdr.video.probe import VideoInfo
from sdr2hdr.video.reader import FrameReader


def _segment_reader(info: VideoInfo, seg: Segment, *, threads: int = 0) -> FrameReader:
    """A :class:`FrameReader` over ``seg``: from its keyframe to the frame after its end."""
    if seg.first_frame and info.frames_declared:  # the truncation check counts this segment's frames only
        info = replace(info, frames_declared=max(0, info.frames_declared - seg.first_frame))
    return FrameReader(info, allow_truncated=False, threads=threads, span=(seg.start_pts, seg.end_pts))


class SegmentFrames:
    """Iterate over the frames of one planned segment (single use); ``warnings`` like the reader's."""

    def __init__(self, info: VideoInfo, seg: Segment, *, threads: int = 0) -> None:
        self.info = info
        self.seg = seg
        self.threads = threads
        self.warnings: list[str] = []
        self.end_pts: int | None = None  # the last frame's timestamp + duration (input time base), once read

    def __iter__(self) -> Iterator[fr.PlanarFrame]:
        seg = self.seg
        reader = _segment_reader(self.info, seg, threads=self.threads)
        frames = iter(reader)
        n = 0
        try:
            for f in frames:
                if n == 0 and seg.start_pts is not None and f.pts != seg.start_pts:
                    raise self._mismatch(f"its first frame is at {f.pts}, not at the keyframe {seg.start_pts}")
                if n == seg.frames:
                    raise self._mismatch(f"more than the {seg.frames} frames planned decode")
                f.index = seg.first_frame + n
                self.end_pts = f.pts + f.duration
                yield f
                n += 1
                if seg.end_pts is not None and n == seg.frames:
                    break
        finally:
            frames.close()  # type: ignore[attr-defined]
            self.warnings = list(reader.warnings)
        if n != seg.frames:
            raise self._mismatch(f"{n} of the {seg.frames} frames planned decode")

    def _mismatch(self, what: str) -> InputError:
        s = self.seg
        return InputError(f"{self.info.path}: segment {s.index + 1} (frames {s.first_frame}-{s.first_frame + s.frames - 1})"
                          f": {what}; convert it with --no-resume (one pass)")
