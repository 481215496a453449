"""The options of a training run: defaults (in one place), a resumed run's options, validation.

Import-light on purpose (no torch): ``sdr2hdr train --help`` shows these defaults.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdr2hdr.errors import InputError

if TYPE_CHECKING:
    from sdr2hdr.data.degrade import Degradation

__all__ = ["GAN_FRACTION", "PAPER_EPOCHS", "STAGES", "TrainConfig", "TrainResult", "heldout_fraction_default", "saved_config", "stage_plan"]

STAGES = ("jsinet", "jsigan")
GAN_FRACTION = 25  # stage-2 length = stage-1 length / 25 (10 of 250 epochs)
PAPER_EPOCHS = 250


def heldout_fraction_default() -> float:
    """The data split's hash threshold (:data:`sdr2hdr.data.split.HELDOUT_FRACTION`)."""
    from sdr2hdr.data.split import HELDOUT_FRACTION

    return HELDOUT_FRACTION


def _default_degradation() -> Degradation:
    from sdr2hdr.data.degrade import Degradation

    return Degradation()


def _run_option(default: Any) -> Any:
    """A field that defines the run: ``None`` (unset) until resolved, then the checkpoint's value
    (``resume``) or ``default`` (a value, or a zero-argument callable for a default that lives elsewhere)."""
    return field(default=None, metadata={"default": default})


