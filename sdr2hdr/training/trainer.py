"""The training loop: one :class:`Trainer` per run, both stages in turn; see :mod:`sdr2hdr.training`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sdr2hdr.errors import InputError
from sdr2hdr.precision import resolve_precision
from sdr2hdr.training.batches import datasets, loader, to_device
from sdr2hdr.training.checkpoint import (
    CHECKPOINT, LOG, RUN, load_init, make_out, prepare_out, save_run_weights, set_rng_state, stage1_weights, write_checkpoint,
)
from sdr2hdr.training.config import TrainConfig, TrainResult, saved_config, stage_plan
from sdr2hdr.training.dist import Dist, ddp, init_dist, rank_device, unwrap
from sdr2hdr.training.monitor import Logger, ProgressBar, StepMeter, StopFlag
from sdr2hdr.training.steps import discriminators, generator, jsigan_step, jsinet_step, stage1_lr, stage2_lr

__all__ = ["OnStep", "Trainer", "TrainingInterrupted", "train"]

#: ``on_step(stage, step, terms)`` after every optimiser step; True asks the run to checkpoint and stop.
OnStep = Callable[[str, int, dict[str, float]], "bool | None"]
StepFn = Callable[[torch.Tensor, torch.Tensor, int], dict[str, float]]


class TrainingInterrupted(KeyboardInterrupt):
    """Raised after Ctrl-C / SIGTERM once the checkpoint is written."""


class Trainer:
    """One training run (both stages); see :mod:`sdr2hdr.training`. Use :func:`train`.

    Construction checks everything it can before writing: options (resolved against the checkpoint
    when resuming), device, precision, data; then creates ``OUT`` and opens the log.
    """

    def __init__(self, cfg: TrainConfig, dist: Dist, on_step: OnStep | None = None) -> None:
        self.cfg = cfg
        self.on_step = on_step
        if cfg.threads:
            torch.set_num_threads(int(cfg.threads))
        self.out = Path(cfg.out)
        self.dist = dist
        self.device = rank_device(cfg.device, dist)
        self.cuda = self.device.type == "cuda"
        self.channels_last = bool(cfg.channels_last and self.cuda)
        self.sync_bn = dist.enabled and self.cuda  # multi-GPU: the discriminators' BatchNorm sees the global batch
        self.ckpt = prepare_out(self.out, cfg.resume)
        if self.ckpt is not None:
            cfg.merge_checkpoint(saved_config(self.ckpt), self.out / CHECKPOINT)
        cfg.resolve(world=dist.world, sync_bn=self.sync_bn)
        if cfg.stage == "jsigan" and self.ckpt is None:
            stage1_weights(cfg, self.out)  # refuse before anything is written
        self.precision = resolve_precision(cfg.precision if cfg.amp else "fp32", self.device)  # type: ignore[arg-type]
        if self.precision.name == "fp16":
            raise InputError("--precision fp16: training needs bf16 or fp32 (fp16 gradients would need loss scaling)")
        self.stop = StopFlag()
        self.files: dict[str, Path] = {}
        self.best: dict[str, float | None] = {"jsinet": None, "jsigan": None}
        self.done_steps: dict[str, int] = {}
        self.spec, self.trainset, self.valset = datasets(cfg, dist.main)
        if self.ckpt is None:
            if dist.main:
                make_out(self.out)
            dist.barrier()
        self.plan = stage_plan(cfg, self.trainset["jsinet"].epoch_size)
        self.log = Logger(self.out / LOG if dist.main else None)

    # ------------------------------------------------------------ the run

    def run(self) -> TrainResult:
        """Train the stages of the plan (from the checkpoint's stage and step when resuming)."""
        if self.dist.main:
            (self.out / RUN).write_text(json.dumps({**self.cfg.record(), "plan": self.plan, "heldout": self.spec.heldout,
                                                    "epoch_size": self.trainset["jsinet"].epoch_size, "world": self.dist.world}, indent=1))
        start_stage, start_step = self.plan[0][0], 0
        if self.ckpt is not None:
            start_stage, start_step = str(self.ckpt["stage"]), int(self.ckpt["step"])
            self.best.update(dict(self.ckpt.get("best") or {}))
            self.done_steps.update(dict(self.ckpt.get("done_steps") or {}))
            if start_stage not in [s for s, _ in self.plan]:
                raise InputError(f"{self.out / CHECKPOINT}: checkpoint of stage {start_stage}, not part of --stage {self.cfg.stage}")
            set_rng_state(self.ckpt.get("rng") or {})
        self.log(event="start" if self.ckpt is None else "resume", stage=start_stage, step=start_step, plan=self.plan,
                 device=str(self.device), world=self.dist.world, data=self.spec.describe(),
                 pair_gains={k: round(v, 4) for k, v in self.spec.pair_gains.items()},
                 **({"scene_mse": self.spec.scene_mse} if self.spec.scene_mse else {}),
                 train_samples_per_epoch=self.trainset["jsinet"].epoch_size, val_patches=0 if self.valset is None else len(self.valset))
        interrupted = False
        try:
            with self.stop:
                stages = [s for s, _ in self.plan]
                for stage, total in self.plan[stages.index(start_stage):]:
                    step0 = start_step if stage == start_stage else 0
                    ckpt = self.ckpt if (self.ckpt is not None and str(self.ckpt["stage"]) == stage) else None
                    interrupted = (self._stage1 if stage == "jsinet" else self._stage2)(total, step0, ckpt)
                    if interrupted:
                        break
        finally:
            self.log.close()
        if interrupted:
            raise TrainingInterrupted(f"interrupted: checkpoint saved to {self.out / CHECKPOINT}; continue with --resume")
        if self.dist.main:
            self.files["log"] = self.out / LOG
        return TrainResult(out=self.out, files=dict(self.files), best_psnr=dict(self.best), steps=dict(self.done_steps), heldout=list(self.spec.heldout))

    def _loop(self, stage: str, total: int, step0: int, step_fn: StepFn,
              g: nn.Module, models: dict[str, nn.Module], opts: dict[str, torch.optim.Optimizer]) -> bool:
        """The shared loop: data, logging, validation, checkpoints, stop requests. True if interrupted."""
        cfg = self.cfg
        bar = ProgressBar(stage, int(cfg.scale or 0), total, step0, enabled=cfg.progress and self.dist.main and not cfg.quiet)
        it = loader(self.trainset[stage], step0, total, int(cfg.batch_size or 0), self.dist, cuda=self.cuda, workers=cfg.workers)
        step, meter, stopped = step0, StepMeter(), False
        try:
            while step < total:
                # Every process must agree to stop at the same step; asking all of them costs an all-reduce and
                # a host sync, so with several processes they agree at log intervals only.
                if (not self.dist.enabled or step % cfg.log_interval == 0) and self.dist.any(self.stop.requested, self.device):
                    stopped = True
                    break
                t0 = time.perf_counter()
                try:
                    sdr, hdr = next(it)
                except StopIteration:  # pragma: no cover - the sampler yields exactly total - step0 batches
                    break
                wait = time.perf_counter() - t0
                terms = step_fn(*to_device(sdr, hdr, self.device, self.channels_last), step)
                step += 1
                meter.add(terms, wait)
                if self.on_step is not None and self.on_step(stage, step, terms):
                    self.stop.requested = True
                self._after_step(stage, step, total, terms, meter, bar, g, models, opts)
        finally:
            bar.stop()
            del it
        self.done_steps[stage] = step
        if stopped:
            if self.dist.main:
                self._save(stage, step, total, g, models, opts)
                self.log(event="stop", stage=stage, step=step, reason="signal")
            self.dist.barrier()
            return True
        return False

    def _after_step(self, stage: str, step: int, total: int, terms: dict[str, float], meter: StepMeter, bar: ProgressBar,
                    g: nn.Module, models: dict[str, nn.Module], opts: dict[str, torch.optim.Optimizer]) -> None:
        """Log, validate and checkpoint at their intervals (and at the end of the stage)."""
        cfg = self.cfg
        if step % cfg.log_interval == 0 or step == total:
            sums = self.dist.mean_dict(meter.sums, self.device)  # every process's share of the batch
            now = time.perf_counter()
            dt = max(now - meter.t_last, 1e-9)
            rec = {k: v / meter.steps for k, v in sums.items()}
            if self.dist.main:
                self.log(event="train", stage=stage, step=step, **rec, lr=terms.get("lr"), steps_per_s=meter.steps / dt,
                         samples_per_s=meter.steps * int(cfg.batch_size or 0) / dt, data_wait_frac=meter.wait / dt)
            bar.update(step, f"loss {rec.get('loss', 0):.5f} lr {terms.get('lr', 0):.1e} {meter.steps / dt:.2f} it/s")
            meter.reset(now)
        else:
            bar.update(step)
        if self.dist.main and (step % cfg.val_interval == 0 or step == total):
            val = self.validate(unwrap(g))
            best = self.best.get(stage)
            improved = val is not None and (best is None or val > best)
            self.log(event="val", stage=stage, step=step, psnr=val, best=improved)
            if improved:
                self.best[stage] = val
                self._save_weights(unwrap(g), stage, "best", step, val)
            if val is not None:
                bar.print(f"{stage} step {step}: validation PSNR {val:.3f} dB" + (" (best)" if improved else ""))
        if step % cfg.ckpt_interval == 0 or step == total:
            self.done_steps[stage] = step
            if self.dist.main:
                self._save(stage, step, total, g, models, opts)
                self.log(event="checkpoint", stage=stage, step=step)
            self.dist.barrier()

    # ------------------------------------------------------------ the stages

    def _stage1(self, total: int, step0: int, ckpt: dict[str, Any] | None) -> bool:
        """JSInet (L2) from ``step0`` to ``total``; True if interrupted."""
        cfg = self.cfg
        g = generator(int(cfg.scale or 0), int(cfg.seed or 0), self.device, channels_last=self.channels_last)
        opt = torch.optim.Adam(g.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
        if ckpt is not None:
            g.load_state_dict(ckpt["generator"])
            opt.load_state_dict(ckpt["opt_g"])
        elif cfg.init:
            load_init(g, cfg.init, int(cfg.scale or 0))
            self.log(event="init", stage="jsinet", weights=str(cfg.init))
        self.dist.broadcast_module(g)
        gm = ddp(g, self.dist, self.device)
        gm.train()

        def step_fn(x: torch.Tensor, y: torch.Tensor, step: int) -> dict[str, float]:
            return jsinet_step(gm, opt, x, y, stage1_lr(step, total, cfg.lr, cfg.schedule or "step"),
                               autocast=self.precision.autocast, loss=cfg.loss or "l2",
                               grid_weight=float(cfg.grid_weight), scale=int(cfg.scale or 0))

        return self._loop("jsinet", total, step0, step_fn, gm, {"generator": g}, {"opt_g": opt})

    def _stage2(self, total: int, step0: int, ckpt: dict[str, Any] | None) -> bool:
        """JSI-GAN (G, D1, D2) from ``step0`` to ``total``; True if interrupted."""
        from sdr2hdr.models.losses import LossWeights

        cfg = self.cfg
        g = generator(int(cfg.scale or 0), int(cfg.seed or 0), self.device, channels_last=self.channels_last)
        d1, d2 = discriminators(int(cfg.seed or 0), self.device, channels_last=self.channels_last, sync_bn=self.sync_bn)
        models = {"generator": g, "d1": d1, "d2": d2}
        opts = {k: torch.optim.Adam(m.parameters(), lr=cfg.gan_lr, betas=(0.9, 0.999)) for k, m in (("opt_g", g), ("opt_d1", d1), ("opt_d2", d2))}
        if ckpt is not None:
            for k, m in models.items():
                if k not in ckpt:
                    raise InputError(f"{self.out / CHECKPOINT}: JSI-GAN checkpoint lacks {k!r}, refusing to resume")
                m.load_state_dict(ckpt[k])
            for k, o in opts.items():
                o.load_state_dict(ckpt[k])
        else:
            init = stage1_weights(cfg, self.out)
            load_init(g, init, int(cfg.scale or 0))
            self.log(event="init", stage="jsigan", weights=str(init))
        for m in models.values():
            self.dist.broadcast_module(m)
        gm = ddp(g, self.dist, self.device)
        for m in (gm, d1, d2):
            m.train()
        w = LossWeights()

        def step_fn(x: torch.Tensor, y: torch.Tensor, step: int) -> dict[str, float]:
            return jsigan_step(gm, d1, d2, opts["opt_g"], opts["opt_d1"], opts["opt_d2"], x, y, stage2_lr(step, total, cfg.gan_lr),
                               weights=w, autocast=self.precision.autocast, dist=self.dist)

        return self._loop("jsigan", total, step0, step_fn, gm, models, opts)

    # ------------------------------------------------------------ validation, files

    @torch.no_grad()
    def validate(self, g: nn.Module) -> float | None:
        """Mean PSNR over the validation patches (:func:`sdr2hdr.metrics.psnr_per_image`); None without any."""
        from sdr2hdr.metrics.psnr import psnr_per_image

        if self.valset is None or len(self.valset) == 0:
            return None
        g.eval()
        vals = []
        for sdr, hdr in self.valset.batches(self.cfg.val_batch):
            x, y = to_device(sdr, hdr, self.device, self.channels_last)
            with self.precision.autocast():
                p = g(x)
            vals.append(psnr_per_image(p.float(), y).cpu())
        g.train()
        return float(torch.cat(vals).mean())

    def _save_weights(self, g: nn.Module, variant: str, which: str, step: int, val: float | None) -> None:
        """``OUT/{variant}-xS-{which}.safetensors``, recorded in the result's files."""
        self.files[f"{variant}-{which}"] = save_run_weights(
            g, self.out, self.cfg, variant=variant, which=which, step=step, val=val, precision=self.precision.name,
            trained_on=self.spec.describe(), heldout=self.spec.heldout)

    def _save(self, stage: str, step: int, total: int, g: nn.Module, models: dict[str, nn.Module], opts: dict[str, torch.optim.Optimizer]) -> None:
        """The last weights and the checkpoint at ``step``."""
        self._save_weights(unwrap(g), stage, "last", step, None)
        self.files["checkpoint"] = write_checkpoint(self.out, self.cfg, stage=stage, step=step, total=total, best=self.best,
                                                    done_steps=self.done_steps, models=models, opts=opts)


def train(cfg: TrainConfig, *, on_step: OnStep | None = None) -> TrainResult:
    """Run (or, with ``cfg.resume``, continue) a training run; see :mod:`sdr2hdr.training`.

    ``on_step(stage, step, terms)`` is called after every optimiser step; returning True asks the run to
    checkpoint and stop there, as SIGTERM does. Raises :class:`TrainingInterrupted` (a ``KeyboardInterrupt``)
    after writing the checkpoint when stopped by Ctrl-C / SIGTERM, and :class:`~sdr2hdr.errors.Sdr2HdrError`
    subclasses (one-line messages) for bad data, options or checkpoints.
    """
    dist = init_dist(cfg.device)
    try:
        return Trainer(cfg, dist, on_step=on_step).run()
    finally:
        dist.close()  # a process group this run created is destroyed with it
