"""Segmented conversions (``sdr2hdr.segments``): the plan, the join, resume, workers.

Real conversions on small clips made here (64x48, a keyframe every 12 frames,
so ``--segment-seconds 0.5`` cuts 40 frames at 24 fps into 4 segments), the
analytic ``bt2408-x2`` model, ``--preset ultrafast``, CPU only. Bit-for-bit
comparisons use ``--x265-params lossless=1``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from tests import videos
from tests.helpers import run_convert
from sdr2hdr.segments.plan import Scan, make_plan, scan
from sdr2hdr.segments.workdir import work_path
from sdr2hdr.video.probe import probe

KEYINT = {"x264-params": "keyint=12:min-keyint=12:scenecut=0"}
FAST = {"model": "bt2408-x2", "preset": "ultrafast"}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("segments")


@pytest.fixture(scope="module")
def clip(work: Path) -> Path:
    """40 frames at 24 fps with audio, a keyframe every 12 frames."""
    return videos.make_clip(work / "in.mp4", n=40, size=(64, 48), audio=True, options=KEYINT)


@pytest.fixture(scope="module")
def vfr_clip(work: Path) -> Path:
    """30 frames at irregular times (ms), with audio, keyframes every 12 frames."""
    pts = [i * 40 + (i % 3) * 7 for i in range(30)]
    return videos.make_clip(work / "vfr.mkv", n=30, size=(64, 48), pts=pts, time_base=Fraction(1, 1000), audio=True,
                            options=KEYINT)


def frames_info(path: Path) -> list[tuple[float, float]]:
    """(presentation time, duration) in seconds of every video frame (from its packet), by ffprobe."""
    fl = videos.ffprobe_json(path, "-select_streams", "v", "-show_frames")["frames"]
    pk = videos.ffprobe_json(path, "-select_streams", "v", "-show_packets")["packets"]
    times = sorted((float(q["pts_time"]), float(q["duration_time"])) for q in pk)
    assert [t for t, _ in times] == [float(f["pts_time"]) for f in fl]
    return times


def side_data(path: Path) -> list[dict]:
    f = videos.ffprobe_json(path, "-select_streams", "v", "-show_frames", "-read_intervals", "%+#1")["frames"][0]
    return sorted((sd for sd in f["side_data_list"] if "light" in sd["side_data_type"] or "Mastering" in sd["side_data_type"]),
                  key=lambda sd: sd["side_data_type"])


def stream_summary(path: Path) -> list[tuple[str, str]]:
    return [(s["codec_type"], s["codec_name"]) for s in videos.ffprobe_json(path, "-show_streams")["streams"]]


def duration(path: Path) -> float:
    return float(videos.ffprobe_json(path, "-show_format")["format"]["duration"])


# ------------------------------------------------------------------ the plan


def test_plan_cuts_at_keyframes_after_the_segment_length() -> None:
    found = Scan(pts=list(range(0, 100)), keyframes=[0, 10, 20, 25, 50, 90])
    segs = make_plan(found, Fraction(1, 10), 2.0)  # 20 ticks
    assert [(s.first_frame, s.frames, s.start_pts, s.end_pts) for s in segs] == [
        (0, 20, None, 20), (20, 30, 20, 50), (50, 40, 50, 90), (90, 10, 90, None)]
    assert len(make_plan(found, Fraction(1, 10), 100.0)) == 1  # a short clip is one segment
    assert len(make_plan(Scan(list(range(10)), [0, 5], problem="repeated video timestamps"), Fraction(1, 10), 0.1)) == 1


def test_scan_finds_the_keyframes(clip: Path) -> None:
    info = probe(clip)
    found = scan(clip, info.stream_index)
    assert len(found.pts) == 40 and found.problem is None
    assert [found.pts.index(k) for k in found.keyframes] == [0, 12, 24, 36]
    assert [s.frames for s in make_plan(found, info.time_base, 0.5)] == [12, 12, 12, 4]


# ------------------------------------------------------- segmented == one pass


LOSSLESS = dict(FAST, x265_extra="lossless=1", cll="measure")


@pytest.fixture(scope="module")
def one_pass(work: Path, clip: Path) -> object:
    """The one-segment (one-pass) lossless conversion of ``clip`` into one.mkv: the reference."""
    return run_convert(clip, work / "one.mkv", segment_seconds=1000, **LOSSLESS)


def test_segmented_equals_one_pass_bit_for_bit_lossless(work: Path, clip: Path, one_pass: object) -> None:
    """Lossless: the decoded frames of a 4-segment run equal a one-segment run's; MaxCLL/MaxFALL (measured)
    and the HDR10 metadata are the whole file's; timestamps, duration and audio are kept."""
    opts, one = LOSSLESS, one_pass
    seg = run_convert(clip, work / "seg.mkv", segment_seconds=0.5, **opts)
    assert (one.segments_total, seg.segments_total, seg.segments_converted, seg.segments_reused) == (1, 4, 4, 0)
    y1, c1 = videos.decode_hdr10_planes(work / "one.mkv")
    y2, c2 = videos.decode_hdr10_planes(work / "seg.mkv")
    assert y1.shape[0] == 40 and torch.equal(y1, y2) and torch.equal(c1, c2)
    assert (seg.max_cll, seg.max_fall, seg.signalled_cll) == (one.max_cll, one.max_fall, one.signalled_cll)
    assert seg.signalled_cll != (0, 0)
    assert side_data(work / "seg.mkv") == side_data(work / "one.mkv")
    assert frames_info(work / "seg.mkv") == frames_info(work / "one.mkv")
    assert stream_summary(work / "seg.mkv") == stream_summary(work / "one.mkv") == [("video", "hevc"), ("audio", "aac")]
    assert duration(work / "seg.mkv") == duration(work / "one.mkv")
    assert not work_path(work / "seg.mkv").exists()  # removed on success
    assert not [p for p in work.iterdir() if ".partial" in p.name]


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_segmented_default_crf_vfr_keeps_timestamps_audio_metadata(work: Path, vfr_clip: Path, ext: str) -> None:
    """Default CRF, variable frame rate: frame count, every timestamp and duration, the duration, audio and the
    HDR10 metadata equal the one-pass run's (MP4: B-frame decode timestamps stay increasing across the joins)."""
    one = run_convert(vfr_clip, work / f"vfr_one.{ext}", segment_seconds=1000, **FAST)
    seg = run_convert(vfr_clip, work / f"vfr_seg.{ext}", segment_seconds=0.4, **FAST)
    assert seg.segments_total == 3 and seg.frames == one.frames == 30
    a, b = work / f"vfr_one.{ext}", work / f"vfr_seg.{ext}"
    assert frames_info(b) == frames_info(a)
    assert [t for t, _ in frames_info(b)] == pytest.approx([(i * 40 + (i % 3) * 7) / 1000 for i in range(30)], abs=1e-6)
    assert duration(b) == pytest.approx(duration(a), abs=1e-6)
    assert stream_summary(b) == stream_summary(a)
    assert side_data(b) == side_data(a)
    assert seg.video_seconds == pytest.approx(one.video_seconds, abs=1e-9)
    v = videos.ffprobe_json(b, "-show_streams", "-select_streams", "v")["streams"][0]
    assert (v["color_transfer"], v["color_primaries"], v["profile"]) == ("smpte2084", "bt2020", "Main 10")
    if ext == "mp4":
        assert v["codec_tag_string"] == "hvc1"


