"""Inspect an input video: the one prober, for ``convert``, ``eval`` and the training data.

:func:`probe` opens the file with PyAV, picks the first real video stream
(cover art is ignored), decodes its first frame and checks the colour tags
of both the stream (container) and the frame (bitstream), since the two can
disagree (an HDR10 bitstream in a container tagged SDR is refused too).

Refused, each with a one-line :class:`~sdr2hdr.errors.InputError` naming the file:

* a missing path, a directory, a file FFmpeg cannot open (text renamed .mp4,
  an MP4 cut before its index), a file without a video stream (audio only),
  a video stream without a single decodable frame, a Y'CbCr matrix the
  frames cannot be read with (YCgCo, ICtCp, BT.2020 constant-luminance);
* unless ``allow_hdr=True`` (``convert``'s policy; the training data and
  ``eval`` pass True and apply their own: HDR required, or PQ required),
  input that is already HDR: PQ (SMPTE ST 2084) or HLG (ARIB STD-B67)
  transfer, HDR static / dynamic metadata on the first frame, or BT.2020
  primaries / matrix with more than 8 bits (HDR10 / HLG10 without tags);
  and wide-gamut 8-bit BT.2020;
* with ``refuse_truncated=True``, a file whose container index shows it is
  cut short (:mod:`sdr2hdr.video.truncation`), before any frame is converted.

It also reports what the conversion must undo or keep: the display rotation
(a phone's 90 / 180 / 270 degree display-matrix tag; ``width`` / ``height``
are the *displayed* size, the frames are turned upright before the model),
whether the video is interlaced and is to be deinterlaced
(:mod:`sdr2hdr.video.deinterlace`), and the cover art (attached pictures)
and other attachments next to the audio and subtitle streams.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import av

from sdr2hdr.color import tags
from sdr2hdr.errors import InputError, Sdr2HdrError, one_line
from sdr2hdr.video import frames as fr
from sdr2hdr.video.deinterlace import MODES as DEINTERLACE_MODES
from sdr2hdr.video.deinterlace import field_order
from sdr2hdr.video.truncation import truncated_by_index, truncated_error

_HDR_SIDE_DATA = ("MASTERING_DISPLAY_METADATA", "CONTENT_LIGHT_LEVEL", "DOVI", "DYNAMIC_HDR")


@dataclass
class VideoInfo:
    """What the converter needs to know about an input file."""

    path: Path
    container: str
    codec: str
    stream_index: int
    width: int  # displayed size: the coded size turned by ``rotation``
    height: int
    fmt: fr.SourceFormat
    time_base: Fraction
    rate: Fraction | None  # average frame rate, None if unknown
    start_time: float  # seconds
    frames_declared: int | None  # from the container index (mp4/mov), else None
    duration_declared: float | None  # video stream duration in seconds from the container, if any
    duration_is_stream: bool  # True if duration_declared is the video stream's own, not the file's
    transfer: str  # colour tags, FFmpeg names (sdr2hdr.color.tags): "bt709", "smpte2084", "arib-std-b67", "unknown", ...
    primaries: str  # "bt709", "bt2020", "smpte432", "unknown", ...
    sample_aspect_ratio: Fraction | None = None  # non-square pixels (anamorphic SD), None if square/unknown
    audio: list[tuple[int, str]] = field(default_factory=list)  # (stream index, codec)
    subtitles: list[tuple[int, str]] = field(default_factory=list)
    attached_pics: list[tuple[int, str]] = field(default_factory=list)  # cover art: (stream index, codec)
    attachments: list[tuple[int, str]] = field(default_factory=list)  # other attachments (fonts...): (index, file name)
    coded_size: tuple[int, int] = (0, 0)  # (width, height) of the decoded pictures, before rotation
    rotation: int = 0  # display rotation, degrees counter-clockwise: 0, 90, 180 or 270
    rotation_tag: float = 0.0  # the display matrix's rotation as tagged (FFmpeg's sign: counter-clockwise)
    interlaced: str | None = None  # "tff" / "bff" (stream field order), "flagged" (frames only), None
    deinterlace: bool = False  # convert runs bwdif (--deinterlace, see sdr2hdr.video.deinterlace)
    deinterlace_only_flagged: bool = False  # bwdif deint=interlaced (auto mode, frames flagged)
    truncated_index: str | None = None  # why the container index says the file is cut short
    matrix: str = "unknown"  # the matrix tag, FFmpeg name ("bt709", "bt2020nc", "unknown"); fmt.matrix is the one used

    @property
    def is_hdr(self) -> bool:
        """Whether the transfer tag is an HDR one (PQ or HLG)."""
        return tags.is_hdr_transfer(self.transfer)

    @property
    def frames_estimate(self) -> int | None:
        if self.frames_declared:
            return self.frames_declared
        if self.duration_declared and self.rate:
            return max(1, round(self.duration_declared * float(self.rate)))
        return None

    @property
    def frame_duration(self) -> int:
        """Nominal frame duration in time-base units (at least 1)."""
        if self.rate and self.rate > 0:
            return max(1, round(1 / (self.rate * self.time_base)))
        return max(1, round(Fraction(1, 25) / self.time_base))

    def describe(self) -> str:
        rate = f"{float(self.rate):.3f} fps" if self.rate else "unknown rate"
        extra = f", interlaced {self.interlaced}" if self.interlaced else ""
        extra += f", display rotation {self.rotation}°" if self.rotation else ""
        return f"{self.codec} {self.fmt.describe()}, {rate}, transfer {self.transfer}{extra}"

    def rotation_note(self) -> str | None:
        """The summary line saying how the picture was turned (None when it was not)."""
        if self.rotation == 0:
            return None
        turn = {90: "90° counter-clockwise", 180: "180°", 270: "90° clockwise"}[self.rotation]
        return (f"rotated {turn} to play upright (the input's display-rotation tag); output "
                f"{self.width}x{self.height} x scale, without a rotation tag")


def _parse_hms(text: str) -> float | None:
    m = re.fullmatch(r"\s*(\d+):(\d+):(\d+(?:\.\d+)?)\s*", text or "")
    if not m:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def _video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    for s in container.streams.video:
        if s.disposition & av.stream.Disposition.attached_pic:
            continue
        return s
    return None


def open_input(path: Path) -> av.container.InputContainer:
    """``av.open`` with one-line errors."""
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    if path.is_dir():
        raise InputError(f"input is a directory, not a video file: {path}")
    if not os.access(path, os.R_OK):
        raise InputError(f"input file is not readable: {path}")
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        reason = one_line(getattr(exc, "strerror", None) or exc)
        raise InputError(f"{path} is not a video file FFmpeg can read ({reason}); truncated or not a video?") from None


def probe(path: str | os.PathLike[str], *, deinterlace: str = "auto", refuse_truncated: bool = False,
          allow_hdr: bool = False) -> VideoInfo:
    """Inspect ``path`` and return its :class:`VideoInfo`, or raise :class:`InputError`.

    ``deinterlace``: auto | off | on (see :mod:`sdr2hdr.video.deinterlace`);
    ``refuse_truncated``: refuse a file its container index shows to be cut short;
    ``allow_hdr``: False refuses HDR and BT.2020 input (``convert``), True reports
    it (:attr:`VideoInfo.is_hdr`) for the caller's own policy.
    """
    path = Path(path)
    if deinterlace not in DEINTERLACE_MODES:
        raise Sdr2HdrError(f"deinterlace must be one of {', '.join(DEINTERLACE_MODES)}, got {deinterlace!r}")
    container = open_input(path)
    try:
        stream = _video_stream(container)
        if stream is None:
            kinds = sorted({s.type for s in container.streams})
            raise InputError(f"{path} has no video stream (only: {', '.join(kinds) or 'nothing'})")
        cc = stream.codec_context
        codec = cc.codec.canonical_name if cc.codec else cc.name
        first = _first_frame(container, stream, path)
        fmt = _source_format(path, cc, first, codec, allow_hdr)
        tb = stream.time_base or Fraction(1, 90000)
        rate = stream.average_rate or stream.guessed_rate or None
        dur, dur_is_stream = _declared_duration(container, stream, Fraction(tb))
        start = float(stream.start_time * tb) if stream.start_time is not None else 0.0
        truncated = truncated_by_index(container, stream, path)
        if truncated and refuse_truncated:
            raise truncated_error(path, truncated)
        rotation, rotation_tag = _rotation(first)
        interlaced = field_order(cc.field_order) or ("flagged" if first.interlaced_frame else None)
        turned = rotation in (90, 270)
        return VideoInfo(
            path=path,
            container=container.format.name,
            codec=codec,
            stream_index=stream.index,
            width=first.height if turned else first.width,
            height=first.width if turned else first.height,
            fmt=replace(fmt, rotation=rotation),
            time_base=Fraction(tb),
            rate=Fraction(rate) if rate else None,
            start_time=start,
            frames_declared=stream.frames or None,
            duration_declared=dur,
            duration_is_stream=dur_is_stream,
            sample_aspect_ratio=_sar(first, cc),
            transfer=tags.tag_name(tags.TRC_NAMES, first.color_trc or cc.color_trc, str(first.color_trc)),
            primaries=tags.tag_name(tags.PRIMARIES_NAMES, first.color_primaries or cc.color_primaries, str(first.color_primaries)),
            matrix=_matrix_tag(first, cc),
            audio=[(s.index, s.codec_context.name) for s in container.streams.audio],
            subtitles=[(s.index, s.codec_context.name if s.codec_context else "?") for s in container.streams.subtitles],
            attached_pics=[(s.index, s.codec_context.name if s.codec_context else "?") for s in container.streams
                           if s.type == "video" and s.disposition & av.stream.Disposition.attached_pic],
            attachments=[(s.index, s.metadata.get("filename", "?")) for s in container.streams if s.type == "attachment"],
            coded_size=(first.width, first.height),
            rotation=rotation,
            rotation_tag=rotation_tag,
            interlaced=interlaced,
            deinterlace=deinterlace == "on" or (deinterlace == "auto" and interlaced is not None),
            deinterlace_only_flagged=deinterlace == "auto" and bool(first.interlaced_frame),
            truncated_index=truncated,
        )
    finally:
        container.close()


def _first_frame(container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: Path) -> av.VideoFrame:
    """The stream's first decoded frame, or a one-line InputError."""
    try:
        for first in container.decode(stream):
            return first
    except av.error.FFmpegError as exc:
        raise InputError(f"{path}: the first video frame cannot be decoded ({one_line(exc)})") from None
    raise InputError(f"{path}: its video stream has no decodable frame (empty or damaged)")


