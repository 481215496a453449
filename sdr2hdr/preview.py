"""See before you convert: one frame of an SDR video through the model, as a three-panel PNG.

:func:`preview` decodes the first frame at or after ``at`` seconds from the
start of the video stream (default: the middle of the clip; it seeks to the key
frame before and decodes forward), runs it through the same model path as
``convert`` (:func:`sdr2hdr.zoo.load`, :class:`~sdr2hdr.inference.tiling.TiledModel`,
same precision rules) and writes an 8-bit R'G'B' PNG (for an sRGB / BT.1886
screen) of three panels side by side, each of the output size ``W_hr x H_hr``:

1. **SDR input**: the model's input (BT.709 Y'CbCr, limited range) up-scaled
   bicubically, shown as its R'G'B' codes, as an SDR display shows it.
2. **HDR, tone-mapped**: the output decoded as a display does (R'G'B' clipped
   to [0, 1], PQ EOTF) to cd/m², BT.2020 -> BT.709 (negatives clipped), the
   ITU-R BT.2390 EETF from the model's mastering peak (1000 cd/m² unless its
   weights record another) to 100 cd/m² on max(R, G, B) (hue-preserving,
   unchanged below the knee at about 28 cd/m²: the degradation model's "eetf"
   operator), BT.1886 inverse EOTF (gamma 2.4, white 100 cd/m²). Diffuse white
   (203 cd/m²) lands at 88 cd/m²: mid-tones look a little darker than SDR.
3. **HDR luminance, false colour**: BT.2020 ``Y`` of the linear light in the
   bands of :data:`BAND_EDGES` (``[0, 1)``, ``[1, 10)`` ... ``[1000, inf)``
   cd/m²), coloured :data:`BAND_COLOURS`.

Layout (:func:`layout`): :data:`MARGIN` = 8 px around and between the panels
on a dark background, then three lines of 5x7 text (:mod:`sdr2hdr.font5x7`)
at scale ``k = max(1, P // 640)``, ``P = 3 W_hr + 4 MARGIN``: the panel titles,
the bands with their limits, and the frame's time with its peak and mean
luminance in cd/m². The PNG is ``max(P, 400) x (H_hr + 2 MARGIN + 30 k)``;
titles are clipped to their panel (below 90 px). The numbers are measured on
the model's 4:4:4 output before 10-bit 4:2:0 encoding (``convert``'s MaxCLL,
max(R, G, B) of the encoded frames, is at least this peak).

The PNG is written as every output here (:mod:`sdr2hdr.outfile`): a partial
file renamed on success, mode ``0666 & ~umask`` or the replaced file's (an
existing PNG is replaced).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from sdr2hdr import color, font5x7, outfile
from sdr2hdr.color import tags
from sdr2hdr.errors import InputError, OutputError, Sdr2HdrError, one_line
from sdr2hdr.inference.model_io import model_input
from sdr2hdr.video import frames as fr
from sdr2hdr.video.probe import VideoInfo, open_input, probe

MARGIN = 8
MIN_WIDTH = 400
BAND_EDGES = (1.0, 10.0, 100.0, 203.0, 400.0, 1000.0)  # cd/m²
BAND_LABELS = ("<1", "1-10", "10-100", "100-203", "203-400", "400-1000", ">1000")
BAND_COLOURS = ((40, 40, 110), (30, 100, 220), (0, 170, 170), (60, 190, 60), (240, 220, 0), (255, 130, 0), (230, 0, 40))
BACKGROUND, INK = (24, 24, 24), (255, 255, 255)
TITLES = ("SDR INPUT", "HDR TONE-MAPPED", "HDR CD/M2")
_TOLERANCE = Fraction(1, 1_000_000)  # seconds: --at 0.125 finds the frame at 0.125


@dataclass(frozen=True)
class Layout:
    """Where everything goes in the PNG (pixels; x to the right, y down)."""

    width: int
    height: int
    scale: int  # text scale k
    panel_x: tuple[int, int, int]
    panel_y: int
    line_y: tuple[int, int, int]  # tops of the three text lines


def layout(w_hr: int, h_hr: int) -> Layout:
    """The PNG layout for panels of ``w_hr x h_hr`` (module doc)."""
    panels = 3 * w_hr + 4 * MARGIN
    k = max(1, panels // 640)
    y0 = MARGIN + h_hr + 3 * k
    xs = (MARGIN, 2 * MARGIN + w_hr, 3 * MARGIN + 2 * w_hr)
    return Layout(max(panels, MIN_WIDTH), h_hr + 2 * MARGIN + 30 * k, k, xs, MARGIN, (y0, y0 + 10 * k, y0 + 20 * k))


@dataclass(frozen=True)
class PreviewResult:
    """What :func:`preview` wrote and measured."""

    output: Path
    time: float  # seconds from the start of the video stream to the frame shown
    pts: int  # its presentation timestamp, in the stream's time base
    peak_nits: float  # brightest BT.2020 luminance Y of the HDR frame, cd/m²
    mean_nits: float  # mean Y over the frame, cd/m²
    peak_xy: tuple[int, int]  # (x, y) of the brightest pixel in the W_hr x H_hr frame
    size: tuple[int, int]  # (width, height) of the PNG
    hr_size: tuple[int, int]  # (W_hr, H_hr)
    scale: int
    model: str
    mastering_peak: float  # cd/m², where the tone-mapping EETF starts
    precision: str
    legend: tuple[str, ...]  # the text lines the PNG prints under the panels
    warnings: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        return (f"{self.output}: frame at {self.time:.3f} s through {self.model} (x{self.scale}, "
                f"{self.hr_size[0]}x{self.hr_size[1]}): HDR peak {self.peak_nits:.1f} cd/m², "
                f"mean {self.mean_nits:.1f} cd/m²")


# --------------------------------------------------------------------- frame


def _clip_seconds(info: VideoInfo) -> float:
    """Duration of the video in seconds: the container's, else from the packets' timestamps."""
    if info.duration_declared:
        return float(info.duration_declared)
    end = 0
    with open_input(info.path) as c:
        stream = c.streams[info.stream_index]
        start = stream.start_time or 0
        for pkt in c.demux(stream):
            if pkt.pts is not None:
                end = max(end, pkt.pts + (pkt.duration or 0) - start)
    return float(end * info.time_base)


def _planar(frame: av.VideoFrame, stream: av.video.stream.VideoStream, info: VideoInfo) -> fr.PlanarFrame:
    """The frame's planes as ``convert`` reads them (frame tags over the stream's; the display rotation kept)."""
    cc = stream.codec_context
    codec = cc.codec.canonical_name if cc.codec else cc.name
    try:
        fmt = fr.source_format(frame, codec_name=codec, fallback_colorspace=cc.colorspace or tags.SPC_UNSPECIFIED,
                               fallback_range=cc.color_range or tags.RANGE_UNSPECIFIED)
    except ValueError as exc:
        raise InputError(f"{info.path}: {exc}") from None
    if "rotation" in {f.name for f in fields(fr.SourceFormat)}:
        fmt = replace(fmt, rotation=getattr(info.fmt, "rotation", 0))
    return fr.frame_to_planar(frame, fmt, pts=int(frame.pts))


def _decode_from(info: VideoInfo, target: Fraction, seek: bool) -> tuple[fr.PlanarFrame | None, Fraction | None, bool]:
    """(first frame at or after ``target`` s, its time, whether the seek overshot); the last frame's time if none."""
    with open_input(info.path) as c:
        stream = c.streams[info.stream_index]
        start = stream.start_time or 0
        if seek and target > 0:
            c.seek(int(start + target / info.time_base), stream=stream, backward=True, any_frame=False)
        last: Fraction | None = None
        try:
            for frame in c.decode(stream):
                if frame.pts is None:
                    continue
                t = (frame.pts - start) * info.time_base
                if last is None and seek and target > 0 and t > target + _TOLERANCE:
                    return None, t, True
                if t + _TOLERANCE >= target:
                    return _planar(frame, stream, info), t, False
                last = t
        except av.error.FFmpegError as exc:
            raise InputError(f"{info.path}: decoding stopped before {float(target):.3f} s "
                             f"({one_line(exc)})") from None
    return None, last, False


