"""``sdr2hdr train``: JSInet then JSI-GAN on the data a user has (see :mod:`sdr2hdr.training`).

Every default shown here is :class:`~sdr2hdr.training.config.TrainConfig`'s (or, for the
degradation, :class:`~sdr2hdr.data.degrade.Degradation`'s): it lives in one place.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from click.core import ParameterSource

from sdr2hdr.training.config import GAN_FRACTION, PAPER_EPOCHS, TrainConfig

D = TrainConfig.default


class _ComputedDefault(click.Option):
    """An option whose default is a function, called when needed (``--help``, parsing) and shown as its value
    rather than "(dynamic)": defaults that live in modules importing torch stay out of the CLI's start-up."""

    def get_default(self, ctx: click.Context, call: bool = True) -> Any:  # noqa: ARG002 - always called
        return super().get_default(ctx, call=True)


def _degradation_default(name: str) -> Any:
    from sdr2hdr.data.degrade import Degradation

    return getattr(Degradation(), name)


@click.command("train")
@click.option("--data", "data", multiple=True, type=click.Path(path_type=str),
              help="Training data folder or file (repeatable): OpenEXR stills, HDR10/HLG videos, sdr/ + hdr/ video pairs, "
                   "or the authors' SDR_youtube_80*.mat + HDR_youtube_80.mat.")
@click.option("--out", "out", default=D("out"), show_default=True, type=click.Path(path_type=str),
              help="Run folder: weights, log.jsonl, checkpoint.pt.")
@click.option("--stage", type=click.Choice(["jsinet", "jsigan", "both"]), default=D("stage"), show_default=True,
              help="jsinet (L2), jsigan (GAN fine-tuning from JSInet weights) or both in turn.")
