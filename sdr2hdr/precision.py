"""One precision switch for convert, eval and train: ``auto | fp32 | bf16 | fp16``.

``auto`` resolves to fp16 on CUDA, bf16 on a CPU whose instruction set has
native bf16 dot products (Intel AMX ``amx_bf16`` or ``avx512_bf16``, as on
Sapphire Rapids / Zen 4 and later), and fp32 anywhere else. The reduced
precision is applied with autocast (convolutions and matmuls in bf16 / fp16,
weights, optimiser state and losses in fp32); the parts JSInet keeps in fp32
under autocast (guided filter, detail division, the dynamic-filter
accumulation, the final composition) are documented in
:mod:`sdr2hdr.models.jsinet` and :mod:`sdr2hdr.models.ops`.

Why not ``torch.backends.cpu.get_cpu_capability()`` alone: it says "AVX512"
for both a Skylake (no bf16) and a Zen 4 (bf16), so the CPU flags decide,
with oneDNN's own check as the second opinion.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from sdr2hdr.errors import InputError

__all__ = ["PRECISIONS", "Precision", "cpu_bf16_capability", "resolve_precision", "FORCE_NO_BF16_ENV"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: Set to 1 to make the capability check report "no bf16" (tests, and users who want fp32 by default).
FORCE_NO_BF16_ENV = "SDR2HDR_NO_CPU_BF16"

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_bf16_capability() -> str:
    """``"AMX"``, ``"AVX512-BF16"`` or ``"none"``: what this CPU offers for bf16 compute.

    ``SDR2HDR_NO_CPU_BF16=1`` forces ``"none"`` (to simulate an older CPU).
    Where ``/proc/cpuinfo`` is absent (macOS, Windows) oneDNN's own check decides.
    """
    if os.environ.get(FORCE_NO_BF16_ENV, "") not in ("", "0"):
        return "none"
    flags = _cpu_flags()
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX512-BF16"
    if not flags:
        with contextlib.suppress(Exception):
            if torch.ops.mkldnn._is_mkldnn_bf16_supported():  # type: ignore[attr-defined]
                return "AVX512-BF16"
    return "none"


@contextlib.contextmanager
def _ieee_fp32() -> Iterator[None]:
    """cuDNN convolutions and cuBLAS matmuls default to TF32 on Ampere and later: switch it off inside."""
    old = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


@dataclass(frozen=True)
class Precision:
    """A resolved precision: ``name`` (fp32 / bf16 / fp16), its compute ``dtype``, the device type, and why."""

    name: str
    device_type: str
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.name]

    @property
    def reduced(self) -> bool:
        return self.name != "fp32"

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The context for a forward pass: autocast in bf16 / fp16; in fp32 on CUDA, TF32 off (IEEE fp32)."""
        if not self.reduced:
            return _ieee_fp32() if self.device_type == "cuda" else contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def describe(self) -> str:
        return f"{self.name} ({self.reason})"


def resolve_precision(requested: str, device: torch.device | str) -> Precision:
    """Resolve ``--precision`` for ``device``; refuse combinations that cannot run (one line).

    * ``auto``: fp16 on CUDA, bf16 on a CPU with AMX / AVX512-BF16, else fp32.
    * ``bf16`` on a CPU without native bf16 falls back to fp32 with the reason
      (emulated bf16 is several times *slower* than fp32 there).
    * ``fp16`` on a CPU is refused: CPU fp16 convolutions are emulated and slow.
    """
    dev = torch.device(device)
    req = (requested or "auto").lower()
    if req not in PRECISIONS:
        raise InputError(f"--precision {requested!r}: use one of {', '.join(PRECISIONS)}")
    if dev.type == "cuda":
        if req == "auto":
            return Precision("fp16", "cuda", "auto: fp16 on CUDA")
        if req == "bf16" and not torch.cuda.is_bf16_supported():
            raise InputError("--precision bf16: this GPU has no bf16 support (use fp16 or fp32)")
        return Precision(req, "cuda", "asked for")
    if dev.type != "cpu":
        return Precision("fp32" if req == "auto" else req, dev.type, "asked for" if req != "auto" else f"auto: fp32 on {dev.type}")
    cap = cpu_bf16_capability()
    if req == "fp16":
        raise InputError("--precision fp16 is for CUDA; on a CPU use bf16 (with AMX / AVX512-BF16) or fp32")
    if req == "fp32":
        return Precision("fp32", "cpu", "asked for")
    if cap == "none":
        why = "this CPU has no AMX / AVX512-BF16, so bf16 would be emulated and slower"
        return Precision("fp32", "cpu", f"{'auto' if req == 'auto' else 'bf16 asked for, falling back'}: {why}")
    return Precision("bf16", "cpu", f"{'auto' if req == 'auto' else 'asked for'}: CPU has {cap}")
