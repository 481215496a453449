"""``sdr2hdr convert`` on real-world input: rotated phone video, interlaced video, truncated files whose
index shows the cut, and what the container carries besides the streams (title, chapters, default
flags, cover art, fast-start MP4, an MPEG-TS start offset).

Clips are tiny and generated here with PyAV and the ffmpeg CLI; the weight-free ``bt2408-x2``
baseline stands in for the network.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from tests import videos
from tests.helpers import run_convert
from sdr2hdr.cli import main
from sdr2hdr.errors import InputError
from sdr2hdr.models.baselines import BT2408DirectMapping
from sdr2hdr.video.probe import probe

FAST = {"model": "bt2408-x2", "preset": "ultrafast"}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("input")


def ffmpeg(*args: object) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True)


def cli(*args: object) -> int:
    """Run ``sdr2hdr ARGS`` in-process; the exit code."""
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def streams(path: Path) -> list[dict]:
    return videos.ffprobe_json(path, "-show_streams")["streams"]


def pooled_luma(path: Path) -> np.ndarray:
    """The output's 10-bit luma, 2x2-averaged back to the input's size: ``N x H/2 x W/2`` float."""
    ys, _ = videos.decode_hdr10_planes(path)
    y = ys.double()
    return (0.25 * (y[:, 0::2, 0::2] + y[:, 1::2, 0::2] + y[:, 0::2, 1::2] + y[:, 1::2, 1::2])).numpy()


def bright(a: np.ndarray) -> np.ndarray:
    """Mask of the pixels above the midpoint between the darkest and the brightest."""
    return a > 0.5 * (float(a.min()) + float(a.max()))


class CountingModel(BT2408DirectMapping):
    """The BT.2408 baseline, counting the frames that go through it."""

    frames = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        CountingModel.frames += x.shape[0]
        return super().forward(x)


# ------------------------------------------------------------------ 1. display rotation


@pytest.fixture(scope="module")
def square_clip(work: Path) -> Path:
    """64x36, dark, with a bright square in the top-left corner (asymmetric under every rotation)."""
    pic = torch.full((3, 36, 64), 0.12, dtype=torch.float64)
    pic[:, 2:12, 2:16] = 0.92
    return videos.make_clip(work / "square.mp4", frames=[pic.clone() for _ in range(3)], size=(64, 36),
                            options={"crf": "4"})


@pytest.mark.parametrize(("rotate", "size", "words"), [(90, (36, 64), "rotated 90° counter-clockwise"),
                                                       (270, (36, 64), "rotated 90° clockwise"),
                                                       (180, (64, 36), "rotated 180°")])
def test_rotated_phone_video_plays_upright(work: Path, square_clip: Path, rotate: int, size: tuple[int, int],
                                           words: str) -> None:
    src = work / f"rot{rotate}.mp4"
    ffmpeg("-i", square_clip, "-c", "copy", "-metadata:s:v", f"rotate={rotate}", src)
    info = probe(src)
    assert info.rotation in (90, 180, 270) and info.coded_size == (64, 36)
    assert (info.width, info.height) == size and f"display rotation {info.rotation}°" in info.describe()
    out = work / f"rot{rotate}.mkv"
    s = run_convert(src, out, **FAST)
    assert s.output_size == (2 * size[0], 2 * size[1]) and s.input_size == size
    assert any(words in w and "to play upright" in w for w in s.warnings), s.warnings
    (v,) = [st for st in streams(out) if st["codec_type"] == "video"]
    assert (v["width"], v["height"]) == s.output_size
    assert not any(sd.get("side_data_type") == "Display Matrix" for sd in v.get("side_data_list", []))
    # Where a player shows the square: ffmpeg's own autorotation of the source.
    w, h = size
    ref = subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], check=True, capture_output=True).stdout
    want = bright(np.frombuffer(ref, np.uint8).reshape(h, w))
    got = bright(pooled_luma(out)[0])
    assert (got == want).mean() > 0.98
    assert want[:h // 2, :w // 2].sum() < want.sum() / 2 or rotate == 0  # the square really moved corner


# ------------------------------------------------------------------ 2. interlaced input


@pytest.fixture(scope="module")
def interlaced(work: Path) -> Path:
    """96x64 H.264 coded interlaced (tff), a bright bar moving 4 px per field: strong combing."""
    w, h, n = 96, 64, 6
    raw = bytearray()
    for i in range(n):
        y = np.full((h, w), 40, np.uint8)
        for fld in (0, 1):
            x0 = 8 * i + 4 * fld
            y[fld::2, x0 : x0 + 12] = 220
        raw += y.tobytes() + np.full((h, w // 2), 128, np.uint8).tobytes()
    (work / "il.yuv").write_bytes(bytes(raw))
    src = work / "interlaced.mkv"
    ffmpeg("-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}", "-r", "25", "-i", work / "il.yuv",
           "-c:v", "libx264", "-crf", "8", "-flags", "+ildct+ilme", "-top", "1", "-field_order", "tt", src)
    return src


def combing(path: Path) -> float:
    """Mean difference between the two fields' rows (pooled back to the input's size)."""
    y = pooled_luma(path)
    return float(np.abs(y[:, 0::2] - y[:, 1::2]).mean())


def frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [round(float(f.pts * f.time_base), 3) for f in c.decode(video=0)]


def test_interlaced_input_deinterlaced_by_default(work: Path, interlaced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = probe(interlaced)
    assert info.interlaced == "tff" and info.deinterlace and "interlaced tff" in info.describe()
    auto = work / "il_auto.mkv"
    s = run_convert(interlaced, auto, **FAST)
    assert any(w.startswith("deinterlaced with bwdif") and "6 frames" in w for w in s.warnings), s.warnings
    assert s.frames == 6 and frame_times(auto) == frame_times(interlaced)  # send_frame: count and times kept
    off = work / "il_off.mkv"
    assert cli("convert", interlaced, off, "--model", "bt2408-x2", "--preset", "ultrafast", "--deinterlace", "off",
               "--json", "-") == 0
    doc = json.loads(capsys.readouterr().out)
    assert any("interlaced" in w and "treated as progressive" in w for w in doc["warnings"]), doc["warnings"]
    assert not any(w.startswith("deinterlaced") for w in doc["warnings"])
    assert doc["frames"] == 6 and frame_times(off) == frame_times(interlaced)
    assert combing(auto) < 0.25 * combing(off), (combing(auto), combing(off))


def test_interlaced_mpeg2_ts_detected(work: Path, interlaced: Path) -> None:
    ts = work / "interlaced.ts"
    ffmpeg("-i", interlaced, "-c:v", "mpeg2video", "-flags", "+ildct+ilme", "-top", "1", "-q:v", "2", ts)
    info = probe(ts)
    assert info.interlaced == "tff" and info.deinterlace
    assert not probe(ts, deinterlace="off").deinterlace
    assert probe(videos.make_clip(work / "progressive.mp4", n=2), deinterlace="on").deinterlace


# ------------------------------------------------------------------ 3. truncation seen in the index


@pytest.fixture(scope="module")
def cut_files(work: Path) -> dict[str, Path]:
    d = work / "cut"
    d.mkdir()
    mp4 = videos.make_clip(d / "full.mp4", n=48, options={"x264-params": "keyint=1"})  # intra: bytes ~ frames
    fast = d / "faststart.mp4"
    ffmpeg("-i", mp4, "-c", "copy", "-movflags", "+faststart", fast)
    mkv = videos.make_clip(d / "full.mkv", n=48, options={"x264-params": "keyint=1"})
    return {"mp4": videos.truncate(fast, d / "cut.mp4", 0.5), "mkv": videos.truncate(mkv, d / "cut.mkv", 0.5)}


@pytest.mark.parametrize(("kind", "reason"), [("mp4", "of the 48 frames its index declares are in the file"),
                                              ("mkv", "its Matroska segment declares")])
def test_truncated_input_refused_before_any_frame(work: Path, cut_files: dict[str, Path], kind: str, reason: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cut = cut_files[kind]
    out_dir = work / f"out_{kind}"
    out_dir.mkdir()
    CountingModel.frames = 0
    with pytest.raises(InputError) as e:
        run_convert(cut, out_dir / "out.mkv", model=CountingModel(2), preset="ultrafast")
    msg = str(e.value)
    assert CountingModel.frames == 0, "frames went through the model before the refusal"
    assert msg.startswith(f"{cut} is truncated or damaged: ") and reason in msg and "\n" not in msg
    assert msg.endswith("; nothing written (--allow-truncated converts what decodes)")
    assert list(out_dir.iterdir()) == []
    code = cli("convert", cut, out_dir / "out.mkv", "--model", "bt2408-x2", "-q")
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == f"error: {msg}" and list(out_dir.iterdir()) == []
    if kind == "mp4":  # on request, what decodes is converted
        s = run_convert(cut, out_dir / "allowed.mkv", allow_truncated=True, **FAST)
        assert 10 < s.frames < 48 and any("truncated" in w for w in s.warnings)


# ------------------------------------------------------------------ 4. what the container carries


@pytest.fixture(scope="module")
def rich_mkv(work: Path) -> dict[str, Path]:
    """An MKV with a title, two chapters, two audio tracks (the second one default) and a PNG cover;
    and an MP4 with the title, the chapters and the cover as an attached picture."""
    d = work / "rich"
    d.mkdir()
    meta = d / "meta.txt"
    meta.write_text(";FFMETADATA1\ntitle=Holiday 2019\n"
                    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=250\ntitle=Arrival\n"
                    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=250\nEND=500\ntitle=Beach\n")
    cover = d / "cover.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x32", "-frames:v", "1", cover)
    base = videos.make_clip(d / "base.mp4", n=12, size=(32, 24), audio=True)
    mkv = d / "rich.mkv"
    ffmpeg("-i", base, "-i", meta, "-map", "0:v", "-map", "0:a", "-map", "0:a", "-map_metadata", "1",
           "-map_chapters", "1", "-c", "copy", "-disposition:a:0", "0", "-disposition:a:1", "default",
           "-attach", cover, "-metadata:s:t", "mimetype=image/png", "-metadata:s:t", "filename=cover.png", mkv)
    mp4 = d / "rich.mp4"
    ffmpeg("-i", base, "-i", cover, "-i", meta, "-map", "0:v", "-map", "0:a", "-map", "1", "-map_metadata", "2",
           "-map_chapters", "2", "-c", "copy", "-c:v:1", "png", "-disposition:v:1", "attached_pic", mp4)
    return {"mkv": mkv, "mp4": mp4}


def check_title_and_chapters(path: Path) -> None:
    doc = videos.ffprobe_json(path, "-show_chapters", "-show_format")
    assert doc["format"]["tags"].get("title") == "Holiday 2019"
    chapters = [(round(float(c["start_time"]), 3), round(float(c["end_time"]), 3), c["tags"]["title"])
                for c in doc["chapters"]]
    assert chapters == [(0.0, 0.25, "Arrival"), (0.25, 0.5, "Beach")]


def test_mkv_keeps_title_chapters_default_flags_and_cover(work: Path, rich_mkv: dict[str, Path]) -> None:
    out = work / "rich_out.mkv"
    s = run_convert(rich_mkv["mkv"], out, **FAST)
    check_title_and_chapters(out)
    st = streams(out)
    flags = [(x["codec_type"], x["disposition"]["default"]) for x in st if not x["disposition"]["attached_pic"]]
    assert flags == [("video", 1), ("audio", 0), ("audio", 1)]  # as the input's, not all 0
    (cover,) = [x for x in st if x["disposition"]["attached_pic"]]
    assert cover["codec_name"] == "png" and cover["tags"]["filename"] == "cover.png"
    assert any("cover art" in c for c in s.copied_streams) and not s.dropped_streams


def mp4_boxes(path: Path) -> list[str]:
    """The top-level box types of an MP4 / MOV file, in file order."""
    data, pos, names = path.read_bytes(), 0, []
    while pos + 8 <= len(data):
        size, name = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        names.append(name)
        pos += size if size else len(data)
    return names


def test_mp4_fast_start_with_title_chapters_and_cover(work: Path, rich_mkv: dict[str, Path]) -> None:
    out = work / "rich_out.mp4"
    s = run_convert(rich_mkv["mp4"], out, **FAST)
    boxes = mp4_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    check_title_and_chapters(out)
    st = streams(out)
    assert [x["disposition"]["default"] for x in st if x["codec_type"] in ("video", "audio")
            and not x["disposition"]["attached_pic"]] == [1, 1]
    assert [x["codec_name"] for x in st if x["disposition"]["attached_pic"]] == ["png"]
    assert any("cover art" in c for c in s.copied_streams)
    mov = work / "rich_out.mov"  # no cover art in MOV: said so, per stream
    s = run_convert(rich_mkv["mp4"], mov, **FAST)
    assert any(w.startswith("stream not copied: ") and "cover art png: not supported in mov" in w for w in s.warnings)
    boxes = mp4_boxes(mov)
    assert boxes.index("moov") < boxes.index("mdat"), boxes


def test_ts_start_offset_removed(work: Path) -> None:
    ts = work / "offset.ts"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x24:rate=24", "-f", "lavfi", "-i", "sine=d=1", "-t", "1",
           "-c:v", "libx264", "-c:a", "aac", "-output_ts_offset", "1.47", "-f", "mpegts", ts)
    src = videos.ffprobe_json(ts, "-show_format", "-show_streams")
    assert float(src["format"]["start_time"]) > 1.4  # the offset the output must not keep
    out = work / "offset.mkv"
    run_convert(ts, out, **FAST)
    got = videos.ffprobe_json(out, "-show_format", "-show_streams")
    assert abs(float(got["format"]["start_time"])) < 1e-3
    assert abs(float(got["format"]["duration"]) - float(src["format"]["duration"])) <= 1 / 24 + 1e-3
    lag_in = [float(s["start_time"]) for s in src["streams"]]
    lag_out = [float(s["start_time"]) for s in got["streams"]]
    assert abs((lag_in[0] - lag_in[1]) - (lag_out[0] - lag_out[1])) < 2e-3  # audio/video sync kept
    assert [s["disposition"]["default"] for s in got["streams"]] == [1, 1]  # TS has no flags: both default
