"""One ``--device`` resolution for convert, preview, eval and train."""

from __future__ import annotations

import torch

from sdr2hdr.errors import Sdr2HdrError

__all__ = ["resolve_device", "tune_for_fixed_shapes"]


def resolve_device(spec: str | torch.device | None) -> torch.device:
    """"auto" (CUDA if available, else CPU), "cpu", "cuda" or "cuda:N"."""
    if isinstance(spec, torch.device):
        return spec
    s = (spec or "auto").strip().lower()
    if s == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if s == "cpu":
        return torch.device("cpu")
    if s == "cuda" or s.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise Sdr2HdrError(f"--device {spec}: CUDA is not available here (use --device cpu or auto)")
        try:
            dev = torch.device(s)
        except (RuntimeError, ValueError):
            raise Sdr2HdrError(f"bad --device {spec!r} (use auto, cpu, cuda or cuda:N)") from None
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise Sdr2HdrError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    raise Sdr2HdrError(f"bad --device {spec!r} (use auto, cpu, cuda or cuda:N)")


def tune_for_fixed_shapes(device: torch.device) -> None:
    """Let cuDNN benchmark its kernels on ``device`` when it is CUDA: for work whose shapes repeat
    (convert's fixed tiles, training's fixed patches) the first call's search pays for itself."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
