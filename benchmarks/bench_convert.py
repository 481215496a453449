"""End-to-end ``convert`` throughput next to model-only throughput on the same frames.

    python benchmarks/bench_convert.py                         # CPU, 160x90 LR, 24 frames, x2
    python benchmarks/bench_convert.py --device cuda --size 960x540 --frames 96

1. Writes the procedural sample clip (``sdr2hdr.video.sample``) at ``--size``.
2. Model only: decodes every frame into memory, builds the model inputs on
   the device, warms up, then times just the tiled model over all frames in
   the same batches / tiles / precision that ``convert`` uses.
3. End to end: times :func:`sdr2hdr.pipeline.convert` on the same clip with
   the same (already loaded, warm) model: probe, decode, colour conversion,
   model, 4:2:0 quantisation + light-level measurement, x265 encode, mux.

Prints both throughputs (frames/s) and ``ratio = convert / model-only``:
1.0 means the I/O is completely hidden behind the model. The model is a
randomly initialised JSInet (speed does not depend on the weights; nothing
is saved) unless ``--model`` names a registry entry or weights file.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdr2hdr import pipeline  # noqa: E402
from sdr2hdr.tiling import TiledModel  # noqa: E402
from sdr2hdr.video import frames as fr  # noqa: E402
from sdr2hdr.video.probe import probe  # noqa: E402
from sdr2hdr.video.reader import FrameReader  # noqa: E402
from sdr2hdr.video.sample import encode_sdr, render_frame  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="160x90", help="LR frame size WxH (default 160x90)")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--scale", type=int, choices=(2, 4), default=2)
    ap.add_argument("--model", default=None, help="registry name or .safetensors (default: random JSInet)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--tile", type=int, default=0)
    ap.add_argument("--precision", default="auto", help="auto | fp32 | bf16 | fp16 (the convert default: auto)")
    ap.add_argument("--preset", default="medium", help="x265 preset for the convert run (default: the CLI default)")
    ap.add_argument("--repeats", type=int, default=2, help="timed repeats of each measurement (best and median shown)")
    args = ap.parse_args()

    w, h = (int(v) for v in args.size.lower().split("x"))
    device = pipeline.resolve_device(args.device)
    from sdr2hdr.precision import cpu_bf16_capability, resolve_precision

    prec = resolve_precision(args.precision, device)
    print(f"CPU bf16 capability: {cpu_bf16_capability()}; precision {prec.describe()}")
    if args.model:
        from sdr2hdr.zoo import load_model

        net = load_model(args.model, device=device, scale=args.scale)
    else:
        from sdr2hdr.models import JSInet

        torch.manual_seed(0)
        net = JSInet(scale=args.scale).eval().to(device)
    batch = args.batch or (4 if device.type == "cuda" else 1)

    with tempfile.TemporaryDirectory(prefix="bench_convert_") as tmp:
        clip = Path(tmp) / "clip.mp4"
        encode_sdr(clip, (render_frame(i / 24, w, h) for i in range(args.frames)), fps=24,
                   options={"crf": "16", "preset": "fast"}, audio_seconds=args.frames / 24)
        frames = list(FrameReader(probe(clip)))
        n = len(frames)
        runner = TiledModel(net, scale=args.scale, tile=args.tile, device=device, precision=prec)
        inputs = [fr.model_input(frames[i : i + batch], device=device) for i in range(0, n, batch)]
        runner(inputs[0])  # warm-up (and automatic tile choice)
        _sync(device)

        model_times, conv_times, model_cpu, conv_cpu, in_model, fp32_times = [], [], [], [], [], []
        for r in range(args.repeats):  # alternate, so a change in machine load hits both alike
            t0, c0 = time.perf_counter(), time.process_time()
            for x in inputs:
                runner(x)
            _sync(device)
            model_times.append(time.perf_counter() - t0)
            model_cpu.append(time.process_time() - c0)

            out = Path(tmp) / f"out{r}.mkv"
            t0, c0 = time.perf_counter(), time.process_time()
            s = pipeline.convert(clip, out, model=net, scale=args.scale, tile=args.tile or (runner.tile or 0),
                                 batch=batch, device=device, precision=prec.name, preset=args.preset)
            conv_times.append(time.perf_counter() - t0)
            conv_cpu.append(time.process_time() - c0)
            in_model.append(s.model_seconds)
            assert s.frames == n
            if prec.reduced:  # the same convert in IEEE fp32, for the speed-up of the precision switch
                t0 = time.perf_counter()
                pipeline.convert(clip, Path(tmp) / f"fp32_{r}.mkv", model=net, scale=args.scale, tile=args.tile or (runner.tile or 0),
                                 batch=batch, device=device, precision="fp32", preset=args.preset)
                fp32_times.append(time.perf_counter() - t0)

    best_m, best_c = min(model_times), min(conv_times)
    med_m, med_c = statistics.median(model_times), statistics.median(conv_times)
    threads = torch.get_num_threads() if device.type == "cpu" else None
    print(f"device {device} ({prec.name}{f', {threads} torch threads' if threads else ''}), "
          f"{w}x{h} -> {w * args.scale}x{h * args.scale}, {n} frames, batch {batch}, tile {runner.tile}, "
          f"x265 preset {args.preset}")
    print(f"model only : {n / best_m:8.2f} fps (best of {args.repeats}), {n / med_m:8.2f} fps median")
    print(f"convert    : {n / best_c:8.2f} fps (best of {args.repeats}), {n / med_c:8.2f} fps median")
    print(f"ratio convert / model-only: {best_m / best_c:.3f} (best), {med_m / med_c:.3f} (median); goal >= 0.9")
    if fp32_times:
        print(f"convert fp32: {n / min(fp32_times):8.2f} fps (best of {args.repeats}); {prec.name} / fp32 speed-up: "
              f"{min(fp32_times) / best_c:.2f}x (best), {statistics.median(fp32_times) / med_c:.2f}x (median)")
    print(f"time in the model during convert: {min(in_model) / n * 1e3:.1f} ms/frame (model-only run: "
          f"{best_m / n * 1e3:.1f} ms/frame); convert wall time not in the model: {(best_c - min(in_model)) / n * 1e3:.1f} ms/frame")
    # CPU seconds of this process (all threads): on a shared, loaded machine wall time is noisy, while the
    # extra CPU time of convert over the model alone is what the I/O costs.
    print(f"process CPU time per frame: model only {min(model_cpu) / n * 1e3:.1f} ms, convert {min(conv_cpu) / n * 1e3:.1f} ms "
          f"(CPU-time ratio {min(model_cpu) / min(conv_cpu):.3f})")


if __name__ == "__main__":
    main()
