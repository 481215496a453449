"""Tests for the Y'CbCr metrics: psnr, ssim, msssim, mpsnr.

scikit-image and scipy are used here only as independent oracles (test extra); the
library itself computes everything in torch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from sdr2hdr.metrics import METRICS, MPSNRResult, mpsnr, mpsnr_details, msssim, psnr, ssim
from sdr2hdr.metrics.ssim import MSSSIM_WEIGHTS


def _pair(shape=(3, 64, 80), noise=0.02, seed=0):
    """Structured Y'CbCr-like planes (code / 1023) and a noisy, unclipped prediction."""
    rng = np.random.default_rng(seed)
    c, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.3 * np.sin(xx / 7.0)[None] * np.cos(yy / 5.0)[None] * np.linspace(0.3, 1.0, c)[:, None, None]
    ref = np.round(np.clip(base + 0.05 * rng.standard_normal(shape), 0, 1) * 1023) / 1023
    pred = ref + noise * rng.standard_normal(shape)
    return pred, ref


# --- PSNR ---------------------------------------------------------------------------------
def test_psnr_hand_value():
    ref = np.full((3, 4, 5), 0.5)
    assert psnr(ref + 0.1, ref) == pytest.approx(20.0, abs=1e-12)


def test_psnr_mse_over_all_planes_and_not_clipped():
    ref = np.zeros((3, 2, 2))
    pred = ref.copy()
    pred[2, 0, 0] = -0.6  # out of range, not clipped: error 0.6^2 over 12 elements
    assert psnr(pred, ref) == pytest.approx(10 * math.log10(12 / 0.36), abs=1e-12)


def test_psnr_identical_is_inf():
    _, ref = _pair()
    assert psnr(ref, ref) == math.inf


def test_psnr_batch_is_mean_of_images_and_torch_matches_numpy():
    p, r = _pair(seed=1)
    q, s = _pair(noise=0.05, seed=2)
    batch = psnr(np.stack([p, q]), np.stack([r, s]))
    assert batch == pytest.approx((psnr(p, r) + psnr(q, s)) / 2, abs=1e-12)
    assert psnr(torch.from_numpy(p).float(), torch.from_numpy(r).float()) == pytest.approx(psnr(p, r), abs=1e-4)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        psnr(np.zeros((3, 4, 4)), np.zeros((3, 4, 5)))
    with pytest.raises(ValueError):
        ssim(np.zeros((4, 4)), np.zeros((4, 4)))


# --- SSIM ---------------------------------------------------------------------------------
def _skimage_ssim(p, r):
    from skimage.metrics import structural_similarity

    return float(
        np.mean(
            [
                structural_similarity(
                    p[c], r[c], gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1
                )
                for c in range(p.shape[0])
            ]
        )
    )


@pytest.mark.parametrize(("shape", "noise"), [((3, 64, 80), 0.02), ((3, 37, 51), 0.1), ((3, 11, 11), 0.05)])
def test_ssim_matches_skimage(shape, noise):
    p, r = _pair(shape, noise)
    assert ssim(p, r) == pytest.approx(_skimage_ssim(p, r), abs=1e-4)
    assert ssim(p, r) == pytest.approx(_skimage_ssim(p, r), abs=1e-12)  # same arithmetic in float64


def test_ssim_identical_is_one_and_batch_mean():
    p, r = _pair()
    assert ssim(r, r) == pytest.approx(1.0, abs=1e-12)
    q, s = _pair(noise=0.1, seed=3)
    assert ssim(np.stack([p, q]), np.stack([r, s])) == pytest.approx((ssim(p, r) + ssim(q, s)) / 2, abs=1e-12)


