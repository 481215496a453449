"""``sdr2hdr convert`` end to end on CPU, checked with real clients (ffprobe, mediainfo).

Models: a randomly initialised JSInet saved with ``save_weights`` and passed
as ``--model PATH`` (tests only, never shipped), and the analytic
``bt2408-x2`` baseline where output *values* are checked.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from tests import videos
from sdr2hdr.summary import Progress
from tests.helpers import run_convert
from tests.videos import run_cli
from sdr2hdr.models import JSInet
from sdr2hdr.models.baselines import BT2408DirectMapping
from sdr2hdr.inference.model_io import model_input
from sdr2hdr.video.probe import probe
from sdr2hdr.video.hdr10 import light_levels
from sdr2hdr.video.reader import FrameReader
from sdr2hdr.zoo import save_weights


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("convert")


def _random_weights(work: Path, scale: int) -> Path:
    """A seeded, randomly initialised JSInet saved as weights (tests only; never shipped)."""
    torch.manual_seed(0)
    path = work / f"random-jsinet-x{scale}.safetensors"
    save_weights(JSInet(scale=scale), path, architecture="jsinet", scale=scale, variant="jsinet",
                 recipe="random (tests only)")
    return path


@pytest.fixture(scope="module")
def weights_x2(work: Path) -> Path:
    return _random_weights(work, 2)


@pytest.fixture(scope="module")
def weights_x4(work: Path) -> Path:
    return _random_weights(work, 4)


@pytest.fixture(scope="module")
def clip_audio(work: Path) -> Path:
    return videos.make_clip(work / "in_audio.mp4", n=6, size=(32, 24), audio=True)



def streams(path: Path) -> dict[str, list[dict]]:
    info = videos.ffprobe_json(path, "-show_streams")
    by: dict[str, list[dict]] = {}
    for s in info["streams"]:
        by.setdefault(s["codec_type"], []).append(s)
    return by


def video_frames(path: Path) -> list[dict]:
    return videos.ffprobe_json(path, "-select_streams", "v", "-show_frames")["frames"]


def mediainfo(path: Path) -> str:
    return subprocess.run(["mediainfo", str(path)], check=True, capture_output=True, text=True).stdout


def check_hdr10(path: Path, *, size: tuple[int, int], frames: int) -> list[dict]:
    by = streams(path)
    v = by["video"][0]
    assert (v["codec_name"], v["profile"], v["pix_fmt"]) == ("hevc", "Main 10", "yuv420p10le")
    assert (v["color_primaries"], v["color_transfer"], v["color_space"], v["color_range"]) == ("bt2020", "smpte2084", "bt2020nc", "tv")
    assert (v["width"], v["height"]) == size
    fl = video_frames(path)
    assert len(fl) == frames
    for f in fl:
        kinds = {sd["side_data_type"] for sd in f.get("side_data_list", [])}
        assert {"Mastering display metadata", "Content light level metadata"} <= kinds
        assert (f["color_primaries"], f["color_transfer"], f["color_space"]) == ("bt2020", "smpte2084", "bt2020nc")
    mi = mediainfo(path)
    assert "SMPTE ST 2086, HDR10 compatible" in mi
    assert "Display P3" in mi or "BT.2020" in mi
    return fl


def side(frame: dict, kind: str) -> dict:
    return next(sd for sd in frame["side_data_list"] if sd["side_data_type"] == kind)


# ------------------------------------------------------------------ happy paths


def test_model_peak_is_the_default_mastering_peak(work: Path, clip_audio: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Weights trained for a 4000 cd/m² peak signal 4000 in the HDR10 metadata unless --peak-nits says otherwise."""
    torch.manual_seed(0)
    path = work / "peak4000-x2.safetensors"
    save_weights(JSInet(scale=2), path, architecture="jsinet", scale=2, variant="jsinet", recipe="random (tests only)",
                 peak_nits="4000")
    out = work / "peak4000.mkv"
    code, stdout, err = run_cli(["convert", clip_audio, out, "--model", path, "--preset", "ultrafast", "--no-audio"], capsys)
    assert code == 0, err
    assert "peak 4000 cd/m²" in stdout
    assert side(video_frames(out)[0], "Mastering display metadata")["max_luminance"] == "40000000/10000"
    out2 = work / "peak600.mkv"
    code, _, err = run_cli(["convert", clip_audio, out2, "--model", path, "--preset", "ultrafast", "--no-audio",
                            "--peak-nits", "600", "-q"], capsys)
    assert code == 0, err
    assert side(video_frames(out2)[0], "Mastering display metadata")["max_luminance"] == "6000000/10000"


