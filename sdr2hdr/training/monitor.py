"""What watches a training run: the JSON-lines log, the loss and speed meter, the progress bar, and the
stop flag that Ctrl-C / SIGTERM / SIGHUP set."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

from sdr2hdr.training.checkpoint import now

__all__ = ["Logger", "ProgressBar", "StepMeter", "StopFlag"]


class Logger:
    """Appends one JSON object per call to ``path`` (``log.jsonl``); a no-op without a path (ranks > 0)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._f = open(path, "a", encoding="utf-8") if path is not None else None  # noqa: SIM115

    def __call__(self, **rec: Any) -> None:
        if self._f is None:
            return
        rec.setdefault("time", now())
        self._f.write(json.dumps(rec, sort_keys=False) + "\n")
        self._f.flush()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._f is not None:
            self._f.close()
            self._f = None


class StepMeter:
    """Sums of the loss terms, steps and data-loader wait since the last log record."""

    def __init__(self) -> None:
        self.t_last = time.perf_counter()
        self.steps = 0
        self.wait = 0.0
        self.sums: dict[str, float] = {}

    def add(self, terms: dict[str, float], wait: float) -> None:
        """One step's loss terms (the learning rate is not summed) and its wait for data (seconds)."""
        self.steps += 1
        self.wait += wait
        for k, v in terms.items():
            if k != "lr":
                self.sums[k] = self.sums.get(k, 0.0) + v

    def reset(self, t: float) -> None:
        """Start the next log interval at time ``t`` (``time.perf_counter``)."""
        self.t_last, self.steps, self.wait, self.sums = t, 0, 0.0, {}


class ProgressBar:
    """A rich progress bar on stderr for one stage (disabled: every call does nothing)."""

    def __init__(self, stage: str, scale: int, total: int, start: int, enabled: bool) -> None:
        self._p: Any = None
        self._task: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        console = Console(stderr=True)
        self._p = Progress(
            TextColumn(f"[bold]{stage}[/] x{scale}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, disable=not console.is_terminal, transient=False,
        )
        self._p.start()
        self._task = self._p.add_task(stage, total=total, completed=start, info="")

    @property
    def enabled(self) -> bool:
        """Whether a bar is shown."""
        return self._p is not None

    def update(self, step: int, info: str | None = None) -> None:
        """Move to ``step``; ``info`` replaces the text after the bar."""
        if self._p is not None:
            if info is None:
                self._p.update(self._task, completed=step)
            else:
                self._p.update(self._task, completed=step, info=info)

    def print(self, text: str) -> None:
        """A line above the bar."""
        if self._p is not None:
            self._p.console.print(text)

    def stop(self) -> None:
        """Leave the bar as it is on screen."""
        if self._p is not None:
            self._p.stop()


class StopFlag:
    """Ctrl-C / SIGTERM / SIGHUP set the flag; the loop checkpoints after the current step. A second Ctrl-C aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
