"""What :func:`sdr2hdr.convert.convert` reports: :class:`Progress` while it runs, :class:`ConvertSummary` at the end.

:meth:`ConvertSummary.to_json` is the document ``sdr2hdr convert --json`` writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: Version of the ``--json`` document; bumped when a key changes meaning or goes away.
JSON_FORMAT = "sdr2hdr-convert-summary-1"


@dataclass
class Progress:
    """Passed to the ``progress`` callback after every batch (and while the encoder drains)."""

    phase: str  # "measure" (first pass of cll="measure") or "convert"
    done: int  # frames through the model in this phase
    encoded: int  # frames handed to the encoder in this phase
    total: int | None  # expected frames (from the container), None if unknown
    elapsed: float  # seconds since this phase started
    segments_done: int = 0  # segmented conversions (sdr2hdr.segments): segments finished, reused ones included
    segments_total: int = 0  # 0: not segmented

    @property
    def fps(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0


@dataclass
class ConvertSummary:
    """What :func:`~sdr2hdr.convert.convert` did."""

    input: Path
    output: Path
    frames: int
    seconds: float
    size_bytes: int
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    scale: int
    model: str
    device: str
    precision: str  # fp32 | bf16 | fp16: what ran
    tile: int  # final tile side in LR pixels (0: whole frame)
    tile_pad: int
    batch: int
    cll_mode: str
    signalled_cll: tuple[int, int]  # (MaxCLL, MaxFALL) written in the SEI; (0, 0) = unknown
    max_cll: float  # measured on the frames written, cd/m²
    max_fall: float
    input_description: str = ""
    precision_reason: str = ""  # why that precision (auto choice, asked for, fallback)
    passes: int = 1
    model_seconds: float = 0.0
    oom_retries: int = 0
    copied_streams: list[str] = field(default_factory=list)
    dropped_streams: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    model_sha256: str | None = None  # of the weights file; None for weight-free baselines and in-memory modules
    video_seconds: float = 0.0  # presentation time of the frames written
    peak_nits: float = 1000.0  # mastering display peak signalled (the model's recorded peak unless --peak-nits)
    container_hdr10: bool = False  # mastering display and light levels also in the container (Matroska Colour)
    segments_total: int = 1  # segments of the plan (sdr2hdr.segments); 1 = converted in one pass
    segments_reused: int = 0  # finished in an earlier run, verified and reused
    segments_converted: int = 1  # converted by this run
    workers: int = 1  # processes or Ray tasks that converted segments at once

    @property
    def fps(self) -> float:
        """Output frames per second of wall time (all passes included)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, object]:
        """The summary as plain JSON types (the ``--json`` document)."""
        return {
            "format": JSON_FORMAT,
            "input": str(self.input),
            "output": str(self.output),
            "frames": self.frames,
            "duration_seconds": round(self.video_seconds, 6),
            "wall_seconds": round(self.seconds, 3),
            "fps": round(self.fps, 3),
            "passes": self.passes,
            "input_size": list(self.input_size),
            "output_size": list(self.output_size),
            "scale": self.scale,
            "model": {"name": self.model, "sha256": self.model_sha256},
            "device": self.device,
            "precision": self.precision,
            "precision_reason": self.precision_reason,
            "tile": self.tile,
            "tile_pad": self.tile_pad,
            "batch": self.batch,
            "mastering_peak_nits": self.peak_nits,
            "container_hdr10_metadata": self.container_hdr10,
            "light_level": {
                "mode": self.cll_mode,
                "measured": {"max_cll": round(self.max_cll, 3), "max_fall": round(self.max_fall, 3)},
                "signalled": {"max_cll": self.signalled_cll[0], "max_fall": self.signalled_cll[1]},
            },
            "size_bytes": self.size_bytes,
            "segments": {"total": self.segments_total, "reused": self.segments_reused,
                         "converted": self.segments_converted, "workers": self.workers},
            "copied_streams": list(self.copied_streams),
            "dropped_streams": list(self.dropped_streams),
            "warnings": list(self.warnings),
        }
