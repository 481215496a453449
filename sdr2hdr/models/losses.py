"""Losses of JSI-GAN (paper Eq. 12-15, spec "Losses").

Relativistic average hinge (RaHinge), batch means::

    L_adv^D = mean(relu(1 - (D(Y) - mean D(P)))) + mean(relu(1 + (D(P) - mean D(Y))))
    L_adv^G = mean(relu(1 - (D(P) - mean D(Y)))) + mean(relu(1 + (D(Y) - mean D(P))))

Feature matching ``L_fm = sum_i mean((fm_i(Y) - fm_i(P))**2)`` over the 4 maps;
reconstruction ``L2 = mean((Y - P)**2)``.  Totals (``LossWeights`` defaults
lambda_rec = 1, lambda_adv = 1, lambda_fm = 0.5, lambda_d = 0.5)::

    L_D1 = L_adv^{D1}(D1(Y), D1(P));   L_D2 = lambda_d * L_adv^{D2}(D2(Yd), D2(Pd))
    L_G  = lambda_rec * L2 + lambda_adv * (L_adv^{G,D1} + lambda_d * L_adv^{G,D2})
           + lambda_fm * (L_fm^{D1} + lambda_d * L_fm^{D2})

Nothing is detached here: when updating a discriminator pass ``P.detach()``
through it; when updating G, only G's optimiser steps (the Y terms carry no
gradient to G anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "LossWeights",
    "rahinge_d_loss",
    "rahinge_g_loss",
    "feature_matching_loss",
    "reconstruction_loss",
    "subpixel_grid_loss",
    "discriminator_losses",
    "generator_loss",
]


@dataclass(frozen=True)
class LossWeights:
    rec: float = 1.0  # lambda_rec
    adv: float = 1.0  # lambda_adv
    fm: float = 0.5  # lambda_fm
    d: float = 0.5  # lambda_d (detail GAN: D2 terms)


def rahinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator RaHinge loss; ``real_logits = D(Y)``, ``fake_logits = D(P)``."""
    r, f = real_logits.float(), fake_logits.float()
    return F.relu(1.0 - (r - f.mean())).mean() + F.relu(1.0 + (f - r.mean())).mean()


def rahinge_g_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Generator RaHinge loss; ``real_logits = D(Y)``, ``fake_logits = D(P)``."""
    r, f = real_logits.float(), fake_logits.float()
    return F.relu(1.0 - (f - r.mean())).mean() + F.relu(1.0 + (r - f.mean())).mean()


def feature_matching_loss(real_fms: Sequence[Tensor], fake_fms: Sequence[Tensor]) -> Tensor:
    """``sum_i mean((fm_i(Y) - fm_i(P))**2)`` over the discriminator's maps."""
    if len(real_fms) != len(fake_fms) or not real_fms:
        raise ValueError("need the same, non-zero number of real and fake feature maps")
    total = real_fms[0].new_zeros((), dtype=torch.float32)
    for a, b in zip(real_fms, fake_fms):
        total = total + F.mse_loss(b.float(), a.float(), reduction="mean")
    return total


def reconstruction_loss(target: Tensor, pred: Tensor) -> Tensor:
    """L2 reconstruction ``mean((Y - P)**2)``."""
    return F.mse_loss(pred.float(), target.float(), reduction="mean")


def subpixel_grid_loss(pred: Tensor, target: Tensor, scale: int, window: int = 4) -> Tensor:
    """Mean square of the part of ``pred - target`` that repeats every ``scale`` pixels (not in the paper).

    ``pred``, ``target``: ``B x C x H x W`` (H, W multiples of ``scale``; any units, the loss is in their square).
    The residual is split by sub-pixel position (``pixel_unshuffle``: ``scale**2`` maps of LR size); each
    position's deviation from the mean of its ``scale x scale`` block is averaged over ``window x window``
    LR pixels, so residual texture averages out and what is left is a pattern that is the same in
    neighbouring blocks: the up-sampler's grid. That grid holds a tiny share of the residual's power, so
    L2 barely pushes on it, but it is plain to see (and to HDR-VDP) in flat areas. Zero when the
    prediction is exact; blind to any error that is constant over each block.
    """
    s = int(scale)
    r = pred.float() - target.float()
    b, c, h, w = r.shape
    if s < 2 or h % s or w % s:
        raise ValueError(f"need scale >= 2 and H, W multiples of it, got scale {s} for {h} x {w}")
    u = F.pixel_unshuffle(r, s).reshape(b, c, s * s, h // s, w // s)
    u = (u - u.mean(2, keepdim=True)).reshape(b, c * s * s, h // s, w // s)
    k = max(1, min(int(window), h // s, w // s))
    g = F.avg_pool2d(u, k, stride=1)
    return (g * g).mean()


def discriminator_losses(
    d1_real: Tensor,
    d1_fake: Tensor,
    d2_real: Tensor,
    d2_fake: Tensor,
    weights: LossWeights = LossWeights(),
) -> tuple[Tensor, Tensor]:
    """``(L_D1, L_D2)`` with ``L_D2 = lambda_d * RaHinge_D(D2(Yd), D2(Pd))``."""
    return rahinge_d_loss(d1_real, d1_fake), weights.d * rahinge_d_loss(d2_real, d2_fake)


def generator_loss(
    target: Tensor,
    pred: Tensor,
    d1_real: Tensor,
    d1_fake: Tensor,
    d2_real: Tensor,
    d2_fake: Tensor,
    fm1_real: Sequence[Tensor],
    fm1_fake: Sequence[Tensor],
    fm2_real: Sequence[Tensor],
    fm2_fake: Sequence[Tensor],
    weights: LossWeights = LossWeights(),
    return_parts: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """Total generator loss ``L_G`` (Eq. 15).

    ``target`` = Y, ``pred`` = P; ``d1_*`` logits of D1 on Y / P, ``d2_*`` of D2
    on Yd / Pd; ``fm1_*`` / ``fm2_*`` their feature-matching maps.  With
    ``return_parts`` also returns ``{"rec", "adv1", "adv2", "fm1", "fm2"}``
    (unweighted terms, for logging).
    """
    w = weights
    rec = reconstruction_loss(target, pred)
    adv1 = rahinge_g_loss(d1_real, d1_fake)
    adv2 = rahinge_g_loss(d2_real, d2_fake)
    fm1 = feature_matching_loss(fm1_real, fm1_fake)
    fm2 = feature_matching_loss(fm2_real, fm2_fake)
    total = w.rec * rec + w.adv * (adv1 + w.d * adv2) + w.fm * (fm1 + w.d * fm2)
    if return_parts:
        return total, {"rec": rec, "adv1": adv1, "adv2": adv2, "fm1": fm1, "fm2": fm2}
    return total
