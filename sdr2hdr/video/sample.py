"""A procedural SDR sample clip (``sdr2hdr sample``) and the SDR encoder the tests share.

The clip is generated entirely by this code (nothing from outside the
package): a sky gradient with a moving sun (a clipped highlight with a
glow), a shadow ramp, drifting 75 % colour bars, a zone plate with fine
detail, and bitmap text with a running time code, over a gentle camera pan.
It is BT.709 limited-range H.264 (``yuv420p``, High profile), tagged
bt709 / bt709 / bt709 on stream and frames, with an optional stereo AAC tone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from sdr2hdr import outfile
from sdr2hdr.color import tags
from sdr2hdr.errors import OutputError, one_line
from sdr2hdr.video import frames as fr

# 5x7 bitmap font, rows top to bottom, MSB = leftmost of 5 columns.
_FONT = {
    "S": [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E], "D": [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
    "R": [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11], "H": [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
    "2": [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], "0": [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
    "1": [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E], "3": [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
    "4": [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], "5": [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
    "6": [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], "7": [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
    "8": [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], "9": [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
    ":": [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00], " ": [0] * 7, ".": [0, 0, 0, 0, 0, 0x0C, 0x0C],
}


def _text_mask(text: str, height: int, width: int, x0: int, y0: int, px: int) -> torch.Tensor:
    """Boolean ``height x width`` mask of ``text`` drawn with ``px``-sized font pixels at (x0, y0)."""
    mask = torch.zeros(height, width, dtype=torch.bool)
    for i, ch in enumerate(text):
        rows = _FONT.get(ch, _FONT[" "])
        for r, bits in enumerate(rows):
            for c in range(5):
                if bits >> (4 - c) & 1:
                    ya, xa = y0 + r * px, x0 + (i * 6 + c) * px
                    if ya < height and xa < width:
                        mask[max(ya, 0) : ya + px, max(xa, 0) : xa + px] = True
    return mask


def render_frame(t: float, width: int, height: int) -> torch.Tensor:
    """The sample scene at time ``t`` seconds: non-linear BT.709 R'G'B' ``3 x H x W`` in [0, 1] (float64)."""
    h, w = height, width
    pan = 0.04 * math.sin(2 * math.pi * t / 6.0)
    yy = torch.linspace(0, 1, h, dtype=torch.float64).view(h, 1).expand(h, w)
    xx = (torch.linspace(0, 1, w, dtype=torch.float64) + pan).view(1, w).expand(h, w)
    # Sky: deep blue at the top to warm haze at the horizon (linear light, then BT.1886 inverse).
    sky_top = torch.tensor([0.02, 0.06, 0.25], dtype=torch.float64).view(3, 1, 1)
    sky_bot = torch.tensor([0.55, 0.40, 0.30], dtype=torch.float64).view(3, 1, 1)
    k = (yy / 0.6).clamp(0, 1)
    lin = sky_top * (1 - k) + sky_bot * k
    # Sun: a clipped disc with a broad glow, moving across the sky.
    sx, sy = 0.2 + 0.5 * ((t / 4.0) % 1.0), 0.18 + 0.05 * math.cos(t)
    d = torch.sqrt(((xx - sx) * w / h) ** 2 + (yy - sy) ** 2)
    lin = lin + torch.tensor([1.0, 0.9, 0.7], dtype=torch.float64).view(3, 1, 1) * (0.35 * torch.exp(-d / 0.08))
    lin = torch.where((d < 0.035).unsqueeze(0), torch.full_like(lin, 4.0), lin)
    # Ground: a dark shadow ramp (shadow detail) below the horizon.
    ground = (yy > 0.6).unsqueeze(0)
    g = 0.002 + 0.08 * ((xx - pan) % 1.0) * (1.0 - (yy - 0.6) / 0.4).clamp(0, 1)
    lin = torch.where(ground, torch.stack((g * 0.9, g, g * 0.8)), lin)
    rgb = lin.clamp(0, 1) ** (1 / 2.4)
    # 75 % colour bars, drifting, in a band across the middle.
    band = (yy > 0.45) & (yy < 0.6)
    bars = torch.tensor([[1, 1, 1], [1, 1, 0], [0, 1, 1], [0, 1, 0], [1, 0, 1], [1, 0, 0], [0, 0, 1]], dtype=torch.float64) * 0.75
    idx = (((xx + 0.1 * t) % 1.0) * 7).long().clamp(0, 6)
    rgb = torch.where(band.unsqueeze(0), bars[idx].permute(2, 0, 1), rgb)
    # Zone plate (fine, moving detail) in the lower right.
    zp = (xx > 0.62) & (xx < 0.95) & (yy > 0.66) & (yy < 0.95)
    r2 = ((xx - 0.78) * w) ** 2 + ((yy - 0.8) * h) ** 2
    zone = 0.5 + 0.4 * torch.cos(r2 * (0.02 + 0.002 * math.sin(t)))
    rgb = torch.where(zp.unsqueeze(0), zone.unsqueeze(0).expand(3, h, w), rgb)
    # Text: title and a running time code, white with a dark outline.
    px = max(1, h // 90)
    for text, y0 in (("SDR2HDR", int(0.68 * h)), (f"{int(t // 60):02d}:{t % 60:05.2f}", int(0.68 * h) + 10 * px)):
        x0 = int(0.06 * w + pan * w)
        m = _text_mask(text, h, w, x0, y0, px)
        outline = _text_mask(text, h, w, x0 + 1, y0 + 1, px) & ~m
        rgb = torch.where(outline.unsqueeze(0), torch.zeros_like(rgb), rgb)
        rgb = torch.where(m.unsqueeze(0), torch.full_like(rgb, 0.92), rgb)
    return rgb.clamp(0, 1)


def encode_sdr(
    path: str | Path,
    frames: Iterable[torch.Tensor],
    *,
    fps: float | Fraction = 24,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    matrix: str = "bt709",
    full_range: bool = False,
    tag: bool = True,
    options: dict[str, str] | None = None,
    audio_seconds: float | None = None,
    container_format: str | None = None,
) -> int:
    """Encode non-linear R'G'B' frames (``3 x H x W`` in [0, 1]) as an SDR video; return the frame count.

    ``pts`` (in ``time_base``, default ``1/fps``) gives variable frame timing.
    ``tag=False`` leaves matrix / range / primaries unspecified in the file.
    ``audio_seconds`` adds a 440 Hz stereo AAC (Opus for WebM) tone.
    """
    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001000)
    tb = time_base or (Fraction(1, 1000) if pts is not None else 1 / rate)
    try:
        out = av.open(str(path), mode="w", format=container_format)
    except (av.error.FFmpegError, OSError) as exc:
        raise OutputError(f"cannot write {path}: {one_line(exc)}") from None
    n = 0
    try:
        vs = None
        for i, rgb in enumerate(frames):
            frame = fr.sdr_frame(rgb, pix_fmt=pix_fmt, matrix=matrix, full_range=full_range)
            if vs is None:
                vs = out.add_stream(codec, rate=rate)
                cc = vs.codec_context
                cc.width, cc.height = frame.width, frame.height
                cc.pix_fmt = pix_fmt
                cc.time_base = tb
                vs.time_base = tb
                if tag:
                    cc.colorspace, cc.color_range = frame.colorspace, frame.color_range
                    cc.color_primaries, cc.color_trc = frame.color_primaries, frame.color_trc
                elif full_range:
                    cc.color_range = tags.RANGE_JPEG
                cc.options = dict(options or {})
                if audio_seconds:
                    acodec = "libopus" if path.suffix.lower() == ".webm" else "aac"
                    aus = out.add_stream(acodec, rate=48000)
                    aus.codec_context.layout = "stereo"
            if not tag:
                frame.colorspace, frame.color_primaries, frame.color_trc = (
                    tags.SPC_UNSPECIFIED, tags.PRI_UNSPECIFIED, tags.TRC_UNSPECIFIED)
                frame.color_range = tags.RANGE_JPEG if full_range else tags.RANGE_UNSPECIFIED
            frame.pts = pts[i] if pts is not None else i
            frame.time_base = tb
            for pkt in vs.encode(frame):
                out.mux(pkt)
            n += 1
        if vs is None:
            raise ValueError("no frames to encode")
        for pkt in vs.encode(None):
            out.mux(pkt)
        if audio_seconds:
            encode_tone(out, out.streams.audio[0], audio_seconds)
    finally:
        out.close()
    return n


