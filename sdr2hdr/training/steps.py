"""Each stage's networks (seeded), one optimiser step of each stage, and the learning rate as a
pure function of the step.

Pure in the sense that matters for exact resume: no scheduler object, no hidden state
besides the models and optimisers passed in.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from sdr2hdr.models.losses import LossWeights
    from sdr2hdr.training.dist import Dist

__all__ = ["LOSSES", "discriminators", "generator", "jsigan_step", "jsinet_step", "reconstruction_loss", "set_lr",
           "stage1_lr", "stage2_lr"]


def generator(scale: int, seed: int, device: torch.device, *, channels_last: bool = False) -> nn.Module:
    """JSInet x``scale`` on ``device``, initialised from ``seed``."""
    from sdr2hdr.models import JSInet

    torch.manual_seed(seed)
    g = JSInet(scale=scale).to(device)
    return g.to(memory_format=torch.channels_last) if channels_last else g


def discriminators(seed: int, device: torch.device, *, channels_last: bool = False, sync_bn: bool = False) -> tuple[nn.Module, nn.Module]:
    """JSI-GAN's D1 and D2 on ``device``, initialised from ``seed + 1``; ``sync_bn``: SyncBatchNorm (multi-GPU)."""
    from sdr2hdr.models import Discriminator

    torch.manual_seed(seed + 1)
    ds = [Discriminator().to(device) for _ in range(2)]
    if sync_bn:
        ds = [nn.SyncBatchNorm.convert_sync_batchnorm(d) for d in ds]
    if channels_last:
        ds = [d.to(memory_format=torch.channels_last) for d in ds]
    return ds[0], ds[1]


def stage1_lr(step: int, total: int, base: float = 1e-4, schedule: str = "step") -> float:
    """JSInet learning rate at ``step`` of ``total``.

    ``"step"`` (the paper): ``base``, x0.1 from 80 % of the steps, x0.01 from 90 %
    (epochs 200, 225 of 250). ``"cosine"`` (the short CPU recipe): a linear
    warm-up over the first 2 % of the steps (a warm restart from ``--init``
    must not kick the weights with the full rate on a cold Adam state), then
    half a cosine from ``base`` down to 0.
    """
    if schedule == "cosine":
        warm = max(1, total // 50)
        if step < warm:
            return base * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))
    if schedule != "step":
        raise ValueError(f"unknown learning-rate schedule {schedule!r} (step or cosine)")
    m1, m2 = int(round(0.8 * total)), int(round(0.9 * total))
    return base * (0.1 if step >= m1 else 1.0) * (0.1 if step >= m2 else 1.0)


