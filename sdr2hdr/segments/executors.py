"""Which executor runs the segment jobs: this process or local worker processes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sdr2hdr.segments.local import InProcess

if TYPE_CHECKING:
    from sdr2hdr.segments.run import Conversion


def make_executor(c: Conversion) -> Any:
    """An object with ``workers``, ``run(jobs, on_result, on_progress)`` and ``close()``: Ray tasks with
    ``--ray``, local processes with more than one worker, else this process with the model already loaded."""
    g = c.options.segments
    if g.ray is not None:
        from sdr2hdr.errors import Sdr2HdrError

        raise Sdr2HdrError("--ray is not available yet")
    from sdr2hdr.segments.workers import ProcessPool, worker_count

    n = worker_count(g.workers)
    return ProcessPool(c.options, n) if n > 1 else InProcess(c.prep.runner)
