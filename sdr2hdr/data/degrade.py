"""The degradation model: synthesise an (LR SDR, HR HDR10) training pair from HDR light.

This decides what a model trained on synthesised pairs is good at, so every
step is stated here (and in the README, "Training data: the degradation
model"). Colour maths comes from :mod:`sdr2hdr.color`.

Ground truth (HR HDR, the model's output convention)
----------------------------------------------------
1. *Exposure* (scene-linear stills only, :func:`scene_to_display`): the
   scene's log-average luminance (its "key", an 18 % grey card estimate) is
   placed at BT.2408's HDR grey-card level, 26 cd/m², which puts diffuse
   white at 203 cd/m² (BT.2408 reference white), times ``2**e`` with ``e``
   uniform in ``exposure_stops`` (default +-1 stop). HDR videos are already
   display light (PQ EOTF, or the BT.2100 HLG EOTF for a 1000 cd/m² display)
   and are used as they are.
2. Clip each RGB component to the mastering peak (``peak``, 1000 cd/m²).
3. BT.709 -> BT.2020 primaries (stills; HDR videos are BT.2020 already).
4. PQ inverse EOTF, Y'CbCr BT.2020 non-constant-luminance, limited range,
   10-bit, rounded: code values / 1023, chroma at full resolution (4:4:4).

Input (LR SDR, the model's input convention)
--------------------------------------------
1. The same display light (before the peak clip) goes through one tone-mapping
   operator drawn at random (``operators``), after a grading gain ``2**g``, ``g``
   uniform in ``sdr_gain_stops`` (default +-0.5 stop), with HDR reference
   white (203 cd/m²) at SDR white (100 cd/m²) before the gain:

   * ``"eetf"``: the ITU-R BT.2390 EETF (Hermite knee in the PQ domain) from
     [0, peak] to [0, 100] cd/m², on max(R, G, B), hue-preserving;
   * ``"reinhard"``: extended Reinhard on luminance, white point at the peak;
   * ``"hable"``: Hable's filmic curve per component (exposure bias 2,
     W = 11.2), desaturates highlights like a film look;
   * ``"clip"``: a hard clip at SDR white per component (blown highlights).
2. Gamut mapping to BT.709 (BT.2020 sources go out of gamut): each pixel is
   desaturated towards its own luminance just enough to bring every
   component into [0, 1], then clipped.
3. BT.1886 inverse EOTF (gamma 2.4, white 100 cd/m², black 0).
4. Y'CbCr BT.709, limited range, 8-bit scale (unrounded).
5. Anti-aliased down-scaling by the scale factor on the Y'CbCr planes, with a
   kernel drawn from ``downscale_kernels``: bicubic with antialiasing (MATLAB
   ``imresize``-like) or area (box) averaging.
6. 4:2:0 chroma, "left" sited as H.264 / HEVC define it (the same filter
   the HDR10 writer uses, :func:`sdr2hdr.color.chroma.downsample_chroma`),
   8-bit rounding of all planes.
7. With probability ``h264_prob``: one-frame H.264 (libx264, ``veryfast``) at
   a CRF uniform in ``crf_range``; the decoded planes replace the clean ones.
8. Chroma back to full resolution with the decoder-side bilinear, sited
   filter of ``sdr2hdr convert`` (:func:`sdr2hdr.color.chroma.upsample_chroma`),
   rounded to 8-bit: code values / 255, 4:4:4 -- exactly what the network
   gets from a decoded 4:2:0 SDR video at inference.

Determinism: every random choice is drawn from the ``numpy.random.Generator``
passed in, in a fixed order, so a pair is a pure function of the input and
the generator's seed. Sizes: the HR frame is cropped (top-left anchored) to a
multiple of ``2 * scale`` so that the LR frame has even sides (4:2:0).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sdr2hdr import color
from sdr2hdr.color.chroma import downsample_chroma, upsample_chroma

__all__ = [
    "OPERATORS",
    "Degradation",
    "scene_key",
    "scene_to_display",
    "hdr_target",
    "tone_map",
    "gamut_map",
    "sdr_from_display",
    "synthesize_pair",
    "eetf_bt2390",
    "HDR_GREY",
    "PairParams",
    "draw_params",
    "exposure_stops",
    "finish_sdr",
]

#: Tone-mapping operators the SDR input may be made with.
OPERATORS: tuple[str, ...] = ("eetf", "reinhard", "hable", "clip")

#: BT.2408 HDR level of an 18 % grey card, cd/m² (reference white is 203).
HDR_GREY = 26.0


@dataclass(frozen=True)
class Degradation:
    """Parameters of the degradation model (defaults are the training recipe)."""

    peak: float = 1000.0  # mastering peak of the HDR ground truth, cd/m²
    exposure_stops: tuple[float, float] = (-1.0, 1.0)  # stills: jitter around the BT.2408 levels
    operators: tuple[str, ...] = OPERATORS
    sdr_white: float = 100.0  # cd/m² of SDR signal 1.0 (BT.1886 Lw)
    sdr_gain_stops: tuple[float, float] = (-0.5, 0.5)
    downscale_kernels: tuple[str, ...] = ("bicubic", "area")
    chroma420: bool = True
    h264_prob: float = 0.5
    crf_range: tuple[int, int] = (18, 33)

    def __post_init__(self) -> None:
        bad = [op for op in self.operators if op not in OPERATORS]
        if bad or not self.operators:
            raise ValueError(f"unknown tone-mapping operator(s) {bad} (known: {', '.join(OPERATORS)})")
        badk = [k for k in self.downscale_kernels if k not in ("bicubic", "area")]
        if badk or not self.downscale_kernels:
            raise ValueError(f"unknown down-scaling kernel(s) {badk} (known: bicubic, area)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- exposure


def scene_key(rgb: np.ndarray | torch.Tensor, primaries: str = "bt709") -> float:
    """Log-average luminance of scene-linear RGB (``H x W x 3`` numpy or ``3 x H x W`` torch).

    Computed on every 4th pixel in each direction (the key is a global
    statistic); a floor of 1e-6 of the maximum keeps black pixels finite.
    """
    if isinstance(rgb, torch.Tensor):
        a = rgb[..., ::4, ::4].detach().cpu().double().numpy()
        a = np.moveaxis(a, -3, -1)
    else:
        a = np.asarray(rgb[::4, ::4], dtype=np.float64)
    y_row = color._npm(primaries)[1]
    y = np.clip(a @ y_row, 0.0, None)
    floor = max(float(y.max(initial=0.0)) * 1e-6, 1e-12)
    return float(np.exp(np.log(y + floor).mean()))


def scene_to_display(
    scene: torch.Tensor, key: float, stops: float = 0.0, *, grey: float = HDR_GREY
) -> torch.Tensor:
    """Scene-linear (relative) -> display light in cd/m²: the key goes to ``grey * 2**stops``."""
    return scene * (grey * 2.0**stops / max(key, 1e-12))


# --------------------------------------------------------------------------- HDR side


def hdr_target(display: torch.Tensor, *, primaries: str = "bt709", peak: float = 1000.0) -> torch.Tensor:
    """Display light (cd/m², ``3 x H x W``) -> HDR10 ground truth, code values / 1023, rounded.

    Clip per component to ``[0, peak]``, primaries to BT.2020, PQ, Y'CbCr
    BT.2020 limited range 10-bit.
    """
    rgb = display.float().clamp(0.0, peak)
    rgb = color.convert_primaries(rgb, primaries, "bt2020").clamp(min=0.0)
    return color.quantize(color.linear_to_hdr10(rgb, bits=10), 10)


# --------------------------------------------------------------------------- SDR side


def eetf_bt2390(luminance: torch.Tensor, *, src_peak: float, dst_peak: float) -> torch.Tensor:
    """ITU-R BT.2390 EETF (black levels 0): cd/m² in [0, src_peak] -> cd/m² in [0, dst_peak]."""
    pq = color.pq_inverse_eotf
    lw = float(pq(torch.tensor(src_peak, dtype=torch.float64)))
    max_lum = float(pq(torch.tensor(dst_peak, dtype=torch.float64))) / lw
    ks = 1.5 * max_lum - 0.5
    e1 = (pq(luminance.clamp(0.0, src_peak)) / lw).clamp(0.0, 1.0)
    t = ((e1 - ks) / (1 - ks)).clamp(min=0.0)
    t2, t3 = t * t, t * t * t
    knee = (2 * t3 - 3 * t2 + 1) * ks + (t3 - 2 * t2 + t) * (1 - ks) + (-2 * t3 + 3 * t2) * max_lum
    e2 = torch.where(e1 < ks, e1, knee)
    return color.pq_eotf(e2 * lw).clamp(0.0, dst_peak)


def _hable(x: torch.Tensor) -> torch.Tensor:
    a, b, c, d, e, f = 0.15, 0.50, 0.10, 0.20, 0.02, 0.30
    return (x * (a * x + c * b) + d * e) / (x * (a * x + b) + d * f) - e / f


def tone_map(display709: torch.Tensor, operator: str, *, peak: float, gain: float = 1.0) -> torch.Tensor:
    """Display light, BT.709 primaries, cd/m² -> SDR display light relative to SDR white (1.0).

    The result may leave [0, 1] (out-of-gamut or ratio-preserving operators);
    :func:`gamut_map` brings it in. Diffuse white (203 cd/m²) is 1.0 at ``gain`` 1.
    """
    x = display709.float() * (gain / color.HDR_REFERENCE_WHITE)
    if operator == "clip":
        return x
    if operator == "hable":
        w = 11.2
        return _hable(2.0 * x.clamp(min=0.0)) / _hable(torch.tensor(w))
    lum = color.luminance(x, "bt709").unsqueeze(-3)
    if operator == "reinhard":
        lw = peak * gain / color.HDR_REFERENCE_WHITE
        lc = lum.clamp(min=0.0)
        out = lc * (1 + lc / (lw * lw)) / (1 + lc)
        return x * torch.where(lc > 0, out / lc.clamp(min=1e-12), torch.zeros_like(lc))
    if operator == "eetf":
        mx = x.amax(dim=-3, keepdim=True).clamp(min=0.0)  # max(R, G, B), 1.0 = diffuse white
        mapped = eetf_bt2390(mx * color.HDR_REFERENCE_WHITE, src_peak=peak, dst_peak=100.0) / 100.0
        return x * torch.where(mx > 0, mapped / mx.clamp(min=1e-12), torch.zeros_like(mx))
    raise ValueError(f"unknown tone-mapping operator {operator!r} (known: {', '.join(OPERATORS)})")


def gamut_map(rgb: torch.Tensor, primaries: str = "bt709") -> torch.Tensor:
    """Bring linear RGB into [0, 1]: desaturate each pixel towards its luminance, then clip.

    The smallest desaturation that makes every component >= 0 and (where the
    luminance is <= 1) <= 1 is applied; luminance is kept where possible.
    """
    y = color.luminance(rgb, primaries).unsqueeze(-3)  # type: ignore[arg-type]
    lo = rgb.amin(dim=-3, keepdim=True)
    hi = rgb.amax(dim=-3, keepdim=True)
    one = torch.ones_like(y)
    t_lo = torch.where(lo < 0, y.clamp(min=0.0) / (y - lo).clamp(min=1e-12), one)
    t_hi = torch.where((hi > 1) & (y < 1), (1 - y).clamp(min=0.0) / (hi - y).clamp(min=1e-12), one)
    t = torch.minimum(torch.minimum(t_lo, t_hi), one).clamp(min=0.0)
    return (y + t * (rgb - y)).clamp(0.0, 1.0)


def sdr_from_display(
    display: torch.Tensor, operator: str, *, primaries: str = "bt709", peak: float = 1000.0, gain: float = 1.0, sdr_white: float = 100.0
) -> torch.Tensor:
    """Display light (cd/m²) -> full-resolution SDR Y'CbCr BT.709 limited range, code/255, unrounded."""
    rgb709 = color.convert_primaries(display.float(), primaries, "bt709")
    rel = gamut_map(tone_map(rgb709, operator, peak=peak, gain=gain), "bt709")
    v = color.bt1886_inverse_eotf(rel * sdr_white, white=sdr_white)
    return color.rgb_to_ycbcr(v, "bt709", bits=8)


