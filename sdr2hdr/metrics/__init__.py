"""Image-quality metrics of the JSI-GAN paper, in torch (CPU or CUDA).

Y'CbCr metrics (prediction, reference as ``3 x H x W`` or ``B x 3 x H x W`` numpy arrays
or torch tensors holding BT.2020 PQ Y'CbCr planes as 10-bit code values / 1023; a batch
returns the mean of the per-image scores): :func:`psnr` (per image: :func:`psnr_per_image`), :func:`ssim`, :func:`msssim`,
:func:`mpsnr` (details and the no-exposure flag: :func:`mpsnr_details`).

Perceptual HDR metric on absolute luminance (cd/m²): :func:`hdrvdp` (HDR-VDP 2.2.2 Q).

Pure functions on arrays/tensors: no files, no printing.
"""

from __future__ import annotations

from typing import Callable

from .hdrvdp import PPD_4K_30IN_1P5M, HDRVDPResult, hdrvdp
from .mpsnr import MPSNRResult, mpsnr, mpsnr_details
from .psnr import psnr, psnr_per_image
from .ssim import msssim, ssim

#: The four Y'CbCr metrics by name: ``METRICS[name](pred, ref) -> float``.
METRICS: dict[str, Callable[..., float]] = {
    "psnr": psnr,
    "ssim": ssim,
    "msssim": msssim,
    "mpsnr": mpsnr,
}

__all__ = [
    "METRICS",
    "HDRVDPResult",
    "MPSNRResult",
    "PPD_4K_30IN_1P5M",
    "hdrvdp",
    "mpsnr",
    "mpsnr_details",
    "msssim",
    "psnr",
    "psnr_per_image",
    "ssim",
]