def _source_format(path: Path, cc: av.video.codeccontext.VideoCodecContext, first: av.VideoFrame, codec: str,
                   allow_hdr: bool) -> fr.SourceFormat:
    """How the frames' samples are read; HDR / BT.2020 input refused unless ``allow_hdr``."""
    if not allow_hdr:
        _refuse_hdr(path, cc, first)
    try:
        fmt = fr.source_format(first, codec_name=codec, fallback_colorspace=cc.colorspace or tags.SPC_UNSPECIFIED,
                               fallback_range=cc.color_range or tags.RANGE_UNSPECIFIED)
    except ValueError as exc:
        want = "BT.709, BT.601 or BT.2020 (non-constant luminance)" if allow_hdr else "SDR video in BT.709 or BT.601"
        raise InputError(f"{path}: {exc}; give {want} Y'CbCr or RGB") from None
    if fmt.kind == "yuv" and fmt.matrix == "bt2020" and not allow_hdr:
        raise InputError(f"{path} is wide-gamut BT.2020 video; sdr2hdr converts SDR BT.709 / BT.601 input only")
    return fmt


def _declared_duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                       tb: Fraction) -> tuple[float | None, bool]:
    """(the video's duration in seconds as the container declares it or None, whether it is the stream's own)."""
    if stream.duration:
        return float(stream.duration * tb), True
    hms = _parse_hms(stream.metadata.get("DURATION", ""))
    if hms is not None:
        return hms, True
    if container.duration and container.format.name not in ("mpegts", "mpeg", "h264", "hevc"):
        return container.duration / 1e6, False
    return None, False


