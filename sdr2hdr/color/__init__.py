"""Colour maths: Y'CbCr matrices and ranges, transfer functions, primaries.

Everything here is torch, device-agnostic and dtype-preserving (use float32 or
float64), with the colour channels on dimension ``-3`` (``3 x H x W`` or
``B x 3 x H x W``). Each function says exactly which matrix, range, transfer
and primaries it assumes; nothing is implied.

Code-value convention (the one the JSI-GAN model uses): a Y'CbCr tensor holds
integer code values divided by ``2**bits - 1``: 8-bit limited-range Y' of 16
is ``16/255``, 10-bit limited-range Y' of 940 is ``940/1023``. Code values
follow ITU-T H.273:

* limited ("TV", "legal") range: ``Y = 2**(bits-8) * (219 * E'y + 16)``,
  ``C = 2**(bits-8) * (224 * E'c + 128)``;
* full ("PC") range: ``Y = (2**bits - 1) * E'y``,
  ``C = (2**bits - 1) * E'c + 2**(bits-1)``,

where ``E'y`` is in [0, 1] and ``E'c`` in [-0.5, 0.5].

Linear light is in cd/m² where a function says so, otherwise relative.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import torch

Matrix = Literal["bt709", "bt2020", "bt601"]
Primaries = Literal["bt709", "bt2020"]

#: Luma coefficients (Kr, Kb) of each non-constant-luminance matrix.
KR_KB: dict[str, tuple[float, float]] = {
    "bt709": (0.2126, 0.0722),  # ITU-R BT.709-6
    "bt2020": (0.2627, 0.0593),  # ITU-R BT.2020-2 / BT.2100 NCL
    "bt601": (0.299, 0.114),  # ITU-R BT.601-7 (525 and 625 lines share it)
}

#: xy chromaticities of R, G, B and the white point.
PRIMARIES_XY: dict[str, tuple[tuple[float, float], ...]] = {
    "bt709": ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060), (0.3127, 0.3290)),
    "bt2020": ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046), (0.3127, 0.3290)),
    "p3d65": ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), (0.3127, 0.3290)),
}

# SMPTE ST 2084 constants.
_PQ_M1 = 2610 / 16384
_PQ_M2 = 2523 / 4096 * 128
_PQ_C1 = 3424 / 4096
_PQ_C2 = 2413 / 4096 * 32
_PQ_C3 = 2392 / 4096 * 32
PQ_PEAK = 10000.0  # cd/m² at PQ signal 1.0

# ARIB STD-B67 / BT.2100 HLG constants.
_HLG_A = 0.17883277
_HLG_B = 1 - 4 * _HLG_A
_HLG_C = 0.5 - _HLG_A * float(np.log(4 * _HLG_A))

#: BT.2408 reference (diffuse) white for HDR, cd/m².
HDR_REFERENCE_WHITE = 203.0


def _channels(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if x.ndim < 3 or x.shape[-3] != 3:
        raise ValueError(f"expected colour channels on dim -3 (…x3xHxW), got shape {tuple(x.shape)}")
    return x[..., 0, :, :], x[..., 1, :, :], x[..., 2, :, :]


def _stack(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return torch.stack((a, b, c), dim=-3)


def _code_ranges(bits: int, full_range: bool) -> tuple[float, float, float, float]:
    """(Y offset, Y scale, C offset, C scale) in code values / (2**bits - 1)."""
    peak = float(2**bits - 1)
    if full_range:
        return 0.0, 1.0, 2 ** (bits - 1) / peak, 1.0
    k = 2 ** (bits - 8)
    return 16 * k / peak, 219 * k / peak, 128 * k / peak, 224 * k / peak


def rgb_to_ycbcr(
    rgb: torch.Tensor, matrix: Matrix, *, full_range: bool = False, bits: int = 10
) -> torch.Tensor:
    """Non-linear R'G'B' in [0, 1] -> Y'CbCr code values / (2**bits - 1), unquantised.

    ``matrix`` picks the non-constant-luminance Kr/Kb; the result is not
    rounded or clipped (use :func:`quantize` for that).
    """
    kr, kb = KR_KB[matrix]
    kg = 1.0 - kr - kb
    r, g, b = _channels(rgb)
    y = kr * r + kg * g + kb * b
    cb = (b - y) / (2 * (1 - kb))
    cr = (r - y) / (2 * (1 - kr))
    yo, ys, co, cs = _code_ranges(bits, full_range)
    return _stack(yo + ys * y, co + cs * cb, co + cs * cr)


def ycbcr_to_rgb(
    ycbcr: torch.Tensor, matrix: Matrix, *, full_range: bool = False, bits: int = 10
) -> torch.Tensor:
    """Y'CbCr code values / (2**bits - 1) -> non-linear R'G'B' (not clipped)."""
    kr, kb = KR_KB[matrix]
    kg = 1.0 - kr - kb
    yo, ys, co, cs = _code_ranges(bits, full_range)
    yc, cbc, crc = _channels(ycbcr)
    y = (yc - yo) / ys
    cb = (cbc - co) / cs
    cr = (crc - co) / cs
    r = y + 2 * (1 - kr) * cr
    b = y + 2 * (1 - kb) * cb
    g = (y - kr * r - kb * b) / kg
    return _stack(r, g, b)


def convert_ycbcr(
    ycbcr: torch.Tensor,
    *,
    src_matrix: Matrix,
    src_full_range: bool,
    src_bits: int,
    dst_matrix: Matrix,
    dst_full_range: bool,
    dst_bits: int,
) -> torch.Tensor:
    """Re-express Y'CbCr in another matrix / range / bit depth (same R'G'B').

    This is how a BT.601 or full-range source is brought to the model's
    BT.709 limited-range input without being mislabelled. Transfer and
    primaries are untouched: it is purely a re-encoding of the same R'G'B'.
    """
    if (src_matrix, src_full_range, src_bits) == (dst_matrix, dst_full_range, dst_bits):
        return ycbcr
    rgb = ycbcr_to_rgb(ycbcr, src_matrix, full_range=src_full_range, bits=src_bits)
    return rgb_to_ycbcr(rgb, dst_matrix, full_range=dst_full_range, bits=dst_bits)


def quantize(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Round code values / (2**bits - 1) to integer codes and clip to [0, 2**bits - 1].

    Returns the same normalised convention (still divided by the peak).
    """
    peak = float(2**bits - 1)
    return torch.clamp(torch.round(x * peak), 0.0, peak) / peak


