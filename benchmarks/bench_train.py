"""Training throughput: optimiser steps per second and data-loader batches per second, in one run.

    python benchmarks/bench_train.py [--data ../shared/data/stills] [--device auto] [--steps 10]

Measures, for JSInet x2 with batch 8 of 80x80 LR patches (160x160 HR), on
the available device (CUDA: bf16 autocast + channels_last, as ``sdr2hdr
train`` runs):

1. ``step``: JSInet (stage 1) optimiser steps per second on a batch already
   on the device (compute only); ``--gan`` adds the JSI-GAN step (G, D1, D2);
2. ``loader``: batches per second of the training DataLoader (patch sampling
   + the SDR synthesis of :mod:`sdr2hdr.data.degrade`, ``--workers`` worker
   processes, the trainer's default when omitted), with nothing consuming them;
3. ``ratio = loader / step``: must be >= 2 for the loader never to be the
   bottleneck (exit status 1 otherwise);
4. ``fed``: steps per second when the loader feeds the steps (both at once).

Prints a table and, with ``--json PATH``, writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sdr2hdr.data.collect import collect_sources  # noqa: E402
from sdr2hdr.data.patches import StepBatchSampler, TrainPatches  # noqa: E402
from sdr2hdr.models import Discriminator, JSInet  # noqa: E402
from sdr2hdr.training.batches import ignore_signals_in_worker  # noqa: E402
from sdr2hdr.training.steps import jsigan_step, jsinet_step  # noqa: E402


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _loader(ds: TrainPatches, start: int, n: int, batch: int, workers: int, cuda: bool) -> torch.utils.data.DataLoader:
    kw = {"worker_init_fn": ignore_signals_in_worker, "prefetch_factor": 4} if workers > 0 else {}
    return torch.utils.data.DataLoader(ds, batch_sampler=StepBatchSampler(start, start + n, batch), num_workers=workers, pin_memory=cuda, **kw)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(os.environ.get("SDR2HDR_SHARED", REPO.parent / "shared")) / "data" / "stills"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--hr-patch", type=int, default=160)
    ap.add_argument("--steps", type=int, default=10, help="timed steps (after --warmup)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--loader-batches", type=int, default=None, help="timed loader batches (default: 4 x steps, at least 20)")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: the trainer's: 0 on CPU, up to 8 on CUDA)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for the CPU step (default: torch's)")
    ap.add_argument("--gan", action="store_true", help="also time the JSI-GAN step")
    ap.add_argument("--no-amp", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)

    dev = torch.device("cuda" if (a.device == "auto" and torch.cuda.is_available()) else ("cpu" if a.device == "auto" else a.device))
    cuda = dev.type == "cuda"
    if a.threads:
        torch.set_num_threads(a.threads)
    workers = a.workers if a.workers is not None else (min(8, max(1, (os.cpu_count() or 2) - 1)) if cuda else 0)
    from sdr2hdr.precision import Precision, cpu_bf16_capability, resolve_precision

    prec = resolve_precision("fp32" if a.no_amp else "auto", dev)
    autocast = prec.autocast
    amp = prec.reduced
    lr_side = a.hr_patch // a.scale
    print(f"CPU bf16 capability: {cpu_bf16_capability()}; training precision (auto): {prec.describe()}")

    t0 = time.perf_counter()
    spec = collect_sources([a.data], a.scale, hr_patch=a.hr_patch)
    ds = TrainPatches(spec.train, scale=a.scale, seed=0, hr_patch=a.hr_patch)
    setup_s = time.perf_counter() - t0

    # 1. compute-only step rate, fp32 and the reduced precision in the same run (alternating blocks)
    sdr, hdr = next(iter(_loader(ds, 10_000, 1, a.batch, 0, False)))
    x = sdr.to(dev).float() / 255
    y = hdr.to(dev).float() / 1023
    if cuda:
        x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
    precs = [Precision("fp32", dev.type, "compare")] + ([prec] if prec.reduced else [])
    models = {}
    for p in precs:
        torch.manual_seed(0)
        g = JSInet(a.scale).to(dev)
        g = g.to(memory_format=torch.channels_last) if cuda else g
        models[p.name] = (g, torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.9, 0.999)), p.autocast)
        for _ in range(a.warmup):
            jsinet_step(g, models[p.name][1], x, y, 1e-4, autocast=p.autocast)
    spent = {p.name: 0.0 for p in precs}
    for _ in range(a.steps):
        for name, (g, opt, ac) in models.items():
            _sync(dev)
            t = time.perf_counter()
            jsinet_step(g, opt, x, y, 1e-4, autocast=ac)
            _sync(dev)
            spent[name] += time.perf_counter() - t
    rates = {k: a.steps / v for k, v in spent.items()}
    g, opt, _ = models[prec.name]
    step_rate = rates[prec.name]

    gan_rate = None
    if a.gan:
        d1, d2 = Discriminator().to(dev), Discriminator().to(dev)
        opts = [torch.optim.Adam(m.parameters(), lr=1e-6) for m in (g, d1, d2)]
        for _ in range(a.warmup):
            jsigan_step(g, d1, d2, *opts, x, y, 1e-6, autocast=autocast)
        _sync(dev)
        t = time.perf_counter()
        for _ in range(a.steps):
            jsigan_step(g, d1, d2, *opts, x, y, 1e-6, autocast=autocast)
        _sync(dev)
        gan_rate = a.steps / (time.perf_counter() - t)

    # 2. loader rate alone (workers started and warm before timing)
    nb = a.loader_batches or max(20, 4 * a.steps)
    it = iter(_loader(ds, 0, nb + 2 * max(1, workers), a.batch, workers, cuda))
    for _ in range(2 * max(1, workers)):
        next(it)
    t = time.perf_counter()
    for _ in range(nb):
        next(it)
    loader_rate = nb / (time.perf_counter() - t)
    del it

    # 4. loader feeding the steps
    it = iter(_loader(ds, 100_000, a.steps + a.warmup, a.batch, workers, cuda))
    for i in range(a.steps + a.warmup):
        if i == a.warmup:
            _sync(dev)
            t = time.perf_counter()
        s, h = next(it)
        xs, ys = s.to(dev, non_blocking=True).float() / 255, h.to(dev, non_blocking=True).float() / 1023
        if cuda:
            xs, ys = xs.contiguous(memory_format=torch.channels_last), ys.contiguous(memory_format=torch.channels_last)
        jsinet_step(g, opt, xs, ys, 1e-4, autocast=autocast)
    _sync(dev)
    fed_rate = a.steps / (time.perf_counter() - t)
    del it

    ratio = loader_rate / step_rate
    res = {
        "device": torch.cuda.get_device_name(dev) if cuda else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "scale": a.scale, "batch": a.batch, "lr_patch": lr_side, "hr_patch": a.hr_patch, "amp_bf16": amp, "channels_last": cuda,
        "workers": workers, "data": a.data, "train_scenes": sum(len(s.names) for s in spec.train), "setup_s": round(setup_s, 2),
        "step_per_s": step_rate, "samples_per_s": step_rate * a.batch, "gan_step_per_s": gan_rate,
        "loader_batches_per_s": loader_rate, "loader_patches_per_s": loader_rate * a.batch,
        "loader_over_step": ratio, "fed_step_per_s": fed_rate, "torch": torch.__version__,
        "precision": prec.name, "step_per_s_by_precision": rates, "cpu_bf16_capability": cpu_bf16_capability(),
    }
    print(f"device            {res['device']}")
    for name, r in rates.items():
        print(f"JSInet x{a.scale} {name:5s}  {r:8.3f} steps/s  ({r * a.batch:.1f} patches/s, batch {a.batch} of {lr_side}x{lr_side})")
    if len(rates) > 1:
        print(f"speed-up {prec.name} vs fp32: {rates[prec.name] / rates['fp32']:.2f}x (same run, alternating steps)")
    if gan_rate is not None:
        print(f"JSI-GAN step      {gan_rate:8.3f} steps/s")
    print(f"data loader       {loader_rate:8.3f} batches/s ({loader_rate * a.batch:.1f} patches/s, {workers} workers)")
    print(f"loader / step     {ratio:8.2f}  ({'OK' if ratio >= 2 else 'LOADER-BOUND'}: must be >= 2)")
    print(f"loader-fed steps  {fed_rate:8.3f} steps/s")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    return 0 if ratio >= 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
