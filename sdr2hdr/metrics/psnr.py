"""PSNR with the paper's convention (JSI-GAN, Kim et al. AAAI 2020)."""

from __future__ import annotations

import math

from ._common import ArrayLike, as_image_batch


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
    p, r = as_image_batch(pred, ref, "psnr")
    mse = ((p - r) ** 2).mean(dim=(1, 2, 3))
    values = [math.inf if m == 0.0 else -10.0 * math.log10(m) for m in mse.tolist()]
    return sum(values) / len(values)
