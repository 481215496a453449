"""Model registry: a name maps to an architecture, its scale, its weights file,
the file's sha256 and what it was trained on (in the spirit of spandrel/timm).

Weights are safetensors files (never pickles) carrying metadata
(``architecture``, ``scale``, ``variant``, ``recipe``, ``date``, ...). A
registered file is verified against its sha256 before a single tensor is
read; a file given by path is checked for valid safetensors and metadata.
Every failure is a one-line :class:`~sdr2hdr.errors.WeightsError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from sdr2hdr.errors import WeightsError, one_line

#: Mastering peak assumed for weights that record none (the training default, cd/m²).
DEFAULT_PEAK_NITS = 1000.0
#: Scales the tool runs (the paper's; the networks themselves take any integer).
SCALES = (2, 4)

#: Architectures a weights file may name, and how to build them (lazy imports keep start-up fast).
ARCHITECTURES: dict[str, Callable[[int], nn.Module]] = {}


def register_architecture(name: str) -> Callable[[Callable[[int], nn.Module]], Callable[[int], nn.Module]]:
    """Decorator: ``@register_architecture("jsinet")`` on ``build(scale) -> nn.Module``."""

    def deco(fn: Callable[[int], nn.Module]) -> Callable[[int], nn.Module]:
        ARCHITECTURES[name] = fn
        return fn

    return deco


@register_architecture("jsinet")
def _build_jsinet(scale: int) -> nn.Module:
    from sdr2hdr.models import JSInet

    return JSInet(scale=scale)


@register_architecture("bt2408")
def _build_bt2408(scale: int) -> nn.Module:
    from sdr2hdr.models.baselines import BT2408DirectMapping

    return BT2408DirectMapping(scale)


@register_architecture("inverse-reinhard")
def _build_inverse_reinhard(scale: int) -> nn.Module:
    from sdr2hdr.models.baselines import InverseReinhard

    return InverseReinhard(scale)


@dataclass(frozen=True)
class ModelEntry:
    """One registry row. ``file`` is relative to the weights folder; None for weight-free baselines."""

    name: str
    architecture: str
    scale: int
    variant: str  # "jsinet", "jsigan" or "baseline"
    file: str | None
    sha256: str | None
    trained_on: str
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    #: Mastering peak (cd/m²) of the HDR the model was trained to produce: convert's default --peak-nits.
    peak_nits: float = DEFAULT_PEAK_NITS
    #: Precisions the output was checked in (bf16 / fp16 against fp32: see weights/README.md).
    precisions: tuple[str, ...] = ("fp32",)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["parameters"] = self.parameters
        d["receptive_field"] = self.receptive_field
        return d

    @property
    def receptive_field(self) -> int:
        """LR pixels of context per side an output pixel depends on."""
        return int(getattr(ARCHITECTURES[self.architecture](self.scale), "receptive_field", 0))

    @property
    def parameters(self) -> int:
        """Number of learned parameters of the architecture at this scale."""
        return count_parameters(ARCHITECTURES[self.architecture](self.scale))


#: name -> entry. Trained weights are added here with their sha256 once they
#: exist (see weights/README.md); random weights are never registered.
REGISTRY: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    """Add ``entry``; a second entry of the same name is a programming error, never a silent overwrite."""
    if entry.name in REGISTRY:
        raise ValueError(f"model {entry.name!r} is registered twice")
    REGISTRY[entry.name] = entry
    return entry


for _s in (2, 4):
    register(ModelEntry(
        f"bt2408-x{_s}", "bt2408", _s, "baseline", None, None, "nothing (analytic)",
        "bicubic up-scaling + ITU-R BT.2408 direct mapping (SDR 100% -> 203 cd/m², BT.709 -> BT.2020, PQ)",
    ))
    register(ModelEntry(
        f"inverse-reinhard-x{_s}", "inverse-reinhard", _s, "baseline", None, None, "nothing (analytic)",
        "bicubic up-scaling + exact inverse of the degradation model's extended Reinhard (white point 1000 cd/m²)",
    ))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def weights_dir() -> Path:
    """Where registered weight files live: ``$SDR2HDR_WEIGHTS``, else the installed
    ``sdr2hdr/weights`` data folder, else the source checkout's ``weights/``."""
    env = os.environ.get("SDR2HDR_WEIGHTS")
    if env:
        return Path(env)
    pkg = Path(__file__).resolve().parent
    installed = pkg / "weights"
    if installed.is_dir():
        return installed
    return pkg.parent / "weights"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_safetensors(path: Path, expected_sha256: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file (tensors on CPU, metadata dict), verifying its hash first.

    Raises :class:`WeightsError` for a missing, truncated, tampered or non-safetensors file.
    """
    tensors, meta, _ = _read_weights(path, expected_sha256)
    return tensors, meta


def _read_weights(path: Path, expected_sha256: str | None) -> tuple[dict[str, torch.Tensor], dict[str, str], str]:
    """:func:`read_safetensors` plus the file's sha256, from the one read of its bytes."""
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None:
        if digest != expected_sha256:
            raise WeightsError(
                f"weights file {path} fails its sha256 check (expected {expected_sha256[:12]}…, got {digest[:12]}…): "
                "truncated or modified; re-download or re-train it"
            )
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
    except (SafetensorError, ValueError, json.JSONDecodeError, OverflowError) as exc:
        raise WeightsError(f"{path} is not a valid safetensors file ({one_line(exc)})") from None
    return tensors, dict(header.get("__metadata__") or {}), digest


def save_weights(model: nn.Module, path: Path, *, architecture: str, scale: int, variant: str, **metadata: object) -> str:
    """Write ``model``'s state dict as safetensors with metadata; return the file's sha256.

    Extra metadata values are stored as strings (dicts/lists as JSON).
    """
    meta = {"architecture": architecture, "scale": str(scale), "variant": variant, "format": "sdr2hdr-weights-1"}
    for k, v in metadata.items():
        meta[k] = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _write_safetensors(state, path, meta)


def resolve(name_or_path: str) -> tuple[ModelEntry | None, Path | None]:
    """A registry name -> (entry, file or None); an existing path -> (None, path)."""
    if name_or_path in REGISTRY:
        entry = REGISTRY[name_or_path]
        return entry, (weights_dir() / entry.file if entry.file else None)
    if name_or_path in {default_model_name(s, g) for s in (2, 4) for g in (False, True)}:
        raise WeightsError(missing_weights_message(name_or_path))
    p = Path(name_or_path)
    if p.suffix == ".safetensors" or p.exists() or os.sep in name_or_path:
        return None, p
    known = ", ".join(sorted(REGISTRY)) or "none registered yet"
    raise WeightsError(f"unknown model {name_or_path!r} (known: {known}; or give a .safetensors path)")


def default_model_name(scale: int, gan: bool) -> str:
    return f"{'jsigan' if gan else 'jsinet'}-x{scale}"


@dataclass
class LoadedModel:
    """A loaded model and its contract: what callers need without guessing from the module.

    ``module`` maps ``B x 3 x H x W`` BT.709 limited-range Y'CbCr code values / 255
    to ``B x 3 x sH x sW`` BT.2020 PQ limited-range Y'CbCr code values / 1023.
    """

    module: nn.Module
    name: str
    scale: int
    receptive_field: int
    peak_nits: float  # mastering peak the model was trained for, cd/m²
    sha256: str | None  # of the weights file (None: weight-free baseline)
    variant: str


def _recipe_peak(recipe: str) -> float:
    """The training peak inside a JSON recipe (``degradation.peak``); the default for free-text recipes."""
    try:
        rec = json.loads(recipe)
    except ValueError:
        return DEFAULT_PEAK_NITS
    deg = rec.get("degradation") if isinstance(rec, dict) else None
    return float(deg.get("peak", DEFAULT_PEAK_NITS)) if isinstance(deg, dict) else DEFAULT_PEAK_NITS


def _peak_from_meta(meta: dict[str, str], path: Path) -> float:
    """The mastering peak the weights were trained for: ``peak_nits``, else the recipe's, else 1000."""
    try:
        peak = float(meta["peak_nits"]) if "peak_nits" in meta else _recipe_peak(meta.get("recipe") or "{}")
    except (ValueError, TypeError):
        raise WeightsError(f"{path}: bad mastering peak in metadata") from None
    if not 100.0 <= peak <= 10000.0:
        raise WeightsError(f"{path}: mastering peak {peak:g} cd/m² in metadata is outside 100..10000")
    return peak


def _build(arch: str, scale: int, where: object) -> nn.Module:
    if scale not in SCALES:
        raise WeightsError(f"{where}: scale x{scale} is not supported (x2 or x4)")
    try:
        return ARCHITECTURES[arch](scale)
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"{where}: cannot build {arch} x{scale} ({exc})") from None


