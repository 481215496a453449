"""One segment through the model: measured (``--cll measure``'s first pass) or encoded into its own file.

:func:`run_segment` is what every worker runs, in this process, in a local
worker process (:mod:`sdr2hdr.segments.workers`) or as a Ray task
(:mod:`sdr2hdr.segments.ray_tasks`): decode the segment from its keyframe
(:class:`~sdr2hdr.segments.source.SegmentFrames`), run the model and, when
encoding, write ``seg-NNNNN.mp4`` in the work folder with the one-pass path's
x265 settings (the encoder starts with an IDR frame). The file is written as
``.seg-NNNNN.mp4.partial-XXXX.mp4``, fsync'ed, hashed and renamed into place;
only then does the driver mark the segment done in the manifest. Segment
files keep the input's timestamps (time base and values, no start-offset
shift); the joiner shifts them like the copied streams.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdr2hdr import outfile
from sdr2hdr.inference.tiling import TiledModel
from sdr2hdr.passes import run_pass
from sdr2hdr.segments.manifest import file_sha256, fsync_dir
from sdr2hdr.segments.plan import Segment
from sdr2hdr.segments.source import SegmentFrames
from sdr2hdr.summary import Progress
from sdr2hdr.video.probe import VideoInfo

if TYPE_CHECKING:
    from sdr2hdr.convert import Encoding


def segment_file(index: int) -> str:
    """The finished segment's file name in the work folder."""
    return f"seg-{index:05d}.mp4"


@dataclass(frozen=True)
class SegmentJob:
    """Everything a worker needs for one segment (picklable: sent to worker processes and Ray tasks).

    ``signalled``: the MaxCLL / MaxFALL to signal (cd/m²), None for a measuring pass (no file written).
    """

    info: VideoInfo
    segment: Segment
    work: Path
    encoding: Encoding
    scale: int
    batch: int
    signalled: tuple[int, int] | None
    threads: int = 0


@dataclass
class SegmentResult:
    """What a worker reports for one segment; the driver records it in the manifest."""

    index: int
    status: str  # "measured" or "done"
    frames: int
    max_cll: float  # cd/m², measured on the frames (as written, when encoding)
    max_fall: float
    video_seconds: float = 0.0
    end_pts: int | None = None  # last frame's timestamp + duration, input time base (the joiner's packet durations)
    file: str | None = None
    sha256: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "max_cll": self.max_cll, "max_fall": self.max_fall,
                "video_seconds": self.video_seconds, "end": self.end_pts, "file": self.file, "sha256": self.sha256,
                "warnings": self.warnings}


def run_segment(job: SegmentJob, runner: TiledModel, progress: Callable[[Progress], None] | None = None) -> SegmentResult:
    """Measure or encode ``job``'s segment with ``runner`` (module doc)."""
    seg: Segment = job.segment
    frames = SegmentFrames(job.info, seg, threads=job.threads)
    if job.signalled is None:
        res = run_pass(job.info, runner, batch=job.batch, open_writer=None, phase="measure", progress=progress,
                       allow_truncated=False, frames=frames, total=seg.frames)
        return SegmentResult(seg.index, "measured", res.frames, res.max_cll, res.max_fall, warnings=res.warnings)
    target = job.work / segment_file(seg.index)
    with outfile.partial_file(target) as tmp:
        signalled = job.signalled
        res = run_pass(job.info, runner, batch=job.batch, phase="convert", progress=progress, allow_truncated=False,
                       open_writer=lambda: job.encoding.open_writer(tmp, job.info, job.scale, signalled, segment=True), frames=frames, total=seg.frames)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        digest = file_sha256(tmp)
        os.replace(tmp, target)
        fsync_dir(job.work)
        return SegmentResult(seg.index, "done", res.frames, res.max_cll, res.max_fall, res.video_seconds,
                             frames.end_pts, target.name, digest, res.warnings)
