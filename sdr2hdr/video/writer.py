"""HDR10 encoding (HEVC Main 10 via libx265) and muxing with copied audio / subtitles.

What is written
---------------
* HEVC Main 10, ``yuv420p10le``, limited range, "left" chroma siting
  (``chromaloc=0``), produced by :func:`sdr2hdr.video.hdr10.hdr10_420`.
* Colour description in the bitstream VUI *and* on the codec context (so
  the Matroska ``Colour`` element / MP4 ``colr`` box carry it) and on every
  frame: BT.2020 primaries, SMPTE ST 2084 transfer, BT.2020 NCL matrix.
* HDR10 static metadata as SEI messages repeated with every keyframe's
  parameter sets (``hdr10=1:repeat-headers=1``): SMPTE ST 2086 mastering
  display (:func:`master_display`) and the CTA-861.3 content light level
  (``max-cll``; ``0,0`` means unknown).
* In MP4/MOV the sample entry is ``hvc1`` (parameter sets out of band), as
  Apple players require; Matroska uses ``V_MPEGH/ISO/HEVC``.
* Video timestamps are the input's, in the input's time base, and each
  packet carries its frame's duration (variable frame rate is kept), within
  the output container's timestamp precision (Matroska: 1 ms). Nothing is
  shifted but a start offset of the whole input (MPEG-TS starts at about
  1.4 s), taken off every stream so the output starts at 0: in Matroska a
  copied AAC stream keeps its priming packet before zero
  (``avoid_negative_ts=disabled``); MP4/MOV express it with an edit list.
* MP4/MOV are written fast-start (``movflags=+faststart``: the index before
  the media data, so players can start before the whole file is there).
* The title and other container tags, chapters, stream flags (default,
  forced, ...) and cover art are kept (:mod:`sdr2hdr.video.metadata`).
* Audio and subtitle packets are copied unchanged from the input and
  interleaved by time; a stream whose codec the output container cannot
  hold (e.g. SubRip in MP4, mov_text in Matroska) is left out and reported.
* Packet mode (``template=``, the segment joiner of :mod:`sdr2hdr.segments.join`):
  the video is already-encoded HEVC packets fed to :meth:`HDR10Writer.write_packet`,
  muxed with everything above exactly as encoded frames are; ``extras=False``
  writes a bare segment file (no copies, tags, chapters or start-offset shift).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from sdr2hdr.errors import OutputError, one_line
from sdr2hdr.video import frames as fr
from sdr2hdr.video import metadata
from sdr2hdr.video.probe import VideoInfo

#: Containers we write, by file suffix.
CONTAINERS = {".mkv": "matroska", ".mp4": "mp4", ".mov": "mov"}
def output_format(path: Path) -> str:
    fmt = CONTAINERS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(f"unsupported output type {path.suffix or '(none)'!r} for {path}: use .mkv, .mp4 or .mov")
    return fmt


def _failed(doing: str, path: Path, exc: av.error.FFmpegError) -> Exception:
    """A one-line :class:`OutputError`; a full disk stays the OSError it is, for the caller to report."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return exc
    return OutputError(f"{doing} {path} failed: {one_line(exc)}")


@dataclass
class CopyReport:
    copied: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


