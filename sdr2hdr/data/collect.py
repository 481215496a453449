"""Finding the training data under the ``--data`` paths and splitting it into sources.

:func:`collect_sources` walks each path (a folder or a file), sorts what it
finds by kind, holds out scenes by name (:mod:`sdr2hdr.data.split`) and builds
one training and one validation source per kind (:mod:`sdr2hdr.data.sources`,
:mod:`sdr2hdr.data.stillpairs`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdr2hdr.data.exr import EXR_SUFFIXES
from sdr2hdr.data.hdrvideo import VIDEO_SUFFIXES
from sdr2hdr.data.mat import find_mat_pair
from sdr2hdr.data.sources import (
    HdrVideoSource,
    MatSource,
    PairedVideoSource,
    Source,
    StillSource,
    single_thread,
)
from sdr2hdr.data.split import (
    HELDOUT_FRACTION,
    MAT_VAL_PATCHES,
    scene_name,
    split_scenes,
)
from sdr2hdr.data.stillpairs import HDR_FILE, SDR_FILE, StillPairSource, is_pair_dir
from sdr2hdr.errors import InputError

__all__ = ["DataSpec", "collect_sources"]


@dataclass
class DataSpec:
    """Everything found under the ``--data`` paths, split into training and validation sources."""

    train: list[Source]
    val: list[Source]
    heldout: list[str]
    files: list[Path]
    #: Gains divided out of training pairs' HDR by :meth:`anchor_pair_exposure` (scene -> gain).
    pair_gains: dict[str, float] = field(default_factory=dict)
    #: The --init model's MSE per training scene when scenes are drawn by it (``train --scene-weights psnr``).
    scene_mse: dict[str, float] = field(default_factory=dict)

    def anchor_pair_exposure(self) -> dict[str, float]:
        """Put every training photo pair's shadows at their BT.2408 level
        (:meth:`~sdr2hdr.data.stillpairs.StillPairSource.anchor_exposure`); held-out pairs stay as made."""
        for src in self.train:
            if isinstance(src, StillPairSource):
                self.pair_gains.update(src.anchor_exposure())
        return self.pair_gains

    def describe(self) -> str:
        """One line: the training sources and the held-out scenes."""
        parts = [s.describe() for s in self.train]
        return ", ".join(parts) + f"; held out: {', '.join(self.heldout) or 'none'}"

    @property
    def mat_only(self) -> bool:
        """Whether the authors' .mat patches are the only training source."""
        return len(self.train) == 1 and isinstance(self.train[0], MatSource)


def collect_sources(
    data: Sequence[str | Path],
    scale: int,
    *,
    hr_patch: int = 160,
    max_video_frames: int = 48,
    heldout_fraction: float = HELDOUT_FRACTION,
    heldout: Sequence[str] = (),
) -> DataSpec:
    """Find the training data under each ``--data`` path (folder or file) and split it by scene.

    A folder may hold any mix of: ``.exr`` stills (any depth), HDR videos (any
    depth), ``sdr/`` + ``hdr/`` sub-folders of paired clips, the authors'
    ``.mat`` files, real SDR/HDR photo pairs (folders holding ``sdr.png`` +
    ``hdr.exr``, :mod:`sdr2hdr.data.stillpairs`). ``heldout`` names scenes
    to hold out besides the hash rule. Raises a one-line :class:`InputError` naming the path for
    a missing / empty / unreadable folder, an undecodable still or video, a
    .mat with wrong keys, or data that does not fit ``scale``.
    """
    with single_thread():
        if not data:
            raise InputError("no --data given: name a folder of HDR stills / videos, sdr/+hdr/ pairs or the authors' .mat files")
        found = _scan(data)
        held = _heldout_scenes(found, heldout_fraction, heldout)
        train, val, mat_held = _sources(found, set(held), scale, max_video_frames)
        if not train:
            raise InputError(f"{data[0]}: no training scenes left after holding out {', '.join(held)} for validation")
        for src in train + val:
            src.check_size(hr_patch)  # type: ignore[attr-defined]
        return DataSpec(train=train, val=val, heldout=held + (["authors-mat (last patches)"] if mat_held else []), files=found.files())


