"""``sdr2hdr preview``: one frame through the model as a three-panel PNG.

The PNG is read back with PyAV and checked against an independent run: the
frame picked by sequential decoding (convert's reader), the model run
directly, luminance from :mod:`sdr2hdr.color`, the documented bands, layout
and tone-mapping operator. Clips are tiny; models are the weight-free
baselines and a randomly initialised JSInet (tests only).
"""

from __future__ import annotations

import math
import os
import stat
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from tests import videos
from tests.videos import run_cli
from sdr2hdr import color, font5x7, preview
from sdr2hdr.models import JSInet
from sdr2hdr.models.baselines import BT2408DirectMapping
from sdr2hdr.inference.model_io import model_input
from sdr2hdr.outfile import process_umask
from sdr2hdr.video import frames as fr
from sdr2hdr.video.probe import probe
from sdr2hdr.video.reader import FrameReader
from sdr2hdr.zoo import load, save_weights

EDGES = (1.0, 10.0, 100.0, 203.0, 400.0, 1000.0)  # the documented bands, cd/m²


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("preview")


@pytest.fixture(scope="module")
def clip(work: Path) -> Path:
    """24 frames at 24 fps, 64x36, a key frame every 6 frames (so --at really seeks), darkened towards the left
    (so there are pixels below the tone-mapping knee)."""
    ramp = torch.linspace(0.1, 1.0, 64, dtype=torch.float64)
    frames = [f * ramp for f in videos.scene(24, 64, 36)]
    return videos.make_clip(work / "clip.mp4", frames=frames, options={"g": "6", "bf": "0"})



