"""benchmarks/blend_sweep.py: the blend arithmetic and the table, on a tiny generated test set."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from sdr2hdr.data.mat import write_authors_mat
from sdr2hdr.zoo import load as load_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import blend_sweep  # noqa: E402


def _testset(folder: Path) -> None:
    """Two 20x24 SDR frames (x2) whose HDR truth is inverse-reinhard-x2 of them."""
    g = np.random.default_rng(1)
    sdr = np.empty((2, 20, 24, 3), np.uint8)
    sdr[..., 0] = g.integers(16, 236, (2, 20, 24))
    sdr[..., 1:] = g.integers(100, 157, (2, 20, 24, 2))
    with torch.no_grad():
        hdr = load_model("inverse-reinhard-x2").module(torch.from_numpy(sdr).permute(0, 3, 1, 2).float() / 255)
    write_authors_mat(folder / "testset_real_SDR_x2.mat", "SDR_YUV", sdr)
    write_authors_mat(folder / "testset_real_HDR.mat", "HDR_YUV", torch.round(hdr * 1023).permute(0, 2, 3, 1).numpy().astype(np.uint16))


def test_blend_is_linear_in_code_values() -> None:
    b, m = torch.full((3, 2, 2), 0.2), torch.full((3, 2, 2), 0.6)
    assert torch.allclose(blend_sweep.blend(b, m, 0.25), torch.full((3, 2, 2), 0.3))
    assert float(blend_sweep.blend(b, m, 3.0).max()) == 1.0  # clipped to the code range


def test_sweep_ends_are_the_baseline_and_the_model(tmp_path: Path) -> None:
    _testset(tmp_path)
    res = blend_sweep.sweep("inverse-reinhard-x2", tmp_path, 2, "real", [0.0, 0.5, 1.0], ("psnr",))
    p = {a: [f["psnr"] for f in fr] for a, fr in res.items()}
    assert all(v > 60 for v in p[1.0])  # the model is the truth up to 10-bit rounding
    assert all(v < 45 for v in p[0.0])  # bt2408 is not
    for half, zero in zip(p[0.5], p[0.0]):  # half the error everywhere: a quarter of the MSE, +6.02 dB
        assert abs(half - zero - 20 * math.log10(2)) < 0.15
    table = blend_sweep.rows(res, ("psnr",))
    assert table[2].startswith("| 0 |") and table[-1].startswith("| 1 |") and "+" in table[-1]


def test_cli_writes_json_and_reports_bad_test_sets_in_one_line(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    _testset(tmp_path)
    out = tmp_path / "s.json"
    assert blend_sweep.main(["--testset", str(tmp_path), "--model", "inverse-reinhard-x2", "--scale", "2",
                             "--alphas", "0,1", "--metrics", "psnr", "--json", str(out)]) == 0
    assert set(json.loads(out.read_text())) == {"0.0", "1.0"}
    assert sorted(f.name for f in tmp_path.iterdir()) == ["s.json", "testset_real_HDR.mat", "testset_real_SDR_x2.mat"]  # no partial left
    assert blend_sweep.main(["--testset", str(tmp_path), "--model", "bt2408-x2", "--scale", "2", "--set", "synthetic",
                             "--metrics", "psnr"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("blend_sweep: ") and "\n" not in err
    hdr = np.zeros((1, 40, 48, 3), np.uint16)  # one reference frame for two inputs
    write_authors_mat(tmp_path / "testset_real_HDR.mat", "HDR_YUV", hdr)
    assert blend_sweep.main(["--testset", str(tmp_path), "--model", "bt2408-x2", "--scale", "2", "--metrics", "psnr"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("blend_sweep: ") and "frame counts differ" in err and "\n" not in err