def read_frame(info: VideoInfo, at: float | None) -> tuple[fr.PlanarFrame, float]:
    """The planes of the first frame at or after ``at`` s (None: the middle of the clip) and its time in s."""
    if at is not None and not (math.isfinite(at) and at >= 0):
        raise Sdr2HdrError(f"--at must be a time in seconds >= 0, got {at}")
    target = Fraction(at if at is not None else _clip_seconds(info) / 2).limit_denominator(1_000_000)
    frame, t, overshot = _decode_from(info, target, seek=True)
    if overshot:  # a poor index: the key frame found lies after the target; decode from the start
        frame, t, _ = _decode_from(info, target, seek=False)
    if frame is None or t is None:
        last = f"its last frame starts at {float(t):.3f} s" if t is not None else "no frame decodes"
        raise InputError(f"--at {float(target):g} s is past the end of {info.path} ({last})")
    return frame, float(t)


# -------------------------------------------------------------------- panels


def _to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """``3 x H x W`` R'G'B' in [0, 1] -> ``H x W x 3`` uint8 codes (rounded, clipped)."""
    return (rgb.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def sdr_panel(x: torch.Tensor, scale: int) -> np.ndarray:
    """Model input ``3 x H x W`` (BT.709 limited Y'CbCr, code / 255) -> bicubic x``scale`` R'G'B' uint8 panel."""
    up = F.interpolate(x.double().unsqueeze(0), scale_factor=scale, mode="bicubic", align_corners=False)[0]
    return _to_uint8(color.ycbcr_to_rgb(up, "bt709", full_range=False, bits=8))


def tone_mapped_panel(light: torch.Tensor, src_peak: float) -> np.ndarray:
    """Linear BT.2020 RGB in cd/m² -> SDR panel: BT.709, BT.2390 EETF ``src_peak`` -> 100 cd/m² on max(R, G, B),
    BT.1886 inverse EOTF (white 100 cd/m²), uint8."""
    from sdr2hdr.data.degrade import eetf_bt2390

    rgb = color.convert_primaries(light, "bt2020", "bt709").clamp(min=0.0)
    m = rgb.amax(dim=-3, keepdim=True)
    if src_peak > 100.0:
        mapped = eetf_bt2390(m, src_peak=src_peak, dst_peak=100.0)
        rgb = rgb * torch.where(m > 0, mapped / m.clamp(min=1e-12), torch.zeros_like(m))
    return _to_uint8(color.bt1886_inverse_eotf(rgb.clamp(0.0, 100.0), white=100.0))


def band_index(y: torch.Tensor) -> torch.Tensor:
    """Band of each luminance value in cd/m²: 0 for ``[0, 1)`` ... 6 for ``[1000, inf)`` (:data:`BAND_EDGES`)."""
    return torch.bucketize(y, torch.tensor(BAND_EDGES, dtype=y.dtype, device=y.device), right=True)


def false_colour_panel(y: torch.Tensor) -> np.ndarray:
    """Luminance ``H x W`` in cd/m² -> ``H x W x 3`` uint8 of :data:`BAND_COLOURS`."""
    palette = np.asarray(BAND_COLOURS, dtype=np.uint8)
    return palette[band_index(y).cpu().numpy()]


def compose(panels: list[np.ndarray], numbers: str) -> np.ndarray:
    """The PNG picture: the three panels side by side, their titles, the bands and ``numbers`` (:func:`layout`)."""
    h_hr, w_hr = panels[0].shape[:2]
    lay = layout(w_hr, h_hr)
    k = lay.scale
    canvas = np.empty((lay.height, lay.width, 3), dtype=np.uint8)
    canvas[...] = BACKGROUND
    for x0, panel, title in zip(lay.panel_x, panels, TITLES):
        canvas[lay.panel_y : lay.panel_y + h_hr, x0 : x0 + w_hr] = panel
        font5x7.draw(canvas, title, x0, lay.line_y[0], INK, k, max_width=w_hr)
    x = MARGIN
    for label, rgb in zip(BAND_LABELS, BAND_COLOURS):  # swatch, then its limits
        canvas[lay.line_y[1] : lay.line_y[1] + 7 * k, x : x + 7 * k] = rgb
        x = font5x7.draw(canvas, label, x + 9 * k, lay.line_y[1], INK, k) + 6 * k
    font5x7.draw(canvas, "CD/M2", x, lay.line_y[1], INK, k)
    font5x7.draw(canvas, numbers, MARGIN, lay.line_y[2], INK, k)
    return canvas


def write_png(path: Path, rgb: np.ndarray) -> None:
    """``H x W x 3`` uint8 -> PNG (PyAV's encoder) at ``path``, through a partial file renamed on success."""
    cc = av.CodecContext.create("png", "w")
    cc.width, cc.height, cc.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
    data = b"".join(bytes(p) for p in [*cc.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), "rgb24")),
                                      *cc.encode(None)])
    try:
        with outfile.partial_file(path) as tmp:
            tmp.write_bytes(data)
            outfile.commit(tmp, path)
    except OSError as exc:
        if outfile.is_disk_full(exc):
            raise outfile.disk_full_error(path) from None
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _check_output(input_path: Path, output: Path) -> None:
    if output.suffix.lower() != ".png":
        raise OutputError(f"preview output must be a .png file, got {output}")
    if output.is_dir():
        raise OutputError(f"output {output} is a directory; give a file name ending in .png")
    if input_path.exists() and output.exists() and os.path.samefile(input_path, output):
        raise OutputError(f"output {output} is the input file; choose another output path")
    if not output.parent.is_dir():
        raise OutputError(f"output directory does not exist: {output.parent}")
    if not os.access(output.parent, os.W_OK | os.X_OK):
        raise OutputError(f"output directory is not writable: {output.parent}")


