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
@click.option("--real-size", default="960x640", show_default=True, metavar="WxH", help="HR crop per held-out real pair (multiples of 8).")
@click.option("--heldout", "heldout", multiple=True, metavar="SCENE",
              help="Hold out this scene besides the hash rule (repeatable; use the same as for train).")
@click.option("--seed", type=int, default=0, show_default=True)
def testset_cmd(data: tuple[Path, ...], out: Path, size: str, real_size: str, heldout: tuple[str, ...], seed: int) -> None:
    """Synthesise full-size SDR/HDR10 pairs from the held-out stills of --data (one per tone-mapping operator)
    and crop the held-out real SDR/HDR pairs (testset_real_*.mat)."""
    from sdr2hdr.data.testset import write_testset

    w, h = _size(size, "--size")
    rw, rh = _size(real_size, "--real-size")
    manifest = write_testset(data, out, height=h, width=w, seed=seed, heldout=heldout, real_height=rh, real_width=rw)
    for key, label in ((None, "synthetic"), ("real", "real-pair")):
        part = manifest if key is None else manifest.get(key)
        if isinstance(part, dict) and "frames" in part:
            click.echo(f"wrote {len(part['frames'])} {label} frames of {len(part['scenes'])} held-out scenes to {out}: "
                       + ", ".join(part["scenes"]))


def _size(text: str, hint: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WxH, got {text!r}", param_hint=hint) from None
    return w, h
