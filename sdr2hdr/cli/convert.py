"""``sdr2hdr convert``: SDR video -> HDR10 video.

The command only parses options into one
:class:`~sdr2hdr.convert_options.ConvertOptions` (whose defaults the help shows)
and reports; :func:`sdr2hdr.convert.convert` does the work.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from sdr2hdr.convert_options import (
    CLL_MODES, DEINTERLACE_MODES, MASTERING_DISPLAYS, PRECISIONS, X265_PRESETS, ConvertOptions, EncodeOptions,
    MasteringOptions, SegmentOptions, TilingOptions,
)

D = ConvertOptions()  # the defaults, in one place


@click.command("convert")
@click.argument("input", type=click.Path(path_type=Path, dir_okay=True))
@click.argument("output", type=click.Path(path_type=Path, dir_okay=True))
@click.option("--scale", type=click.Choice(["2", "4"]), default=None,
              help="Up-scaling factor [default: the model's own; 2 for the default model].")
@click.option("--gan", is_flag=True, help="Use the JSI-GAN weights (adversarially fine-tuned, sharper) instead of JSInet.")
@click.option("--model", "model", metavar="NAME|PATH", default=None,
              help="Registry name or .safetensors file; overrides --gan. See 'sdr2hdr models'.")
@click.option("--device", default=D.device, show_default=True, metavar="auto|cpu|cuda[:N]", help="Where the model runs.")
@click.option("--precision", type=click.Choice(PRECISIONS), default=D.precision, show_default=True,
              help="auto: fp16 on CUDA, bf16 on a CPU with AMX / AVX512-BF16, fp32 elsewhere. fp32 is IEEE fp32.")
@click.option("--fp32", is_flag=True, help="Alias of --precision fp32.")
@click.option("--tile", type=click.IntRange(min=0), default=D.tiling.tile, show_default=True,
              help="Tile side in low-resolution pixels; 0 = automatic from free memory.")
@click.option("--tile-pad", type=click.IntRange(min=0), default=D.tiling.tile_pad,
              help="Context around each tile in LR pixels, blended over a quarter of it [default: from the "
                   "model's receptive field: 48 for JSInet's 34 pixels, which makes tiling exact].")
@click.option("--batch", type=click.IntRange(min=0), default=D.tiling.batch, show_default=True,
              help="Frames per model call; 0 = 4 on CUDA, 1 on CPU.")
@click.option("--crf", type=click.FloatRange(0, 51), default=D.encode.crf, show_default=True,
              help="x265 constant rate factor: lower is better and bigger (the default is near-transparent for 4K HDR10).")
@click.option("--preset", type=click.Choice(X265_PRESETS), default=D.encode.preset, show_default=True, help="x265 preset.")
@click.option("--x265-params", "x265_extra", default=D.encode.x265_extra, metavar="K=V:K=V",
              help="Extra x265 parameters, checked by x265 before anything is written (HDR10 signalling "
                   "keys are reserved; use --crf / --preset for crf and preset).")
@click.option("--mastering", type=click.Choice(MASTERING_DISPLAYS), default=D.mastering.primaries, show_default=True,
              help="Mastering display primaries in the SMPTE ST 2086 metadata (P3-D65 or BT.2020).")
@click.option("--peak-nits", type=click.FloatRange(min=1, max=10000), default=D.mastering.peak_nits,
              help="Mastering display peak luminance, cd/m².  [default: the peak the model was trained for, 1000]")
@click.option("--min-nits", type=click.FloatRange(min=0, max=1), default=D.mastering.min_nits, show_default=True,
              help="Mastering display black level, cd/m².")
@click.option("--cll", type=click.Choice(CLL_MODES), default=D.mastering.cll, show_default=True,
              help="MaxCLL/MaxFALL in the bitstream: 'unknown' signals 0,0 (one pass); 'measure' runs the model "
                   "over the whole video first and signals the measured values (about twice the time).")
@click.option("--no-audio", is_flag=True, help="Do not copy audio streams.")
@click.option("--no-subtitles", is_flag=True, help="Do not copy subtitle streams.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--allow-truncated", is_flag=True,
              help="Convert what decodes of a truncated or damaged input instead of refusing it.")
@click.option("--deinterlace", type=click.Choice(DEINTERLACE_MODES), default=D.deinterlace, show_default=True,
              help="Deinterlace with bwdif (one frame per input frame, timestamps kept); auto: when the stream's "
                   "field order or its frames say interlaced.")
@click.option("--segment-seconds", type=click.FloatRange(min=0, min_open=True), default=D.segments.segment_seconds,
              show_default=True, help="Cut the input at keyframes into segments of about this many seconds; each is "
                                      "converted on its own and kept in a work folder until the output is complete.")
@click.option("--no-resume", is_flag=True, help="No work folder: convert in one pass (a crash loses everything).")
@click.option("--restart", is_flag=True, help="Discard the segments of an earlier, different conversion into OUTPUT.")
@click.option("--keep-work", is_flag=True, help="Keep the work folder .OUTPUT.sdr2hdr/ after success.")
@click.option("--workers", type=click.IntRange(min=0), default=D.segments.workers, show_default=True,
              help="Local worker processes converting segments at once; 0 = one per visible CUDA device "
                   "(1 without CUDA).")
@click.option("--threads", type=click.IntRange(min=0), default=D.segments.threads, show_default=True,
              help="torch threads per worker process (--workers, --ray); 0 = torch's default.")
@click.option("--ray", "ray", metavar="[ADDRESS]", is_flag=False, flag_value="", default=D.segments.ray,
              help="Run the segments as Ray tasks on the cluster at ADDRESS (without one: a local Ray); input, "
                   "output folder and work folder must be on storage every node sees.")
@click.option("--json", "json_out", metavar="FILE|-", default=None,
              help="Also write the summary as JSON to FILE, or to stdout with '-' (then no table is printed).")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary (warnings and errors only).")
def convert_cmd(
    input: Path, output: Path, scale: str | None, gan: bool, model: str | None, device: str, precision: str, fp32: bool,
    tile: int, tile_pad: int | None, batch: int, crf: float, preset: str, x265_extra: str, mastering: str,
    peak_nits: float | None, min_nits: float, cll: str, no_audio: bool, no_subtitles: bool, overwrite: bool,
    allow_truncated: bool, deinterlace: str, segment_seconds: float, no_resume: bool, restart: bool, keep_work: bool,
    workers: int, threads: int, ray: str | None, json_out: str | None, quiet: bool,
) -> None:
    """Convert SDR video INPUT to an HDR10 (HEVC Main 10, PQ, BT.2020) file OUTPUT (.mkv, .mp4 or .mov).

    The picture is up-scaled x2 or x4 and inverse tone mapped by JSInet / JSI-GAN;
    timestamps, audio and subtitles are kept. OUTPUT is written to a temporary
    file beside it and only appears when the conversion succeeded.
    """
    from rich.console import Console

    from sdr2hdr.cli.progress import BarProgress, PlainProgress, interval_from_env
    from sdr2hdr.convert import convert

    json_path = _json_target(json_out)
    err = Console(stderr=True)
    reporter: BarProgress | PlainProgress | None = None
    if not quiet:
        reporter = BarProgress(err) if err.is_terminal else PlainProgress(sys.stderr, interval_from_env())
    ok = False
    try:
        options = ConvertOptions(
            model=model, scale=int(scale) if scale else None, gan=gan, device=device,
            precision="fp32" if fp32 else precision, tiling=TilingOptions(tile, tile_pad, batch),
            encode=EncodeOptions(crf, preset, x265_extra, copy_audio=not no_audio, copy_subtitles=not no_subtitles),
            mastering=MasteringOptions(mastering, peak_nits, min_nits, cll), overwrite=overwrite,
            allow_truncated=allow_truncated, deinterlace=deinterlace,
            segments=SegmentOptions(segment_seconds, not no_resume, restart, keep_work, workers, threads, ray),
        )
        summary = convert(input, output, options, progress=reporter)
        ok = True
    finally:
        if reporter is not None:
            reporter.finish(ok)
    for w in summary.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    if json_out is not None:
        _write_json(summary.to_json(), json_path)
    if quiet or json_out == "-":
        return
    _print_summary(summary)


def _json_target(json_out: str | None) -> Path | None:
    """The ``--json`` file (None for stdout or no JSON); its folder must exist before the conversion starts."""
    from sdr2hdr.errors import OutputError

    if json_out is None or json_out == "-":
        return None
    path = Path(json_out)
    if path.is_dir():
        raise OutputError(f"--json {path} is a directory; give a file name (or - for stdout)")
    if not path.parent.is_dir():
        raise OutputError(f"--json: directory does not exist: {path.parent}")
    return path


def _write_json(doc: dict[str, object], path: Path | None) -> None:
    """``doc`` to ``path``, or to stdout when ``path`` is None."""
    from sdr2hdr.errors import OutputError

    text = json.dumps(doc, indent=2) + "\n"
    if path is None:
        click.echo(text, nl=False)
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"--json: cannot write {path}: {exc.strerror or exc}") from None


def _print_summary(s: object) -> None:
    from rich.console import Console
    from rich.table import Table

    from sdr2hdr.outfile import human_size
    from sdr2hdr.summary import ConvertSummary

    assert isinstance(s, ConvertSummary)
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    t.add_row("input", f"{s.input}  ({s.input_description})")
    tile = "whole frame" if s.tile == 0 else f"{s.tile} px tiles"
    t.add_row("output", f"{s.output}  (HEVC Main 10 HDR10 {s.output_size[0]}x{s.output_size[1]}, x{s.scale})")
    sha = f" (sha256 {s.model_sha256[:12]}…)" if s.model_sha256 else ""
    t.add_row("model", f"{s.model}{sha} on {s.device}, {tile} + {s.tile_pad} px pad, batch {s.batch}"
              + (f", {s.oom_retries} out-of-memory retries" if s.oom_retries else ""))
    t.add_row("precision", f"{s.precision} ({s.precision_reason})" if s.precision_reason else s.precision)
    passes = f", {s.passes} passes" if s.passes > 1 else ""
    t.add_row("frames", f"{s.frames} in {s.seconds:.1f} s ({s.fps:.2f} fps{passes})")
    if s.segments_total > 1:
        t.add_row("segments", f"{s.segments_total}: {s.segments_reused} reused, {s.segments_converted} converted"
                  + (f" by {s.workers} workers" if s.workers > 1 else ""))
    t.add_row("size", human_size(s.size_bytes))
    signalled = "signalled as 0,0 (unknown)" if s.signalled_cll == (0, 0) else f"signalled {s.signalled_cll[0]},{s.signalled_cll[1]}"
    where = "HEVC SEI and Matroska Colour element" if s.container_hdr10 else "HEVC SEI"
    t.add_row("mastering", f"peak {s.peak_nits:g} cd/m² (HDR10 metadata in the {where})")
    t.add_row("MaxCLL", f"{s.max_cll:.0f} cd/m², MaxFALL {s.max_fall:.0f} cd/m² (measured on the frames written; {signalled})")
    if s.copied_streams:
        t.add_row("copied", ", ".join(s.copied_streams))
    Console().print(t, highlight=False)
