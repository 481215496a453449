"""``sdr2hdr sample``: a small procedural SDR clip to try ``convert`` on (:func:`sdr2hdr.video.sample.write_sample`)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("sample")
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--seconds", type=click.FloatRange(min=0.05, max=600), default=2.0, show_default=True)
@click.option("--fps", type=click.FloatRange(min=1, max=240), default=24.0, show_default=True)
@click.option("--size", default="320x180", show_default=True, metavar="WxH", help="Frame size (even numbers).")
@click.option("--no-audio", is_flag=True, help="Leave out the 440 Hz stereo AAC tone.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def sample_cmd(output: Path, seconds: float, fps: float, size: str, no_audio: bool, overwrite: bool) -> None:
    """Write a small procedural SDR clip OUTPUT (H.264, BT.709 limited, yuv420p) to try 'convert' on."""
    from sdr2hdr.video.sample import write_sample

    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WxH, got {size!r}", param_hint="--size") from None
    n = write_sample(output, seconds=seconds, fps=fps, width=w, height=h, audio=not no_audio, overwrite=overwrite)
    click.echo(f"wrote {output}: {n} frames, {w}x{h}, {fps:g} fps, H.264 BT.709 SDR" + ("" if no_audio else " with AAC audio"))

