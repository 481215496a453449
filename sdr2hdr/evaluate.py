"""Evaluation: frame-aligned prediction/reference pairs -> the paper's metrics.

Every frame handed to :func:`evaluate` is a ``3 x H x W`` float tensor of
Y'CbCr planes, BT.2020 non-constant-luminance matrix, PQ transfer, 4:4:4,
limited-range 10-bit code values / 1023 (the model's output convention).

HDR-VDP works on absolute luminance. It is obtained from each frame as a
display would: Y'CbCr -> R'G'B' (BT.2020 NCL, limited range), R'G'B' clipped
to [0, 1], SMPTE ST 2084 EOTF -> linear BT.2020 RGB in cd/m², then
Y = 0.2627 R + 0.6780 G + 0.0593 B (BT.2020 luminance weights).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sdr2hdr import color
from sdr2hdr.color import tags
from sdr2hdr.errors import InputError, Sdr2HdrError, one_line
from sdr2hdr.metrics import METRICS, PPD_4K_30IN_1P5M, hdrvdp

#: Metric names accepted by ``--metrics``; hdrvdp is opt-in (slow).
ALL_METRICS = (*METRICS, "hdrvdp")  # the Y'CbCr metrics of sdr2hdr.metrics, then HDR-VDP on display light
DEFAULT_METRICS = tuple(METRICS)  # HDR-VDP is slow: asked for by name

#: Default viewing condition: a 30-inch 3840x2160 display seen from 1.5 m (about 152.15 ppd).
DEFAULT_PPD = PPD_4K_30IN_1P5M


def parse_metrics(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"psnr,ssim"`` -> ("psnr", "ssim"); unknown names raise a one-line error."""
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not names:
        raise Sdr2HdrError("no metric given (choose from " + ", ".join(ALL_METRICS) + ")")
    bad = [n for n in names if n not in ALL_METRICS]
    if bad:
        raise Sdr2HdrError(f"unknown metric {bad[0]!r} (choose from {', '.join(ALL_METRICS)})")
    return tuple(dict.fromkeys(names))


def ycbcr_to_luminance(frame: torch.Tensor) -> torch.Tensor:
    """HDR10 Y'CbCr code / 1023 (``3 x H x W``) -> absolute luminance in cd/m² (``H x W``, float64)."""
    return color.luminance(color.hdr10_to_linear(frame.double()), "bt2020")


@dataclass
class EvalResult:
    """Per-frame values and their means. ``flagged`` lists frames whose mPSNR kept no exposure
    (the original's -1 sentinel); they are excluded from the mPSNR mean, and counted here."""

    metrics: tuple[str, ...]
    per_frame: list[dict[str, float]] = field(default_factory=list)
    settings: dict[str, object] = field(default_factory=dict)
    flagged: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def means(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for m in self.metrics:
            vals = [f[m] for f in self.per_frame if m in f and not (m == "mpsnr" and f["frame"] in self.flagged)]
            out[m] = float(np.mean(vals)) if vals else float("nan")
        return out

    def to_json(self) -> dict[str, object]:
        def clean(v: float) -> float | str:
            return v if math.isfinite(v) else str(v)

        return {
            "settings": self.settings,
            "frames": len(self.per_frame),
            "means": {k: clean(v) for k, v in self.means.items()},
            "mpsnr_no_exposure_kept": self.flagged,
            "per_frame": [{k: clean(v) if isinstance(v, float) else v for k, v in f.items()} for f in self.per_frame],
            "seconds": self.seconds,
        }

    def write_json(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2))


def frame_metrics(
    pred: torch.Tensor, ref: torch.Tensor, metrics: Sequence[str], *, ppd: float = DEFAULT_PPD
) -> dict[str, float]:
    """All requested metrics on one frame pair (``3 x H x W`` HDR10 Y'CbCr code / 1023)."""
    if pred.shape != ref.shape:
        raise InputError(f"prediction and reference sizes differ: {tuple(pred.shape)} vs {tuple(ref.shape)}")
    out: dict[str, float] = {}
    for name in metrics:
        try:
            if name == "hdrvdp":
                out[name] = float(hdrvdp(ycbcr_to_luminance(pred), ycbcr_to_luminance(ref), pixels_per_degree=ppd).Q)
            else:
                out[name] = float(METRICS[name](pred, ref))
        except ValueError as exc:  # e.g. msssim on frames under 176x176
            raise InputError(f"{name}: {one_line(exc)}") from None
    return out


