"""TrainConfig: the defaults (in one place, shown by ``sdr2hdr train --help``), a resumed run's options, refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sdr2hdr.errors import InputError
from sdr2hdr.training import TrainConfig, TrainResult

RUN_DEFAULTS = {"stage": "both", "scale": 2, "batch_size": 8, "seed": 0, "hr_patch": 160, "schedule": "step", "precision": "auto",
                "heldout_fraction": 0.15, "grid_weight": 0.0}


def test_unset_run_options_resolve_to_their_defaults() -> None:
    assert {k: TrainConfig.default(k) for k in RUN_DEFAULTS} == RUN_DEFAULTS
    cfg = TrainConfig(data=["d"])
    assert all(getattr(cfg, k) is None for k in RUN_DEFAULTS)  # unset: a resumed run takes the checkpoint's
    cfg.resolve()
    assert {k: getattr(cfg, k) for k in RUN_DEFAULTS} == RUN_DEFAULTS
    assert TrainConfig.default("lr") == TrainConfig().lr == 1e-4 and TrainConfig.default("data") == []


def test_help_shows_the_config_defaults() -> None:
    from sdr2hdr.cli import cli

    text = " ".join(CliRunner().invoke(cli, ["train", "--help"], terminal_width=200).output.split())
    for opt, default in (("--batch-size", "8"), ("--hr-patch", "160"), ("--stage", "both"), ("--lr", "0.0001"),
                         ("--heldout-fraction", "0.15"), ("--peak", "1000.0"), ("--val-interval", "1000")):
        assert f"[default: {default}" in text.split(opt, 1)[1].split(" --", 1)[0], opt


def test_cli_import_stays_without_torch() -> None:
    code = "import sys, sdr2hdr.cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120, check=False).returncode == 0


def test_cli_passes_only_the_run_options_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sdr2hdr import training
    from sdr2hdr.cli import main
    from sdr2hdr.data.degrade import Degradation

    seen: list[TrainConfig] = []

    def fake_train(cfg: TrainConfig) -> TrainResult:
        seen.append(cfg)
        return TrainResult(out=tmp_path, files={}, best_psnr={}, steps={}, heldout=[])

    monkeypatch.setattr(training, "train", fake_train)
    main(["train", "--data", "d", "--out", str(tmp_path), "--batch-size", "8", "--scale", "4", "--peak", "500", "-q"])
    cfg = seen[-1]
    assert cfg.batch_size == 8 and cfg.scale == 4  # given (even at the default value): checked against a checkpoint
    assert cfg.stage is None and cfg.seed is None and cfg.hr_patch is None and cfg.heldout_fraction is None
    assert cfg.data == ["d"] and cfg.lr == 1e-4 and cfg.val_interval == 1000 and not cfg.progress and cfg.quiet
    assert cfg.degradation.peak == 500.0 and cfg.degradation.h264_prob == Degradation().h264_prob


def test_resume_takes_the_runs_options_and_refuses_others(tmp_path: Path) -> None:
    saved = TrainConfig(data=["d"], stage="jsinet", batch_size=4, seed=3, real_share=0.5, init="w.safetensors").record()
    cfg = TrainConfig(resume=True, batch_size=4)
    cfg.merge_checkpoint(saved, tmp_path / "checkpoint.pt")
    assert (cfg.stage, cfg.batch_size, cfg.seed, cfg.real_share, cfg.data, cfg.init) == ("jsinet", 4, 3, 0.5, ["d"], "w.safetensors")
    with pytest.raises(InputError, match=r"checkpoint\.pt: the run was made with --batch-size 4, not 8"):
        TrainConfig(resume=True, batch_size=8).merge_checkpoint(saved, tmp_path / "checkpoint.pt")
    with pytest.raises(InputError, match="--real-share 0.5, not 0.25"):
        TrainConfig(resume=True, real_share=0.25).merge_checkpoint(saved, tmp_path / "checkpoint.pt")


@pytest.mark.parametrize(("kw", "world", "msg"), [
    ({"scale": 3}, 1, "--scale must be 2 or 4"),
    ({"schedule": "linear"}, 1, "--schedule must be step or cosine"),
    ({"loss": "huber"}, 1, "--loss must be l2, l1 or psnr"),
    ({"grid_weight": -1.0}, 1, "--grid-weight must be a finite number >= 0"),
    ({"hr_patch": 96}, 1, "JSI-GAN's discriminators take 160x160"),
    ({"hr_patch": 30, "stage": "jsinet"}, 1, "must be a multiple of 4"),
    ({"batch_size": 2}, 1, "at least 3 patches per discriminator batch"),
    ({"batch_size": 3, "stage": "jsinet"}, 2, "not divisible by the 2 processes"),
    ({"steps": 0}, 1, "--steps must be at least 1"),
    ({"data": []}, 1, "no --data given"),
])
def test_bad_options_refused(kw: dict, world: int, msg: str) -> None:
    cfg = TrainConfig(**{"data": ["d"], **kw})
    with pytest.raises(InputError, match=msg):
        cfg.resolve(world=world)


def test_training_on_cuda_turns_on_cudnn_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fixed patch shapes: training on CUDA lets cuDNN pick its kernels (issue #14 item 3); CPU leaves it alone."""
    import torch

    from sdr2hdr.training import dist

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    assert dist.rank_device("cpu", dist.Dist()).type == "cpu" and not torch.backends.cudnn.benchmark
    monkeypatch.setattr(dist, "resolve_device", lambda name: torch.device("cuda", 0))
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    assert dist.rank_device("cuda", dist.Dist()).type == "cuda" and torch.backends.cudnn.benchmark
