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

An input longer than ``--segment-seconds`` is converted as independent segments
cut at its keyframes, kept in a work folder so that the same command resumes
after a crash, optionally by several worker processes or Ray tasks, and then
joined (:mod:`sdr2hdr.segments`); a shorter one, or ``--no-resume``, takes the
one-pass path described here.

MaxCLL / MaxFALL
----------------
``cll="unknown"`` (default) signals ``max-cll=0,0`` ("unknown" in
CTA-861.3) and needs one pass. ``cll="measure"`` first runs decode + model
over the whole input to measure them on exactly the frames that will be
written (see :func:`sdr2hdr.video.hdr10.light_levels`), then encodes in a
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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sdr2hdr import memory, outfile
from sdr2hdr.convert_options import CLL_MODES, ConvertOptions, EncodeOptions, MasteringOptions
from sdr2hdr.errors import InputError, OutputError, Sdr2HdrError
from sdr2hdr.inference.device import resolve_device
from sdr2hdr.inference.prepare import PreparedModel, prepare_for
from sdr2hdr.inference.tiling import TiledModel
from sdr2hdr.passes import PassResult, run_pass
from sdr2hdr.summary import ConvertSummary, Progress
from sdr2hdr.video import mkvcolour
from sdr2hdr.video.probe import VideoInfo, probe
from sdr2hdr.video.hdr10_params import x265_params
from sdr2hdr.video.writer import HDR10Writer, output_format
from sdr2hdr.video.x265 import check_encoder
from sdr2hdr.zoo import DEFAULT_PEAK_NITS

if TYPE_CHECKING:
    import av

__all__ = ["CLL_MODES", "ConvertOptions", "ConvertSummary", "Progress", "check_output", "convert", "resolve_device"]


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


# -------------------------------------------------------------------- convert


@dataclass
class Encoding:
    """How the HDR10 file is encoded: the options, the container, and what ``convert`` derived from the input."""

    fmt: str  # container format name ("matroska", "mp4", "mov")
    encode: EncodeOptions
    mastering: MasteringOptions
    peak_nits: float  # the mastering peak signalled, cd/m² (the option, else the model's)
    container_colour: bool = False  # also write the Matroska Colour element (mkvpropedit)
    lookahead: int | None = None  # rc-lookahead capped for large frames (sdr2hdr.memory.x265_lookahead)

    def params(self, max_cll: tuple[int, int] = (0, 0)) -> str:
        """The full ``x265-params``; a reserved, dedicated or malformed extra key is a one-line error.

        The look-ahead cap goes before the user's extra keys (which never set ``rc-lookahead`` when it is there).
        """
        cap = f"rc-lookahead={self.lookahead}" if self.lookahead else ""
        extra = ":".join(p for p in (cap, self.encode.x265_extra) if p)
        try:
            return x265_params(mastering=self.mastering.primaries, peak_nits=self.peak_nits,
                               min_nits=self.mastering.min_nits, max_cll=max_cll, extra=extra)
        except ValueError as exc:
            raise Sdr2HdrError(str(exc)) from None

    def check(self, width: int, height: int) -> None:
        """Let x265 itself refuse unknown keys, bad values or impossible settings (before any file exists)."""
        try:
            check_encoder(self.params(), width=width, height=height, crf=self.encode.crf, preset=self.encode.preset)
        except ValueError as exc:
            raise Sdr2HdrError(str(exc)) from None

    def open_writer(self, path: Path, info: VideoInfo, scale: int, signalled: tuple[int, int], *,
                    segment: bool = False, template: av.stream.Stream | None = None) -> HDR10Writer:
        """The HDR10 writer of ``info`` x ``scale`` into ``path`` (called by the thread that owns it).

        ``segment``: a bare MP4 segment file (:mod:`sdr2hdr.segments.encode`: no copied streams, tags or
        chapters); ``template``: packet mode, the segment joiner's (:mod:`sdr2hdr.segments.join`).
        """
        e = self.encode
        where = {"fmt": "mp4", "copy_audio": False, "copy_subtitles": False, "extras": False} if segment else {
            "fmt": self.fmt, "copy_audio": e.copy_audio, "copy_subtitles": e.copy_subtitles}
        return HDR10Writer(path, info=info, width=info.width * scale, height=info.height * scale, crf=e.crf,
                           preset=e.preset, params=self.params(signalled), template=template, **where)

    def write_container_colour(self, path: Path, signalled: tuple[int, int]) -> None:
        """The HDR10 metadata in a finished Matroska file's ``Colour`` element too, when mkvpropedit is there."""
        if self.container_colour:
            m = self.mastering
            mkvcolour.write_colour(path, mkvcolour.colour_properties(m.primaries, self.peak_nits, m.min_nits, signalled))

    def light_level_warnings(self, res: PassResult, signalled: tuple[int, int]) -> list[str]:
        """With ``--cll measure``: a warning when the frames written measure other light levels than were signalled."""
        if self.mastering.cll != "measure" or (math.ceil(res.max_cll), math.ceil(res.max_fall)) == signalled:
            return []
        return [f"light levels of the encoding pass ({res.max_cll:.0f}/{res.max_fall:.0f}) differ from the measuring "
                f"pass ({signalled[0]}/{signalled[1]}) that was signalled"]


@dataclass
class _Written:
    result: PassResult
    signalled: tuple[int, int]
    passes: int
    warnings: list[str]
    segments: tuple[int, int, int, int] = (1, 0, 1, 1)  # total, reused, converted, workers


