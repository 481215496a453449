"""``sdr2hdr eval`` end to end: folders, .mat test sets, model runs, real HDR10 clips, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import REPO

from sdr2hdr import color
from sdr2hdr.data.mat import write_authors_mat
from sdr2hdr.evaluate import iter_hdr_source
from sdr2hdr.metrics import psnr
from sdr2hdr.zoo import load_model


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sdr2hdr", "eval", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def _assert_one_line_error(r: subprocess.CompletedProcess[str], match: str) -> None:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], r.stderr


def _frames(n: int, h: int = 40, w: int = 48, seed: int = 0) -> list[np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        lum = 10 ** (torch.rand(3, h, w, generator=g, dtype=torch.float64) * 3)
        out.append(color.quantize(color.linear_to_hdr10(lum), 10).float().numpy())
    return out


def test_folders_json_and_selection(tmp_path: Path) -> None:
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    ref.mkdir(), pred.mkdir()
    refs = _frames(4)
    for i, r in enumerate(refs):
        np.save(ref / f"{i:03d}.npy", r)
        np.save(pred / f"{i:03d}.npy", np.clip(r + 2 / 1023, 0, 1))
    out = tmp_path / "res.json"
    r = _run("--prediction", str(pred), "--reference", str(ref), "--metrics", "psnr,mpsnr,hdrvdp",
             "--frames", "1:4", "--every", "2", "--json", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "psnr" in r.stdout and "hdrvdp" in r.stdout
    data = json.loads(out.read_text())
    assert [f["frame"] for f in data["per_frame"]] == [1, 3]
    expected = np.mean([psnr(np.clip(refs[i] + 2 / 1023, 0, 1), refs[i]) for i in (1, 3)])
    assert data["means"]["psnr"] == pytest.approx(expected, abs=1e-6)
    assert data["settings"]["metrics"] == ["psnr", "mpsnr", "hdrvdp"]
    assert 0 < data["means"]["hdrvdp"] < 100


def test_bad_inputs_one_line(tmp_path: Path) -> None:
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    ref.mkdir(), pred.mkdir()
    for i, r in enumerate(_frames(3)):
        np.save(ref / f"{i}.npy", r)
    for i, r in enumerate(_frames(2, 40, 46)):
        np.save(pred / f"{i}.npy", r)
    _assert_one_line_error(_run("--prediction", str(pred), "--reference", str(ref), "--metrics", "psnr"),
                           "sizes differ")
    for i, r in enumerate(_frames(2)):
        np.save(pred / f"{i}.npy", r)
    _assert_one_line_error(_run("--prediction", str(pred), "--reference", str(ref), "--metrics", "psnr"),
                           "frame counts differ")
    _assert_one_line_error(_run("--prediction", str(pred), "--reference", str(ref), "--metrics", "psnr,vmaf"),
                           "unknown metric 'vmaf'")
    _assert_one_line_error(_run("--prediction", str(tmp_path / "nope.mkv"), "--reference", str(ref)), "not found")
    junk = tmp_path / "junk.mkv"
    junk.write_text("not a video at all\n" * 20)
    _assert_one_line_error(_run("--prediction", str(junk), "--reference", str(ref)), "junk.mkv")
    _assert_one_line_error(_run("--reference", str(ref)), "either --prediction")


def test_authors_mat_test_set_with_model(tmp_path: Path) -> None:
    """testset_SDR_x2.mat + testset_HDR.mat in the authors' layout, with a registry model run in between."""
    g = np.random.default_rng(0)
    sdr = np.empty((2, 20, 24, 3), np.uint8)
    sdr[..., 0] = g.integers(16, 236, (2, 20, 24))
    sdr[..., 1:] = g.integers(100, 157, (2, 20, 24, 2))
    model = load_model("bt2408-x2")
    with torch.no_grad():
        hdr = model(torch.from_numpy(sdr).permute(0, 3, 1, 2).float() / 255)
    hdr_codes = torch.round(hdr * 1023).permute(0, 2, 3, 1).numpy().astype(np.uint16)
    write_authors_mat(tmp_path / "testset_SDR_x2.mat", "SDR_YUV", sdr)
    write_authors_mat(tmp_path / "testset_HDR.mat", "HDR_YUV", hdr_codes)
    out = tmp_path / "r.json"
    r = _run("--model", "bt2408-x2", "--input", str(tmp_path / "testset_SDR_x2.mat"), "--reference",
             str(tmp_path / "testset_HDR.mat"), "--metrics", "psnr,mpsnr", "--json", str(out), "--device", "cpu", "-q")
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["frames"] == 2
    assert data["means"]["psnr"] > 60  # only the 10-bit rounding of the reference differs
    _assert_one_line_error(_run("--model", "bt2408-x4", "--input", str(tmp_path / "testset_SDR_x2.mat"),
                                "--reference", str(tmp_path / "testset_HDR.mat"), "--metrics", "psnr"),
                           "sizes differ")


def test_real_hdr10_clip_reference(shared: Path, tmp_path: Path) -> None:
    """A real HDR10 camera clip (container says SDR, bitstream says PQ) against itself; HLG is refused."""
    clip = shared / "data/video/androidx_media__hdr10-video-with-sdr-container.mp4"
    if not clip.exists():
        pytest.skip(f"{clip} not present")
    frames = list(iter_hdr_source(clip))
    assert len(frames) == 28 and frames[0][1].shape == (3, 1080, 1920)
    out = tmp_path / "self.json"
    r = _run("--prediction", str(clip), "--reference", str(clip), "--metrics", "psnr,ssim", "--frames", "2",
             "--json", str(out), "-q")
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["means"]["psnr"] == "inf" and data["means"]["ssim"] == pytest.approx(1.0)
    hlg = shared / "data/video/androidx_media__hlg10-color-test.mp4"
    _assert_one_line_error(_run("--prediction", str(clip), "--reference", str(hlg), "--metrics", "psnr"),
                           "not HDR10")


def test_model_run_against_converted_video(tmp_path: Path) -> None:
    """eval --model on an SDR video equals the model's own HDR10 file up to x265 + 4:2:0 loss."""
    from tests.helpers import run_convert as convert
    from sdr2hdr.video.sample import write_sample

    sdr = tmp_path / "s.mp4"
    write_sample(sdr, seconds=0.25, fps=12, width=64, height=48, audio=False)
    ref = tmp_path / "ref.mkv"
    convert(sdr, ref, model="bt2408-x2", scale=2, device="cpu", crf=4, preset="ultrafast")
    out = tmp_path / "m.json"
    r = _run("--model", "bt2408-x2", "--input", str(sdr), "--reference", str(ref), "--metrics", "psnr",
             "--json", str(out), "--device", "cpu", "-q")
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["frames"] == 3
    assert 38 < data["means"]["psnr"] < 80
    _assert_one_line_error(_run("--prediction", str(sdr), "--reference", str(ref), "--metrics", "psnr"),
                           "not HDR10")
