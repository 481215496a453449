"""Decode a probed input's video stream into :class:`~sdr2hdr.video.frames.PlanarFrame` s.

Timestamps are kept exactly: every frame carries the decoder's presentation
timestamp in the input stream's own time base, and its duration is the
distance to the next frame's timestamp (so variable frame rate survives);
the last frame keeps the duration the container gives it (or the nominal
frame duration). A frame without a timestamp, or one that does not
increase, gets ``previous + nominal duration`` and a warning.

Truncated / damaged input
-------------------------
The input counts as truncated when decoding raises, or when fewer frames
decode than the container declares (MP4/MOV sample tables, minus a
tolerance of 2 frames / 1 %), or when the decoded frames end clearly before
the declared video duration (Matroska/WebM track duration: by more than
3 frames or 0.25 s; a file-level duration: by more than 1 s). MP4/MOV files
cut before their index cannot be opened at all (the probe refuses them).

By default a truncated input is **refused** (:class:`~sdr2hdr.errors.InputError`,
nothing written) once that is known: before the first frame when the
container index shows it (a cut fast-start MP4 or Matroska file,
:mod:`sdr2hdr.video.truncation`; ``convert`` refuses those in its probe),
else at the end of the stream; with ``allow_truncated=True`` what decodes is
converted and :attr:`FrameReader.warnings` says what was missing.

Rotation and interlacing
------------------------
Frames keep their coded size here; their format carries the display
rotation, which :func:`~sdr2hdr.inference.model_io.model_input` applies. Interlaced
input is deinterlaced when the probe decided so (``info.deinterlace``, see
:mod:`sdr2hdr.video.deinterlace`: one frame out per frame in, timestamps kept);
:attr:`FrameReader.warnings` says what was done, or that interlaced frames
were treated as progressive.

Selection and plane layout
--------------------------
``select`` (anything with ``i in select`` and ``select.done(i)``, e.g.
:class:`~sdr2hdr.evaluate.FrameSelection`) picks which decoded frames are
copied out and handed on (0-based decode order; the others are decoded, not
copied); decoding stops once ``select.done(i)``, and then the truncation
checks are skipped. ``yuv420_bits`` (8 or 10) hands every frame on as 4:2:0
Y'CbCr planes of that depth (swscale converts other layouts and depths,
``yuvj420p`` is kept with its full range), as the training data and ``eval``'s
HDR10 reference hold them; without it frames keep the source's layout
(``convert``). ``span=(start, end)`` (stream time base) decodes one keyframe-aligned
segment: it seeks to ``start``, drops leading pictures before it, and stops after the frame at
``end`` (:mod:`sdr2hdr.segments`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Protocol

import av

from sdr2hdr.color import tags
from sdr2hdr.errors import InputError
from sdr2hdr.video import frames as fr
from sdr2hdr.video.deinterlace import Deinterlacer
from sdr2hdr.video.probe import VideoInfo, open_input
from sdr2hdr.video.truncation import truncated_error


class FramePick(Protocol):
    """Which frames to hand on: ``i in pick`` (frame ``i``, 0-based decode order) and ``pick.done(i)``
    (no frame after ``i`` is wanted)."""

    def __contains__(self, i: int) -> bool: ...

    def done(self, i: int) -> bool: ...


def yuv420_format(fmt: fr.SourceFormat, bits: int) -> fr.SourceFormat:
    """``fmt`` as 4:2:0 Y'CbCr planes of ``bits`` (8 or 10); unchanged when it already is (``yuvj420p`` included)."""
    if bits not in (8, 10):
        raise ValueError(f"yuv420_bits must be 8 or 10, got {bits}")
    if fmt.kind == "yuv" and (fmt.sub_x, fmt.sub_y) == (2, 2) and fmt.bits == bits:
        return fmt
    return replace(fmt, kind="yuv", bits=bits, sub_x=2, sub_y=2, pix_fmt="yuv420p10le" if bits > 8 else "yuv420p",
                   full_range=fmt.full_range and fmt.kind == "yuv")