@dataclass
class _Found:
    """The data files under the ``--data`` paths, by kind."""

    stills: list[Path] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)
    mats: list[Path] = field(default_factory=list)
    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    photo_pairs: list[Path] = field(default_factory=list)

    def add(self, path: Path) -> bool:
        """File ``path`` as a still, video or .mat by its suffix; False for anything else."""
        kind = _kind(path)
        if kind is None:
            return False
        {"still": self.stills, "video": self.videos, "mat": self.mats}[kind].append(path)
        return True

    def n_files(self) -> int:
        """Stills, videos and .mat files found so far."""
        return len(self.stills) + len(self.videos) + len(self.mats)

    def dedupe(self) -> None:
        """Each file once (a file reached through two ``--data`` paths), as its resolved path."""
        self.stills = list(dict.fromkeys(p.resolve() for p in self.stills))
        self.videos = list(dict.fromkeys(p.resolve() for p in self.videos))
        self.mats = list(dict.fromkeys(p.resolve() for p in self.mats))
        self.photo_pairs = list(dict.fromkeys(p.resolve() for p in self.photo_pairs))

    def files(self) -> list[Path]:
        """Every file the sources read."""
        pair_files = [p for pr in self.pairs for p in pr]
        photo_files = [d / f for d in self.photo_pairs for f in (SDR_FILE, HDR_FILE)]
        return [*self.stills, *self.videos, *pair_files, *self.mats, *photo_files]


def _kind(path: Path) -> str | None:
    """"still", "video" or "mat" by file suffix; None for anything else."""
    suf = path.suffix.lower()
    if suf in EXR_SUFFIXES:
        return "still"
    if suf in VIDEO_SUFFIXES:
        return "video"
    return "mat" if suf == ".mat" else None


def _scan(data: Sequence[str | Path]) -> _Found:
    """Sort the files under each ``--data`` path by kind; a path with no training data is an error."""
    found = _Found()
    for d in data:
        root = Path(d)
        if not root.exists():
            raise InputError(f"data path not found: {root}")
        if root.is_dir():
            _scan_folder(root, found)
        elif not found.add(root):
            raise InputError(f"{root}: not a training data file (.exr, an HDR video or a .mat) or folder")
    found.dedupe()
    return found


def _scan_folder(root: Path, found: _Found) -> None:
    """Add the training data of folder ``root`` to ``found``."""
    if not os.access(root, os.R_OK | os.X_OK):
        raise InputError(f"{root}: cannot read this data folder (permission denied)")
    has_pairs = (root / "sdr").is_dir() and (root / "hdr").is_dir()
    found_pairs = _find_pairs(root) if has_pairs else []
    found.pairs.extend(found_pairs)
    files = _walk(root)
    if has_pairs:
        files = [f for f in files if not (f.is_relative_to(root / "sdr") or f.is_relative_to(root / "hdr"))]
    found_photo = sorted({f.parent for f in files if f.name == HDR_FILE and is_pair_dir(f.parent)})
    found.photo_pairs.extend(found_photo)
    files = [f for f in files if f.parent not in set(found_photo) or f.name not in (SDR_FILE, HDR_FILE)]
    n0 = found.n_files()
    for f in files:
        found.add(f)
    if found.n_files() == n0 and not found_pairs and not found_photo:
        raise InputError(
            f"{root}: no training data found (expected .exr stills, HDR videos, sdr/ + hdr/ video pairs, "
            "NAME/sdr.png + NAME/hdr.exr photo pairs, or the authors' SDR_youtube_80.mat + HDR_youtube_80.mat)"
        )