@dataclass
class TrainConfig:
    """Options of a training run. A run-defining option left ``None`` means "the default" (or, with
    ``resume``, the value the checkpointed run used); :meth:`default` names it."""

    data: list[str] = field(default_factory=list)
    out: str = "runs/train"
    stage: str | None = _run_option("both")  # "jsinet", "jsigan" or "both"
    scale: int | None = _run_option(2)
    steps: int | None = None  # stage-1 steps (or the one stage's); None: from epochs
    epochs: float | None = None  # instead of steps; None: the paper's PAPER_EPOCHS
    gan_steps: int | None = None  # stage-2 steps with stage "both"; None: stage-1 / GAN_FRACTION
    gan_epochs: float | None = None
    batch_size: int | None = _run_option(8)  # global batch
    seed: int | None = _run_option(0)
    hr_patch: int | None = _run_option(160)  # LR 80 for x2, 40 for x4
    lr: float = 1e-4
    gan_lr: float = 1e-6
    schedule: str | None = _run_option("step")  # stage-1 lr: "step" (x0.1 at 80 % / 90 %) or "cosine"
    loss: str | None = _run_option("l2")  # stage-1 loss: "l2" (the paper), "l1" or "psnr" (training.steps)
    grid_weight: float | None = _run_option(0.0)  # stage-1 extra weight on the up-sampler's grid (models.losses.subpixel_grid_loss)
    init: str | None = None  # starting weights: stage 1 (warm restart), or stage 2 when stage is "jsigan"
    heldout: list[str] = field(default_factory=list)  # scenes held out besides the hash rule
    real_share: float | None = None  # share of patches from real SDR/HDR pairs; None: by patch count
    pair_exposure: str | None = _run_option("as-is")  # real pairs' HDR: "as-is" or "bt2408" (shadows anchored, StillPairSource)
    scene_weights: str | None = _run_option("patches")  # "patches": by patch count; "equal": each scene alike; "psnr": by 1/MSE of --init
    val_patches: int = 500
    val_interval: int = 1000
    val_batch: int = 16
    ckpt_interval: int = 1000
    log_interval: int = 10
    workers: int | None = None  # DataLoader workers; None: 0 on CPU, up to 8 on CUDA
    threads: int | None = None  # torch CPU threads; None: torch's
    device: str = "auto"
    precision: str | None = _run_option("auto")  # auto | fp32 | bf16 | fp16 (sdr2hdr.precision)
    amp: bool = True  # False forces fp32 (the old --no-amp)
    channels_last: bool = True  # on CUDA
    resume: bool = False
    max_video_frames: int = 48
    heldout_fraction: float | None = _run_option(heldout_fraction_default)
    degradation: Degradation = field(default_factory=_default_degradation)
    progress: bool = True
    quiet: bool = False

    #: Options that define the run: a resumed run takes them from the checkpoint.
    RUN_KEYS = ("stage", "scale", "steps", "epochs", "gan_steps", "gan_epochs", "batch_size", "seed", "hr_patch", "heldout_fraction",
                "schedule", "precision", "real_share", "loss", "grid_weight", "scene_weights", "pair_exposure")

    @classmethod
    def default(cls, name: str) -> Any:
        """The value option ``name`` takes when it is not given (None: computed, see its field)."""
        f = next(f for f in fields(cls) if f.name == name)
        if "default" in f.metadata:
            d = f.metadata["default"]
            return d() if callable(d) else d
        if callable(f.default_factory):
            return f.default_factory()
        return f.default

    @classmethod
    def from_options(cls, **options: Any) -> TrainConfig:
        """A config from ``sdr2hdr train``'s options (names as the fields; ``peak`` and ``h264_prob`` go
        to the degradation, ``quiet`` also turns the progress display off). Omitted options keep the defaults."""
        o = dict(options)
        deg = {k: float(v) for k in ("peak", "h264_prob") if (v := o.pop(k, None)) is not None}
        for k in ("data", "heldout"):
            if k in o:
                o[k] = list(o[k] or ())
        if o.get("scale") is not None:
            o["scale"] = int(o["scale"])
        cfg = cls(**o)
        if deg:
            cfg.degradation = replace(cfg.degradation, **deg)
        if cfg.quiet:
            cfg.progress = False
        return cfg

    def record(self) -> dict[str, Any]:
        """JSON-ready options (``run.json``, checkpoints)."""
        d = asdict(self)
        d["degradation"] = self.degradation.to_dict()
        return d

    def merge_checkpoint(self, saved: dict[str, Any], where: Path) -> None:
        """Take a resumed run's options from its checkpoint's record ``saved``: the run-defining ones
        left unset here, ``data``, ``degradation`` and ``init``. A run option given here with another
        value than the run's is refused (:class:`InputError` naming ``where``)."""
        from sdr2hdr.data.degrade import Degradation

        for k in self.RUN_KEYS:
            mine = getattr(self, k)
            if mine is None:
                setattr(self, k, saved.get(k))
            elif saved.get(k) is not None and mine != saved.get(k):
                opt = "--" + k.replace("_", "-")
                raise InputError(
                    f"{where}: the run was made with {opt} {saved.get(k)}, not {mine}; resume with the same options (or leave them out)"
                )
        if not self.data:
            self.data = list(saved.get("data") or [])
        if saved.get("degradation") and Degradation(**_tuples(saved["degradation"])) != self.degradation:
            self.degradation = Degradation(**_tuples(saved["degradation"]))
        if self.init is None:
            self.init = saved.get("init")

    def resolve(self, *, world: int = 1, sync_bn: bool = False) -> None:
        """Fill the unset run options with their defaults and refuse bad ones (one-line :class:`InputError`).

        ``world``: processes sharing the batch; ``sync_bn``: the discriminators' BatchNorm sees the global batch.
        """
        for k in ("stage", "schedule", "precision", "loss", "grid_weight", "scene_weights", "pair_exposure"):
            if getattr(self, k) is None:
                setattr(self, k, self.default(k))
        if not 0.0 <= float(self.grid_weight) < float("inf"):
            raise InputError(f"--grid-weight must be a finite number >= 0, not {self.grid_weight}")
        if self.schedule not in ("step", "cosine"):
            raise InputError(f"--schedule must be step or cosine, not {self.schedule!r}")
        if self.loss not in ("l2", "l1", "psnr"):
            raise InputError(f"--loss must be l2, l1 or psnr, not {self.loss!r}")
        if self.scene_weights not in ("patches", "equal", "psnr"):
            raise InputError(f"--scene-weights must be patches, equal or psnr, not {self.scene_weights!r}")
        if self.scene_weights == "psnr" and not self.init:
            raise InputError("--scene-weights psnr weighs each scene by the --init model's error: give --init")
        if self.pair_exposure not in ("as-is", "bt2408"):
            raise InputError(f"--pair-exposure must be as-is or bt2408, not {self.pair_exposure!r}")
        if self.stage not in ("jsinet", "jsigan", "both"):
            raise InputError(f"--stage must be jsinet, jsigan or both, not {self.stage!r}")
        self.scale = int(self.scale or self.default("scale"))
        if self.scale not in (2, 4):
            raise InputError(f"--scale must be 2 or 4, not {self.scale}")
        self.batch_size = int(self.batch_size or self.default("batch_size"))
        self.seed = int(self.seed if self.seed is not None else self.default("seed"))
        self.hr_patch = int(self.hr_patch or self.default("hr_patch"))
        if self.hr_patch % (2 * self.scale):
            raise InputError(f"--hr-patch {self.hr_patch} must be a multiple of {2 * self.scale} for x{self.scale}")
        gan = self.stage in ("jsigan", "both")
        if gan and self.hr_patch != 160:
            raise InputError(f"--hr-patch {self.hr_patch}: JSI-GAN's discriminators take 160x160 HR patches (use --hr-patch 160 or --stage jsinet)")
        per_bn = self.batch_size if sync_bn else self.batch_size // world
        if gan and per_bn < 3:
            raise InputError(
                f"--batch-size {self.batch_size}: JSI-GAN needs at least 3 patches per discriminator batch "
                f"({per_bn} here): the last BatchNorm maps 2 logits to +-1 whatever they are, and the discriminators stop learning"
            )
        if self.batch_size % world:
            raise InputError(f"--batch-size {self.batch_size} is not divisible by the {world} processes")
        if self.heldout_fraction is None:
            self.heldout_fraction = self.default("heldout_fraction")
        if not self.data:
            raise InputError("no --data given: name a folder of HDR stills / videos, sdr/+hdr/ pairs or the authors' .mat files")
        for k in ("steps", "gan_steps"):
            v = getattr(self, k)
            if v is not None and v < 1:
                raise InputError(f"--{k.replace('_', '-')} must be at least 1")


