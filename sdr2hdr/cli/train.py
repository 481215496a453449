"""``sdr2hdr train``: JSInet then JSI-GAN on the data a user has (see :mod:`sdr2hdr.train`)."""

from __future__ import annotations

import sys

import click


@click.command("train")
@click.option("--data", "data", multiple=True, type=click.Path(path_type=str),
              help="Training data folder or file (repeatable): OpenEXR stills, HDR10/HLG videos, sdr/ + hdr/ video pairs, "
                   "or the authors' SDR_youtube_80*.mat + HDR_youtube_80.mat.")
@click.option("--out", "out", default="runs/train", show_default=True, type=click.Path(path_type=str),
              help="Run folder: weights, log.jsonl, checkpoint.pt.")
@click.option("--stage", type=click.Choice(["jsinet", "jsigan", "both"]), default=None,
              help="jsinet (L2), jsigan (GAN fine-tuning from JSInet weights) or both in turn.  [default: both]")
@click.option("--scale", type=click.Choice(["2", "4"]), default=None, help="Super-resolution factor.  [default: 2]")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Steps of the first (or only) stage.  [default: the paper's 250 epochs; JSI-GAN alone 10]")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=None, help="Instead of --steps: epochs of the first (or only) stage.")
@click.option("--gan-steps", type=click.IntRange(min=1), default=None, help="JSI-GAN steps with --stage both.  [default: first stage / 25]")
@click.option("--gan-epochs", type=click.FloatRange(min=0, min_open=True), default=None, help="Instead of --gan-steps.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Global batch (split over torchrun processes).  [default: 8]")
@click.option("--seed", type=int, default=None, help="Seed of the initialisation and of the patch sequence.  [default: 0]")
@click.option("--hr-patch", type=click.IntRange(min=8), default=None, help="HR patch side (LR = HR / scale).  [default: 160]")
@click.option("--lr", type=float, default=1e-4, show_default=True, help="JSInet learning rate.")
@click.option("--gan-lr", type=float, default=1e-6, show_default=True, help="JSI-GAN learning rate (G, D1, D2).")
@click.option("--schedule", type=click.Choice(["step", "cosine"]), default=None,
              help="JSInet learning-rate schedule: the paper's steps (x0.1 at 80 %, 90 %) or warm-up + cosine to 0 (short runs).  [default: step]")
@click.option("--init", type=click.Path(path_type=str), default=None,
              help="Starting weights (.safetensors): JSInet continues from them (a warm restart with its own schedule); "
                   "with --stage jsigan, the JSInet to fine-tune.  [default: random init; JSI-GAN: OUT/jsinet-xS-best.safetensors]")
@click.option("--heldout", "heldout", multiple=True, metavar="SCENE",
              help="Hold out this scene (file stem or pair folder name) besides the hash rule (repeatable).")
@click.option("--real-share", type=click.FloatRange(0, 1), default=None,
              help="Share of training patches drawn from real SDR/HDR pairs when synthesised scenes are trained too.  [default: by patch count]")
@click.option("--val-patches", type=click.IntRange(min=0), default=500, show_default=True, help="Validation patches from held-out scenes.")
@click.option("--val-interval", type=click.IntRange(min=1), default=1000, show_default=True, help="Validate every N steps.")
@click.option("--ckpt-interval", type=click.IntRange(min=1), default=1000, show_default=True, help="Checkpoint every N steps.")
@click.option("--log-interval", type=click.IntRange(min=1), default=10, show_default=True, help="Log every N steps.")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="Data-loader worker processes.  [default: 0 on CPU, up to 8 on CUDA]")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch CPU threads (on a busy shared CPU, 1 can be several times faster).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default=None,
              help="auto: bf16 autocast on CUDA and on CPUs with AMX / AVX512-BF16, else fp32 (master weights, optimiser and loss stay fp32).  [default: auto]")
