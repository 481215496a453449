"""``sdr2hdr convert`` (and ``sample`` / ``eval``) under signals, a full disk, umasks, bad x265
parameters, model-scale defaults, non-terminal progress and ``--json``.

Clips are tiny and generated here; the analytic ``bt2408`` baselines need no weights.
Signal and progress tests run the real CLI in a subprocess; the rest call
:func:`sdr2hdr.cli.main` in-process.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import av.error
import pytest
import torch

from tests import videos
from sdr2hdr.summary import Progress
from tests.helpers import run_convert
from tests.videos import run_cli
from sdr2hdr.errors import Sdr2HdrError
from sdr2hdr.models import JSInet
from sdr2hdr.models.baselines import BT2408DirectMapping
from sdr2hdr.video.writer import HDR10Writer
from sdr2hdr.zoo import save_weights, sha256_file


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hardening")


@pytest.fixture(scope="module")
def clip(work: Path) -> Path:
    """4 frames, 32x24."""
    return videos.make_clip(work / "clip.mp4", n=4, size=(32, 24))


@pytest.fixture(scope="module")
def long_clip(work: Path) -> Path:
    """120 frames, 64x36: with --preset placebo it takes long enough to be interrupted mid-way."""
    return videos.make_clip(work / "long.mp4", n=120, size=(64, 36))



def one_error_line(err: str) -> str:
    """The single ``error: ...`` line stderr must consist of."""
    assert err.splitlines() == [err.strip()] and err.startswith("error: ") and "Traceback" not in err, repr(err)
    return err.strip()


def partials(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".partial" in p.name]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def hevc_size(path: Path) -> tuple[int, int]:
    """(width, height) of an HEVC file's video (``probe`` refuses HDR files by design)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "hevc"
        return s.codec_context.width, s.codec_context.height


# ------------------------------------------------------------------ 1. signals


def _default_signals() -> None:
    # The child must start with default dispositions, whatever the test runner inherited (nohup, a
    # background job with SIGINT ignored): only then does it install its handlers.
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)


def _start(args: list[object], cwd: Path) -> subprocess.Popen[str]:
    # preexec_fn: the only way to un-ignore signals in the child (the test process runs no other threads here)
    return subprocess.Popen([sys.executable, "-m", "sdr2hdr", *map(str, args)], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)  # noqa: PLW1509