# --------------------------------------------------------------------------- PQ


def pq_eotf(e: torch.Tensor) -> torch.Tensor:
    """SMPTE ST 2084 EOTF: PQ signal E' in [0, 1] -> display luminance in cd/m² (0..10000)."""
    ep = torch.clamp(e, min=0.0) ** (1 / _PQ_M2)
    num = torch.clamp(ep - _PQ_C1, min=0.0)
    den = _PQ_C2 - _PQ_C3 * ep
    return PQ_PEAK * (num / den) ** (1 / _PQ_M1)


def pq_inverse_eotf(luminance: torch.Tensor) -> torch.Tensor:
    """SMPTE ST 2084 inverse EOTF: cd/m² (0..10000) -> PQ signal E' in [0, 1]."""
    y = torch.clamp(luminance / PQ_PEAK, min=0.0) ** _PQ_M1
    return ((_PQ_C1 + _PQ_C2 * y) / (1 + _PQ_C3 * y)) ** _PQ_M2


# ---------------------------------------------------------------- BT.1886 (SDR)


def bt1886_eotf(v: torch.Tensor, *, white: float = 100.0, black: float = 0.0) -> torch.Tensor:
    """ITU-R BT.1886 EOTF: SDR signal V' in [0, 1] -> cd/m² (gamma 2.4, Lw, Lb)."""
    g = 2.4
    lw, lb = white ** (1 / g), black ** (1 / g)
    a = (lw - lb) ** g
    b = lb / (lw - lb)
    return a * torch.clamp(v + b, min=0.0) ** g


