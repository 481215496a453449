"""Weight-free baselines every user could otherwise use, with the model's I/O convention.

Input ``B x 3 x H x W``: Y'CbCr BT.709 limited-range 8-bit code values / 255.
Output ``B x 3 x sH x sW``: Y'CbCr BT.2020 NCL, PQ, limited-range 10-bit code values / 1023.

Both up-scale the Y'CbCr planes with bicubic interpolation (Keys a = -0.75,
PyTorch's, half-pixel centres), then map SDR to HDR per pixel:

* :class:`BT2408DirectMapping`: ITU-R BT.2408 "display-referred" direct
  mapping: BT.1886 EOTF with SDR 100 % placed at the HDR reference white
  (203 cd/m²), BT.709 -> BT.2020 primaries, PQ.
* :class:`InverseReinhard`: the exact inverse of the extended-Reinhard
  operator of the training degradation model (:mod:`sdr2hdr.data.degrade`,
  at its nominal grading gain of 1): the simplest *invertible* operator
  there. (The even simpler hard clip, inverted, is exactly the BT.2408
  mapping above: diffuse white 203 cd/m² <-> SDR white.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sdr2hdr import color


class _SDRToHDRBaseline(nn.Module):
    """Bicubic up-scaling of the Y'CbCr planes, then a per-pixel SDR -> HDR mapping."""

    receptive_field = 2  # bicubic taps, LR pixels
    #: Colour maths (matrices, the /10000 PQ normalisation) stays fp32: never run under autocast.
    fp32_only = True

    def __init__(self, scale: int) -> None:
        super().__init__()
        if scale not in (1, 2, 4):
            raise ValueError(f"scale must be 1, 2 or 4, got {scale}")
        self.scale = scale

    def sdr_linear_to_hdr_linear(self, rgb709: Tensor) -> Tensor:
        """Linear BT.709 RGB, SDR display light (cd/m², 0..100) -> linear BT.709 RGB, HDR cd/m²."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        x = x.float()
        if self.scale != 1:
            x = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        sdr = color.sdr_to_linear(x, matrix="bt709", full_range=False, bits=8, white=100.0)
        hdr709 = self.sdr_linear_to_hdr_linear(sdr)
        hdr2020 = color.convert_primaries(hdr709, "bt709", "bt2020").clamp(min=0.0)
        return color.linear_to_hdr10(hdr2020, bits=10).to(dtype)


class BT2408DirectMapping(_SDRToHDRBaseline):
    """BT.2408 direct mapping: SDR peak (100 % signal) -> 203 cd/m², linear scaling of display light."""

    def sdr_linear_to_hdr_linear(self, rgb709: Tensor) -> Tensor:
        return rgb709 * (color.HDR_REFERENCE_WHITE / 100.0)


def inverse_reinhard(s: Tensor, white: float) -> Tensor:
    """Invert extended Reinhard ``s = L (1 + L / w²) / (1 + L)`` for L >= 0 (s in [0, 1] -> L in [0, w])."""
    s = s.clamp(0.0, 1.0)
    w2 = white * white
    return 0.5 * w2 * (torch.sqrt((1 - s) ** 2 + 4 * s / w2) - (1 - s))


class InverseReinhard(_SDRToHDRBaseline):
    """Exact inverse of the degradation model's extended Reinhard on luminance (white point at the peak).

    SDR white (1.0) is diffuse white 203 cd/m² before compression; the
    operator's white point is the mastering peak, so SDR 1.0 maps back to ``peak``.
    """

    def __init__(self, scale: int, peak: float = 1000.0) -> None:
        super().__init__(scale)
        self.peak = peak

    def sdr_linear_to_hdr_linear(self, rgb709: Tensor) -> Tensor:
        rel = rgb709 / 100.0
        s = color.luminance(rel, "bt709").unsqueeze(-3)
        lum = inverse_reinhard(s, self.peak / color.HDR_REFERENCE_WHITE)
        ratio = torch.where(s > 0, lum / s.clamp(min=1e-12), torch.zeros_like(s))
        return rel * ratio * color.HDR_REFERENCE_WHITE
