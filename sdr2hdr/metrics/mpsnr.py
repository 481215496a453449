"""mPSNR as in Deep SR-ITM's evaluation (``utils/mPSNR_HDR.m``), spec §8.

Banterle's HDR-Toolbox multi-exposure PSNR adapted to 10-bit code values: scale 1023,
no gamma, fixed exposures ``2^i`` for ``i = -3..3``. For each exposure both images are
quantised with ``q(x) = clamp(round(1023 * 2^i * x), 0, 1023)`` (MATLAB rounding, half
away from zero); the exposure counts only if the mean of ``q(ref) / 1023`` over all
elements of the three planes lies strictly inside (0.1, 0.9). The mean of the kept
exposures' MSEs gives ``mPSNR = 20 log10(1023 / sqrt(MSE))``.

If no exposure is kept the original returns the sentinel ``-1``; :func:`mpsnr` does the
same, and :func:`mpsnr_details` reports it explicitly (``kept == ()``, ``valid`` False)
so callers can flag the frame instead of averaging the sentinel in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._common import ArrayLike, as_image_batch

__all__ = ["mpsnr", "mpsnr_details", "MPSNRResult", "EXPOSURES", "NO_EXPOSURE_KEPT"]

#: Exposure stops ``i`` (scale ``2^i``) tried by the original evaluation.
EXPOSURES = tuple(range(-3, 4))
#: Value returned when no exposure passes the 0.1 < mean < 0.9 test (as the original).
NO_EXPOSURE_KEPT = -1.0
_SCALE = 1023.0


@dataclass(frozen=True)
class MPSNRResult:
    """Detailed mPSNR of one image pair.

    Attributes:
        value: mPSNR in dB; ``inf`` for identical quantised images; ``-1.0`` (the
            original's sentinel) when no exposure was kept.
        kept: exposure stops ``i`` that passed the ``0.1 < v < 0.9`` test.
        mse: ``{i: MSE_i}`` in squared code values, for the kept exposures.
    """

    value: float
    kept: tuple[int, ...]
    mse: dict[int, float]

    @property
    def valid(self) -> bool:
        """False when no exposure was kept and ``value`` is the ``-1`` sentinel."""
        return bool(self.kept)


def _quantise(x: torch.Tensor, stop: int) -> torch.Tensor:
    """``clamp(round(1023 * 2^stop * x), 0, 1023)`` with MATLAB rounding, as float64.

    The scaling runs in the input's own precision (1023 * 2^i times a float is exact up to
    the final rounding): for float32 input k/1023 this yields exactly k * 2^i, so the ties
    fall where the original's do. Clamping before rounding is equivalent to clamping
    after it (rounding is monotone and both bounds are integers), and for ``y >= 0``
    half-away-from-zero rounding is ``floor(y) + (frac(y) >= 0.5)``, exact (unlike
    ``floor(y + 0.5)``, which rounds 0.49999999999999994 up).
    """
    y = (x * (_SCALE * 2.0**stop)).to(torch.float64).clamp_(0.0, _SCALE)
    q = torch.floor(y)
    return q.add_(y.sub_(q).ge_(0.5))


def _details_one(p: torch.Tensor, r: torch.Tensor) -> MPSNRResult:
    p = p.clamp(0.0, 1.0)
    kept: list[int] = []
    mse: dict[int, float] = {}
    for stop in EXPOSURES:
        qr = _quantise(r, stop)
        v = float(qr.mean()) / _SCALE
        if 0.1 < v < 0.9:
            kept.append(stop)
            mse[stop] = float(((qr - _quantise(p, stop)) ** 2).mean())
    if not kept:
        return MPSNRResult(NO_EXPOSURE_KEPT, (), {})
    total = sum(mse.values()) / len(kept)
    value = math.inf if total == 0.0 else 20.0 * math.log10(_SCALE / math.sqrt(total))
    return MPSNRResult(value, tuple(kept), mse)


def _pair(pred: ArrayLike, ref: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    # Keep float32 / float64 as given (see _quantise); promote other dtypes to float64.
    return as_image_batch(pred, ref, "mpsnr", dtype=None)


def mpsnr_details(pred: ArrayLike, ref: ArrayLike) -> MPSNRResult:
    """mPSNR of one image pair with the kept exposures and their MSEs.

    Args:
        pred: prediction, ``3 x H x W`` (numpy or torch), Y'CbCr BT.2020 PQ planes as
            10-bit code values / 1023; clipped to [0, 1] here.
        ref: reference, same layout and shape, exactly ``k / 1023``.

    Returns:
        :class:`MPSNRResult`; check ``.valid`` before averaging ``.value``.
    """
    p, r = _pair(pred, ref)
    if p.shape[0] != 1:
        raise ValueError("mpsnr_details takes one image (3 x H x W); call it per image of a batch")
    return _details_one(p[0], r[0])


def mpsnr(pred: ArrayLike, ref: ArrayLike) -> float:
    """Multi-exposure PSNR in dB (Deep SR-ITM's ``mPSNR_HDR.m``).

    Args:
        pred: prediction, ``3 x H x W`` or ``B x 3 x H x W`` (numpy or torch), Y'CbCr
            BT.2020 PQ planes as 10-bit code values / 1023; clipped to [0, 1] here.
        ref: reference, same layout and shape, exactly ``k / 1023``.

    Returns:
        mPSNR in dB (``inf`` if the quantised images are identical). ``-1.0`` when no
        exposure is kept (the original's sentinel; use :func:`mpsnr_details` to detect
        it). For a batch, the mean of the per-image values; if any image has no kept
        exposure the batch result is ``-1.0`` too, never an average including it.
    """
    p, r = _pair(pred, ref)
    values = [_details_one(pi, ri) for pi, ri in zip(p, r)]
    if not all(v.valid for v in values):
        return NO_EXPOSURE_KEPT
    return sum(v.value for v in values) / len(values)
