"""A segmented conversion: plan, work folder, manifest, the segments through an executor, the join.

:func:`convert_segments` is called by :func:`sdr2hdr.convert.convert` once the
input is probed, the model loaded and the encoder settings checked, when the
plan (:mod:`sdr2hdr.segments.plan`) has more than one segment. Steps:

1. open (or create) the work folder ``.NAME.sdr2hdr/`` and lock it;
2. compare its manifest with this conversion (input identity, model, every
   output-changing option, the plan): a difference is one line, and
   ``--restart`` discards the old segments; finished segments are verified
   against their sha256 and reused, others are redone;
3. ``--cll measure``: measure the segments not yet measured, then signal the
   maximum over all of them (the whole file's MaxCLL / MaxFALL);
4. encode the remaining segments (in this process, local worker processes or
   Ray tasks), recording each in the manifest as it finishes;
5. join the segments with the source's other streams into a partial file,
   rename it over the target, and delete the work folder (``--keep-work``
   keeps it). After a failure or a signal the work folder stays for the next
   run, unless no segment was finished in it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdr2hdr import outfile
from sdr2hdr.convert_options import ConvertOptions
from sdr2hdr.errors import Sdr2HdrError
from sdr2hdr.inference.prepare import PreparedModel
from sdr2hdr.passes import PassResult
from sdr2hdr.segments import manifest as mf
from sdr2hdr.segments.encode import SegmentJob, SegmentResult
from sdr2hdr.segments.join import join
from sdr2hdr.segments.plan import Segment, make_plan, scan, single_reason
from sdr2hdr.segments.progress import SegmentProgress
from sdr2hdr.segments.workdir import WorkDir, work_path
from sdr2hdr.summary import Progress
from sdr2hdr.video.probe import VideoInfo

if TYPE_CHECKING:
    from sdr2hdr.convert import Encoding


def plan_for(in_path: Path, info: VideoInfo, o: ConvertOptions, out_path: Path) -> list[Segment]:
    """The segments of this conversion (one when the input cannot or need not be cut).

    A resumable work folder whose manifest was made from the same input (identity), time base and segment
    length gives its plan back without scanning the input again (a film's packets: the whole file read).
    """
    if single_reason(info, allow_truncated=o.allow_truncated) is not None:
        return [Segment(0, 0, info.frames_estimate or 0, None, None)]
    g = o.segments
    cached = _cached_plan(work_path(out_path), in_path, str(info.time_base), g.segment_seconds) \
        if g.resume and not g.restart else None
    return cached or make_plan(scan(in_path, info.stream_index), info.time_base, g.segment_seconds)


def _cached_plan(work: Path, in_path: Path, time_base: str, seconds: float) -> list[Segment] | None:
    try:
        old = mf.load(work / "manifest.json")
    except Sdr2HdrError:
        return None  # damaged: _reconcile says so
    if old is None or old.time_base != time_base or old.options.get("segment_seconds") != seconds:
        return None
    new = mf.source_identity(in_path)
    if any(old.source.get(k) != new[k] for k in ("size", "mtime_ns", "head_tail_sha256")):
        return None
    return [Segment.from_json(s) for s in old.segments]


def model_identity(prep: PreparedModel) -> dict[str, Any]:
    """Name and sha256 of the weights; for an in-memory module, sha256 of its tensors."""
    if prep.sha256:
        return {"name": prep.name, "sha256": prep.sha256}
    h = hashlib.sha256(type(prep.runner.model).__qualname__.encode())
    for key, t in sorted(prep.runner.model.state_dict().items()):
        h.update(key.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return {"name": prep.name, "sha256": h.hexdigest()}


def output_options(o: ConvertOptions, enc: Encoding, prep: PreparedModel) -> dict[str, Any]:
    """Every option that changes the segments' content (the join is redone every run)."""
    r = prep.runner
    return {"scale": prep.scale, "precision": r.precision, "device": str(r.device.type), "tile": o.tiling.tile,
            "tile_pad": r.pad, "crf": enc.encode.crf, "preset": enc.encode.preset, "x265_params": enc.params(),
            "cll": enc.mastering.cll, "deinterlace": o.deinterlace, "segment_seconds": o.segments.segment_seconds}


@dataclass
class Conversion:
    """What :func:`convert_segments` needs from ``convert``."""

    in_path: Path
    out_path: Path
    info: VideoInfo
    options: ConvertOptions
    enc: Encoding
    prep: PreparedModel
    batch: int
    plan: list[Segment]
    progress: Callable[[Progress], None] | None = None
    work: Path | None = None  # the work folder, once open (the executors' tasks write there)


@dataclass
class SegmentedRun:
    """What ``convert`` reports: the frames' totals as one :class:`PassResult`, plus the segment counts."""

    result: PassResult
    signalled: tuple[int, int]
    passes: int
    warnings: list[str] = field(default_factory=list)
    total: int = 0
    reused: int = 0
    converted: int = 0
    workers: int = 1


def _fresh(c: Conversion) -> mf.Manifest:
    segs = [{**s.to_json(), "status": "pending", "file": None, "sha256": None, "max_cll": 0.0, "max_fall": 0.0,
             "video_seconds": 0.0, "end": None, "warnings": []} for s in c.plan]
    return mf.Manifest(mf.source_identity(c.in_path), model_identity(c.prep), output_options(c.options, c.enc, c.prep),
                       str(c.info.time_base), segs)


def _reconcile(work: WorkDir, new: mf.Manifest, restart: bool) -> mf.Manifest:
    """The manifest to continue from: the old one when it describes this conversion (refused when it does not)."""
    old = mf.load(work.path / "manifest.json")
    if old is None or restart:
        work.clear_segments()
        return new
    change = mf.what_changed(old, new)
    if change is not None:
        raise Sdr2HdrError(f"{work.path} holds segments of another conversion: {change}; run again with --restart "
                           "to start over (or --no-resume)")
    for seg in old.segments:
        if seg["status"] == "done":
            path = work.path / (seg["file"] or "")
            if not path.is_file() or mf.file_sha256(path) != seg["sha256"]:
                seg.update(status="pending", file=None, sha256=None)  # damaged or missing: redone
    return old


def _jobs(c: Conversion, man: mf.Manifest, work: WorkDir, todo: list[dict[str, Any]],
          signalled: tuple[int, int] | None) -> list[SegmentJob]:
    return [SegmentJob(c.info, Segment.from_json(s), work.path, c.enc, c.prep.scale, c.batch, signalled,
                       c.options.segments.threads) for s in todo]


def _phase(c: Conversion, man: mf.Manifest, work: WorkDir, executor: Any, signalled: tuple[int, int] | None) -> int:
    """Measure (``signalled`` None) or encode the segments that need it; returns how many were run."""
    want = ("pending",) if signalled is None else ("pending", "measured")
    todo = [s for s in man.segments if s["status"] in want]
    if not todo:
        return 0
    prog = SegmentProgress(c.progress, "measure" if signalled is None else "convert", sum(s["frames"] for s in todo),
                           len(man.segments), len(man.segments) - len(todo))
    path = work.path / "manifest.json"

    def on_result(r: SegmentResult) -> None:
        man.segments[r.index].update(r.to_json())
        mf.save(path, man)  # the segment counts as done from here on
        prog.segment_done(r.index, r.frames)

    executor.run(_jobs(c, man, work, todo, signalled), on_result, prog.segment)
    return len(todo)


def _signalled(c: Conversion, man: mf.Manifest, work: WorkDir, executor: Any) -> tuple[tuple[int, int], int]:
    """The MaxCLL / MaxFALL to signal (whole-file maxima with ``--cll measure``) and the passes run."""
    if man.signalled_cll is not None:
        return (int(man.signalled_cll[0]), int(man.signalled_cll[1])), 2 if c.enc.mastering.cll == "measure" else 1
    if c.enc.mastering.cll != "measure":
        man.signalled_cll = [0, 0]
        return (0, 0), 1
    _phase(c, man, work, executor, None)
    cll = max(s["max_cll"] for s in man.segments)
    fall = max(s["max_fall"] for s in man.segments)
    man.signalled_cll = [int(math.ceil(cll)), int(math.ceil(fall))]
    mf.save(work.path / "manifest.json", man)
    return (man.signalled_cll[0], man.signalled_cll[1]), 2


def _summary(c: Conversion, man: mf.Manifest, signalled: tuple[int, int], passes: int) -> SegmentedRun:
    res = PassResult(frames=sum(s["frames"] for s in man.segments),
                     max_cll=max(s["max_cll"] for s in man.segments), max_fall=max(s["max_fall"] for s in man.segments))
    warnings: list[str] = []
    for s in man.segments:
        warnings += [w for w in s["warnings"] if w not in warnings]
    warnings += c.enc.light_level_warnings(res, signalled)
    return SegmentedRun(res, signalled, passes, warnings, total=len(man.segments))


def _join_and_publish(c: Conversion, man: mf.Manifest, work: WorkDir, run: SegmentedRun) -> None:
    with outfile.partial_file(c.out_path) as tmp:
        files = [work.path / s["file"] for s in man.segments]
        joined = join(files, [s["end"] for s in man.segments], tmp, c.enc, c.info, c.prep.scale, run.signalled)
        if joined.packets != run.result.frames:
            raise Sdr2HdrError(f"the segments hold {joined.packets} frames, not {run.result.frames}; run again with "
                               "--restart")
        run.result.video_seconds = joined.video_seconds
        run.result.copied, run.result.dropped = joined.copied, joined.dropped
        run.warnings.extend(f"stream not copied: {d}" for d in joined.dropped)
        outfile.commit(tmp, c.out_path)


def convert_segments(c: Conversion, make_executor: Callable[[], Any]) -> SegmentedRun:
    """Run the segmented conversion ``c`` (module doc) with the executor ``make_executor`` returns."""
    g = c.options.segments
    with WorkDir(c.out_path, temporary=not g.resume) as work:
        c.work = work.path
        ok = False
        man: mf.Manifest | None = None  # None: the work folder is not ours to change (another conversion's)
        try:
            if g.resume:
                man = _reconcile(work, _fresh(c), g.restart)
            else:
                work.clear_segments()
                man = _fresh(c)
            mf.save(work.path / "manifest.json", man)
            reused = len(man.done())
            executor = make_executor()
            try:
                signalled, passes = _signalled(c, man, work, executor)
                converted = _phase(c, man, work, executor, signalled)
            finally:
                executor.close()
                work.clean_partials()  # every worker has stopped: what one killed was writing is dead
            run = _summary(c, man, signalled, passes)
            run.reused, run.converted, run.workers = reused, converted, executor.workers
            _join_and_publish(c, man, work, run)
            ok = True
            return run
        finally:
            if man is not None and ((ok and not g.keep_work) or not g.resume or not man.done()):
                work.remove()
