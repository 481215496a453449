"""HDR-VDP 2.2.2 quality score Q (Mantiuk et al.), 'luminance' mode, in torch float64.

Reimplements the Q printed by the original MATLAB code (run under GNU Octave 7.3 with
octave-image 2.14, default options) for a single-channel image pair in absolute
luminance, following ``../shared/spec/hdrvdp.md``. Section numbers (§) below refer to it.

Pipeline per image (§3): optical MTF (FFT on a doubled canvas padded with the 1e-5
cd/m² surround) → L, M cone and rod responses through the tabulated transducers →
order-3, 4-orientation steerable pyramid (spatial-domain correlations with mirror
borders, done here by FFT) → CSF filtering of the base band. Comparison (§4): per band
and orientation, the test-minus-reference difference is normalised by the per-pixel
CSF noise and by self-, cross-orientation and neighbour-band masking, pooled with an
L2 norm over the difference mask, and the log errors are summed with the
frequency-dependent band weights: ``Q = 100 - Σ``.

Everything runs as vectorised torch on the device of the input tensors (or ``device=``),
in float64; loops are only over pyramid levels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ._common import ArrayLike, as_tensor
from .hdrvdp_pyramid import steerable_pyramid
from .resize import imresize

__all__ = ["hdrvdp", "HDRVDPResult", "PPD_4K_30IN_1P5M"]

#: 30-inch 3840x2160 display seen from 1.5 m (the paper's viewing condition), pixels/degree.
PPD_4K_30IN_1P5M = 152.14922548017213

# --- §2 parameters ----------------------------------------------------------------------
_SURROUND = 1e-5
_MTF_A = (0.42483859630129034, 0.5724351039364803, 0.00016757623916493702, 0.0025587235230643303)
_MTF_B = (0.028, 0.37, 37.0, 360.0)
_M_L, _M_M, _M_R = 0.601847152245, 0.316708295579, 0.9046706546
_K_SC = 0.006894596 / 10**-2.4
_CVI_JOINT = (30.162, 4.0627, 1.6596, 0.2712)
_ROD_PEAK, _ROD_LO_S, _ROD_LO_E, _ROD_HI_S, _ROD_HI_E, _ROD_GAIN = (
    1.1732, 1.1478, 1.2167, 0.5547, 2.9899, 1.1414,
)
_P_EXC = 10**0.544068
_Q_INH = 10**0.49576
_K_SELF, _K_XO, _K_XN = 10**0.189065, 10**0.449199, 10**1.52512
_Q_EPS = 1e-12

_CSF_LOG_L = np.log10([0.002, 0.02, 0.2, 2.0, 20.0, 150.0])
_CSF_P = np.array(
    [
        [0.991265, 3.74038, 0.50722, 4.46044],
        [0.800889, 3.54104, 0.682505, 4.94958],
        [0.476505, 4.37453, 0.750315, 5.28678],
        [0.405782, 4.40602, 0.935314, 5.61425],
        [0.334278, 3.79542, 1.07327, 6.4635],
        [0.394533, 2.7755, 1.16577, 7.45665],
    ]
)
# Quality band weights, ascending frequency (cycles/deg).
_W_F = np.array([0.1172, 0.2344, 0.4688, 0.9375, 1.875, 3.75, 7.5, 15.0, 30.0, 60.0])
_W_W = np.array([0.0, 0.0, 0.0003, 0.0003, 0.0398, 0.2690, 0.2142, 0.2832, 0.2832, 0.0])

_N_TRANSDUCER = 2048
_N_CSF_LUT = 256
_BT2020_Y = (0.2627, 0.6780, 0.0593)


@dataclass(frozen=True)
class HDRVDPResult:
    """HDR-VDP 2.2.2 result.

    Attributes:
        Q: quality score; 100 for identical images, lower is worse.
        band_errors: pooled error ``e`` per band (fine to coarse) and orientation (§4.6);
            bands 0 and the base band have one orientation, the others four.
        band_weights: quality weight ``w_b`` of each band.
        band_frequencies: peak frequency ``f_b`` of each band, cycles/degree.
    """

    Q: float
    band_errors: tuple[tuple[float, ...], ...]
    band_weights: tuple[float, ...]
    band_frequencies: tuple[float, ...]


# --- §3.5 transducer tables ---------------------------------------------------------------
@lru_cache(maxsize=1)
def transducer_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(l, J_C, J_R): 2048 log10-luminance nodes and the cone / rod transducer tables."""
    j = np.arange(_N_TRANSDUCER, dtype=np.float64)
    c = 10.0 ** (-5.0 + 10.0 * j / (_N_TRANSDUCER - 1))
    l = np.log10(c)
    s1, s2, s3, s4 = _CVI_JOINT
    s_a = s1 * ((s2 / c) ** s3 + 1.0) ** (-s4)
    hi = c > _ROD_PEAK
    e = np.where(hi, _ROD_HI_E, _ROD_LO_E)
    s = np.where(hi, _ROD_HI_S, _ROD_LO_S)
    s_r = 10.0**_ROD_GAIN * np.exp(-np.abs(np.log10(c / _ROD_PEAK)) ** e / s)
    g = np.maximum(s_a - s_r, 1e-3)
    s_c = 0.5 * np.interp(np.minimum(2.0 * c, 1e5), c, g)

    def cumulative(sens: np.ndarray) -> np.ndarray:
        steps = np.diff(l) * math.log(10.0) * (sens[1:] + sens[:-1]) / 2.0
        return _K_SC * np.concatenate([[0.0], np.cumsum(steps)])

    tables = (l, cumulative(s_c), cumulative(s_r))
    for arr in tables:
        arr.setflags(write=False)
    return tables


