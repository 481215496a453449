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
rotation, which :func:`~sdr2hdr.video.frames.model_input` applies. Interlaced
input is deinterlaced when the probe decided so (``info.deinterlace``, see
:mod:`sdr2hdr.video.deinterlace`: one frame out per frame in, timestamps kept);
:attr:`FrameReader.warnings` says what was done, or that interlaced frames
were treated as progressive.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import av

from sdr2hdr.color import tags
from sdr2hdr.errors import InputError
from sdr2hdr.video import frames as fr
from sdr2hdr.video.deinterlace import Deinterlacer
from sdr2hdr.video.probe import VideoInfo, open_input
from sdr2hdr.video.truncation import truncated_error


class FrameReader:
    """Iterate over the decoded frames of ``info``'s video stream (single use)."""

    def __init__(self, info: VideoInfo, *, allow_truncated: bool = False, threads: int = 0) -> None:
        self.info = info
        self.allow_truncated = allow_truncated
        self.threads = threads
        self.frames_read = 0
        self.end_time = 0.0  # seconds from the stream start to the end of the last frame
        self.retimed = 0
        self.warnings: list[str] = []
        self.truncated: str | None = None
        self.interlaced_frames = 0  # frames flagged interlaced that were not deinterlaced
        self.deinterlaced = 0
        if info.truncated_index and not allow_truncated:
            raise truncated_error(info.path, info.truncated_index)

    def _decoded(self, container: av.container.InputContainer, stream: av.stream.Stream) -> Iterator[av.VideoFrame]:
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

    def __iter__(self) -> Iterator[fr.PlanarFrame]:
        info = self.info
        container = open_input(info.path)
        try:
            stream = container.streams[info.stream_index]
            stream.thread_type = "AUTO"
            if self.threads:
                stream.codec_context.thread_count = self.threads
            codec = stream.codec_context.codec.canonical_name if stream.codec_context.codec else stream.codec_context.name
            fallback_cs = stream.codec_context.colorspace or tags.SPC_UNSPECIFIED
            fallback_rng = stream.codec_context.color_range or tags.RANGE_UNSPECIFIED
            nominal = info.frame_duration
            pending: fr.PlanarFrame | None = None
            pending_dur = 0
            fmt_key: tuple[object, ...] | None = None
            fmt = info.fmt
            error: str | None = None
            try:
                for frame in self._decoded(container, stream):
                    key = (frame.format.name, frame.width, frame.height, frame.colorspace, frame.color_range)
                    if key != fmt_key:
                        try:
                            new = fr.source_format(frame, codec_name=codec, fallback_colorspace=fallback_cs,
                                                   fallback_range=fallback_rng)
                        except ValueError as exc:
                            raise InputError(f"{info.path}: frame {self.frames_read}: {exc}") from None
                        if (new.width, new.height) != info.coded_size:
                            raise InputError(
                                f"{info.path}: the picture size changes mid-stream at frame {self.frames_read} "
                                f"({info.coded_size[0]}x{info.coded_size[1]} -> {new.width}x{new.height}); not supported"
                            )
                        fmt, fmt_key = replace(new, rotation=info.rotation), key
                    pts = frame.pts
                    if pending is not None:
                        if pts is None or pts <= pending.pts:
                            pts = pending.pts + (pending_dur or nominal)
                            self.retimed += 1
                        pending.duration = pts - pending.pts
                        yield pending
                    elif pts is None:
                        pts = 0
                        self.retimed += 1
                    pending = fr.frame_to_planar(frame, fmt, pts=pts)
                    pending.index = self.frames_read
                    pending_dur = frame.duration or 0
                    self.frames_read += 1
            except av.error.FFmpegError as exc:
                error = " ".join(str(exc).split())
            if pending is not None:
                pending.duration = pending_dur if pending_dur > 0 else nominal
                self.end_time = float((pending.pts + pending.duration) * info.time_base) - info.start_time
                if error is None:
                    self._check_truncation()
                else:
                    self.truncated = f"decoding stopped after {self.frames_read} frames ({self.end_time:.2f} s): {error}"
                self._finish()
                yield pending
            else:
                raise InputError(f"{info.path}: no video frame could be decoded" + (f" ({error})" if error else ""))
        finally:
            container.close()
        if self.retimed:
            self.warnings.append(f"{self.retimed} frame(s) had a missing or non-increasing timestamp and were re-timed")
        self._picture_notes()

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
