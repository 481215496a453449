"""End-to-end ``convert`` throughput and peak memory next to model-only throughput on the same frames.

    python benchmarks/bench_convert.py                         # CPU, 160x90 LR, 24 frames, x2
    python benchmarks/bench_convert.py --device cuda --size 960x540 --frames 96
    python benchmarks/bench_convert.py --size 1920x1080 --scale 2 --model bt2408-x2 --frames 48 --no-model-only

1. Writes the procedural sample clip (``sdr2hdr.video.sample``) at ``--size``.
2. Model only (in this process; ``--no-model-only`` skips it): decodes every
   frame into memory, builds the model inputs on the device, warms up, then
   times just the tiled model over all frames in the same batches / tiles /
   precision that ``convert`` uses.
3. End to end, each repeat **in a child process of its own**: loads the
   same model (on CUDA warms it up on one batch), then times
   :func:`sdr2hdr.convert.convert` on the clip (probe, decode, colour
   conversion, model, 4:2:0 quantisation + light-level measurement, x265
   encode, mux). The child's peak RSS (``ru_maxrss`` from ``os.wait4``: the
   whole process, libx265's buffers included) is reported per run, so runs
   do not inherit each other's memory.

Prints both throughputs (frames/s), ``ratio = convert / model-only`` (1.0
means the I/O is completely hidden behind the model) and the peak RSS of
every convert run in MB (2**20 bytes). With ``--size 1920x1080 --scale 2``
on CPU it also prints the memory goal (under 3000 MB) and whether it is met.
libx265 holds more frames the longer the clip, up to its look-ahead (10
frames at 4K after the cap in :mod:`sdr2hdr.memory`): use ``--frames 40`` or
more for a steady-state figure. The model is a randomly initialised JSInet
(speed and memory do not depend on the weights; nothing is saved) unless
``--model`` names a registry entry or weights file.

``--scale-out`` adds the segmented-conversion figures of ``benchmarks/scale_out.py``:
one process with 2 threads vs ``--workers 2 --threads 1`` (ratio), the cost of
resuming (verifying N finished segments), and the model's FLOPs per frame.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdr2hdr.convert import convert  # noqa: E402
from sdr2hdr.convert_options import ConvertOptions  # noqa: E402
from sdr2hdr.inference.device import resolve_device  # noqa: E402
from sdr2hdr.inference.tiling import TiledModel  # noqa: E402
from sdr2hdr.inference.model_io import model_input  # noqa: E402
from sdr2hdr.video.probe import probe  # noqa: E402
from sdr2hdr.video.reader import FrameReader  # noqa: E402
from sdr2hdr.video.sample import encode_sdr, render_frame  # noqa: E402

#: Peak RSS goal of a 1920x1080 -> 3840x2160 (x2) conversion on CPU, MB.
GOAL_MB = 3000


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _load_net(model: str | None, scale: int, device: torch.device) -> torch.nn.Module:
    """The registry / file model, or a seeded random JSInet."""
    if model:
        from sdr2hdr.zoo import load_model

        return load_model(model, device=device, scale=scale)
    from sdr2hdr.models import JSInet

    torch.manual_seed(0)
    return JSInet(scale=scale).eval().to(device)


def _child(cfg: dict) -> None:
    """One timed convert in this (fresh) process; prints its timings as one JSON line.

    On CUDA the model is warmed up on one batch first (cuDNN autotuning per tile shape); on CPU
    nothing runs before the convert, so the peak RSS is that of a plain ``sdr2hdr convert``.
    """
    device = resolve_device(cfg["device"])
    net = _load_net(cfg["model"], cfg["scale"], device)
    clip = Path(cfg["clip"])
    if device.type == "cuda":
        first = [f for _, f in zip(range(cfg["batch"]), FrameReader(probe(clip)))]
        warm = TiledModel(net, scale=cfg["scale"], tile=cfg["tile"], device=device, precision=cfg["precision"])
        warm(model_input(first, device=device))
        _sync(device)
        del first, warm
    t0, c0 = time.perf_counter(), time.process_time()
    opts = ConvertOptions.build(model=net, scale=cfg["scale"], tile=cfg["tile"], batch=cfg["batch"], device=str(device),
                                precision=cfg["precision"], preset=cfg["preset"], overwrite=True)
    s = convert(clip, Path(cfg["out"]), opts)
    print(json.dumps({"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0,
                      "model_seconds": s.model_seconds, "frames": s.frames}), flush=True)


def _run_child(cfg: dict) -> tuple[dict, float]:
    """Run :func:`_child` in a new process: (its JSON result, its peak RSS in MB)."""
    p = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(cfg)], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise SystemExit(f"convert child failed (exit {p.returncode})")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024  # Linux: KiB


def _model_only(net: torch.nn.Module, clip: Path, args: argparse.Namespace, device: torch.device,
                prec: object, batch: int) -> tuple[TiledModel, list[tuple[float, float]]]:
    """The tiled model alone over every frame, ``args.repeats`` times: [(wall s, process CPU s)].

    With ``--no-model-only`` nothing runs: only the automatic tile is chosen, for the children.
    """
    runner = TiledModel(net, scale=args.scale, tile=args.tile, device=device, precision=prec)  # type: ignore[arg-type]
    if args.no_model_only:
        info = probe(clip)
        runner.tile = runner.tile or runner.auto_tile(info.height, info.width, batch)
        return runner, []
    frames = list(FrameReader(probe(clip)))
    inputs = [model_input(frames[i : i + batch], device=device) for i in range(0, len(frames), batch)]
    runner(inputs[0])  # warm-up (and automatic tile choice)
    _sync(device)
    times = []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for x in inputs:
            runner(x)
        _sync(device)
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    return runner, times


def _args() -> argparse.Namespace:
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
    ap.add_argument("--no-model-only", action="store_true", help="skip the model-only timing (memory figures only)")
    ap.add_argument("--scale-out", action="store_true",
                    help="also: 2 threads vs --workers 2 --threads 1, the resume cost, FLOPs per frame")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return ap.parse_args()


def main() -> None:
    args = _args()
    if args.child:
        _child(json.loads(args.child))
        return
    w, h = (int(v) for v in args.size.lower().split("x"))
    device = resolve_device(args.device)
    from sdr2hdr.precision import cpu_bf16_capability, resolve_precision

    prec = resolve_precision(args.precision, device)
    print(f"CPU bf16 capability: {cpu_bf16_capability()}; precision {prec.describe()}")
    net = _load_net(args.model, args.scale, device)
    batch = args.batch or (4 if device.type == "cuda" else 1)

    with tempfile.TemporaryDirectory(prefix="bench_convert_") as tmp:
        clip = Path(tmp) / "clip.mp4"
        encode_sdr(clip, (render_frame(i / 24, w, h) for i in range(args.frames)), fps=24,
                   options={"crf": "16", "preset": "fast"}, audio_seconds=args.frames / 24)
        runner, model_runs = _model_only(net, clip, args, device, prec, batch)
        n = probe(clip).frames_estimate or args.frames
        cfg = {"clip": str(clip), "model": args.model, "scale": args.scale, "tile": args.tile or (runner.tile or 0),
               "batch": batch, "device": str(device), "precision": prec.name, "preset": args.preset}
        conv, peaks, fp32 = [], [], []
        for r in range(args.repeats):  # children one after the other: a change in machine load hits all alike
            res, peak = _run_child({**cfg, "out": str(Path(tmp) / f"out{r}.mkv")})
            conv.append(res)
            peaks.append(peak)
            n = res["frames"]
            if prec.reduced:  # the same convert in IEEE fp32, for the speed-up of the precision switch
                fp32.append(_run_child({**cfg, "precision": "fp32", "out": str(Path(tmp) / f"fp32_{r}.mkv")}))
    _report(args, device, prec, w, h, n, batch, runner.tile, model_runs, conv, peaks, fp32)
    if args.scale_out:
        _scale_out(args, net, w, h)


def _scale_out(args: argparse.Namespace, net: torch.nn.Module, w: int, h: int) -> None:
    """The segmented-conversion figures (benchmarks/scale_out.py) with this model saved as weights."""
    from scale_out import flops_report, scale_out

    from sdr2hdr.zoo import save_weights

    if any(True for _ in net.parameters()):
        flops_report(net, w, h, args.scale)
    with tempfile.TemporaryDirectory(prefix="bench_scale_out_") as tmp:
        model = args.model
        if not model:  # the random JSInet, as a weights file for the CLI children
            model = str(Path(tmp) / "net.safetensors")
            save_weights(net.cpu(), Path(model), architecture="jsinet", scale=args.scale, variant="jsinet",
                         recipe="random (benchmark only)")
        scale_out(Path(tmp), w, h, max(args.frames, 48), model, args.preset, args.precision)


def _report(args: argparse.Namespace, device: torch.device, prec: object, w: int, h: int, n: int, batch: int,
            tile: int | None, model_runs: list[tuple[float, float]], conv: list[dict], peaks: list[float],
            fp32: list[tuple[dict, float]]) -> None:
    """Print the figures (frames/s, ratios, CPU time, peak RSS in MB)."""
    name = prec.name  # type: ignore[attr-defined]
    threads = torch.get_num_threads() if device.type == "cpu" else None
    print(f"device {device} ({name}{f', {threads} torch threads' if threads else ''}), "
          f"{w}x{h} -> {w * args.scale}x{h * args.scale}, {n} frames, batch {batch}, tile {tile}, "
          f"x265 preset {args.preset}, model {args.model or 'random JSInet'}")
    conv_t = [c["seconds"] for c in conv]
    best_c, med_c = min(conv_t), statistics.median(conv_t)
    if model_runs:
        best_m, med_m = min(t for t, _ in model_runs), statistics.median(t for t, _ in model_runs)
        print(f"model only : {n / best_m:8.2f} fps (best of {len(model_runs)}), {n / med_m:8.2f} fps median")
    print(f"convert    : {n / best_c:8.2f} fps (best of {len(conv_t)}), {n / med_c:8.2f} fps median")
    if model_runs:
        print(f"ratio convert / model-only: {best_m / best_c:.3f} (best), {med_m / med_c:.3f} (median); goal >= 0.9")
        print(f"time in the model during convert: {min(c['model_seconds'] for c in conv) / n * 1e3:.1f} ms/frame "
              f"(model-only run: {best_m / n * 1e3:.1f} ms/frame); convert wall time not in the model: "
              f"{(best_c - min(c['model_seconds'] for c in conv)) / n * 1e3:.1f} ms/frame")
        # CPU seconds (all threads): on a shared, loaded machine wall time is noisy, while the
        # extra CPU time of convert over the model alone is what the I/O costs.
        cpu_m, cpu_c = min(c for _, c in model_runs), min(c["cpu"] for c in conv)
        print(f"process CPU time per frame: model only {cpu_m / n * 1e3:.1f} ms, convert {cpu_c / n * 1e3:.1f} ms "
              f"(CPU-time ratio {cpu_m / cpu_c:.3f})")
    if fp32:
        f_t = [r["seconds"] for r, _ in fp32]
        print(f"convert fp32: {n / min(f_t):8.2f} fps (best of {len(f_t)}); {name} / fp32 speed-up: "
              f"{min(f_t) / best_c:.2f}x (best), {statistics.median(f_t) / med_c:.2f}x (median); "
              f"peak RSS {', '.join(f'{p:.0f}' for _, p in fp32)} MB")
    print(f"peak RSS of each convert run (child process, MB): {', '.join(f'{p:.0f}' for p in peaks)}")
    if (w, h, args.scale, device.type) == (1920, 1080, 2, "cpu"):
        verdict = "met" if max(peaks) < GOAL_MB else "missed"
        print(f"memory goal 1920x1080 -> 3840x2160 x2 on CPU: peak RSS {max(peaks):.0f} MB, goal < {GOAL_MB} MB: "
              f"{verdict} ({n} frames; libx265 holds up to its look-ahead, so 40+ frames give the steady state)")


if __name__ == "__main__":
    main()
