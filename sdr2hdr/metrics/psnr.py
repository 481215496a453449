"""PSNR with the paper's convention (JSI-GAN, Kim et al. AAAI 2020)."""

from __future__ import annotations

import math

import torch

from ._common import ArrayLike, as_image_batch


def _mse(pred: ArrayLike, ref: ArrayLike) -> torch.Tensor:
    """Per-image MSE over all planes (``B``, float64, on the prediction's device)."""
    p, r = as_image_batch(pred, ref, "psnr")
    return ((p - r) ** 2).mean(dim=(1, 2, 3))


def psnr_per_image(pred: ArrayLike, ref: ArrayLike) -> torch.Tensor:
    """:func:`psnr` of each image of a batch: a float64 tensor of ``B`` values (``inf`` where identical),
    on the prediction's device (training's validation PSNR is their mean over the validation patches)."""
    return -10.0 * torch.log10(_mse(pred, ref))


def psnr(pred: ArrayLike, ref: ArrayLike) -> float:
    """Peak signal-to-noise ratio in dB, peak 1, MSE over all planes.

    Args:
        pred: prediction, ``3 x H x W`` or ``B x 3 x H x W`` (numpy or torch), Y'CbCr
            BT.2020 PQ planes as 10-bit code values / 1023. **Not** clipped to [0, 1]
            (the paper's evaluation does not clip).
        ref: reference, same layout, range and shape.

    Returns:
        ``10 * log10(1 / MSE)`` with the MSE taken over every element of the three
        planes, computed in float64; ``inf`` when the images are identical. For a
        batch, the mean of the per-image PSNRs (``inf`` if any image is identical).
    """
    values = [math.inf if m == 0.0 else -10.0 * math.log10(m) for m in _mse(pred, ref).tolist()]
    return sum(values) / len(values)