def _wait_for(proc: subprocess.Popen[str], ready: object, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not ready():  # type: ignore[operator]
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "timed out waiting for the command to get going"
        time.sleep(0.05)


def _signal_mid_run(proc: subprocess.Popen[str], sig: int, ready: object) -> str:
    try:
        _wait_for(proc, ready)
        time.sleep(0.5)  # well inside the run
        assert proc.poll() is None, "finished before the signal: make the input longer"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return err


@pytest.mark.parametrize(
    ("sig", "code", "existing"),
    [(signal.SIGTERM, 143, False), (signal.SIGHUP, 129, True), (signal.SIGINT, 130, False)],
    ids=["SIGTERM", "SIGHUP-overwrite", "SIGINT"],
)
def test_signal_during_convert(tmp_path: Path, long_clip: Path, sig: int, code: int, existing: bool) -> None:
    target = tmp_path / "out.mkv"
    if existing:
        target.write_bytes(b"the old file")
        target.chmod(0o640)
    proc = _start(["convert", long_clip, target.name, "--model", "bt2408-x2", "--preset", "placebo", "-q",
                   *(["--overwrite"] if existing else [])], cwd=tmp_path)
    err = _signal_mid_run(proc, sig, lambda: partials(tmp_path))
    assert proc.returncode == code, err
    line = one_error_line(err)
    assert (line == "error: interrupted") if sig == signal.SIGINT else (signal.Signals(sig).name in line)
    assert partials(tmp_path) == []
    if existing:
        assert target.read_bytes() == b"the old file" and mode(target) == 0o640
    else:
        assert not target.exists()


def test_sigterm_during_sample(tmp_path: Path) -> None:
    proc = _start(["sample", "s.mp4", "--seconds", "600", "--size", "320x180"], cwd=tmp_path)
    err = _signal_mid_run(proc, signal.SIGTERM, lambda: partials(tmp_path))
    assert proc.returncode == 143 and "SIGTERM" in one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_sighup_during_eval(tmp_path: Path) -> None:
    ref = videos.make_hdr10_clip(tmp_path / "ref.mkv", n=60, size=(96, 64))
    proc = _start(["eval", "--prediction", ref, "--reference", ref, "--metrics", "hdrvdp", "-q",
                   "--json", "r.json"], cwd=tmp_path)

    def reading() -> bool:  # the process has the video open: evaluation under way
        try:
            fds = os.listdir(f"/proc/{proc.pid}/fd")
            return any(os.readlink(f"/proc/{proc.pid}/fd/{fd}") == os.path.realpath(ref) for fd in fds)
        except OSError:
            return False

    if not Path(f"/proc/{proc.pid}/fd").is_dir():
        proc.kill()
        proc.communicate()
        pytest.skip("needs /proc to see when the evaluation runs")
    err = _signal_mid_run(proc, signal.SIGHUP, reading)
    assert proc.returncode == 129 and "SIGHUP" in one_error_line(err)
    assert not (tmp_path / "r.json").exists()


# ------------------------------------------------------------------ 2. disk full


def _free_message_ok(line: str, folder: Path) -> None:
    assert "no space left" in line and str(folder) in line and re.search(r"\(\d+(\.\d)? [KMGT]?B free\)", line), line


def _full_disk(monkeypatch: pytest.MonkeyPatch, exc: Exception, after: int = 2) -> None:
    """Make the HDR10 writer's container refuse every packet after the first ``after`` with ``exc``."""

    class FullDisk:
        def __init__(self, out: av.container.OutputContainer) -> None:
            self._out, self._n = out, 0

        def mux(self, pkt: av.Packet) -> None:
            self._n += 1
            if self._n > after:
                raise exc
            self._out.mux(pkt)

        def __getattr__(self, name: str) -> object:
            return getattr(self._out, name)

    init = HDR10Writer.__init__

    def patched(self: HDR10Writer, *a: object, **k: object) -> None:
        init(self, *a, **k)  # type: ignore[arg-type]
        self.out = FullDisk(self.out)  # type: ignore[assignment]

    monkeypatch.setattr(HDR10Writer, "__init__", patched)


@pytest.mark.parametrize("kind", ["pyav", "plain"])
def test_disk_full_injected(tmp_path: Path, clip: Path, kind: str, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.mkv"
    target.write_bytes(b"keep me")
    exc = (av.error.OSError(errno.ENOSPC, "No space left on device", str(target)) if kind == "pyav"
           else OSError(errno.ENOSPC, "No space left on device"))
    _full_disk(monkeypatch, exc)
    code, out, err = run_cli(["convert", clip, target, "--model", "bt2408-x2", "--preset", "ultrafast", "-q",
                              "--overwrite"], capsys)
    assert code == 2 and out == ""
    _free_message_ok(one_error_line(err), tmp_path)
    assert partials(tmp_path) == [] and target.read_bytes() == b"keep me"


def test_disk_full_injected_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from sdr2hdr.video import sample

    def full(path: Path, *a: object, **k: object) -> int:
        Path(path).write_bytes(b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sample, "encode_sdr", full)
    target = tmp_path / "s.mp4"
    target.write_bytes(b"keep me")
    code, _, err = run_cli(["sample", target, "--overwrite", "--seconds", "0.1", "--size", "32x18"], capsys)
    assert code == 2
    _free_message_ok(one_error_line(err), tmp_path)
    assert partials(tmp_path) == [] and target.read_bytes() == b"keep me"


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 12 KiB tmpfs (root and a working ``mount`` only)."""
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", str(folder)], capture_output=True, text=True,
                       check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_disk_full_real_tmpfs(tiny_tmpfs: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = videos.make_clip(work / "disk.mp4", n=24, size=(64, 36))
    target = tiny_tmpfs / "out.mkv"
    target.write_bytes(b"keep me")
    code, _, err = run_cli(["convert", src, target, "--model", "bt2408-x2", "--preset", "ultrafast", "--crf", "0",
                            "-q", "--overwrite"], capsys)
    assert code == 2
    _free_message_ok(one_error_line(err), tiny_tmpfs)
    assert sorted(p.name for p in tiny_tmpfs.iterdir()) == ["out.mkv"] and target.read_bytes() == b"keep me"


# ------------------------------------------------------------------ 3. file modes


@pytest.fixture
def umask() -> Iterator[object]:
    """Set the process umask for one test (and forget the cached one)."""
    from sdr2hdr import outfile

    old = os.umask(0o022)

    def set_umask(value: int) -> None:
        os.umask(value)
        outfile.process_umask.cache_clear()  # read once per process: forget the previous test's

    try:
        yield set_umask
    finally:
        os.umask(old)
        outfile.process_umask.cache_clear()


@pytest.mark.parametrize(("mask", "expect"), [(0o022, 0o644), (0o027, 0o640)])
def test_convert_mode_follows_umask(tmp_path: Path, clip: Path, umask: object, mask: int, expect: int,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    umask(mask)  # type: ignore[operator]
    target = tmp_path / "out.mkv"
    code, _, err = run_cli(["convert", clip, target, "--model", "bt2408-x2", "--preset", "ultrafast", "-q"], capsys)
    assert code == 0, err
    assert mode(target) == expect


def test_convert_overwrite_keeps_mode(tmp_path: Path, clip: Path, umask: object,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    umask(0o022)  # type: ignore[operator]
    target = tmp_path / "out.mkv"
    target.write_bytes(b"old")
    target.chmod(0o640)
    code, _, err = run_cli(["convert", clip, target, "--model", "bt2408-x2", "--preset", "ultrafast", "-q",
                            "--overwrite"], capsys)
    assert code == 0, err
    assert mode(target) == 0o640 and hevc_size(target) == (64, 48)


def test_sample_modes(tmp_path: Path, umask: object, capsys: pytest.CaptureFixture[str]) -> None:
    umask(0o027)  # type: ignore[operator]
    target = tmp_path / "s.mp4"
    args = ["sample", target, "--seconds", "0.1", "--size", "32x18", "--no-audio"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert mode(target) == 0o640
    target.chmod(0o604)
    code, _, err = run_cli([*args, "--overwrite"], capsys)
    assert code == 0, err
    assert mode(target) == 0o604 and partials(tmp_path) == []


# ------------------------------------------------------------------ 4. --x265-params


@pytest.mark.parametrize(
    ("params", "expect"),
    [("bogus-key=1", "x265 has no option 'bogus-key'"),
     ("aq-mode=banana", "aq-mode=banana"),
     ("bframes=-5", "bframe count should be greater than zero"),  # x265's own reason
     ("crf=20", "use --crf"),
     ("preset=slow", "use --preset"),
     ("master_display=G(1,1)", "HDR10 signalling"),
     ("no-sao", "not key=value")],
)
def test_x265_params_refused(tmp_path: Path, clip: Path, params: str, expect: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["convert", clip, tmp_path / "out.mkv", "--model", "bt2408-x2", "-q",
                              "--x265-params", params], capsys)
    assert code == 2 and out == ""
    assert expect in one_error_line(err)
    assert list(tmp_path.iterdir()) == []  # refused before any output existed


def test_x265_params_valid_key_reaches_x265(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.mkv"
    code, _, err = run_cli(["convert", clip, target, "--model", "bt2408-x2", "-q", "--preset", "ultrafast",
                            "--x265-params", "aq-mode=3:psy-rd=1.5"], capsys)
    assert code == 0 and err == "", err
    info = target.read_bytes()  # x265 writes its settings into an SEI message
    assert b"aq-mode=3" in info and b"psy-rd=1.50" in info


# ------------------------------------------------------------------ 5. scale and tile from the model


def test_scale_from_model_cli(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "x4.mkv"
    code, _, err = run_cli(["convert", clip, target, "--model", "bt2408-x4", "--preset", "ultrafast", "-q"], capsys)
    assert code == 0, err
    assert hevc_size(target) == (128, 96)
    code, _, err = run_cli(["convert", clip, tmp_path / "bad.mkv", "--model", "bt2408-x4", "--scale", "2", "-q"],
                           capsys)
    assert code == 2
    line = one_error_line(err)
    assert "x4" in line and "--scale 2" in line and not (tmp_path / "bad.mkv").exists()


def test_scale_from_model_library(tmp_path: Path, clip: Path) -> None:
    s = run_convert(clip, tmp_path / "x4.mkv", model=BT2408DirectMapping(4), preset="ultrafast")
    assert s.scale == 4 and s.output_size == (128, 96)
    with pytest.raises(Sdr2HdrError, match="x4"):
        run_convert(clip, tmp_path / "x.mkv", model=BT2408DirectMapping(4), scale=2)


@pytest.fixture(scope="module")
def tile_clip(work: Path) -> Path:
    """2 frames, 48x48. (With a 16x16 clip, a 32x32 output once failed to mux under load, a packet with a garbage dts: not understood yet.)"""
    return videos.make_clip(work / "tile.mp4", n=2, size=(48, 48))


@pytest.mark.parametrize(("model", "tile", "rf"), [("bt2408-x2", 1, 2), ("jsinet", 8, 34)])
def test_tile_raised_to_receptive_field(tile_clip: Path, tmp_path: Path, model: str, tile: int, rf: int) -> None:
    net: object = JSInet(scale=2) if model == "jsinet" else model
    s = run_convert(tile_clip, tmp_path / "t.mkv", model=net, tile=tile,  # type: ignore[arg-type]
                         preset="ultrafast")
    assert any(f"--tile {tile}" in w and "receptive field" in w and f"using {rf}" in w for w in s.warnings), s.warnings
    assert s.tile == rf  # the raised tile, smaller than the 48x48 frame


# ------------------------------------------------------------------ 6. progress in a pipe


def test_plain_progress_lines_when_not_a_terminal(tmp_path: Path, work: Path) -> None:
    src = videos.make_clip(work / "progress.mp4", n=24, size=(32, 24))
    env = {**os.environ, "SDR2HDR_PROGRESS_INTERVAL": "0.05"}
    env.pop("FORCE_COLOR", None)
    r = subprocess.run([sys.executable, "-m", "sdr2hdr", "convert", str(src), "out.mkv", "--model", "bt2408-x2",
                        "--preset", "slow"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
                       check=False)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert any(re.fullmatch(r"converting: \d+/24 frames, \d+\.\d fps, ETA \d+:\d\d", ln) for ln in lines), r.stderr
    assert re.fullmatch(r"converting: 24/24 frames, \d+\.\d fps, done in \d+:\d\d", lines[-1]), r.stderr
    assert "\x1b" not in r.stderr and "\r" not in r.stderr  # no terminal bar


def test_progress_line_format() -> None:
    from sdr2hdr.cli.progress import PlainProgress, progress_line

    line = progress_line(Progress("convert", 120, 120, 480, 38.7))
    assert line == "converting: 120/480 frames, 3.1 fps, ETA 1:56"
    assert progress_line(Progress("measure", 10, 10, None, 2.0)) == "measuring: 10 frames, 5.0 fps"
    lines: list[str] = []
    t = [0.0]

    class Sink:
        def write(self, s: str) -> None:
            lines.extend(x for x in s.splitlines() if x)

        def flush(self) -> None:
            pass

    p = PlainProgress(Sink(), interval=5, now=lambda: t[0])  # type: ignore[arg-type]
    for i in range(1, 11):
        t[0] = float(i)
        p(Progress("convert", i, i, 10, float(i)))
    p.finish(ok=True)
    assert lines == ["converting: 5/10 frames, 1.0 fps, ETA 0:05", "converting: 10/10 frames, 1.0 fps, ETA 0:00",
                     "converting: 10/10 frames, 1.0 fps, done in 0:10"]


# ------------------------------------------------------------------ 7. --json


def test_json_to_stdout(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.mkv"
    code, out, err = run_cli(["convert", clip, target, "--model", "bt2408-x2", "--preset", "ultrafast",
                              "--json", "-"], capsys)
    assert code == 0, err
    doc = json.loads(out)  # stdout is the JSON document and nothing else
    assert doc["input"] == str(clip) and doc["output"] == str(target)
    assert doc["frames"] == 4 and doc["duration_seconds"] == pytest.approx(4 / 24, abs=1e-3)
    assert doc["wall_seconds"] > 0 and doc["fps"] > 0
    assert doc["model"] == {"name": "bt2408-x2", "sha256": None}
    assert doc["precision"] == "fp32" and doc["precision_reason"]
    assert doc["light_level"]["signalled"] == {"max_cll": 0, "max_fall": 0}
    assert doc["light_level"]["measured"]["max_cll"] > 0
    assert doc["size_bytes"] == target.stat().st_size and doc["warnings"] == []
    assert doc["output_size"] == [64, 48] and doc["scale"] == 2


def test_json_to_file_with_weights_sha256(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "random-jsinet-x2.safetensors"
    save_weights(JSInet(scale=2), weights, architecture="jsinet", scale=2, variant="jsinet", peak_nits=1000,
                 recipe={"note": "random (tests only)"})
    report = tmp_path / "summary.json"
    code, out, err = run_cli(["convert", clip, tmp_path / "out.mp4", "--model", weights, "--preset", "ultrafast",
                              "--cll", "measure", "--json", report, "--fp32"], capsys)
    assert code == 0, err
    assert "MaxCLL" in out  # the human summary is still printed
    doc = json.loads(report.read_text())
    assert doc["model"] == {"name": str(weights), "sha256": sha256_file(weights)}
    measured, signalled = doc["light_level"]["measured"], doc["light_level"]["signalled"]
    assert doc["light_level"]["mode"] == "measure"
    assert signalled == {"max_cll": math.ceil(measured["max_cll"]), "max_fall": math.ceil(measured["max_fall"])}


def test_json_folder_checked_first(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["convert", clip, tmp_path / "out.mkv", "--model", "bt2408-x2", "-q",
                            "--json", tmp_path / "no" / "s.json"], capsys)
    assert code == 2 and "--json" in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_partial_file_is_renamed_on_success_and_deleted_otherwise(tmp_path: Path) -> None:
    """``outfile.partial_file``, the one way every output is written: nothing is left beside the target
    after an error, and a committed file is the target, with the old target replaced only then."""
    from sdr2hdr import outfile

    target = tmp_path / "out.mkv"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with outfile.partial_file(target) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".out.mkv.partial-") and tmp.is_file()
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv"] and target.read_bytes() == b"old"
    with outfile.partial_file(target) as tmp:
        tmp.write_bytes(b"new")
        outfile.commit(tmp, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv"] and target.read_bytes() == b"new"
