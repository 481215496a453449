"""sdr2hdr.color.chroma: chroma siting, bilinear up-sampling and "left"-sited down-sampling."""

from __future__ import annotations

import torch

from sdr2hdr.color.chroma import downsample_chroma, upsample_chroma


def test_upsample_420_left_siting_known_values() -> None:
    c = torch.tensor([[0.0, 4.0], [8.0, 12.0]], dtype=torch.float64)  # chroma 2x2 for luma 4x4
    up = upsample_chroma(c, 4, 4, 2, 2, "left")
    # columns: 0 -> c0, 1 -> (c0+c1)/2, 2 -> c1, 3 -> c1 (edge); rows: sample j sits at luma row 2j+0.5
    row0 = torch.tensor([0.0, 2.0, 4.0, 4.0])
    row1 = torch.tensor([8.0, 10.0, 12.0, 12.0])
    expect = torch.stack([row0, 0.75 * row0 + 0.25 * row1, 0.25 * row0 + 0.75 * row1, row1]).double()
    torch.testing.assert_close(up, expect)


def test_upsample_center_422_and_odd_sizes() -> None:
    c = torch.tensor([[0.0, 4.0, 8.0]], dtype=torch.float64)  # 4:2:2, luma width 5 -> 3 chroma
    up = upsample_chroma(c, 1, 5, 2, 1, "left")  # co-sited: even columns exact, odd ones midpoints
    torch.testing.assert_close(up, torch.tensor([[0.0, 2.0, 4.0, 6.0, 8.0]], dtype=torch.float64))
    upc = upsample_chroma(c, 1, 5, 2, 1, "center")  # sample i at luma 2i + 0.5
    torch.testing.assert_close(upc, torch.tensor([[0.0, 1.0, 3.0, 5.0, 7.0]], dtype=torch.float64))


def test_downsample_left_sited_and_linear_ramp_round_trip() -> None:
    x = torch.arange(8, dtype=torch.float64).view(1, 1, 1, 8).expand(1, 1, 4, 8) * 10
    d = downsample_chroma(x)  # [1,2,1]/4 centred on even columns: a ramp keeps its value there
    torch.testing.assert_close(d[0, 0, 0], torch.tensor([2.5, 20.0, 40.0, 60.0], dtype=torch.float64))
    up = upsample_chroma(d, 4, 8, 2, 2, "left")
    torch.testing.assert_close(up[..., 2:7], x[..., 2:7])  # interior of a ramp survives the round trip
    v = torch.arange(4, dtype=torch.float64).view(1, 1, 4, 1).expand(1, 1, 4, 2)
    torch.testing.assert_close(downsample_chroma(v)[0, 0, :, 0], torch.tensor([0.5, 2.5], dtype=torch.float64))