class FrameReader:
    """Iterate over the decoded frames of ``info``'s video stream (single use)."""

    def __init__(self, info: VideoInfo, *, allow_truncated: bool = False, threads: int = 0,
                 select: FramePick | None = None, yuv420_bits: int | None = None,
                 span: tuple[int | None, int | None] = (None, None)) -> None:
        self.info = info
        self.span = span  # (start, end) pts in the stream's time base: seek to start's keyframe, stop after end
        self.allow_truncated = allow_truncated
        self.threads = threads
        self.select = select
        self.yuv420_bits = yuv420_bits
        self.frames_read = 0  # frames decoded (selected or not)
        self.end_time = 0.0  # seconds from the stream start to the end of the last frame
        self.retimed = 0
        self.stopped = False  # decoding stopped at select.done(): the stream was not read to its end
        self.warnings: list[str] = []
        self.truncated: str | None = None
        self.interlaced_frames = 0  # frames flagged interlaced that were not deinterlaced
        self.deinterlaced = 0
        self._codec = ""
        self._fallback = (tags.SPC_UNSPECIFIED, tags.RANGE_UNSPECIFIED)
        self._fmt_key: tuple[object, ...] | None = None
        self._fmt = info.fmt
        if info.truncated_index and not allow_truncated:
            raise truncated_error(info.path, info.truncated_index)

    def _decoded(self, container: av.container.InputContainer, stream: av.stream.Stream) -> Iterator[av.VideoFrame]:
        """The decoded frames of ``span``: seek to ``start`` (a keyframe's pts), skip what lies before it
        (leading pictures), stop after the frame at ``end`` (the next span's first frame, read for its pts)."""
        start, end = self.span
        if start is not None:
            container.seek(start, stream=stream, backward=True, any_frame=False)
        for frame in self._all_decoded(container, stream):
            if start is not None and frame.pts is not None and frame.pts < start:
                continue
            yield frame
            if end is not None and frame.pts is not None and frame.pts >= end:
                return

    def _all_decoded(self, container: av.container.InputContainer, stream: av.stream.Stream) -> Iterator[av.VideoFrame]:
        """The decoded frames, through bwdif when deinterlacing (flushed even when decoding fails)."""
        if not self.info.deinterlace:
            for frame in container.decode(stream):
                self.interlaced_frames += bool(frame.interlaced_frame)
                yield frame
            return
        parity = self.info.interlaced if self.info.interlaced in ("tff", "bff") else "auto"
        deint = Deinterlacer(self.info.time_base, parity=parity, only_flagged=self.info.deinterlace_only_flagged)
        failure: av.error.FFmpegError | None = None
        try:
            for frame in container.decode(stream):
                yield from deint.push(frame)
        except av.error.FFmpegError as exc:
            failure = exc
        yield from deint.flush()
        self.deinterlaced = deint.frames
        if failure is not None:
            raise failure

    def _format(self, frame: av.VideoFrame) -> fr.SourceFormat:
        """How ``frame``'s samples are read (recomputed when its format tags change; the size may not)."""
        info = self.info
        key = (frame.format.name, frame.width, frame.height, frame.colorspace, frame.color_range)
        if key == self._fmt_key:
            return self._fmt
        try:
            new = fr.source_format(frame, codec_name=self._codec, fallback_colorspace=self._fallback[0],
                                   fallback_range=self._fallback[1])
        except ValueError as exc:
            raise InputError(f"{info.path}: frame {self.frames_read}: {exc}") from None
        if (new.width, new.height) != info.coded_size:
            raise InputError(
                f"{info.path}: the picture size changes mid-stream at frame {self.frames_read} "
                f"({info.coded_size[0]}x{info.coded_size[1]} -> {new.width}x{new.height}); not supported"
            )
        new = replace(new, rotation=info.rotation)
        self._fmt = yuv420_format(new, self.yuv420_bits) if self.yuv420_bits else new
        self._fmt_key = key
        return self._fmt

    def __iter__(self) -> Iterator[fr.PlanarFrame]:
        info = self.info
        container = open_input(info.path)
        try:
            stream = container.streams[info.stream_index]
            stream.thread_type = "AUTO"
            cc = stream.codec_context
            if self.threads:
                cc.thread_count = self.threads
            self._codec = cc.codec.canonical_name if cc.codec else cc.name
            self._fallback = (cc.colorspace or tags.SPC_UNSPECIFIED, cc.color_range or tags.RANGE_UNSPECIFIED)
            yield from self._frames(container, stream)
        finally:
            container.close()
        if self.retimed:
            self.warnings.append(f"{self.retimed} frame(s) had a missing or non-increasing timestamp and were re-timed")
        self._picture_notes()

    def _frames(self, container: av.container.InputContainer, stream: av.stream.Stream) -> Iterator[fr.PlanarFrame]:
        """The selected frames with exact timestamps; each is handed on once the next one's timestamp is known."""
        info, select, nominal = self.info, self.select, self.info.frame_duration
        pending: fr.PlanarFrame | None = None  # the last selected frame, waiting for its duration
        last_pts, last_dur = 0, 0  # the last decoded frame's timestamp and container duration
        error: str | None = None
        try:
            for i, frame in enumerate(self._decoded(container, stream)):
                fmt = self._format(frame)
                pts = frame.pts
                if i > 0 and (pts is None or pts <= last_pts):
                    pts = last_pts + (last_dur or nominal)
                    self.retimed += 1
                elif pts is None:
                    pts = 0
                    self.retimed += 1
                if pending is not None:
                    pending.duration = pts - pending.pts
                    yield pending
                    pending = None
                last_pts, last_dur = pts, frame.duration or 0
                self.frames_read += 1
                if select is None or i in select:
                    pending = fr.frame_to_planar(frame, fmt, pts=pts)
                    pending.index = i
                if select is not None and select.done(i):
                    self.stopped = True
                    break
        except av.error.FFmpegError as exc:
            error = " ".join(str(exc).split())
        if not self.frames_read:
            raise InputError(f"{info.path}: no video frame could be decoded" + (f" ({error})" if error else ""))
        end = last_pts + (last_dur if last_dur > 0 else nominal)
        self.end_time = float(end * info.time_base) - info.start_time
        if not self.stopped:
            if error is None:
                self._check_truncation()
            else:
                self.truncated = f"decoding stopped after {self.frames_read} frames ({self.end_time:.2f} s): {error}"
            self._finish()
        if pending is not None:
            pending.duration = end - pending.pts
            yield pending

    def _picture_notes(self) -> None:
        """Warnings saying how the picture was turned or deinterlaced, or that interlacing was ignored."""
        info = self.info
        note = info.rotation_note()
        if note:
            self.warnings.append(note)
        elif info.rotation_tag:
            self.warnings.append(f"display rotation {info.rotation_tag:g}° is not a multiple of 90°; not applied")
        order = f" ({info.interlaced})" if info.interlaced in ("tff", "bff") else ""
        if info.deinterlace:
            what = "interlaced" + order if info.interlaced else "not flagged interlaced; --deinterlace on"
            self.warnings.append(f"deinterlaced with bwdif (send_frame: one frame per input frame, timestamps "
                                 f"kept): {self.deinterlaced} frames; input {what}")
        elif info.interlaced or self.interlaced_frames:
            flagged = f"{self.interlaced_frames} of {self.frames_read} frames flagged interlaced" \
                if self.interlaced_frames else "field order" + order
            self.warnings.append(f"the input is interlaced ({flagged}) and was treated as progressive; "
                                 "--deinterlace auto or on removes the combing")

    def _check_truncation(self) -> None:
        info, n = self.info, self.frames_read
        nominal_s = float(info.frame_duration * info.time_base)
        if info.frames_declared and n + max(2, info.frames_declared // 100) < info.frames_declared:
            self.truncated = f"only {n} of the {info.frames_declared} frames its index declares decode ({self.end_time:.2f} s)"
        elif info.duration_declared:
            tol = max(0.25, 3 * nominal_s) if info.duration_is_stream else max(1.0, 3 * nominal_s)
            if self.end_time < info.duration_declared - tol:
                self.truncated = (
                    f"its frames end at {self.end_time:.2f} s of the {info.duration_declared:.2f} s it declares "
                    f"({n} frames decoded)"
                )

    def _finish(self) -> None:
        """Called before the last frame is handed out, so a refusal happens before anything is finalised."""
        if self.truncated is None:
            return
        if not self.allow_truncated:
            raise truncated_error(self.info.path, self.truncated)
        self.warnings.append(f"input truncated or damaged, converted what decodes: {self.truncated}")