def _matrix_tag(frame: av.VideoFrame, cc: av.video.codeccontext.VideoCodecContext) -> str:
    """The frame's matrix tag as an FFmpeg name, the stream's when the frame's is unspecified."""
    cs = frame.colorspace if frame.colorspace not in (tags.SPC_UNSPECIFIED, None) else cc.colorspace
    return tags.tag_name(tags.MATRIX_NAMES, tags.SPC_UNSPECIFIED if cs is None else cs)


def _rotation(frame: av.VideoFrame) -> tuple[int, float]:
    """(display rotation in whole quarter turns counter-clockwise as degrees 0..270, the tagged angle).

    An angle that is not a multiple of 90 degrees (to 1 degree) is not applied (0).
    """
    try:
        tag = float(frame.rotation or 0.0)
    except (AttributeError, TypeError, ValueError):
        return 0, 0.0
    quarter = round(tag / 90.0)
    if abs(tag - 90.0 * quarter) > 1.0:
        return 0, tag
    return (quarter % 4) * 90, tag


def _sar(frame: av.VideoFrame, cc: av.video.codeccontext.VideoCodecContext) -> Fraction | None:
    sar = getattr(frame, "sample_aspect_ratio", None) or cc.sample_aspect_ratio
    if not sar or sar.numerator <= 0 or sar == 1:
        return None
    return Fraction(sar)


def _refuse_hdr(path: Path, cc: av.video.codeccontext.VideoCodecContext, frame: av.VideoFrame) -> None:
    for trc in (frame.color_trc, cc.color_trc):
        if tags.is_hdr_transfer(trc):
            what = tags.describe_hdr_transfer(trc)
            raise InputError(f"{path} is already HDR ({what} transfer); sdr2hdr converts SDR input only")
    for sd in _side_data_types(frame):
        if any(k in sd for k in _HDR_SIDE_DATA):
            raise InputError(f"{path} is already HDR (it carries {sd.lower().replace('_', ' ')} metadata); sdr2hdr converts SDR input only")
    bits = max(c.bits for c in frame.format.components)
    wide = tags.PRI_BT2020 in (frame.color_primaries, cc.color_primaries) \
        or tags.SPC_BT2020_NCL in (frame.colorspace, cc.colorspace) or tags.SPC_BT2020_CL in (frame.colorspace, cc.colorspace)
    if wide and bits > 8:
        raise InputError(f"{path} is {bits}-bit BT.2020 video, i.e. already HDR / wide colour; sdr2hdr converts SDR input only")


def _side_data_types(frame: av.VideoFrame) -> list[str]:
    out = []
    try:
        for sd in frame.side_data:
            t = getattr(sd, "type", sd)
            out.append(str(getattr(t, "name", t)).upper())
    except (TypeError, AttributeError):  # API differences between PyAV versions: best effort
        pass
    return out
