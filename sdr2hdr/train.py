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
k * batch + i)`` (:class:`sdr2hdr.data.datasets.TrainPatches`): a checkpoint
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
the three planes of a patch, prediction not clipped, mean over patches.

Multi-GPU: launch with ``torchrun --nproc_per_node N -m sdr2hdr train ...``;
each process takes ``batch / N`` patches of the same global batch, the
generator runs under DistributedDataParallel, the discriminators' gradients
are all-reduced and, on CUDA, their BatchNorm is SyncBatchNorm (statistics
over the global batch, as on one GPU; the RaHinge batch means stay per
process). Rank 0 validates, logs and writes files. On CUDA: bf16 autocast and
channels_last by default.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sdr2hdr.data.degrade import Degradation
from sdr2hdr.errors import InputError, OutputError
from sdr2hdr.precision import resolve_precision

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train",
    "psnr",
    "stage1_lr",
    "stage2_lr",
    "CHECKPOINT",
    "CHECKPOINT_META",
    "LOG",
    "weights_name",
    "load_checkpoint",
    "TrainingInterrupted",
    "jsinet_step",
    "jsigan_step",
]

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_META = "checkpoint.json"
LOG = "log.jsonl"
RUN = "run.json"
CKPT_FORMAT = "sdr2hdr-train-checkpoint-1"
STAGES = ("jsinet", "jsigan")
GAN_FRACTION = 25  # stage-2 length = stage-1 length / 25 (10 of 250 epochs)
PAPER_EPOCHS = 250


class TrainingInterrupted(KeyboardInterrupt):
    """Raised after Ctrl-C / SIGTERM once the checkpoint is written."""


@dataclass
class TrainConfig:
    """Options of a training run. ``None`` means "the default" (or, with
    ``resume``, the value the checkpointed run used)."""

    data: list[str] = field(default_factory=list)
    out: str = "runs/train"
    stage: str | None = None  # "jsinet", "jsigan" or "both" (default both)
    scale: int | None = None  # default 2
    steps: int | None = None  # stage-1 steps (or the one stage's)
    epochs: float | None = None  # instead of steps (default 250 epochs)
    gan_steps: int | None = None  # stage-2 steps with stage "both" (default stage-1 / 25)
    gan_epochs: float | None = None
    batch_size: int | None = None  # global batch, default 8
    seed: int | None = None  # default 0
    hr_patch: int | None = None  # default 160 (LR 80 for x2, 40 for x4)
    lr: float = 1e-4
    gan_lr: float = 1e-6
    schedule: str | None = None  # stage-1 lr: "step" (the paper's x0.1 at 80 % / 90 %) or "cosine"; default step
    init: str | None = None  # starting weights: stage 1 (warm restart), or stage 2 when stage is "jsigan"
    heldout: list[str] = field(default_factory=list)  # scenes held out besides the hash rule
    real_share: float | None = None  # share of patches from real SDR/HDR pairs (default: by patch count)
    val_patches: int = 500
    val_interval: int = 1000
    val_batch: int = 16
    ckpt_interval: int = 1000
    log_interval: int = 10
    workers: int | None = None  # DataLoader workers (default: 0 on CPU, up to 8 on CUDA)
    threads: int | None = None  # torch CPU threads (default: torch's)
    device: str = "auto"
    precision: str | None = None  # auto | fp32 | bf16 | fp16 (sdr2hdr.precision); default auto
    amp: bool = True  # False forces fp32 (the old --no-amp)
    channels_last: bool = True  # on CUDA
    resume: bool = False
    max_video_frames: int = 48
    heldout_fraction: float | None = None
    degradation: Degradation = field(default_factory=Degradation)
    progress: bool = True
    quiet: bool = False

    #: Options that define the run: a resumed run takes them from the checkpoint.
    RUN_KEYS = ("stage", "scale", "steps", "epochs", "gan_steps", "gan_epochs", "batch_size", "seed", "hr_patch", "heldout_fraction",
                "schedule", "precision", "real_share")


@dataclass
class TrainResult:
    out: Path
    files: dict[str, Path]
    best_psnr: dict[str, float | None]
    steps: dict[str, int]
    heldout: list[str]
    interrupted: bool = False


