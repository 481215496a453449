"""Video input: codecs/containers, timestamps, rotation, refusals (the colour path: tests/test_model_io.py).

Clips are tiny (32x24, a few frames) and generated here (tests/videos.py);
timestamps and tags are checked against ffprobe.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from sdr2hdr import color
from sdr2hdr.errors import InputError
from sdr2hdr.inference import model_io
from sdr2hdr.video import frames as fr
from sdr2hdr.video.probe import probe
from sdr2hdr.video.reader import FrameReader
from tests import videos


def read_all(path: Path, **kw: object) -> tuple[list[fr.PlanarFrame], FrameReader]:
    reader = FrameReader(probe(path), **kw)
    return list(reader), reader


# ---------------------------------------------------------- codecs / containers


CODECS = [
    ("h264.mp4", "libx264", "yuv420p", (32, 24)),
    ("hevc.mkv", "libx265", "yuv420p", (32, 24)),
    ("vp9.webm", "libvpx-vp9", "yuv420p", (32, 24)),
    ("av1.mkv", "libsvtav1", "yuv420p", (32, 24)),
    ("mpeg2.ts", "mpeg2video", "yuv420p", (32, 24)),
    ("prores.mov", "prores_ks", "yuv422p10le", (32, 24)),
    ("h264_444.mov", "libx264", "yuv444p", (32, 24)),
    ("odd.mkv", "ffv1", "yuv420p", (33, 25)),
    ("odd_444.mp4", "libx264", "yuv444p", (33, 25)),
]


@pytest.mark.parametrize(("name", "codec", "pix_fmt", "size"), CODECS, ids=[c[0] for c in CODECS])
def test_codecs_and_containers(tmp_path: Path, name: str, codec: str, pix_fmt: str, size: tuple[int, int]) -> None:
    pics = videos.scene(4, *size)
    path = videos.make_clip(tmp_path / name, frames=pics, codec=codec, pix_fmt=pix_fmt, size=size)
    info = probe(path)
    assert (info.width, info.height) == size and info.fmt.matrix == "bt709" and not info.fmt.full_range
    got, reader = read_all(path)
    assert len(got) == 4 and not reader.warnings
    probe_pts = [f.get("pts") for f in videos.ffprobe_json(path, "-select_streams", "v", "-show_frames")["frames"]]
    assert [f.pts for f in got] == probe_pts
    x = model_io.model_input(got, dtype=torch.float64)
    ref = torch.stack([color.rgb_to_ycbcr(p, "bt709", bits=8) for p in pics])
    mse = float(((x - ref) ** 2).mean())
    assert 10 * np.log10(1 / mse) > 25, name  # lossy, but the right picture in the right colours


def test_vfr_timestamps_and_durations(tmp_path: Path) -> None:
    pts = [0, 40, 70, 130, 150, 200, 260]
    path = videos.make_clip(tmp_path / "vfr.mkv", n=len(pts), pts=pts, time_base=Fraction(1, 1000), fps=24)
    got, _ = read_all(path)
    assert [f.pts for f in got] == pts
    assert [f.duration for f in got[:-1]] == [b - a for a, b in zip(pts, pts[1:])]
    assert got[-1].duration > 0


def test_untagged_sd_is_bt601_and_hd_bt709(tmp_path: Path) -> None:
    sd = videos.make_clip(tmp_path / "sd.mkv", n=1, size=(64, 48), codec="ffv1", tag=False)
    assert probe(sd).fmt.matrix == "bt601"
    hd = videos.make_clip(tmp_path / "hd.mkv", n=1, size=(1280, 16), codec="ffv1", tag=False)
    assert probe(hd).fmt.matrix == "bt709"


# ------------------------------------------------------------------ refusals


def _one_line(exc: pytest.ExceptionInfo[InputError]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_refuses_generated_hdr10_and_untagged_10bit_bt2020(tmp_path: Path) -> None:
    with pytest.raises(InputError) as e:
        probe(videos.make_hdr10_clip(tmp_path / "pq.mkv"))
    assert "already HDR" in _one_line(e) and "pq.mkv" in str(e.value)
    with pytest.raises(InputError) as e:
        probe(videos.make_hdr10_clip(tmp_path / "untagged.mkv", tag_transfer=False))
    assert "BT.2020" in _one_line(e)


def test_refuses_real_hdr_clips(shared: Path) -> None:
    clips = sorted((shared / "data" / "video").glob("*"))
    assert len(clips) >= 4
    for clip in clips:  # includes an HDR10 bitstream in a container tagged SDR
        with pytest.raises(InputError) as e:
            probe(clip)
        assert "already HDR" in _one_line(e), clip


def test_one_prober_for_convert_and_training(tmp_path: Path) -> None:
    """The training data decode the same VideoInfo as convert's probe; convert still refuses the clip, in one line."""
    from dataclasses import replace

    from sdr2hdr.data.hdrvideo import decode_frames
    from sdr2hdr.video.probe import VideoInfo

    clip = videos.make_hdr10_clip(tmp_path / "pq.mkv", n=3)
    with pytest.raises(InputError) as e:
        probe(clip)
    assert _one_line(e) == f"{clip} is already HDR (PQ / SMPTE ST 2084 transfer); sdr2hdr converts SDR input only"
    info = probe(clip, deinterlace="off", allow_hdr=True)
    v = decode_frames(clip, require_hdr=True)
    assert type(v.info) is type(info) is VideoInfo
    assert replace(v.info, fmt=info.fmt) == info  # the same probe; v.info.fmt describes the planes held
    assert v.info.is_hdr and (v.info.transfer, v.info.primaries, v.info.matrix) == ("smpte2084", "bt2020", "bt2020nc")
    assert v.info.fmt.bits == 10 and v.y.shape == (3, 24, 32) and v.uv.shape == (3, 2, 12, 16) and v.indices == [0, 1, 2]
    sdr = videos.make_clip(tmp_path / "sdr.mp4", n=2)
    with pytest.raises(InputError, match=r"sdr\.mp4: not an HDR video \(transfer bt709\)"):
        decode_frames(sdr, require_hdr=True)
    with pytest.raises(InputError, match=r"pq\.mkv: is an HDR video \(PQ / SMPTE ST 2084 transfer\) where the SDR side"):
        decode_frames(clip, require_hdr=False)


