"""torch.distributed for training: the process group (torchrun's environment), each rank's device,
and the few collectives the loop needs. One process without torchrun is a disabled :class:`Dist`."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from sdr2hdr.inference.device import resolve_device, tune_for_fixed_shapes

__all__ = ["Dist", "ddp", "init_dist", "rank_device", "unwrap"]


@dataclass
class Dist:
    """This process's place in the run: rank, world size, local rank; collectives are no-ops when disabled."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    enabled: bool = False
    owned: bool = False  # this run created the process group (and destroys it at the end)

    def close(self) -> None:
        """Destroy the process group if this run created it (idempotent)."""
        if self.enabled and self.owned and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
            self.owned = False

    @property
    def main(self) -> bool:
        """Rank 0: validates, logs and writes the files."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every process."""
        if self.enabled:
            torch.distributed.barrier()

    def any(self, flag: bool, device: torch.device) -> bool:
        """True if ``flag`` is set in any process."""
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        torch.distributed.all_reduce(t)
        return bool(t.item() > 0)

    def mean_dict(self, d: dict[str, float], device: torch.device) -> dict[str, float]:
        """The mean over the processes of each value of ``d`` (same keys everywhere)."""
        if not self.enabled or not d:
            return d
        keys = sorted(d)
        t = torch.tensor([d[k] for k in keys], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t.tolist())}

    def average_grads(self, module: nn.Module) -> None:
        """Replace ``module``'s gradients by their mean over the processes (one flat all-reduce)."""
        if not self.enabled:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch._utils._flatten_dense_tensors(grads)
        torch.distributed.all_reduce(flat)
        flat /= self.world
        for g, f in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
            g.copy_(f)

    def broadcast_module(self, module: nn.Module) -> None:
        """Rank 0's parameters and buffers to every process."""
        if not self.enabled:
            return
        for t in list(module.parameters()) + list(module.buffers()):
            torch.distributed.broadcast(t.data, 0)


def _device_kind(device: str) -> str:
    """"cuda" or "cpu": the backend a ``--device`` asks for (NCCL or gloo)."""
    return "cuda" if (device in ("auto", "cuda") and torch.cuda.is_available()) or device.startswith("cuda") else "cpu"


def init_dist(device: str) -> Dist:
    """Join (or create) torchrun's process group for ``--device``; a disabled :class:`Dist` without torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    owned = False
    if not dist.is_initialized():
        if _device_kind(device) == "cuda":
            # The device first, and named to NCCL: otherwise every rank creates a context on GPU 0.
            torch.cuda.set_device(local)
            dist.init_process_group(backend="nccl", device_id=torch.device("cuda", local))
        else:
            dist.init_process_group(backend="gloo")
        owned = True
    return Dist(rank=rank, world=world, local_rank=local, enabled=True, owned=owned)


def rank_device(name: str, dist: Dist) -> torch.device:
    """``--device`` (:func:`sdr2hdr.inference.device.resolve_device`); under torchrun, CUDA is this rank's GPU (made current)."""
    dev = resolve_device(name)
    if dev.type == "cuda":
        if dist.enabled:
            dev = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(dev)
    tune_for_fixed_shapes(dev)  # every step has the same patch shapes
    return dev


def ddp(m: nn.Module, dist: Dist, device: torch.device) -> nn.Module:
    """``m`` under DistributedDataParallel when distributed, else ``m``."""
    if not dist.enabled:
        return m
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(m, device_ids=ids)


def unwrap(m: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or ``m``)."""
    return m.module if hasattr(m, "module") and isinstance(m, nn.parallel.DistributedDataParallel) else m
