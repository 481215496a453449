"""HDR-VDP 2.2.2 Q against the Octave reference values of ../shared/spec/hdrvdp.md.

The reference images live in ``../shared/reference/hdrvdp`` (beside the repository root, or
under ``$SDR2HDR_SHARED``); the tests that need them skip with a message when that folder is absent.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from tests.helpers import SHARED

from sdr2hdr.metrics import PPD_4K_30IN_1P5M, HDRVDPResult, hdrvdp
from sdr2hdr.metrics import sp3_filters
from sdr2hdr.metrics.hdrvdp import front_end, transducer_tables
from sdr2hdr.metrics.hdrvdp_pyramid import Correlator, pyramid_height, steerable_pyramid
from sdr2hdr.metrics.resize import imresize, resize_matrix

REF_DIR = SHARED / "reference" / "hdrvdp"


@pytest.fixture(scope="module")
def cases() -> dict[str, np.ndarray]:
    if not REF_DIR.is_dir():
        pytest.skip(f"HDR-VDP reference arrays not found at {REF_DIR.resolve()} (shared/ is not checked out; set SDR2HDR_SHARED)")
    return {name: np.load(REF_DIR / f"case_{name}.npy") for name in ("ref", "test01", "test05", "test10")}


# (test, reference, ppd) -> Octave 7.3 Q, spec §0. Slices are 0-based, end-exclusive.
OCTAVE_Q = {
    "test01": (lambda c: (c["test01"], c["ref"], PPD_4K_30IN_1P5M), 83.852127),
    "test05": (lambda c: (c["test05"], c["ref"], PPD_4K_30IN_1P5M), 61.046014),
    "test10": (lambda c: (c["test10"], c["ref"], PPD_4K_30IN_1P5M), 50.970691),
    "ref_vs_ref": (lambda c: (c["ref"], c["ref"], PPD_4K_30IN_1P5M), 100.0),
    "crop_test05": (lambda c: (c["test05"][0:250, 3:236], c["ref"][0:250, 3:236], PPD_4K_30IN_1P5M), 58.412136),
    "test10_ppd30": (lambda c: (c["test10"], c["ref"], 30.0), 61.234855),
    "crop_test01_x0.01_ppd60": (lambda c: (c["test01"][0:200, 0:255] * 0.01, c["ref"][0:200, 0:255] * 0.01, 60.0), 83.667712),
}


@pytest.mark.parametrize("name", list(OCTAVE_Q))
def test_q_matches_octave(cases, name):
    make, expected = OCTAVE_Q[name]
    test, ref, ppd = make(cases)
    result = hdrvdp(test, ref, pixels_per_degree=ppd)
    assert isinstance(result, HDRVDPResult)
    # Octave prints 6 decimals; the float64 re-implementation lands within ~5e-7.
    assert result.Q == pytest.approx(expected, abs=1e-5)


def test_identical_images_give_exactly_100(cases):
    assert hdrvdp(cases["ref"], cases["ref"]).Q == 100.0


# --- intermediate check values (spec §3.5, §3.9, §4.6, §4.7) ------------------------------
def test_transducer_check_values():
    l, j_c, j_r = transducer_tables()
    assert l[0] == pytest.approx(-5.0) and l[-1] == pytest.approx(5.0) and len(l) == 2048
    assert j_c[2047] == pytest.approx(284.8994849235, rel=1e-10)
    assert j_c[1024] == pytest.approx(6.0014874083, rel=1e-10)
    assert j_r[2047] == pytest.approx(98.3937413828, rel=1e-10)


def testfront_end_check_values(cases):
    fe = front_end(torch.from_numpy(cases["ref"]), PPD_4K_30IN_1P5M, {})
    assert float(fe.adapt.mean()) == pytest.approx(78.7335422777, rel=1e-10)
    assert fe.base_pad == pytest.approx(-135.0097241907, rel=1e-9)
    assert [tuple(b.shape) for b in fe.bands] == [
        (1, 256, 256), (4, 256, 256), (4, 128, 128), (4, 64, 64), (4, 32, 32), (1, 16, 16)
    ]


E_TEST05 = (
    (3.2222123351e-9,),
    (3.4831760475e-9, 2.4074139582e-9, 3.5976526536e-9, 2.8441194117e-9),
    (1.8633849958e-7, 1.1800863298e-7, 1.8097145228e-7, 1.1722936120e-7),
    (7.0224252722e-9, 3.0270431272e-8, 3.0544336107e-7, 2.5438283120e-8),
    (3.3932495792e-9, 4.0360405441e-9, 1.6420951950e-9, 5.9865080321e-9),
    (2.4285433857e-9,),
)


def test_band_errors_weights_frequencies_case_test05(cases):
    result = hdrvdp(cases["test05"], cases["ref"])
    assert len(result.band_errors) == len(E_TEST05)
    for got, want in zip(result.band_errors, E_TEST05):
        assert got == pytest.approx(want, rel=1e-7)
    assert result.band_weights == pytest.approx(
        (0.0, 0.2073278279, 0.2832, 0.2326858047, 0.2543185204, 0.1012050207), abs=1e-10
    )
    assert result.band_frequencies == pytest.approx((76.0746, 38.0373, 19.0187, 9.5093, 4.7547, 2.3773), abs=1e-4)


@pytest.mark.skip(
    reason="spec §7 real-image check (ScanLines/Desk.exr, Octave Q 48.979423 at ppd 152.149, "
    "49.329155 at ppd 60) needs Desk.exr, which is not in shared/data"
)
def test_real_image_desk_exr():  # pragma: no cover - documented, not runnable here
    raise AssertionError


# --- building blocks ----------------------------------------------------------------------
def test_sp3_filter_sums_and_symmetries():
    assert sp3_filters.LO0.sum() == pytest.approx(1.0000000149, abs=5e-10)
    assert sp3_filters.LOF.sum() == pytest.approx(1.9999997622, abs=5e-10)
    assert sp3_filters.HI0.sum() == pytest.approx(1.36e-7, abs=1e-9)
    for k in (sp3_filters.LO0, sp3_filters.HI0, sp3_filters.LOF):
        np.testing.assert_array_equal(k, k.T)
        np.testing.assert_array_equal(k, k[::-1])
    b0, b1 = sp3_filters.B0, sp3_filters.B1
    np.testing.assert_array_equal(b0[::-1], b0)
    np.testing.assert_array_equal(b0[:, ::-1], -b0)
    np.testing.assert_array_equal(b1.T, -b1)
    np.testing.assert_array_equal(b1[::-1, ::-1].T, b1)  # B1[n-j][n-i] = B1[i][j]
    np.testing.assert_array_equal(sp3_filters.B2, np.rot90(b0))
    np.testing.assert_array_equal(sp3_filters.B3, b1[:, ::-1])
    for b in sp3_filters.BANDS:
        assert abs(b.sum()) < 1e-15


@pytest.mark.parametrize("shape", [(17, 17), (40, 53)])
def test_fft_correlation_matches_scipy_mirror(shape):
    x = np.random.default_rng(0).standard_normal(shape)
    kernels = (sp3_filters.HI0, sp3_filters.LO0, *sp3_filters.BANDS, sp3_filters.LOF)
    out = Correlator(kernels, torch.device("cpu"))(torch.from_numpy(x)).numpy()
    for got, k in zip(out, kernels):
        np.testing.assert_allclose(got, ndimage.correlate(x, k, mode="mirror"), atol=1e-13)


def testpyramid_height_and_band_sizes():
    assert pyramid_height(256, 256) == 4
    assert pyramid_height(384, 384) == 5
    assert pyramid_height(270, 333) == 4
    assert pyramid_height(16, 100) == 0
    bands = steerable_pyramid(torch.zeros(270, 333, dtype=torch.float64), {})
    assert [tuple(b.shape) for b in bands] == [
        (1, 270, 333), (4, 270, 333), (4, 135, 167), (4, 68, 84), (4, 34, 42), (1, 17, 21)
    ]


def _loop_resize_matrix(n, n_out):
    """Spec §5, one output sample at a time."""

    def cubic(t):
        t = abs(t)
        if t <= 1:
            return 1.5 * t**3 - 2.5 * t**2 + 1
        if t <= 2:
            return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
        return 0.0

    s = n_out / n
    half = int(np.ceil(2 / s)) if s < 1 else 2
    m = np.zeros((n_out, n))
    for k in range(n_out):
        x = (k + 0.5) / s - 0.5
        i = int(np.floor(x))
        t = x - i
        for j in range(1 - half, half + 1):
            r = (i + j) % (2 * n)
            if r >= n:
                r = 2 * n - 1 - r
            m[k, r] += s * cubic(s * (j - t)) if s < 1 else cubic(j - t)
    return m


@pytest.mark.parametrize(("n", "n_out"), [(256, 128), (233, 117), (5, 2), (256, 16), (59, 117), (16, 32), (3, 7)])
def test_resize_matrix_matches_formula(n, n_out):
    np.testing.assert_allclose(resize_matrix(n, n_out).numpy(), _loop_resize_matrix(n, n_out), atol=1e-15)


def test_imresize_identity_separable_and_exact_halving():
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 20, 30)))
    assert imresize(x, (20, 30)) is x
    y = imresize(x, (10, 17))
    np.testing.assert_allclose(y, resize_matrix(20, 10) @ x @ resize_matrix(30, 17).T, atol=1e-13)
    assert imresize(x, (20, 15)).shape == (2, 20, 15)
    ones = torch.ones(64, 64, dtype=torch.float64)
    np.testing.assert_allclose(imresize(ones, (32, 32)), 1.0, atol=1e-14)  # exact halving sums to 1
    np.testing.assert_allclose(imresize(ones, (128, 128)), 1.0, atol=1e-14)


# --- API behaviour -------------------------------------------------------------------------
def test_rgb_bt2020_and_torch_inputs(cases):
    t, r = cases["test05"][:64, :80], cases["ref"][:64, :80]
    q = hdrvdp(t, r).Q
    # R = G = B = Y reduces to Y, since the BT.2020 luminance coefficients sum to 1
    rgb = hdrvdp(np.repeat(t[..., None], 3, -1), np.repeat(r[..., None], 3, -1), color_encoding="rgb-bt2020").Q
    assert rgb == pytest.approx(q, abs=1e-9)
    assert hdrvdp(torch.from_numpy(t), torch.from_numpy(r)).Q == pytest.approx(q, abs=1e-12)
    assert hdrvdp(t.astype(np.float32), r.astype(np.float32)).Q == pytest.approx(q, abs=1e-3)


def test_nan_pixels_count_as_surround_luminance(cases):
    t, r = cases["test05"][:40, :40].copy(), cases["ref"][:40, :40]
    t[3, 5] = np.nan
    filled = np.where(np.isnan(t), 1e-5, t)
    assert hdrvdp(t, r, device="cpu").Q == hdrvdp(filled, r).Q


def test_invalid_inputs():
    a = np.ones((16, 40))
    with pytest.raises(ValueError, match="17"):
        hdrvdp(a, a)
    with pytest.raises(ValueError, match="shape"):
        hdrvdp(np.ones((20, 20)), np.ones((20, 21)))
    with pytest.raises(ValueError, match="color_encoding"):
        hdrvdp(np.ones((20, 20)), np.ones((20, 20)), color_encoding="xyz")
    with pytest.raises(ValueError, match="H x W x 3"):
        hdrvdp(np.ones((20, 20)), np.ones((20, 20)), color_encoding="rgb-bt2020")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_octave(cases):
    t, r = (torch.from_numpy(cases[k]).cuda() for k in ("test05", "ref"))
    assert hdrvdp(t, r).Q == pytest.approx(61.046014, abs=1e-5)
