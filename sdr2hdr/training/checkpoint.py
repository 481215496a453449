"""A run folder's files: the checkpoint (resume), the weights (through :mod:`sdr2hdr.zoo`), the folder itself.

``checkpoint.pt`` holds models, optimisers, stage, step, best PSNR and RNG states; its sidecar
``checkpoint.json`` its sha256, checked before ``torch.load(weights_only=True)`` (tensors and plain
containers only, never arbitrary pickles). Weights are registry-compatible safetensors files.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sdr2hdr.errors import InputError, OutputError, WeightsError, one_line
from sdr2hdr.training.config import TrainConfig
from sdr2hdr.training.dist import unwrap

__all__ = [
    "CHECKPOINT", "CHECKPOINT_META", "CKPT_FORMAT", "LOG", "RUN",
    "load_checkpoint", "load_init", "make_out", "now", "prepare_out", "save_checkpoint", "save_run_weights",
    "set_rng_state", "stage1_weights", "weights_name", "write_checkpoint",
]

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_META = "checkpoint.json"
LOG = "log.jsonl"
RUN = "run.json"
CKPT_FORMAT = "sdr2hdr-train-checkpoint-1"


def now() -> str:
    """UTC time, ISO 8601 to the second (log records, metadata)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- the run folder


def prepare_out(out: Path, resume: bool) -> dict[str, Any] | None:
    """The checkpoint to resume (``resume``), else None after checking ``out`` may hold a new run."""
    if resume:
        return load_checkpoint(out)
    if (out / CHECKPOINT).exists() or (out / CHECKPOINT_META).exists():
        raise OutputError(f"{out} already holds a training run ({CHECKPOINT}); pass --resume to continue it or choose another --out")
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file, not a folder")
    return None


def make_out(out: Path) -> None:
    """Create ``out`` and prove it writable (one-line :class:`OutputError` otherwise)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"{out}: cannot write the training output here ({exc.strerror or exc})") from None


# --------------------------------------------------------------------------- checkpoints


def rng_state() -> dict[str, Any]:
    """torch's CPU RNG state and, if CUDA is in use, this process's device's."""
    st: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = torch.cuda.get_rng_state()  # this process's device only: no context on the others
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    """Restore :func:`rng_state`'s record."""
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
    meta = {"format": CKPT_FORMAT, "sha256": digest, "stage": payload["stage"], "step": payload["step"], "saved": now()}
    tmpm = out / (CHECKPOINT_META + ".tmp")
    tmpm.write_text(json.dumps(meta, indent=1))
    os.replace(tmpm, out / CHECKPOINT_META)
    return digest


def write_checkpoint(
    out: Path, cfg: TrainConfig, *, stage: str, step: int, total: int, best: dict[str, float | None], done_steps: dict[str, int],
    models: dict[str, nn.Module], opts: dict[str, torch.optim.Optimizer],
) -> Path:
    """The run's state at ``step`` of ``stage`` (models on CPU, optimisers, RNG, options) as ``OUT/checkpoint.pt``."""
    payload: dict[str, Any] = {
        "format": CKPT_FORMAT,
        "stage": stage,
        "step": int(step),
        "total": int(total),
        "config": json.dumps(cfg.record()),
        "rng": rng_state(),
        "best": {k: (float(v) if v is not None else None) for k, v in best.items()},
        "done_steps": dict(done_steps),
    }
    for k, m in models.items():
        payload[k] = {n: t.detach().cpu() for n, t in unwrap(m).state_dict().items()}
    for k, o in opts.items():
        payload[k] = o.state_dict()
    save_checkpoint(out, payload)
    return out / CHECKPOINT


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
        raise InputError(f"{path}: corrupt or unsafe checkpoint ({one_line(exc)[:160]}), refusing to resume") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise InputError(f"{path}: not an sdr2hdr training checkpoint ({CKPT_FORMAT}), refusing to resume")
    for k in ("stage", "step", "total", "config", "generator", "opt_g"):
        if k not in ckpt:
            raise InputError(f"{path}: checkpoint lacks {k!r}, refusing to resume")
    return ckpt


# --------------------------------------------------------------------------- weights


def weights_name(variant: str, scale: int, which: str) -> str:
    """``jsinet-x2-best.safetensors`` and the like."""
    return f"{variant}-x{scale}-{which}.safetensors"


def stage1_weights(cfg: TrainConfig, out: Path) -> Path:
    """The JSInet weights JSI-GAN starts from: ``init`` with ``--stage jsigan``, else ``OUT``'s best, else last."""
    scale = int(cfg.scale or 0)
    if cfg.init and cfg.stage == "jsigan":
        return Path(cfg.init)
    for which in ("best", "last"):
        p = out / weights_name("jsinet", scale, which)
        if p.is_file():
            return p
    raise InputError(
        f"--stage jsigan needs JSInet weights to start from: none at {out / weights_name('jsinet', scale, 'best')} "
        "(train --stage jsinet first, or pass --init PATH.safetensors)"
    )


def load_init(g: nn.Module, weights: str | Path, scale: int) -> None:
    """Load starting weights (a .safetensors path or a registry name) into the generator ``g``,
    through :func:`sdr2hdr.zoo.load` (its checks, its one-line :class:`WeightsError`)."""
    from sdr2hdr.models import JSInet
    from sdr2hdr.zoo import load

    with torch.random.fork_rng(devices=[]):  # building the loaded copy must not move the run's random numbers
        loaded = load(str(weights), scale=scale)
    if not isinstance(loaded.module, JSInet):
        raise WeightsError(f"{weights}: not JSInet weights ({type(loaded.module).__name__})")
    g.load_state_dict(loaded.module.state_dict(), strict=True)


def save_run_weights(
    g: nn.Module, out: Path, cfg: TrainConfig, *, variant: str, which: str, step: int, val: float | None,
    precision: str, trained_on: str, heldout: list[str],
) -> Path:
    """Write ``OUT/{variant}-xS-{which}.safetensors`` with the run's recipe and validation PSNR in its metadata."""
    from sdr2hdr.zoo import save_weights

    scale = int(cfg.scale or 0)
    path = out / weights_name(variant, scale, which)
    recipe = {
        "stage": variant, "step": step, "batch_size": cfg.batch_size, "hr_patch": cfg.hr_patch, "seed": cfg.seed,
        "lr": cfg.lr if variant == "jsinet" else cfg.gan_lr, "degradation": cfg.degradation.to_dict(),
        "schedule": cfg.schedule if variant == "jsinet" else "paper", "precision": precision,
        "init": cfg.init or "", "data": [str(d) for d in cfg.data], "heldout_forced": list(cfg.heldout),
        "real_share": "" if cfg.real_share is None else cfg.real_share, "loss": cfg.loss if variant == "jsinet" else "gan",
        "grid_weight": cfg.grid_weight if variant == "jsinet" else 0.0,
        "scene_weights": cfg.scene_weights, "pair_exposure": cfg.pair_exposure,
    }
    save_weights(
        g, path, architecture="jsinet", scale=scale, variant=variant,
        recipe=recipe, date=now(), trained_on=trained_on, step=str(step),
        val_psnr="" if val is None else f"{val:.4f}", heldout=heldout,
    )
    return path
