"""Benchmark JSInet forward: full network vs the convolution stack alone.

    python benchmarks/bench_model.py                      # CPU, 1x3x256x448 LR (a 1080p tile), x2 and x4, fp32 and bf16
    python benchmarks/bench_model.py --device cuda        # CUDA, 1x3x540x960 LR, fp32/fp16/bf16
    python benchmarks/bench_model.py --ops                # also time the dynamic-filter variants
    python benchmarks/bench_model.py --dynfilter --no-net # fused (compiled) vs tap-loop dynamic filtering only
    python benchmarks/bench_model.py --device cuda --impls taploop fused   # fps and GPU kernels per frame of each

For each scale: warm-up, then N timed forwards under ``torch.inference_mode``,
alternating (a) the full JSInet and (b) the same network with
``conv_only=True`` (guided filter + every convolution, no softmax / dynamic
filtering / sigmoid / combination).  Prints the medians, their ratio
full/conv-only, and the best-of-N times and ratio (robust to a loaded machine).
On CPU under fp32 and bf16 autocast (JSInet's inference policy: only the LCE subnet
keeps bf16, see ``INFERENCE_REDUCED_SUBNETS``; ``--bf16-all`` times every subnet in bf16
too), with the bf16/fp32 speed-up of each scale; on CUDA under fp16 and bf16 autocast
(channels_last with ``--channels-last``). The first line says what the CPU offers
(AMX / AVX512-BF16 / none).

Each network line names the dynamic-filter implementation it ran (``--impls``, default the
tap loop on CPU, both on CUDA; see ``sdr2hdr.models.dynfilter``) and its frames per second;
on CUDA also the GPU kernels one forward launches (memcpy / memset not counted).

``--ops`` times the dynamic filters alone: the tap loop, im2col (unfold) + einsum and the
fused (compiled) kernels, on the filter tensors of the same input size.  ``--dynfilter``
times what one forward filters (LCE softmax 9x9 + DR 41+41, filters in the dtype the network
gives them at inference) fused vs tap loop, with the first (compiling) call and the largest
difference between the two; ``--no-net`` skips the network timings.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdr2hdr.models import JSInet  # noqa: E402
from sdr2hdr.errors import one_line  # noqa: E402
from sdr2hdr.models import dynfilter, ops  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn, device: torch.device, warmup: int, runs: int) -> float:
    """Median wall time in ms."""
    for _ in range(warmup):
        fn()
    _sync(device)
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


@contextlib.contextmanager
def dynfilter_impl(impl: str):
    """Run the block with ``$SDR2HDR_DYNFILTER=impl`` (how JSInet's dynamic filters are chosen)."""
    old = os.environ.get(dynfilter.IMPL_ENV)
    os.environ[dynfilter.IMPL_ENV] = impl
    try:
        yield
    finally:
        if old is None:
            del os.environ[dynfilter.IMPL_ENV]
        else:
            os.environ[dynfilter.IMPL_ENV] = old


def count_cuda_kernels(fn, device: torch.device) -> int:
    """GPU kernels launched by one call of ``fn`` (CUDA profiler; memcpy / memset not counted)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        _sync(device)
    gpu = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    return sum(1 for e in gpu if not e.name.startswith(("Memcpy", "Memset")))


def bench_net(scale: int, args, device: torch.device, dtype_name: str, impl: str = "auto") -> float:
    """Time full vs conv-only in ``dtype_name`` (``bf16-all``: every subnet in bf16) with the
    dynamic-filter implementation ``impl``; return the full median in ms."""
    with dynfilter_impl(impl):
        return _bench_net(scale, args, device, dtype_name, impl)


def _bench_net(scale: int, args, device: torch.device, dtype_name: str, impl: str) -> float:
    torch.manual_seed(0)
    net = JSInet(scale).to(device).eval()
    if dtype_name == "bf16-all":
        net.reduced_subnets = ("local_contrast_enhancement", "detail_restoration", "image_reconstruction")
    x = torch.rand(1, 3, args.height, args.width, device=device) * 0.8 + 0.06
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if dtype_name == "fp32":
        ctx = contextlib.nullcontext
    else:
        dt = {"fp16": torch.float16, "bf16": torch.bfloat16, "bf16-all": torch.bfloat16}[dtype_name]

        def ctx():
            return torch.autocast(device_type=device.type, dtype=dt)

    def run(conv_only: bool):
        with ctx():
            return net(x, conv_only=conv_only)

    with torch.inference_mode():
        t0 = time.perf_counter()
        run(False)  # the fused filters compile on their first call
        _sync(device)
        t_first = time.perf_counter() - t0
        for _ in range(args.warmup):
            run(False)
            run(True)
        kernels = ""
        if device.type == "cuda":
            kernels = f", {count_cuda_kernels(lambda: run(False), device)} GPU kernels/frame"
        # Alternate full / conv-only so that drifts in machine load hit both alike.
        t_full, t_conv = [], []
        for _ in range(args.runs):
            for conv_only, ts in ((False, t_full), (True, t_conv)):
                _sync(device)
                t0 = time.perf_counter()
                run(conv_only)
                _sync(device)
                ts.append((time.perf_counter() - t0) * 1e3)
    med_f, med_c = statistics.median(t_full), statistics.median(t_conv)
    min_f, min_c = min(t_full), min(t_conv)
    hr = f"{args.height * scale}x{args.width * scale}"
    print(
        f"x{scale} {dtype_name:8s} {impl:7s} LR {args.height}x{args.width} -> HR {hr}: "
        f"full {med_f:9.2f} ms = {1e3 / med_f:.2f} fps{kernels} | conv-only {med_c:9.2f} ms | "
        f"ratio {med_f / med_c:.3f} (median of {args.runs}); "
        f"best-of: {min_f:.2f} / {min_c:.2f} ms, ratio {min_f / min_c:.3f}; first call {t_first:.1f} s",
        flush=True,
    )
    return med_f


def bench_ops(scale: int, args, device: torch.device) -> None:
    torch.manual_seed(0)
    h, w, s2 = args.height, args.width, scale * scale
    x = torch.rand(1, 3, h, w, device=device)
    fl = torch.randn(1, 81 * s2, h, w, device=device)
    fv = torch.randn(1, 41 * s2, h, w, device=device)
    fh = torch.randn(1, 41 * s2, h, w, device=device)
    with torch.inference_mode():
        rows = [
            ("softmax 81 taps (separate)", lambda: torch.softmax(fl.view(1, 81, s2, h, w), 1)),
            ("LCE 9x9 tap loop", lambda: ops.dynamic_local_filter(x, fl, scale, impl="taploop")),
            ("LCE softmax fused + tap loop", lambda: ops.dynamic_local_filter(x, fl, scale, softmax=True, impl="taploop")),
            ("LCE 9x9 unfold+einsum", lambda: ops.dynamic_local_filter_unfold(x, fl, scale)),
            ("DR 41+41 tap loop", lambda: ops.dynamic_separable_filter(x, fv, fh, scale, impl="taploop")),
            ("DR 41+41 unfold+einsum", lambda: ops.dynamic_separable_filter_unfold(x, fv, fh, scale)),
            ("LCE softmax fused (compiled)", lambda: ops.dynamic_local_filter(x, fl, scale, softmax=True, impl="fused")),
            ("DR 41+41 fused (compiled)", lambda: ops.dynamic_separable_filter(x, fv, fh, scale, impl="fused")),
            ("guided filter decomposition", lambda: ops.decompose(x)),
        ]
        for name, fn in rows:
            try:
                t = time_fn(fn, device, args.warmup, args.runs)
                print(f"  x{scale} {name:30s} {t:9.2f} ms", flush=True)
            except RuntimeError as e:  # e.g. out of memory for unfold at large sizes
                print(f"  x{scale} {name:30s} failed: {one_line(e)}", flush=True)
                if device.type == "cuda":
                    torch.cuda.empty_cache()


def bench_dynfilter(scale: int, args, device: torch.device) -> None:
    """One forward's dynamic filtering (LCE softmax 9x9 + DR 41+41), fused vs tap loop."""
    torch.manual_seed(0)
    h, w, s2 = args.height, args.width, scale * scale
    # The filter dtypes of an inference forward: on CUDA (fp16 autocast) the LCE logits are
    # fp16 and the DR filters fp32 (the DR subnet runs fp32, INFERENCE_REDUCED_SUBNETS).
    lce_dt = torch.float16 if device.type == "cuda" else torch.float32
    xb, xd = torch.rand(1, 3, h, w, device=device), torch.rand(1, 3, h, w, device=device) + 0.5
    fl = torch.randn(1, 81 * s2, h, w, device=device).to(lce_dt)
    fv, fh = (torch.randn(1, 41 * s2, h, w, device=device) / 8 for _ in range(2))

    def filtering(impl: str):
        def run() -> tuple[torch.Tensor, torch.Tensor]:
            cl = ops.dynamic_local_filter(xb, fl, scale, softmax=True, impl=impl)
            return cl, ops.dynamic_separable_filter(xd, fv, fh, scale, impl=impl)

        return run

    with torch.inference_mode():
        t0 = time.perf_counter()
        fused_out = filtering("fused")()
        _sync(device)
        t_compile = time.perf_counter() - t0
        loop_out = filtering("taploop")()
        diff = max((a - b).abs().max().item() for a, b in zip(fused_out, loop_out))
        # Alternate the two so that drifts in machine load hit both alike.
        times: dict[str, list[float]] = {"taploop": [], "fused": []}
        for i in range(args.warmup + args.runs):
            for impl, ts in times.items():
                t = time_fn(filtering(impl), device, 0, 1)
                if i >= args.warmup:
                    ts.append(t)
    (loop, fused) = (statistics.median(times["taploop"]), statistics.median(times["fused"]))
    (loop_best, fused_best) = (min(times["taploop"]), min(times["fused"]))
    print(
        f"  x{scale} dynamic filtering LR {h}x{w} (LCE {str(lce_dt)[6:]}, DR float32): "
        f"tap loop {loop:9.2f} ms | fused {fused:9.2f} ms | tap loop / fused {loop / fused:.2f}x "
        f"(median of {args.runs}); best-of: {loop_best:.2f} / {fused_best:.2f} ms, {loop_best / fused_best:.2f}x; "
        f"first fused call {t_compile:.1f} s; max |fused - tap loop| {diff:.2e}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--height", type=int, default=None, help="LR height (default 256 CPU, 540 CUDA)")
    ap.add_argument("--width", type=int, default=None, help="LR width (default 448 CPU, 960 CUDA)")
    ap.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--runs", type=int, default=None, help="timed runs (default 5 CPU, 20 CUDA)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--dtypes", nargs="+", default=None, help="fp32 fp16 bf16 (default: fp32 on CPU, all on CUDA)")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--ops", action="store_true", help="also time the dynamic-filter implementations alone")
    ap.add_argument("--dynfilter", action="store_true", help="also time one forward's dynamic filtering, fused vs tap loop")
    ap.add_argument("--no-net", action="store_true", help="skip the network timings (with --ops / --dynfilter)")
    ap.add_argument(
        "--impls", nargs="+", choices=("auto", "taploop", "fused"), default=None,
        help="dynamic-filter implementations to time the network with (default: taploop on CPU, both on CUDA)",
    )
    ap.add_argument("--bf16-all", action="store_true", help="CPU: also time every subnet in bf16 (fails the accuracy bar)")
    args = ap.parse_args()

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    args.height = args.height or (540 if cuda else 256)
    args.width = args.width or (960 if cuda else 448)
    args.runs = args.runs or (20 if cuda else 5)
    dtypes = args.dtypes or (["fp32", "fp16", "bf16"] if cuda else ["fp32", "bf16"] + (["bf16-all"] if args.bf16_all else []))
    if cuda:
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU, {torch.get_num_threads()} threads"
    from sdr2hdr.precision import cpu_bf16_capability

    print(f"CPU bf16 capability: {cpu_bf16_capability()} (torch CPU capability {torch.backends.cpu.get_cpu_capability()})", flush=True)
    print(f"torch {torch.__version__}, {name}, channels_last={args.channels_last}", flush=True)
    impls = args.impls or (["taploop", "fused"] if cuda else ["taploop"])
    for scale in args.scales:
        for impl in [] if args.no_net else impls:
            times = {dt: bench_net(scale, args, device, dt, impl) for dt in dtypes}
            if "fp32" in times:
                for dt in (d for d in times if d != "fp32"):
                    print(f"x{scale} {impl} speed-up {dt} vs fp32: {times['fp32'] / times[dt]:.2f}x", flush=True)
        if args.ops:
            bench_ops(scale, args, device)
        if args.dynfilter:
            bench_dynfilter(scale, args, device)


if __name__ == "__main__":
    main()