def stage2_lr(step: int, total: int, base: float = 1e-6) -> float:
    """JSI-GAN: ``base`` for the first half of the steps, then linear to 0 at the end."""
    half = total // 2
    if step < half:
        return base
    return base * max(0.0, (total - step) / max(1, total - half))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group of ``opt`` to ``lr``."""
    for g in opt.param_groups:
        g["lr"] = lr


LOSSES = ("l2", "l1", "psnr")


def reconstruction_loss(p: torch.Tensor, y: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """JSInet's loss between prediction ``p`` and truth ``y`` (``B x 3 x H x W`` PQ Y'CbCr / 1023).

    ``l2``: the paper's ``mean((Y - P)**2)`` over every pixel of the batch (large-error patches dominate).
    ``l1``: ``mean(|Y - P|)``. ``psnr``: the mean over patches of ``ln(MSE_i + 1e-8)``: minimising it
    maximises the mean per-patch PSNR, the way the test sets are scored (a mean of per-frame PSNR),
    so a patch that is already close to the truth counts as much as one far from it.
    """
    d = p.float() - y.float()
    if kind == "l2":
        return (d * d).mean()
    if kind == "l1":
        return d.abs().mean()
    if kind == "psnr":
        return torch.log((d * d).flatten(1).mean(1) + 1e-8).mean()
    raise ValueError(f"unknown loss {kind!r} (choose from {', '.join(LOSSES)})")


def jsinet_step(
    g: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, lr: float,
    *, autocast: Callable[[], Any] = contextlib.nullcontext, loss: str = "l2", grid_weight: float = 0.0, scale: int = 0,
) -> dict[str, float]:
    """One JSInet step: :func:`reconstruction_loss` of kind ``loss`` (the paper's L2 by default), plus
    ``grid_weight`` x :func:`~sdr2hdr.models.losses.subpixel_grid_loss` at ``scale`` when it is > 0, Adam at ``lr``.
    Returns ``{"loss", "lr"}`` and, with the grid term, ``"grid"`` (unweighted)."""
    from sdr2hdr.models.losses import subpixel_grid_loss

    set_lr(opt, lr)
    with autocast():
        p = g(x)
    value = reconstruction_loss(p, y, loss)
    out = {"lr": lr}
    if grid_weight > 0:
        grid = subpixel_grid_loss(p, y, scale)
        value = value + grid_weight * grid
        out["grid"] = float(grid.detach())
    opt.zero_grad(set_to_none=True)
    value.backward()
    opt.step()
    return {"loss": float(value.detach()), **out}


def jsigan_step(
    g: nn.Module, d1: nn.Module, d2: nn.Module,
    opt_g: torch.optim.Optimizer, opt_d1: torch.optim.Optimizer, opt_d2: torch.optim.Optimizer,
    x: torch.Tensor, y: torch.Tensor, lr: float, *, weights: LossWeights | None = None,
    autocast: Callable[[], Any] = contextlib.nullcontext, dist: Dist | None = None,
) -> dict[str, float]:
    """One JSI-GAN step (spec "Losses"): update D1 and D2, then G.

    ``P = G(X)`` once; D1 sees ``Y`` / ``P.detach()``, D2 the detail layers
    ``Yd`` / ``Pd.detach()`` (real and fake in separate calls, as the authors'
    graph); ``L_D1`` and ``L_D2 = lambda_d * RaHinge_D`` step D1 and D2. Then,
    with the updated (frozen) discriminators, ``L_G = lambda_rec L2 +
    lambda_adv (G_D1 + lambda_d G_D2) + lambda_fm (FM_D1 + lambda_d FM_D2)``
    steps G. All three optimisers at ``lr``. Returns the loss terms:
    ``loss`` (L_G), ``loss_d1``, ``loss_d2``, ``rec``, ``adv1``, ``adv2``,
    ``fm1``, ``fm2`` (unweighted), ``lr``.
    """
    from sdr2hdr.models import detail_layer
    from sdr2hdr.models.losses import LossWeights, discriminator_losses, generator_loss

    w = weights or LossWeights()
    for o in (opt_g, opt_d1, opt_d2):
        set_lr(o, lr)
    y = y.float()
    with autocast():
        p = g(x)
    p = p.float()
    yd = detail_layer(y)
    pd = detail_layer(p)
    d1.requires_grad_(True)
    d2.requires_grad_(True)
    with autocast():
        d1r, _ = d1(y)
        d1f, _ = d1(p.detach())
        d2r, _ = d2(yd)
        d2f, _ = d2(pd.detach())
    l_d1, l_d2 = discriminator_losses(d1r, d1f, d2r, d2f, w)
    opt_d1.zero_grad(set_to_none=True)
    opt_d2.zero_grad(set_to_none=True)
    (l_d1 + l_d2).backward()
    if dist is not None:
        dist.average_grads(d1)
        dist.average_grads(d2)
    opt_d1.step()
    opt_d2.step()
    d1.requires_grad_(False)
    d2.requires_grad_(False)
    try:
        with autocast():
            d1r, f1r = d1(y)
            d1f, f1f = d1(p)
            d2r, f2r = d2(yd)
            d2f, f2f = d2(pd)
        l_g, parts = generator_loss(y, p, d1r, d1f, d2r, d2f, f1r, f1f, f2r, f2f, w, return_parts=True)  # type: ignore[misc]
        opt_g.zero_grad(set_to_none=True)
        l_g.backward()
        opt_g.step()
    finally:
        d1.requires_grad_(True)
        d2.requires_grad_(True)
    out = {"loss": float(l_g.detach()), "loss_d1": float(l_d1.detach()), "loss_d2": float(l_d2.detach()), "lr": lr}
    out.update({k: float(v.detach()) for k, v in parts.items()})
    return out