def preview(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str] = "preview.png",
    *,
    at: float | None = None,
    model: str | None = None,
    scale: int | None = None,
    gan: bool = False,
    device: str = "auto",
    precision: str = "auto",
    tile: int = 0,
) -> PreviewResult:
    """Write the three-panel preview PNG of one frame of ``input`` (module doc) and return what it measured.

    ``at``: seconds from the start of the video (None: the middle); ``model`` /
    ``scale`` / ``gan`` / ``device`` / ``precision`` / ``tile`` as for
    :func:`sdr2hdr.convert.convert`. Errors are one-line :class:`Sdr2HdrError`.
    """
    from sdr2hdr.inference.device import resolve_device
    from sdr2hdr.inference.prepare import prepare_model

    in_path, out_path = Path(input), Path(output)
    if scale is not None and scale not in (2, 4):
        raise Sdr2HdrError(f"scale must be 2 or 4, got {scale}")
    if not in_path.exists():
        raise InputError(f"input file not found: {in_path}")
    _check_output(in_path, out_path)
    info = probe(in_path)  # refuses HDR input, unreadable files, audio only
    planar, t = read_frame(info, at)
    dev = resolve_device(device)
    prep = prepare_model(model, scale=scale, gan=gan, device=dev, precision=precision, tile=tile)
    runner, name, peak, scale, warnings = prep.runner, prep.name, prep.peak_nits, prep.scale, prep.warnings
    x = model_input([planar], device=dev)
    hdr = runner(x)[0].double()
    light = color.hdr10_to_linear(hdr, bits=10)  # as a display decodes it, cd/m²
    y = color.luminance(light, "bt2020")
    i = int(torch.argmax(y))
    h_hr, w_hr = y.shape
    stats = (float(y.flatten()[i]), float(y.mean()))
    lines = (" ".join(TITLES), " ".join(BAND_LABELS) + " CD/M2",
             f"FRAME AT {t:.3f} S   PEAK {stats[0]:.1f} CD/M2   MEAN {stats[1]:.1f} CD/M2")
    canvas = compose([sdr_panel(x[0], scale), tone_mapped_panel(light, peak), false_colour_panel(y)], lines[2])
    write_png(out_path, canvas)
    return PreviewResult(out_path, t, planar.pts, stats[0], stats[1], (i % w_hr, i // w_hr),
                         (canvas.shape[1], canvas.shape[0]), (w_hr, h_hr), scale, name, peak, runner.precision,
                         lines, warnings)
