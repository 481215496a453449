"""``--ray [ADDRESS]``: the segments as Ray tasks on an existing Ray cluster, or on a local one.

Each segment job is one task (:func:`ray_segment`, one GPU per task where the
cluster has GPUs, else ``--threads`` CPUs, default 1) that loads the model
once per Ray worker process (cached by the options) and runs
:func:`~sdr2hdr.segments.encode.run_segment`; the driver records each result
in the manifest as it arrives. A task whose worker process or node dies is
retried by Ray (``max_retries``); a driver that dies is simply run again and
resumes from the manifest.

**Shared storage.** Tasks read the input and write their segment files into
the work folder by path, so the input, the output folder and the work
folder must be on storage every node sees at the same path (NFS, a cluster
file system). Before any segment is converted, one check task per alive node
verifies that it reads the input with the same identity (size, mtime, hash of
its first and last MiB) and can write in the work folder; a node that cannot
is a one-line error naming it. Tasks report their frames through a
``ray.util.queue.Queue`` actor, so the one progress display counts frames
across the cluster. Ray is an optional extra:
``pip install "sdr2hdr[ray]"``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sdr2hdr import outfile
from sdr2hdr.convert_options import ConvertOptions
from sdr2hdr.errors import Sdr2HdrError, one_line
from sdr2hdr.segments.encode import SegmentJob, SegmentResult, run_segment
from sdr2hdr.segments.manifest import source_identity
from sdr2hdr.summary import Progress

#: Retries of a task whose worker process or node died.
MAX_RETRIES = 3
_RUNNERS: dict[str, Any] = {}  # per Ray worker process: the loaded model by options


def ray_segment(o: ConvertOptions, job: SegmentJob, progress: Any = None) -> SegmentResult:
    """The Ray task: one segment with the model of ``o`` (loaded once per worker process); ``progress``: a
    ``ray.util.queue.Queue`` that gets ``(segment, frames done, frames encoded)`` at most every 0.5 s."""
    import time

    from sdr2hdr.segments.workers import load_runner, worker_device

    key = repr(o)
    if key not in _RUNNERS:
        _RUNNERS.clear()
        _RUNNERS[key] = load_runner(o, worker_device(0, o.device))  # Ray shows a task its one GPU as cuda:0
    last = [0.0]

    def report(p: Progress) -> None:
        now = time.monotonic()
        if progress is not None and now - last[0] >= 0.5:
            last[0] = now
            try:
                progress.put_nowait((job.segment.index, p.done, p.encoded))
            except Exception:  # noqa: BLE001 - progress is best effort (the queue full or gone)
                pass

    return run_segment(job, _RUNNERS[key], report)


def check_node(in_path: str, identity: dict[str, Any], work: str) -> str | None:
    """On one node: None when it reads the input as the driver does and can write in ``work``, else why not."""
    import socket

    host = socket.gethostname()
    try:
        mine = source_identity(Path(in_path))
    except OSError as exc:
        return f"Ray node {host} cannot read the input {in_path} ({exc.strerror or exc})"
    if (mine["size"], mine["head_tail_sha256"]) != (identity["size"], identity["head_tail_sha256"]):
        return f"Ray node {host} sees a different file at {in_path}"
    probe = Path(work) / f".probe-{host}-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return f"Ray node {host} cannot write in the work folder {work} ({exc.strerror or exc})"
    return None


def pending_work(jobs: Sequence[SegmentJob]) -> Path:
    """The work folder of ``jobs`` (for the disk-full line)."""
    return jobs[0].work


def unreachable(address: str, timeout: float = 5.0) -> str | None:
    """Why ``HOST:PORT`` or ``ray://HOST:PORT`` takes no TCP connection within ``timeout`` seconds (None: it does,
    or the address is not of that form, e.g. ``auto``); Ray itself would retry for minutes."""
    import socket

    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return None
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
    return None


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise Sdr2HdrError('--ray needs Ray, an optional extra: pip install "sdr2hdr[ray]"') from None
    return ray


class RayExecutor:
    """The executor of ``--ray`` (module doc)."""

    def __init__(self, o: ConvertOptions, in_path: Path, work: Path) -> None:
        ray = self.ray = _import_ray()
        self.options = o
        self.started = not ray.is_initialized()
        address = o.segments.ray or None
        why = unreachable(address) if address and self.started else None
        if why:
            raise Sdr2HdrError(f"cannot reach Ray at {address}: {why}")
        quiet = logging.getLogger("ray")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # Ray's start-up notes (token authentication on) are not ours to print
        try:
            if self.started:
                # "local": a new Ray for this run even where another one runs on this machine
                ray.init(address=address or "local", num_cpus=None if address else os.cpu_count(),
                         include_dashboard=False, log_to_driver=False, configure_logging=False)
        except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; one line either way
            raise Sdr2HdrError(f"cannot start or reach Ray{f' at {address}' if address else ''}: {one_line(exc)}") \
                from None
        finally:
            quiet.setLevel(level)
        res = ray.cluster_resources()
        self.gpus = int(res.get("GPU", 0))
        per_task = max(1, o.segments.threads)
        self.workers = self.gpus or max(1, int(res.get("CPU", 1)) // per_task)
        self.task = ray.remote(num_gpus=1 if self.gpus else 0, num_cpus=0 if self.gpus else per_task,
                               max_retries=MAX_RETRIES, retry_exceptions=False)(ray_segment)
        self._check_nodes(in_path, work)
        from ray.util.queue import Queue

        self.progress = Queue(maxsize=10_000, actor_options={"num_cpus": 0})

    def _check_nodes(self, in_path: Path, work: Path) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray, ident = self.ray, source_identity(in_path)
        check = ray.remote(num_cpus=0)(check_node)
        refs = [check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(str(in_path.resolve()), ident, str(work.resolve())) for n in ray.nodes() if n.get("Alive")]
        for why in ray.get(refs):
            if why:
                raise Sdr2HdrError(f"{why}; with --ray the input, the output folder and the work folder must be on "
                                   "storage every node sees at the same path")

    def run(self, jobs: Sequence[SegmentJob], on_result: Callable[[SegmentResult], None],
            on_progress: Callable[[int, Progress], None]) -> None:
        ray = self.ray
        pending = {self.task.remote(self.options, job, self.progress): job for job in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            self._drain(on_progress, {job.segment.index for job in pending.values()})
            for ref in done:
                pending.pop(ref)
                try:
                    on_result(ray.get(ref))
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if outfile.is_disk_full(cause):  # type: ignore[arg-type]
                        raise outfile.disk_full_error(pending_work(jobs) / "segment") from None
                    raise cause if isinstance(cause, Sdr2HdrError) else Sdr2HdrError(
                        f"a Ray task failed: {one_line(cause or exc)}") from None
                except ray.exceptions.RayError as exc:
                    raise Sdr2HdrError(f"a Ray task was lost after {MAX_RETRIES} retries: {one_line(exc)}") from None

    def _drain(self, on_progress: Callable[[int, Progress], None], running: set[int]) -> None:
        """Hand the tasks' queued progress to ``on_progress`` (segments still running only)."""
        from ray.util.queue import Empty

        try:
            items = self.progress.get_nowait_batch(self.progress.qsize())
        except (Empty, Exception):  # noqa: BLE001 - progress is best effort
            return
        for index, done, encoded in items:
            if index in running:
                on_progress(index, Progress("", done, encoded, None, 0.0))

    def close(self) -> None:
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
