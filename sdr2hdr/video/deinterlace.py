"""Deinterlacing of interlaced input with FFmpeg's ``bwdif`` filter (``convert --deinterlace``).

When
----
``auto`` (the default) deinterlaces when the input says it is interlaced:
the stream's field order (``tt``, ``bb``, ``tb``, ``bt``) or its first
decoded frame's interlaced flag. ``on`` always deinterlaces, ``off`` never
(a warning then says the input is interlaced and was treated as progressive).

How
---
``bwdif=mode=send_frame`` (Bob Weaver: edge-directed, motion-adaptive, the
best of FFmpeg's CPU deinterlacers) through PyAV's filter graph, one output
frame per input frame: **the frame count and every timestamp stay the input's**
(audio, subtitles and chapters stay in sync, the output has the input's
frame rate). ``send_field`` would double the frame rate (smoother motion,
twice the frames through the model and twice the bits), so it is not used.
Field parity comes from the stream's field order when it has one, else
from each frame's flags. In ``auto`` mode with frames flagged interlaced,
only flagged frames are filtered (``deint=interlaced``: progressive
segments stay untouched); otherwise every frame is (``deint=all``).
"""

from __future__ import annotations

from fractions import Fraction

import av

from sdr2hdr.color import tags

MODES = ("auto", "off", "on")

#: AVFieldOrder -> the field displayed first (TB: top coded first, bottom displayed first).
FIELD_ORDERS = {2: "tff", 3: "bff", 4: "bff", 5: "tff"}


def field_order(code: int | None) -> str | None:
    """``tff`` / ``bff`` for an interlaced AVFieldOrder, None for progressive or unknown."""
    return FIELD_ORDERS.get(int(code or 0))


class Deinterlacer:
    """``bwdif`` in ``send_frame`` mode; output frames get their input frame's timestamps back.

    :meth:`push` each decoded frame, then :meth:`flush`; both return the
    frames ready so far (one frame of delay). A change of pixel format or
    size mid-stream flushes the graph and builds a new one.
    """

    def __init__(self, time_base: Fraction, *, parity: str = "auto", only_flagged: bool = False) -> None:
        self.time_base = Fraction(time_base)
        self.parity = parity
        self.deint = "interlaced" if only_flagged else "all"
        self._graph: av.filter.Graph | None = None
        self._key: tuple[str, int, int] | None = None
        self._src: av.filter.context.FilterContext | None = None
        self._sink: av.filter.context.FilterContext | None = None
        self.frames = 0

    def _build(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
        done = self.flush() if self._graph is not None else []
        g = av.filter.Graph()
        sar = frame.sample_aspect_ratio if getattr(frame, "sample_aspect_ratio", None) else Fraction(1)
        self._src = g.add("buffer", video_size=f"{frame.width}x{frame.height}", pix_fmt=frame.format.name,
                          time_base=str(self.time_base), pixel_aspect=f"{sar.numerator}/{sar.denominator}",
                          colorspace=str(int(frame.colorspace or tags.SPC_UNSPECIFIED)),
                          range=str(int(frame.color_range or tags.RANGE_UNSPECIFIED)))
        bw = g.add("bwdif", f"mode=send_frame:parity={self.parity}:deint={self.deint}")
        self._sink = g.add("buffersink")
        self._src.link_to(bw)
        bw.link_to(self._sink)
        g.configure()
        self._graph = g
        self._key = (frame.format.name, frame.width, frame.height)
        return done

    def push(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
        """Filter one decoded frame; returns the frames that came out (none for the first)."""
        out: list[av.VideoFrame] = []
        if (frame.format.name, frame.width, frame.height) != self._key:
            out = self._build(frame)
        assert self._src is not None
        self._src.push(frame)
        return out + self._drain()

    def flush(self) -> list[av.VideoFrame]:
        """End of input: the frames still in the filter."""
        if self._src is None:
            return []
        self._src.push(None)
        out = self._drain()
        self._graph = self._src = self._sink = None
        self._key = None
        return out

    def _drain(self) -> list[av.VideoFrame]:
        assert self._sink is not None
        out = []
        while True:
            try:
                f = self._sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return out
            out.append(self._retime(f))

    def _retime(self, f: av.VideoFrame) -> av.VideoFrame:
        """The filter's doubled time base back to the input's (exact: send_frame keeps the timestamps)."""
        tb = f.time_base
        if tb is not None and Fraction(tb) != self.time_base:
            if f.pts is not None:
                f.pts = round(f.pts * Fraction(tb) / self.time_base)
            if f.duration:
                f.duration = round(f.duration * Fraction(tb) / self.time_base)
            f.time_base = self.time_base
        self.frames += 1
        return f
