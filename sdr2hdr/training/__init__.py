"""Training: JSInet (stage 1, L2) then JSI-GAN (stage 2, two discriminators), as the spec says.

Entry point: :func:`train` with a :class:`TrainConfig` (the ``sdr2hdr train``
command is a thin wrapper). Schedules (spec, "Training schedule"):

* **Stage 1, JSInet**: L2 loss, Adam (0.9, 0.999), lr 1e-4, x0.1 at 80 % and
  90 % of the stage's steps (the paper: epochs 200 and 225 of 250), batch 8.
* **Stage 2, JSI-GAN**: from the stage-1 weights (``OUT/jsinet-xS-best``,
  else ``-last``, or ``init``); three Adam optimisers (G, D1, D2), lr 1e-6
  constant for the first half of the stage then linear to 0; each step
  updates D1 and D2 (RaHinge on ``P.detach()``), then G (L2 + RaHinge of D1
  and, weighted by lambda_d, of D2 on the detail layers + feature matching);
  lambdas of :class:`sdr2hdr.models.losses.LossWeights`. Default length:
  stage-1 length / 25 (the paper: 10 epochs after 250).

The learning rate is a pure function of the step (no scheduler object to
save), and patch ``i`` of step ``k`` is a pure function of ``(seed, stage,
k * batch + i)`` (:class:`sdr2hdr.data.patches.TrainPatches`): a checkpoint
(models, optimisers, step, best PSNR, RNG states) resumes the run exactly.

Files in ``OUT`` (``S`` the scale):

* ``jsinet-xS-best.safetensors`` / ``jsinet-xS-last.safetensors`` and
  ``jsigan-xS-best`` / ``-last``: registry-compatible weights
  (:func:`sdr2hdr.zoo.save_weights`; metadata: recipe, date, trained_on,
  step, val_psnr, held-out scenes). Best = highest validation PSNR.
* ``log.jsonl``: one JSON object per line: ``{"event": "train", ...}`` every
  ``log_interval`` steps (loss terms, lr, steps/s, samples/s, data wait),
  ``{"event": "val", "psnr": ...}``, and start / checkpoint / stop events.
* ``checkpoint.pt`` + ``checkpoint.json`` (its sha256 and position): written
  every ``ckpt_interval`` steps, at the end of each stage and on
  Ctrl-C / SIGTERM; loaded with ``torch.load(weights_only=True)`` (tensors
  and plain containers only, never arbitrary pickles) after the sha256 check.
* ``run.json``: the resolved configuration and the held-out scene list.

Validation PSNR follows the paper: 4:4:4 Y, U, V in [0, 1], peak 1, MSE over
the three planes of a patch, prediction not clipped, mean over patches
(:func:`sdr2hdr.metrics.psnr_per_image`).

Multi-GPU: launch with ``torchrun --nproc_per_node N -m sdr2hdr train ...``;
each process takes ``batch / N`` patches of the same global batch, the
generator runs under DistributedDataParallel, the discriminators' gradients
are all-reduced and, on CUDA, their BatchNorm is SyncBatchNorm (statistics
over the global batch, as on one GPU; the RaHinge batch means stay per
process). Rank 0 validates, logs and writes files. On CUDA: bf16 autocast and
channels_last by default.

Modules: :mod:`~sdr2hdr.training.config` (options, defaults, resume, validation),
:mod:`~sdr2hdr.training.checkpoint` (checkpoint and weights files),
:mod:`~sdr2hdr.training.dist` (torch.distributed), :mod:`~sdr2hdr.training.steps`
(networks, optimiser steps, learning rates), :mod:`~sdr2hdr.training.batches` (data),
:mod:`~sdr2hdr.training.monitor` (log, progress, stop signals) and
:mod:`~sdr2hdr.training.trainer` (the loop). Importing this package does not import
torch until a name that needs it is used (``sdr2hdr train --help`` reads the defaults).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sdr2hdr.training.config import TrainConfig, TrainResult

if TYPE_CHECKING:
    from sdr2hdr.training.checkpoint import CHECKPOINT, CHECKPOINT_META, LOG, RUN, load_checkpoint, weights_name
    from sdr2hdr.training.dist import Dist
    from sdr2hdr.training.steps import jsigan_step, jsinet_step, stage1_lr, stage2_lr
    from sdr2hdr.training.trainer import Trainer, TrainingInterrupted, train

__all__ = [
    "CHECKPOINT",
    "CHECKPOINT_META",
    "LOG",
    "RUN",
    "Dist",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingInterrupted",
    "jsigan_step",
    "jsinet_step",
    "load_checkpoint",
    "stage1_lr",
    "stage2_lr",
    "train",
    "weights_name",
]

_LAZY = {
    "checkpoint": ("CHECKPOINT", "CHECKPOINT_META", "LOG", "RUN", "load_checkpoint", "weights_name"),
    "dist": ("Dist",),
    "steps": ("jsigan_step", "jsinet_step", "stage1_lr", "stage2_lr"),
    "trainer": ("Trainer", "TrainingInterrupted", "train"),
}


def __getattr__(name: str) -> Any:
    for module, names in _LAZY.items():
        if name in names:
            return getattr(importlib.import_module(f"sdr2hdr.training.{module}"), name)
    raise AttributeError(f"module 'sdr2hdr.training' has no attribute {name!r}")