def _walk(root: Path) -> list[Path]:
    out: list[Path] = []
    try:
        for dirpath, dirnames, filenames in os.walk(root, onerror=_raise_walk):
            dirnames.sort()
            out.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    except PermissionError as exc:
        raise InputError(f"{exc.filename or root}: cannot read this data folder (permission denied)") from None
    return out


def _raise_walk(exc: OSError) -> None:
    raise InputError(f"{exc.filename}: cannot read this data folder ({exc.strerror})")


def _find_pairs(root: Path) -> list[tuple[Path, Path]]:
    sdr_dir, hdr_dir = root / "sdr", root / "hdr"
    sdr = {p.stem: p for p in sorted(sdr_dir.iterdir()) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES}
    hdr = {p.stem: p for p in sorted(hdr_dir.iterdir()) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES}
    if not sdr and not hdr:
        return []
    missing = sorted(set(sdr) ^ set(hdr))
    if missing:
        n = missing[0]
        side, other = (sdr_dir, hdr_dir) if n in sdr else (hdr_dir, sdr_dir)
        raise InputError(f"{side / n}.*: has no partner named {n}.* in {other}")
    return [(sdr[n], hdr[n]) for n in sorted(sdr)]


def _heldout_scenes(found: _Found, fraction: float, heldout: Sequence[str]) -> list[str]:
    """The held-out scene names; two files of one scene name, or an unknown ``--heldout``, is an error."""
    named = [*found.stills, *found.videos, *(s for s, _ in found.pairs)]
    photo_pairs = found.photo_pairs
    names = [scene_name(p) for p in named] + [p.name for p in photo_pairs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        clash = [str(p) for p in [*named, *photo_pairs] if (p.name if p in photo_pairs else scene_name(p)) == dup[0]]
        raise InputError(f"{clash[-1]}: scene name {dup[0]!r} is used by two files ({clash[0]}); rename one (the validation split goes by name)")
    unknown = [n for n in heldout if n.lower() not in {m.lower() for m in names}]
    if unknown:
        raise InputError(f"--heldout {unknown[0]}: no scene of that name in the --data paths")
    return split_scenes(names, fraction, heldout)[1]


def _sources(found: _Found, held: set[str], scale: int, max_video_frames: int) -> tuple[list[Source], list[Source], bool]:
    """``(train, val, mat_held)``: one source per kind and side; ``mat_held``: the .mat patches hold some out."""
    train: list[Source] = []
    val: list[Source] = []

    def add(src_cls: Callable[..., Source], items: Sequence[Any], key: Callable[[Any], str], *args: Any) -> None:
        tr = [x for x in items if key(x) not in held]
        va = [x for x in items if key(x) in held]
        if tr:
            train.append(src_cls(tr, *args))
        if va:
            val.append(src_cls(va, *args))

    add(StillSource, found.stills, scene_name)
    add(HdrVideoSource, found.videos, scene_name, max_video_frames)
    add(PairedVideoSource, found.pairs, lambda sp: scene_name(sp[0]), scale, max_video_frames)
    add(StillPairSource, found.photo_pairs, lambda d: d.name)
    mp = find_mat_pair(found.mats, scale) if found.mats else None
    if mp is not None:
        sdr, hdr = mp
        n = len(sdr)
        n_val = min(MAT_VAL_PATCHES, n // 10) if n >= 2 else 0
        train.append(MatSource(sdr, hdr, np.arange(0, n - n_val)))
        if n_val:
            val.append(MatSource(sdr, hdr, np.arange(n - n_val, n), name="authors-mat-heldout"))
    elif found.mats and not (found.stills or found.videos or found.pairs or found.photo_pairs):
        raise InputError(f"{found.mats[0]}: only the authors' test sets (SDR_YUV / HDR_YUV) were found; training needs SDR_data / HDR_data")
    return train, val, bool(mp and val and isinstance(val[-1], MatSource))
