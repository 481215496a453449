"""One pass over the input: decode, model and encode in three threads with byte-bounded queues.

:func:`run_pass` is what :func:`sdr2hdr.convert.convert` runs once (or
twice, with ``cll="measure"``):

1. a decode thread: demux + decode + copy planes (:class:`~sdr2hdr.video.reader.FrameReader`),
   into a bounded queue;
2. the calling thread: batches of frames -> model input on the device
   (chroma up-sampling and colour conversion there) -> tiled model ->
   4:2:0 10-bit quantisation and light-level measurement on the device;
3. an encode thread: libx265 encode + mux (:class:`~sdr2hdr.video.writer.HDR10Writer`),
   from a bounded queue. The writer is not thread-safe, so this thread owns it: it
   opens it, writes it, and closes it (or aborts it on any failure or stop); no
   other thread touches it. What the writer reports (copied / dropped streams,
   duration) comes back in the :class:`PassResult`.

Both queues are bounded by bytes computed from the frame geometry
(:mod:`sdr2hdr.memory`): decoded uint8 / uint16 frames up to ``2 * batch + 2``
frames or 64 MB, encoder input (uint16 10-bit 4:2:0) up to 3 batches or
96 MB, always at least one item. The model input batch and the model output
are dropped as soon as the next stage has what it needs.

An exception in a worker thread is re-raised in the calling thread; one in
the calling thread (an error, Ctrl-C, SIGTERM) stops both workers and waits
for them (so the writer is closed) before it propagates.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from sdr2hdr import memory
from sdr2hdr.errors import Sdr2HdrError
from sdr2hdr.summary import Progress
from sdr2hdr.inference.tiling import TiledModel
from sdr2hdr.inference.model_io import model_input
from sdr2hdr.video import frames as fr
from sdr2hdr.video.hdr10 import hdr10_420
from sdr2hdr.video.probe import VideoInfo
from sdr2hdr.video.reader import FrameReader
from sdr2hdr.video.writer import HDR10Writer

_END = object()


class FrameSource(Protocol):
    """Decoded frames in presentation order (:class:`~sdr2hdr.video.reader.FrameReader`, or one segment's
    :class:`~sdr2hdr.segments.source.SegmentFrames`), and what decoding them noticed (complete once iterated)."""

    warnings: list[str]

    def __iter__(self) -> Iterator[fr.PlanarFrame]: ...


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(q: memory.ByteBoundedQueue, item: object, stop: threading.Event) -> bool:
    """Put ``item`` once it fits; False if ``stop`` was set first."""
    while not stop.is_set():
        if q.put(item, timeout=0.1):
            return True
    return False


def queue_limits(info: VideoInfo, scale: int, batch: int) -> tuple[int, int]:
    """(decode queue, encode queue) byte limits for ``info``'s frames at ``scale`` in batches of ``batch``."""
    f = info.fmt
    in_frame = memory.planar_bytes(f.width, f.height, bits=f.bits, sub_x=f.sub_x, sub_y=f.sub_y,
                                   planes=1 if f.kind == "gray" else 3)
    out_frame = memory.planar_bytes(info.width * scale, info.height * scale, bits=10)
    return memory.decode_queue_bytes(in_frame, batch), memory.encode_queue_bytes(out_frame, batch)


@dataclass
class PassResult:
    """What one pass did: frames through the model, light levels (cd/m²), and the writer's report."""

    frames: int = 0
    max_cll: float = 0.0
    max_fall: float = 0.0
    warnings: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)  # streams copied beside the video
    dropped: list[str] = field(default_factory=list)  # streams that could not be copied, with why
    video_seconds: float = 0.0  # presentation time of the frames written


def _gather(q_in: memory.ByteBoundedQueue, carry: fr.PlanarFrame | None, batch: int,
            check: Callable[[], None]) -> tuple[list[fr.PlanarFrame], fr.PlanarFrame | None, bool]:
    """Up to ``batch`` decoded frames of one format: (group, the frame that starts the next group, input ended).

    ``check`` runs while waiting (it raises the encoder's error); a decode failure is raised here.
    """
    group: list[fr.PlanarFrame] = [carry] if carry is not None else []
    while len(group) < batch:
        try:
            item = q_in.get(timeout=0.1)
        except TimeoutError:
            check()
            continue
        if item is _END:
            return group, None, True
        if isinstance(item, _Failure):
            raise item.exc
        assert isinstance(item, fr.PlanarFrame)
        if group and item.fmt != group[0].fmt:
            return group, item, False
        group.append(item)
    return group, None, False


