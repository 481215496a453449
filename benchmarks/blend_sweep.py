"""How far the release bar rests on one free parameter: blends of a model with ``bt2408-xS``.

    python benchmarks/blend_sweep.py --testset T --model weights/jsinet-x2.safetensors --scale 2 \
        [--set real|synthetic] [--alphas 0,0.25,0.5,0.75,1] [--metrics psnr,hdrvdp] [--json OUT]

For each ``a`` it scores ``bt2408 + a * (model - bt2408)`` on the test set ``T`` (written by
``sdr2hdr testset``): the blend is taken per Y'CbCr plane on the HDR10 code values / 1023
(BT.2020 NCL, PQ, limited range), clipped to [0, 1], then measured like ``sdr2hdr eval``.
``a = 0`` is bicubic + BT.2408 and ``a = 1`` the model. It prints one Markdown row per ``a``:
the means, their differences to ``a = 0`` and the first frames' values.

Why: on the three held-out real pairs the cameras disagree on how far to expand highlights
(the iPhone frame is almost BT.2408 of its SDR, the Pixel and Canon frames are 3-18x brighter
above SDR white), so a model that hedges between the renditions scores better on their mean than
one that learned the average camera. This is a diagnostic, not a method: ``a`` chosen on the test
frames says nothing about other footage (the model card, session 8).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from sdr2hdr import zoo
from sdr2hdr.errors import Sdr2HdrError, one_line
from sdr2hdr.evaluate import aligned, frame_metrics, iter_mat, parse_metrics
from sdr2hdr.outfile import commit, partial_file

SETS = {"real": "_real", "synthetic": ""}


def blend(base: torch.Tensor, model: torch.Tensor, a: float) -> torch.Tensor:
    """``base + a (model - base)`` on HDR10 Y'CbCr code / 1023, clipped to the code range [0, 1]."""
    return (base + a * (model - base)).clamp(0, 1)


def sweep(model: str, testset: Path, scale: int, subset: str, alphas: list[float], metrics: tuple[str, ...]) -> dict[float, list[dict[str, float]]]:
    """Per-frame metrics of each blend: ``{a: [{metric: value}, ...]}`` in test-set order."""
    net, base = zoo.load(model, scale=scale).module.eval(), zoo.load(f"bt2408-x{scale}").module.eval()
    sfx = SETS[subset]
    sdr = iter_mat(testset / f"testset{sfx}_SDR_x{scale}.mat", "SDR_YUV", 8)
    hdr = iter_mat(testset / f"testset{sfx}_HDR.mat", "HDR_YUV", 10)
    out: dict[float, list[dict[str, float]]] = {a: [] for a in alphas}
    for _, x, ref in aligned(sdr, hdr, names=("SDR input", "reference")):
        with torch.no_grad():
            m, b = net(x[None].float())[0].float(), base(x[None].float())[0].float()
        for a in alphas:
            out[a].append(frame_metrics(blend(b, m, a), ref, metrics))
    return out


def rows(result: dict[float, list[dict[str, float]]], metrics: tuple[str, ...], frames: int = 3) -> list[str]:
    """Markdown table: per ``a`` the mean of each metric, its difference to ``a = 0``, the first frames."""
    mean = {a: {k: sum(f[k] for f in fr) / len(fr) for k in metrics} for a, fr in result.items()}
    ref = mean.get(0.0)
    head = " | ".join(metrics)
    lines = [f"| a | {head} | vs a=0 | first frames |", "| --- | " + "--- | " * len(metrics) + "--- | --- |"]
    for a in sorted(result):
        vals = " | ".join(f"{mean[a][k]:.3f}" for k in metrics)
        diff = ", ".join(f"{mean[a][k] - ref[k]:+.2f}" for k in metrics) if ref is not None else "-"
        first = "; ".join(" / ".join(f"{f[k]:.2f}" for k in metrics) for f in result[a][:frames])
        lines.append(f"| {a:g} | {vals} | {diff} | {first} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--testset", type=Path, required=True, help="folder written by `sdr2hdr testset`")
    ap.add_argument("--model", required=True, help="a weights file or a registered name")
    ap.add_argument("--scale", type=int, choices=(2, 4), required=True)
    ap.add_argument("--set", dest="subset", choices=sorted(SETS), default="real")
    ap.add_argument("--alphas", default="0,0.25,0.5,0.75,1", help="comma-separated blend weights of the model")
    ap.add_argument("--metrics", default="psnr,hdrvdp")
    ap.add_argument("--json", type=Path, help="also write {alpha: per-frame metrics} here")
    args = ap.parse_args(argv)
    try:
        alphas = sorted({float(a) for a in args.alphas.split(",") if a.strip()})
        metrics = parse_metrics(args.metrics)
        result = sweep(args.model, args.testset, args.scale, args.subset, alphas, metrics)
        print("\n".join(rows(result, metrics)))
        if args.json:
            with partial_file(args.json) as tmp:  # never a half-written file (signals, a full disk)
                tmp.write_text(json.dumps({str(a): fr for a, fr in result.items()}, indent=1) + "\n")
                commit(tmp, args.json)
    except (Sdr2HdrError, ValueError, OSError) as exc:
        print(f"blend_sweep: {one_line(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
