"""Training's pure parts: learning-rate schedules, validation PSNR, the loss formulas, the GAN step."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from sdr2hdr.metrics import psnr_per_image
from sdr2hdr.training import jsigan_step, stage1_lr, stage2_lr

# --------------------------------------------------------------------------- schedules and formulas


def test_schedules() -> None:
    assert [stage1_lr(s, 250) for s in (0, 199, 200, 224, 225, 249)] == pytest.approx([1e-4, 1e-4, 1e-5, 1e-5, 1e-6, 1e-6])
    assert [stage2_lr(s, 10) for s in (0, 4, 5, 6, 9)] == pytest.approx([1e-6, 1e-6, 1e-6, 0.8e-6, 0.2e-6])
    p, t = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.1)
    p[1] = 0.1 + 0.01
    assert psnr_per_image(p, t).tolist() == pytest.approx([20.0, 40.0])  # validation PSNR, per patch


def _rahinge_d(r: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return torch.relu(1 - (r - f.mean())).mean() + torch.relu(1 + (f - r.mean())).mean()


def _rahinge_g(r: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return torch.relu(1 - (f - r.mean())).mean() + torch.relu(1 + (r - f.mean())).mean()


def test_loss_formulas_on_fixed_tensors() -> None:
    from sdr2hdr.models.losses import LossWeights, discriminator_losses, generator_loss

    r = torch.tensor([[0.5], [-1.0], [2.0]])
    f = torch.tensor([[0.0], [1.5], [-0.5]])
    r2, f2 = r * 0.3 + 0.1, f * -0.7
    # By hand: mean r = 0.5, mean f = 1/3.
    d_hand = (max(0, 1 - (0.5 - 1 / 3)) + max(0, 1 - (-1 - 1 / 3)) + max(0, 1 - (2 - 1 / 3))) / 3 + (
        max(0, 1 + (0 - 0.5)) + max(0, 1 + (1.5 - 0.5)) + max(0, 1 + (-0.5 - 0.5))
    ) / 3
    l_d1, l_d2 = discriminator_losses(r, f, r2, f2)
    assert float(l_d1) == pytest.approx(d_hand)
    assert float(l_d2) == pytest.approx(0.5 * float(_rahinge_d(r2, f2)))
    y, p = torch.full((1, 3, 2, 2), 0.5), torch.full((1, 3, 2, 2), 0.25)
    fm = lambda k: [torch.full((1, 2, 2, 2), k * (i + 1.0)) for i in range(4)]  # noqa: E731
    total, parts = generator_loss(y, p, r, f, r2, f2, fm(1.0), fm(0.5), fm(2.0), fm(1.0), LossWeights(), return_parts=True)
    fm1 = sum((0.5 * (i + 1)) ** 2 for i in range(4))
    fm2 = sum((1.0 * (i + 1)) ** 2 for i in range(4))
    expected = 0.0625 + (float(_rahinge_g(r, f)) + 0.5 * float(_rahinge_g(r2, f2))) + 0.5 * (fm1 + 0.5 * fm2)
    assert float(parts["rec"]) == pytest.approx(0.0625) and float(parts["fm1"]) == pytest.approx(fm1)
    assert float(total) == pytest.approx(expected)


def test_gan_step_updates_g_d1_d2() -> None:
    from sdr2hdr.models import Discriminator, JSInet, detail_layer
    from sdr2hdr.models.losses import LossWeights

    torch.manual_seed(0)
    g, d1, d2 = JSInet(4), Discriminator(), Discriminator()  # x4: the cheaper generator on CPU
    gen = torch.Generator().manual_seed(1)
    x = 0.2 + 0.6 * torch.rand(3, 3, 40, 40, generator=gen)
    y = 0.2 + 0.6 * torch.rand(3, 3, 160, 160, generator=gen)
    before = [copy.deepcopy(m) for m in (g, d1, d2)]
    opts = [torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.9, 0.999)) for m in (g, d1, d2)]
    terms = jsigan_step(g, d1, d2, *opts, x, y, 1e-3, weights=LossWeights())
    for m, m0 in zip((g, d1, d2), before):
        # Every parameter moved, except the shift of the discriminators' last BatchNorm: RaHinge
        # only sees logit differences, so a common shift of all logits has no gradient.
        frozen = [n for (n, a), b in zip(m.named_parameters(), m0.parameters()) if torch.equal(a, b)]
        assert frozen == ([] if m is g else ["bn_logit.bias"]), (type(m).__name__, frozen)
    # The discriminator losses are the spec's formulas on the pre-step models.
    g0, d10, d20 = before
    with torch.no_grad():
        p = g0(x)
        r1, f1 = d10(y)[0], d10(p)[0]
        r2, f2 = d20(detail_layer(y))[0], d20(detail_layer(p))[0]
    assert terms["rec"] == pytest.approx(float(F.mse_loss(p, y)), rel=1e-5)
    assert terms["loss_d1"] == pytest.approx(float(_rahinge_d(r1, f1)), rel=1e-5)
    assert terms["loss_d2"] == pytest.approx(0.5 * float(_rahinge_d(r2, f2)), rel=1e-5)
    composed = terms["rec"] + terms["adv1"] + 0.5 * terms["adv2"] + 0.5 * (terms["fm1"] + 0.5 * terms["fm2"])
    assert terms["loss"] == pytest.approx(composed, rel=1e-5)


def test_reconstruction_losses_on_fixed_tensors() -> None:
    from sdr2hdr.training.steps import reconstruction_loss

    y = torch.full((2, 3, 4, 4), 0.5)
    p = y.clone()
    p[0] += 0.1  # patch 0: MSE 1e-2
    p[1, 0, 0, 0] += 0.4  # patch 1: MSE 0.16 / 48
    mse = [1e-2, 0.16 / 48]
    assert float(reconstruction_loss(p, y, "l2")) == pytest.approx(sum(mse) / 2)
    assert float(reconstruction_loss(p, y, "l1")) == pytest.approx((48 * 0.1 + 0.4) / 96)
    assert float(reconstruction_loss(p, y, "psnr")) == pytest.approx(sum(torch.log(torch.tensor(m + 1e-8)).item() for m in mse) / 2)
    with pytest.raises(ValueError, match="unknown loss"):
        reconstruction_loss(p, y, "l3")


def test_psnr_loss_weighs_every_patch_alike() -> None:
    """L2's gradient on a patch grows with its error; the psnr loss's does not (it is scale-free per patch)."""
    from sdr2hdr.training.steps import reconstruction_loss

    y = torch.zeros(2, 1, 2, 2)
    p = torch.tensor([[[[0.01, 0.0], [0.0, 0.0]]], [[[0.1, 0.0], [0.0, 0.0]]]], requires_grad=True)
    for kind, ratio in (("l2", 10.0), ("psnr", 0.1)):
        p.grad = None
        reconstruction_loss(p, y, kind).backward()
        g = p.grad[:, 0, 0, 0]
        assert float(g[1] / g[0]) == pytest.approx(ratio, rel=1e-3)  # eps 1e-8 in the log


def test_subpixel_grid_loss_sees_only_the_repeating_part() -> None:
    """The grid term is the mean square of a pattern that repeats every ``scale`` pixels, blind to
    block-constant errors, and small for texture-like (independent) errors."""
    from sdr2hdr.models.losses import subpixel_grid_loss

    gen = torch.Generator().manual_seed(0)
    y = torch.rand(2, 3, 32, 48, generator=gen)
    for s in (2, 4):
        assert float(subpixel_grid_loss(y, y, s)) == 0.0
        blocks = F.interpolate(torch.randn(2, 3, 32 // s, 48 // s, generator=gen), scale_factor=s, mode="nearest")
        assert float(subpixel_grid_loss(y + 0.1 * blocks, y, s)) == pytest.approx(0.0, abs=1e-12)
        tile = torch.randn(1, 3, s, s, generator=gen)
        tile = tile - tile.mean((2, 3), keepdim=True)  # zero mean over the block: all of it is "grid"
        grid = tile.repeat(2, 1, 32 // s, 48 // s) * 0.01
        assert float(subpixel_grid_loss(y + grid, y, s)) == pytest.approx(float((grid * grid).mean()), rel=1e-5)
        noise = 0.01 * torch.randn(2, 3, 32, 48, generator=gen)
        mse = float((noise * noise).mean())
        # independent errors: the 4 x 4 LR window leaves about (1 - 1/s^2) / 16 of their power
        assert float(subpixel_grid_loss(y + noise, y, s)) < 0.15 * mse
    with pytest.raises(ValueError, match="multiples"):
        subpixel_grid_loss(y[..., :31, :], y[..., :31, :], 2)


def test_jsinet_step_adds_the_weighted_grid_term() -> None:
    from sdr2hdr.models.losses import subpixel_grid_loss
    from sdr2hdr.training.steps import jsinet_step, reconstruction_loss

    torch.manual_seed(0)
    g = torch.nn.Sequential(torch.nn.Conv2d(3, 12, 3, padding=1), torch.nn.PixelShuffle(2))
    x, y = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        p = g(x)
        rec, grid = float(reconstruction_loss(p, y)), float(subpixel_grid_loss(p, y, 2))
    opt = torch.optim.Adam(g.parameters(), lr=1e-3)
    out = jsinet_step(g, opt, x, y, 1e-3, grid_weight=30.0, scale=2)
    assert out["grid"] == pytest.approx(grid, rel=1e-5) and out["loss"] == pytest.approx(rec + 30.0 * grid, rel=1e-5)
    assert "grid" not in jsinet_step(g, opt, x, y, 1e-3)  # the paper's loss by default
