"""Training data: sources, the validation split by scene, and step-indexed patch sampling.

Sources (``collect_sources`` finds them under each ``--data`` path):

* :class:`StillSource` - scene-linear OpenEXR stills; pairs synthesised by
  :mod:`sdr2hdr.data.degrade` (exposure, tone mapping, down-scaling, ...).
* :class:`HdrVideoSource` - HDR10 / HLG clips; frames are the ground truth,
  the SDR input is synthesised the same way.
* :class:`PairedVideoSource` - real graded pairs ``DIR/sdr/NAME.*`` +
  ``DIR/hdr/NAME.*``, frame-aligned, HDR exactly ``scale`` x the SDR size.
* :class:`MatSource` - the authors' ``SDR_youtube_80*.mat`` /
  ``HDR_youtube_80.mat`` patches (read lazily).

Validation split (:func:`split_scenes`): a *scene* (a still, a clip, a pair;
named by its file stem) is held out when
``sha256("sdr2hdr-split-v1:" + name.lower())`` read as a fraction of 2**64 is
below ``fraction`` (default 0.15). Each name's side depends on its name only
(adding files never moves another scene); if no scene falls below, the
lowest-hash one is held out (with two or more scenes). The authors' .mat
patches carry no scene names: the last 500 patches (their own hold-out
size; the file is ordered by source video) are the validation set.

Sampling is a pure function of ``(seed, index)``: training sample ``g`` (the
``g``-th patch of the run, ``g = step * batch + i``) is drawn with
``numpy.random.default_rng([seed, stream, g])`` (``stream`` 0 for JSInet, 1 for
JSI-GAN). The data position of a checkpoint is
therefore just the step, and DataLoader workers are deterministic.
Samples are integer code values: SDR ``uint8`` ``3 x h x w`` (BT.709 limited,
/255 for the network) and HDR ``int16`` ``3 x H x W`` (BT.2020 PQ limited,
/1023). Patches are flipped horizontally / vertically at random.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from sdr2hdr import color
from sdr2hdr.data import degrade
from sdr2hdr.data.degrade import Degradation
from sdr2hdr.data.exr import EXR_SUFFIXES, read_exr
from sdr2hdr.data.hdrvideo import (
    VIDEO_SUFFIXES,
    VideoFrames,
    decode_frames,
    hdr_to_display,
    planes_to_ycbcr,
)
from sdr2hdr.data.mat import MatPatches, find_mat_pair
from sdr2hdr.data.sources import (
    Source,
    _codes,
    _crop_flip_rng,
    _flip,
    scene_name,
    single_thread,
)
from sdr2hdr.data.stillpairs import HDR_FILE, SDR_FILE, StillPairSource, is_pair_dir
from sdr2hdr.errors import InputError

__all__ = [
    "HELDOUT_FRACTION",
    "VAL_SEED",
    "split_scenes",
    "is_heldout",
    "Source",
    "StillSource",
    "HdrVideoSource",
    "PairedVideoSource",
    "MatSource",
    "DataSpec",
    "collect_sources",
    "TrainPatches",
    "ValPatches",
    "StepBatchSampler",
    "scene_name",
    "single_thread",
    "still_pair",
]

HELDOUT_FRACTION = 0.15
SPLIT_SALT = "sdr2hdr-split-v1:"
#: Validation patches are drawn with this seed whatever ``--seed`` is, so runs compare.
VAL_SEED = 20200207
MAT_VAL_PATCHES = 500
#: A clip counts as this many stills of its frame size when sources are mixed.
VIDEO_FRAME_WEIGHT = 4


# --------------------------------------------------------------------------- split


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


def still_pair(
    path: str | Path,
    scale: int,
    seed: int = 0,
    *,
    operator: str | None = None,
    stops: float = 0.0,
    h264: bool | None = None,
    config: Degradation = Degradation(),
) -> tuple[torch.Tensor, torch.Tensor]:
    """A full-frame (LR SDR, HR HDR10) evaluation pair from one OpenEXR still.

    The still is exposed with :func:`~sdr2hdr.data.degrade.scene_to_display`
    at ``stops`` (0: its key at the BT.2408 grey level, no jitter), then
    :func:`~sdr2hdr.data.degrade.synthesize_pair` with
    ``numpy.random.default_rng(seed)``. Deterministic for a seed; use it on
    the held-out scenes (:func:`split_scenes`) to evaluate trained weights.
    """
    with single_thread():
        img = read_exr(path)
        x = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)
        disp = degrade.scene_to_display(x, degrade.scene_key(img), stops)
        out = degrade.synthesize_pair(disp, scale, np.random.default_rng(seed), operator=operator, h264=h264, config=config)
    return out[0], out[1]


# --------------------------------------------------------------------------- sources


class StillSource(Source):
    """Scene-linear OpenEXR stills, decoded once and kept in memory as float16."""

    def __init__(self, paths: Sequence[Path]) -> None:
        super().__init__(names=[scene_name(p) for p in paths], kind="HDR stills")
        self.paths = list(paths)
        self.images: list[np.ndarray] = []
        self.keys: list[float] = []
        for p in self.paths:
            img = read_exr(p)
            self.images.append(img)
            self.keys.append(degrade.scene_key(img))

    def _rows(self, i: int, hr: int) -> tuple[int, int]:
        h, w = self.images[i].shape[:2]
        # Equirectangular panoramas (2:1): skip the stretched top and bottom eighths.
        if w == 2 * h and h - h // 4 >= hr:
            return h // 8, h - h // 8
        return 0, h

    def weight(self, i: int, hr: int) -> float:
        r0, r1 = self._rows(i, hr)
        return max(1, (r1 - r0) // hr) * max(1, self.images[i].shape[1] // hr)

    def check_size(self, hr: int) -> None:
        for p, img in zip(self.paths, self.images):
            if img.shape[0] < hr or img.shape[1] < hr:
                raise InputError(f"{p}: {img.shape[1]}x{img.shape[0]} is smaller than the {hr}x{hr} HR patch")

    def display(self, i: int, stops: float, region: tuple[int, int, int, int] | None = None) -> torch.Tensor:
        """Display light (cd/m², BT.709) of still ``i`` at exposure ``stops``: ``3 x H x W`` float32."""
        img = self.images[i]
        if region is not None:
            y0, x0, hh, ww = region
            img = img[y0 : y0 + hh, x0 : x0 + ww]
        x = torch.from_numpy(np.ascontiguousarray(img).astype(np.float32)).permute(2, 0, 1)
        return degrade.scene_to_display(x, self.keys[i], stops)

    def patch(self, i, rng, hr, scale, deg):  # noqa: ANN001, ANN201
        r0, r1 = self._rows(i, hr)
        w = self.images[i].shape[1]
        y0 = int(rng.integers(r0, r1 - hr + 1))
        x0 = int(rng.integers(0, w - hr + 1))
        fh, fv = _crop_flip_rng(rng)
        stops = degrade.exposure_stops(rng, deg)
        disp = _flip(self.display(i, stops, (y0, x0, hr, hr)), fh, fv)
        sdr, hdr = degrade.synthesize_pair(disp, scale, rng, config=deg)  # type: ignore[misc]
        return _codes(sdr, hdr)


class HdrVideoSource(Source):
    """HDR10 / HLG clips: up to ``max_frames`` frames each, kept as 10-bit 4:2:0 planes."""

    def __init__(self, paths: Sequence[Path], max_frames: int = 48) -> None:
        super().__init__(names=[scene_name(p) for p in paths], kind="HDR videos")
        self.paths = list(paths)
        self.videos: list[VideoFrames] = [decode_frames(p, max_frames, require_hdr=True) for p in self.paths]

    def weight(self, i: int, hr: int) -> float:
        v = self.videos[i]
        return max(1, v.y.shape[1] // hr) * max(1, v.y.shape[2] // hr) * min(len(v), VIDEO_FRAME_WEIGHT)

    def check_size(self, hr: int) -> None:
        for p, v in zip(self.paths, self.videos):
            if v.y.shape[1] < hr or v.y.shape[2] < hr:
                raise InputError(f"{p}: {v.y.shape[2]}x{v.y.shape[1]} is smaller than the {hr}x{hr} HR patch")

    def patch(self, i, rng, hr, scale, deg):  # noqa: ANN001, ANN201
        v = self.videos[i]
        f = int(rng.integers(len(v)))
        h, w = v.y.shape[1:]
        y0 = 2 * int(rng.integers(0, (h - hr) // 2 + 1))
        x0 = 2 * int(rng.integers(0, (w - hr) // 2 + 1))
        fh, fv = _crop_flip_rng(rng)
        ycc = planes_to_ycbcr(
            v.y[f, y0 : y0 + hr, x0 : x0 + hr], v.uv[f, :, y0 // 2 : (y0 + hr) // 2, x0 // 2 : (x0 + hr) // 2], v.info.bits
        )
        disp = _flip(hdr_to_display(ycc, v.info, hlg_peak=deg.peak), fh, fv)
        sdr, hdr = degrade.synthesize_pair(disp, scale, rng, primaries="bt2020", config=deg)  # type: ignore[misc]
        return _codes(sdr, hdr)


def _sdr_codes(v: VideoFrames, ycc: torch.Tensor) -> torch.Tensor:
    """SDR planes (code/(2**bits-1)) -> BT.709 limited 8-bit code/255, rounded."""
    matrix = v.info.matrix if v.info.matrix in ("bt709", "bt601", "bt2020") else "bt709"
    out = color.convert_ycbcr(
        ycc, src_matrix=matrix, src_full_range=v.info.full_range, src_bits=v.info.bits,  # type: ignore[arg-type]
        dst_matrix="bt709", dst_full_range=False, dst_bits=8,
    )
    return color.quantize(out, 8)


def _hdr_codes(v: VideoFrames, ycc: torch.Tensor, peak: float) -> torch.Tensor:
    """HDR planes -> BT.2020 PQ limited 10-bit code/1023, rounded.

    A PQ BT.2020 grade is the truth as it is (re-expressed in limited range if
    needed, never clipped); HLG goes through its EOTF for a ``peak`` display.
    """
    if v.info.transfer == "pq" and v.info.matrix in ("bt2020", "unknown") and v.info.primaries in ("bt2020", "unknown"):
        out = color.convert_ycbcr(
            ycc, src_matrix="bt2020", src_full_range=v.info.full_range, src_bits=v.info.bits,
            dst_matrix="bt2020", dst_full_range=False, dst_bits=10,
        )
        return color.quantize(out, 10)
    grade_peak = color.PQ_PEAK if v.info.transfer == "pq" else peak
    return degrade.hdr_target(hdr_to_display(ycc, v.info, hlg_peak=peak), primaries="bt2020", peak=grade_peak)


class PairedVideoSource(Source):
    """Real graded pairs ``DIR/sdr/NAME.*`` + ``DIR/hdr/NAME.*`` (frame-aligned, HDR = scale x SDR)."""

    def __init__(self, pairs: Sequence[tuple[Path, Path]], scale: int, max_frames: int = 48) -> None:
        super().__init__(names=[scene_name(s) for s, _ in pairs], kind="SDR/HDR video pairs", real=True)
        self.pairs = list(pairs)
        self.sdr: list[VideoFrames] = []
        self.hdr: list[VideoFrames] = []
        for sp, hp in self.pairs:
            s = decode_frames(sp, max_frames, require_hdr=False)
            h = decode_frames(hp, max_frames, require_hdr=True)
            sh, sw = s.y.shape[1:]
            hh, hw = h.y.shape[1:]
            if (hh, hw) != (scale * sh, scale * sw):
                ratio = f"x{hw / sw:g}" if sw else "?"
                raise InputError(
                    f"{hp}: {hw}x{hh} is not {scale} x the SDR {sw}x{sh} of {sp.name} ({ratio}); does --scale {scale} match the data?"
                )
            n = min(len(s), len(h))
            if s.indices[:n] != h.indices[:n]:
                raise InputError(f"{hp}: frame count differs from {sp.name} ({len(h)} vs {len(s)} frames decoded); pairs must be frame-aligned")
            self.sdr.append(s)
            self.hdr.append(h)

    def weight(self, i: int, hr: int) -> float:
        h = self.hdr[i]
        return max(1, h.y.shape[1] // hr) * max(1, h.y.shape[2] // hr) * min(len(h), VIDEO_FRAME_WEIGHT)

    def check_size(self, hr: int) -> None:
        for (_, hp), h in zip(self.pairs, self.hdr):
            if h.y.shape[1] < hr or h.y.shape[2] < hr:
                raise InputError(f"{hp}: {h.y.shape[2]}x{h.y.shape[1]} is smaller than the {hr}x{hr} HR patch")

    def patch(self, i, rng, hr, scale, deg):  # noqa: ANN001, ANN201
        s, h = self.sdr[i], self.hdr[i]
        f = int(rng.integers(min(len(s), len(h))))
        lr = hr // scale
        sh, sw = s.y.shape[1:]
        y0 = 2 * int(rng.integers(0, (sh - lr) // 2 + 1))
        x0 = 2 * int(rng.integers(0, (sw - lr) // 2 + 1))
        fh, fv = _crop_flip_rng(rng)
        sy = planes_to_ycbcr(s.y[f, y0 : y0 + lr, x0 : x0 + lr], s.uv[f, :, y0 // 2 : (y0 + lr) // 2, x0 // 2 : (x0 + lr) // 2], s.info.bits)
        Y0, X0 = scale * y0, scale * x0
        hy = planes_to_ycbcr(h.y[f, Y0 : Y0 + hr, X0 : X0 + hr], h.uv[f, :, Y0 // 2 : (Y0 + hr) // 2, X0 // 2 : (X0 + hr) // 2], h.info.bits)
        sdr = _flip(_sdr_codes(s, sy), fh, fv)
        hdr = _flip(_hdr_codes(h, hy, deg.peak), fh, fv)
        return _codes(sdr, hdr)


class MatSource(Source):
    """The authors' patches; ``indices`` select the patches of this split."""

    def __init__(self, sdr: MatPatches, hdr: MatPatches, indices: np.ndarray, name: str = "authors-mat") -> None:
        super().__init__(names=[name], kind="authors' .mat patch sets")
        self.sdr, self.hdr = sdr, hdr
        self.indices = np.asarray(indices, dtype=np.int64)

    def weight(self, i: int, hr: int) -> float:
        return float(len(self.indices))

    def check_size(self, hr: int) -> None:
        if self.hdr.height != hr or self.hdr.width != hr:
            raise InputError(f"{self.hdr.path}: patches are {self.hdr.width}x{self.hdr.height}, but the HR patch is {hr}x{hr}")

    def item(self, k: int, fh: bool, fv: bool) -> tuple[np.ndarray, np.ndarray]:
        n = int(self.indices[k])
        s = np.clip(np.round(self.sdr[n]), 0, 255).astype(np.uint8)
        h = np.clip(np.round(self.hdr[n]), 0, 1023).astype(np.int16)
        return _flip(s, fh, fv), _flip(h, fh, fv)

    def patch(self, i, rng, hr, scale, deg):  # noqa: ANN001, ANN201
        k = int(rng.integers(len(self.indices)))
        fh, fv = _crop_flip_rng(rng)
        return self.item(k, fh, fv)