def _decode(reader: Iterable[fr.PlanarFrame], q_in: memory.ByteBoundedQueue, stop: threading.Event) -> None:
    """Decode thread: every frame into ``q_in``, then ``_END`` (or the failure)."""
    try:
        for pf in reader:
            if not _put(q_in, pf, stop):
                return
        _put(q_in, _END, stop)
    except BaseException as exc:  # noqa: BLE001 - forwarded to the main thread
        _put(q_in, _Failure(exc), stop)


def _encode(open_writer: Callable[[], HDR10Writer], q_out: memory.ByteBoundedQueue, stop: threading.Event,
            errors: list[BaseException], encoded: list[int], result: PassResult) -> None:
    """Encode thread, the writer's only owner: open it, write batches from ``q_out`` until ``_END``, close it.

    An error goes to ``errors`` and sets ``stop``; on any way out but ``_END`` the writer is aborted here.
    """
    writer: HDR10Writer | None = None
    try:
        writer = open_writer()
        while not stop.is_set():
            try:
                item = q_out.get(timeout=0.1)
            except TimeoutError:
                continue
            if item is _END:
                writer.close()
                result.copied, result.dropped = list(writer.report.copied), list(writer.report.dropped)
                result.video_seconds = writer.duration_seconds
                writer = None
                return
            for y, cb, cr, pts, dur in item:  # type: ignore[attr-defined]
                writer.write(y, cb, cr, pts=pts, duration=dur)
                encoded[0] += 1
            del item  # not held while waiting for the next batch
    except BaseException as exc:  # noqa: BLE001 - forwarded to the main thread
        errors.append(exc)
        stop.set()
    finally:
        if writer is not None:
            writer.abort()


def _join(thread: threading.Thread | None) -> None:
    """Wait for a worker that has been told to stop (it checks every 0.1 s between frames)."""
    while thread is not None and thread.is_alive():
        thread.join(timeout=0.25)


def run_pass(
    info: VideoInfo,
    runner: TiledModel,
    *,
    batch: int,
    open_writer: Callable[[], HDR10Writer] | None,
    phase: str,
    progress: Callable[[Progress], None] | None,
    allow_truncated: bool,
    frames: FrameSource | None = None,
    total: int | None = None,
) -> PassResult:
    """Decode, run and (with ``open_writer``) encode every frame of ``info``; light levels are always measured.

    ``open_writer`` is called in the encode thread, which then owns the writer (module doc). ``frames``: another
    source of ``info``'s frames (one segment, :mod:`sdr2hdr.segments.source`; its ``warnings`` are reported),
    with ``total`` frames expected (default: the container's estimate).
    """
    result = PassResult()
    reader = frames if frames is not None else FrameReader(info, allow_truncated=allow_truncated)
    expected = info.frames_estimate if total is None else total
    stop = threading.Event()
    in_bytes, out_bytes = queue_limits(info, runner.scale, batch)
    q_in = memory.ByteBoundedQueue(in_bytes)
    q_out = memory.ByteBoundedQueue(out_bytes)
    enc_error: list[BaseException] = []
    encoded = [0]
    t0 = time.perf_counter()

    def report() -> None:
        if progress is not None:
            progress(Progress(phase, result.frames, encoded[0] if open_writer else result.frames, expected,
                              time.perf_counter() - t0))

    def check_encoder() -> None:
        if enc_error:
            raise enc_error[0]

    dec_thread = threading.Thread(target=_decode, args=(reader, q_in, stop), name="sdr2hdr-decode", daemon=True)
    enc_thread = threading.Thread(target=_encode, args=(open_writer, q_out, stop, enc_error, encoded, result),
                                  name="sdr2hdr-encode", daemon=True) if open_writer else None
    dec_thread.start()
    if enc_thread:
        enc_thread.start()
    try:
        carry: fr.PlanarFrame | None = None
        ended = False
        while not ended or carry is not None:
            group, carry, ended = _gather(q_in, carry, batch, check_encoder) if not ended else ([carry], None, True)
            if not group:
                break
            hb = hdr10_420(runner(model_input(group, device=runner.device)))  # input and float output freed here
            result.max_cll = max([result.max_cll, *hb.max_cll])
            result.max_fall = max([result.max_fall, *hb.fall])
            if enc_thread is not None:
                items = [(*p, f.pts, f.duration) for p, f in zip(hb.numpy(), group)]
                del hb
                check_encoder()
                if not _put(q_out, items, stop):
                    check_encoder()
                    raise Sdr2HdrError("the encoder stopped unexpectedly")
                del items
            result.frames += len(group)
            report()
        if enc_thread is not None:
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
        _join(dec_thread)
        _join(enc_thread)  # the writer is closed or aborted before the caller deletes its file