def _interp_uniform(x: torch.Tensor, x0: float, dx: float, y: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation of table ``y`` on the uniform grid ``x0 + i*dx``.

    Index = floor, clamped to ``[0, len(y) - 2]`` (the original's fast_interp1); no
    extrapolation is needed because callers clamp ``x`` to the grid range.
    """
    pos = (x - x0) / dx
    i = torch.floor(pos).clamp_(0, y.numel() - 2)
    frac = pos - i
    i = i.long()
    y0 = y[i]
    return y0 + frac * (y[i + 1] - y0)


# --- frequency grids, FFT filtering, nCSF ---------------------------------------------
def _rho_half_grid(ny: int, nx: int, c: float, device: torch.device) -> torch.Tensor:
    """Radial frequency (cycles/deg) of the ``rfft2`` bins of an ``ny x nx`` grid (§3.1).

    Only |f| enters, so the rfft half-plane (bin nx/2 at +c/2 instead of -c/2) is exact.
    """
    fy = torch.fft.fftfreq(ny, d=1.0 / c, dtype=torch.float64, device=device)
    fx = torch.fft.rfftfreq(nx, d=1.0 / c, dtype=torch.float64, device=device)
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def _fft_filter(x: torch.Tensor, k_half: torch.Tensor, pad_value: float | torch.Tensor) -> torch.Tensor:
    """§3.2: filter ``x`` (h x w) with the even kernel ``k_half`` (rfft half of 2h x 2w).

    ``x`` sits in the top-left corner of a 2h x 2w canvas filled with ``pad_value``;
    the circular convolution runs on that canvas and the top-left h x w is returned.
    Because the kernel is real and even, irfft2 equals Re(ifft2) of the full product.
    """
    h, w = x.shape
    canvas = torch.empty((2 * h, 2 * w), dtype=x.dtype, device=x.device)
    canvas.fill_(pad_value)
    canvas[:h, :w] = x
    y = torch.fft.irfft2(torch.fft.rfft2(canvas) * k_half, s=(2 * h, 2 * w))
    return y[:h, :w]


def _mtf(rho: torch.Tensor) -> torch.Tensor:
    """§3.3: optical modulation transfer function of the eye at radial frequency ``rho``."""
    out = torch.zeros_like(rho)
    for a, b in zip(_MTF_A, _MTF_B):
        out += a * torch.exp(-b * rho)
    return out


def _ncsf_params(lum: np.ndarray | float) -> list[np.ndarray]:
    """§4.2: the four nCSF parameters interpolated at adapting luminance ``lum`` (cd/m²)."""
    x = np.clip(np.log10(lum), _CSF_LOG_L[0], _CSF_LOG_L[-1])
    return [np.interp(x, _CSF_LOG_L, _CSF_P[:, k]) for k in range(4)]


def _ncsf(rho: torch.Tensor, params: list) -> torch.Tensor:
    """§4.2: neural CSF ``S(rho, L)``; ``rho`` in cycles/deg (0 at DC gives S = 0).

    ``params`` are p1..p4 (python floats or tensors broadcastable with ``rho``).
    """
    p1, p2, p3, p4 = params
    num = (1.0 - torch.exp(-((rho / 7.0) ** 2))) ** p3
    return p4 * torch.sqrt(num / (1.0 + (p1 * rho) ** p2))


# --- §3 front end -------------------------------------------------------------------------
@dataclass
class FrontEnd:
    adapt: torch.Tensor  # A, H x W, cd/m² (L + M cone excitation)
    bands: list[torch.Tensor]  # steerable pyramid of the transduced response, base CSF-filtered
    base_pad: float  # mean of the unfiltered base band (v_bb when this is the reference)


def front_end(img: torch.Tensor, ppd: float, cache: dict, base_pad: float | None = None) -> FrontEnd:
    """§3 for one image (H x W, cd/m², float64). ``base_pad=None`` for the reference."""
    h, w = img.shape
    device = img.device
    if "mtf" not in cache:
        cache["mtf"] = _mtf(_rho_half_grid(2 * h, 2 * w, ppd, device))
        l, j_c, j_r = transducer_tables()
        cache["tables"] = (
            float(l[0]),
            float(l[1] - l[0]),
            torch.tensor(j_c, device=device),
            torch.tensor(j_r, device=device),
        )
    l0, dl, j_c, j_r = cache["tables"]

    l_o = _fft_filter(img, cache["mtf"], _SURROUND).clamp_(_SURROUND, 1e10)
    r_l, r_m, r_r = _M_L * l_o, _M_M * l_o, _M_R * l_o
    adapt = r_l + r_m

    def response(r: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        return _interp_uniform(torch.log10(r.clamp(1e-5, 1e5)), l0, dl, table)

    p_c = response(r_l, j_c) + response(r_m, j_c)
    p_r = response(r_r, j_r)
    p = (p_c - p_c.mean()) + (p_r - p_r.mean())

    bands = steerable_pyramid(p, cache)
    base = bands[-1][0]
    own_pad = float(base.mean())
    if base_pad is None:
        base_pad = own_pad
    f_base = ppd / 2.0 * 2.0 ** -(len(bands) - 1)
    bh, bw = base.shape
    rho_bb = _rho_half_grid(2 * bh, 2 * bw, 2.0 * math.sqrt(2.0) * f_base, device)
    k_bb = _ncsf(rho_bb, [float(v) for v in _ncsf_params(float(adapt.mean()))])
    bands[-1] = _fft_filter(base, k_bb, base_pad)[None]
    return FrontEnd(adapt=adapt, bands=bands, base_pad=own_pad)


# --- §4 comparison ------------------------------------------------------------------------
def _box3(x: torch.Tensor) -> torch.Tensor:
    """3x3 mean over the last two axes with zero padding ('same' convolution)."""
    xp = F.pad(x, (1, 1, 1, 1))
    s = xp[..., :-2, :] + xp[..., 1:-1, :] + xp[..., 2:, :]
    s = s[..., :-2] + s[..., 1:-1] + s[..., 2:]
    return s / 9.0


def _band_weight(f: float) -> float:
    return float(np.interp(np.clip(f, _W_F[0], _W_F[-1]), _W_F, _W_W))


def _band_error(b: int, t_bands: list[torch.Tensor], r_bands: list[torch.Tensor], masks: list[torch.Tensor],
                lam: torch.Tensor, diff_mask: torch.Tensor, csf_params: list[torch.Tensor],
                ppd: float) -> tuple[list[float], float, float]:
    """§4 for band ``b``: (pooled error per orientation, the band's weight, its frequency in cycles/deg).

    The difference is normalised by the CSF noise at the local adapting luminance ``lam``
    (log10 cd/m²) and by self-, cross-orientation and neighbour-band masking.
    """
    nb = len(t_bands)
    tb, rb = t_bands[b], r_bands[b]
    count, hb, wb = tb.shape
    size = (hb, wb)
    nb_scale = 2.0**b
    f_b = ppd / 2.0 * 2.0**-b
    if b < nb - 1:
        lut = _ncsf(torch.tensor(f_b, dtype=torch.float64, device=tb.device), csf_params)
        lam_b = imresize(lam, size).clamp(-5.0, 5.0)
        noise: torch.Tensor | float = 1.0 / _interp_uniform(lam_b, -5.0, 10.0 / (_N_CSF_LUT - 1), lut)
    else:
        noise = 1.0
    dm_b = imresize(diff_mask, size)

    def neighbour(b_from: int) -> torch.Tensor:
        m = masks[b_from]
        idx = [min(o, m.shape[0] - 1) for o in range(count)]
        return imresize(m[idx], size).clamp(min=0.0)

    d = tb - rb
    err = torch.sign(d) * torch.abs(d / nb_scale) ** _P_EXC * nb_scale
    m_self = masks[b]
    m_xo = (m_self.sum(0, keepdim=True) - m_self).clamp_(min=0.0)
    m_n = torch.zeros_like(m_self)
    if b >= 1:
        m_n += neighbour(b - 1) / (nb_scale / 2.0)
    if b <= nb - 3:
        m_n += neighbour(b + 1) / (2.0 * nb_scale)
    n_m = nb_scale * (
        _K_SELF * (m_self / (noise * nb_scale)) ** _Q_INH
        + _K_XO * (m_xo / (noise * nb_scale)) ** _Q_INH
        + _K_XN * (m_n / noise) ** _Q_INH
    )
    dist = err / torch.sqrt(noise ** (2.0 * _P_EXC) + n_m**2)
    e = torch.sqrt(((dist * dm_b) ** 2).sum(dim=(-2, -1))) / (hb * wb)
    return [float(v) for v in e.cpu()], _band_weight(f_b), f_b


def _to_luminance(x: ArrayLike, color_encoding: str, device: torch.device | str | None) -> torch.Tensor:
    t = as_tensor(x, device=device)
    if color_encoding == "luminance":
        if t.ndim != 2:
            raise ValueError(f"hdrvdp: 'luminance' input must be H x W, got shape {tuple(t.shape)}")
    elif color_encoding == "rgb-bt2020":
        if t.ndim != 3 or t.shape[-1] != 3:
            raise ValueError(f"hdrvdp: 'rgb-bt2020' input must be H x W x 3, got shape {tuple(t.shape)}")
        t = t[..., 0] * _BT2020_Y[0] + t[..., 1] * _BT2020_Y[1] + t[..., 2] * _BT2020_Y[2]
    else:
        raise ValueError(f"hdrvdp: unknown color_encoding {color_encoding!r} (use 'luminance' or 'rgb-bt2020')")
    return torch.nan_to_num(t, nan=_SURROUND)


def hdrvdp(
    test: ArrayLike,
    reference: ArrayLike,
    pixels_per_degree: float = PPD_4K_30IN_1P5M,
    color_encoding: str = "luminance",
    *,
    device: torch.device | str | None = None,
) -> HDRVDPResult:
    """HDR-VDP 2.2.2 quality score Q of ``test`` against ``reference``.

    Args:
        test, reference: numpy arrays or torch tensors, absolute linear light in cd/m².
            ``color_encoding="luminance"``: ``H x W`` luminance.
            ``color_encoding="rgb-bt2020"``: ``H x W x 3`` linear BT.2020 RGB, reduced to
            luminance ``Y = 0.2627 R + 0.6780 G + 0.0593 B`` (no spectral model).
            Both the same shape, at least 17 x 17. NaN pixels count as 1e-5 cd/m².
        pixels_per_degree: angular resolution of the viewing condition. The default is a
            30-inch 3840x2160 display seen from 1.5 m.
        device: where to compute; default: the device of ``test`` if it is a tensor, else CPU.

    Returns:
        :class:`HDRVDPResult`; ``.Q`` is 100 for identical images and decreases with
        visible difference. Computed in float64 regardless of the input dtype.
    """
    if device is None and isinstance(test, torch.Tensor):
        device = test.device
    t = _to_luminance(test, color_encoding, device)
    r = _to_luminance(reference, color_encoding, t.device)
    if t.shape != r.shape:
        raise ValueError(f"hdrvdp: test shape {tuple(t.shape)} != reference shape {tuple(r.shape)}")
    if min(t.shape) < 17:
        raise ValueError(f"hdrvdp: images must be at least 17 x 17, got {tuple(t.shape)}")
    ppd = float(pixels_per_degree)

    cache: dict = {}
    fe_r = front_end(r, ppd, cache)
    fe_t = front_end(t, ppd, cache, base_pad=fe_r.base_pad)

    lam = torch.log10(((fe_t.adapt + fe_r.adapt) / 2.0).clamp_(1e-5, 1e5))
    diff_mask = (torch.abs(t - r) / r > 0.001).to(torch.float64)
    nb = len(fe_r.bands)
    masks = [_box3(torch.minimum(tb.abs(), rb.abs())) for tb, rb in zip(fe_t.bands, fe_r.bands)]
    u_nodes = -5.0 + 10.0 * np.arange(_N_CSF_LUT) / (_N_CSF_LUT - 1)
    csf_params = _ncsf_params(10.0**u_nodes)
    csf_params_t = [torch.as_tensor(p, device=t.device) for p in csf_params]

    total = 0.0
    errors, weights, freqs = [], [], []
    for b in range(nb):
        e_list, w_b, f_b = _band_error(b, fe_t.bands, fe_r.bands, masks, lam, diff_mask, csf_params_t, ppd)
        total += sum(w_b * (math.log(v + _Q_EPS) - math.log(_Q_EPS)) for v in e_list)
        errors.append(tuple(e_list))
        weights.append(w_b)
        freqs.append(f_b)

    return HDRVDPResult(
        Q=100.0 - total,
        band_errors=tuple(errors),
        band_weights=tuple(weights),
        band_frequencies=tuple(freqs),
    )