# ------------------------------------------------------------------ resume


def _cli(*args: object, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sdr2hdr", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def _manifest(work_dir: Path) -> dict | None:
    try:
        return json.loads((work_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def _start_until_done(tmp_path: Path, args: list[object], wd: Path, segments: int) -> subprocess.Popen:
    """Start ``sdr2hdr ARGS`` in ``tmp_path`` and return once its manifest shows ``segments`` done (still running)."""
    proc = subprocess.Popen([sys.executable, "-m", "sdr2hdr", *map(str, args)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline:
        m = _manifest(wd)
        if m and sum(s["status"] == "done" for s in m["segments"]) >= segments:
            return proc
        if proc.poll() is not None:
            raise AssertionError(proc.communicate())
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no {segments} finished segments within 240 s")


@pytest.fixture(scope="module")
def weights(work: Path) -> Path:
    """A seeded random JSInet x2 (slow enough on CPU to be killed mid-conversion; tests only)."""
    from sdr2hdr.models import JSInet
    from sdr2hdr.zoo import save_weights

    torch.manual_seed(0)
    path = work / "random-jsinet-x2.safetensors"
    save_weights(JSInet(scale=2), path, architecture="jsinet", scale=2, variant="jsinet", recipe="random (tests only)")
    return path


def test_sigkill_then_rerun_reuses_finished_segments(tmp_path: Path, weights: Path) -> None:
    """SIGKILL once two segments are done (polling the manifest); the same command again reuses them (the JSON
    summary says how many), redoes the rest, and the output equals an uninterrupted run's, bit for bit (lossless)."""
    src = videos.make_clip(tmp_path / "in.mp4", n=72, size=(64, 48), audio=True, options=KEYINT)  # 6 segments
    args = ["convert", "in.mp4", "out.mkv", "--model", weights, "--preset", "ultrafast", "--x265-params", "lossless=1",
            "--segment-seconds", "0.5", "--precision", "fp32", "--workers", "1", "-q"]
    wd = work_path(tmp_path / "out.mkv")
    proc = _start_until_done(tmp_path, args, wd, 2)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    done = sum(s["status"] == "done" for s in _manifest(wd)["segments"])
    assert 2 <= done < 6 and not (tmp_path / "out.mkv").exists()
    r = _cli(*args, "--json", "-", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    seg = json.loads(r.stdout)["segments"]
    assert seg == {"total": 6, "reused": done, "converted": 6 - done, "workers": 1}
    assert not wd.exists() and not [p for p in tmp_path.iterdir() if ".partial" in p.name]
    ref = run_convert(src, tmp_path / "ref.mkv", model=str(weights), preset="ultrafast", x265_extra="lossless=1",
                      segment_seconds=1000, precision="fp32")
    assert ref.segments_total == 1
    y1, c1 = videos.decode_hdr10_planes(tmp_path / "ref.mkv")
    y2, c2 = videos.decode_hdr10_planes(tmp_path / "out.mkv")
    assert torch.equal(y1, y2) and torch.equal(c1, c2)
    assert frames_info(tmp_path / "out.mkv") == frames_info(tmp_path / "ref.mkv")


def test_sigterm_keeps_finished_segments_one_line_no_partial_file(tmp_path: Path, weights: Path) -> None:
    """SIGTERM after a segment is done: exit 143 with one line, the segment being written is deleted, the finished
    ones and the manifest stay for the next run, and no output or partial file appears beside the target."""
    videos.make_clip(tmp_path / "in.mp4", n=36, size=(64, 48), options=KEYINT)
    wd = work_path(tmp_path / "out.mkv")
    proc = subprocess.Popen([sys.executable, "-m", "sdr2hdr", "convert", "in.mp4", "out.mkv", "--model", str(weights),
                             "--preset", "ultrafast", "--segment-seconds", "0.5", "--precision", "fp32", "-q"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            m = _manifest(wd)
            if m and any(s["status"] == "done" for s in m["segments"]):
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143 and err == "error: terminated (SIGTERM)\n", err
    m = _manifest(wd)
    done = [s for s in m["segments"] if s["status"] == "done"]
    assert 1 <= len(done) < 3
    assert sorted(p.name for p in wd.iterdir()) == sorted(["lock", "manifest.json", *(s["file"] for s in done)])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.mp4", wd.name])


def test_changed_option_model_or_input_refused_restart_starts_over(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A kept work folder is reused by the same command (all segments, its plan without scanning the input again),
    refused with one line when an option, the model or the input changed, and ``--restart`` converts anew;
    ``--no-resume`` uses no work folder."""
    import sdr2hdr.segments.run as run_mod
    src = videos.make_clip(tmp_path / "in.mp4", n=40, size=(64, 48), options=KEYINT)
    out = tmp_path / "out.mkv"
    base = ["convert", src, out, "--preset", "ultrafast", "--segment-seconds", "0.5", "--keep-work", "--overwrite",
            "--workers", "1", "--json", "-"]
    wd = work_path(out)

    def segments(*extra: object) -> dict:
        code, stdout, err = videos.run_cli([*base, *extra], capsys)
        assert code == 0, err
        return json.loads(stdout)["segments"]

    def refused(*extra: object) -> str:
        code, _, err = videos.run_cli([*base, *extra], capsys)
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
        assert "--restart" in err
        return err

    assert segments("--model", "bt2408-x2") == {"total": 4, "reused": 0, "converted": 4, "workers": 1}
    assert wd.is_dir() and len(list(wd.glob("seg-*.mp4"))) == 4
    with monkeypatch.context() as mp:
        mp.setattr(run_mod, "scan", lambda *a: pytest.fail("the input was scanned again"))
        assert segments("--model", "bt2408-x2") == {"total": 4, "reused": 4, "converted": 0, "workers": 1}
    assert "options changed: crf 16.0 -> 20.0" in refused("--model", "bt2408-x2", "--crf", "20")
    assert "the model changed (bt2408-x2 -> inverse-reinhard-x2)" in refused("--model", "inverse-reinhard-x2")
    videos.make_clip(src, n=40, size=(64, 48), options={"x264-params": "keyint=12:min-keyint=12:scenecut=0:crf=30"})
    assert "the input changed" in refused("--model", "bt2408-x2")
    assert len(list(wd.glob("seg-*.mp4"))) == 4  # a refusal leaves the work folder as it was
    assert segments("--model", "bt2408-x2", "--restart") == {"total": 4, "reused": 0, "converted": 4, "workers": 1}
    assert segments("--model", "bt2408-x2", "--crf", "20", "--no-resume")["total"] == 1  # one pass
    code, stdout, err = videos.run_cli(["convert", src, out, "--preset", "ultrafast", "--segment-seconds", "0.5",
                                        "--overwrite", "--model", "bt2408-x2"], capsys)
    assert code == 0, err
    assert "4: 4 reused, 0 converted" in stdout, stdout
    assert not wd.exists()  # removed after success without --keep-work


# ------------------------------------------------------------------ scale out


def test_two_worker_processes_on_cpu(work: Path, clip: Path, one_pass: object) -> None:
    """``--workers 2 --threads 1``: two spawned processes convert the segments; same frames, bit for bit."""
    r = _cli("convert", clip, work / "w2.mkv", "--model", "bt2408-x2", "--preset", "ultrafast", "--x265-params",
             "lossless=1", "--cll", "measure", "--segment-seconds", "0.5", "--workers", "2", "--threads", "1",
             "--json", "-", cwd=work)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["segments"] == {"total": 4, "reused": 0, "converted": 4, "workers": 2}
    assert "converting: 40/40 frames" in r.stderr and "segments 4/4, done in" in r.stderr  # one display, all workers
    assert doc["light_level"]["signalled"] == {"max_cll": one_pass.signalled_cll[0], "max_fall": one_pass.signalled_cll[1]}
    y1, c1 = videos.decode_hdr10_planes(work / "one.mkv")
    y2, c2 = videos.decode_hdr10_planes(work / "w2.mkv")
    assert torch.equal(y1, y2) and torch.equal(c1, c2)
    assert frames_info(work / "w2.mkv") == frames_info(work / "one.mkv")
    assert not work_path(work / "w2.mkv").exists()


def _ray() -> None:
    pytest.importorskip("ray", reason='Ray is not installed (pip install "sdr2hdr[ray]"; CI installs it)')


def test_ray_local_cluster_converts_the_same_frames(work: Path, clip: Path, one_pass: object) -> None:
    """``--ray`` without an address starts a local Ray (this machine's CPUs, one per task with --threads 1)."""
    _ray()
    r = _cli("convert", clip, work / "ray.mkv", "--model", "bt2408-x2", "--preset", "ultrafast", "--x265-params",
             "lossless=1", "--cll", "measure", "--segment-seconds", "0.5", "--ray", "--threads", "1", "--json", "-",
             cwd=work)
    assert r.returncode == 0, r.stderr
    assert {k: v for k, v in json.loads(r.stdout)["segments"].items() if k != "workers"} == {
        "total": 4, "reused": 0, "converted": 4}
    assert "converting: 40/40 frames" in r.stderr and "segments 4/4, done in" in r.stderr
    y1, c1 = videos.decode_hdr10_planes(work / "one.mkv")
    y2, c2 = videos.decode_hdr10_planes(work / "ray.mkv")
    assert torch.equal(y1, y2) and torch.equal(c1, c2)
    assert frames_info(work / "ray.mkv") == frames_info(work / "one.mkv")


def _ray_task_pids() -> list[int]:
    """Processes running a segment task right now (Ray titles them ``ray::ray_segment``)."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if (p / "cmdline").read_bytes().startswith(b"ray::ray_segment"):
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


def test_ray_worker_killed_mid_task_is_retried(tmp_path: Path, weights: Path) -> None:
    """SIGKILL the Ray worker process running a segment: Ray retries the task and the output is complete and equal
    to a one-pass run, bit for bit (lossless)."""
    _ray()
    src = videos.make_clip(tmp_path / "in.mp4", n=36, size=(64, 48), options=KEYINT)  # 3 segments
    args = ["convert", "in.mp4", "out.mkv", "--model", weights, "--preset", "ultrafast", "--x265-params", "lossless=1",
            "--segment-seconds", "0.5", "--precision", "fp32", "--ray", "--threads", "1", "-q"]
    proc = subprocess.Popen([sys.executable, "-m", "sdr2hdr", *map(str, args)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    try:
        deadline = time.time() + 240
        while killed is None and time.time() < deadline and proc.poll() is None:
            pids = _ray_task_pids()
            if pids:
                time.sleep(0.3)  # inside the segment
                if pids[0] in _ray_task_pids():
                    import os

                    os.kill(pids[0], signal.SIGKILL)
                    killed = pids[0]
            time.sleep(0.05)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, "no Ray task process was seen"
    assert proc.returncode == 0, err
    ref = run_convert(src, tmp_path / "ref.mkv", model=str(weights), preset="ultrafast", x265_extra="lossless=1",
                      segment_seconds=1000, precision="fp32")
    y1, c1 = videos.decode_hdr10_planes(tmp_path / "ref.mkv")
    y2, c2 = videos.decode_hdr10_planes(tmp_path / "out.mkv")
    assert ref.frames == 36 and torch.equal(y1, y2) and torch.equal(c1, c2)


def test_manifest_says_what_changed_and_nodes_check_shared_storage(tmp_path: Path) -> None:
    """``what_changed`` names the first difference; a Ray node's check names what it cannot read or write."""
    from sdr2hdr.segments import manifest as mf
    from sdr2hdr.segments.ray_tasks import check_node

    src = tmp_path / "in.bin"
    src.write_bytes(b"x" * 3_000_000)
    seg = {"index": 0, "first_frame": 0, "frames": 5, "start_pts": None, "end_pts": None}
    old = mf.Manifest(mf.source_identity(src), {"name": "m", "sha256": "a"}, {"crf": 16.0}, "1/25", [seg])
    mf.save(tmp_path / "manifest.json", old)
    assert mf.load(tmp_path / "manifest.json") == old and mf.what_changed(old, old) is None
    assert mf.what_changed(old, mf.Manifest(old.source, old.model, {"crf": 18.0}, "1/25", [seg])) == \
        "options changed: crf 16.0 -> 18.0"
    assert mf.what_changed(old, mf.Manifest(old.source, {"name": "m", "sha256": "b"}, old.options, "1/25", [seg])) == \
        "the model's weights changed"
    assert mf.what_changed(old, mf.Manifest(old.source, old.model, old.options, "1/25", [{**seg, "frames": 4}])) == \
        "the segment plan changed"
    ident = mf.source_identity(src)
    with open(src, "r+b") as f:  # same size, last MiB changed
        f.seek(2_500_000)
        f.write(b"y")
    assert mf.what_changed(old, mf.Manifest(mf.source_identity(src), old.model, old.options, "1/25", [seg])) == \
        "the input changed (content)"
    assert check_node(str(src), mf.source_identity(src), str(tmp_path)) is None
    assert "sees a different file" in check_node(str(src), ident, str(tmp_path))
    assert "cannot read the input" in check_node(str(tmp_path / "missing.mkv"), ident, str(tmp_path))
    assert "cannot write in the work folder" in check_node(str(src), mf.source_identity(src), str(tmp_path / "no"))
    from sdr2hdr.segments.ray_tasks import unreachable

    import socket

    with socket.socket() as free:  # a port nothing listens on: refused at once, not after Ray's minutes of retries
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    assert unreachable(f"127.0.0.1:{port}") and unreachable(f"ray://127.0.0.1:{port}")
    assert unreachable("auto") is None
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(Exception, match="damaged.*--restart"):
        mf.load(tmp_path / "manifest.json")


def test_no_resume_with_workers_uses_its_own_temporary_folder(work: Path, clip: Path) -> None:
    """``--no-resume --workers 2`` converts in segments in a temporary folder of its own, removed at the end, and
    leaves the resumable work folder of the same target as it was."""
    out = work / "nr.mkv"
    run_convert(clip, out, keep_work=True, segment_seconds=0.5, **FAST)
    kept = sorted((p.name, p.stat().st_mtime_ns) for p in work_path(out).iterdir())
    s = run_convert(clip, out, resume=False, workers=2, threads=1, overwrite=True, segment_seconds=0.5, crf=20, **FAST)
    assert (s.segments_total, s.segments_reused, s.segments_converted, s.workers) == (4, 0, 4, 2)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in work_path(out).iterdir()) == kept
    assert not [p for p in work.iterdir() if ".sdr2hdr-" in p.name]


def test_work_folder_is_locked_while_in_use(tmp_path: Path) -> None:
    """A second conversion into the same target is refused with one line while the first holds the work folder."""
    from sdr2hdr.errors import OutputError
    from sdr2hdr.segments.workdir import WorkDir

    target = tmp_path / "out.mkv"
    with WorkDir(target) as first:
        with pytest.raises(OutputError, match="another sdr2hdr process is converting into"):
            WorkDir(target).__enter__()
        assert first.path.is_dir()
    with WorkDir(target) as again:  # released
        again.remove()
    assert not work_path(target).exists()


def _children(pid: int) -> list[int]:
    """PIDs of ``pid``'s child processes running Python's multiprocessing spawn (the workers)."""
    kids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == pid and b"spawn_main" in (p / "cmdline").read_bytes():
                    kids.append(int(p.name))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def test_a_killed_local_worker_is_one_line_and_the_rerun_resumes(tmp_path: Path, weights: Path) -> None:
    """SIGKILL one of two worker processes once a segment is done: one line naming the dead worker, the finished
    segments stay, and the same command again reuses them and completes."""
    videos.make_clip(tmp_path / "in.mp4", n=120, size=(64, 48), options=KEYINT)  # 10 segments
    args = ["convert", "in.mp4", "out.mkv", "--model", weights, "--preset", "ultrafast", "--segment-seconds", "0.5",
            "--precision", "fp32", "--workers", "2", "--threads", "1", "-q"]
    wd = work_path(tmp_path / "out.mkv")
    proc = _start_until_done(tmp_path, args, wd, 1)
    try:
        kids = _children(proc.pid)
        assert len(kids) == 2
        import os

        os.kill(kids[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2 and err.count("\n") == 1 and "died (exit code -9)" in err, err
    done = sum(s["status"] == "done" for s in _manifest(wd)["segments"])
    assert 1 <= done < 10 and not [p for p in wd.iterdir() if ".partial-" in p.name]  # the dead one's removed too
    r = _cli(*args, "--json", "-", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["segments"] == {"total": 10, "reused": done, "converted": 10 - done, "workers": 2}
    assert len(videos.decode_hdr10_planes(tmp_path / "out.mkv")[0]) == 120
