"""The held-out evaluation set: only held-out scenes, authors' layout, deterministic, readable by eval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import OpenEXR
import pytest

from sdr2hdr.data.mat import MatPatches
from sdr2hdr.data.split import split_scenes
from sdr2hdr.data.testset import write_testset
from sdr2hdr.errors import InputError

NAMES = [f"scene{i}" for i in range(6)]


def _write_stills(folder: Path) -> None:
    g = np.random.default_rng(0)
    folder.mkdir()
    for n in NAMES:
        img = (g.lognormal(0, 1.5, (64, 96, 3)) * np.linspace(0.2, 3, 96)[None, :, None]).astype(np.float16)
        OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                     {"RGB": img}).write(str(folder / f"{n}.exr"))


def test_testset_layout_and_determinism(tmp_path: Path) -> None:
    _write_stills(tmp_path / "stills")
    _, held = split_scenes(NAMES)
    m1 = write_testset([tmp_path / "stills"], tmp_path / "a", height=32, width=48, seed=1)
    write_testset([tmp_path / "stills"], tmp_path / "b", height=32, width=48, seed=1)
    assert m1["scenes"] == sorted(held)
    frames = m1["frames"]
    assert len(frames) == 4 * len(held)
    assert {f["operator"] for f in frames} == {"eetf", "reinhard", "hable", "clip"}
    hdr = MatPatches(tmp_path / "a/testset_HDR.mat", "HDR_YUV")
    x2 = MatPatches(tmp_path / "a/testset_SDR_x2.mat", "SDR_YUV")
    x4 = MatPatches(tmp_path / "a/testset_SDR_x4.mat", "SDR_YUV")
    assert len(hdr) == len(x2) == len(x4) == len(frames)
    h0, s2, s4 = hdr[0], x2[0], x4[0]
    assert h0.shape == (3, 32, 48) and s2.shape == (3, 16, 24) and s4.shape == (3, 8, 12)
    assert 64 <= h0[0].min() and h0[0].max() <= 940 and np.all(h0 == np.round(h0))
    assert 16 <= s2[0].min() and s2[0].max() <= 235
    for name in ("testset_HDR.mat", "testset_SDR_x2.mat", "testset_SDR_x4.mat"):
        a = MatPatches(tmp_path / "a" / name, "HDR_YUV" if "HDR" in name else "SDR_YUV")
        b = MatPatches(tmp_path / "b" / name, "HDR_YUV" if "HDR" in name else "SDR_YUV")
        assert all(np.array_equal(a[i], b[i]) for i in range(len(a)))
    assert json.loads((tmp_path / "a/testset.json").read_text())["size"] == [32, 48]


def test_testset_refuses_bad_size(tmp_path: Path) -> None:
    _write_stills(tmp_path / "stills")
    with pytest.raises(InputError, match="multiple of 8"):
        write_testset([tmp_path / "stills"], tmp_path / "a", height=30, width=48)
    with pytest.raises(InputError, match="smaller than"):
        write_testset([tmp_path / "stills"], tmp_path / "a", height=64, width=128)
