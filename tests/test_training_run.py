"""``sdr2hdr train``: a tiny real run, exact resume, stop on SIGTERM, refused checkpoints and input, DDP."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch

from sdr2hdr.errors import InputError, OutputError
from sdr2hdr.training import CHECKPOINT, CHECKPOINT_META, Dist, TrainConfig, TrainingInterrupted, TrainResult, load_checkpoint, train

STILLS = ("openexr-images/ScanLines_Cannon", "polyhaven/assets__sky", "blender/city")


@pytest.fixture(scope="module")
def data_dir(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("data")
    for n in STILLS:
        src = shared / "data" / "stills" / f"{n}.exr"
        if not src.is_file():
            pytest.skip(f"shared still {src} not found")
        (d / src.name).symlink_to(src)
    return d


@pytest.fixture(scope="module")
def tiny_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainResult]:
    """One tiny real JSInet run (24 steps of 4 patches 16x16 -> 32x32), shared by several tests."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    res = train(_cfg(data_dir, out, steps=24, batch_size=4, val_interval=12, ckpt_interval=12, log_interval=4))
    return out, res


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def _cfg(data: Path, out: Path, **kw: object) -> TrainConfig:
    base = dict(data=[str(data)], out=str(out), batch_size=2, hr_patch=32, val_patches=4, val_interval=1000,
                ckpt_interval=1000, log_interval=1, progress=False, stage="jsinet", device="cpu")  # CPU tests stay on CPU on a GPU host
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- real runs


def test_tiny_run_lowers_loss(tiny_run: tuple[Path, TrainResult]) -> None:
    from sdr2hdr.zoo import load_model, read_safetensors

    out, res = tiny_run
    log = _log(out)
    losses = [r["loss"] for r in log if r["event"] == "train"]
    assert len(losses) == 6
    assert losses[-1] < 0.5 * losses[0], losses
    vals = [r for r in log if r["event"] == "val"]
    assert len(vals) == 2 and all(v["psnr"] > 5 for v in vals)
    rec = next(r for r in log if r["event"] == "train")
    assert {"lr", "steps_per_s", "samples_per_s", "data_wait_frac"} <= set(rec)
    for which in ("best", "last"):
        path = out / f"jsinet-x2-{which}.safetensors"
        model = load_model(str(path), scale=2)
        assert model.scale == 2
        _, meta = read_safetensors(path)
        assert meta["variant"] == "jsinet" and meta["architecture"] == "jsinet" and "recipe" in meta and meta["trained_on"]
    assert res.best_psnr["jsinet"] == max(v["psnr"] for v in vals)
    assert res.heldout and json.loads((out / "run.json").read_text())["heldout"] == res.heldout
    assert (out / CHECKPOINT).is_file() and (out / CHECKPOINT_META).is_file()


