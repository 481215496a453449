"""Output files that appear only when complete: a temporary file beside the target, renamed over it.

:func:`partial_path` creates ``.NAME.partial-XXXX.EXT`` in the target's
folder (``tempfile.mkstemp``: mode 0600, never clobbers anything); the
writer fills it; :func:`commit` gives it its final mode and renames it over
the target in one step, so a reader sees the old file or the whole new one.
On failure or a signal the caller deletes the partial file.

Mode of the result: that of the file being replaced (``--overwrite``), else
``0o666 & ~umask``, as ``open()`` would have created it. Disk full
(ENOSPC, or EDQUOT for a quota) becomes one :class:`~sdr2hdr.errors.DiskFullError`
line naming the folder and its free space (:func:`disk_full_error`).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sdr2hdr.errors import DiskFullError, OutputError

#: errno values that mean "no room left for this file".
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)

_umask_lock = threading.Lock()


def human_size(n: int) -> str:
    """``1234567`` -> ``"1.2 MB"`` (decimal units)."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover


@lru_cache(maxsize=1)
def process_umask() -> int:
    """The process umask, read once.

    Linux reports it in ``/proc/self/status`` (no side effect); elsewhere it
    is read with ``os.umask(0)`` and put back at once, under a lock.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        old = os.umask(0)
        os.umask(old)
    return old


def final_mode(target: Path) -> int:
    """Permission bits for the finished file: the replaced file's, else ``0o666 & ~umask``."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return 0o666 & ~process_umask()


def is_disk_full(exc: BaseException) -> bool:
    """True for an OSError (PyAV's ``av.error.OSError`` included) meaning no space or quota left."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def disk_full_error(target: Path) -> DiskFullError:
    """One line naming the output folder and how much space is free there now."""
    folder = Path(os.path.abspath(target.parent))
    try:
        free = f"{human_size(shutil.disk_usage(folder).free)} free"
    except OSError:
        free = "free space unknown"
    return DiskFullError(f"no space left in {folder} ({free}) while writing {target.name}; "
                         "free some space or choose another output folder")


def partial_path(target: Path) -> Path:
    """Create the empty temporary file ``.NAME.partial-XXXX.EXT`` beside ``target`` and return its path."""
    process_umask()  # read now, before any worker thread runs
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.partial-", suffix=target.suffix, dir=target.parent)
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(target) from None
        raise OutputError(f"cannot write in {target.parent}: {exc.strerror or exc}") from None
    os.close(fd)
    return Path(name)


def commit(partial: Path, target: Path) -> None:
    """Give ``partial`` its final mode (:func:`final_mode`) and rename it over ``target``."""
    os.chmod(partial, final_mode(target))
    os.replace(partial, target)


def discard(partial: Path | None) -> None:
    """Delete a partial file, ignoring a missing one and errors (best effort on a failing path)."""
    if partial is None:
        return
    try:
        partial.unlink(missing_ok=True)
    except OSError:
        pass


@contextmanager
def partial_file(target: Path) -> Iterator[Path]:
    """A new partial file beside ``target`` (:func:`partial_path`) for the body to write and rename into
    place (:func:`commit`); deleted on the way out unless it was renamed away (an error, Ctrl-C, SIGTERM)."""
    tmp = partial_path(target)
    try:
        yield tmp
    finally:
        discard(tmp)  # a no-op once renamed