def encode_tone(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float) -> None:
    """A 440 Hz stereo sine of ``seconds`` into the AAC ``stream`` of ``out`` (the sample clip's and the tests' audio)."""
    sr = 48000
    cc = stream.codec_context
    fs = cc.frame_size or 1024
    total = int(seconds * sr)
    for start in range(0, total, fs):
        n = min(fs, total - start)
        t = (np.arange(start, start + n) / sr).astype(np.float32)
        s = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack((s, s)), format="fltp", layout="stereo")
        frame.sample_rate = sr
        frame.pts = start
        frame.time_base = Fraction(1, sr)
        for pkt in stream.encode(frame):
            out.mux(pkt)
    for pkt in stream.encode(None):
        out.mux(pkt)


def write_sample(
    path: str | Path,
    *,
    seconds: float = 2.0,
    fps: float = 24.0,
    width: int = 320,
    height: int = 180,
    audio: bool = True,
    crf: int = 16,
    overwrite: bool = False,
) -> int:
    """Write the procedural sample clip (H.264 BT.709 limited yuv420p, .mp4/.mkv/.mov); return its frame count.

    Written like ``convert``'s output (:mod:`sdr2hdr.outfile`): a partial file
    renamed over ``path`` when complete, with the replaced file's mode or
    ``0o666 & ~umask``; a full disk is one :class:`~sdr2hdr.errors.DiskFullError` line.
    """
    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".mkv", ".mov"):
        raise OutputError(f"unsupported sample type {path.suffix or '(none)'!r} for {path}: use .mp4, .mkv or .mov")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists (use --overwrite to replace it)")
    if not path.parent.is_dir():
        raise OutputError(f"output directory does not exist: {path.parent}")
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise OutputError(f"sample size must be even and at least 16x16, got {width}x{height}")
    n = max(1, round(seconds * fps))
    try:
        with outfile.partial_file(path) as tmp:
            count = encode_sdr(
                tmp, (render_frame(i / fps, width, height) for i in range(n)), fps=fps,
                options={"crf": str(crf), "preset": "medium", "profile": "high"},
                audio_seconds=n / fps if audio else None,
            )
            outfile.commit(tmp, path)
    except OSError as exc:  # PyAV's av.error.OSError too; the partial file is gone by now
        if outfile.is_disk_full(exc):
            raise outfile.disk_full_error(path) from None
        raise
    return count
