"""The scale-out figures of ``bench_convert.py --scale-out`` (segmented conversions, :mod:`sdr2hdr.segments`).

1. **Workers vs threads**: the same clip (a keyframe every second, so
   ``--segment-seconds 1`` gives one segment per second) converted by
   ``sdr2hdr convert`` in a child process, (a) in one pass with one process
   and ``OMP_NUM_THREADS=2`` torch threads, (b) with ``--workers 2 --threads 1``;
   prints both wall times and the ratio (a) / (b) (above 1: the workers win).
2. **Resume cost**: a ``--keep-work`` run, then the same command again: every
   segment is verified against its sha256 and reused. Prints the time to hash
   the N finished segments alone (MB/s) and the whole rerun (verify + join +
   publish), per segment.
3. **FLOPs per frame** of the model (``torch.utils.flop_counter``: convolutions and
   matrix products, one multiply-add = 2 FLOP) at the clip's and at 1920x1080 LR
   size: the basis of the README's scale-out arithmetic where no GPU was measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from sdr2hdr.segments.manifest import file_sha256
from sdr2hdr.segments.workdir import work_path
from sdr2hdr.video.sample import encode_sdr, render_frame


def model_flops_per_lr_pixel(net: torch.nn.Module, size: int = 64) -> float:
    """FLOP per LR pixel of one forward pass (convolutions and matrix products; multiply-add = 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(1, 3, size, size, device=next(net.parameters()).device)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        net(x)
    return fc.get_total_flops() / (size * size)


def _convert(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Wall seconds of one ``sdr2hdr convert`` child process (exit on failure)."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "sdr2hdr", "convert", *args, "-q", "--overwrite"], cwd=cwd,
                       env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"convert failed: {r.stderr.strip()}")
    return time.perf_counter() - t0


def scale_out(tmp: Path, w: int, h: int, frames: int, model: str, preset: str, precision: str) -> None:
    """Print the three figures of the module doc for a ``w`` x ``h`` clip of ``frames`` frames."""
    clip = tmp / "keyed.mp4"
    encode_sdr(clip, (render_frame(i / 24, w, h) for i in range(frames)), fps=24,
               options={"crf": "16", "preset": "fast", "x264-params": "keyint=24:min-keyint=24:scenecut=0"})
    common = [str(clip), "out.mkv", "--model", model, "--preset", preset, "--precision", precision]
    one = _convert([*common, "--no-resume"], tmp, {"OMP_NUM_THREADS": "2"})
    two = _convert([*common, "--segment-seconds", "1", "--workers", "2", "--threads", "1"], tmp)
    print(f"scale-out, {frames} frames {w}x{h}: one process x 2 threads {one:.1f} s ({frames / one:.2f} fps); "
          f"--workers 2 --threads 1 {two:.1f} s ({frames / two:.2f} fps); ratio {one / two:.2f}")
    _convert([*common, "--segment-seconds", "1", "--keep-work"], tmp)
    segs = sorted(work_path(tmp / "out.mkv").glob("seg-*.mp4"))
    t0 = time.perf_counter()
    for s in segs:
        file_sha256(s)
    verify = time.perf_counter() - t0
    mb = sum(s.stat().st_size for s in segs) / 1e6
    rerun = _convert([*common, "--segment-seconds", "1"], tmp)
    print(f"resume: verifying {len(segs)} finished segments ({mb:.1f} MB) takes {verify * 1e3:.1f} ms "
          f"({mb / max(verify, 1e-9):.0f} MB/s); the whole rerun (start-up, verify, join, publish) {rerun:.1f} s")


def flops_report(net: torch.nn.Module, w: int, h: int, scale: int) -> None:
    """FLOP per frame of ``net`` at ``w`` x ``h`` and at 1920x1080 LR, in TFLOP."""
    per_px = model_flops_per_lr_pixel(net)
    print(f"model FLOPs (conv + matmul, multiply-add = 2): {per_px / 1e6:.2f} MFLOP per LR pixel; "
          f"{per_px * w * h / 1e12:.4f} TFLOP per {w}x{h} frame; {per_px * 1920 * 1080 / 1e12:.2f} TFLOP per "
          f"1920x1080 frame (-> {1920 * scale}x{1080 * scale})")