def read_png(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def frame_at(path: Path, at: float) -> tuple[fr.PlanarFrame, float]:
    """The first frame at or after ``at`` s, by decoding from the start (convert's reader)."""
    info = probe(path)
    for pf in FrameReader(info):
        t = float(Fraction(pf.pts) * info.time_base) - info.start_time
        if t >= at - 1e-6:
            return pf, t
    raise AssertionError("no frame")


def luminance_of(hdr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(linear BT.2020 light, BT.2020 Y) in cd/m² of a model output ``3 x H x W``, decoded as a display does."""
    light = color.hdr10_to_linear(hdr.double(), bits=10)
    return light, color.luminance(light, "bt2020")


def band(v: float) -> int:
    return sum(v >= e for e in EDGES)


def check_png(res: preview.PreviewResult, hdr: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    """Size, legend text and false-colour panel of the written PNG against the model output ``hdr``."""
    png = read_png(res.output)
    _, h_hr, w_hr = hdr.shape
    k = max(1, (3 * w_hr + 32) // 640)
    assert png.shape == (h_hr + 16 + 30 * k, max(3 * w_hr + 32, 400), 3)  # the documented size
    assert res.size == (png.shape[1], png.shape[0]) and res.hr_size == (w_hr, h_hr)
    light, y = luminance_of(hdr)
    peak, mean = float(y.max()), float(y.mean())
    assert res.peak_nits == pytest.approx(peak, rel=1e-9) and res.mean_nits == pytest.approx(mean, rel=1e-9)
    # the third legend line prints the measured numbers, and the PNG shows exactly that text
    numbers = res.legend[2]
    assert f"PEAK {res.peak_nits:.1f} CD/M2" in numbers and f"MEAN {res.mean_nits:.1f} CD/M2" in numbers
    lay = preview.layout(w_hr, h_hr)
    ink = font5x7.render(numbers, k)
    region = png[lay.line_y[2] : lay.line_y[2] + ink.shape[0], 8 : 8 + ink.shape[1]]
    assert np.array_equal(np.all(region == 255, axis=-1), ink)
    # false colour: every pixel the colour of its band (pixels within 1e-6 of a band edge may take either side)
    panel3 = png[8 : 8 + h_hr, lay.panel_x[2] : lay.panel_x[2] + w_hr]
    palette = np.asarray(preview.BAND_COLOURS, np.uint8)
    expected = palette[np.vectorize(band)(y.numpy())]
    wrong = np.any(panel3 != expected, axis=-1)
    near_edge = np.min(np.abs(y.numpy()[..., None] / np.asarray(EDGES) - 1), axis=-1) < 1e-6
    assert not np.any(wrong & ~near_edge)
    py, px = divmod(int(torch.argmax(y)), w_hr)
    assert res.peak_xy == (px, py)
    assert tuple(panel3[py, px]) in {tuple(palette[band(peak * f)]) for f in (1 - 1e-6, 1, 1 + 1e-6)}
    # SDR panel: the input up-scaled bicubically, BT.709 limited Y'CbCr -> R'G'B' codes
    up = torch.nn.functional.interpolate(x.double(), scale_factor=res.scale, mode="bicubic", align_corners=False)[0]
    sdr = (color.ycbcr_to_rgb(up, "bt709", bits=8).clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()
    assert np.abs(png[8 : 8 + h_hr, 8 : 8 + w_hr] - sdr).max() <= 1
    # tone-mapped panel: below the BT.2390 knee (about 28 cd/m² for 1000 -> 100) the light is shown unchanged
    rgb709 = color.convert_primaries(light, "bt2020", "bt709").clamp(min=0)
    dark = rgb709.amax(dim=0) < 10.0
    assert dark.sum() > 10
    want = (color.bt1886_inverse_eotf(rgb709) * 255).round().permute(1, 2, 0).numpy()
    panel2 = png[8 : 8 + h_hr, lay.panel_x[1] : lay.panel_x[1] + w_hr].astype(np.float64)
    assert np.abs(panel2 - want)[dark.numpy()].max() <= 1
    return png


# ------------------------------------------------------------------------ tests


@pytest.mark.parametrize("at", [0.5, 0.51])
def test_preview_bt2408_layout_numbers_false_colour(work: Path, clip: Path, at: float) -> None:
    out = work / f"at{at}.png"
    res = preview.preview(clip, out, at=at, model="bt2408-x2", device="cpu")
    pf, t = frame_at(clip, at)
    assert (res.pts, res.time) == (pf.pts, pytest.approx(t, abs=1e-9))
    assert res.time == pytest.approx(12 / 24 if at == 0.5 else 13 / 24, abs=1e-9)  # at 0.5 s exactly: frame 12
    x = model_input([pf])
    with torch.inference_mode():
        hdr = BT2408DirectMapping(2)(x)[0]
    check_png(res, hdr, x)
    assert (res.model, res.scale, res.mastering_peak, res.precision) == ("bt2408-x2", 2, 1000.0, "fp32")
    assert not [p for p in work.iterdir() if ".partial" in p.name]


def test_preview_random_jsinet_weights(work: Path, clip: Path) -> None:
    """A JSInet weights file (random, tests only) through zoo.load + TiledModel, fp32: the numbers of running it."""
    torch.manual_seed(0)
    weights = work / "random-jsinet-x2.safetensors"
    save_weights(JSInet(scale=2), weights, architecture="jsinet", scale=2, variant="jsinet",
                 recipe="random (tests only)", peak_nits="1000")
    res = preview.preview(clip, work / "jsinet.png", at=0.2, model=str(weights), precision="fp32", device="cpu")
    pf, _ = frame_at(clip, 0.2)
    x = model_input([pf])
    with torch.inference_mode():
        hdr = load(str(weights)).module(x)[0]
    _, y = luminance_of(hdr)
    assert res.peak_nits == pytest.approx(float(y.max()), rel=1e-5)
    assert res.mean_nits == pytest.approx(float(y.mean()), rel=1e-5)
    png = read_png(res.output)
    assert png.shape[:2] == (72 + 16 + 30, 3 * 128 + 32)


def test_cli_default_middle_x4_summary_line_and_mode(work: Path, clip: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = work / "middle.png"
    code, stdout, err = run_cli(["preview", clip, "--model", "bt2408-x4", "-o", out], capsys)
    assert code == 0 and err == "", err
    assert stdout.count("\n") == 1
    middle = float(probe(clip).duration_declared) / 2
    _, t = frame_at(clip, middle)
    assert stdout.startswith(f"{out}: frame at {t:.3f} s through bt2408-x4 (x4, 256x144): HDR peak ")
    assert "cd/m², mean " in stdout
    png = read_png(out)
    assert png.shape == (144 + 16 + 30 * 1, 3 * 256 + 32, 3)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~process_umask()
    # an existing PNG is replaced (and keeps its mode)
    os.chmod(out, 0o640)
    code, _, err = run_cli(["preview", clip, "--model", "bt2408-x2", "--at", "0", "-o", out], capsys)
    assert code == 0, err
    assert read_png(out).shape[1] == 3 * 128 + 32 and stat.S_IMODE(out.stat().st_mode) == 0o640


@pytest.mark.parametrize("case", ["past-end", "negative", "missing", "hdr", "not-png", "no-folder", "scale"])
def test_errors_one_line_nothing_written(work: Path, clip: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = work / f"err-{case}"
    folder.mkdir()
    out = folder / "p.png"
    src = clip
    extra: list[object] = ["--model", "bt2408-x2"]
    expect = {"past-end": "is past the end of", "negative": "--at must be a time in seconds >= 0",
              "missing": "input file not found", "hdr": "is already HDR", "not-png": "must be a .png file",
              "no-folder": "output directory does not exist", "scale": "but --scale 4 was asked for"}[case]
    if case == "past-end":
        extra += ["--at", "99"]
    elif case == "negative":
        extra += ["--at", "-1"]
    elif case == "missing":
        src = folder / "nope.mp4"
    elif case == "hdr":
        src = videos.make_hdr10_clip(folder / "hdr.mkv")
    elif case == "not-png":
        out = folder / "p.jpg"
    elif case == "no-folder":
        out = folder / "sub" / "p.png"
    elif case == "scale":
        extra += ["--scale", "4"]
    code, stdout, err = run_cli(["preview", src, *extra, "-o", out], capsys)
    assert code == 2 and stdout == ""
    assert err.splitlines() == [err.strip()] and err.startswith("error: ") and expect in err, err
    assert not out.exists() and not [p for p in folder.iterdir() if p.suffix == ".png" or ".partial" in p.name]
    if case == "past-end":
        assert f"its last frame starts at {23 / 24:.3f} s" in err


def test_font_covers_the_legend() -> None:
    """Every character the legend can print has a glyph (no '?' boxes), and the band row fits the narrowest PNG."""
    text = " ".join(preview.TITLES + preview.BAND_LABELS) + "FRAME AT 0123456789.S PEAK MEAN CD/M2"
    assert set(text.upper()) <= set(font5x7.GLYPHS)
    width = sum(font5x7.text_size(label)[0] + 9 + 6 for label in preview.BAND_LABELS) + font5x7.text_size("CD/M2")[0]
    assert 8 + width <= preview.MIN_WIDTH - 8
    assert math.isclose(preview.layout(640, 360).scale, 3)