def evaluate(
    pairs: Iterable[tuple[int, torch.Tensor, torch.Tensor]],
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    ppd: float = DEFAULT_PPD,
    settings: dict[str, object] | None = None,
    progress: Callable[[int], None] | None = None,
) -> EvalResult:
    """Compute ``metrics`` on each (frame index, prediction, reference) and collect the results."""
    result = EvalResult(tuple(metrics), settings=dict(settings or {}))
    result.settings.setdefault("metrics", list(metrics))
    result.settings.setdefault("pixels_per_degree", ppd)
    t0 = time.perf_counter()
    for idx, pred, ref in pairs:
        vals = frame_metrics(pred, ref, metrics, ppd=ppd)
        if "mpsnr" in vals and vals["mpsnr"] == -1.0:
            result.flagged.append(idx)
        result.per_frame.append({"frame": idx, **vals})
        if progress:
            progress(1)
    result.seconds = time.perf_counter() - t0
    if not result.per_frame:
        raise InputError("no frames to evaluate (check --frames / --every and the inputs)")
    return result


# ------------------------------------------------------------------ sources


FRAME_SUFFIXES = (".npy", ".png", ".tif", ".tiff")


def _read_frame_file(path: Path) -> torch.Tensor:
    """One HDR10 frame file -> ``3 x H x W`` float32 Y'CbCr code / 1023.

    * ``.npy``: Y'CbCr planes, ``3 x H x W`` or ``H x W x 3``; float values are
      code / 1023, integer values are 10-bit codes.
    * 16-bit ``.png`` / ``.tif``: full-range R'G'B' (PQ, BT.2020) as exported by
      ``ffmpeg -pix_fmt rgb48``; re-encoded to limited-range Y'CbCr BT.2020.
    """
    if path.suffix == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read frame {path} ({exc})") from None
        if a.ndim != 3 or 3 not in (a.shape[0], a.shape[-1]):
            raise InputError(f"{path}: expected 3 x H x W or H x W x 3 Y'CbCr planes, got shape {a.shape}")
        if a.shape[0] != 3:
            a = np.moveaxis(a, -1, 0)
        t = torch.from_numpy(np.ascontiguousarray(a))
        return (t.float() / 1023.0) if not t.is_floating_point() else t.float()
    import av

    try:
        with av.open(str(path)) as c:
            frame = next(c.decode(video=0))
            rgb = frame.to_ndarray(format="rgb48le").astype(np.float32) / 65535.0
    except (av.error.FFmpegError, StopIteration, OSError) as exc:
        raise InputError(f"cannot read frame {path} ({one_line(exc)})") from None
    t = torch.from_numpy(np.moveaxis(rgb, -1, 0).copy())
    return color.rgb_to_ycbcr(t, "bt2020", full_range=False, bits=10)