# --------------------------------------------------------------------------- small helpers


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (``B``), peak 1, MSE over all planes; the prediction is not clipped."""
    d = pred.double() - target.double()
    mse = (d * d).flatten(1).mean(dim=1).clamp(min=1e-20)
    return -10.0 * torch.log10(mse)


def stage1_lr(step: int, total: int, base: float = 1e-4, schedule: str = "step") -> float:
    """JSInet learning rate at ``step`` of ``total``.

    ``"step"`` (the paper): ``base``, x0.1 from 80 % of the steps, x0.01 from 90 %
    (epochs 200, 225 of 250). ``"cosine"`` (the short CPU recipe): a linear
    warm-up over the first 2 % of the steps (a warm restart from ``--init``
    must not kick the weights with the full rate on a cold Adam state), then
    half a cosine from ``base`` down to 0.
    """
    if schedule == "cosine":
        warm = max(1, total // 50)
        if step < warm:
            return base * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))
    if schedule != "step":
        raise ValueError(f"unknown learning-rate schedule {schedule!r} (step or cosine)")
    m1, m2 = int(round(0.8 * total)), int(round(0.9 * total))
    return base * (0.1 if step >= m1 else 1.0) * (0.1 if step >= m2 else 1.0)


def stage2_lr(step: int, total: int, base: float = 1e-6) -> float:
    """JSI-GAN: ``base`` for the first half of the steps, then linear to 0 at the end."""
    half = total // 2
    if step < half:
        return base
    return base * max(0.0, (total - step) / max(1, total - half))


def weights_name(variant: str, scale: int, which: str) -> str:
    return f"{variant}-x{scale}-{which}.safetensors"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


# --------------------------------------------------------------------------- distributed


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    enabled: bool = False
    owned: bool = False  # this run created the process group (and destroys it at the end)

    def close(self) -> None:
        if self.enabled and self.owned and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
            self.owned = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def any(self, flag: bool, device: torch.device) -> bool:
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        torch.distributed.all_reduce(t)
        return bool(t.item() > 0)

    def mean_dict(self, d: dict[str, float], device: torch.device) -> dict[str, float]:
        if not self.enabled or not d:
            return d
        keys = sorted(d)
        t = torch.tensor([d[k] for k in keys], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t.tolist())}

    def average_grads(self, module: nn.Module) -> None:
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
        if not self.enabled:
            return
        for t in list(module.parameters()) + list(module.buffers()):
            torch.distributed.broadcast(t.data, 0)


def _init_dist(device_kind: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    owned = False
    if not dist.is_initialized():
        if device_kind == "cuda":
            # The device first, and named to NCCL: otherwise every rank creates a context on GPU 0.
            torch.cuda.set_device(local)
            dist.init_process_group(backend="nccl", device_id=torch.device("cuda", local))
        else:
            dist.init_process_group(backend="gloo")
        owned = True
    return _Dist(rank=rank, world=world, local_rank=local, enabled=True, owned=owned)


# --------------------------------------------------------------------------- checkpoints


def _rng_state() -> dict[str, Any]:
    st: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = torch.cuda.get_rng_state()  # this process's device only: no context on the others
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    if "torch" in st:
        torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        with contextlib.suppress(Exception):
            state = st["cuda"]
            torch.cuda.set_rng_state(state[0] if isinstance(state, (list, tuple)) else state)


def save_checkpoint(out: Path, payload: dict[str, Any]) -> str:
    """Write ``checkpoint.pt`` atomically and its sidecar ``checkpoint.json`` (sha256, stage, step)."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    digest = _sha256(data)
    tmp = out / (CHECKPOINT + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out / CHECKPOINT)
    meta = {"format": CKPT_FORMAT, "sha256": digest, "stage": payload["stage"], "step": payload["step"], "saved": _now()}
    tmpm = out / (CHECKPOINT_META + ".tmp")
    tmpm.write_text(json.dumps(meta, indent=1))
    os.replace(tmpm, out / CHECKPOINT_META)
    return digest


