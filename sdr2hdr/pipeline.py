"""SDR video in, HDR10 video out: the conversion the ``sdr2hdr convert`` command runs.

:func:`convert` does all the work and never prints; it reports through an
optional ``progress`` callback and returns a :class:`ConvertSummary`. Every
user-facing failure is a one-line :class:`~sdr2hdr.errors.Sdr2HdrError`.

Flow: probe the input (refusing HDR and unreadable files), check the output
path, load the model, then run three stages concurrently so the model is
never waiting on I/O:

1. a decode thread: demux + decode + copy planes (:class:`~sdr2hdr.video.reader.FrameReader`),
   into a bounded queue;
2. the calling thread: batches of frames -> model input on the device
   (chroma up-sampling and colour conversion there) -> tiled model ->
   4:2:0 10-bit quantisation and light-level measurement on the device;
3. an encode thread: libx265 encode + mux with copied audio / subtitles
   (:class:`~sdr2hdr.video.writer.HDR10Writer`), from a bounded queue.

(PyAV and torch release the GIL in decode / encode / kernels.)

MaxCLL / MaxFALL
----------------
``cll="unknown"`` (default) signals ``max-cll=0,0`` ("unknown" in
CTA-861.3) and needs one pass. ``cll="measure"`` first runs decode + model
over the whole input to measure them on exactly the frames that will be
written (see :func:`sdr2hdr.video.frames.light_levels`), then encodes in a
second pass with those values (rounded up to whole cd/m²) in the SEI: the
model runs twice, so it takes about twice as long. Either way the summary
reports the MaxCLL / MaxFALL measured on the frames actually written.

The output is written to a temporary file beside the target
(``.NAME.partial-XXXX.EXT``) and renamed over it only on success; any error
or Ctrl-C deletes it.
"""

from __future__ import annotations

import math
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sdr2hdr.errors import InputError, OutputError, Sdr2HdrError
from sdr2hdr.tiling import TiledModel
from sdr2hdr.video import frames as fr
from sdr2hdr.video.probe import VideoInfo, probe
from sdr2hdr.video.reader import FrameReader
from sdr2hdr.video.writer import DEFAULT_CRF, DEFAULT_PRESET, HDR10Writer, output_format, x265_params

CLL_MODES = ("unknown", "measure")