def folder_frames(folder: Path) -> list[Path]:
    """Frame files of a folder, sorted by name (``.npy``, 16-bit ``.png``/``.tif``)."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    if not files:
        raise InputError(f"no frame files ({', '.join(FRAME_SUFFIXES)}) in {folder}")
    return files


@dataclass(frozen=True)
class FrameSelection:
    """Which frames to evaluate: ``--frames START:STOP`` (0-based, end-exclusive) and ``--every N``.

    Works on streams of unknown length: ``i in sel`` says whether to use frame
    i, ``sel.done(i)`` whether no later frame can be selected.
    """

    start: int = 0
    stop: int | None = None
    every: int = 1

    @classmethod
    def parse(cls, frames: str | None, every: int = 1) -> "FrameSelection":
        if every < 1:
            raise Sdr2HdrError(f"--every must be >= 1, got {every}")
        if not frames:
            return cls(0, None, every)
        a, sep, b = frames.partition(":")
        try:
            start = int(a) if a else 0
            stop = int(b) if b else None
            if not sep:  # a single number N means the first N frames
                start, stop = 0, int(a)
        except ValueError:
            raise Sdr2HdrError(f"--frames expects START:STOP (or N), got {frames!r}") from None
        if start < 0 or (stop is not None and stop <= start):
            raise Sdr2HdrError(f"--frames {frames!r} selects no frame")
        return cls(start, stop, every)

    def __contains__(self, i: int) -> bool:
        return i >= self.start and (self.stop is None or i < self.stop) and (i - self.start) % self.every == 0

    def done(self, i: int) -> bool:
        return self.stop is not None and i >= self.stop - 1

    def filter(self, frames: Iterable[tuple[int, torch.Tensor]]) -> Iterator[tuple[int, torch.Tensor]]:
        for i, f in frames:
            if i in self:
                yield i, f
            if self.done(i):
                return


def iter_folder(folder: Path, select: FrameSelection | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """(index, ``3 x H x W`` HDR10 Y'CbCr code / 1023) for each selected frame file of ``folder``, in name order."""
    select = select or FrameSelection()
    for i, f in enumerate(folder_frames(folder)):
        if i in select:
            yield i, _read_frame_file(f)
        if select.done(i):
            return


def _is_mat(path: Path) -> bool:
    return path.suffix.lower() == ".mat"


def iter_mat(path: Path, key: str, bits: int, select: FrameSelection | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """Frames of the authors' test ``.mat`` (``HDR_YUV`` 10-bit, ``SDR_YUV`` 8-bit) as ``3 x H x W`` code / (2**bits-1)."""
    from sdr2hdr.data.mat import MatPatches

    frames = MatPatches(path, key)
    select = select or FrameSelection()
    for i in range(len(frames)):
        if i in select:
            yield i, torch.from_numpy(frames[i]) / float(2**bits - 1)
        if select.done(i):
            return


def iter_hdr10_video(path: Path, select: FrameSelection | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """Frames of an HDR10 (PQ) video as ``3 x H x W`` float32 Y'CbCr code / 1023 (chroma up-sampled, "left" sited).

    Probed and decoded as ``convert`` does (coded size, not deinterlaced, any
    layout turned into 10-bit 4:2:0). A video whose bitstream or container does
    not say PQ is refused: comparing against SDR or HLG code values would give
    meaningless numbers; so is one that breaks off or ends before its index does.
    """
    from sdr2hdr.video.probe import probe
    from sdr2hdr.video.reader import FrameReader

    info = probe(path, deinterlace="off", allow_hdr=True)
    if info.transfer != tags.PQ_NAME:
        raise InputError(f"{path} is not HDR10 video (transfer {info.transfer}, not SMPTE ST 2084 / PQ)")
    reader = FrameReader(info, allow_truncated=True, select=select or FrameSelection(), yuv420_bits=10)
    for frame in reader:
        yield frame.index, _hdr10_ycbcr(frame.planes)
    if reader.truncated:
        raise InputError(f"{path} is truncated or damaged: {reader.truncated}")


def _hdr10_ycbcr(planes: tuple[np.ndarray, ...]) -> torch.Tensor:
    """10-bit 4:2:0 Y, Cb, Cr planes -> ``3 x H x W`` float32 code / 1023, chroma up-sampled ("left" siting)."""
    from sdr2hdr.color.chroma import upsample_chroma

    y, cb, cr = (torch.from_numpy(p.astype(np.int32)).to(torch.float32) for p in planes)
    h, w = y.shape
    c = upsample_chroma(torch.stack((cb, cr)), h, w, 2, 2, "left")
    return torch.cat((y.unsqueeze(0), c), dim=0) / 1023.0


def iter_hdr_source(path: Path, select: FrameSelection | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """HDR10 frames from a video file, a folder of frame files or the authors' ``testset_HDR.mat``."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"not found: {path}")
    if path.is_dir():
        return iter_folder(path, select)
    if _is_mat(path):
        return iter_mat(path, "HDR_YUV", 10, select)
    return iter_hdr10_video(path, select)


def iter_sdr_source(path: Path, select: FrameSelection | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """Model input frames (``3 x H x W`` BT.709 limited Y'CbCr code / 255) from an SDR video or ``testset_SDR_x*.mat``.

    Videos go through the same probe, decoder and colour path as ``convert``
    (BT.601 / full range converted, HDR refused).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"not found: {path}")
    if _is_mat(path):
        return iter_mat(path, "SDR_YUV", 8, select)
    return _iter_sdr_video(path, select or FrameSelection())


def _iter_sdr_video(path: Path, select: FrameSelection) -> Iterator[tuple[int, torch.Tensor]]:
    from sdr2hdr.inference.model_io import model_input
    from sdr2hdr.video.probe import probe
    from sdr2hdr.video.reader import FrameReader

    for frame in FrameReader(probe(path), select=select):
        yield frame.index, model_input([frame])[0]


def predict(model: Callable[[torch.Tensor], torch.Tensor], sdr: Iterable[tuple[int, torch.Tensor]]) -> Iterator[tuple[int, torch.Tensor]]:
    """Run ``model`` (e.g. a :class:`~sdr2hdr.inference.tiling.TiledModel`) on each SDR frame; no re-encoding in between."""
    for i, x in sdr:
        yield i, model(x.unsqueeze(0))[0].float().cpu()


def aligned(
    pred: Iterable[tuple[int, torch.Tensor]], ref: Iterable[tuple[int, torch.Tensor]], *, names: tuple[str, str] = ("prediction", "reference")
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Pair frames by index; one source ending before the other is a one-line error (frame counts differ)."""
    pi, ri = iter(pred), iter(ref)
    n = 0
    while True:
        p = next(pi, None)
        r = next(ri, None)
        if p is None and r is None:
            return
        if p is None or r is None:
            short, long_ = (names[0], names[1]) if p is None else (names[1], names[0])
            raise InputError(f"frame counts differ: the {short} ends after {n} selected frames, the {long_} goes on")
        if p[0] != r[0]:
            raise InputError(f"frames are not aligned (prediction frame {p[0]} vs reference frame {r[0]})")
        n += 1
        yield p[0], p[1], r[1]
