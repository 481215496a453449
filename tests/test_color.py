"""Colour core against colour-science on random inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

warnings.filterwarnings("ignore", module="colour")
import colour  # noqa: E402

from sdr2hdr import color  # noqa: E402

RNG = np.random.default_rng(1234)


def _t(a: np.ndarray) -> torch.Tensor:
    """H x W x 3 numpy -> 3 x H x W float64 tensor."""
    return torch.from_numpy(np.moveaxis(a, -1, 0).copy())


def _n(t: torch.Tensor) -> np.ndarray:
    return np.moveaxis(t.numpy(), 0, -1)


K = {"bt709": colour.WEIGHTS_YCBCR["ITU-R BT.709"], "bt2020": colour.WEIGHTS_YCBCR["ITU-R BT.2020"],
     "bt601": colour.WEIGHTS_YCBCR["ITU-R BT.601"]}


@pytest.mark.parametrize("matrix", ["bt709", "bt2020", "bt601"])
@pytest.mark.parametrize("full_range", [False, True])
@pytest.mark.parametrize("bits", [8, 10])
def test_ycbcr_roundtrip_matches_colour(matrix: str, full_range: bool, bits: int) -> None:
    rgb = RNG.uniform(0, 1, (7, 5, 3))
    peak = 2**bits - 1
    ref_codes = colour.RGB_to_YCbCr(rgb, K[matrix], out_bits=bits, out_legal=not full_range, out_int=True)
    # colour rounds when out_int; compare with our unrounded codes to rounding error.
    ours = color.rgb_to_ycbcr(_t(rgb), matrix, full_range=full_range, bits=bits)
    np.testing.assert_allclose(np.round(_n(ours) * peak), ref_codes, atol=1)  # rounding ties only
    ref_float = colour.RGB_to_YCbCr(rgb, K[matrix], out_bits=bits, out_legal=not full_range, out_int=False)
    if not full_range:  # colour's non-int full range centres chroma at 0; int codes are H.273
        np.testing.assert_allclose(_n(ours), ref_float, atol=1e-5)
    codes = ref_codes.astype(np.float64)
    back_ref = colour.YCbCr_to_RGB(codes, K[matrix], in_bits=bits, in_legal=not full_range, in_int=True)
    back = color.ycbcr_to_rgb(_t(codes / peak), matrix, full_range=full_range, bits=bits)
    np.testing.assert_allclose(_n(back), back_ref, atol=1e-5)
    np.testing.assert_allclose(_n(color.ycbcr_to_rgb(ours, matrix, full_range=full_range, bits=bits)), rgb, atol=1e-9)


def test_limited_range_anchor_codes() -> None:
    white = torch.ones(3, 1, 1, dtype=torch.float64)
    black = torch.zeros(3, 1, 1, dtype=torch.float64)
    w8 = color.rgb_to_ycbcr(white, "bt709", bits=8) * 255
    b10 = color.rgb_to_ycbcr(black, "bt2020", bits=10) * 1023
    assert w8.flatten().tolist() == pytest.approx([235, 128, 128])
    assert b10.flatten().tolist() == pytest.approx([64, 512, 512])
    f8 = color.rgb_to_ycbcr(white, "bt709", full_range=True, bits=8) * 255
    assert f8.flatten().tolist() == pytest.approx([255, 128, 128])


def test_convert_ycbcr_601_full_to_709_limited() -> None:
    rgb = RNG.uniform(0, 1, (4, 6, 3))
    src = colour.RGB_to_YCbCr(rgb, K["bt601"], out_bits=8, out_legal=False, out_int=True).astype(np.float64)
    ours = color.convert_ycbcr(_t(src / 255), src_matrix="bt601", src_full_range=True, src_bits=8,
                               dst_matrix="bt709", dst_full_range=False, dst_bits=8)
    rgb_q = colour.YCbCr_to_RGB(src, K["bt601"], in_bits=8, in_legal=False, in_int=True)
    ref = colour.RGB_to_YCbCr(rgb_q, K["bt709"], out_bits=8, out_legal=True, out_int=False)
    np.testing.assert_allclose(_n(ours), ref, atol=1e-5)


def test_pq_matches_colour() -> None:
    lum = 10 ** RNG.uniform(-4, 4, (6, 6, 3))
    ours = color.pq_inverse_eotf(_t(lum))
    ref = colour.models.eotf_inverse_ST2084(lum)
    np.testing.assert_allclose(_n(ours), ref, atol=1e-6)
    sig = RNG.uniform(0, 1, (6, 6, 3))
    np.testing.assert_allclose(_n(color.pq_eotf(_t(sig))), colour.models.eotf_ST2084(sig), rtol=1e-5, atol=1e-9)
    assert float(color.pq_eotf(torch.tensor([[[1.0]]], dtype=torch.float64)).squeeze()) == pytest.approx(10000)


@pytest.mark.parametrize("black", [0.0, 0.1])
def test_bt1886_matches_colour(black: float) -> None:
    v = RNG.uniform(0, 1, (5, 5, 3))
    ours = color.bt1886_eotf(_t(v), white=100.0, black=black)
    np.testing.assert_allclose(_n(ours), colour.models.eotf_BT1886(v, L_B=black, L_W=100.0), rtol=1e-5, atol=1e-9)
    lum = RNG.uniform(black, 100, (5, 5, 3))
    np.testing.assert_allclose(_n(color.bt1886_inverse_eotf(_t(lum), white=100.0, black=black)),
                               colour.models.eotf_inverse_BT1886(lum, L_B=black, L_W=100.0), atol=1e-6)


def test_hlg_oetf_matches_colour() -> None:
    e = RNG.uniform(0, 1, (5, 5, 3))
    ours = color.hlg_oetf(_t(e))
    np.testing.assert_allclose(_n(ours), colour.models.oetf_BT2100_HLG(e), atol=1e-6)
    np.testing.assert_allclose(_n(color.hlg_inverse_oetf(ours)), e, atol=1e-9)
    ep = RNG.uniform(0, 1, (5, 5, 3))
    np.testing.assert_allclose(_n(color.hlg_inverse_oetf(_t(ep))), colour.models.oetf_inverse_BT2100_HLG(ep), atol=1e-6)


@pytest.mark.parametrize("peak,black", [(1000.0, 0.0), (1000.0, 0.01), (400.0, 0.0), (2000.0, 0.0)])
def test_hlg_eotf_matches_colour(peak: float, black: float) -> None:
    ep = RNG.uniform(0, 1, (5, 5, 3))
    ours = color.hlg_eotf(_t(ep), peak=peak, black=black)
    ref = colour.models.eotf_BT2100_HLG(ep, L_B=black, L_W=peak)
    np.testing.assert_allclose(_n(ours), ref, rtol=1e-5, atol=1e-6)
    if black == 0.0:
        np.testing.assert_allclose(_n(color.hlg_inverse_eotf(ours, peak=peak)), ep, atol=1e-6)
        np.testing.assert_allclose(_n(color.hlg_inverse_eotf(ours, peak=peak)),
                                   colour.models.eotf_inverse_BT2100_HLG(ref, L_W=peak), atol=1e-5)


def test_primaries_match_colour() -> None:
    cs = colour.RGB_COLOURSPACES
    ref = colour.matrix_RGB_to_RGB(cs["ITU-R BT.709"], cs["ITU-R BT.2020"], chromatic_adaptation_transform=None)
    np.testing.assert_allclose(color.primaries_matrix("bt709", "bt2020"), ref, atol=1e-9)
    rgb = RNG.uniform(0, 1000, (4, 4, 3))
    ours = color.convert_primaries(_t(rgb), "bt709", "bt2020")
    np.testing.assert_allclose(_n(ours), rgb @ ref.T, rtol=1e-9)
    np.testing.assert_allclose(_n(color.convert_primaries(ours, "bt2020", "bt709")), rgb, rtol=1e-9)
    np.testing.assert_allclose(color.primaries_matrix("bt709", "bt2020")[0], [0.6274, 0.3293, 0.0433], atol=1e-4)


def test_luminance_weights() -> None:
    y = color.luminance(torch.eye(3, dtype=torch.float64)[:, :, None], "bt2020")
    assert y.flatten().tolist() == pytest.approx([0.2627, 0.6780, 0.0593], abs=1e-4)
    y709 = color.luminance(torch.eye(3, dtype=torch.float64)[:, :, None], "bt709")
    assert y709.flatten().tolist() == pytest.approx([0.2126, 0.7152, 0.0722], abs=1e-4)


def test_hdr10_roundtrip_and_float32() -> None:
    lum = torch.from_numpy(RNG.uniform(0.01, 4000, (3, 8, 8))).float()
    ycc = color.linear_to_hdr10(lum)
    assert ycc.dtype == torch.float32
    back = color.hdr10_to_linear(ycc)
    torch.testing.assert_close(back, lum, rtol=1e-3, atol=1e-3)
    ref = colour.models.eotf_ST2084(colour.YCbCr_to_RGB(np.moveaxis(ycc.double().numpy(), 0, -1), K["bt2020"],
                                                  in_bits=10, in_legal=True, in_int=False))
    np.testing.assert_allclose(np.moveaxis(back.double().numpy(), 0, -1), ref, rtol=1e-3)


def test_sdr_roundtrip() -> None:
    rgb = torch.from_numpy(RNG.uniform(0, 100, (3, 4, 4)))
    ycc = color.linear_to_sdr(rgb)
    torch.testing.assert_close(color.sdr_to_linear(ycc), rgb)


def test_quantize() -> None:
    x = torch.tensor([[[-0.1, 0.5, 100.4 / 1023, 2.0]]]).expand(3, 1, 4)
    q = color.quantize(x, 10) * 1023
    assert q[0, 0].tolist() == pytest.approx([0, 512, 100, 1023])


def test_srgb_eotf_matches_colour() -> None:
    v = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(_n(color.srgb_eotf(_t(v))), colour.models.eotf_sRGB(v), atol=1e-7)
