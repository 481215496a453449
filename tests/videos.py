"""Small SDR (and HDR) test clips, generated on the fly.

Pictures come from the real HDR stills in ``../shared/data/stills`` when that
folder exists (a crop panning across a scene-linear photograph, tone-mapped
to SDR), else from the procedural sample scene. They are encoded with PyAV
(:func:`sdr2hdr.video.sample.encode_sdr`), which writes the Y'CbCr planes we
compute ourselves, so every clip's matrix, range and code values are known.
"""

from __future__ import annotations

import os
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.helpers import SHARED

from sdr2hdr import color
from sdr2hdr.color import tags
from sdr2hdr.inference.model_io import frame_to_hdr10_ycbcr
from sdr2hdr.video import frames as fr
from sdr2hdr.video.sample import encode_sdr, render_frame

os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only

STILL = SHARED / "data" / "stills" / "openexr-images" / "ScanLines_StillLife.exr"


@lru_cache(maxsize=1)
def _still_sdr() -> torch.Tensor | None:
    """A real HDR still tone-mapped to SDR R'G'B' (3 x H x W, float64), or None without ../shared."""
    if not STILL.is_file():
        return None
    from sdr2hdr.data.exr import read_exr

    lin = torch.from_numpy(np.asarray(read_exr(STILL, np.float32), dtype=np.float64)).permute(2, 0, 1)
    lum = color.luminance(lin, "bt709")
    key = float(torch.exp(torch.log(lum.clamp(min=1e-6)).mean()))  # log-average (Reinhard's key)
    x = lin / key * 0.12
    x = x * (1 + x / 16.0) / (1 + x)  # extended Reinhard, white at 4
    return color.bt1886_inverse_eotf(x.clamp(0, 1) * 100.0).clamp(0, 1)


def scene(n: int, width: int, height: int) -> list[torch.Tensor]:
    """``n`` SDR R'G'B' frames of ``width x height``: a pan over a real still (or the procedural scene)."""
    still = _still_sdr()
    if still is None:
        return [render_frame(i / 24, width, height) for i in range(n)]
    _, sh, sw = still.shape
    ch, cw = sh // 3, int(sh // 3 * width / height)
    out = []
    for i in range(n):
        x0 = int((sw - cw) * (0.2 + 0.6 * i / max(n - 1, 1)))
        y0 = (sh - ch) // 2
        crop = still[:, y0 : y0 + ch, x0 : x0 + cw].unsqueeze(0)
        out.append(F.interpolate(crop, size=(height, width), mode="area")[0].clamp(0, 1))
    return out


def flat(n: int, width: int, height: int, rgb: tuple[float, float, float]) -> list[torch.Tensor]:
    """``n`` frames of one R'G'B' colour."""
    return [torch.tensor(rgb, dtype=torch.float64).view(3, 1, 1).expand(3, height, width).clone() for _ in range(n)]


def make_clip(
    path: Path,
    *,
    n: int = 4,
    size: tuple[int, int] = (32, 24),
    frames: list[torch.Tensor] | None = None,
    fps: float = 24,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    matrix: str = "bt709",
    full_range: bool = False,
    tag: bool = True,
    audio: bool = False,
    options: dict[str, str] | None = None,
) -> Path:
    """Write an SDR clip; ``frames`` default to :func:`scene`. Returns ``path``."""
    w, h = size
    pics = frames if frames is not None else scene(n, w, h)
    opts = dict(options or {})
    if codec == "libx265":
        opts.setdefault("x265-params", "log-level=error")
    encode_sdr(path, pics, fps=fps, pts=pts, time_base=time_base, codec=codec, pix_fmt=pix_fmt, matrix=matrix,
               full_range=full_range, tag=tag, options=opts, audio_seconds=(len(pics) / fps if audio else None))
    return path


def make_hdr10_clip(path: Path, *, n: int = 2, size: tuple[int, int] = (32, 24), tag_transfer: bool = True) -> Path:
    """A 10-bit BT.2020 HEVC clip (PQ-tagged, or with the transfer left unspecified)."""
    w, h = size
    out = av.open(str(path), "w")
    s = out.add_stream("libx265", rate=24)
    cc = s.codec_context
    cc.width, cc.height, cc.pix_fmt = w, h, "yuv420p10le"
    cc.color_primaries, cc.colorspace, cc.color_range = tags.PRI_BT2020, tags.SPC_BT2020_NCL, tags.RANGE_MPEG
    cc.color_trc = tags.TRC_SMPTE2084 if tag_transfer else tags.TRC_UNSPECIFIED
    params = "log-level=error:colorprim=bt2020:colormatrix=bt2020nc" + (":transfer=smpte2084" if tag_transfer else "")
    cc.options = {"x265-params": params}
    for i in range(n):
        y = np.full((h, w), 400 + 20 * i, np.uint16)
        c = np.full((h // 2, w // 2), 512, np.uint16)
        f = fr.hdr10_frame(y, c, c)
        if not tag_transfer:
            f.color_trc = tags.TRC_UNSPECIFIED
        f.pts = i
        for p in s.encode(f):
            out.mux(p)
    for p in s.encode(None):
        out.mux(p)
    out.close()
    return path


def make_audio_only(path: Path, seconds: float = 0.5) -> Path:
    out = av.open(str(path), "w")
    s = out.add_stream("aac", rate=48000)
    s.codec_context.layout = "stereo"
    from sdr2hdr.video.sample import encode_tone

    encode_tone(out, s, seconds)
    out.close()
    return path


def truncate(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


# ------------------------------------------------------------------ checkers


def ffprobe_json(path: Path, *args: str) -> dict:
    import json
    import subprocess

    cmd = ["ffprobe", "-v", "error", "-of", "json", *args, str(path)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def decode_hdr10(path: Path) -> list[torch.Tensor]:
    """Decoded HDR10 frames as ``3 x H x W`` Y'CbCr code / 1023 (chroma up-sampled, "left")."""
    with av.open(str(path)) as c:
        return [frame_to_hdr10_ycbcr(f) for f in c.decode(video=0)]


def decode_hdr10_planes(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoded 10-bit 4:2:0 planes as integer tensors: ``N x H x W`` and ``N x 2 x H/2 x W/2``."""
    ys, cs = [], []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            assert f.format.name == fr.HDR10_PIX_FMT
            w, h = f.width, f.height
            ys.append(torch.from_numpy(fr.plane_array(f.planes[0], w, h, np.dtype(np.uint16)).astype(np.int32)))
            cs.append(torch.stack([torch.from_numpy(fr.plane_array(f.planes[i], w // 2, h // 2, np.dtype(np.uint16))
                                                    .astype(np.int32)) for i in (1, 2)]))
    return torch.stack(ys), torch.stack(cs)


def run_cli(args: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``sdr2hdr ARGS`` in-process: (exit code, stdout, stderr)."""
    from sdr2hdr.cli import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def write_png(path: Path, rgb: np.ndarray, *, pix_fmt: str = "rgb24") -> Path:
    """An ``H x W x 3`` array as a PNG (uint8 -> ``rgb24``; uint16 with ``pix_fmt="rgb48be"``), via PyAV."""
    src_fmt = "rgb24" if rgb.dtype == np.uint8 else "rgb48le"
    with av.open(str(path), "w", format="image2") as out:
        st = out.add_stream("png")
        st.width, st.height, st.pix_fmt = rgb.shape[1], rgb.shape[0], pix_fmt
        for pkt in st.encode(av.VideoFrame.from_ndarray(rgb, format=src_fmt)):
            out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return path
