"""``sdr2hdr preview``: one frame through the model as a three-panel PNG.

The command only parses options and reports; :func:`sdr2hdr.preview.preview` does the work.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("preview")
@click.argument("input", type=click.Path(path_type=Path, dir_okay=True))
@click.option("--at", "at", type=float, default=None, metavar="SECONDS",
              help="Time of the frame, seconds from the start of the video: the first frame at or after it "
                   "[default: the middle of the clip].")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=True), default=Path("preview.png"),
              show_default=True, help="The PNG to write (replaced if it exists).")
@click.option("--model", "model", metavar="NAME|PATH", default=None,
              help="Registry name or .safetensors file, as for convert [default: jsinet-x2].")
@click.option("--scale", type=click.Choice(["2", "4"]), default=None,
              help="Up-scaling factor [default: the model's own].")
@click.option("--gan", is_flag=True, help="Use the JSI-GAN weights instead of JSInet.")
@click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda[:N]", help="Where the model runs.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="As for convert: auto is fp16 on CUDA, bf16 on a CPU with AMX / AVX512-BF16, else fp32.")
@click.option("--tile", type=click.IntRange(min=0), default=0, show_default=True,
              help="Tile side in low-resolution pixels; 0 = automatic.")
def preview_cmd(input: Path, at: float | None, output: Path, model: str | None, scale: str | None, gan: bool,
                device: str, precision: str, tile: int) -> None:
    """Write a PNG of one frame of SDR video INPUT: the SDR input, the HDR result tone-mapped for this
    screen, and a false-colour map of the HDR luminance (cd/m²) with its peak and mean.

    The frame goes through the same model, tiling and precision as 'convert'.
    """
    from sdr2hdr.preview import preview

    res = preview(input, output, at=at, model=model, scale=int(scale) if scale else None, gan=gan, device=device,
                  precision=precision, tile=tile)
    for w in res.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(res.line())
