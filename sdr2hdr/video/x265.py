"""Ask libx265 itself whether ``--x265-params`` are valid, before any output file exists.

There is no hand-written list of x265's keys here: :func:`check_encoder`
opens a real libx265 encoder (through PyAV's FFmpeg, the one that will
encode) with the exact settings of the run (size, pixel format, ``crf``,
``preset`` and the full ``x265-params`` string) and encodes nothing. Three
ways x265 can refuse are turned into one-line errors:

* an unknown key: FFmpeg's libx265 wrapper only *logs* "Unknown option: K"
  (and opens the encoder anyway), so FFmpeg's log is captured during the open;
* a bad value: likewise logged, "Invalid value for K: V";
* a combination x265 rejects (``bframes=-5``, ``ctu=7``): the open fails and
  x265 prints its reason on file descriptor 2, which is captured for the
  message (x265 writes there directly, not through FFmpeg's log).

The check takes about 20 ms, also at 3840x2160.
"""

from __future__ import annotations

import gc
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import IO

import av
import av.logging

from sdr2hdr.errors import one_line
from sdr2hdr.video.frames import HDR10_PIX_FMT

_UNKNOWN = re.compile(r"Unknown option: (.*?)\.?$")
_INVALID = re.compile(r"Invalid value for (.*?): (.*?)\.?$")


@contextmanager
def _ffmpeg_log() -> Iterator[list[tuple[int, str, str]]]:
    """Capture FFmpeg's warnings and errors logged in this thread (PyAV leaves FFmpeg's log off by default)."""
    old = av.logging.get_level()
    av.logging.set_level(av.logging.WARNING)
    try:
        with av.logging.Capture() as logs:
            yield logs
    finally:
        av.logging.set_level(old)


@contextmanager
def _fd2_captured() -> Iterator[IO[bytes]]:
    """Send file descriptor 2 (where x265 prints its errors) to a temporary file for the duration."""
    with tempfile.TemporaryFile() as f:
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError, OSError):
            pass
        saved = os.dup(2)
        try:
            os.dup2(f.fileno(), 2)
            yield f
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _x265_errors(f: IO[bytes]) -> list[str]:
    f.seek(0)
    lines = f.read().decode("utf-8", "replace").splitlines()
    return [line.split("]:", 1)[-1].strip() for line in lines if "[error]" in line]


def check_encoder(params: str, *, width: int, height: int, crf: float, preset: str) -> None:
    """Open (and close) a libx265 encoder with these settings; raise ``ValueError`` (one line) if x265 refuses.

    ``params`` is the complete ``x265-params`` string the encoder will get.
    """
    if "libx265" not in av.codecs_available:
        raise ValueError("this FFmpeg build (PyAV) has no libx265 encoder; install a PyAV wheel with libx265")
    failure: av.error.FFmpegError | None = None
    with _fd2_captured() as err, _ffmpeg_log() as logs:
        cc = av.CodecContext.create("libx265", "w")
        cc.width, cc.height, cc.pix_fmt = width, height, HDR10_PIX_FMT
        cc.time_base = Fraction(1, 25)
        cc.framerate = Fraction(25)
        # log-level last: errors only, whatever the user asked for, so nothing else reaches the capture
        cc.options = {"crf": f"{crf:g}", "preset": preset, "x265-params": f"{params.strip(':')}:log-level=error"}
        try:
            cc.open()
        except av.error.FFmpegError as exc:
            failure = exc
        del cc
        gc.collect()  # closes the encoder while fd 2 is still captured
        reasons = _x265_errors(err)
    for _, _, message in logs:
        text = message.strip()
        if m := _UNKNOWN.match(text):
            raise ValueError(f"--x265-params: x265 has no option {m.group(1)!r}")
        if m := _INVALID.match(text):
            raise ValueError(f"--x265-params: x265 refuses {m.group(1)}={m.group(2)} (invalid value)")
    if failure is not None:
        reasons = reasons or [one_line(failure)]
        raise ValueError(f"--x265-params: libx265 cannot start with these settings ({'; '.join(reasons)})")