# --- MS-SSIM ------------------------------------------------------------------------------
def _reference_msssim(p, r):
    """Straightforward scipy version of the documented convention."""
    c1, c2 = 0.01**2, 0.03**2

    def filt(x):
        return ndimage.gaussian_filter(x, 1.5, truncate=3.5, mode="reflect")[5:-5, 5:-5]

    def pool(x):
        h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
        x = x[:h, :w]
        return (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4

    scores = []
    for x, y in zip(p, r):
        score = 1.0
        for j, wj in enumerate(MSSSIM_WEIGHTS):
            mx, my = filt(x), filt(y)
            vx, vy, cxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
            cs = (2 * cxy + c2) / (vx + vy + c2)
            lum = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
            if j < 4:
                score *= max(cs.mean(), 0.0) ** wj
                x, y = pool(x), pool(y)
            else:
                score *= max((lum * cs).mean(), 0.0) ** wj
        scores.append(score)
    return float(np.mean(scores))


@pytest.mark.parametrize(("shape", "noise"), [((3, 176, 180), 0.02), ((3, 203, 257), 0.08)])
def test_msssim_matches_scipy_reference(shape, noise):
    p, r = _pair(shape, noise, seed=4)
    assert msssim(p, r) == pytest.approx(_reference_msssim(p, r), abs=1e-10)


def test_msssim_properties():
    p, r = _pair((3, 180, 200), 0.05, seed=5)
    assert msssim(r, r) == pytest.approx(1.0, abs=1e-12)
    assert 0.0 < msssim(p, r) < 1.0
    assert msssim(p, r) > msssim(r + 4.0 * (p - r), r)  # more noise, lower score
    assert msssim(1.0 - r, r) == 0.0  # anti-correlated: negative cs clamped to 0
    with pytest.raises(ValueError):
        msssim(p[:, :170], r[:, :170])


# --- mPSNR --------------------------------------------------------------------------------
def test_mpsnr_hand_value_with_matlab_rounding():
    ref = np.full((3, 2, 2), 400 / 1023)
    pred = np.full((3, 2, 2), 401 / 1023)
    # i=-3: v=50/1023, i=-2: 100/1023 (dropped); i=-1,0,1 kept; i>=2 saturate (v=1, dropped).
    # i=-1: round(200.5) = 201 (half away from zero; half-even would give 200) -> MSE 1
    # i=0: 401 vs 400 -> 1; i=1: 802 vs 800 -> 4.  Mean MSE = 2.
    det = mpsnr_details(pred, ref)
    assert det.kept == (-1, 0, 1)
    assert det.mse == {-1: 1.0, 0: 1.0, 1: 4.0}
    assert det.valid
    assert det.value == pytest.approx(20 * math.log10(1023 / math.sqrt(2.0)), abs=1e-12)
    assert mpsnr(pred, ref) == det.value


def test_mpsnr_prediction_clipped():
    ref = np.full((3, 2, 2), 400 / 1023)
    ref[0] = 1.0
    over = ref.copy()
    over[0] = 1.7
    assert mpsnr(over, ref) == math.inf  # 1.7 clipped to 1.0 matches exactly
    under = ref.copy()
    under[1, 0, 0] = -0.5
    assert mpsnr(under, ref) == mpsnr(np.where(under < 0, 0.0, under), ref)


def test_mpsnr_no_exposure_kept_is_flagged():
    ref = np.zeros((3, 4, 4))
    det = mpsnr_details(ref + 0.01, ref)
    assert det == MPSNRResult(-1.0, (), {})
    assert not det.valid
    assert mpsnr(ref + 0.01, ref) == -1.0
    p, r = _pair(seed=6)
    # one invalid image makes the batch value the sentinel rather than an average with -1
    assert mpsnr(np.stack([p, np.zeros_like(r) + 0.01]), np.stack([r, np.zeros_like(r)])) == -1.0
    with pytest.raises(ValueError):
        mpsnr_details(np.stack([p, p]), np.stack([r, r]))


def _numpy_mpsnr(pred, ref):
    pred = np.clip(pred, 0, 1)
    mses = []
    for i in range(-3, 4):
        qr = np.clip(np.floor(1023 * 2.0**i * ref + 0.5), 0, 1023)  # values >= 0: floor(y+0.5)
        qp = np.clip(np.floor(1023 * 2.0**i * pred + 0.5), 0, 1023)
        if 0.1 < qr.mean() / 1023 < 0.9:
            mses.append(np.mean((qr - qp) ** 2))
    return 20 * math.log10(1023 / math.sqrt(np.mean(mses)))


def test_mpsnr_matches_numpy_and_float32_keeps_exact_ties():
    p, r = _pair((3, 48, 64), 0.03, seed=7)
    assert mpsnr(p, r) == pytest.approx(_numpy_mpsnr(p, r), abs=1e-12)
    # k/1023 in float32: scaling in float32 gives exactly k * 2^i (ties where MATLAB has them);
    # the float64 oracle on the float64 codes must agree bit for bit.
    codes = np.random.default_rng(8).integers(0, 1024, (3, 32, 32))
    ref32 = (codes.astype(np.float32) / np.float32(1023)).astype(np.float32)
    pred32 = ((codes + 1).clip(0, 1023).astype(np.float32) / np.float32(1023)).astype(np.float32)
    expected = _numpy_mpsnr((codes + 1).clip(0, 1023) / 1023, codes / 1023)
    assert mpsnr(pred32, ref32) == expected
    assert mpsnr(torch.from_numpy(pred32), torch.from_numpy(ref32)) == expected


def test_mpsnr_identical_is_inf():
    _, r = _pair()
    assert mpsnr(r, r) == math.inf


# --- registry / devices -------------------------------------------------------------------
def test_metrics_registry():
    assert set(METRICS) == {"psnr", "ssim", "msssim", "mpsnr"}
    p, r = _pair((3, 176, 176), 0.02)
    for name, fn in METRICS.items():
        assert isinstance(fn(p, r), float), name


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_metrics_on_cuda_match_cpu():
    p, r = _pair((3, 176, 176), 0.02)
    pc, rc = torch.from_numpy(p).cuda(), torch.from_numpy(r).cuda()
    for name, fn in METRICS.items():
        assert fn(pc, rc) == pytest.approx(fn(p, r), abs=1e-9), name
