"""Losses against values worked out by hand (spec "Losses", paper Eq. 12-15)."""

from __future__ import annotations

import pytest
import torch

from sdr2hdr.models.losses import (
    LossWeights,
    discriminator_losses,
    feature_matching_loss,
    generator_loss,
    rahinge_d_loss,
    rahinge_g_loss,
    reconstruction_loss,
)

# D(Y) and D(P) for a batch of 4, shaped B x 1 like Discriminator's logits.
REAL = torch.tensor([[2.0], [0.5], [-1.0], [1.5]])  # mean 0.75
FAKE = torch.tensor([[0.0], [-2.0], [1.0], [0.2]])  # mean -0.2

# D loss:
#   Y term: D(Y) - mean D(P) = [2.2, 0.7, -0.8, 1.7]; 1 - . = [-1.2, 0.3, 1.8, -0.7]
#           relu -> [0, 0.3, 1.8, 0], mean 2.1 / 4 = 0.525
#   P term: D(P) - mean D(Y) = [-0.75, -2.75, 0.25, -0.55]; 1 + . = [0.25, -1.75, 1.25, 0.45]
#           relu -> [0.25, 0, 1.25, 0.45], mean 1.95 / 4 = 0.4875
D_LOSS = 0.525 + 0.4875  # 1.0125
# G loss:
#   P term: 1 - (D(P) - mean D(Y)) = [1.75, 3.75, 0.75, 1.55], mean 7.8 / 4 = 1.95
#   Y term: 1 + (D(Y) - mean D(P)) = [3.2, 1.7, 0.2, 2.7],    mean 7.8 / 4 = 1.95
G_LOSS = 1.95 + 1.95  # 3.9

# Second discriminator (on detail layers):
REAL2 = torch.tensor([[0.5], [0.5], [0.5], [0.5]])  # mean 0.5
FAKE2 = torch.tensor([[1.0], [0.0], [-1.0], [2.0]])  # mean 0.5
# D: 1 - (0.5 - 0.5) = 1 each -> mean 1;  1 + (FAKE2 - 0.5) = [1.5, 0.5, -0.5, 2.5] -> relu mean 4.5/4 = 1.125
D2_LOSS = 1.0 + 1.125  # 2.125
# G: 1 - (FAKE2 - 0.5) = [0.5, 1.5, 2.5, -0.5] -> relu mean 4.5/4 = 1.125;  1 + (0.5 - 0.5) = 1 -> mean 1
G2_LOSS = 1.125 + 1.0  # 2.125

# Feature maps (4 per discriminator)
FM_REAL = [
    torch.tensor([[[[1.0, 2.0]]]]),
    torch.tensor([[[[1.0]]]]),
    torch.full((1, 2, 1, 2), 0.5),
    torch.zeros(1, 1, 3, 3),
]
FM_FAKE = [
    torch.tensor([[[[0.0, 0.0]]]]),  # (1 + 4) / 2 = 2.5
    torch.tensor([[[[3.0]]]]),  # (1 - 3)^2 = 4
    torch.zeros(1, 2, 1, 2),  # 0.25
    torch.zeros(1, 1, 3, 3),  # 0
]
FM_LOSS = 2.5 + 4.0 + 0.25 + 0.0  # 6.75
FM2_REAL = [torch.ones(2, 1, 2, 2), torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1)]
FM2_FAKE = [torch.zeros(2, 1, 2, 2), torch.full((1, 1, 1, 1), 2.0), torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1)]
FM2_LOSS = 1.0 + 4.0  # 5.0

Y = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 2, 2)
P = torch.ones(1, 1, 2, 2)
REC = (0.0 + 1.0 + 4.0 + 9.0) / 4  # 3.5


def test_rahinge_d_by_hand():
    assert rahinge_d_loss(REAL, FAKE).item() == pytest.approx(1.0125, abs=1e-6)
    assert rahinge_d_loss(REAL2, FAKE2).item() == pytest.approx(2.125, abs=1e-6)
    # flat logits give the same
    assert rahinge_d_loss(REAL.flatten(), FAKE.flatten()).item() == pytest.approx(D_LOSS, abs=1e-6)