def _downscale(x: torch.Tensor, scale: int, kernel: str) -> torch.Tensor:
    if scale == 1:
        return x
    b = x.unsqueeze(0)
    if kernel == "area":
        out = F.avg_pool2d(b, scale)
    else:
        out = F.interpolate(b, scale_factor=1.0 / scale, mode="bicubic", antialias=True, align_corners=False)
    return out[0]


def _chroma_down(c: torch.Tensor) -> torch.Tensor:
    return downsample_chroma(c.unsqueeze(0))[0]


def _chroma_up(c: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return upsample_chroma(c, h, w, 2, 2, "left")


def _h264_roundtrip(y: np.ndarray, u: np.ndarray, v: np.ndarray, crf: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame through libx264 (yuv420p, CRF ``crf``) and back; uint8 planes in and out."""
    import av

    h0, w0 = y.shape
    # Pad to whole 16x16 macroblocks (edge replication), crop after decoding.
    h, w = -(-h0 // 16) * 16, -(-w0 // 16) * 16
    y = np.pad(y, ((0, h - h0), (0, w - w0)), mode="edge")
    u = np.pad(u, ((0, (h - h0) // 2), (0, (w - w0) // 2)), mode="edge")
    v = np.pad(v, ((0, (h - h0) // 2), (0, (w - w0) // 2)), mode="edge")
    i420 = np.concatenate([y, u.reshape(h // 4, w), v.reshape(h // 4, w)], axis=0)
    buf = io.BytesIO()
    with av.open(buf, "w", format="h264") as out:
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = {"crf": str(int(crf)), "preset": "veryfast", "threads": "1"}
        frame = av.VideoFrame.from_ndarray(i420, format="yuv420p")
        for pkt in st.encode(frame):
            out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    buf.seek(0)
    with av.open(buf, "r", format="h264") as inp:
        dec = next(inp.decode(video=0)).to_ndarray()
    du = dec[h : h + h // 4].reshape(h // 2, w // 2)
    dv = dec[h + h // 4 :].reshape(h // 2, w // 2)
    return dec[:h0, :w0], du[: h0 // 2, : w0 // 2], dv[: h0 // 2, : w0 // 2]


def finish_sdr(full: torch.Tensor, scale: int, kernel: str, chroma420: bool, crf: int | None) -> torch.Tensor:
    """Full-res SDR Y'CbCr code/255 -> LR, 4:2:0 round trip, optional H.264, 8-bit: code/255."""
    lr = _downscale(full, scale, kernel)
    if not chroma420 and crf is None:
        return color.quantize(lr, 8)
    yq = color.quantize(lr[:1], 8)
    cq = color.quantize(_chroma_down(lr[1:]), 8)
    if crf is not None:
        to8 = lambda t: np.round(t.numpy() * 255).astype(np.uint8)  # noqa: E731
        y8, u8, v8 = _h264_roundtrip(to8(yq[0]), to8(cq[0]), to8(cq[1]), crf)
        yq = torch.from_numpy(y8.astype(np.float32) / 255.0)[None]
        cq = torch.from_numpy(np.stack([u8, v8]).astype(np.float32) / 255.0)
    c_full = color.quantize(_chroma_up(cq, yq.shape[-2], yq.shape[-1]), 8)
    return torch.cat([yq, c_full], dim=0)


@dataclass
class PairParams:
    """The random choices behind one synthesised pair (for logs and tests)."""

    operator: str
    gain: float
    kernel: str
    crf: int | None
    extra: dict[str, Any] = field(default_factory=dict)


def draw_params(rng: np.random.Generator, cfg: Degradation, operator: str | None = None) -> PairParams:
    """Draw the per-pair random choices, in a fixed order (operator, gain, kernel, H.264, CRF)."""
    op = cfg.operators[int(rng.integers(len(cfg.operators)))]
    gain = float(2.0 ** rng.uniform(*cfg.sdr_gain_stops))
    kernel = cfg.downscale_kernels[int(rng.integers(len(cfg.downscale_kernels)))]
    use_h264 = bool(rng.random() < cfg.h264_prob)
    crf = int(rng.integers(cfg.crf_range[0], cfg.crf_range[1] + 1))
    return PairParams(operator=operator or op, gain=gain, kernel=kernel, crf=crf if use_h264 else None)


def synthesize_pair(
    hdr_display: torch.Tensor | np.ndarray,
    scale: int,
    rng: np.random.Generator | int,
    *,
    operator: str | None = None,
    primaries: str = "bt709",
    config: Degradation = Degradation(),
    h264: bool | None = None,
    return_params: bool = False,
) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, PairParams]:
    """Synthesise one (LR SDR input, HR HDR10 target) pair from display light.

    ``hdr_display``: linear RGB in cd/m² (``3 x H x W`` torch or ``H x W x 3``
    numpy), BT.709 primaries by default (``primaries="bt2020"`` for HDR video
    frames). For scene-linear stills apply :func:`scene_to_display` first.
    ``rng``: a numpy Generator or an int seed. ``operator`` forces one
    tone-mapping operator (else one of ``config.operators`` at random);
    ``h264`` forces the compression on/off (else ``config.h264_prob``).

    Returns ``(sdr_lr, hdr_hr)``: float32 ``3 x H/s x W/s`` BT.709 limited
    Y'CbCr 8-bit code values / 255 and ``3 x H x W`` BT.2020 PQ limited
    Y'CbCr 10-bit code values / 1023 (both rounded to integer codes, chroma
    at full resolution), with ``H, W`` cropped to multiples of ``2 * scale``.
    Works on full frames (evaluation pairs) and on patches (training).
    """
    if isinstance(rng, (int, np.integer)):
        rng = np.random.default_rng(int(rng))
    if operator is not None and operator not in OPERATORS:
        raise ValueError(f"unknown tone-mapping operator {operator!r} (known: {', '.join(OPERATORS)})")
    x = hdr_display
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x.astype(np.float32))).permute(2, 0, 1)
    x = x.float()
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"expected 3 x H x W display light, got shape {tuple(x.shape)}")
    m = 2 * scale
    h, w = (x.shape[1] // m) * m, (x.shape[2] // m) * m
    if h == 0 or w == 0:
        raise ValueError(f"frame {tuple(x.shape[1:])} is smaller than 2 x scale = {m}")
    x = x[:, :h, :w]
    p = draw_params(rng, config, operator)
    if h264 is not None:
        p.crf = (p.crf if p.crf is not None else int(np.mean(config.crf_range))) if h264 else None
    hdr = hdr_target(x, primaries=primaries, peak=config.peak)
    sdr_full = sdr_from_display(x, p.operator, primaries=primaries, peak=config.peak, gain=p.gain, sdr_white=config.sdr_white)
    sdr = finish_sdr(sdr_full, scale, p.kernel, config.chroma420, p.crf)
    if return_params:
        return sdr, hdr, p
    return sdr, hdr


def exposure_stops(rng: np.random.Generator, cfg: Degradation) -> float:
    """Draw the exposure jitter (stops) of a scene-linear still."""
    return float(rng.uniform(*cfg.exposure_stops))
