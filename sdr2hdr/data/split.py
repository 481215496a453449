"""Scene names and the held-out (validation / test) split, decided by name alone.

A *scene* is a still, a clip or a pair, named by its file stem (a photo pair:
its folder name). It is held out when ``sha256("sdr2hdr-split-v1:" +
name.lower())`` read as a fraction of 2**64 is below ``fraction`` (default
0.15). Each name's side depends on its name only (adding files never moves
another scene); if no scene falls below, the lowest-hash one is held out (with
two or more scenes). The authors' .mat patches carry no scene names: the last
:data:`MAT_VAL_PATCHES` patches (their own hold-out size; the file is ordered by
source video) are the validation set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

__all__ = ["HELDOUT_FRACTION", "MAT_VAL_PATCHES", "SPLIT_SALT", "is_heldout", "scene_name", "split_scenes"]

HELDOUT_FRACTION = 0.15
SPLIT_SALT = "sdr2hdr-split-v1:"
#: The authors' .mat hold-out: this many last patches (at most a tenth of the file).
MAT_VAL_PATCHES = 500


def scene_name(path: str | Path) -> str:
    """The scene name of a file: its stem (``polyhaven/assets__sky.exr`` -> ``assets__sky``)."""
    return Path(path).stem


def _split_hash(name: str) -> float:
    h = hashlib.sha256((SPLIT_SALT + name.lower()).encode()).hexdigest()
    return int(h[:16], 16) / 2.0**64


def is_heldout(name: str, fraction: float = HELDOUT_FRACTION) -> bool:
    """Whether scene ``name`` is a validation scene by the hash rule alone (see the module doc)."""
    return _split_hash(name) < fraction


def split_scenes(names: Sequence[str], fraction: float = HELDOUT_FRACTION, force: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """Split scene names into ``(train, heldout)``, deterministically from the names.

    A name is held out when its salted sha256 fraction is below ``fraction``
    or it is named in ``force`` (``--heldout NAME``: to hold out chosen
    scenes, e.g. enough real pairs for a test set); with two or more names
    at least one is held out and at least one trains. Both lists keep the
    input order; duplicates are treated as one scene.
    """
    uniq = list(dict.fromkeys(names))
    forced = {f.lower() for f in force}
    held = {n for n in uniq if is_heldout(n, fraction) or n.lower() in forced}
    if len(uniq) >= 2 and not held and fraction > 0:
        held = {min(uniq, key=_split_hash)}
    if len(uniq) >= 1 and len(held) == len(uniq):
        held.discard(max(uniq, key=_split_hash))
    return [n for n in uniq if n not in held], [n for n in uniq if n in held]