def test_reader_selection_and_420_planes(tmp_path: Path) -> None:
    """``select`` hands on only the picked frames (same planes and timestamps), ``yuv420_bits`` the 4:2:0 layout."""
    from sdr2hdr.evaluate import FrameSelection

    path = videos.make_clip(tmp_path / "c.mkv", n=10, pix_fmt="yuv444p")
    full, _ = read_all(path)
    reader = FrameReader(probe(path), select=FrameSelection.parse("2:9", 3))
    got = list(reader)
    assert [f.index for f in got] == [2, 5, 8] and reader.stopped and reader.frames_read == 9
    for f in got:
        assert f.pts == full[f.index].pts and all(np.array_equal(a, b) for a, b in zip(f.planes, full[f.index].planes))
    for bits, dtype in ((8, np.uint8), (10, np.uint16)):
        (f,) = list(FrameReader(probe(path), select=FrameSelection.parse("1"), yuv420_bits=bits))
        assert (f.fmt.bits, f.fmt.sub_x, f.fmt.sub_y) == (bits, 2, 2) and f.planes[0].dtype == dtype
        assert [p.shape for p in f.planes] == [(24, 32), (12, 16), (12, 16)]
    y10 = list(FrameReader(probe(path), yuv420_bits=10))[0].planes[0].astype(np.int32)
    assert np.abs(y10 - 4 * full[0].planes[0].astype(np.int32)).max() <= 3  # the same luma, at 10 bits


def test_refuses_non_videos(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        probe(tmp_path / "missing.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    with pytest.raises(InputError) as e:
        probe(text)
    assert "not a video file" in _one_line(e)
    with pytest.raises(InputError) as e:
        probe(videos.make_audio_only(tmp_path / "audio.m4a"))
    assert "no video stream" in _one_line(e)


def test_truncated_input_refused_or_converted_on_request(tmp_path: Path) -> None:
    # Intra-only, so half the bytes hold about half the frames whatever the picture content.
    full = videos.make_clip(tmp_path / "full.mkv", n=48, size=(32, 24), options={"x264-params": "keyint=1"})
    cut = videos.truncate(full, tmp_path / "cut.mkv", 0.5)
    with pytest.raises(InputError) as e:
        read_all(cut)
    assert "truncated" in _one_line(e) and "--allow-truncated" in str(e.value)
    got, reader = read_all(cut, allow_truncated=True)
    assert 5 < len(got) < 48 and any("truncated" in w for w in reader.warnings)
    mp4 = videos.make_clip(tmp_path / "full.mp4", n=48, options={"x264-params": "keyint=1"})
    with pytest.raises(InputError) as e:  # index (moov) at the end: cannot even be opened
        probe(videos.truncate(mp4, tmp_path / "cut.mp4", 0.5))
    assert "cut.mp4" in _one_line(e)
    faststart = tmp_path / "faststart.mp4"  # index first: opens, but its frames run out
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(mp4), "-c", "copy", "-movflags", "+faststart", str(faststart)], check=True)
    with pytest.raises(InputError) as e:
        read_all(videos.truncate(faststart, tmp_path / "cut_fs.mp4", 0.5))
    assert "of the 48 frames its index declares" in _one_line(e)


def test_rgb_source_is_encoded_with_bt709(tmp_path: Path) -> None:
    """An RGB stream (libx264rgb, lossless) becomes BT.709 limited Y'CbCr of exactly those R'G'B' values."""
    import av

    rgb = (np.random.default_rng(0).uniform(0, 1, (24, 32, 3)) * 255).astype(np.uint8)
    path = tmp_path / "rgb.mkv"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264rgb", rate=24)
        s.width, s.height, s.pix_fmt, s.options = 32, 24, "rgb24", {"qp": "0"}
        for i in range(2):
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    info = probe(path)
    assert info.fmt.kind == "rgb"
    got, _ = read_all(path)
    x = model_io.model_input(got[:1], dtype=torch.float64)[0]
    ref = color.rgb_to_ycbcr(torch.from_numpy(rgb / 255.0).permute(2, 0, 1), "bt709", bits=8)
    torch.testing.assert_close(x, ref, atol=1e-12, rtol=0)