@click.option("--amp/--no-amp", default=True, show_default=True, help="--no-amp is --precision fp32.")
@click.option("--channels-last/--no-channels-last", default=True, show_default=True, help="channels_last memory format on CUDA.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint (same options).")
@click.option("--max-video-frames", type=click.IntRange(min=1), default=48, show_default=True, help="Frames kept per training video.")
@click.option("--heldout-fraction", type=click.FloatRange(0, 1), default=None, help="Hash threshold of the validation split.  [default: 0.15]")
@click.option("--peak", type=click.FloatRange(min=100), default=1000.0, show_default=True, help="Mastering peak (cd/m²) of synthesised ground truth.")
@click.option("--h264-prob", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="Share of synthesised inputs passed through H.264.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display or summary.")
def train_cmd(**o: object) -> None:
    """Train JSInet (L2), then fine-tune JSI-GAN, as the paper did, on your HDR data.

    Real SDR/HDR photo pairs (NAME/sdr.png + NAME/hdr.exr) are used as they are;
    other pairs are synthesised from HDR stills and HDR videos by the degradation
    model (see README): exposure, tone mapping to SDR, BT.709, down-scaling,
    8-bit 4:2:0, optional H.264. Writes OUT/jsinet-xS-best|last.safetensors,
    OUT/jsigan-xS-best|last.safetensors, OUT/log.jsonl and OUT/checkpoint.pt.
    Multi-GPU: torchrun --nproc_per_node N -m sdr2hdr train ...
    """
    from dataclasses import replace

    from sdr2hdr.data.degrade import Degradation
    from sdr2hdr.train import TrainConfig, TrainingInterrupted, train

    if not o["data"] and not o["resume"]:
        raise click.UsageError("give at least one --data folder (or --resume a run)")
    deg = replace(Degradation(), peak=float(o["peak"]), h264_prob=float(o["h264_prob"]))  # type: ignore[arg-type]
    cfg = TrainConfig(
        data=list(o["data"]),  # type: ignore[call-overload]
        out=str(o["out"]),
        stage=o["stage"],  # type: ignore[arg-type]
        scale=int(o["scale"]) if o["scale"] else None,  # type: ignore[call-overload]
        steps=o["steps"], epochs=o["epochs"], gan_steps=o["gan_steps"], gan_epochs=o["gan_epochs"],  # type: ignore[arg-type]
        batch_size=o["batch_size"], seed=o["seed"], hr_patch=o["hr_patch"],  # type: ignore[arg-type]
        lr=float(o["lr"]), gan_lr=float(o["gan_lr"]), init=o["init"], schedule=o["schedule"], heldout=list(o["heldout"]),  # type: ignore[arg-type]
        real_share=o["real_share"],  # type: ignore[arg-type]
        val_patches=int(o["val_patches"]), val_interval=int(o["val_interval"]),  # type: ignore[call-overload]
        ckpt_interval=int(o["ckpt_interval"]), log_interval=int(o["log_interval"]),  # type: ignore[call-overload]
        workers=o["workers"], threads=o["threads"], device=str(o["device"]), precision=o["precision"], amp=bool(o["amp"]), channels_last=bool(o["channels_last"]),  # type: ignore[arg-type]
        resume=bool(o["resume"]), max_video_frames=int(o["max_video_frames"]),  # type: ignore[call-overload]
        heldout_fraction=o["heldout_fraction"], degradation=deg, progress=not o["quiet"], quiet=bool(o["quiet"]),  # type: ignore[arg-type]
    )
    try:
        result = train(cfg)
    except TrainingInterrupted as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(130)
    if o["quiet"]:
        return
    for name, path in result.files.items():
        click.echo(f"{name}: {path}")
    for variant, best in result.best_psnr.items():
        if variant in result.steps:
            click.echo(f"{variant}: {result.steps[variant]} steps, best validation PSNR "
                       + ("n/a (no held-out scene)" if best is None else f"{best:.3f} dB"))
    click.echo(f"held-out scenes: {', '.join(result.heldout) or 'none'}")
