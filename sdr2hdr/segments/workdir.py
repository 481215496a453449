"""The work folder beside the target: ``.NAME.sdr2hdr/`` with the manifest, finished segments and a lock.

:class:`WorkDir` creates it (mode from the umask), holds an exclusive
``flock`` on its ``lock`` file while a conversion uses it (a second
``sdr2hdr convert`` into the same target is refused with one line instead
of mixing segments), removes what a killed process left half-written
(``.*.partial-*`` files, manifest temporaries), and deletes the folder when
asked.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from sdr2hdr import outfile
from sdr2hdr.errors import OutputError


def work_path(target: Path, *, temporary: bool = False) -> Path:
    """``.NAME.sdr2hdr`` beside ``target``; ``temporary`` (``--no-resume`` with workers): ``.NAME.sdr2hdr-PID``,
    so a resumable work folder of the same target is left alone."""
    return target.parent / (f".{target.name}.sdr2hdr-{os.getpid()}" if temporary else f".{target.name}.sdr2hdr")


class WorkDir:
    """A locked work folder (see module doc); use as a context manager."""

    def __init__(self, target: Path, *, temporary: bool = False) -> None:
        self.path = work_path(target, temporary=temporary)
        self.target = target
        self.created = False
        self._fd: int | None = None

    def __enter__(self) -> WorkDir:
        try:
            self.path.mkdir()
            self.created = True
        except FileExistsError:
            if not self.path.is_dir():
                raise OutputError(f"{self.path} is in the way of the work folder; remove it") from None
        except OSError as exc:
            if outfile.is_disk_full(exc):
                raise outfile.disk_full_error(self.target) from None
            raise OutputError(f"cannot create the work folder {self.path}: {exc.strerror or exc}") from None
        self._fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            self._fd = None
            raise OutputError(f"another sdr2hdr process is converting into {self.target} "
                              f"(its work folder {self.path} is locked)") from None
        self.clean_partials()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def clean_partials(self) -> None:
        """Delete files a killed process was writing (never a finished segment or the manifest)."""
        for p in self.path.iterdir():
            if p.name.startswith(".") and (".partial-" in p.name or ".tmp-" in p.name):
                outfile.discard(p)

    def clear_segments(self) -> None:
        """Delete every segment file (``--restart``, or a plan that changed)."""
        for p in self.path.glob("seg-*.mp4"):
            outfile.discard(p)

    def remove(self) -> None:
        """Delete the folder and everything in it (the lock is released first)."""
        self.__exit__()
        shutil.rmtree(self.path, ignore_errors=True)