# --------------------------------------------------------------------------- discovery


@dataclass
class DataSpec:
    """Everything found under the ``--data`` paths, split into training and validation sources."""

    train: list[Source]
    val: list[Source]
    heldout: list[str]
    files: list[Path]

    def describe(self) -> str:
        parts = [s.describe() for s in self.train]
        return ", ".join(parts) + f"; held out: {', '.join(self.heldout) or 'none'}"

    @property
    def mat_only(self) -> bool:
        return len(self.train) == 1 and isinstance(self.train[0], MatSource)


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


def collect_sources(*args, **kwargs) -> DataSpec:  # noqa: D103 - documented on _collect_sources
    with single_thread():
        return _collect_sources(*args, **kwargs)


def _kind(path: Path) -> str | None:
    """"still", "video" or "mat" by file suffix; None for anything else."""
    suf = path.suffix.lower()
    if suf in EXR_SUFFIXES:
        return "still"
    if suf in VIDEO_SUFFIXES:
        return "video"
    return "mat" if suf == ".mat" else None


def _collect_sources(
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
    if not data:
        raise InputError("no --data given: name a folder of HDR stills / videos, sdr/+hdr/ pairs or the authors' .mat files")
    stills: list[Path] = []
    videos: list[Path] = []
    mats: list[Path] = []
    pairs: list[tuple[Path, Path]] = []
    photo_pairs: list[Path] = []
    kinds = {"still": stills, "video": videos, "mat": mats}
    for d in data:
        root = Path(d)
        if not root.exists():
            raise InputError(f"data path not found: {root}")
        if root.is_dir():
            if not os.access(root, os.R_OK | os.X_OK):
                raise InputError(f"{root}: cannot read this data folder (permission denied)")
            has_pairs = (root / "sdr").is_dir() and (root / "hdr").is_dir()
            found_pairs = _find_pairs(root) if has_pairs else []
            pairs.extend(found_pairs)
            files = _walk(root)
            if has_pairs:
                files = [f for f in files if not (f.is_relative_to(root / "sdr") or f.is_relative_to(root / "hdr"))]
            found_photo = sorted({f.parent for f in files if f.name == HDR_FILE and is_pair_dir(f.parent)})
            photo_pairs.extend(found_photo)
            files = [f for f in files if f.parent not in set(found_photo) or f.name not in (SDR_FILE, HDR_FILE)]
            n0 = len(stills) + len(videos) + len(mats)
            for f in files:
                kind = _kind(f)
                if kind is not None:
                    kinds[kind].append(f)
            if len(stills) + len(videos) + len(mats) == n0 and not found_pairs and not found_photo:
                raise InputError(
                    f"{root}: no training data found (expected .exr stills, HDR videos, sdr/ + hdr/ video pairs, "
                    "NAME/sdr.png + NAME/hdr.exr photo pairs, or the authors' SDR_youtube_80.mat + HDR_youtube_80.mat)"
                )
        else:
            kind = _kind(root)
            if kind is not None:
                kinds[kind].append(root)
            else:
                raise InputError(f"{root}: not a training data file (.exr, an HDR video or a .mat) or folder")
    # De-duplicate (a file reached through two --data paths).
    stills = list(dict.fromkeys(p.resolve() for p in stills))
    videos = list(dict.fromkeys(p.resolve() for p in videos))
    mats = list(dict.fromkeys(p.resolve() for p in mats))
    photo_pairs = list(dict.fromkeys(p.resolve() for p in photo_pairs))
    named = [*stills, *videos, *(s for s, _ in pairs)]
    names = [scene_name(p) for p in named] + [p.name for p in photo_pairs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        clash = [str(p) for p in [*named, *photo_pairs] if (p.name if p in photo_pairs else scene_name(p)) == dup[0]]
        raise InputError(f"{clash[-1]}: scene name {dup[0]!r} is used by two files ({clash[0]}); rename one (the validation split goes by name)")
    unknown = [n for n in heldout if n.lower() not in {m.lower() for m in names}]
    if unknown:
        raise InputError(f"--heldout {unknown[0]}: no scene of that name in the --data paths")
    train_names, held = split_scenes(names, heldout_fraction, heldout)
    held_set = set(held)

    train: list[Source] = []
    val: list[Source] = []

    def _add(src_cls, items, key, *args):  # noqa: ANN001, ANN202
        tr = [x for x in items if key(x) not in held_set]
        va = [x for x in items if key(x) in held_set]
        if tr:
            train.append(src_cls(tr, *args))
        if va:
            val.append(src_cls(va, *args))

    _add(StillSource, stills, scene_name)
    _add(HdrVideoSource, videos, scene_name, max_video_frames)
    _add(PairedVideoSource, pairs, lambda sp: scene_name(sp[0]), scale, max_video_frames)
    _add(StillPairSource, photo_pairs, lambda d: d.name)
    mp = find_mat_pair(mats, scale) if mats else None
    if mp is not None:
        sdr, hdr = mp
        n = len(sdr)
        n_val = min(MAT_VAL_PATCHES, n // 10) if n >= 2 else 0
        train.append(MatSource(sdr, hdr, np.arange(0, n - n_val)))
        if n_val:
            val.append(MatSource(sdr, hdr, np.arange(n - n_val, n), name="authors-mat-heldout"))
    elif mats and not (stills or videos or pairs or photo_pairs):
        raise InputError(f"{mats[0]}: only the authors' test sets (SDR_YUV / HDR_YUV) were found; training needs SDR_data / HDR_data")
    if not train:
        raise InputError(f"{data[0]}: no training scenes left after holding out {', '.join(held)} for validation")
    for src in train + val:
        src.check_size(hr_patch)  # type: ignore[attr-defined]
    files = [*stills, *videos, *[p for pr in pairs for p in pr], *mats, *(d / f for d in photo_pairs for f in (SDR_FILE, HDR_FILE))]
    return DataSpec(train=train, val=val, heldout=[n for n in held] + (["authors-mat (last patches)"] if mp and val and isinstance(val[-1], MatSource) else []), files=files)


# --------------------------------------------------------------------------- torch datasets


def _pick(sources: Sequence[Source], cum: np.ndarray, table: list[tuple[int, int]], rng: np.random.Generator) -> tuple[Source, int]:
    u = rng.random() * cum[-1]
    j = int(np.searchsorted(cum, u, side="right"))
    j = min(j, len(table) - 1)
    si, i = table[j]
    return sources[si], i


class _Sampler:
    """Scene table and cumulative sampling weights.

    Scenes are drawn in proportion to their patch count; with ``real_share``
    (0..1) the real pairs' weights are scaled so that this share of patches
    comes from them (when both real and synthesised scenes are present).
    """

    def __init__(self, sources: Sequence[Source], hr: int, real_share: float | None = None) -> None:
        self.sources = list(sources)
        self.table = [(si, i) for si, s in enumerate(self.sources) for i in range(len(s.names))]
        w = np.array([self.sources[si].weight(i, hr) for si, i in self.table], dtype=np.float64)
        self.epoch_size = int(w.sum())
        real = np.array([self.sources[si].real for si, _ in self.table], dtype=bool)
        if real_share is not None and real.any() and (~real).any():
            w = np.where(real, w * real_share / w[real].sum(), w * (1.0 - real_share) / w[~real].sum())
        self.cum = np.cumsum(w)


class TrainPatches(Dataset):
    """Training patches; item ``g`` is a pure function of ``(seed, stream, g)`` (see the module doc).

    ``stream`` separates the sample sequences of the two training stages;
    ``real_share`` is the share of patches drawn from real SDR/HDR pairs
    (default: in proportion to their patch count).

    Returns ``(sdr uint8 3 x hr/s x hr/s, hdr int16 3 x hr x hr)`` as torch tensors.
    When the only source is the authors' .mat file, items follow a seeded
    permutation per epoch (every patch once per epoch, as the paper trained).
    """

    def __init__(
        self, sources: Sequence[Source], *, scale: int, seed: int, hr_patch: int = 160,
        degradation: Degradation = Degradation(), stream: int = 0, real_share: float | None = None,
    ) -> None:
        if hr_patch % (2 * scale):
            raise ValueError(f"HR patch {hr_patch} must be a multiple of 2 x scale = {2 * scale}")
        self.sources = list(sources)
        self.scale, self.seed, self.hr, self.deg, self.stream = scale, int(seed), hr_patch, degradation, int(stream)
        self._s = _Sampler(self.sources, hr_patch, real_share)
        self._mat = self.sources[0] if len(self.sources) == 1 and isinstance(self.sources[0], MatSource) else None
        self._perm: tuple[int, np.ndarray] | None = None

    @property
    def epoch_size(self) -> int:
        """Patches in one epoch: the .mat patch count, else non-overlapping HR patches of all scenes."""
        return len(self._mat.indices) if self._mat is not None else self._s.epoch_size

    def __len__(self) -> int:  # effectively unbounded; the sampler decides
        return 2**62

    def __getitem__(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        with single_thread():
            return self._item(g)

    def _item(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.stream, int(g)])
        if self._mat is not None:
            n = len(self._mat.indices)
            epoch, pos = divmod(int(g), n)
            if self._perm is None or self._perm[0] != epoch:
                self._perm = (epoch, np.random.default_rng([self.seed, self.stream, epoch, 7]).permutation(n))
            fh, fv = _crop_flip_rng(rng)
            s, h = self._mat.item(int(self._perm[1][pos]), fh, fv)
        else:
            src, i = _pick(self.sources, self._s.cum, self._s.table, rng)
            s, h = src.patch(i, rng, self.hr, self.scale, self.deg)
        return torch.from_numpy(np.ascontiguousarray(s)), torch.from_numpy(np.ascontiguousarray(h))


class ValPatches:
    """The fixed validation set: ``n`` patches of the held-out scenes, drawn with :data:`VAL_SEED`.

    Built once in memory (integer codes). The authors' .mat hold-out is used
    as it is (all its patches, no flips), up to ``n``.
    """

    def __init__(self, sources: Sequence[Source], *, scale: int, n: int = 500, hr_patch: int = 160, degradation: Degradation = Degradation()) -> None:
        self.sdr: torch.Tensor
        self.hdr: torch.Tensor
        sdrs: list[np.ndarray] = []
        hdrs: list[np.ndarray] = []
        mats = [s for s in sources if isinstance(s, MatSource)]
        others = [s for s in sources if not isinstance(s, MatSource)]
        for m in mats:
            for k in range(min(len(m.indices), n)):
                s, h = m.item(k, False, False)
                sdrs.append(s)
                hdrs.append(h)
        rest = n - len(sdrs)
        if others and rest > 0:
            self._draw(others, rest, scale, hr_patch, degradation, sdrs, hdrs)
        lr = hr_patch // scale
        self.sdr = torch.from_numpy(np.stack(sdrs)) if sdrs else torch.zeros(0, 3, lr, lr, dtype=torch.uint8)
        self.hdr = torch.from_numpy(np.stack(hdrs)) if hdrs else torch.zeros(0, 3, hr_patch, hr_patch, dtype=torch.int16)

    @staticmethod
    def _draw(others, rest, scale, hr_patch, degradation, sdrs, hdrs) -> None:  # noqa: ANN001
        with single_thread():
            smp = _Sampler(others, hr_patch)
            for i in range(rest):
                rng = np.random.default_rng([VAL_SEED, i])
                src, j = _pick(others, smp.cum, smp.table, rng)
                s, h = src.patch(j, rng, hr_patch, scale, degradation)
                sdrs.append(s)
                hdrs.append(h)

    def __len__(self) -> int:
        return int(self.sdr.shape[0])

    def batches(self, batch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, len(self), batch):
            yield self.sdr[i : i + batch], self.hdr[i : i + batch]


class StepBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of global sample indices for steps ``start .. stop-1``.

    Step ``k`` uses samples ``k * batch .. (k+1) * batch - 1``; with
    ``world`` processes rank ``r`` takes its contiguous ``batch / world`` share,
    so the global batch is the same for any number of processes.
    """

    def __init__(self, start: int, stop: int, batch: int, rank: int = 0, world: int = 1) -> None:
        if batch % world:
            raise ValueError(f"batch size {batch} is not divisible by the {world} processes")
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch, rank, world
        self.local = batch // world

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        for k in range(self.start, self.stop):
            base = k * self.batch + self.rank * self.local
            yield list(range(base, base + self.local))
