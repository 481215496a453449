"""Run segment jobs in this process, one after the other, with the model already loaded."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sdr2hdr.inference.tiling import TiledModel
from sdr2hdr.segments.encode import SegmentJob, SegmentResult, run_segment
from sdr2hdr.summary import Progress


class InProcess:
    """The one-worker executor: ``run`` calls :func:`~sdr2hdr.segments.encode.run_segment` for each job."""

    workers = 1

    def __init__(self, runner: TiledModel) -> None:
        self.runner = runner

    def run(self, jobs: Sequence[SegmentJob], on_result: Callable[[SegmentResult], None],
            on_progress: Callable[[int, Progress], None]) -> None:
        for job in jobs:
            index = job.segment.index
            on_result(run_segment(job, self.runner, lambda p, i=index: on_progress(i, p)))

    def close(self) -> None:
        pass
