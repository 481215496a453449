"""The data a run trains and validates on: sources and their split, each stage's patches, the
step-indexed DataLoader (patch ``i`` of step ``k`` a pure function of seed, stage and ``k * batch + i``)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import torch

from sdr2hdr.training.config import STAGES, TrainConfig
from sdr2hdr.training.dist import Dist

__all__ = ["datasets", "ignore_signals_in_worker", "loader", "to_device"]


def datasets(cfg: TrainConfig, main: bool) -> tuple[Any, dict[str, Any], Any]:
    """The sources (:class:`~sdr2hdr.data.collect.DataSpec`), each stage's training patches, and the
    validation patches (``main`` process only, None without held-out scenes or ``val_patches``)."""
    from sdr2hdr.data.collect import collect_sources
    from sdr2hdr.data.patches import TrainPatches, ValPatches

    spec = collect_sources(cfg.data, cfg.scale, hr_patch=cfg.hr_patch, max_video_frames=cfg.max_video_frames,
                           heldout_fraction=cfg.heldout_fraction, heldout=cfg.heldout)
    if cfg.pair_exposure == "bt2408":
        spec.anchor_pair_exposure()
    error = None
    if cfg.scene_weights == "psnr":
        from sdr2hdr.training.scene_error import init_scene_error

        error = init_scene_error(str(cfg.init), spec.train, scale=int(cfg.scale or 0), hr=cfg.hr_patch, degradation=cfg.degradation)
        spec.scene_mse = dict(zip([n for s in spec.train for n in s.names], error.tolist()))
    trainset = {
        st: TrainPatches(spec.train, scale=cfg.scale, seed=cfg.seed, hr_patch=cfg.hr_patch, degradation=cfg.degradation,  # type: ignore[arg-type]
                         stream=i, real_share=cfg.real_share, scene_weights=cfg.scene_weights, scene_error=error)
        for i, st in enumerate(STAGES)
    }
    valset = None
    if main and spec.val and cfg.val_patches > 0:
        valset = ValPatches(spec.val, scale=cfg.scale, n=cfg.val_patches, hr_patch=cfg.hr_patch, degradation=cfg.degradation)  # type: ignore[arg-type]
    return spec, trainset, valset


def ignore_signals_in_worker(_: int) -> None:
    """DataLoader ``worker_init_fn``: Ctrl-C / SIGTERM are the main process's business (it checkpoints
    and stops the workers); one torch thread per worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.set_num_threads(1)


def loader(dataset: Any, start: int, stop: int, batch: int, dist: Dist, *, cuda: bool,
           workers: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """This process's share of the batches of steps ``start`` to ``stop``; ``workers`` None: 0 on CPU,
    on CUDA one per CPU core of this process less one, at most 8."""
    from torch.utils.data import DataLoader

    from sdr2hdr.data.patches import StepBatchSampler

    if workers is None:
        workers = min(8, max(1, (os.cpu_count() or 2) // dist.world - 1)) if cuda else 0
    sampler = StepBatchSampler(start, stop, batch, dist.rank, dist.world)
    kw: dict[str, Any] = {}
    if workers > 0:
        kw = {"worker_init_fn": ignore_signals_in_worker, "prefetch_factor": 4, "persistent_workers": False}
    return iter(DataLoader(dataset, batch_sampler=sampler, num_workers=workers, pin_memory=cuda, **kw))


def to_device(sdr: torch.Tensor, hdr: torch.Tensor, device: torch.device, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """8-bit SDR and 10-bit HDR code values as float network input / target in [0, 1] on ``device``."""
    x = sdr.to(device, non_blocking=True).float().div_(255.0)
    y = hdr.to(device, non_blocking=True).float().div_(1023.0)
    if channels_last:
        x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
    return x, y
