"""Which executor runs the segment jobs: this process (local worker processes and Ray come next)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sdr2hdr.segments.local import InProcess

if TYPE_CHECKING:
    from sdr2hdr.segments.run import Conversion


def make_executor(c: Conversion) -> Any:
    """An object with ``workers``, ``run(jobs, on_result, on_progress)`` and ``close()``."""
    return InProcess(c.prep.runner)