class HDR10Writer:
    """Encode HDR10 frames into ``path`` (format from ``fmt``), copying ``info``'s audio / subtitles.

    Use :meth:`write` per frame (in presentation order), then :meth:`close`;
    :meth:`abort` on failure. Not thread-safe: use it from one thread.
    """

    def __init__(
        self,
        path: Path,
        *,
        fmt: str,
        info: VideoInfo,
        width: int,
        height: int,
        crf: float,
        preset: str,
        params: str,
        copy_audio: bool = True,
        copy_subtitles: bool = True,
        threads: int = 0,
        template: av.stream.Stream | None = None,
        extras: bool = True,
    ) -> None:
        """``template``: take the video from that stream's already-encoded packets (:meth:`write_packet`,
        the segment joiner) instead of encoding frames. ``extras=False``: no tags, chapters, cover art or
        start-offset shift (a segment file, whose packets the joiner shifts)."""
        if template is None and "libx265" not in av.codecs_available:
            raise OutputError("this FFmpeg build (PyAV) has no libx265 encoder; install a PyAV wheel with libx265")
        self.path = path
        self.info = info
        self.tb = info.time_base
        self.durations: dict[int, int] = {}
        self.frames_written = 0
        self.first_pts: int | None = None
        self.end_pts: int | None = None
        self.report = CopyReport()
        self._closed = False
        try:
            # Matroska: keep every timestamp as it is, even a copied AAC stream's priming packet
            # before 0 (FFmpeg's default would shift the whole file to make it non-negative).
            # MP4/MOV keep them exactly with edit lists by default.
            copts = {"avoid_negative_ts": "disabled"} if fmt == "matroska" else {}
            if fmt in ("mp4", "mov") and self.tb.numerator == 1 and self.tb.denominator < 2**31:
                # movie time scale = the video's, so the edit list / durations are exact (FFmpeg default: 1000)
                copts["movie_timescale"] = str(self.tb.denominator)
            if fmt in ("mp4", "mov"):
                copts["movflags"] = "+faststart"  # moov before mdat: plays while it downloads
            self.out = av.open(str(path), mode="w", format=fmt, container_options=copts)
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write {path}: {one_line(exc)}") from None
        try:
            rate = info.rate if info.rate and info.rate > 0 else Fraction(25)
            stream = self.out.add_stream("libx265", rate=rate) if template is None else \
                self.out.add_stream_from_template(template, opaque=True)
            cc = stream.codec_context
            if template is None:
                cc.width, cc.height = width, height
                cc.pix_fmt = fr.HDR10_PIX_FMT
                cc.time_base = self.tb
                cc.framerate = rate
            fr.tag_hdr10(cc)
            if info.sample_aspect_ratio:
                cc.sample_aspect_ratio = info.sample_aspect_ratio
            if threads:
                cc.thread_count = threads
            if template is None:
                cc.options = {"crf": f"{crf:g}", "preset": preset, "x265-params": params}
            stream.time_base = self.tb
            if fmt in ("mp4", "mov"):
                cc.codec_tag = "hvc1"
            self.stream = stream
            self._src: av.container.InputContainer | None = None
            self._copy_map: dict[int, av.stream.Stream] = {}
            self._pending: av.Packet | None = None
            self._pending_t: float | None = None
            self._packets = iter(())
            self._setup_copies(copy_audio, copy_subtitles)
            self._kept = metadata.keep(self.out, fmt, info, stream, self._copy_map) if extras else metadata.Kept()
            self.report.copied += self._kept.copied
            self.report.dropped += self._kept.dropped
            self._voff = round(self._kept.offset / self.tb)  # start offset in video ticks
        except BaseException:
            self.abort()
            raise

    # ----------------------------------------------------------------- copies

    def _setup_copies(self, copy_audio: bool, copy_subtitles: bool) -> None:
        wanted = ([i for i, _ in self.info.audio] if copy_audio else []) + (
            [i for i, _ in self.info.subtitles] if copy_subtitles else []
        )
        if not wanted:
            return
        src = av.open(str(self.info.path), mode="r")
        self._src = src
        supported = self.out.supported_codecs
        for idx in wanted:
            s = src.streams[idx]
            codec = s.codec_context.codec.canonical_name if s.codec_context else "?"
            label = f"#{idx} {s.type} {codec}" + (f" ({s.language})" if s.language else "")
            if codec not in supported:
                self.report.dropped.append(f"{label}: not supported in {self.out.format.name}")
                continue
            try:
                o = self.out.add_stream_from_template(s)
            except (av.error.FFmpegError, ValueError) as exc:
                self.report.dropped.append(f"{label}: {one_line(exc)}")
                continue
            for k, v in s.metadata.items():
                if k.upper() not in ("DURATION", "ENCODER", "NUMBER_OF_FRAMES", "NUMBER_OF_BYTES", "_STATISTICS_TAGS",
                                     "_STATISTICS_WRITING_APP", "_STATISTICS_WRITING_DATE_UTC", "BPS", "HANDLER_NAME"):
                    o.metadata[k] = v
            if s.language:
                o.metadata["language"] = s.language
            self._copy_map[idx] = o
            self.report.copied.append(label)
        if not self._copy_map:
            src.close()
            self._src = None
            return
        self._packets = src.demux([src.streams[i] for i in self._copy_map])

    def _mux_copies_until(self, t: float | None) -> None:
        """Mux copied packets with time <= ``t`` seconds (all when None)."""
        if self._src is None:
            return
        while True:
            pkt = self._pending
            if pkt is None:
                try:
                    pkt = next(self._packets)
                except StopIteration:
                    self._finish_copies()
                    return
                except av.error.FFmpegError:  # damaged input: stop copying, the video decides what is an error
                    self._finish_copies()
                    return
                if pkt.size == 0:  # the flush packets demux() yields at the end
                    continue
                metadata.shift(pkt, self._kept.offset)
                ts = pkt.dts if pkt.dts is not None else pkt.pts
                pkt_t = float(ts * pkt.time_base) if ts is not None and pkt.time_base else None
                self._pending = pkt
                self._pending_t = pkt_t
            if t is not None and self._pending_t is not None and self._pending_t > t:
                return
            self._pending = None
            pkt.stream = self._copy_map[pkt.stream_index]
            self._mux(pkt)

    def _mux(self, pkt: av.Packet) -> None:
        """Mux one packet; a muxing failure (a full disk, most often) is a one-line error naming the file."""
        try:
            self.out.mux(pkt)
        except av.error.FFmpegError as exc:
            raise _failed("writing", self.path, exc) from None

    def _mux_covers(self) -> None:
        """The cover art packets (MP4), before the first other packet."""
        while self._kept.covers:
            stream, pkt = self._kept.covers.pop(0)
            pkt.stream = stream
            self._mux(pkt)

    def _finish_copies(self) -> None:
        if self._src is not None:
            self._src.close()
            self._src = None
        self._pending = None

    # ------------------------------------------------------------------ video

    def write(self, y: np.ndarray, cb: np.ndarray, cr: np.ndarray, *, pts: int, duration: int) -> None:
        """Encode one frame of 10-bit 4:2:0 planes with presentation time ``pts`` (input time base)."""
        pts -= self._voff
        frame = fr.hdr10_frame(y, cb, cr)
        frame.pts = pts
        frame.time_base = self.tb
        self.durations[pts] = duration
        try:
            packets = self.stream.encode(frame)
        except av.error.FFmpegError as exc:
            raise _failed("encoding", self.path, exc) from None
        for pkt in packets:
            self._mux_video(pkt)
        self.frames_written += 1
        self.first_pts = pts if self.first_pts is None else min(self.first_pts, pts)
        end = pts + max(duration, 0)
        self.end_pts = end if self.end_pts is None else max(self.end_pts, end)

    def write_packet(self, pkt: av.Packet) -> None:
        """Mux one already-encoded video packet (decode order; timestamps in ``pkt.time_base``, not yet
        shifted by the start offset), interleaved with the copied streams like an encoded one."""
        metadata.shift(pkt, self._kept.offset)
        tb = pkt.time_base or self.tb
        pkt.stream = self.stream
        pkt.time_base = tb
        if pkt.pts is not None:  # before muxing, which takes the packet's contents
            self.frames_written += 1
            start = round(Fraction(pkt.pts) * tb / self.tb)
            end = round(Fraction(pkt.pts + max(pkt.duration or 0, 0)) * tb / self.tb)
            self.first_pts = start if self.first_pts is None else min(self.first_pts, start)
            self.end_pts = end if self.end_pts is None else max(self.end_pts, end)
        self._mux_covers()
        ts = pkt.dts if pkt.dts is not None else pkt.pts
        if ts is not None:
            self._mux_copies_until(float(ts * tb))
        self._mux(pkt)

    @property
    def duration_seconds(self) -> float:
        """Presentation time covered by the frames written (first frame's start to last frame's end)."""
        if self.first_pts is None or self.end_pts is None:
            return 0.0
        return float((self.end_pts - self.first_pts) * self.tb)

    def _mux_video(self, pkt: av.Packet) -> None:
        if pkt.pts is not None:
            pkt.duration = self.durations.pop(pkt.pts, 0)
        ts = pkt.dts if pkt.dts is not None else pkt.pts
        self._mux_covers()
        if ts is not None:
            self._mux_copies_until(float(ts * self.tb))
        self._mux(pkt)

    def close(self) -> None:
        """Flush the encoder, the rest of the copied streams, and the container trailer."""
        if self._closed:
            return
        try:
            try:
                for pkt in self.stream.encode(None) if self.stream.codec_context.is_encoder else ():
                    self._mux_video(pkt)
                self._mux_copies_until(None)
            finally:
                self._close_all()  # writes the trailer: where a full disk usually shows
        except av.error.FFmpegError as exc:
            raise _failed("finishing", self.path, exc) from None

    def abort(self) -> None:
        """Close everything without caring about the result (the caller deletes the file)."""
        try:
            self._close_all()
        except Exception:  # noqa: BLE001 - best effort on an already failing path
            pass

    def _close_all(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._finish_copies()
        finally:
            if hasattr(self, "out"):
                self.out.close()

