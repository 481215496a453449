"""SSIM (Wang et al. 2004) and MS-SSIM (Wang et al. 2003) on Y'CbCr planes, in torch.

Both use the 11 x 11 Gaussian window (sigma 1.5, i.e. scipy's ``truncate=3.5``),
K1 = 0.01, K2 = 0.03, data range 1, population (not sample) covariances, and only
the 'valid' window positions (the window lies entirely inside the image). That is
exactly scikit-image's ``structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1)``, which filters with mirrored borders and
then crops ``(11 - 1) // 2 = 5`` pixels from every side before averaging: the cropped
border is precisely the set of pixels whose window touches the padding.

Every plane is scored on its own and the plane scores are averaged. Batches return
the mean of the per-image scores. Computation is float64 on the input's device.
"""

from __future__ import annotations

import torch

from ._common import ArrayLike, as_image_batch

__all__ = ["ssim", "msssim", "MSSSIM_WEIGHTS"]

_SIGMA = 1.5
_RADIUS = int(3.5 * _SIGMA + 0.5)  # 5 -> 11 taps, scikit-image / scipy truncate=3.5
_WIN = 2 * _RADIUS + 1
_C1 = (0.01 * 1.0) ** 2
_C2 = (0.03 * 1.0) ** 2

#: MS-SSIM scale weights, fine (scale 1) to coarse (scale 5).
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _gaussian_taps() -> list[float]:
    x = torch.arange(-_RADIUS, _RADIUS + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * x**2 / _SIGMA**2)
    return (g / g.sum()).tolist()


_TAPS = _gaussian_taps()


def _filter_valid(x: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of the last two axes, 'valid' positions only.

    Shift-and-add over the 11 taps: memory stays at a few copies of the input
    (an im2col float64 convolution of a 1080p frame would need gigabytes).
    """
    h, w = x.shape[-2:]
    ho, wo = h - _WIN + 1, w - _WIN + 1
    rows = x[..., 0:ho, :] * _TAPS[0]
    for i in range(1, _WIN):
        rows.add_(x[..., i : i + ho, :], alpha=_TAPS[i])
    out = rows[..., :, 0:wo] * _TAPS[0]
    for i in range(1, _WIN):
        out.add_(rows[..., :, i : i + wo], alpha=_TAPS[i])
    return out


def _ssim_terms(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term per plane.

    ``x``, ``y``: ``B x C x H x W`` float64 with H, W >= 11. Returns two ``B x C`` tensors:
    mean over valid positions of ``l * cs`` and of ``cs``, where
    ``l = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)`` and
    ``cs = (2 s_xy + C2) / (s_x^2 + s_y^2 + C2)``.
    """
    if min(x.shape[-2:]) < _WIN:
        raise ValueError(f"SSIM needs planes of at least {_WIN} x {_WIN}, got {tuple(x.shape[-2:])}")
    mu_x, mu_y, xx, yy, xy = _filter_valid(torch.stack([x, y, x * x, y * y, x * y]))
    var_x = xx - mu_x * mu_x
    var_y = yy - mu_y * mu_y
    cov = xy - mu_x * mu_y
    lum = (2.0 * mu_x * mu_y + _C1) / (mu_x * mu_x + mu_y * mu_y + _C1)
    cs = (2.0 * cov + _C2) / (var_x + var_y + _C2)
    return (lum * cs).mean(dim=(-2, -1)), cs.mean(dim=(-2, -1))


def ssim(pred: ArrayLike, ref: ArrayLike) -> float:
    """Mean structural similarity (Wang et al. 2004), mean over planes.

    Args:
        pred: prediction, ``3 x H x W`` or ``B x 3 x H x W`` (numpy or torch), Y'CbCr
            BT.2020 PQ planes as 10-bit code values / 1023 (data range 1; not clipped).
        ref: reference, same layout, range and shape. H, W >= 11.

    Returns:
        SSIM in [-1, 1] (1 for identical images), the mean over the planes of the
        per-plane mean SSIM; for a batch, the mean over images.
    """
    p, r = as_image_batch(pred, ref, "ssim")
    s, _ = _ssim_terms(p, r)
    return float(s.mean())


def _pool2(x: torch.Tensor) -> torch.Tensor:
    """2 x 2 average pooling, stride 2; an odd last row/column is dropped."""
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    x = x[..., : 2 * h, : 2 * w]
    return x.reshape(*x.shape[:-2], h, 2, w, 2).mean(dim=(-3, -1))


def msssim(pred: ArrayLike, ref: ArrayLike) -> float:
    """Multi-scale SSIM (Wang, Simoncelli and Bovik 2003), five scales, mean over planes.

    Convention, per plane: at scales 1..4 the mean contrast-structure term ``cs_j``
    (valid window positions, as in :func:`ssim`), at scale 5 the mean SSIM map
    ``mean(l * cs)`` (the original MATLAB ``msssim.m``, pytorch-msssim, TensorFlow);
    between scales 2 x 2 average pooling with stride 2 (an odd last row/column is
    dropped). ``MS-SSIM = prod_{j<5} max(cs_j, 0)^w_j * max(ssim_5, 0)^w_5`` with
    :data:`MSSSIM_WEIGHTS`. Negative terms are clamped to 0 (as pytorch-msssim does)
    so that the fractional powers stay real; the original MATLAB would go complex.

    Args:
        pred: prediction, ``3 x H x W`` or ``B x 3 x H x W`` (numpy or torch), Y'CbCr
            BT.2020 PQ planes as 10-bit code values / 1023 (data range 1; not clipped).
        ref: reference, same layout, range and shape. H, W >= 176 (11 at scale 5).

    Returns:
        MS-SSIM in [0, 1] (1 for identical images), the mean over planes; for a
        batch, the mean over images.
    """
    p, r = as_image_batch(pred, ref, "msssim")
    if min(p.shape[-2:]) < _WIN * 16:
        raise ValueError(f"msssim needs planes of at least {_WIN * 16} x {_WIN * 16}, got {tuple(p.shape[-2:])}")
    score = torch.ones(p.shape[:2], dtype=torch.float64, device=p.device)
    for j, weight in enumerate(MSSSIM_WEIGHTS):
        s, cs = _ssim_terms(p, r)
        if j < len(MSSSIM_WEIGHTS) - 1:
            score = score * cs.clamp(min=0.0) ** weight
            p, r = _pool2(p), _pool2(r)
        else:
            score = score * s.clamp(min=0.0) ** weight
    return float(score.mean())