def test_rahinge_g_by_hand():
    assert rahinge_g_loss(REAL, FAKE).item() == pytest.approx(3.9, abs=1e-6)
    assert rahinge_g_loss(REAL2, FAKE2).item() == pytest.approx(2.125, abs=1e-6)


def test_rahinge_perfect_discriminator():
    # D(Y) = 2, D(P) = -2 for all: D loss relu(1 - 4) + relu(1 - 4) = 0; G loss (1 + 4) + (1 + 4) = 10
    r, f = torch.full((3, 1), 2.0), torch.full((3, 1), -2.0)
    assert rahinge_d_loss(r, f).item() == 0.0
    assert rahinge_g_loss(r, f).item() == pytest.approx(10.0)


def test_feature_matching_by_hand():
    assert feature_matching_loss(FM_REAL, FM_FAKE).item() == pytest.approx(6.75, abs=1e-6)
    assert feature_matching_loss(FM2_REAL, FM2_FAKE).item() == pytest.approx(5.0, abs=1e-6)
    with pytest.raises(ValueError):
        feature_matching_loss(FM_REAL, FM_FAKE[:3])


def test_reconstruction_by_hand():
    assert reconstruction_loss(Y, P).item() == pytest.approx(3.5)


def test_discriminator_totals():
    l_d1, l_d2 = discriminator_losses(REAL, FAKE, REAL2, FAKE2)
    assert l_d1.item() == pytest.approx(1.0125, abs=1e-6)
    assert l_d2.item() == pytest.approx(0.5 * 2.125, abs=1e-6)  # lambda_d * D loss of D2


def test_generator_total_by_hand():
    w = LossWeights()
    assert (w.rec, w.adv, w.fm, w.d) == (1.0, 1.0, 0.5, 0.5)
    total, parts = generator_loss(
        Y, P, REAL, FAKE, REAL2, FAKE2, FM_REAL, FM_FAKE, FM2_REAL, FM2_FAKE, return_parts=True
    )
    # 1 * 3.5 + 1 * (3.9 + 0.5 * 2.125) + 0.5 * (6.75 + 0.5 * 5.0)
    # = 3.5 + 4.9625 + 4.625 = 13.0875
    assert total.item() == pytest.approx(13.0875, abs=1e-5)
    assert parts["rec"].item() == pytest.approx(REC)
    assert parts["adv1"].item() == pytest.approx(G_LOSS)
    assert parts["adv2"].item() == pytest.approx(G2_LOSS)
    assert parts["fm1"].item() == pytest.approx(FM_LOSS)
    assert parts["fm2"].item() == pytest.approx(FM2_LOSS)
    # other weights: rec 2, adv 0.1, fm 0, d 1 -> 7 + 0.1 * (3.9 + 2.125) = 7.6025
    t2 = generator_loss(
        Y, P, REAL, FAKE, REAL2, FAKE2, FM_REAL, FM_FAKE, FM2_REAL, FM2_FAKE, weights=LossWeights(2.0, 0.1, 0.0, 1.0)
    )
    assert t2.item() == pytest.approx(7.6025, abs=1e-5)


def test_generator_loss_gradients_reach_prediction():
    p = P.clone().requires_grad_(True)
    fake = FAKE.clone().requires_grad_(True)
    fm_fake = [f.clone().requires_grad_(True) for f in FM_FAKE]
    total = generator_loss(Y, p, REAL, fake, REAL2, FAKE2, FM_REAL, fm_fake, FM2_REAL, FM2_FAKE)
    total.backward()
    # d rec / dP = 2 (P - Y) / 4
    torch.testing.assert_close(p.grad, 2 * (P - Y) / 4)
    assert fake.grad is not None and fm_fake[1].grad is not None
    # second map of D1: lambda_fm * (3 - 1)^2 -> d/dfake = 0.5 * 2 * (3 - 1) = 2
    assert fm_fake[1].grad.item() == pytest.approx(2.0)
