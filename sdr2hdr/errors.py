"""The exception types the CLI turns into a one-line error and a non-zero exit, and
:func:`one_line`, which makes any exception's message fit in one."""

from __future__ import annotations

__all__ = ["DiskFullError", "InputError", "OutputError", "Sdr2HdrError", "WeightsError", "one_line"]


class Sdr2HdrError(Exception):
    """A user-facing failure (bad input, missing weights, unwritable output).

    The message must be one line and name the file or option at fault. The
    CLI prints ``error: <message>`` and exits with :attr:`exit_code`.
    """

    exit_code = 2


class InputError(Sdr2HdrError):
    """The input file or data is missing, unreadable, or unsuitable."""


class OutputError(Sdr2HdrError):
    """The output cannot be written (exists, unwritable, same as the input)."""


class DiskFullError(OutputError):
    """The output's file system ran out of space (or quota) while writing."""


class WeightsError(Sdr2HdrError):
    """Model weights are missing, truncated, tampered with, or incompatible."""


def one_line(exc: BaseException | str) -> str:
    """``exc``'s message fit for a one-line error: its first non-blank line, runs of whitespace
    collapsed to one space; an exception with no message gives its type name (``KeyError``)."""
    for line in str(exc).splitlines():
        if line.strip():
            return " ".join(line.split())
    return type(exc).__name__ if isinstance(exc, BaseException) else ""
