"""Seconds per 1920x1080 frame for each metric, on CPU and (if available) CUDA.

    python benchmarks/bench_metrics.py [--repeats N] [--threads T]

psnr / ssim / msssim / mpsnr run on synthetic 3 x 1080 x 1920 Y'CbCr planes (10-bit
code values / 1023); hdrvdp on a synthetic 1080 x 1920 luminance pair in cd/m². Each
number is the median of ``--repeats`` timed calls after one warm-up call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

try:
    from sdr2hdr.metrics import METRICS, hdrvdp
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from sdr2hdr.metrics import METRICS, hdrvdp

H, W = 1080, 1920


def _ycbcr_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:H, 0:W]
    smooth = 0.5 + 0.25 * np.sin(xx / 37.0) * np.cos(yy / 23.0)
    ref = np.stack([smooth, 0.5 + 0.05 * (smooth - 0.5), 0.5 - 0.05 * (smooth - 0.5)])
    ref = np.round(np.clip(ref + 0.03 * rng.standard_normal(ref.shape), 0, 1) * 1023) / 1023
    pred = ref + 0.01 * rng.standard_normal(ref.shape)
    return pred, ref


def _luminance_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ramp = np.exp(np.linspace(np.log(0.05), np.log(1000.0), W))[None, :] * np.ones((H, 1))
    ref = ramp * (1.0 + 0.2 * rng.standard_normal((H, W))).clip(0.05)
    test = ref * (1.0 + 0.05 * rng.standard_normal((H, W)))
    return test, ref


def _time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    pred, ref = _ycbcr_pair(rng)
    test_l, ref_l = _luminance_pair(rng)

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows: dict[str, dict[str, float]] = {}
    for dev in devices:
        p, r = torch.from_numpy(pred).to(dev), torch.from_numpy(ref).to(dev)
        tl, rl = torch.from_numpy(test_l).to(dev), torch.from_numpy(ref_l).to(dev)
        for name, fn in METRICS.items():
            rows.setdefault(name, {})[dev] = _time(lambda fn=fn: fn(p, r), args.repeats)
        rows.setdefault("hdrvdp", {})[dev] = _time(lambda: hdrvdp(tl, rl), args.repeats)

    print(f"seconds per {W}x{H} frame (median of {args.repeats}; CPU threads: {torch.get_num_threads()})")
    if torch.cuda.is_available():
        print(f"CUDA device: {torch.cuda.get_device_name()}")
    header = f"{'metric':<8}" + "".join(f"{d:>12}" for d in devices)
    print(header)
    print("-" * len(header))
    for name, by_dev in rows.items():
        print(f"{name:<8}" + "".join(f"{by_dev[d]:>12.3f}" for d in devices))


if __name__ == "__main__":
    main()
