"""A small decoder of video frames to Y'CbCr code-value planes (PyAV), for training data.

HDR10 / HLG clips (10-bit, BT.2020) are the ground-truth side of synthesised
pairs and of real graded pairs; SDR clips are the input side of real pairs.
Frames are kept as integer 4:2:0 planes (``uint16``: ``y`` ``H x W``, ``uv``
``2 x H/2 x W/2``), which is what the bitstream holds and half the
memory of 4:4:4; patches are converted with :func:`planes_to_ycbcr`
(the bilinear "left"-sited chroma up-sampling of ``sdr2hdr convert``,
:func:`sdr2hdr.video.frames.upsample_chroma`, also used by
:mod:`sdr2hdr.data.degrade` for the synthesised SDR input).

Colour tags are read from the decoder (the bitstream), not the container:
``androidx_media__hdr10-video-with-sdr-container.mp4`` is PQ although its
container says SDR. Every failure is a one-line
:class:`~sdr2hdr.errors.InputError` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sdr2hdr import color
from sdr2hdr.errors import InputError, one_line

__all__ = ["VIDEO_SUFFIXES", "VideoInfo", "VideoFrames", "probe", "decode_frames", "planes_to_ycbcr", "hdr_to_display"]

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".m4v", ".ts", ".m2ts", ".mts", ".hevc", ".h265", ".265", ".ivf", ".y4m", ".avi")

# FFmpeg AVColorTransferCharacteristic / AVColorPrimaries / AVColorSpace codes.
_TRC = {1: "bt709", 6: "bt709", 14: "bt709", 15: "bt709", 4: "gamma22", 5: "gamma28", 13: "srgb", 16: "pq", 18: "hlg"}
_PRIMARIES = {1: "bt709", 9: "bt2020", 5: "bt601", 6: "bt601", 12: "p3d65"}
_MATRIX = {1: "bt709", 9: "bt2020", 10: "bt2020", 5: "bt601", 6: "bt601"}


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    frames: int  # from the container; 0 when unknown
    bits: int
    transfer: str  # "pq", "hlg", "bt709", ... or "unknown"
    primaries: str  # "bt2020", "bt709", ... or "unknown"
    matrix: str  # "bt2020", "bt709", "bt601" or "unknown"
    full_range: bool

    @property
    def is_hdr(self) -> bool:
        return self.transfer in ("pq", "hlg")


@dataclass
class VideoFrames:
    """Decoded frames: ``y`` ``N x H x W`` and ``uv`` ``N x 2 x H/2 x W/2`` integer codes."""

    info: VideoInfo
    y: np.ndarray
    uv: np.ndarray
    indices: list[int]

    def __len__(self) -> int:
        return int(self.y.shape[0])


def _open(path: Path):  # noqa: ANN202
    import av

    if not path.is_file():
        raise InputError(f"video not found: {path}")
    try:
        c = av.open(str(path))
    except Exception as exc:  # noqa: BLE001 - PyAV raises many types
        raise InputError(f"{path}: cannot open this video ({one_line(exc)})") from None
    if not c.streams.video:
        c.close()
        raise InputError(f"{path}: has no video stream")
    return c


def _info_from(path: Path, stream, frame=None) -> VideoInfo:  # noqa: ANN001
    cc = stream.codec_context
    src = frame if frame is not None else cc
    fmt = (frame.format.name if frame is not None else (cc.format.name if cc.format else "")) or ""
    bits = 10 if "p10" in fmt else 12 if "p12" in fmt else 16 if "p16" in fmt else 8
    rng = int(getattr(src, "color_range", 0) or 0)
    return VideoInfo(
        path=path,
        width=int(src.width),
        height=int(src.height),
        frames=int(stream.frames or 0),
        bits=bits,
        transfer=_TRC.get(int(getattr(src, "color_trc", 2) or 2), "unknown"),
        primaries=_PRIMARIES.get(int(getattr(src, "color_primaries", 2) or 2), "unknown"),
        matrix=_MATRIX.get(int(getattr(src, "colorspace", 2) or 2), "unknown"),
        full_range=(rng == 2) or fmt.startswith("yuvj"),
    )


def probe(path: str | Path) -> VideoInfo:
    """Colour tags and size of the first video stream (decodes one frame for the bitstream's tags)."""
    path = Path(path)
    c = _open(path)
    try:
        s = c.streams.video[0]
        try:
            first = next(c.decode(s), None)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{path}: cannot decode this video ({one_line(exc)})") from None
        if first is None:
            raise InputError(f"{path}: the video has no decodable frames")
        return _info_from(path, s, first)
    finally:
        c.close()


def _frame_planes(frame, bits: int) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """A decoded frame -> (Y ``H x W``, UV ``2 x H/2 x W/2``) uint16 codes at ``bits``."""
    name = frame.format.name
    want = "yuv420p10le" if bits > 8 else "yuv420p"
    if name.replace("yuvj", "yuv") != want:
        frame = frame.reformat(format=want)
    a = frame.to_ndarray()
    h, w = frame.height, frame.width
    y = a[:h]
    u = a[h : h + h // 4].reshape(h // 2, w // 2)
    v = a[h + h // 4 : h + h // 2].reshape(h // 2, w // 2)
    return y.astype(np.uint16), np.stack([u, v]).astype(np.uint16)


def decode_frames(path: str | Path, max_frames: int | None = 48, *, require_hdr: bool | None = None) -> VideoFrames:
    """Decode up to ``max_frames`` frames, evenly spread over the clip, as integer planes.

    ``require_hdr`` True: refuse anything that is not PQ or HLG; False: refuse
    PQ / HLG (the SDR side of a pair). 10/12-bit sources are kept at 10 bits,
    8-bit ones at 8. Odd frame sizes are cropped to even.
    """
    path = Path(path)
    c = _open(path)
    try:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        total = int(s.frames or 0)
        # Evenly spread: the first frame of each of max_frames equal buckets of
        # the announced length (robust to a container that over-counts).
        spread = max_frames is not None and total > max_frames
        ys: list[np.ndarray] = []
        uvs: list[np.ndarray] = []
        idx: list[int] = []
        info: VideoInfo | None = None
        try:
            for i, frame in enumerate(c.decode(s)):
                if info is None:
                    info = _info_from(path, s, frame)
                    if require_hdr is True and not info.is_hdr:
                        raise InputError(
                            f"{path}: not an HDR video (transfer {info.transfer}); HDR10 (PQ) or HLG expected"
                        )
                    if require_hdr is False and info.is_hdr:
                        raise InputError(f"{path}: is an HDR video ({info.transfer}) where the SDR side of a pair is expected")
                if spread and i > 0 and (i * max_frames) // total == ((i - 1) * max_frames) // total:  # type: ignore[operator]
                    continue
                y, uv = _frame_planes(frame, 10 if info.bits > 8 else 8)
                hh, ww = y.shape[0] // 2 * 2, y.shape[1] // 2 * 2
                ys.append(y[:hh, :ww])
                uvs.append(uv[:, : hh // 2, : ww // 2])
                idx.append(i)
                if max_frames is not None and len(ys) >= max_frames:
                    break
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001
            if not ys:
                raise InputError(f"{path}: cannot decode this video ({one_line(exc)})") from None
        if info is None or not ys:
            raise InputError(f"{path}: the video has no decodable frames")
        bits = 10 if info.bits > 8 else 8
        info = VideoInfo(**{**info.__dict__, "bits": bits})
        return VideoFrames(info=info, y=np.stack(ys), uv=np.stack(uvs), indices=idx)
    finally:
        c.close()


def planes_to_ycbcr(y: np.ndarray, uv: np.ndarray, bits: int) -> torch.Tensor:
    """Integer 4:2:0 planes -> ``3 x H x W`` float32 code values / (2**bits - 1), chroma up-sampled
    ("left" siting, bilinear, as ``sdr2hdr convert`` does)."""
    from sdr2hdr.video.frames import upsample_chroma

    peak = float(2**bits - 1)
    yt = torch.from_numpy(np.ascontiguousarray(y).astype(np.float32))[None] / peak
    ct = torch.from_numpy(np.ascontiguousarray(uv).astype(np.float32)) / peak
    cu = upsample_chroma(ct, yt.shape[1], yt.shape[2], 2, 2, "left")
    return torch.cat([yt, cu], dim=0)


def hdr_to_display(ycbcr: torch.Tensor, info: VideoInfo, *, hlg_peak: float = 1000.0) -> torch.Tensor:
    """HDR Y'CbCr code/(2**bits-1) -> display light, linear BT.2020 RGB in cd/m².

    PQ: the ST 2084 EOTF. HLG: the BT.2100 HLG EOTF for a ``hlg_peak`` display.
    The matrix is BT.2020 NCL unless tagged otherwise.
    """
    matrix = info.matrix if info.matrix in ("bt2020", "bt709", "bt601") else "bt2020"
    rgb_p = color.ycbcr_to_rgb(ycbcr, matrix, full_range=info.full_range, bits=info.bits).clamp(0.0, 1.0)  # type: ignore[arg-type]
    if info.transfer == "pq":
        lin = color.pq_eotf(rgb_p)
    elif info.transfer == "hlg":
        lin = color.hlg_eotf(rgb_p, peak=hlg_peak)
    else:
        raise InputError(f"{info.path}: not an HDR video (transfer {info.transfer})")
    if info.primaries not in ("bt2020", "unknown"):
        lin = color.convert_primaries(lin, info.primaries, "bt2020")
    return lin