@click.option("--scale", type=click.Choice(["2", "4"]), default=str(D("scale")), show_default=True, help="Super-resolution factor.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help=f"Steps of the first (or only) stage.  [default: the paper's {PAPER_EPOCHS} epochs; JSI-GAN alone {PAPER_EPOCHS // GAN_FRACTION}]")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=None, help="Instead of --steps: epochs of the first (or only) stage.")
@click.option("--gan-steps", type=click.IntRange(min=1), default=None,
              help=f"JSI-GAN steps with --stage both.  [default: first stage / {GAN_FRACTION}]")
@click.option("--gan-epochs", type=click.FloatRange(min=0, min_open=True), default=None, help="Instead of --gan-steps.")
@click.option("--batch-size", type=click.IntRange(min=1), default=D("batch_size"), show_default=True,
              help="Global batch (split over torchrun processes).")
@click.option("--seed", type=int, default=D("seed"), show_default=True, help="Seed of the initialisation and of the patch sequence.")
@click.option("--hr-patch", type=click.IntRange(min=8), default=D("hr_patch"), show_default=True, help="HR patch side (LR = HR / scale).")
@click.option("--lr", type=float, default=D("lr"), show_default=True, help="JSInet learning rate.")
@click.option("--gan-lr", type=float, default=D("gan_lr"), show_default=True, help="JSI-GAN learning rate (G, D1, D2).")
@click.option("--schedule", type=click.Choice(["step", "cosine"]), default=D("schedule"), show_default=True,
              help="JSInet learning-rate schedule: the paper's steps (x0.1 at 80 %, 90 %) or warm-up + cosine to 0 (short runs).")
@click.option("--loss", type=click.Choice(["l2", "l1", "psnr"]), default=D("loss"), show_default=True,
              help="JSInet loss: l2 (the paper), l1, or psnr (mean per-patch log MSE: every patch's PSNR counts alike).")
@click.option("--grid-weight", type=click.FloatRange(min=0), default=D("grid_weight"), show_default=True,
              help="JSInet: extra weight on the part of the error that repeats every SCALE pixels (the up-sampler's grid, "
                   "plain to see in flat areas but a tiny share of L2); 0 is the paper's loss.")
@click.option("--init", type=click.Path(path_type=str), default=None,
              help="Starting weights (.safetensors or a registered model name): JSInet continues from them (a warm restart "
                   "with its own schedule); with --stage jsigan, the JSInet to fine-tune.  "
                   "[default: random init; JSI-GAN: OUT/jsinet-xS-best.safetensors]")
@click.option("--heldout", "heldout", multiple=True, metavar="SCENE",
              help="Hold out this scene (file stem or pair folder name) besides the hash rule (repeatable).")
@click.option("--real-share", type=click.FloatRange(0, 1), default=None,
              help="Share of training patches drawn from real SDR/HDR pairs when synthesised scenes are trained too.  [default: by patch count]")
@click.option("--scene-weights", type=click.Choice(["patches", "equal", "psnr"]), default=D("scene_weights"), show_default=True,
              help="How often each training scene is drawn: by its patch count; each scene of a kind (real pairs, "
                   "synthesised) alike, so small scenes (a 384x512 phone photo) are not drowned by large ones; or psnr: "
                   "in proportion to 1 / the --init model's MSE on the scene (floored at 40 dB), so L2 follows the "
                   "frame-averaged PSNR the test sets report.")
@click.option("--pair-exposure", type=click.Choice(["as-is", "bt2408"]), default=D("pair_exposure"), show_default=True,
              help="Real training pairs' HDR as the camera made it, or rescaled so their shadows sit at the BT.2408 level "
                   "(a few cameras brighten the whole picture; held-out pairs always stay as made).")
@click.option("--val-patches", type=click.IntRange(min=0), default=D("val_patches"), show_default=True, help="Validation patches from held-out scenes.")
@click.option("--val-interval", type=click.IntRange(min=1), default=D("val_interval"), show_default=True, help="Validate every N steps.")
@click.option("--ckpt-interval", type=click.IntRange(min=1), default=D("ckpt_interval"), show_default=True, help="Checkpoint every N steps.")
@click.option("--log-interval", type=click.IntRange(min=1), default=D("log_interval"), show_default=True, help="Log every N steps.")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="Data-loader worker processes.  [default: 0 on CPU, up to 8 on CUDA]")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch CPU threads (on a busy shared CPU, 1 can be several times faster).")
@click.option("--device", default=D("device"), show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default=D("precision"), show_default=True,
              help="auto: bf16 autocast on CUDA and on CPUs with AMX / AVX512-BF16, else fp32 (master weights, optimiser and loss stay fp32).")
@click.option("--amp/--no-amp", default=D("amp"), show_default=True, help="--no-amp is --precision fp32.")
@click.option("--channels-last/--no-channels-last", default=D("channels_last"), show_default=True, help="channels_last memory format on CUDA.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint (same options).")
@click.option("--max-video-frames", type=click.IntRange(min=1), default=D("max_video_frames"), show_default=True, help="Frames kept per training video.")
@click.option("--heldout-fraction", cls=_ComputedDefault, type=click.FloatRange(0, 1), default=lambda: D("heldout_fraction"), show_default=True,
              help="Hash threshold of the validation split.")
@click.option("--peak", cls=_ComputedDefault, type=click.FloatRange(min=100), default=lambda: _degradation_default("peak"), show_default=True,
              help="Mastering peak (cd/m²) of synthesised ground truth.")
@click.option("--h264-prob", cls=_ComputedDefault, type=click.FloatRange(0, 1), default=lambda: _degradation_default("h264_prob"), show_default=True,
              help="Share of synthesised inputs passed through H.264.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display or summary.")
def train_cmd(**o: Any) -> None:
    """Train JSInet (L2), then fine-tune JSI-GAN, as the paper did, on your HDR data.

    Real SDR/HDR photo pairs (NAME/sdr.png + NAME/hdr.exr) are used as they are;
    other pairs are synthesised from HDR stills and HDR videos by the degradation
    model (see README): exposure, tone mapping to SDR, BT.709, down-scaling,
    8-bit 4:2:0, optional H.264. Writes OUT/jsinet-xS-best|last.safetensors,
    OUT/jsigan-xS-best|last.safetensors, OUT/log.jsonl and OUT/checkpoint.pt.
    Multi-GPU: torchrun --nproc_per_node N -m sdr2hdr train ...
    """
    from sdr2hdr.training import TrainingInterrupted, train

    if not o["data"] and not o["resume"]:
        raise click.UsageError("give at least one --data folder (or --resume a run)")
    cfg = TrainConfig.from_options(**_given_run_options(o))
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


def _given_run_options(o: dict[str, Any]) -> dict[str, Any]:
    """``o`` without the run-defining options left at their defaults: unset, they resolve to the same
    default on a new run, and to the checkpoint's value on ``--resume``."""
    ctx = click.get_current_context()
    unset = (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)
    return {k: v for k, v in o.items() if k not in TrainConfig.RUN_KEYS or ctx.get_parameter_source(k) not in unset}
