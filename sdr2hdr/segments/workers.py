"""``--workers N``: N local worker processes, each with its own model and device, pulling segment jobs.

Workers are started with ``spawn`` (a fresh interpreter: no forked torch or
CUDA state), load the model themselves (:func:`~sdr2hdr.inference.prepare.prepare_model`
with the conversion's options) on ``cuda:k`` (worker ``k`` modulo the visible
CUDA devices) or the CPU, with ``--threads`` torch threads when given, and
then take :class:`~sdr2hdr.segments.encode.SegmentJob` s from one shared
queue until told to stop. They send back progress, each
:class:`~sdr2hdr.segments.encode.SegmentResult`, or the error that stopped
them; only the driver writes the manifest.

Ctrl-C reaches the whole process group: workers ignore SIGINT and the
driver stops them with SIGTERM, which they turn into an
:class:`~sdr2hdr.signals.Interrupted` so their partial segment file is
deleted. A worker that dies (killed, out of memory) is an error naming the
segment it was converting; the finished segments stay in the work folder.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import signal
from collections.abc import Callable, Sequence
from typing import Any

from sdr2hdr import outfile
from sdr2hdr.convert_options import ConvertOptions
from sdr2hdr.errors import Sdr2HdrError, one_line
from sdr2hdr.segments.encode import SegmentJob, SegmentResult, run_segment
from sdr2hdr.summary import Progress


def worker_count(requested: int) -> int:
    """``requested`` workers, or with 0 one per visible CUDA device (1 without CUDA)."""
    if requested > 0:
        return requested
    import torch

    return max(1, torch.cuda.device_count())


def worker_device(k: int, device: str) -> str:
    """The device of worker ``k``: ``cuda:k`` modulo the visible devices when ``device`` is auto / cuda, else it."""
    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{k % torch.cuda.device_count()}"
    return device


def load_runner(o: ConvertOptions, device: str) -> Any:
    """The tiled model of ``o`` on ``device`` (what ``convert`` loads), in a worker, with ``--threads`` torch
    threads when given."""
    import torch

    from sdr2hdr.inference.device import resolve_device
    from sdr2hdr.inference.prepare import prepare_for

    if o.segments.threads:
        torch.set_num_threads(o.segments.threads)
    return prepare_for(o, resolve_device(device)).runner


def _worker(k: int, o: ConvertOptions, device: str, jobs: Any, results: Any) -> None:
    """A worker process's body: load the model, then run jobs until ``None``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from sdr2hdr.signals import signals_as_exceptions

    with signals_as_exceptions((int(signal.SIGTERM),)):
        job: SegmentJob | None = None
        try:
            runner = load_runner(o, device)
            while (job := jobs.get()) is not None:
                index = job.segment.index
                res = run_segment(job, runner, lambda p, i=index: results.put(("progress", i, p.done, p.encoded)))
                results.put(("result", res))
        except BaseException as exc:  # noqa: BLE001 - reported to the driver, which raises it
            where = f"segment {job.segment.index + 1}" if job is not None else "start-up"
            err = exc if isinstance(exc, Sdr2HdrError) else Sdr2HdrError(f"worker {k + 1} ({where}): {one_line(exc)}")
            if job is not None and outfile.is_disk_full(exc):
                err = outfile.disk_full_error(job.work / "segment")
            results.put(("error", err))


class ProcessPool:
    """The executor of ``--workers N`` (module doc)."""

    def __init__(self, o: ConvertOptions, n: int) -> None:
        ctx = mp.get_context("spawn")
        self.workers = n
        self.jobs: Any = ctx.Queue()
        self.results: Any = ctx.Queue()
        self.procs = [ctx.Process(target=_worker, args=(k, o, worker_device(k, o.device), self.jobs, self.results),
                                  name=f"sdr2hdr-worker-{k + 1}", daemon=True) for k in range(n)]
        for p in self.procs:
            p.start()

    def run(self, jobs: Sequence[SegmentJob], on_result: Callable[[SegmentResult], None],
            on_progress: Callable[[int, Progress], None]) -> None:
        for job in jobs:
            self.jobs.put(job)
        left = len(jobs)
        while left:
            try:
                msg = self.results.get(timeout=0.5)
            except queue.Empty:
                self._check_alive()
                continue
            if msg[0] == "progress":
                on_progress(msg[1], Progress("", msg[2], msg[3], None, 0.0))
            elif msg[0] == "result":
                on_result(msg[1])
                left -= 1
            else:
                raise msg[1]

    def _check_alive(self) -> None:
        for k, p in enumerate(self.procs):
            if not p.is_alive():
                raise Sdr2HdrError(f"worker {k + 1} died (exit code {p.exitcode}); the finished segments are kept, "
                                   "run the same command again to resume")

    def close(self) -> None:
        """Stop the workers: jobs not started are dropped, ``None`` to idle ones, SIGTERM to busy ones."""
        try:
            while True:
                self.jobs.get_nowait()
        except (queue.Empty, OSError, ValueError):
            pass
        for _ in self.procs:
            self.jobs.put(None)
        for p in self.procs:
            p.join(timeout=2)
        for p in self.procs:
            if p.is_alive():
                p.terminate()  # SIGTERM: the worker deletes its partial file
        for p in self.procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
        self.jobs.close()
        self.results.close()
