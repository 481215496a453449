"""Discriminator of JSI-GAN (paper Fig. 3 / Eq. 10-11; D1 on P or Y, D2 on the
detail layers Pd or Yd: same architecture, separate instances).

Input ``B x 3 x 160 x 160``::

    conv_in   Conv3x3 s1 (32, bias) + LReLU(0.2)                     160
    blocks[i] DisBlock c = 32, 64, 128, 256:
              Conv4x4 s2 p1 (c) + BN + LReLU   -> feature-matching map i
              Conv3x3 s1 p1 (2c) + BN + LReLU                         80/40/20/10
    conv_down Conv4x4 s2 p1 (512) + BN + LReLU                        5
    conv_fc   Conv5x5 valid (512) + BN + LReLU  ("FC512")             1
    conv_logit Conv1x1 (1) + BN  ("FC1")  -> logit

Every convolution is spectrally normalised (one power iteration per training
forward, ``torch.nn.utils.parametrizations.spectral_norm``); convolutions
followed by BN have no bias (the BN shift plays that role).  BN: momentum 0.1
(TF decay 0.9), eps 1e-5, learned scale and shift.  Conv weights: truncated
normal, std 0.02, cut at 2 std (TF ``truncated_normal_initializer``).

Note: in training mode the final BN normalises the B logits across the batch,
so it needs B >= 2 (as the authors' batch of 8).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["Discriminator", "DisBlock"]

LRELU_SLOPE = 0.2
BN_MOMENTUM = 0.1
BN_EPS = 1e-5
INIT_STD = 0.02


def _sn_conv(cin: int, cout: int, k: int, stride: int, padding: int, bias: bool) -> nn.Module:
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=bias)
    nn.init.trunc_normal_(conv.weight, mean=0.0, std=INIT_STD, a=-2 * INIT_STD, b=2 * INIT_STD)
    if bias:
        nn.init.zeros_(conv.bias)
    return spectral_norm(conv, n_power_iterations=1)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM, affine=True)


class DisBlock(nn.Module):
    """``DB(x) = LReLU(BN(Conv3x3 s1 (2c)(LReLU(BN(Conv4x4 s2 (c)(x))))))``.

    ``forward`` returns ``(out, fm)``, ``fm`` the activation after the first
    conv (the feature-matching map)."""

    def __init__(self, cin: int, c: int) -> None:
        super().__init__()
        self.conv1 = _sn_conv(cin, c, 4, 2, 1, bias=False)
        self.bn1 = _bn(c)
        self.conv2 = _sn_conv(c, 2 * c, 3, 1, 1, bias=False)
        self.bn2 = _bn(2 * c)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        fm = F.leaky_relu(self.bn1(self.conv1(x)), LRELU_SLOPE)
        out = F.leaky_relu(self.bn2(self.conv2(fm)), LRELU_SLOPE)
        return out, fm


class Discriminator(nn.Module):
    """JSI-GAN discriminator.  ``forward(x)`` -> ``(logit, fms)`` with ``logit``
    ``B x 1`` and ``fms`` the 4 feature-matching maps (``B x 32 x 80 x 80``,
    ``B x 64 x 40 x 40``, ``B x 128 x 20 x 20``, ``B x 256 x 10 x 10`` for a
    160x160 input)."""

    def __init__(self, in_ch: int = 3, base: int = 32) -> None:
        super().__init__()
        self.conv_in = _sn_conv(in_ch, base, 3, 1, 1, bias=True)
        blocks = []
        cin = base
        for i in range(4):
            c = base * (2**i)
            blocks.append(DisBlock(cin, c))
            cin = 2 * c
        self.blocks = nn.ModuleList(blocks)
        self.conv_down = _sn_conv(cin, 512, 4, 2, 1, bias=False)
        self.bn_down = _bn(512)
        self.conv_fc = _sn_conv(512, 512, 5, 1, 0, bias=False)
        self.bn_fc = _bn(512)
        self.conv_logit = _sn_conv(512, 1, 1, 1, 0, bias=False)
        self.bn_logit = _bn(1)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        h = F.leaky_relu(self.conv_in(x), LRELU_SLOPE)
        fms: list[Tensor] = []
        for blk in self.blocks:
            h, fm = blk(h)
            fms.append(fm)
        h = F.leaky_relu(self.bn_down(self.conv_down(h)), LRELU_SLOPE)
        h = F.leaky_relu(self.bn_fc(self.conv_fc(h)), LRELU_SLOPE)
        logit = self.bn_logit(self.conv_logit(h))  # B x 1 x 1 x 1 for 160x160 input
        return logit.flatten(1), fms
