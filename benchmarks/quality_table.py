"""The model card's results table from the ``eval*.json`` files of a recipe run.

    python benchmarks/quality_table.py runs/recipe

Reads ``RUNS/eval-xS-NAME.json`` (synthetic test set) and ``RUNS/eval_real-xS-NAME.json``
(held-out real pairs), written by ``sdr2hdr eval --json`` and ``benchmarks/peer_libplacebo.py``,
and prints one Markdown table per scale and set: PSNR / SSIM / mPSNR / HDR-VDP Q and the
PSNR and Q differences to ``bt2408-xS`` (the release bar's reference).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ORDER = ["bt2408", "inverse-reinhard", "libplacebo-spline", "libplacebo-auto", "jsinet", "jsigan"]
SETS = {"": "synthetic test set", "_real": "held-out real pairs"}


def _rank(name: str) -> int:
    for i, key in enumerate(ORDER):
        if name.startswith(key):
            return i
    return len(ORDER)


def load(runs: Path) -> dict[tuple[str, int], dict[str, dict[str, float]]]:
    """``{(set, scale): {name: means}}`` from the eval JSON files of ``runs``."""
    out: dict[tuple[str, int], dict[str, dict[str, float]]] = {}
    for f in sorted(runs.glob("eval*-x*-*.json")):
        m = re.fullmatch(r"eval(_real)?-x(\d)-(.+)\.json", f.name)
        if not m:
            continue
        means = json.loads(f.read_text()).get("means") or {}
        out.setdefault((m.group(1) or "", int(m.group(2))), {})[m.group(3)] = means
    return out


def table(rows: dict[str, dict[str, float]], scale: int) -> list[str]:
    refname = next((n for n in rows if n.startswith("bt2408")), "")
    ref = rows.get(refname, {})
    lines = ["| model | PSNR | SSIM | mPSNR | HDR-VDP Q | PSNR vs bt2408 | Q vs bt2408 |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in sorted(rows, key=lambda n: (_rank(n), n)):
        r = rows[name]
        fmt = lambda k, p: f"{r[k]:.{p}f}" if k in r else "-"  # noqa: E731
        dp = f"{r['psnr'] - ref['psnr']:+.2f}" if "psnr" in r and "psnr" in ref and name != refname else ""
        dq = f"{r['hdrvdp'] - ref['hdrvdp']:+.2f}" if "hdrvdp" in r and "hdrvdp" in ref and name != refname else ""
        lines.append(f"| {name} | {fmt('psnr', 2)} | {fmt('ssim', 4)} | {fmt('mpsnr', 2)} | {fmt('hdrvdp', 2)} | {dp} | {dq} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    data = load(Path(args[0]))
    if not data:
        print(f"error: no eval*-xS-NAME.json files in {args[0]}", file=sys.stderr)
        return 1
    for (kind, scale) in sorted(data, key=lambda k: (k[1], k[0])):
        print(f"\nx{scale}, {SETS[kind]}:\n")
        print("\n".join(table(data[(kind, scale)], scale)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
