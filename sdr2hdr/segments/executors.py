"""Which executor runs the segment jobs: this process, local worker processes, or Ray tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sdr2hdr.segments.local import InProcess
from sdr2hdr.segments.workdir import work_path

if TYPE_CHECKING:
    from sdr2hdr.segments.run import Conversion


def make_executor(c: Conversion) -> Any:
    """An object with ``workers``, ``run(jobs, on_result, on_progress)`` and ``close()``: Ray tasks with
    ``--ray``, local processes with more than one worker, else this process with the model already loaded."""
    g = c.options.segments
    if g.ray is not None:
        from sdr2hdr.segments.ray_tasks import RayExecutor

        return RayExecutor(c.options, c.in_path, c.work or work_path(c.out_path))
    from sdr2hdr.segments.workers import ProcessPool, worker_count

    n = worker_count(g.workers)
    return ProcessPool(c.options, n) if n > 1 else InProcess(c.prep.runner)
