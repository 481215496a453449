"""``sdr2hdr testset``: write the held-out evaluation set (authors' .mat layout)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("testset")
@click.option("--data", "data", multiple=True, required=True, type=click.Path(path_type=Path),
              help="The training data folders (repeatable); their held-out stills become the test set.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Folder for testset_HDR.mat, testset_SDR_x2.mat, testset_SDR_x4.mat and testset.json.")
@click.option("--size", default="480x320", show_default=True, metavar="WxH", help="HR crop per scene (multiples of 8).")
@click.option("--seed", type=int, default=0, show_default=True)
def testset_cmd(data: tuple[Path, ...], out: Path, size: str, seed: int) -> None:
    """Synthesise full-size SDR/HDR10 pairs from the held-out scenes of --data, one per tone-mapping operator."""
    from sdr2hdr.data.testset import write_testset

    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WxH, got {size!r}", param_hint="--size") from None
    manifest = write_testset(data, out, height=h, width=w, seed=seed)
    click.echo(f"wrote {len(manifest['frames'])} frames of {len(manifest['scenes'])} held-out scenes to {out}: "
               + ", ".join(manifest["scenes"]))  # type: ignore[arg-type]
