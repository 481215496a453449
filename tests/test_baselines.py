"""Weight-free baselines: BT.2408 direct mapping and the exact inverse of the Reinhard degradation."""

from __future__ import annotations

import torch

from sdr2hdr import color, zoo
from sdr2hdr.data.degrade import sdr_from_display
from sdr2hdr.models.baselines import BT2408DirectMapping, InverseReinhard


def _lum_of(hdr10: torch.Tensor) -> torch.Tensor:
    return color.luminance(color.hdr10_to_linear(hdr10.double()), "bt2020")


def test_bt2408_places_sdr_white_at_203_nits() -> None:
    x = torch.empty(1, 3, 5, 6)
    x[:, 0], x[:, 1:] = 235 / 255, 128 / 255  # SDR white, limited range
    y = BT2408DirectMapping(2)(x)
    assert y.shape == (1, 3, 10, 12)
    torch.testing.assert_close(_lum_of(y[0]), torch.full((10, 12), 203.0, dtype=torch.float64), rtol=1e-4, atol=0)
    x[:, 0] = 16 / 255  # black stays black
    assert float(_lum_of(BT2408DirectMapping(4)(x)[0]).max()) < 1e-3


def test_bt2408_keeps_bt709_colours() -> None:
    # SDR red (BT.709 primary at 100 %) becomes 203 cd/m² times the BT.709 red in BT.2020 primaries.
    red = color.rgb_to_ycbcr(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1), "bt709", bits=8)
    y = BT2408DirectMapping(1)(red.expand(1, 3, 4, 4).contiguous())
    rgb = color.hdr10_to_linear(y[0].double())[:, 0, 0]
    expected = torch.tensor(color.primaries_matrix("bt709", "bt2020")[:, 0]) * 203.0
    torch.testing.assert_close(rgb, expected, rtol=2e-3, atol=2e-3)


def test_inverse_reinhard_inverts_the_degradation_operator() -> None:
    g = torch.Generator().manual_seed(3)
    base = 10 ** (torch.rand(1, 8, 8, generator=g) * 3 - 0.5)  # 0.3 .. 300 cd/m²
    tint = 1 + 0.15 * (torch.rand(3, 8, 8, generator=g) - 0.5)
    display = (base * tint).double()
    sdr = sdr_from_display(display, "reinhard", peak=1000.0, gain=1.0)
    hdr = InverseReinhard(1, peak=1000.0)(sdr.unsqueeze(0).float())[0]
    back = color.convert_primaries(color.hdr10_to_linear(hdr.double()), "bt2020", "bt709")
    torch.testing.assert_close(back, display, rtol=2e-3, atol=1e-3)


def test_baselines_are_registered_without_weights() -> None:
    for s in (2, 4):
        for name in (f"bt2408-x{s}", f"inverse-reinhard-x{s}"):
            e = zoo.REGISTRY[name]
            assert e.variant == "baseline" and e.file is None and e.parameters == 0
            m = zoo.load_model(name, scale=s)
            assert m(torch.full((1, 3, 6, 7), 0.5)).shape == (1, 3, 6 * s, 7 * s)