def test_cli_mkv_with_audio_random_jsinet(work: Path, clip_audio: Path, weights_x2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = work / "out_audio.mkv"
    code, stdout, err = run_cli(["convert", clip_audio, out, "--model", weights_x2, "--preset", "ultrafast"], capsys)
    assert code == 0, err
    assert "MaxCLL" in stdout and "measured on the frames written" in stdout and "signalled as 0,0" in stdout
    fl = check_hdr10(out, size=(64, 48), frames=6)
    md = side(fl[0], "Mastering display metadata")
    assert (md["red_x"], md["green_y"], md["max_luminance"], md["min_luminance"]) == ("34000/50000", "34500/50000", "10000000/10000", "1/10000")
    assert (side(fl[0], "Content light level metadata")["max_content"]) == 0  # unknown unless measured
    by = streams(out)
    assert by["audio"][0]["codec_name"] == "aac"
    src = [f["pts_time"] for f in video_frames(clip_audio)]
    assert [float(f["pts_time"]) for f in fl] == pytest.approx([float(t) for t in src], abs=1e-3)  # mkv: 1 ms
    assert not [p for p in work.iterdir() if ".partial" in p.name]


def test_mp4_hvc1_bt2020_mastering_measured_cll_and_values(
    work: Path, capsys: pytest.CaptureFixture[str], shared: Path
) -> None:
    """BT.601 full-range source; analytic model, so the decoded output can be checked against it.

    The light-level bounds at the end hold for the real still the clip is cut from (``shared``).
    """
    src = videos.make_clip(work / "in601full.mkv", n=4, size=(48, 32), codec="ffv1", pix_fmt="yuv420p",
                           matrix="bt601", full_range=True, audio=True)
    out = work / "out601.mp4"
    model = BT2408DirectMapping(2)
    s = run_convert(src, out, model=model, scale=2, cll="measure", mastering="bt2020", peak_nits=4000,
                         preset="ultrafast", x265_extra="lossless=1")
    assert s.passes == 2 and s.frames == 4 and s.signalled_cll == (math.ceil(s.max_cll), math.ceil(s.max_fall))
    assert s.copied_streams and not s.warnings
    fl = check_hdr10(out, size=(96, 64), frames=4)
    assert streams(out)["video"][0]["codec_tag_string"] == "hvc1"
    assert streams(out)["audio"][0]["codec_name"] == "aac"
    cll = side(fl[0], "Content light level metadata")
    assert (cll["max_content"], cll["max_average"]) == s.signalled_cll
    md = side(fl[0], "Mastering display metadata")
    assert (md["red_x"], md["green_y"], md["max_luminance"]) == ("35400/50000", "39850/50000", "40000000/10000")
    mi = mediainfo(out)
    assert f"{s.signalled_cll[0]} cd/m2" in next(line for line in mi.splitlines() if line.startswith("Maximum Content Light Level"))
    assert f"{s.signalled_cll[1]} cd/m2" in next(line for line in mi.splitlines() if line.startswith("Maximum Frame-Average"))
    # values: decode the file and compare with the model applied to the decoded source frames
    src_frames = list(FrameReader(probe(src)))
    with torch.no_grad():
        expect = model(model_input(src_frames)).double()
    got = torch.stack(videos.decode_hdr10(out))
    psnr = 10 * math.log10(1 / float(((got - expect) ** 2).mean()))
    assert psnr > 40, psnr
    # the summary's light levels are those of the frames in the file (lossless here, so exactly)
    y, c = videos.decode_hdr10_planes(out)
    dec_cll, dec_fall = light_levels(y, c)
    assert max(dec_cll) == pytest.approx(s.max_cll, rel=1e-6)
    assert max(dec_fall) == pytest.approx(s.max_fall, rel=1e-6)
    # BT.2408 puts SDR white at 203 cd/m²; 4:2:0 chroma reconstruction at colour edges overshoots a little
    assert 50 < s.max_fall < 203 < s.max_cll < 300


def test_vfr_timestamps_and_duration_kept(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pts = [0, 40, 70, 130, 150, 200, 260, 270]
    src = videos.make_clip(work / "vfr.mkv", n=len(pts), pts=pts, time_base=Fraction(1, 1000), size=(32, 24))
    for ext in ("mkv", "mp4"):
        out = work / f"vfr_out.{ext}"
        code, _, err = run_cli(["convert", src, out, "--model", "bt2408-x2", "--preset", "ultrafast", "-q"], capsys)
        assert code == 0 and err == "", err
        fin, fout = video_frames(src), video_frames(out)
        assert len(fout) == len(fin)
        assert [float(f["pts_time"]) for f in fout] == pytest.approx([float(f["pts_time"]) for f in fin], abs=1e-6)
        assert [float(f["pts_time"]) for f in fout] == pytest.approx([p / 1000 for p in pts], abs=1e-6)
        d_in = float(videos.ffprobe_json(src, "-show_format")["format"]["duration"])
        d_out = float(videos.ffprobe_json(out, "-show_format")["format"]["duration"])
        assert d_out == pytest.approx(d_in, abs=1.5e-3)


def test_x4_odd_size_subtitles_and_no_audio(work: Path, weights_x4: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = videos.make_clip(work / "odd_base.mkv", n=3, size=(33, 25), codec="ffv1", audio=True)
    srt = work / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,100\nhello\n")
    src = work / "odd_subs.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(base), "-i", str(srt), "-map", "0", "-map", "1", "-c", "copy",
                    "-c:s", "srt", str(src)], check=True)
    out = work / "odd_x4.mkv"
    code, _, err = run_cli(["convert", src, out, "--scale", "4", "--model", weights_x4, "--no-audio", "-q",
                            "--preset", "ultrafast", "--tile", "16"], capsys)
    assert code == 0, err
    check_hdr10(out, size=(132, 100), frames=3)
    by = streams(out)
    assert "audio" not in by and by["subtitle"][0]["codec_name"] == "subrip"
    # MP4 cannot hold SubRip: left out with a warning, not a failure
    code, _, err = run_cli(["convert", src, work / "odd.mp4", "--model", "bt2408-x2", "-q", "--preset", "ultrafast"], capsys)
    assert code == 0 and "warning: stream not copied" in err and "subrip" in err
    assert "subtitle" not in streams(work / "odd.mp4")


def test_anamorphic_sample_aspect_ratio_kept(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = work / "sar.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=32x24:rate=24:duration=0.125",
                    "-vf", "setsar=4/3", "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
                    "-c:v", "libx264", str(src)], check=True)
    out = work / "sar_out.mkv"
    code, _, err = run_cli(["convert", src, out, "--model", "bt2408-x2", "-q", "--preset", "ultrafast"], capsys)
    assert code == 0, err
    v = streams(out)["video"][0]
    assert (v["width"], v["height"], v["sample_aspect_ratio"]) == (64, 48, "4:3")