def bt1886_inverse_eotf(luminance: torch.Tensor, *, white: float = 100.0, black: float = 0.0) -> torch.Tensor:
    """ITU-R BT.1886 inverse EOTF: cd/m² -> SDR signal V' (1.0 at ``white``)."""
    g = 2.4
    lw, lb = white ** (1 / g), black ** (1 / g)
    a = (lw - lb) ** g
    b = lb / (lw - lb)
    return torch.clamp(luminance / a, min=0.0) ** (1 / g) - b


def srgb_eotf(v: torch.Tensor) -> torch.Tensor:
    """IEC 61966-2-1 sRGB EOTF (the piecewise curve photos are stored with): signal in [0, 1] -> relative light, 1.0 = white."""
    v = v.clamp(min=0.0)
    return torch.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


# --------------------------------------------------------------------- HLG


def hlg_oetf(e: torch.Tensor) -> torch.Tensor:
    """BT.2100 HLG OETF: scene-linear E in [0, 1] -> non-linear E' in [0, 1]."""
    e = torch.clamp(e, min=0.0)
    low = torch.sqrt(3 * e)
    high = _HLG_A * torch.log(torch.clamp(12 * e - _HLG_B, min=1e-12)) + _HLG_C
    return torch.where(e <= 1 / 12, low, high)


def hlg_inverse_oetf(ep: torch.Tensor) -> torch.Tensor:
    """BT.2100 HLG inverse OETF: E' in [0, 1] -> scene-linear E in [0, 1]."""
    ep = torch.clamp(ep, min=0.0)
    low = ep**2 / 3
    high = (torch.exp((ep - _HLG_C) / _HLG_A) + _HLG_B) / 12
    return torch.where(ep <= 0.5, low, high)


def hlg_system_gamma(peak: float) -> float:
    """BT.2100 HLG system gamma for a display of nominal peak ``peak`` cd/m²."""
    return 1.2 + 0.42 * float(np.log10(peak / 1000.0))


def hlg_eotf(rgb_p: torch.Tensor, *, peak: float = 1000.0, black: float = 0.0) -> torch.Tensor:
    """BT.2100-2 HLG EOTF: non-linear BT.2020 R'G'B' -> display-linear RGB in cd/m².

    OOTF on the scene luminance Ys (BT.2020 weights) with system gamma from
    ``peak``; black lift beta = sqrt(3 * (Lb/Lw)**(1/gamma)).
    """
    gamma = hlg_system_gamma(peak)
    beta = float(np.sqrt(3 * (black / peak) ** (1 / gamma)))
    e = hlg_inverse_oetf((1 - beta) * rgb_p + beta)
    r, g, b = _channels(e)
    kr, kb = KR_KB["bt2020"]
    ys = kr * r + (1 - kr - kb) * g + kb * b
    return peak * e * torch.abs(ys).unsqueeze(-3) ** (gamma - 1)


def hlg_inverse_eotf(rgb: torch.Tensor, *, peak: float = 1000.0) -> torch.Tensor:
    """Inverse of :func:`hlg_eotf` with black 0: display-linear BT.2020 RGB cd/m² -> R'G'B'."""
    gamma = hlg_system_gamma(peak)
    r, g, b = _channels(rgb)
    kr, kb = KR_KB["bt2020"]
    yd = (kr * r + (1 - kr - kb) * g + kb * b).unsqueeze(-3)
    scale = torch.where(yd > 0, torch.abs(yd / peak).clamp(min=1e-30) ** ((1 - gamma) / gamma), torch.zeros_like(yd))
    return hlg_oetf(scale * rgb / peak)


# --------------------------------------------------------------- primaries


