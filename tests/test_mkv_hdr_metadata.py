"""HDR10 metadata in the Matroska container (the video track's Colour element), written with mkvpropedit.

Checked with the real clients: ``mkvinfo`` (MKVToolNix) for the elements,
``ffprobe`` for the SEI they must equal and for the stream side data FFmpeg's
Matroska demuxer makes of them, and ``mediainfo`` for what it reports and from
where ("Container / Stream"). Clips are tiny and the model is the weight-free
``bt2408-x2`` baseline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from tests import videos
from tests.videos import run_cli
from sdr2hdr.video import mkvcolour

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("mkvpropedit", "mkvextract", "mkvinfo", "mediainfo", "ffprobe")),
    reason="needs mkvtoolnix (mkvpropedit, mkvextract, mkvinfo), mediainfo and ffprobe",
)

FAST = ["--model", "bt2408-x2", "--preset", "ultrafast"]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mkvmeta")


@pytest.fixture(scope="module")
def clip(work: Path) -> Path:
    """6 frames, 64x36, with an AAC track (so Tags hold two tracks' DURATION)."""
    return videos.make_clip(work / "clip.mp4", n=6, size=(64, 36), audio=True)



def mkv_colour(path: Path) -> dict[str, str]:
    """The video track's Colour element as ``mkvinfo`` prints it: label -> value."""
    out = subprocess.run(["mkvinfo", str(path)], check=True, capture_output=True, text=True).stdout
    block = out.split("+ Video color information", 1)
    if len(block) < 2:
        return {}
    fields: dict[str, str] = {}
    for line in block[1].splitlines()[1:]:
        m = re.match(r"\|(\s+)\+ ([^:]+): (.*)$", line)
        if not m or len(m.group(1)) < 4:  # back at the track level: the Colour element ended
            if m or not line.strip().endswith("mastering metadata"):
                break
            continue
        fields[m.group(2)] = m.group(3)
    return fields


def top_level(path: Path) -> list[str]:
    """Names of the Segment's children in file order (``mkvinfo -a``: every element, wherever it is)."""
    out = subprocess.run(["mkvinfo", "-a", str(path)], check=True, capture_output=True, text=True).stdout
    return [m.group(1) for m in re.finditer(r"^\|\+ ([A-Za-z ]+?)(?: \(|:|$)", out, re.MULTILINE)]


def first_frame_side_data(path: Path) -> dict[str, dict]:
    frames = videos.ffprobe_json(path, "-select_streams", "v", "-read_intervals", "%+#1", "-show_frames")["frames"]
    return {sd["side_data_type"]: sd for sd in frames[0]["side_data_list"]}


def stream_side_data(path: Path) -> dict[str, dict]:
    v = videos.ffprobe_json(path, "-select_streams", "v", "-show_streams")["streams"][0]
    return {sd["side_data_type"]: sd for sd in v.get("side_data_list", [])}


def mediainfo(path: Path, *args: str) -> str:
    return subprocess.run(["mediainfo", *args, str(path)], check=True, capture_output=True, text=True).stdout


def mi_field(text: str, name: str) -> str:
    m = re.search(rf"^{re.escape(name)}\s+: (.*)$", text, re.MULTILINE)
    assert m, f"mediainfo has no {name!r}"
    return m.group(1).strip()


def packets(path: Path) -> list[tuple[str, ...]]:
    p = videos.ffprobe_json(path, "-show_entries", "packet=stream_index,pts,dts,duration,flags")["packets"]
    return [(str(x["stream_index"]), str(x.get("pts")), str(x.get("dts")), str(x.get("duration")), x["flags"])
            for x in p]


SEI_KEYS = {  # mkvinfo label -> (ffprobe SEI key, SEI unit)
    "Red color coordinate x": ("red_x", 50000), "Red color coordinate y": ("red_y", 50000),
    "Green color coordinate x": ("green_x", 50000), "Green color coordinate y": ("green_y", 50000),
    "Blue color coordinate x": ("blue_x", 50000), "Blue color coordinate y": ("blue_y", 50000),
    "White color coordinate x": ("white_point_x", 50000), "White color coordinate y": ("white_point_y", 50000),
    "Maximum luminance": ("max_luminance", 10000), "Minimum luminance": ("min_luminance", 10000),
}


def check_colour_equals_sei(path: Path, signalled: tuple[int, int]) -> dict[str, str]:
    """The Colour element has the fixed codes, the signalled MaxCLL/MaxFALL and exactly the SEI's mastering display."""
    col = mkv_colour(path)
    assert (col["Color matrix coefficients"], col["Color range"], col["Color transfer"], col["Color primaries"]) == (
        "9", "1", "16", "9")
    assert (col["Horizontal chroma siting"], col["Vertical chroma siting"]) == ("1", "2")
    assert (int(col["Maximum content light"]), int(col["Maximum frame light"])) == signalled
    sei = first_frame_side_data(path)
    md, cll = sei["Mastering display metadata"], sei["Content light level metadata"]
    assert (cll["max_content"], cll["max_average"]) == signalled
    for label, (key, unit) in SEI_KEYS.items():
        in_sei = Fraction(md[key])
        # Matroska stores floats: they must round back to the SEI's integer units exactly
        assert round(float(col[label]) * unit) == in_sei * unit, (label, col[label], md[key])
        assert float(col[label]) == pytest.approx(float(in_sei), rel=1e-6, abs=1e-9), label
    # FFmpeg's Matroska demuxer turns the Colour element into stream side data: a second reader of the container
    st = stream_side_data(path)
    if signalled != (0, 0):
        assert (st["Content light level metadata"]["max_content"],
                st["Content light level metadata"]["max_average"]) == signalled
    else:  # FFmpeg exports MaxCLL / MaxFALL only when both are known (non-zero)
        assert "Content light level metadata" not in st
    smd = st["Mastering display metadata"]
    for key in ("red_x", "green_y", "blue_x", "white_point_y", "max_luminance", "min_luminance"):
        assert float(Fraction(smd[key])) == pytest.approx(float(Fraction(md[key])), rel=1e-6), key
    return col


# ------------------------------------------------------------------------ tests


def test_colour_properties_are_the_sei_numbers() -> None:
    """The property values mkvpropedit gets are the SEI integers (0.00002 / 0.0001 units) written as decimals."""
    props = dict(mkvcolour.colour_properties("bt2020", 4000, 0.005, (1234, 0)))
    assert set(props) == set(mkvcolour.PROPERTY_NAMES)
    assert props["chromaticity-coordinates-red-x"] == "0.70800"
    assert props["chromaticity-coordinates-green-y"] == "0.79700"
    assert props["white-coordinates-x"] == "0.31270" and props["max-luminance"] == "4000.0000"
    assert props["min-luminance"] == "0.0050"
    assert (props["max-content-light"], props["max-frame-light"]) == ("1234", "0")
    assert (props["color-primaries"], props["color-transfer-characteristics"], props["color-matrix-coefficients"],
            props["color-range"]) == ("9", "16", "9", "1")


def test_mkv_measured_cll_in_container_equals_sei(work: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, js = work / "measured.mkv", work / "measured.json"
    code, stdout, err = run_cli(["convert", clip, out, *FAST, "--cll", "measure", "--json", js], capsys)
    assert code == 0, err
    assert "warning" not in err
    assert "HEVC SEI and Matroska Colour element" in " ".join(stdout.split())
    summary = json.loads(js.read_text())
    assert summary["container_hdr10_metadata"] is True
    signalled = (summary["light_level"]["signalled"]["max_cll"], summary["light_level"]["signalled"]["max_fall"])
    assert signalled[0] > 203  # the baseline puts SDR white at 203 cd/m²: real, non-zero values
    check_colour_equals_sei(out, signalled)
    # Tracks stayed before the clusters (the tags moved behind them), so the file is still streamable
    order = top_level(out)
    assert order.index("Tracks") < order.index("Cluster") < order.index("Tags"), order
    full = mediainfo(out, "--Full")
    assert mi_field(full, "IsStreamable") == "Yes"
    assert mi_field(full, "MasteringDisplay_ColorPrimaries_Source") == "Container / Stream"
    assert mi_field(full, "MasteringDisplay_Luminance_Source") == "Container / Stream"
    assert "Container" in mi_field(full, "MaxCLL_Source") and "Container" in mi_field(full, "MaxFALL_Source")
    mi = mediainfo(out)
    assert mi_field(mi, "Mastering display color primaries") == "Display P3"
    assert mi_field(mi, "Mastering display luminance") == "min: 0.0001 cd/m2, max: 1000 cd/m2"
    assert mi_field(mi, "Maximum Content Light Level").split()[0] == str(signalled[0])
    assert mi_field(mi, "Maximum Frame-Average Light Level").split()[0] == str(signalled[1])
    # the tags FFmpeg wrote survive the move (per-track DURATION, the global ENCODER)
    fmt = videos.ffprobe_json(out, "-show_format", "-show_streams")
    assert "ENCODER" in fmt["format"]["tags"]
    assert all("DURATION" in s.get("tags", {}) for s in fmt["streams"])


def test_mkv_bt2020_mastering_unknown_cll(work: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--mastering bt2020 --peak-nits 4000 --min-nits 0.005, --cll unknown: 0/0 in the SEI and in the container."""
    out = work / "bt2020.mkv"
    code, _, err = run_cli(["convert", clip, out, *FAST, "--mastering", "bt2020", "--peak-nits", "4000",
                            "--min-nits", "0.005", "--no-audio", "-q"], capsys)
    assert code == 0, err
    col = check_colour_equals_sei(out, (0, 0))
    assert (col["Red color coordinate x"], col["Green color coordinate y"]) == ("0.708", "0.797")
    assert mi_field(mediainfo(out), "Mastering display color primaries") == "BT.2020"


def test_write_colour_keeps_tracks_in_front_with_chapters_and_tags(work: Path) -> None:
    """FFmpeg puts Chapters and Tags right after Tracks: they are saved, removed and written back, so Tracks grows
    in place; chapters, the title tag and every packet survive."""
    src = videos.make_hdr10_clip(work / "hevc.mkv", n=3, size=(32, 24))
    meta = work / "chapters.txt"
    meta.write_text(";FFMETADATA1\ntitle=A title\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=40\ntitle=One\n"
                    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=40\nEND=120\ntitle=Two\n")
    path = work / "chapters.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-i", str(meta), "-map", "0", "-map_metadata", "1",
                    "-map_chapters", "1", "-c", "copy", str(path)], check=True)
    order = top_level(path)
    assert order.index("Tracks") + 1 == order.index("Chapters") < order.index("Tags") < order.index("Cluster")
    before = (packets(path), videos.ffprobe_json(path, "-show_chapters", "-show_format"))
    mkvcolour.write_colour(path, mkvcolour.colour_properties("p3", 1000, 0.0001, (0, 0)))
    order = top_level(path)
    assert order.index("Tracks") < order.index("Cluster") and "Chapters" in order and "Tags" in order, order
    assert mkv_colour(path)["Maximum luminance"] == "1000"
    after = (packets(path), videos.ffprobe_json(path, "-show_chapters", "-show_format"))
    assert after[0] == before[0]
    assert [(c["start_time"], c["end_time"], c["tags"]["title"]) for c in after[1]["chapters"]] == [
        (c["start_time"], c["end_time"], c["tags"]["title"]) for c in before[1]["chapters"]]
    assert after[1]["format"]["tags"]["title"] == "A title"


def _bin_with(tmp: Path, tools: dict[str, str | None]) -> str:
    """A PATH holding only ``tools``: name -> real tool to link, or the text of a fake shell script."""
    tmp.mkdir(parents=True, exist_ok=True)
    for name, what in tools.items():
        dst = tmp / name
        if what is None:
            real = shutil.which(name)
            assert real
            dst.symlink_to(real)
        else:
            dst.write_text(what)
            dst.chmod(0o755)
    return str(tmp)


def _convert_subprocess(args: list[object], path_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path_env}
    return subprocess.run([sys.executable, "-m", "sdr2hdr", "convert", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300, cwd=Path(__file__).resolve().parents[1], check=False)


def test_missing_mkvpropedit_one_warning_sei_only(work: Path, clip: Path) -> None:
    """PATH without mkvpropedit: one warning line, exit 0, a valid HDR10 file (SEI) without the container metadata,
    and the very same packets as with it."""
    bin_dir = _bin_with(work / "bin-no-propedit", {"mkvextract": None})
    out, js = work / "sei_only.mkv", work / "sei_only.json"
    res = _convert_subprocess([clip, out, *FAST, "--cll", "measure", "--json", js, "-q"], bin_dir)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: mkvpropedit (MKVToolNix) not found"), res.stderr
    summary = json.loads(js.read_text())
    assert summary["container_hdr10_metadata"] is False
    assert summary["warnings"] == [lines[0].removeprefix("warning: ")]
    assert not [p for p in work.iterdir() if ".partial" in p.name]
    col = mkv_colour(out)
    assert col["Color transfer"] == "16" and "Maximum content light" not in col and "Maximum luminance" not in col
    sei = first_frame_side_data(out)
    signalled = (summary["light_level"]["signalled"]["max_cll"], summary["light_level"]["signalled"]["max_fall"])
    cll = sei["Content light level metadata"]
    assert (cll["max_content"], cll["max_average"]) == signalled
    assert sei["Mastering display metadata"]["max_luminance"] == "10000000/10000"
    assert "SMPTE ST 2086, HDR10 compatible" in mediainfo(out)
    # mkvpropedit only adds header elements: the same conversion with it has identical packets and timestamps
    with_tools = work / "with_tools.mkv"
    res2 = _convert_subprocess([clip, with_tools, *FAST, "--cll", "measure", "-q"], os.environ["PATH"])
    assert res2.returncode == 0 and res2.stderr == "", res2.stderr
    assert packets(with_tools) == packets(out)
    assert "Maximum content light" in mkv_colour(with_tools)


def test_mkvpropedit_failure_one_line_nothing_left(work: Path, clip: Path) -> None:
    """An mkvpropedit that fails while editing: one error line, exit 2, no partial file, no output."""
    names = "\\n".join(f"{n} | UI | fake" for n in mkvcolour.PROPERTY_NAMES)
    fake = (f'#!/bin/sh\nif [ "$1" = "--list-property-names" ]; then printf "{names}\\n"; exit 0; fi\n'
            'echo "Error: simulated failure"; exit 2\n')
    bin_dir = _bin_with(work / "bin-broken", {"mkvpropedit": fake, "mkvextract": None})
    out = work / "broken.mkv"
    res = _convert_subprocess([clip, out, *FAST, "-q"], bin_dir)
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines() == [res.stderr.strip()], res.stderr
    assert res.stderr.startswith("error: mkvpropedit could not add"), res.stderr
    assert "simulated failure" in res.stderr
    assert not out.exists() and not [p for p in work.iterdir() if ".partial" in p.name]


def test_mp4_has_no_container_step(work: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """MP4 / MOV: the HDR10 metadata is in the SEI only (no mdcv / clli boxes: README, known limits); no warning."""
    out, js = work / "out.mp4", work / "out.json"
    code, _, err = run_cli(["convert", clip, out, *FAST, "--json", js, "-q"], capsys)
    assert code == 0 and err == "", err
    assert json.loads(js.read_text())["container_hdr10_metadata"] is False
    assert "Mastering display metadata" in first_frame_side_data(out)