def test_resume_stage1_matches_uninterrupted(data_dir: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    train(_cfg(data_dir, a, steps=4))
    with pytest.raises(TrainingInterrupted):
        train(_cfg(data_dir, b, steps=4), on_step=lambda st, k, t: k == 2)
    assert load_checkpoint(b)["step"] == 2
    train(_cfg(data_dir, b, resume=True))
    from sdr2hdr.zoo import read_safetensors

    ta, _ = read_safetensors(a / "jsinet-x2-last.safetensors")
    tb, _ = read_safetensors(b / "jsinet-x2-last.safetensors")
    assert all(torch.equal(ta[k], tb[k]) for k in ta)
    ca, cb = load_checkpoint(a), load_checkpoint(b)
    sa, sb = ca["opt_g"]["state"], cb["opt_g"]["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)

    def losses(out: Path) -> dict:
        return {r["step"]: r["loss"] for r in _log(out) if r["event"] == "train"}

    assert losses(a) == losses(b) and len(losses(a)) == 4


def _run_both(data: Path, out: Path, stop_at: tuple[str, int] | None = None, resume: bool = False) -> None:
    def on_step(stage: str, step: int, terms: dict) -> bool:
        return stop_at is not None and (stage, step) == stop_at

    cfg = _cfg(data, out, stage="both", scale=4, steps=1, gan_steps=2, batch_size=3, hr_patch=160, val_patches=2,
               ckpt_interval=1000, resume=resume)
    train(cfg, on_step=on_step)


def test_resume_stage2_matches_uninterrupted(data_dir: Path, tmp_path: Path) -> None:
    """Stop at the end of stage 1, resume, stop in stage 2, resume: same weights and losses as one run."""
    a, b = tmp_path / "a", tmp_path / "b"
    _run_both(data_dir, a)
    with pytest.raises(TrainingInterrupted):
        _run_both(data_dir, b, stop_at=("jsinet", 1))  # the stop lands at step 0 of JSI-GAN
    assert (load_checkpoint(b)["stage"], load_checkpoint(b)["step"]) == ("jsigan", 0)
    with pytest.raises(TrainingInterrupted):
        _run_both(data_dir, b, stop_at=("jsigan", 1), resume=True)
    ck = load_checkpoint(b)
    assert (ck["stage"], ck["step"]) == ("jsigan", 1) and {"d1", "d2", "opt_d1", "opt_d2"} <= set(ck)
    _run_both(data_dir, b, resume=True)
    from sdr2hdr.zoo import read_safetensors

    for name in ("jsinet-x4-last", "jsigan-x4-last", "jsinet-x4-best"):
        ta, _ = read_safetensors(a / f"{name}.safetensors")
        tb, _ = read_safetensors(b / f"{name}.safetensors")
        assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta), name
    ca, cb = load_checkpoint(a), load_checkpoint(b)
    for k in ("d1", "d2"):
        assert all(torch.equal(ca[k][n], cb[k][n]) for n in ca[k])

    def losses(out: Path) -> dict:
        return {(r["stage"], r["step"]): (r["loss"], r.get("loss_d1")) for r in _log(out) if r["event"] == "train"}

    assert losses(a) == losses(b) and len(losses(a)) == 3


def test_sigterm_checkpoints_and_stops(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"

    def on_step(stage: str, step: int, terms: dict) -> None:
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted, match="--resume"):
        train(_cfg(data_dir, out, steps=10), on_step=on_step)
    assert load_checkpoint(out)["step"] == 2
    assert _log(out)[-1]["event"] == "stop"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(signal.getsignal(signal.SIGTERM))


# --------------------------------------------------------------------------- refusals


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_corrupt_checkpoint_refused(tiny_run: tuple[Path, TrainResult], data_dir: Path, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    ckpt = out / CHECKPOINT
    good = ckpt.read_bytes()
    with pytest.raises(OutputError, match="already holds a training run"):
        train(_cfg(data_dir, out, steps=2))
    with pytest.raises(InputError, match="run was made with --steps 24, not 5"):
        train(_cfg(data_dir, out, steps=5, resume=True))
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    ckpt.write_bytes(bytes(bad))
    with pytest.raises(InputError, match=r"checkpoint\.pt: corrupt checkpoint .*refusing to resume"):
        train(_cfg(data_dir, out, resume=True))
    ckpt.write_bytes(good[: len(good) // 3])
    with pytest.raises(InputError, match="corrupt checkpoint"):
        train(_cfg(data_dir, out, resume=True))
    # A file whose record matches but is not a checkpoint (or holds a pickled object) is refused too.
    import hashlib

    evil = b"\x80\x04\x95not a torch zip"
    ckpt.write_bytes(evil)
    meta = json.loads((out / CHECKPOINT_META).read_text())
    meta["sha256"] = hashlib.sha256(evil).hexdigest()
    (out / CHECKPOINT_META).write_text(json.dumps(meta))
    with pytest.raises(InputError, match="corrupt or unsafe checkpoint"):
        train(_cfg(data_dir, out, resume=True))
    (out / CHECKPOINT_META).unlink()
    with pytest.raises(InputError, match="cannot verify the checkpoint"):
        train(_cfg(data_dir, out, resume=True))
    with pytest.raises(InputError, match="no checkpoint to resume"):
        train(_cfg(data_dir, tmp_path / "fresh", resume=True))


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from sdr2hdr.cli import main

    with pytest.raises(SystemExit) as ei:
        main(args)
    return int(ei.value.code or 0), capsys.readouterr().err


def test_cli_bad_input(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    from sdr2hdr.data.mat import write_authors_mat

    empty = tmp_path / "empty"
    empty.mkdir()
    bad_mat = tmp_path / "mat"
    bad_mat.mkdir()
    write_authors_mat(bad_mat / "SDR_youtube_80.mat", "wrong_key", np.zeros((2, 8, 8, 3), np.uint8))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.exr").write_bytes(b"garbage")
    cases = [
        (["--data", str(empty)], "empty: no training data found"),
        (["--data", str(bad_mat)], "SDR_youtube_80.mat: no 'SDR_data' or 'HDR_data' dataset"),
        (["--data", str(broken)], "x.exr: cannot decode this OpenEXR file"),
        (["--data", str(data_dir), "--stage", "jsigan", "--steps", "1"], "needs JSInet weights to start from"),
    ]
    for args, msg in cases:
        code, err = _cli(["train", *args, "--out", str(tmp_path / "o"), "-q"], capsys)
        assert code == 2 and err.startswith("error: ") and msg in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()  # nothing created for refused input
    code, err = _cli(["train", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "--data" in err


def test_cli_trains_and_resumes(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sdr2hdr.cli import main

    out = tmp_path / "run"
    args = ["train", "--data", str(data_dir), "--out", str(out), "--stage", "jsinet", "--steps", "3", "--device", "cpu",
            "--batch-size", "2", "--hr-patch", "32", "--val-patches", "2", "--scale", "2", "--ckpt-interval", "2", "--log-interval", "1",
            "--loss", "psnr"]
    main(args)
    text = capsys.readouterr().out
    assert "jsinet-best" in text and "best validation PSNR" in text and "held-out scenes" in text
    assert (out / "jsinet-x2-last.safetensors").is_file()
    from sdr2hdr.zoo import read_safetensors

    assert json.loads(read_safetensors(out / "jsinet-x2-last.safetensors")[1]["recipe"])["loss"] == "psnr"
    assert all(r["loss"] < 0 for r in _log(out) if r["event"] == "train")  # ln(MSE) of patches far below 1
    main(["train", "--out", str(out), "--resume", "-q"])  # a finished run: nothing left to do
    assert [r["event"] for r in _log(out)].count("resume") == 1
    assert [r["step"] for r in _log(out) if r["event"] == "train"] == [1, 2, 3]


def test_ddp_cpu_matches_one_process(data_dir: Path, tmp_path: Path) -> None:
    """torchrun, 2 CPU processes (gloo), batch 4 = 2 x 2: the same run as one process of batch 4."""
    import shutil
    import subprocess
    import sys

    from sdr2hdr.zoo import read_safetensors

    torchrun = shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not on PATH")
    common = ["train", "--data", str(data_dir), "--stage", "jsinet", "--steps", "3", "--batch-size", "4", "--device", "cpu",
              "--hr-patch", "32", "--val-patches", "2", "--log-interval", "1", "--precision", "fp32", "-q"]  # IEEE numbers compare
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "sdr2hdr", *common, "--out", str(tmp_path / "ddp")],
                       env=env, capture_output=True, text=True, timeout=240)
    if r.returncode != 0 and ("Address" in r.stderr or "socket" in r.stderr.lower()):
        pytest.skip(f"torchrun cannot open a local rendezvous: {r.stderr.splitlines()[-1]}")
    assert r.returncode == 0, r.stderr[-2000:]
    one = subprocess.run([sys.executable, "-m", "sdr2hdr", *common, "--threads", "1", "--out", str(tmp_path / "one")],
                         env=env, capture_output=True, text=True, timeout=240)
    assert one.returncode == 0, one.stderr[-2000:]
    a, _ = read_safetensors(tmp_path / "ddp" / "jsinet-x2-last.safetensors")
    b, _ = read_safetensors(tmp_path / "one" / "jsinet-x2-last.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    la = [r["loss"] for r in _log(tmp_path / "ddp") if r["event"] == "train"]
    lb = [r["loss"] for r in _log(tmp_path / "one") if r["event"] == "train"]
    assert la == pytest.approx(lb, rel=1e-5) and len(la) == 3
    start = next(r for r in _log(tmp_path / "ddp") if r["event"] == "start")
    assert start["world"] == 2


def test_process_group_created_by_the_run_is_destroyed() -> None:
    """DDP hygiene: the group a run created is destroyed at its end (one gloo process, an in-memory store)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    d = Dist(rank=0, world=1, enabled=True, owned=True)
    assert d.any(True, torch.device("cpu")) and not d.any(False, torch.device("cpu"))
    d.close()
    assert not dist.is_initialized()
    d.close()  # idempotent