def load(name_or_path: str, *, device: str | torch.device = "cpu", scale: int | None = None) -> LoadedModel:
    """Build and load a model by registry name or safetensors path, in eval mode on ``device``.

    All metadata is validated before anything is built (architecture, scale x2 / x4,
    peak); ``scale`` (optional) is checked against the weights' scale.
    """
    entry, path = resolve(name_or_path)
    digest = None
    if entry is not None and path is None:
        model = _build(entry.architecture, entry.scale, name_or_path)
        arch_scale, peak, variant = entry.scale, entry.peak_nits, entry.variant
    else:
        assert path is not None
        tensors, meta, digest = _read_weights(path, entry.sha256 if entry else None)
        arch = meta.get("architecture")
        if arch not in ARCHITECTURES:
            raise WeightsError(f"{path}: metadata names no known architecture ({arch!r})")
        try:
            arch_scale = int(meta.get("scale", "0"))
        except ValueError:
            raise WeightsError(f"{path}: bad scale in metadata ({meta.get('scale')!r})") from None
        peak = entry.peak_nits if entry else _peak_from_meta(meta, path)
        variant = entry.variant if entry else str(meta.get("variant", arch))
        model = _build(arch, arch_scale, path)
        try:
            model.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            raise WeightsError(f"{path}: tensors do not fit {arch} x{arch_scale} ({one_line(exc)})") from None
    if scale is not None and arch_scale != scale:
        raise WeightsError(f"model {name_or_path} is x{arch_scale}, but --scale {scale} was asked for")
    return LoadedModel(
        module=model.eval().to(device), name=str(name_or_path), scale=arch_scale,
        receptive_field=int(getattr(model, "receptive_field", 0)), peak_nits=peak, sha256=digest, variant=variant,
    )