def _segmented(in_path: Path, out_path: Path, info: VideoInfo, o: ConvertOptions, enc: Encoding, prep: PreparedModel,
               batch: int, progress: Callable[[Progress], None] | None) -> _Written | None:
    """Convert in segments with a work folder (:mod:`sdr2hdr.segments`); None when it is one segment."""
    from sdr2hdr.segments.executors import make_executor
    from sdr2hdr.segments.run import Conversion, convert_segments, plan_for
    from sdr2hdr.segments.workers import worker_count

    g = o.segments
    if not (g.resume or worker_count(g.workers) != 1 or g.ray is not None):
        return None

    plan = plan_for(in_path, info, o, out_path)
    if len(plan) < 2:
        return None
    c = Conversion(in_path, out_path, info, o, enc, prep, batch, plan, progress)
    r = convert_segments(c, lambda: make_executor(c))
    return _Written(r.result, r.signalled, r.passes, r.warnings, (r.total, r.reused, r.converted, r.workers))


def _encode_file(info: VideoInfo, runner: TiledModel, out_path: Path, enc: Encoding, *, batch: int,
                 progress: Callable[[Progress], None] | None, allow_truncated: bool) -> _Written:
    """Run the pass(es) into a partial file beside ``out_path`` and rename it over ``out_path`` on success.

    The writer lives and dies in the encode thread (:func:`sdr2hdr.passes.run_pass`); this thread never touches it.
    """
    cll = enc.mastering.cll
    with outfile.partial_file(out_path) as tmp:
        signalled, passes = (0, 0), 1
        if cll == "measure":
            first = run_pass(info, runner, batch=batch, open_writer=None, phase="measure", progress=progress,
                             allow_truncated=allow_truncated)
            signalled = (int(math.ceil(first.max_cll)), int(math.ceil(first.max_fall)))
            passes = 2
        res = run_pass(info, runner, batch=batch, phase="convert", progress=progress, allow_truncated=allow_truncated,
                       open_writer=lambda: enc.open_writer(tmp, info, runner.scale, signalled))
        enc.write_container_colour(tmp, signalled)
        done = _Written(res, signalled, passes, list(res.warnings) + enc.light_level_warnings(res, signalled))
        done.warnings.extend(f"stream not copied: {d}" for d in res.dropped)
        outfile.commit(tmp, out_path)
        return done


def convert(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    options: ConvertOptions | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
) -> ConvertSummary:
    """Convert an SDR video file to an HDR10 (HEVC Main 10) file ``options.scale`` times larger.

    ``options`` (:class:`~sdr2hdr.convert_options.ConvertOptions`, None = all defaults;
    ``ConvertOptions.build(crf=18, ...)`` from flat keywords) says which model, how it
    runs, how the file is encoded and what HDR10 metadata it carries; ``progress``
    receives a :class:`Progress` now and then. ``x265_extra`` is checked by x265
    itself before anything is written. A display-rotation tag is applied (the output
    is upright, its size the displayed one x scale). See the module doc.
    """
    o = options or ConvertOptions()
    t_start = time.perf_counter()
    in_path, out_path = Path(input), Path(output)
    o.validate()
    if not in_path.exists():
        raise InputError(f"input file not found: {in_path}")
    m = o.mastering
    enc = Encoding(check_output(in_path, out_path, overwrite=o.overwrite), o.encode, m,
                   DEFAULT_PEAK_NITS if m.peak_nits is None else m.peak_nits)
    enc.params()  # reserved / dedicated / malformed keys: refused before anything is read
    info = probe(in_path, deinterlace=o.deinterlace, refuse_truncated=not o.allow_truncated)  # rotation, interlacing
    dev = resolve_device(o.device)
    prep = prepare_for(o, dev)
    enc.peak_nits = m.peak_nits if m.peak_nits is not None else prep.peak_nits
    runner, scale, warnings = prep.runner, prep.scale, list(prep.warnings)
    out_w, out_h = info.width * scale, info.height * scale
    enc.lookahead = memory.x265_lookahead(out_w, out_h, o.encode.preset, o.encode.x265_extra)  # libx265's buffer
    enc.check(out_w, out_h)
    if enc.fmt == "matroska":
        missing = mkvcolour.missing_tools()
        enc.container_colour = missing is None
        warnings += [missing] if missing else []
    nbatch = o.tiling.batch_for(dev.type)
    try:
        w = _segmented(in_path, out_path, info, o, enc, prep, nbatch, progress) or _encode_file(
            info, runner, out_path, enc, batch=nbatch, progress=progress, allow_truncated=o.allow_truncated)
    except OSError as exc:  # PyAV's av.error.OSError too; reported after the partial file is gone
        if outfile.is_disk_full(exc):
            raise outfile.disk_full_error(out_path) from None
        raise
    res = w.result
    return ConvertSummary(
        input=in_path, output=out_path, frames=res.frames, seconds=time.perf_counter() - t_start,
        size_bytes=out_path.stat().st_size, input_size=(info.width, info.height), output_size=(out_w, out_h),
        scale=scale, model=prep.name, model_sha256=prep.sha256, device=str(dev), precision=runner.precision,
        precision_reason=runner.precision_reason,
        tile=0 if (runner.tile or 0) >= max(info.width, info.height) else int(runner.tile or 0),
        tile_pad=runner.pad, batch=nbatch, cll_mode=m.cll, signalled_cll=w.signalled, max_cll=res.max_cll,
        max_fall=res.max_fall, input_description=info.describe(), passes=w.passes, model_seconds=runner.seconds,
        oom_retries=runner.oom_retries, copied_streams=list(res.copied), dropped_streams=list(res.dropped),
        warnings=warnings + w.warnings, video_seconds=res.video_seconds, peak_nits=enc.peak_nits,
        container_hdr10=enc.container_colour, segments_total=w.segments[0], segments_reused=w.segments[1],
        segments_converted=w.segments[2], workers=w.segments[3],
    )