def test_existing_output_needs_overwrite(work: Path, clip_audio: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = work / "exists.mkv"
    out.write_bytes(b"keep me")
    code, _, err = run_cli(["convert", clip_audio, out, "--model", "bt2408-x2", "-q"], capsys)
    assert code == 2 and err.count("\n") == 1 and "already exists" in err and "--overwrite" in err
    assert out.read_bytes() == b"keep me"
    code, _, err = run_cli(["convert", clip_audio, out, "--model", "bt2408-x2", "-q", "--overwrite",
                            "--preset", "ultrafast"], capsys)
    assert code == 0, err
    assert streams(out)["video"][0]["codec_name"] == "hevc"


# ------------------------------------------------------------------ bad inputs


@pytest.fixture(scope="module")
def bad_cases(work: Path) -> dict[str, tuple[list[object], str]]:
    d = work / "bad"
    d.mkdir()
    good = videos.make_clip(d / "good.mp4", n=2)
    text = d / "text.mp4"
    text.write_text("not a video at all\n" * 10)
    audio = videos.make_audio_only(d / "audio.m4a")
    full = videos.make_clip(d / "long.mkv", n=48, options={"x264-params": "keyint=1"})  # intra-only: bytes ~ frames
    cut = videos.truncate(full, d / "cut.mkv", 0.5)
    hdr = videos.make_hdr10_clip(d / "hdr.mkv")
    out = d / "out.mkv"
    unwritable = Path("/proc/sdr2hdr-out.mkv") if os.geteuid() == 0 else (d / "ro" / "out.mkv")
    if os.geteuid() != 0:
        (d / "ro").mkdir(exist_ok=True)
        os.chmod(d / "ro", 0o555)
    return {
        "missing": ([d / "missing.mp4", out], "input file not found"),
        "text": ([text, out], "not a video file"),
        "audio-only": ([audio, out], "no video stream"),
        "truncated": ([cut, out], "truncated"),
        "hdr": ([hdr, out], "already HDR"),
        "no-such-dir": ([good, d / "nodir" / "out.mkv"], "output directory does not exist"),
        "unwritable-dir": ([good, unwritable], "writ"),
        "same-as-input": ([good, good], "is the input file"),
        "bad-extension": ([good, d / "out.avi"], "unsupported output type"),
    }


BAD = ["missing", "text", "audio-only", "truncated", "hdr", "no-such-dir", "unwritable-dir", "same-as-input", "bad-extension"]


@pytest.mark.parametrize("case", BAD)
def test_bad_inputs_one_line_error_nothing_left(
    work: Path, bad_cases: dict[str, tuple[list[object], str]], case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (args, expect) = bad_cases[case]
    d = work / "bad"
    before = sorted(p.name for p in d.iterdir())
    code, out, err = run_cli(["convert", *args, "--model", "bt2408-x2", "-q"], capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert expect in err
    assert sorted(p.name for p in d.iterdir()) == before  # no output, no partial file
    if case == "truncated":  # converting what decodes is available on request
        out_path = Path(args[1])
        code, _, err = run_cli(["convert", *args, "--model", "bt2408-x2", "-q", "--allow-truncated",
                                "--preset", "ultrafast"], capsys)
        assert code == 0 and "warning: input truncated" in err
        n = len(video_frames(out_path))
        assert 5 < n < 48
        out_path.unlink()


@pytest.mark.parametrize(
    ("extra", "expect"),
    [(["--x265-params", "colorprim=bt709"], "may not set 'colorprim'"),
     (["--device", "cuda:7"] if not torch.cuda.is_available() else ["--device", "tpu"], "--device")],
)
def test_bad_options_one_line(work: Path, clip_audio: Path, extra: list[str], expect: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = work / "opt.mkv"
    code, _, err = run_cli(["convert", clip_audio, out, "--model", "bt2408-x2", "-q", *extra], capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and expect in err, err
    assert not out.exists() and not [p for p in work.iterdir() if ".partial" in p.name]


def test_shared_hdr_clip_refused_by_cli(shared: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = shared / "data" / "video" / "androidx_media__hdr10-video-with-sdr-container.mp4"
    code, _, err = run_cli(["convert", clip, work / "never.mkv", "--model", "bt2408-x2"], capsys)
    assert code == 2 and "already HDR" in err and err.count("\n") == 1
    assert not (work / "never.mkv").exists()


# ------------------------------------------------------- real processes


def _cli(*args: object, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sdr2hdr", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_quick_start_converts_the_sample_to_hdr10(tmp_path: Path) -> None:
    """The README's first command: `sdr2hdr sample` then `sdr2hdr convert` with the default model (jsinet-x2,
    shipped and registered), checked with ffprobe and mediainfo. The sample is shortened to 0.5 s for CI time."""
    from sdr2hdr.zoo import REGISTRY

    r = _cli("sample", "sample.mp4", "--seconds", "0.5", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    v = streams(tmp_path / "sample.mp4")["video"][0]
    assert (v["codec_name"], v["pix_fmt"], v["color_space"], v["color_transfer"], v["color_primaries"], v["color_range"]) == (
        "h264", "yuv420p", "bt709", "bt709", "bt709", "tv")
    r = _cli("convert", "sample.mp4", "sample_hdr10.mkv", "--json", "summary.json", cwd=tmp_path, timeout=600)
    if "jsinet-x2" not in REGISTRY:  # no trained weights registered: the one-line refusal, nothing written
        assert r.returncode == 2
        assert r.stderr.startswith("error: no trained weights for 'jsinet-x2'") and r.stderr.count("\n") == 1, r.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["sample.mp4"]
        return
    assert r.returncode == 0, r.stderr
    check_hdr10(tmp_path / "sample_hdr10.mkv", size=(640, 360), frames=12)
    import json

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["model"] == {"name": "jsinet-x2", "sha256": REGISTRY["jsinet-x2"].sha256}
    assert summary["mastering_peak_nits"] == REGISTRY["jsinet-x2"].peak_nits
    assert summary["light_level"]["measured"]["max_cll"] > 203  # the sample's highlights are expanded above SDR white


def test_ctrl_c_leaves_no_partial_file(tmp_path: Path, weights_x2: Path) -> None:
    src = videos.make_clip(tmp_path / "long.mp4", n=96, size=(64, 48))
    proc = subprocess.Popen([sys.executable, "-m", "sdr2hdr", "convert", str(src), "out.mkv", "--model", str(weights_x2),
                             "-q"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not any(".partial" in p.name for p in tmp_path.iterdir()):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        time.sleep(1.0)  # well inside the conversion
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and err.strip() == "error: interrupted", err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"]


def test_library_summary_and_progress(work: Path, clip_audio: Path) -> None:
    seen: list[Progress] = []
    out = work / "lib.mkv"
    s = run_convert(clip_audio, out, model="bt2408-x2", preset="ultrafast", progress=seen.append, overwrite=True)
    assert s.frames == 6 and s.output_size == (64, 48) and s.size_bytes == out.stat().st_size > 0
    assert s.signalled_cll == (0, 0) and s.max_cll > 0 and s.cll_mode == "unknown"
    assert seen and seen[-1].encoded == 6 and seen[-1].total == 6
    assert np.isfinite(s.fps) and s.fps > 0