def saved_config(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The options recorded in a checkpoint (:meth:`TrainConfig.record`)."""
    return dict(json.loads(ckpt["config"]))


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    """A saved degradation record as :class:`Degradation` arguments (JSON lists back to tuples)."""
    from sdr2hdr.data.degrade import Degradation

    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in {f.name for f in fields(Degradation)}}


def stage_plan(cfg: TrainConfig, epoch_size: int) -> list[tuple[str, int]]:
    """The stages of a resolved run and their lengths in steps, from ``epoch_size`` training patches."""
    spe = max(1, epoch_size // int(cfg.batch_size or 1))  # steps per epoch

    def n(steps: int | None, epochs: float | None, default_epochs: float) -> int:
        if steps is not None:
            return int(steps)
        return max(1, round((epochs if epochs is not None else default_epochs) * spe))

    s1 = n(cfg.steps, cfg.epochs, PAPER_EPOCHS)
    if cfg.stage == "jsinet":
        return [("jsinet", s1)]
    if cfg.stage == "jsigan":
        return [("jsigan", n(cfg.steps, cfg.epochs, PAPER_EPOCHS / GAN_FRACTION))]
    s2 = n(cfg.gan_steps, cfg.gan_epochs, 0.0) if (cfg.gan_steps or cfg.gan_epochs) else max(1, s1 // GAN_FRACTION)
    return [("jsinet", s1), ("jsigan", s2)]


@dataclass
class TrainResult:
    """What a finished run wrote: files by name, best validation PSNR and steps per stage, held-out scenes."""

    out: Path
    files: dict[str, Path]
    best_psnr: dict[str, float | None]
    steps: dict[str, int]
    heldout: list[str]
    interrupted: bool = False