@dataclass
class Progress:
    """Passed to the ``progress`` callback after every batch (and while the encoder drains)."""

    phase: str  # "measure" (first pass of cll="measure") or "convert"
    done: int  # frames through the model in this phase
    encoded: int  # frames handed to the encoder in this phase
    total: int | None  # expected frames (from the container), None if unknown
    elapsed: float  # seconds since this phase started

    @property
    def fps(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0


@dataclass
class ConvertSummary:
    """What :func:`convert` did."""

    input: Path
    output: Path
    frames: int
    seconds: float
    size_bytes: int
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    scale: int
    model: str
    device: str
    precision: str  # fp32 | bf16 | fp16: what ran
    tile: int  # final tile side in LR pixels (0: whole frame)
    tile_pad: int
    batch: int
    cll_mode: str
    signalled_cll: tuple[int, int]  # (MaxCLL, MaxFALL) written in the SEI; (0, 0) = unknown
    max_cll: float  # measured on the frames written, cd/m²
    max_fall: float
    input_description: str = ""
    precision_reason: str = ""  # why that precision (auto choice, asked for, fallback)
    passes: int = 1
    model_seconds: float = 0.0
    oom_retries: int = 0
    copied_streams: list[str] = field(default_factory=list)
    dropped_streams: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        """Output frames per second of wall time (all passes included)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def resolve_device(spec: str | torch.device | None) -> torch.device:
    """"auto" (CUDA if available, else CPU), "cpu", "cuda" or "cuda:N"."""
    if isinstance(spec, torch.device):
        return spec
    s = (spec or "auto").strip().lower()
    if s == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if s == "cpu":
        return torch.device("cpu")
    if s == "cuda" or s.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise Sdr2HdrError(f"--device {spec}: CUDA is not available here (use --device cpu or auto)")
        try:
            dev = torch.device(s)
        except (RuntimeError, ValueError):
            raise Sdr2HdrError(f"bad --device {spec!r} (use auto, cpu, cuda or cuda:N)") from None
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise Sdr2HdrError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    raise Sdr2HdrError(f"bad --device {spec!r} (use auto, cpu, cuda or cuda:N)")


def check_output(input_path: Path, output_path: Path, *, overwrite: bool) -> str:
    """Refuse an output we must not or cannot write; return the container format name."""
    fmt = output_format(output_path)
    try:
        same = input_path.resolve() == output_path.resolve() or (
            output_path.exists() and input_path.exists() and os.path.samefile(input_path, output_path)
        )
    except OSError:
        same = False
    if same:
        raise OutputError(f"output {output_path} is the input file; choose another output path")
    if output_path.is_dir():
        raise OutputError(f"output {output_path} is a directory; give a file name ending in .mkv, .mp4 or .mov")
    if output_path.exists() and not overwrite:
        raise OutputError(f"{output_path} already exists (use --overwrite to replace it)")
    parent = output_path.parent
    if not parent.is_dir():
        raise OutputError(f"output directory does not exist: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"output directory is not writable: {parent}")
    return fmt


def _temp_output(output_path: Path) -> Path:
    try:
        fd, name = tempfile.mkstemp(prefix=f".{output_path.name}.partial-", suffix=output_path.suffix, dir=output_path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write in {output_path.parent}: {exc.strerror or exc}") from None
    os.close(fd)
    return Path(name)


def _load(model: str | nn.Module | None, scale: int, gan: bool, device: torch.device) -> tuple[nn.Module, str]:
    if isinstance(model, nn.Module):
        m = model.to(device).eval()
        if int(getattr(m, "scale", scale)) != scale:
            raise Sdr2HdrError(f"the model is x{getattr(m, 'scale')}, but scale {scale} was asked for")
        return m, type(model).__name__
    from sdr2hdr.zoo import default_model_name, load_model

    name = model or default_model_name(scale, gan)
    return load_model(name, device=device, scale=scale), str(name)


# ----------------------------------------------------------------- the passes

_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


@dataclass
class _PassResult:
    frames: int = 0
    max_cll: float = 0.0
    max_fall: float = 0.0
    warnings: list[str] = field(default_factory=list)


def _run_pass(
    info: VideoInfo,
    runner: TiledModel,
    *,
    batch: int,
    writer: HDR10Writer | None,
    phase: str,
    progress: Callable[[Progress], None] | None,
    allow_truncated: bool,
) -> _PassResult:
    result = _PassResult()
    reader = FrameReader(info, allow_truncated=allow_truncated)
    stop = threading.Event()
    q_in: queue.Queue = queue.Queue(maxsize=2 * batch + 2)
    q_out: queue.Queue = queue.Queue(maxsize=3)
    enc_error: list[BaseException] = []
    encoded = [0]
    t0 = time.perf_counter()

    def report() -> None:
        if progress is not None:
            progress(Progress(phase, result.frames, encoded[0] if writer else result.frames, info.frames_estimate,
                              time.perf_counter() - t0))

    def decode() -> None:
        try:
            for pf in reader:
                if not _put(q_in, pf, stop):
                    return
            _put(q_in, _END, stop)
        except BaseException as exc:  # noqa: BLE001 - forwarded to the main thread
            _put(q_in, _Failure(exc), stop)

    def encode() -> None:
        assert writer is not None
        try:
            while not stop.is_set():
                try:
                    item = q_out.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is _END:
                    writer.close()
                    return
                for y, cb, cr, pts, dur in item:
                    writer.write(y, cb, cr, pts=pts, duration=dur)
                    encoded[0] += 1
        except BaseException as exc:  # noqa: BLE001 - forwarded to the main thread
            enc_error.append(exc)
            stop.set()

    def check_encoder() -> None:
        if enc_error:
            raise enc_error[0]

    dec_thread = threading.Thread(target=decode, name="sdr2hdr-decode", daemon=True)
    enc_thread = threading.Thread(target=encode, name="sdr2hdr-encode", daemon=True) if writer else None
    dec_thread.start()
    if enc_thread:
        enc_thread.start()
    try:
        carry: fr.PlanarFrame | None = None
        ended = False
        while not ended or carry is not None:
            group: list[fr.PlanarFrame] = [carry] if carry is not None else []
            carry = None
            while not ended and len(group) < batch:
                try:
                    item = q_in.get(timeout=0.1)
                except queue.Empty:
                    check_encoder()
                    continue
                if item is _END:
                    ended = True
                elif isinstance(item, _Failure):
                    raise item.exc
                elif group and item.fmt != group[0].fmt:
                    carry = item
                    break
                else:
                    group.append(item)
            if not group:
                break
            x = fr.model_input(group, device=runner.device)
            hb = fr.hdr10_420(runner(x))
            result.max_cll = max([result.max_cll, *hb.max_cll])
            result.max_fall = max([result.max_fall, *hb.fall])
            if writer is not None:
                planes = hb.numpy()
                items = [(*p, f.pts, f.duration) for p, f in zip(planes, group)]
                check_encoder()
                if not _put(q_out, items, stop):
                    check_encoder()
                    raise Sdr2HdrError("the encoder stopped unexpectedly")
            result.frames += len(group)
            report()
        if writer is not None and enc_thread is not None:
            if not _put(q_out, _END, stop):
                check_encoder()
            while enc_thread.is_alive():
                enc_thread.join(timeout=0.25)
                report()
            check_encoder()
        result.warnings = list(reader.warnings)
        report()
        return result
    finally:
        stop.set()
        dec_thread.join(timeout=10)
        if enc_thread is not None:
            enc_thread.join(timeout=60)


# -------------------------------------------------------------------- convert


def convert(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    model: str | nn.Module | None = None,
    scale: int = 2,
    gan: bool = False,
    tile: int = 0,
    tile_pad: int | None = None,
    batch: int = 0,
    device: str | torch.device = "auto",
    precision: str = "auto",
    crf: float = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
    x265_extra: str = "",
    mastering: str = "p3",
    peak_nits: float = 1000.0,
    min_nits: float = 0.0001,
    cll: str = "unknown",
    copy_audio: bool = True,
    copy_subtitles: bool = True,
    overwrite: bool = False,
    allow_truncated: bool = False,
    progress: Callable[[Progress], None] | None = None,
) -> ConvertSummary:
    """Convert an SDR video file to an HDR10 (HEVC Main 10) file ``scale`` times larger.

    ``model``: registry name, ``.safetensors`` path, an ``nn.Module`` (tests,
    benchmarks) or None for the default of ``scale`` / ``gan``. ``tile=0``:
    automatic; ``tile_pad=None``: from the model's receptive field;
    ``batch=0``: 4 on CUDA, 1 on CPU; ``precision``: auto | fp32 | bf16 | fp16
    (:func:`sdr2hdr.precision.resolve_precision`: auto is fp16 on CUDA, bf16 on
    a CPU with AMX / AVX512-BF16, else fp32).
    ``cll``: "unknown" (signal 0,0) or "measure" (two passes). See the module doc.
    """
    t_start = time.perf_counter()
    in_path, out_path = Path(input), Path(output)
    if scale not in (2, 4):
        raise Sdr2HdrError(f"scale must be 2 or 4, got {scale}")
    if cll not in CLL_MODES:
        raise Sdr2HdrError(f"cll must be one of {', '.join(CLL_MODES)}, got {cll!r}")
    if tile < 0 or (tile_pad is not None and tile_pad < 0):
        raise Sdr2HdrError("tile and tile pad must be >= 0")
    if not in_path.exists():
        raise InputError(f"input file not found: {in_path}")
    fmt = check_output(in_path, out_path, overwrite=overwrite)
    try:
        x265_params(mastering=mastering, peak_nits=peak_nits, min_nits=min_nits, extra=x265_extra)
    except ValueError as exc:
        raise Sdr2HdrError(str(exc)) from None
    info = probe(in_path)
    dev = resolve_device(device)
    net, model_name = _load(model, scale, gan, dev)
    runner = TiledModel(net, scale=scale, tile=tile, pad=tile_pad, device=dev, precision=precision)
    nbatch = batch if batch > 0 else (4 if dev.type == "cuda" else 1)
    out_w, out_h = info.width * scale, info.height * scale

    tmp = _temp_output(out_path)
    ok = False
    writer: HDR10Writer | None = None
    try:
        passes = 1
        signalled = (0, 0)
        warnings: list[str] = []
        if cll == "measure":
            first = _run_pass(info, runner, batch=nbatch, writer=None, phase="measure", progress=progress,
                              allow_truncated=allow_truncated)
            signalled = (int(math.ceil(first.max_cll)), int(math.ceil(first.max_fall)))
            passes = 2
        params = x265_params(mastering=mastering, peak_nits=peak_nits, min_nits=min_nits, max_cll=signalled,
                             extra=x265_extra)
        writer = HDR10Writer(tmp, fmt=fmt, info=info, width=out_w, height=out_h, crf=crf, preset=preset,
                             params=params, copy_audio=copy_audio, copy_subtitles=copy_subtitles)
        res = _run_pass(info, runner, batch=nbatch, writer=writer, phase="convert", progress=progress,
                        allow_truncated=allow_truncated)
        writer.close()
        warnings.extend(res.warnings)
        if cll == "measure" and (math.ceil(res.max_cll), math.ceil(res.max_fall)) != signalled:
            warnings.append(
                f"light levels of the encoding pass ({res.max_cll:.0f}/{res.max_fall:.0f}) differ from the measuring "
                f"pass ({signalled[0]}/{signalled[1]}) that was signalled"
            )
        if writer.report.dropped:
            warnings.extend(f"stream not copied: {d}" for d in writer.report.dropped)
        os.replace(tmp, out_path)
        ok = True
        seconds = time.perf_counter() - t_start
        return ConvertSummary(
            input=in_path, output=out_path, frames=res.frames, seconds=seconds, size_bytes=out_path.stat().st_size,
            input_size=(info.width, info.height), output_size=(out_w, out_h), scale=scale, model=model_name,
            device=str(dev), precision=runner.precision, precision_reason=runner.precision_reason, tile=0 if (runner.tile or 0) >= max(info.width, info.height) else int(runner.tile or 0),
            tile_pad=runner.pad, batch=nbatch, cll_mode=cll, signalled_cll=signalled, max_cll=res.max_cll,
            max_fall=res.max_fall, input_description=info.describe(), passes=passes, model_seconds=runner.seconds,
            oom_retries=runner.oom_retries, copied_streams=list(writer.report.copied),
            dropped_streams=list(writer.report.dropped), warnings=warnings,
        )
    finally:
        if not ok:
            if writer is not None:
                writer.abort()
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
