"""SDR video in, HDR10 video out: the conversion the ``sdr2hdr convert`` command runs.

:func:`convert` does all the work and never prints; it reports through an
optional ``progress`` callback and returns a :class:`ConvertSummary`. Every
user-facing failure is a one-line :class:`~sdr2hdr.errors.Sdr2HdrError`.

Flow: probe the input (refusing HDR and unreadable files), check the output
path, load the model, let x265 check the encoder settings, then run three
stages concurrently (:mod:`sdr2hdr.passes`) so the model is never waiting on I/O:

1. a decode thread: demux + decode + copy planes (:class:`~sdr2hdr.video.reader.FrameReader`),
   into a bounded queue;
2. the calling thread: batches of frames -> model input on the device
   (chroma up-sampling and colour conversion there) -> tiled model ->
   4:2:0 10-bit quantisation and light-level measurement on the device;
3. an encode thread: libx265 encode + mux with copied audio / subtitles
   (:class:`~sdr2hdr.video.writer.HDR10Writer`), from a bounded queue.

(PyAV and torch release the GIL in decode / encode / kernels.)

MaxCLL / MaxFALL
----------------
``cll="unknown"`` (default) signals ``max-cll=0,0`` ("unknown" in
CTA-861.3) and needs one pass. ``cll="measure"`` first runs decode + model
over the whole input to measure them on exactly the frames that will be
written (see :func:`sdr2hdr.video.frames.light_levels`), then encodes in a
second pass with those values (rounded up to whole cd/m²) in the SEI: the
model runs twice, so it takes about twice as long. Either way the summary
reports the MaxCLL / MaxFALL measured on the frames actually written.

The output is written to a temporary file beside the target
(``.NAME.partial-XXXX.EXT``, :mod:`sdr2hdr.outfile`); a Matroska file then
gets the same HDR10 metadata in its container (the track's ``Colour``
element, :mod:`sdr2hdr.video.mkvcolour`, with mkvpropedit where installed);
it is renamed over the target only on success, with the replaced file's
mode (else ``0o666 & ~umask``); any error, Ctrl-C, SIGTERM or SIGHUP deletes it, and a full disk is one
:class:`~sdr2hdr.errors.DiskFullError` line.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sdr2hdr import memory, outfile
from sdr2hdr.inference.device import resolve_device
from sdr2hdr.errors import InputError, OutputError, Sdr2HdrError
from sdr2hdr.passes import PassResult, run_pass
from sdr2hdr.summary import ConvertSummary, Progress
from sdr2hdr.inference.tiling import TiledModel, receptive_field
from sdr2hdr.video import mkvcolour
from sdr2hdr.video.probe import VideoInfo, probe
from sdr2hdr.video.writer import DEFAULT_CRF, DEFAULT_PRESET, HDR10Writer, output_format, x265_params
from sdr2hdr.video.x265 import check_encoder

__all__ = ["CLL_MODES", "ConvertSummary", "Progress", "check_output", "convert", "resolve_device"]

CLL_MODES = ("unknown", "measure")


def check_output(input_path: Path, output_path: Path, *, overwrite: bool) -> str:
    """Refuse an output we must not or cannot write; return the container format name."""
    fmt = output_format(output_path)
    try:
        same = input_path.resolve() == output_path.resolve() or (
            output_path.exists() and input_path.exists() and os.path.samefile(input_path, output_path)
        )
    except OSError:
        same = False
    if same:
        raise OutputError(f"output {output_path} is the input file; choose another output path")
    if output_path.is_dir():
        raise OutputError(f"output {output_path} is a directory; give a file name ending in .mkv, .mp4 or .mov")
    if output_path.exists() and not overwrite:
        raise OutputError(f"{output_path} already exists (use --overwrite to replace it)")
    parent = output_path.parent
    if not parent.is_dir():
        raise OutputError(f"output directory does not exist: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"output directory is not writable: {parent}")
    return fmt


def _load(
    model: str | nn.Module | None, scale: int | None, gan: bool, device: torch.device
) -> tuple[nn.Module, str, str | None, float]:
    """(model on ``device``, its name, its weights' sha256 or None, the mastering peak it was trained for);
    ``scale`` None: the model's own."""
    from sdr2hdr.zoo import DEFAULT_PEAK_NITS, default_model_name, load

    if isinstance(model, nn.Module):
        m = model.to(device).eval()
        own = getattr(m, "scale", None)
        if scale is not None and own is not None and int(own) != scale:
            raise Sdr2HdrError(f"the model is x{own}, but scale {scale} was asked for")
        return m, type(model).__name__, None, DEFAULT_PEAK_NITS
    name = str(model or default_model_name(scale or 2, gan))
    loaded = load(name, device=device, scale=scale)  # sha256: registry entry's (verified) or the file's
    return loaded.module, name, loaded.sha256, loaded.peak_nits


def _runner(net: nn.Module, scale: int, tile: int, tile_pad: int | None, device: torch.device,
            precision: str) -> tuple[TiledModel, list[str]]:
    """The tiled runner, with ``tile`` raised to the model's receptive field (and a warning saying so)."""
    warnings: list[str] = []
    rf = receptive_field(net)
    if 0 < tile < rf:
        warnings.append(f"--tile {tile} is smaller than the model's receptive field ({rf} LR pixels); using {rf}")
        tile = rf
    return TiledModel(net, scale=scale, tile=tile, pad=tile_pad, device=device, precision=precision), warnings


# -------------------------------------------------------------------- convert


@dataclass
class _Encoding:
    """How the HDR10 file is encoded and what it carries besides the video."""

    fmt: str
    crf: float
    preset: str
    mastering: str
    peak_nits: float
    min_nits: float
    x265_extra: str
    copy_audio: bool
    copy_subtitles: bool
    container_colour: bool = False  # also write the Matroska Colour element (mkvpropedit)
    lookahead: int | None = None  # rc-lookahead capped for large frames (sdr2hdr.memory.x265_lookahead)

    def params(self, max_cll: tuple[int, int] = (0, 0)) -> str:
        """The full ``x265-params``; a reserved, dedicated or malformed extra key is a one-line error.

        The look-ahead cap goes before the user's extra keys (which never set ``rc-lookahead`` when it is there).
        """
        extra = ":".join(p for p in (f"rc-lookahead={self.lookahead}" if self.lookahead else "", self.x265_extra) if p)
        try:
            return x265_params(mastering=self.mastering, peak_nits=self.peak_nits, min_nits=self.min_nits,
                               max_cll=max_cll, extra=extra)
        except ValueError as exc:
            raise Sdr2HdrError(str(exc)) from None

    def check(self, width: int, height: int) -> None:
        """Let x265 itself refuse unknown keys, bad values or impossible settings (before any file exists)."""
        try:
            check_encoder(self.params(), width=width, height=height, crf=self.crf, preset=self.preset)
        except ValueError as exc:
            raise Sdr2HdrError(str(exc)) from None


@dataclass
class _Written:
    result: PassResult
    signalled: tuple[int, int]
    passes: int
    writer: HDR10Writer
    warnings: list[str] = field(default_factory=list)


def _encode_file(info: VideoInfo, runner: TiledModel, out_path: Path, enc: _Encoding, *, batch: int, cll: str,
                 progress: Callable[[Progress], None] | None, allow_truncated: bool) -> _Written:
    """Run the pass(es) into a partial file beside ``out_path`` and rename it over ``out_path`` on success."""
    tmp: Path | None = None
    writer: HDR10Writer | None = None
    ok = False
    try:
        tmp = outfile.partial_path(out_path)
        signalled, passes = (0, 0), 1
        if cll == "measure":
            first = run_pass(info, runner, batch=batch, writer=None, phase="measure", progress=progress,
                              allow_truncated=allow_truncated)
            signalled = (int(math.ceil(first.max_cll)), int(math.ceil(first.max_fall)))
            passes = 2
        writer = HDR10Writer(tmp, fmt=enc.fmt, info=info, width=info.width * runner.scale,
                             height=info.height * runner.scale, crf=enc.crf, preset=enc.preset,
                             params=enc.params(signalled), copy_audio=enc.copy_audio,
                             copy_subtitles=enc.copy_subtitles)
        res = run_pass(info, runner, batch=batch, writer=writer, phase="convert", progress=progress,
                        allow_truncated=allow_truncated)
        writer.close()
        if enc.container_colour:
            mkvcolour.write_colour(tmp, mkvcolour.colour_properties(enc.mastering, enc.peak_nits, enc.min_nits,
                                                                    signalled))
        done = _Written(res, signalled, passes, writer, list(res.warnings))
        if cll == "measure" and (math.ceil(res.max_cll), math.ceil(res.max_fall)) != signalled:
            done.warnings.append(
                f"light levels of the encoding pass ({res.max_cll:.0f}/{res.max_fall:.0f}) differ from the measuring "
                f"pass ({signalled[0]}/{signalled[1]}) that was signalled"
            )
        done.warnings.extend(f"stream not copied: {d}" for d in writer.report.dropped)
        outfile.commit(tmp, out_path)
        ok = True
        return done
    finally:
        if not ok:
            if writer is not None:
                writer.abort()
            outfile.discard(tmp)


def convert(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    model: str | nn.Module | None = None,
    scale: int | None = None,
    gan: bool = False,
    tile: int = 0,
    tile_pad: int | None = None,
    batch: int = 0,
    device: str | torch.device = "auto",
    precision: str = "auto",
    crf: float = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
    x265_extra: str = "",
    mastering: str = "p3",
    peak_nits: float | None = None,
    min_nits: float = 0.0001,
    cll: str = "unknown",
    copy_audio: bool = True,
    copy_subtitles: bool = True,
    overwrite: bool = False,
    allow_truncated: bool = False,
    deinterlace: str = "auto",
    progress: Callable[[Progress], None] | None = None,
) -> ConvertSummary:
    """Convert an SDR video file to an HDR10 (HEVC Main 10) file ``scale`` times larger.

    ``model``: registry name, ``.safetensors`` path, an ``nn.Module`` (tests,
    benchmarks) or None for the default of ``scale`` / ``gan``. ``scale``: 2 or
    4; None takes the model's own (2 for the default model); one that
    contradicts the model is an error. ``tile=0``: automatic (a tile below the
    model's receptive field is raised to it, with a warning);
    ``tile_pad=None``: from the model's receptive field; ``batch=0``: 4 on
    CUDA, 1 on CPU; ``precision``: auto | fp32 | bf16 | fp16
    (:func:`sdr2hdr.precision.resolve_precision`: auto is fp16 on CUDA, bf16 on
    a CPU with AMX / AVX512-BF16, else fp32). ``x265_extra`` is checked by
    x265 itself before anything is written. ``cll``: "unknown" (signal 0,0)
    or "measure" (two passes). ``peak_nits`` None: the mastering peak the model
    was trained for (its registry entry or weights metadata; 1000 cd/m²
    otherwise). ``deinterlace``: auto | off | on (:mod:`sdr2hdr.video.deinterlace`).
    A display-rotation tag is applied (the output is upright, its size the
    displayed one x ``scale``). See the module doc.
    """
    t_start = time.perf_counter()
    in_path, out_path = Path(input), Path(output)
    if scale is not None and scale not in (2, 4):
        raise Sdr2HdrError(f"scale must be 2 or 4, got {scale}")
    if cll not in CLL_MODES:
        raise Sdr2HdrError(f"cll must be one of {', '.join(CLL_MODES)}, got {cll!r}")
    if tile < 0 or (tile_pad is not None and tile_pad < 0):
        raise Sdr2HdrError("tile and tile pad must be >= 0")
    if not in_path.exists():
        raise InputError(f"input file not found: {in_path}")
    enc = _Encoding(check_output(in_path, out_path, overwrite=overwrite), crf, preset, mastering,
                    1000.0 if peak_nits is None else peak_nits, min_nits, x265_extra, copy_audio, copy_subtitles)
    enc.params()  # reserved / dedicated / malformed keys: refused before anything is read
    info = probe(in_path, deinterlace=deinterlace, refuse_truncated=not allow_truncated)  # rotation, interlacing
    dev = resolve_device(device)
    net, model_name, sha, model_peak = _load(model, scale, gan, dev)
    if peak_nits is None:
        enc.peak_nits = model_peak
    scale = int(getattr(net, "scale", None) or scale or 2)
    out_w, out_h = info.width * scale, info.height * scale
    enc.lookahead = memory.x265_lookahead(out_w, out_h, enc.preset, enc.x265_extra)  # libx265's frame buffer
    enc.check(out_w, out_h)
    runner, warnings = _runner(net, scale, tile, tile_pad, dev, precision)
    if enc.fmt == "matroska":
        missing = mkvcolour.missing_tools()
        enc.container_colour = missing is None
        warnings += [missing] if missing else []
    nbatch = batch if batch > 0 else (4 if dev.type == "cuda" else 1)
    try:
        w = _encode_file(info, runner, out_path, enc, batch=nbatch, cll=cll, progress=progress,
                         allow_truncated=allow_truncated)
    except OSError as exc:  # PyAV's av.error.OSError too; reported after the partial file is gone
        if outfile.is_disk_full(exc):
            raise outfile.disk_full_error(out_path) from None
        raise
    res, writer = w.result, w.writer
    return ConvertSummary(
        input=in_path, output=out_path, frames=res.frames, seconds=time.perf_counter() - t_start,
        size_bytes=out_path.stat().st_size, input_size=(info.width, info.height), output_size=(out_w, out_h),
        scale=scale, model=model_name, model_sha256=sha, device=str(dev), precision=runner.precision,
        precision_reason=runner.precision_reason,
        tile=0 if (runner.tile or 0) >= max(info.width, info.height) else int(runner.tile or 0),
        tile_pad=runner.pad, batch=nbatch, cll_mode=cll, signalled_cll=w.signalled, max_cll=res.max_cll,
        max_fall=res.max_fall, input_description=info.describe(), passes=w.passes, model_seconds=runner.seconds,
        oom_retries=runner.oom_retries, copied_streams=list(writer.report.copied),
        dropped_streams=list(writer.report.dropped), warnings=warnings + w.warnings,
        video_seconds=writer.duration_seconds, peak_nits=enc.peak_nits, container_hdr10=enc.container_colour,
    )
