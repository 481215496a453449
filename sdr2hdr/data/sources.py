"""Training sources: the :class:`Source` interface, the helpers every source shares, and the
sources that are not photo pairs (those are :mod:`sdr2hdr.data.stillpairs`).

A :class:`Source` is a family of scenes that can produce random (LR SDR, HR
HDR10) patches as integer codes: SDR ``uint8`` ``3 x h x w`` (BT.709 limited
Y'CbCr, /255 for the network) and HDR ``int16`` ``3 x H x W`` (BT.2020 PQ
limited Y'CbCr, /1023). Patches are flipped horizontally / vertically at random.

* :class:`StillSource` - scene-linear OpenEXR stills; pairs synthesised by
  :mod:`sdr2hdr.data.degrade` (exposure, tone mapping, down-scaling, ...).
* :class:`HdrVideoSource` - HDR10 / HLG clips; frames are the ground truth,
  the SDR input is synthesised the same way.
* :class:`PairedVideoSource` - real graded pairs ``DIR/sdr/NAME.*`` +
  ``DIR/hdr/NAME.*``, frame-aligned, HDR exactly ``scale`` x the SDR size.
* :class:`MatSource` - the authors' ``SDR_youtube_80*.mat`` /
  ``HDR_youtube_80.mat`` patches (read lazily).

:func:`still_pair` makes a full-frame evaluation pair from one still.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sdr2hdr import color
from sdr2hdr.data import degrade
from sdr2hdr.data.degrade import Degradation
from sdr2hdr.data.exr import read_exr
from sdr2hdr.data.hdrvideo import (
    PQ,
    VideoFrames,
    decode_frames,
    hdr_to_display,
    planes_to_ycbcr,
    ycbcr_matrix,
)
from sdr2hdr.data.mat import MatPatches
from sdr2hdr.data.split import scene_name
from sdr2hdr.errors import InputError

__all__ = [
    "VIDEO_FRAME_WEIGHT",
    "HdrVideoSource",
    "MatSource",
    "PairedVideoSource",
    "Source",
    "StillSource",
    "single_thread",
    "still_pair",
]

#: A clip counts as this many stills of its frame size when sources are mixed.
VIDEO_FRAME_WEIGHT = 4


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside (per-patch ops are tiny: threads only add overhead)."""
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _crop_flip_rng(rng: np.random.Generator) -> tuple[bool, bool]:
    return bool(rng.random() < 0.5), bool(rng.random() < 0.5)


def _flip(a: np.ndarray | torch.Tensor, fh: bool, fv: bool):  # noqa: ANN202
    if isinstance(a, torch.Tensor):
        dims = [d for d, f in ((-1, fh), (-2, fv)) if f]
        return a.flip(dims) if dims else a
    if fh:
        a = a[..., :, ::-1]
    if fv:
        a = a[..., ::-1, :]
    return np.ascontiguousarray(a)


def _codes(sdr: torch.Tensor, hdr: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    s = np.round(sdr.numpy() * 255.0).astype(np.uint8)
    h = np.round(hdr.numpy() * 1023.0).astype(np.int16)
    return s, h


@dataclass
class Source:
    """A family of scenes that can produce (SDR LR, HDR HR) patches. Subclasses fill ``names``."""

    names: list[str] = field(default_factory=list)
    kind: str = ""
    #: True for real SDR/HDR pairs (the SDR is what a camera or colourist made, not synthesised).
    real: bool = False

    def weight(self, i: int, hr: int) -> float:
        """Patches scene ``i`` holds (non-overlapping HR patches); sampling weight."""
        raise NotImplementedError

    def patch(self, i: int, rng: np.random.Generator, hr: int, scale: int, deg: Degradation) -> tuple[np.ndarray, np.ndarray]:
        """One random patch of scene ``i`` as integer codes (SDR uint8, HDR int16)."""
        raise NotImplementedError

    def describe(self) -> str:
        return f"{len(self.names)} {self.kind}"


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
    the held-out scenes (:func:`~sdr2hdr.data.split.split_scenes`) to evaluate trained weights.
    """
    with single_thread():
        img = read_exr(path)
        x = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)
        disp = degrade.scene_to_display(x, degrade.scene_key(img), stops)
        out = degrade.synthesize_pair(disp, scale, np.random.default_rng(seed), operator=operator, h264=h264, config=config)
    return out[0], out[1]


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
            v.y[f, y0 : y0 + hr, x0 : x0 + hr], v.uv[f, :, y0 // 2 : (y0 + hr) // 2, x0 // 2 : (x0 + hr) // 2], v.info.fmt.bits
        )
        disp = _flip(hdr_to_display(ycc, v.info, hlg_peak=deg.peak), fh, fv)
        sdr, hdr = degrade.synthesize_pair(disp, scale, rng, primaries="bt2020", config=deg)  # type: ignore[misc]
        return _codes(sdr, hdr)


def _sdr_codes(v: VideoFrames, ycc: torch.Tensor) -> torch.Tensor:
    """SDR planes (code/(2**bits-1)) -> BT.709 limited 8-bit code/255, rounded."""
    out = color.convert_ycbcr(
        ycc, src_matrix=ycbcr_matrix(v.info, "bt709"), src_full_range=v.info.fmt.full_range,  # type: ignore[arg-type]
        src_bits=v.info.fmt.bits,
        dst_matrix="bt709", dst_full_range=False, dst_bits=8,
    )
    return color.quantize(out, 8)


def _hdr_codes(v: VideoFrames, ycc: torch.Tensor, peak: float) -> torch.Tensor:
    """HDR planes -> BT.2020 PQ limited 10-bit code/1023, rounded.

    A PQ BT.2020 grade is the truth as it is (re-expressed in limited range if
    needed, never clipped); HLG goes through its EOTF for a ``peak`` display.
    """
    if v.info.transfer == PQ and ycbcr_matrix(v.info, "bt2020") == "bt2020" and v.info.primaries in ("bt2020", "unknown"):
        out = color.convert_ycbcr(
            ycc, src_matrix="bt2020", src_full_range=v.info.fmt.full_range, src_bits=v.info.fmt.bits,
            dst_matrix="bt2020", dst_full_range=False, dst_bits=10,
        )
        return color.quantize(out, 10)
    grade_peak = color.PQ_PEAK if v.info.transfer == PQ else peak
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
        sy = planes_to_ycbcr(s.y[f, y0 : y0 + lr, x0 : x0 + lr], s.uv[f, :, y0 // 2 : (y0 + lr) // 2, x0 // 2 : (x0 + lr) // 2], s.info.fmt.bits)
        Y0, X0 = scale * y0, scale * x0
        hy = planes_to_ycbcr(h.y[f, Y0 : Y0 + hr, X0 : X0 + hr], h.uv[f, :, Y0 // 2 : (Y0 + hr) // 2, X0 // 2 : (X0 + hr) // 2], h.info.fmt.bits)
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
