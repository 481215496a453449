"""Evaluation core: metric selection, frame selection, frame files, luminance path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.videos import write_png

from sdr2hdr import color
from sdr2hdr.errors import InputError, Sdr2HdrError
from sdr2hdr.evaluate import (DEFAULT_PPD, FrameSelection, evaluate, iter_folder, parse_metrics,
                              ycbcr_to_luminance)
from sdr2hdr.metrics import hdrvdp, psnr


def _frame(seed: int, h: int = 24, w: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lum = 10 ** (torch.rand(3, h, w, generator=g, dtype=torch.float64) * 3)  # 1..1000 cd/m²
    return color.quantize(color.linear_to_hdr10(lum), 10).float()


def test_parse_metrics() -> None:
    assert parse_metrics("psnr, SSIM,psnr") == ("psnr", "ssim")
    with pytest.raises(Sdr2HdrError, match="unknown metric 'vmaf'"):
        parse_metrics("psnr,vmaf")
    with pytest.raises(Sdr2HdrError):
        parse_metrics("")


def test_frame_selection() -> None:
    s = FrameSelection.parse("2:10", 3)
    assert [i for i in range(20) if i in s] == [2, 5, 8]
    assert s.done(9) and not s.done(8)
    assert [i for i in range(5) if i in FrameSelection.parse("3")] == [0, 1, 2]
    assert [i for i in range(5) if i in FrameSelection.parse(None, 2)] == [0, 2, 4]
    for bad in ("a:b", "5:5"):
        with pytest.raises(Sdr2HdrError):
            FrameSelection.parse(bad)
    with pytest.raises(Sdr2HdrError):
        FrameSelection.parse(None, 0)


def test_luminance_path_is_display_referred() -> None:
    lum = torch.full((3, 4, 4), 100.0, dtype=torch.float64)
    ycc = color.linear_to_hdr10(lum)
    assert torch.allclose(ycbcr_to_luminance(ycc), torch.full((4, 4), 100.0, dtype=torch.float64), rtol=1e-6)
    # Out-of-range code values are clipped in R'G'B' like a display: at most 10000 cd/m².
    assert float(ycbcr_to_luminance(torch.ones(3, 2, 2)).max()) <= 10000.0 + 1e-6


def test_evaluate_means_and_json(tmp_path: Path) -> None:
    refs = [_frame(i) for i in range(3)]
    preds = [(r + 0.01 * torch.randn_like(r)) for r in refs]
    res = evaluate(((i, p, r) for i, (p, r) in enumerate(zip(preds, refs))), ("psnr", "mpsnr", "hdrvdp"))
    assert [f["frame"] for f in res.per_frame] == [0, 1, 2]
    expected = np.mean([psnr(p, r) for p, r in zip(preds, refs)])
    assert res.means["psnr"] == pytest.approx(expected)
    q = hdrvdp(ycbcr_to_luminance(preds[1]), ycbcr_to_luminance(refs[1]), pixels_per_degree=DEFAULT_PPD).Q
    assert res.per_frame[1]["hdrvdp"] == pytest.approx(q)
    assert 0 < res.means["hdrvdp"] < 100
    out = tmp_path / "r.json"
    res.write_json(out)
    data = json.loads(out.read_text())
    assert data["frames"] == 3 and set(data["means"]) == {"psnr", "mpsnr", "hdrvdp"}
    assert data["settings"]["pixels_per_degree"] == pytest.approx(152.149, abs=1e-3)


def test_evaluate_refuses_mismatch() -> None:
    with pytest.raises(InputError, match="sizes differ"):
        evaluate([(0, _frame(0, 24, 32), _frame(1, 24, 30))], ("psnr",))
    with pytest.raises(InputError, match="msssim"):
        evaluate([(0, _frame(0), _frame(1))], ("msssim",))
    with pytest.raises(InputError, match="no frames"):
        evaluate([], ("psnr",))


def test_folder_frames_npy_and_png(tmp_path: Path) -> None:
    f0 = _frame(0)
    np.save(tmp_path / "f000.npy", f0.numpy())
    np.save(tmp_path / "f001.npy", np.moveaxis(np.round(f0.numpy() * 1023).astype(np.uint16), 0, -1))
    # 16-bit PNG of full-range R'G'B' (PQ, BT.2020), as ffmpeg -pix_fmt rgb48 writes.
    rgb = color.ycbcr_to_rgb(f0.double(), "bt2020", full_range=False, bits=10).clamp(0, 1)
    arr = np.round(np.moveaxis(rgb.numpy(), 0, -1) * 65535).astype(np.uint16)
    write_png(tmp_path / "f002.png", arr, pix_fmt="rgb48be")
    (tmp_path / "notes.txt").write_text("ignored")
    frames = list(iter_folder(tmp_path))
    assert [i for i, _ in frames] == [0, 1, 2]
    for _, f in frames:
        assert f.shape == (3, 24, 32) and f.dtype == torch.float32
        assert float((f - f0).abs().max()) < 1.0 / 1023 + 1e-4
    assert [i for i, _ in iter_folder(tmp_path, FrameSelection.parse("1:3"))] == [1, 2]


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no frame files"):
        list(iter_folder(tmp_path))
    (tmp_path / "a.npy").write_bytes(b"garbage")
    with pytest.raises(InputError, match="cannot read frame"):
        list(iter_folder(tmp_path))
