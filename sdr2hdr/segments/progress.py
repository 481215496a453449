"""One progress display over all segments and workers.

:class:`SegmentProgress` receives each worker's per-segment
:class:`~sdr2hdr.summary.Progress` (frames of that segment) and reports the
whole phase to the caller's callback: frames done in all segments finished
in this run plus those in flight, the total of the phase's segments, fps
since the phase started, and segments done (reused ones included) out of
the plan's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sdr2hdr.summary import Progress


class SegmentProgress:
    """Aggregate per-segment progress for one phase ("measure" or "convert")."""

    def __init__(self, callback: Callable[[Progress], None] | None, phase: str, total_frames: int,
                 segments_total: int, segments_done: int) -> None:
        self.callback = callback
        self.phase = phase
        self.total = total_frames
        self.segments_total = segments_total
        self.segments_done = segments_done
        self.finished = 0  # frames of segments finished in this phase
        self.in_flight: dict[int, tuple[int, int]] = {}  # segment -> (done, encoded)
        self.t0 = time.perf_counter()
        self._lock = threading.Lock()

    def segment(self, index: int, p: Progress) -> None:
        """A worker's progress inside segment ``index``."""
        with self._lock:
            self.in_flight[index] = (p.done, p.encoded)
        self.report()

    def segment_done(self, index: int, frames: int) -> None:
        with self._lock:
            self.in_flight.pop(index, None)
            self.finished += frames
            self.segments_done += 1
        self.report()

    def report(self) -> None:
        if self.callback is None:
            return
        with self._lock:
            done = self.finished + sum(d for d, _ in self.in_flight.values())
            encoded = self.finished + sum(e for _, e in self.in_flight.values())
            p = Progress(self.phase, done, encoded, self.total, time.perf_counter() - self.t0,
                         self.segments_done, self.segments_total)
        self.callback(p)
