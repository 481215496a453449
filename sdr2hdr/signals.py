"""SIGINT, SIGTERM and SIGHUP as one exception, so every command cleans up the same way.

The CLI entry point (:func:`sdr2hdr.cli.main`) runs each command inside
:func:`signals_as_exceptions`. A signal then raises :class:`Interrupted` in
the main thread, where it unwinds like Ctrl-C always did: ``finally`` blocks
stop the worker threads and delete a temporary ``.NAME.partial-XXXX.EXT``
file, an existing target is never touched, and ``main`` prints one line
(``error: ...``) and exits with ``128 + signal number`` (130, 143, 129).

:class:`Interrupted` derives from :class:`BaseException`, not
:class:`KeyboardInterrupt`: ``except Exception`` does not swallow it, and
click (which turns a KeyboardInterrupt into "Aborted!" after a blank line)
lets it through. Signals the process inherited as ignored (``nohup`` ignores
SIGHUP) stay ignored. Once one signal has been raised, a later SIGTERM or
SIGHUP is ignored so the clean-up can finish; a second Ctrl-C still stops it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: The signals turned into :class:`Interrupted` (SIGHUP only where the platform has it).
SIGNALS: tuple[int, ...] = tuple(
    int(s) for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None
)


class Interrupted(BaseException):
    """The process received SIGINT, SIGTERM or SIGHUP; :attr:`exit_code` is ``128 + signum``."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(self.message)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def message(self) -> str:
        """The text after ``error: ``: "interrupted" for Ctrl-C (as before), else the signal's name."""
        if self.signum == signal.SIGINT:
            return "interrupted"
        if self.signum == getattr(signal, "SIGHUP", None):
            return "hang-up (SIGHUP)"
        try:
            name = signal.Signals(self.signum).name
        except ValueError:
            name = f"signal {self.signum}"
        return f"terminated ({name})"


def _replaceable(signum: int, current: object) -> bool:
    """Install our handler only over the default one (never over SIG_IGN or someone else's)."""
    if signum == signal.SIGINT:
        return current is signal.default_int_handler
    return current is signal.SIG_DFL


@contextmanager
def signals_as_exceptions(signums: tuple[int, ...] = SIGNALS) -> Iterator[None]:
    """Raise :class:`Interrupted` in the main thread on ``signums``; restore the old handlers on exit.

    Outside the main thread (where Python cannot install handlers) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if raised and signum != signal.SIGINT:
            return  # already stopping: let the clean-up finish
        raised.append(signum)
        raise Interrupted(signum)

    old: dict[int, object] = {}
    try:
        for s in signums:
            current = signal.getsignal(s)
            if _replaceable(s, current):
                old[s] = current
                signal.signal(s, handler)
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)  # type: ignore[arg-type]