@lru_cache(maxsize=None)
def _npm(primaries: str) -> np.ndarray:
    """Normalised primary matrix (linear RGB -> XYZ, Y of white = 1), float64."""
    (xr, yr), (xg, yg), (xb, yb), (xw, yw) = PRIMARIES_XY[primaries]
    p = np.array([[xr / yr, xg / yg, xb / yb], [1.0, 1.0, 1.0], [(1 - xr - yr) / yr, (1 - xg - yg) / yg, (1 - xb - yb) / yb]])
    w = np.array([xw / yw, 1.0, (1 - xw - yw) / yw])
    return p * np.linalg.solve(p, w)


def primaries_matrix(src: str, dst: str) -> np.ndarray:
    """3x3 float64 matrix taking linear RGB in ``src`` primaries to ``dst`` (same white, no adaptation)."""
    return np.linalg.solve(_npm(dst), _npm(src))


def convert_primaries(rgb: torch.Tensor, src: str, dst: str) -> torch.Tensor:
    """Linear RGB (any units) from ``src`` to ``dst`` primaries (e.g. "bt709" -> "bt2020").

    Out-of-gamut results (negative components, bt2020 -> bt709) are kept; clip
    or gamut-map explicitly where needed.
    """
    if src == dst:
        return rgb
    m = torch.as_tensor(primaries_matrix(src, dst), dtype=rgb.dtype, device=rgb.device)
    return torch.einsum("ij,...jhw->...ihw", m, rgb)


def luminance(rgb: torch.Tensor, primaries: Primaries = "bt2020") -> torch.Tensor:
    """Relative luminance Y of linear RGB (same units), channel dim removed."""
    y_row = torch.as_tensor(_npm(primaries)[1], dtype=rgb.dtype, device=rgb.device)
    return torch.einsum("j,...jhw->...hw", y_row, rgb)


# --------------------------------------------------------- composite paths


def hdr10_to_linear(ycbcr: torch.Tensor, *, bits: int = 10, full_range: bool = False) -> torch.Tensor:
    """HDR10 Y'CbCr (BT.2020 NCL, PQ, code / (2**bits-1)) -> linear BT.2020 RGB in cd/m².

    R'G'B' is clipped to [0, 1] before the EOTF, as a display would.
    """
    rgb_p = ycbcr_to_rgb(ycbcr, "bt2020", full_range=full_range, bits=bits).clamp(0.0, 1.0)
    return pq_eotf(rgb_p)


def linear_to_hdr10(rgb: torch.Tensor, *, bits: int = 10, full_range: bool = False) -> torch.Tensor:
    """Linear BT.2020 RGB in cd/m² -> HDR10 Y'CbCr code / (2**bits-1), unquantised."""
    return rgb_to_ycbcr(pq_inverse_eotf(rgb.clamp(0.0, PQ_PEAK)), "bt2020", full_range=full_range, bits=bits)


def sdr_to_linear(
    ycbcr: torch.Tensor, *, matrix: Matrix = "bt709", full_range: bool = False, bits: int = 8, white: float = 100.0
) -> torch.Tensor:
    """SDR Y'CbCr (BT.709 primaries, BT.1886) -> linear BT.709 RGB in cd/m² (peak ``white``)."""
    rgb_p = ycbcr_to_rgb(ycbcr, matrix, full_range=full_range, bits=bits).clamp(0.0, 1.0)
    return bt1886_eotf(rgb_p, white=white)


def linear_to_sdr(
    rgb: torch.Tensor, *, matrix: Matrix = "bt709", full_range: bool = False, bits: int = 8, white: float = 100.0
) -> torch.Tensor:
    """Linear BT.709 RGB in cd/m² -> SDR Y'CbCr code / (2**bits-1) (BT.1886 inverse, clipped at ``white``)."""
    rgb_p = bt1886_inverse_eotf(rgb.clamp(0.0, white), white=white)
    return rgb_to_ycbcr(rgb_p, matrix, full_range=full_range, bits=bits)