def load_checkpoint(out: Path) -> dict[str, Any]:
    """Load and verify ``OUT/checkpoint.pt``; any doubt is a one-line refusal (never a silent restart)."""
    path, meta_path = out / CHECKPOINT, out / CHECKPOINT_META
    if not path.is_file():
        raise InputError(f"--resume: no checkpoint to resume at {path}")
    if not meta_path.is_file():
        raise InputError(f"{path}: its {CHECKPOINT_META} (sha256) is missing: cannot verify the checkpoint, refusing to resume")
    try:
        meta = json.loads(meta_path.read_text())
        expected = str(meta["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"{meta_path}: unreadable checkpoint record, refusing to resume") from None
    data = path.read_bytes()
    if _sha256(data) != expected:
        raise InputError(f"{path}: corrupt checkpoint (sha256 differs from {CHECKPOINT_META}: truncated or modified), refusing to resume")
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle safely
        raise InputError(f"{path}: corrupt or unsafe checkpoint ({str(exc).splitlines()[0][:160]}), refusing to resume") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise InputError(f"{path}: not an sdr2hdr training checkpoint ({CKPT_FORMAT}), refusing to resume")
    for k in ("stage", "step", "total", "config", "generator", "opt_g"):
        if k not in ckpt:
            raise InputError(f"{path}: checkpoint lacks {k!r}, refusing to resume")
    return ckpt


# --------------------------------------------------------------------------- the trainer


class _Logger:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._f = open(path, "a", encoding="utf-8") if path is not None else None  # noqa: SIM115

    def __call__(self, **rec: Any) -> None:
        if self._f is None:
            return
        rec.setdefault("time", _now())
        self._f.write(json.dumps(rec, sort_keys=False) + "\n")
        self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _ignore_signals_in_worker(_: int) -> None:
    # Ctrl-C / SIGTERM are the main process's business (it checkpoints and stops the workers).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.set_num_threads(1)


class _StopFlag:
    """Ctrl-C / SIGTERM / SIGHUP set the flag; the loop checkpoints after the current step. A second Ctrl-C aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "_StopFlag":
        import threading

        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def _resolve_device(name: str, dist: _Dist) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda: no CUDA device is available")
        if dist.enabled:
            dev = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(dev)
    return dev


def _config_record(cfg: TrainConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["degradation"] = cfg.degradation.to_dict()
    return d


class Trainer:
    """One training run (both stages); see the module doc. Use :func:`train`."""

    def __init__(self, cfg: TrainConfig, on_step: Callable[[str, int, dict[str, float]], bool | None] | None = None) -> None:
        self.cfg = cfg
        self.on_step = on_step
        if cfg.threads:
            torch.set_num_threads(int(cfg.threads))
        self.out = Path(cfg.out)
        self.dist = _init_dist("cuda" if (cfg.device in ("auto", "cuda") and torch.cuda.is_available()) or cfg.device.startswith("cuda") else "cpu")
        self.device = _resolve_device(cfg.device, self.dist)
        self.cuda = self.device.type == "cuda"
        self.channels_last = bool(cfg.channels_last and self.cuda)
        self.ckpt: dict[str, Any] | None = None
        self.stop = _StopFlag()
        self.files: dict[str, Path] = {}
        self.best: dict[str, float | None] = {"jsinet": None, "jsigan": None}
        self.done_steps: dict[str, int] = {}
        self._prepare_out()
        self._resolve_config()
        self.precision = resolve_precision(cfg.precision if cfg.amp else "fp32", self.device)  # type: ignore[arg-type]
        if self.precision.name == "fp16":
            raise InputError("--precision fp16: training needs bf16 or fp32 (fp16 gradients would need loss scaling)")

    # ------------------------------------------------------------ setup

    def _prepare_out(self) -> None:
        cfg = self.cfg
        if cfg.resume:
            self.ckpt = load_checkpoint(self.out)
            return
        if (self.out / CHECKPOINT).exists() or (self.out / CHECKPOINT_META).exists():
            raise OutputError(f"{self.out} already holds a training run ({CHECKPOINT}); pass --resume to continue it or choose another --out")
        if self.out.exists() and not self.out.is_dir():
            raise OutputError(f"--out {self.out} is a file, not a folder")

    def _make_out(self) -> None:
        if self.dist.main:
            try:
                self.out.mkdir(parents=True, exist_ok=True)
                probe = self.out / ".write-test"
                probe.write_text("")
                probe.unlink()
            except OSError as exc:
                raise OutputError(f"{self.out}: cannot write the training output here ({exc.strerror or exc})") from None
        self.dist.barrier()

    def _resolve_config(self) -> None:
        cfg = self.cfg
        if self.ckpt is not None:
            saved = json.loads(self.ckpt["config"])
            for k in TrainConfig.RUN_KEYS:
                mine = getattr(cfg, k)
                if mine is None:
                    setattr(cfg, k, saved.get(k))
                elif saved.get(k) is not None and mine != saved.get(k):
                    opt = "--" + k.replace("_", "-")
                    raise InputError(
                        f"{self.out / CHECKPOINT}: the run was made with {opt} {saved.get(k)}, not {mine}; "
                        "resume with the same options (or leave them out)"
                    )
            if not cfg.data:
                cfg.data = list(saved.get("data") or [])
            if saved.get("degradation") and Degradation(**_tuples(saved["degradation"])) != cfg.degradation:
                cfg.degradation = Degradation(**_tuples(saved["degradation"]))
            if cfg.init is None:
                cfg.init = saved.get("init")
        cfg.stage = cfg.stage or "both"
        cfg.schedule = cfg.schedule or "step"
        if cfg.schedule not in ("step", "cosine"):
            raise InputError(f"--schedule must be step or cosine, not {cfg.schedule!r}")
        cfg.precision = cfg.precision or "auto"
        if cfg.stage not in ("jsinet", "jsigan", "both"):
            raise InputError(f"--stage must be jsinet, jsigan or both, not {cfg.stage!r}")
        cfg.scale = int(cfg.scale or 2)
        if cfg.scale not in (2, 4):
            raise InputError(f"--scale must be 2 or 4, not {cfg.scale}")
        cfg.batch_size = int(cfg.batch_size or 8)
        cfg.seed = int(cfg.seed if cfg.seed is not None else 0)
        cfg.hr_patch = int(cfg.hr_patch or 160)
        if cfg.hr_patch % (2 * cfg.scale):
            raise InputError(f"--hr-patch {cfg.hr_patch} must be a multiple of {2 * cfg.scale} for x{cfg.scale}")
        if cfg.stage in ("jsigan", "both") and cfg.hr_patch != 160:
            raise InputError(f"--hr-patch {cfg.hr_patch}: JSI-GAN's discriminators take 160x160 HR patches (use --hr-patch 160 or --stage jsinet)")
        per_bn = cfg.batch_size if self._sync_bn else cfg.batch_size // self.dist.world
        if cfg.stage in ("jsigan", "both") and per_bn < 3:
            raise InputError(
                f"--batch-size {cfg.batch_size}: JSI-GAN needs at least 3 patches per discriminator batch "
                f"({per_bn} here): the last BatchNorm maps 2 logits to +-1 whatever they are, and the discriminators stop learning"
            )
        if cfg.batch_size % self.dist.world:
            raise InputError(f"--batch-size {cfg.batch_size} is not divisible by the {self.dist.world} processes")
        if cfg.heldout_fraction is None:
            from sdr2hdr.data.datasets import HELDOUT_FRACTION

            cfg.heldout_fraction = HELDOUT_FRACTION
        if not cfg.data:
            raise InputError("no --data given: name a folder of HDR stills / videos, sdr/+hdr/ pairs or the authors' .mat files")
        if cfg.stage == "jsigan" and self.ckpt is None:
            self._stage1_weights()  # refuse before anything is written
        for k in ("steps", "gan_steps"):
            v = getattr(cfg, k)
            if v is not None and v < 1:
                raise InputError(f"--{k.replace('_', '-')} must be at least 1")

    def _stage_plan(self, epoch_size: int) -> list[tuple[str, int]]:
        cfg = self.cfg
        spe = max(1, epoch_size // cfg.batch_size)  # steps per epoch

        def n(steps: int | None, epochs: float | None, default_epochs: float) -> int:
            if steps is not None:
                return int(steps)
            return max(1, int(round((epochs if epochs is not None else default_epochs) * spe)))

        s1 = n(cfg.steps, cfg.epochs, PAPER_EPOCHS)
        if cfg.stage == "jsinet":
            return [("jsinet", s1)]
        if cfg.stage == "jsigan":
            return [("jsigan", n(cfg.steps, cfg.epochs, PAPER_EPOCHS / GAN_FRACTION))]
        s2 = n(cfg.gan_steps, cfg.gan_epochs, 0.0) if (cfg.gan_steps or cfg.gan_epochs) else max(1, s1 // GAN_FRACTION)
        return [("jsinet", s1), ("jsigan", s2)]

    # ------------------------------------------------------------ models

    def _generator(self) -> nn.Module:
        from sdr2hdr.models import JSInet

        torch.manual_seed(self.cfg.seed)
        g = JSInet(scale=self.cfg.scale).to(self.device)
        if self.channels_last:
            g = g.to(memory_format=torch.channels_last)
        return g

    @property
    def _sync_bn(self) -> bool:
        """Multi-GPU: the discriminators' BatchNorm takes its statistics over the global batch."""
        return self.dist.enabled and self.cuda

    def _discriminators(self) -> tuple[nn.Module, nn.Module]:
        from sdr2hdr.models import Discriminator

        torch.manual_seed(self.cfg.seed + 1)
        d1, d2 = Discriminator().to(self.device), Discriminator().to(self.device)
        if self._sync_bn:
            d1, d2 = nn.SyncBatchNorm.convert_sync_batchnorm(d1), nn.SyncBatchNorm.convert_sync_batchnorm(d2)
        if self.channels_last:
            d1, d2 = d1.to(memory_format=torch.channels_last), d2.to(memory_format=torch.channels_last)
        return d1, d2

    def _stage1_weights(self) -> Path:
        cfg = self.cfg
        if cfg.init and cfg.stage == "jsigan":
            return Path(cfg.init)
        for which in ("best", "last"):
            p = self.out / weights_name("jsinet", cfg.scale, which)  # type: ignore[arg-type]
            if p.is_file():
                return p
        raise InputError(
            f"--stage jsigan needs JSInet weights to start from: none at {self.out / weights_name('jsinet', cfg.scale, 'best')} "  # type: ignore[arg-type]
            "(train --stage jsinet first, or pass --init PATH.safetensors)"
        )

    def _load_init(self, g: nn.Module, path: Path) -> None:
        from sdr2hdr.errors import WeightsError
        from sdr2hdr.zoo import read_safetensors

        tensors, meta = read_safetensors(path)
        if meta.get("architecture", "jsinet") != "jsinet":
            raise WeightsError(f"{path}: not JSInet weights (architecture {meta.get('architecture')!r})")
        if meta.get("scale") and int(meta["scale"]) != self.cfg.scale:
            raise WeightsError(f"{path}: weights are x{meta['scale']}, but --scale {self.cfg.scale} was asked for")
        try:
            g.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            raise WeightsError(f"{path}: tensors do not fit JSInet x{self.cfg.scale} ({str(exc).splitlines()[0]})") from None

    # ------------------------------------------------------------ data

    def _data(self):  # noqa: ANN202
        from sdr2hdr.data.datasets import TrainPatches, ValPatches, collect_sources

        cfg = self.cfg
        spec = collect_sources(
            cfg.data, cfg.scale, hr_patch=cfg.hr_patch, max_video_frames=cfg.max_video_frames,  # type: ignore[arg-type]
            heldout_fraction=cfg.heldout_fraction, heldout=cfg.heldout,  # type: ignore[arg-type]
        )
        self.spec = spec
        self.trainset = {
            st: TrainPatches(spec.train, scale=cfg.scale, seed=cfg.seed, hr_patch=cfg.hr_patch, degradation=cfg.degradation, stream=i,  # type: ignore[arg-type]
                             real_share=cfg.real_share)
            for i, st in enumerate(STAGES)
        }
        self.valset = None
        if self.dist.main and spec.val and cfg.val_patches > 0:
            self.valset = ValPatches(spec.val, scale=cfg.scale, n=cfg.val_patches, hr_patch=cfg.hr_patch, degradation=cfg.degradation)  # type: ignore[arg-type]

    def _loader(self, stage: str, start: int, stop: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        from torch.utils.data import DataLoader

        from sdr2hdr.data.datasets import StepBatchSampler

        cfg = self.cfg
        workers = cfg.workers
        if workers is None:
            workers = min(8, max(1, (os.cpu_count() or 2) // self.dist.world - 1)) if self.cuda else 0
        sampler = StepBatchSampler(start, stop, cfg.batch_size, self.dist.rank, self.dist.world)  # type: ignore[arg-type]
        kw: dict[str, Any] = {}
        if workers > 0:
            kw = {"worker_init_fn": _ignore_signals_in_worker, "prefetch_factor": 4, "persistent_workers": False}
        loader = DataLoader(self.trainset[stage], batch_sampler=sampler, num_workers=workers, pin_memory=self.cuda, **kw)
        return iter(loader)

    def _to_device(self, sdr: torch.Tensor, hdr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = sdr.to(self.device, non_blocking=True).float().div_(255.0)
        y = hdr.to(self.device, non_blocking=True).float().div_(1023.0)
        if self.channels_last:
            x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
        return x, y

    def _autocast(self):  # noqa: ANN202
        return self.precision.autocast()

    # ------------------------------------------------------------ validation / saving

    @torch.no_grad()
    def validate(self, g: nn.Module) -> float | None:
        if self.valset is None or len(self.valset) == 0:
            return None
        g.eval()
        vals = []
        for sdr, hdr in self.valset.batches(self.cfg.val_batch):
            x, y = self._to_device(sdr, hdr)
            with self._autocast():
                p = g(x)
            vals.append(psnr(p.float(), y).cpu())
        g.train()
        return float(torch.cat(vals).mean())

    def _save_weights(self, g: nn.Module, variant: str, which: str, step: int, val: float | None) -> Path:
        from sdr2hdr.zoo import save_weights

        cfg = self.cfg
        path = self.out / weights_name(variant, cfg.scale, which)  # type: ignore[arg-type]
        recipe = {
            "stage": variant, "step": step, "batch_size": cfg.batch_size, "hr_patch": cfg.hr_patch, "seed": cfg.seed,
            "lr": cfg.lr if variant == "jsinet" else cfg.gan_lr, "degradation": cfg.degradation.to_dict(),
            "schedule": cfg.schedule if variant == "jsinet" else "paper", "precision": self.precision.name,
            "init": cfg.init or "", "data": [str(d) for d in cfg.data], "heldout_forced": list(cfg.heldout),
            "real_share": "" if cfg.real_share is None else cfg.real_share,
        }
        save_weights(
            g, path, architecture="jsinet", scale=cfg.scale, variant=variant,  # type: ignore[arg-type]
            recipe=recipe, date=_now(), trained_on=self.spec.describe(), step=str(step),
            val_psnr="" if val is None else f"{val:.4f}", heldout=self.spec.heldout,
        )
        self.files[f"{variant}-{which}"] = path
        return path

    def _checkpoint(self, stage: str, step: int, total: int, models: dict[str, nn.Module], opts: dict[str, torch.optim.Optimizer], extra: dict[str, Any]) -> None:
        payload: dict[str, Any] = {
            "format": CKPT_FORMAT,
            "stage": stage,
            "step": int(step),
            "total": int(total),
            "config": json.dumps(_config_record(self.cfg)),
            "rng": _rng_state(),
            "best": {k: (float(v) if v is not None else None) for k, v in self.best.items()},
            "done_steps": dict(self.done_steps),
        }
        payload.update(extra)
        for k, m in models.items():
            payload[k] = {n: t.detach().cpu() for n, t in _unwrap(m).state_dict().items()}
        for k, o in opts.items():
            payload[k] = o.state_dict()
        save_checkpoint(self.out, payload)
        self.files["checkpoint"] = self.out / CHECKPOINT

    # ------------------------------------------------------------ the run

    def run(self) -> TrainResult:
        cfg = self.cfg
        self._data()
        if self.ckpt is None:
            self._make_out()
        plan = self._stage_plan(self.trainset["jsinet"].epoch_size)
        self.plan = plan
        log = _Logger(self.out / LOG if self.dist.main else None)
        self.log = log
        if self.dist.main:
            (self.out / RUN).write_text(json.dumps({**_config_record(cfg), "plan": plan, "heldout": self.spec.heldout,
                                                    "epoch_size": self.trainset["jsinet"].epoch_size, "world": self.dist.world}, indent=1))
        start_stage, start_step = plan[0][0], 0
        if self.ckpt is not None:
            start_stage, start_step = str(self.ckpt["stage"]), int(self.ckpt["step"])
            self.best.update({k: v for k, v in dict(self.ckpt.get("best") or {}).items()})
            self.done_steps.update(dict(self.ckpt.get("done_steps") or {}))
            if start_stage not in [s for s, _ in plan]:
                raise InputError(f"{self.out / CHECKPOINT}: checkpoint of stage {start_stage}, not part of --stage {cfg.stage}")
            _set_rng_state(self.ckpt.get("rng") or {})
        log(event="start" if self.ckpt is None else "resume", stage=start_stage, step=start_step, plan=plan,
            device=str(self.device), world=self.dist.world, data=self.spec.describe(),
            train_samples_per_epoch=self.trainset["jsinet"].epoch_size, val_patches=0 if self.valset is None else len(self.valset))
        interrupted = False
        try:
            with self.stop:
                started = False
                for stage, total in plan:
                    if not started and stage != start_stage:
                        continue
                    step0 = start_step if not started else 0
                    started = True
                    ckpt = self.ckpt if (self.ckpt is not None and str(self.ckpt["stage"]) == stage) else None
                    if stage == "jsinet":
                        interrupted = self._stage1(total, step0, ckpt)
                    else:
                        interrupted = self._stage2(total, step0, ckpt)
                    if interrupted:
                        break
        finally:
            log.close()
        if interrupted:
            raise TrainingInterrupted(f"interrupted: checkpoint saved to {self.out / CHECKPOINT}; continue with --resume")
        if self.dist.main:
            self.files["log"] = self.out / LOG
        return TrainResult(out=self.out, files=dict(self.files), best_psnr=dict(self.best), steps=dict(self.done_steps), heldout=list(self.spec.heldout))

    def _progress(self, stage: str, total: int, start: int):  # noqa: ANN202
        if not (self.cfg.progress and self.dist.main and not self.cfg.quiet):
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        console = Console(stderr=True)
        p = Progress(
            TextColumn(f"[bold]{stage}[/] x{self.cfg.scale}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, disable=not console.is_terminal, transient=False,
        )
        p.start()
        task = p.add_task(stage, total=total, completed=start, info="")
        return p, task

    def _loop(self, stage: str, total: int, step0: int, step_fn: Callable[[torch.Tensor, torch.Tensor, int], dict[str, float]],
              g: nn.Module, models: dict[str, nn.Module], opts: dict[str, torch.optim.Optimizer]) -> bool:
        """The shared loop: data, logging, validation, checkpoints, stop requests. True if interrupted."""
        cfg = self.cfg
        variant = stage
        prog = self._progress(stage, total, step0)
        it = self._loader(stage, step0, total)
        step = step0
        t_last, n_last, wait = time.perf_counter(), 0, 0.0
        sums: dict[str, float] = {}
        stopped = False
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
                wait += time.perf_counter() - t0
                x, y = self._to_device(sdr, hdr)
                terms = step_fn(x, y, step)
                step += 1
                n_last += 1
                for k, v in terms.items():
                    if k != "lr":
                        sums[k] = sums.get(k, 0.0) + v
                if self.on_step is not None and self.on_step(stage, step, terms):
                    self.stop.requested = True
                if step % cfg.log_interval == 0 or step == total:
                    sums = self.dist.mean_dict(sums, self.device)  # every process's share of the batch
                    now = time.perf_counter()
                    dt = max(now - t_last, 1e-9)
                    rec = {k: v / n_last for k, v in sums.items()}
                    if self.dist.main:
                        self.log(event="train", stage=stage, step=step, **rec, lr=terms.get("lr"), steps_per_s=n_last / dt,
                                 samples_per_s=n_last * cfg.batch_size / dt, data_wait_frac=wait / dt)  # type: ignore[operator]
                    if prog:
                        prog[0].update(prog[1], completed=step, info=f"loss {rec.get('loss', 0):.5f} lr {terms.get('lr', 0):.1e} {n_last / dt:.2f} it/s")
                    t_last, n_last, wait, sums = now, 0, 0.0, {}
                elif prog:
                    prog[0].update(prog[1], completed=step)
                if self.dist.main and (step % cfg.val_interval == 0 or step == total):
                    val = self.validate(_unwrap(g))
                    best = self.best.get(variant)
                    improved = val is not None and (best is None or val > best)
                    self.log(event="val", stage=stage, step=step, psnr=val, best=improved)
                    if improved:
                        self.best[variant] = val
                        self._save_weights(_unwrap(g), variant, "best", step, val)
                    if prog and val is not None:
                        prog[0].console.print(f"{stage} step {step}: validation PSNR {val:.3f} dB" + (" (best)" if improved else ""))
                if step % cfg.ckpt_interval == 0 or step == total:
                    self.done_steps[stage] = step
                    if self.dist.main:
                        self._save_weights(_unwrap(g), variant, "last", step, None)
                        self._checkpoint(stage, step, total, models, opts, {})
                        self.log(event="checkpoint", stage=stage, step=step)
                    self.dist.barrier()
        finally:
            if prog:
                prog[0].stop()
            del it
        self.done_steps[stage] = step
        if stopped:
            if self.dist.main:
                self._save_weights(_unwrap(g), variant, "last", step, None)
                self._checkpoint(stage, step, total, models, opts, {})
                self.log(event="stop", stage=stage, step=step, reason="signal")
            self.dist.barrier()
            return True
        return False

    def _stage1(self, total: int, step0: int, ckpt: dict[str, Any] | None) -> bool:
        cfg = self.cfg
        g = self._generator()
        opt = torch.optim.Adam(g.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
        if ckpt is not None:
            g.load_state_dict(ckpt["generator"])
            opt.load_state_dict(ckpt["opt_g"])
        elif cfg.init:
            self._load_init(g, Path(cfg.init))
            self.log(event="init", stage="jsinet", weights=str(cfg.init))
        self.dist.broadcast_module(g)
        gm = _ddp(g, self.dist, self.device)
        gm.train()

        def step_fn(x: torch.Tensor, y: torch.Tensor, step: int) -> dict[str, float]:
            return jsinet_step(gm, opt, x, y, stage1_lr(step, total, cfg.lr, cfg.schedule or "step"), autocast=self._autocast)

        return self._loop("jsinet", total, step0, step_fn, gm, {"generator": g}, {"opt_g": opt})

    def _stage2(self, total: int, step0: int, ckpt: dict[str, Any] | None) -> bool:
        from sdr2hdr.models.losses import LossWeights

        cfg = self.cfg
        w = LossWeights()
        g = self._generator()
        d1, d2 = self._discriminators()
        betas = (0.9, 0.999)
        opt_g = torch.optim.Adam(g.parameters(), lr=cfg.gan_lr, betas=betas)
        opt_d1 = torch.optim.Adam(d1.parameters(), lr=cfg.gan_lr, betas=betas)
        opt_d2 = torch.optim.Adam(d2.parameters(), lr=cfg.gan_lr, betas=betas)
        if ckpt is not None:
            for k, m in (("generator", g), ("d1", d1), ("d2", d2)):
                if k not in ckpt:
                    raise InputError(f"{self.out / CHECKPOINT}: JSI-GAN checkpoint lacks {k!r}, refusing to resume")
                m.load_state_dict(ckpt[k])
            opt_g.load_state_dict(ckpt["opt_g"])
            opt_d1.load_state_dict(ckpt["opt_d1"])
            opt_d2.load_state_dict(ckpt["opt_d2"])
        else:
            init = self._stage1_weights()
            self._load_init(g, init)
            self.log(event="init", stage="jsigan", weights=str(init))
        for m in (g, d1, d2):
            self.dist.broadcast_module(m)
        gm = _ddp(g, self.dist, self.device)
        for m in (gm, d1, d2):
            m.train()

        def step_fn(x: torch.Tensor, y: torch.Tensor, step: int) -> dict[str, float]:
            return jsigan_step(gm, d1, d2, opt_g, opt_d1, opt_d2, x, y, stage2_lr(step, total, cfg.gan_lr),
                               weights=w, autocast=self._autocast, dist=self.dist)

        return self._loop(
            "jsigan", total, step0, step_fn, gm, {"generator": g, "d1": d1, "d2": d2}, {"opt_g": opt_g, "opt_d1": opt_d1, "opt_d2": opt_d2}
        )


# --------------------------------------------------------------------------- one optimiser step


def jsinet_step(
    g: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, lr: float,
    *, autocast: Callable[[], Any] = contextlib.nullcontext,
) -> dict[str, float]:
    """One JSInet step: ``L2 = mean((Y - P)**2)``, Adam at ``lr``. Returns ``{"loss", "lr"}``."""
    _set_lr(opt, lr)
    with autocast():
        p = g(x)
    loss = F.mse_loss(p.float(), y.float())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": float(loss.detach()), "lr": lr}


def jsigan_step(
    g: nn.Module, d1: nn.Module, d2: nn.Module,
    opt_g: torch.optim.Optimizer, opt_d1: torch.optim.Optimizer, opt_d2: torch.optim.Optimizer,
    x: torch.Tensor, y: torch.Tensor, lr: float, *, weights: Any = None,
    autocast: Callable[[], Any] = contextlib.nullcontext, dist: Any = None,
) -> dict[str, float]:
    """One JSI-GAN step (spec "Losses"): update D1 and D2, then G.

    ``P = G(X)`` once; D1 sees ``Y`` / ``P.detach()``, D2 the detail layers
    ``Yd`` / ``Pd.detach()`` (real and fake in separate calls, as the authors'
    graph); ``L_D1`` and ``L_D2 = lambda_d * RaHinge_D`` step D1 and D2. Then,
    with the updated (frozen) discriminators, ``L_G = lambda_rec L2 +
    lambda_adv (G_D1 + lambda_d G_D2) + lambda_fm (FM_D1 + lambda_d FM_D2)``
    steps G. All three optimisers at ``lr``. Returns the loss terms:
    ``loss`` (L_G), ``loss_d1``, ``loss_d2``, ``rec``, ``adv1``, ``adv2``,
    ``fm1``, ``fm2`` (unweighted), ``lr``.
    """
    from sdr2hdr.models import detail_layer
    from sdr2hdr.models.losses import LossWeights, discriminator_losses, generator_loss

    w = weights or LossWeights()
    for o in (opt_g, opt_d1, opt_d2):
        _set_lr(o, lr)
    y = y.float()
    with autocast():
        p = g(x)
    p = p.float()
    yd = detail_layer(y)
    pd = detail_layer(p)
    d1.requires_grad_(True)
    d2.requires_grad_(True)
    with autocast():
        d1r, _ = d1(y)
        d1f, _ = d1(p.detach())
        d2r, _ = d2(yd)
        d2f, _ = d2(pd.detach())
    l_d1, l_d2 = discriminator_losses(d1r, d1f, d2r, d2f, w)
    opt_d1.zero_grad(set_to_none=True)
    opt_d2.zero_grad(set_to_none=True)
    (l_d1 + l_d2).backward()
    if dist is not None:
        dist.average_grads(d1)
        dist.average_grads(d2)
    opt_d1.step()
    opt_d2.step()
    d1.requires_grad_(False)
    d2.requires_grad_(False)
    try:
        with autocast():
            d1r, f1r = d1(y)
            d1f, f1f = d1(p)
            d2r, f2r = d2(yd)
            d2f, f2f = d2(pd)
        l_g, parts = generator_loss(y, p, d1r, d1f, d2r, d2f, f1r, f1f, f2r, f2f, w, return_parts=True)  # type: ignore[misc]
        opt_g.zero_grad(set_to_none=True)
        l_g.backward()
        opt_g.step()
    finally:
        d1.requires_grad_(True)
        d2.requires_grad_(True)
    out = {"loss": float(l_g.detach()), "loss_d1": float(l_d1.detach()), "loss_d2": float(l_d2.detach()), "lr": lr}
    out.update({k: float(v.detach()) for k, v in parts.items()})
    return out


def _unwrap(m: nn.Module) -> nn.Module:
    return m.module if hasattr(m, "module") and isinstance(m, nn.parallel.DistributedDataParallel) else m


def _ddp(m: nn.Module, dist: _Dist, device: torch.device) -> nn.Module:
    if not dist.enabled:
        return m
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(m, device_ids=ids)


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in {f.name for f in fields(Degradation)}}


def train(cfg: TrainConfig, *, on_step: Callable[[str, int, dict[str, float]], bool | None] | None = None) -> TrainResult:
    """Run (or, with ``cfg.resume``, continue) a training run; see the module doc.

    ``on_step(stage, step, terms)`` is called after every optimiser step;
    returning True asks the run to checkpoint and stop there, as SIGTERM does. Raises :class:`TrainingInterrupted`
    (a ``KeyboardInterrupt``) after writing the checkpoint when stopped by
    Ctrl-C / SIGTERM, and :class:`~sdr2hdr.errors.Sdr2HdrError` subclasses
    (one-line messages) for bad data, options or checkpoints.
    """
    trainer = Trainer(cfg, on_step=on_step)
    try:
        return trainer.run()
    finally:
        trainer.dist.close()  # a process group this run created is destroyed with it

