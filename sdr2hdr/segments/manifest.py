"""The work folder's manifest: what is being converted, with what, and which segments are finished.

The manifest (``manifest.json`` in the work folder) is JSON::

    {"format": "sdr2hdr-work-1",
     "source": {"path", "size", "mtime_ns", "head_tail_sha256"},   # sha256 of the first and last MiB
     "model": {"name", "sha256"},                                   # of the weights (or of the module's tensors)
     "options": {...every option that changes the output...},
     "time_base": "1/12800", "signalled_cll": [MaxCLL, MaxFALL] | null,
     "segments": [{"index", "first_frame", "frames", "start_pts", "end_pts",
                   "status": "pending" | "measured" | "done", "file", "sha256",
                   "max_cll", "max_fall", "video_seconds", "warnings"}]}

It is only ever replaced whole (:func:`save`: temporary file, fsync, rename,
fsync of the folder), so after a crash it is the old or the new one. A
segment is "done" only once its file is complete, renamed into place and
this file says so with the file's sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdr2hdr.errors import OutputError

FORMAT = "sdr2hdr-work-1"
MIB = 1 << 20


def head_tail_sha256(path: Path) -> str:
    """sha256 of the first and the last MiB of ``path`` (the whole file when it is smaller than 2 MiB)."""
    h = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as f:
        h.update(f.read(MIB))
        if size > MIB:
            f.seek(max(MIB, size - MIB))
            h.update(f.read(MIB))
    return h.hexdigest()


def source_identity(path: Path) -> dict[str, Any]:
    """Size (bytes), mtime (ns) and :func:`head_tail_sha256` of the input."""
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "head_tail_sha256": head_tail_sha256(path)}


def file_sha256(path: Path) -> str:
    """sha256 of a whole file, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 * MIB), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class Manifest:
    """The parsed manifest (module doc); ``segments`` are plain dicts as stored."""

    source: dict[str, Any]
    model: dict[str, Any]
    options: dict[str, Any]
    time_base: str
    segments: list[dict[str, Any]] = field(default_factory=list)
    signalled_cll: list[int] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "source": self.source, "model": self.model, "options": self.options,
                "time_base": self.time_base, "signalled_cll": self.signalled_cll, "segments": self.segments}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Manifest:
        if doc.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} manifest")
        return cls(doc["source"], doc["model"], doc["options"], doc["time_base"], list(doc["segments"]),
                   doc.get("signalled_cll"))

    def done(self) -> list[dict[str, Any]]:
        return [s for s in self.segments if s["status"] == "done"]


def load(path: Path) -> Manifest | None:
    """The manifest at ``path``; None when there is none. An unreadable one is a one-line error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return Manifest.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise OutputError(f"{path} is damaged ({exc}); run again with --restart to start over") from None


def save(path: Path, manifest: Manifest) -> None:
    """Replace ``path`` atomically (temporary file, fsync, rename, fsync of the folder)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    data = (json.dumps(manifest.to_json(), indent=1) + "\n").encode()
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 24 else text[:12] + "…"


def what_changed(old: Manifest, new: Manifest) -> str | None:
    """One phrase saying how ``new`` differs from the work folder's ``old`` (None: the same conversion)."""
    o, n = old.source, new.source
    if (o["size"], o["mtime_ns"], o["head_tail_sha256"]) != (n["size"], n["mtime_ns"], n["head_tail_sha256"]):
        which = "size" if o["size"] != n["size"] else "content" if o["head_tail_sha256"] != n["head_tail_sha256"] \
            else "modification time"
        return f"the input changed ({which})"
    if old.model != new.model:
        return f"the model changed ({old.model['name']} -> {new.model['name']})" if old.model["name"] != \
            new.model["name"] else "the model's weights changed"
    keys = sorted(set(old.options) | set(new.options))
    diff = [k for k in keys if old.options.get(k) != new.options.get(k)]
    if diff:
        return "options changed: " + ", ".join(
            f"{k} {_short(old.options.get(k))} -> {_short(new.options.get(k))}" for k in diff)
    if old.time_base != new.time_base or [_plan(s) for s in old.segments] != [_plan(s) for s in new.segments]:
        return "the segment plan changed"
    return None


def _plan(seg: dict[str, Any]) -> tuple[Any, ...]:
    return seg["index"], seg["first_frame"], seg["frames"], seg["start_pts"], seg["end_pts"]
