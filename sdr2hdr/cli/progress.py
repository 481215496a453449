"""Progress of ``sdr2hdr convert`` on stderr: a rich bar on a terminal, plain lines elsewhere.

In a log file or a pipe a live bar is noise, so when stderr is not a
terminal :class:`PlainProgress` prints one line every
:data:`DEFAULT_INTERVAL` seconds (``$SDR2HDR_PROGRESS_INTERVAL`` overrides it)
and one when each phase ends::

    converting: 120/480 frames, 3.1 fps, ETA 1:56
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TextIO

from sdr2hdr.summary import Progress

#: Seconds between two plain progress lines.
DEFAULT_INTERVAL = 5.0
INTERVAL_ENV = "SDR2HDR_PROGRESS_INTERVAL"
LABELS = {"measure": "measuring", "convert": "converting"}


def interval_from_env() -> float:
    """``$SDR2HDR_PROGRESS_INTERVAL`` seconds if it is a positive number, else :data:`DEFAULT_INTERVAL`."""
    try:
        value = float(os.environ.get(INTERVAL_ENV, ""))
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value > 0 else DEFAULT_INTERVAL


def clock(seconds: float) -> str:
    """``116`` -> ``"1:56"``, ``3725`` -> ``"1:02:05"``."""
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def progress_line(p: Progress, *, final: bool = False) -> str:
    """``converting: 120/480 frames, 3.1 fps, ETA 1:56`` (no total: no ETA; at the end: the time taken)."""
    total = max(p.total, p.done) if p.total else None  # the container's count is an estimate
    count = f"{p.encoded}/{total}" if total else f"{p.encoded}"
    line = f"{LABELS.get(p.phase, p.phase)}: {count} frames, {p.fps:.1f} fps"
    if p.segments_total:
        line += f", segments {p.segments_done}/{p.segments_total}"
    if final:
        return f"{line}, done in {clock(p.elapsed)}"
    if total and p.fps > 0:
        line += f", ETA {clock((total - p.encoded) / p.fps)}"
    return line


class PlainProgress:
    """A ``progress`` callback printing :func:`progress_line` every ``interval`` seconds and at each phase's end."""

    def __init__(self, stream: TextIO, interval: float = DEFAULT_INTERVAL,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.interval = interval
        self.now = now
        self.latest: Progress | None = None
        self.printed: Progress | None = None
        self.last = now()

    def __call__(self, p: Progress) -> None:
        if self.latest is not None and p.phase != self.latest.phase:
            self.finish(ok=True)
            self.last = self.now()
        self.latest = p
        if self.now() - self.last >= self.interval:
            self._print(progress_line(p))
            self.last = self.now()

    def finish(self, ok: bool) -> None:
        """After a success, print the last state of the current phase (once); after a failure, nothing."""
        if ok and self.latest is not None and self.printed is not self.latest:
            self._print(progress_line(self.latest, final=True))
            self.printed = self.latest

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


class BarProgress:
    """A ``progress`` callback drawing a rich bar per phase.

    The bar starts with the first frame, so an error before it stays one line.
    """

    def __init__(self, console: object) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
            TextColumn("{task.fields[fps]:>6.2f} fps"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=False,  # type: ignore[arg-type]
        )
        self.tasks: dict[str, int] = {}

    def __call__(self, p: Progress) -> None:
        if not self.tasks:
            self.bar.start()
        if p.phase not in self.tasks:
            self.tasks[p.phase] = self.bar.add_task(LABELS.get(p.phase, p.phase), total=p.total, fps=0.0)
        self.bar.update(self.tasks[p.phase], completed=p.encoded, total=max(p.total or 0, p.done) or None, fps=p.fps)

    def finish(self, ok: bool) -> None:
        """Stop the bar (it stays on screen); ``ok`` as for :meth:`PlainProgress.finish`."""
        if self.tasks:
            self.bar.stop()