def load_model(name_or_path: str, *, device: str | torch.device = "cpu", scale: int | None = None) -> nn.Module:
    """:func:`load` without the descriptor: just the module (``.scale`` set), in eval mode on ``device``."""
    return load(name_or_path, device=device, scale=scale).module


def export_weights(src: Path, dst: Path, *, dtype: str = "fp16", **metadata: object) -> str:
    """Copy a weights file as ``fp16`` / ``fp32`` tensors, keeping (and adding to) its metadata; return the sha256.

    The shipped files are fp16 (half the size) where that changes the output by at most
    0.01 dB on the test sets; models always compute with fp32 master weights.
    """
    tensors, meta = read_safetensors(Path(src))
    dt = {"fp16": torch.float16, "fp32": torch.float32}[dtype]
    for k, v in metadata.items():
        meta[k] = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    meta["stored_dtype"] = dtype
    return _write_safetensors({k: v.to(dt).contiguous() for k, v in tensors.items()}, Path(dst), meta)


def _write_safetensors(tensors: dict[str, torch.Tensor], path: Path, meta: dict[str, str]) -> str:
    """Write ``path`` atomically (temporary file + rename), mode ``0o666 & ~umask``; return its sha256.

    safetensors creates its file 0600, which media servers and other users cannot read.
    """
    from safetensors.torch import save_file

    from sdr2hdr.outfile import final_mode

    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.chmod(tmp, final_mode(path))
    os.replace(tmp, path)
    return sha256_file(path)


def missing_weights_message(name: str) -> str:
    """The one-line message when a default model has no trained weights yet."""
    return (
        f"no trained weights for {name!r}: the registry has no entry for it yet "
        f"(train them with 'sdr2hdr train', see weights/README.md, or pass --model PATH.safetensors)"
    )
