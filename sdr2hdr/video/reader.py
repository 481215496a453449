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
nothing written) once that is known, which for a cut Matroska or fast-start
MP4 file is at its end; with ``allow_truncated=True`` what decodes is
converted and :attr:`FrameReader.warnings` says what was missing.
"""

from __future__ import annotations

from collections.abc import Iterator

import av

from sdr2hdr.errors import InputError
from sdr2hdr.video import frames as fr
from sdr2hdr.video.probe import VideoInfo, open_input


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

    def __iter__(self) -> Iterator[fr.PlanarFrame]:
        info = self.info
        container = open_input(info.path)
        try:
            stream = container.streams[info.stream_index]
            stream.thread_type = "AUTO"
            if self.threads:
                stream.codec_context.thread_count = self.threads
            codec = stream.codec_context.codec.canonical_name if stream.codec_context.codec else stream.codec_context.name
            fallback_cs = stream.codec_context.colorspace or fr.SPC_UNSPECIFIED
            fallback_rng = stream.codec_context.color_range or fr.RANGE_UNSPECIFIED
            nominal = info.frame_duration
            pending: fr.PlanarFrame | None = None
            pending_dur = 0
            fmt_key: tuple[object, ...] | None = None
            fmt = info.fmt
            error: str | None = None
            try:
                for frame in container.decode(stream):
                    key = (frame.format.name, frame.width, frame.height, frame.colorspace, frame.color_range)
                    if key != fmt_key:
                        try:
                            new = fr.source_format(frame, codec_name=codec, fallback_colorspace=fallback_cs,
                                                   fallback_range=fallback_rng)
                        except ValueError as exc:
                            raise InputError(f"{info.path}: frame {self.frames_read}: {exc}") from None
                        if (new.width, new.height) != (info.width, info.height):
                            raise InputError(
                                f"{info.path}: the picture size changes mid-stream at frame {self.frames_read} "
                                f"({info.width}x{info.height} -> {new.width}x{new.height}); not supported"
                            )
                        fmt, fmt_key = new, key
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
            raise InputError(
                f"{self.info.path} is truncated or damaged: {self.truncated}; nothing written "
                "(--allow-truncated converts what decodes)"
            )
        self.warnings.append(f"input truncated or damaged, converted what decodes: {self.truncated}")
