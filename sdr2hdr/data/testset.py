"""The held-out evaluation set: full-size (SDR LR, HDR10 HR) pairs synthesised from the
validation scenes of the training split, written in the authors' test-set layout so that
``sdr2hdr eval --input testset_SDR_x2.mat --reference testset_HDR.mat`` reads them.

Scenes: the stills that :func:`sdr2hdr.data.split.split_scenes` holds out (the same
rule training uses, so no held-out scene is ever trained on). Each scene gives one centre
crop of ``height x width`` HR pixels (panoramas: away from the stretched poles) at the
BT.2408 exposure (no jitter), rendered once per tone-mapping operator of the degradation
model. The HDR10 ground truth is the same for x2 and x4; the SDR input of each scale uses
the same random draws (grading gain, down-scaling kernel, H.264 CRF) for a given seed.

Real pairs: the held-out SDR/HDR photo pairs (:mod:`sdr2hdr.data.stillpairs`; choose them
with ``heldout``, as training's ``--heldout``) go to a second set of files,
``testset_real_HDR.mat`` / ``testset_real_SDR_x{s}.mat``: one centre crop of
``real_height x real_width`` per scene, the camera's own SDR as input (no tone-mapping
operator of ours), its HDR rendition as the truth.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sdr2hdr.data import degrade
from sdr2hdr.data.collect import collect_sources
from sdr2hdr.data.mat import write_authors_mat
from sdr2hdr.data.sources import StillSource
from sdr2hdr.data.stillpairs import StillPairSource, still_pair_frame
from sdr2hdr.errors import InputError


def write_testset(
    data: Sequence[str | Path],
    out: str | Path,
    *,
    scales: Sequence[int] = (2, 4),
    height: int = 320,
    width: int = 480,
    seed: int = 0,
    heldout_fraction: float | None = None,
    operators: Sequence[str] = degrade.OPERATORS,
    heldout: Sequence[str] = (),
    real_height: int = 640,
    real_width: int = 960,
) -> dict[str, object]:
    """Write ``testset_HDR.mat`` (``HDR_YUV``, 10-bit codes), ``testset_SDR_x{s}.mat`` (``SDR_YUV``,
    8-bit codes), for held-out real pairs ``testset_real_*.mat``, and ``testset.json`` (scenes,
    operators, draws) to ``out``; return the manifest."""
    m = 8  # multiple of 2 * scale for x4
    for hh, ww in ((height, width), (real_height, real_width)):
        if hh % m or ww % m:
            raise InputError(f"test-set size {ww}x{hh} must be a multiple of {m}")
    kwargs = {} if heldout_fraction is None else {"heldout_fraction": heldout_fraction}
    spec = collect_sources(list(data), 2, hr_patch=8, heldout=heldout, **kwargs)  # crop sizes are checked below
    stills = [s for s in spec.val if isinstance(s, StillSource)]
    reals = [s for s in spec.val if isinstance(s, StillPairSource)]
    if not stills and not reals:
        raise InputError(f"{data[0]}: no held-out HDR stills or real pairs to build a test set from")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, object] = {"size": [height, width], "scales": list(scales), "seed": seed, "degradation": degrade.Degradation().to_dict()}
    if stills:
        manifest.update(_write_synthetic(stills, out, scales, height, width, seed, operators))
    if reals:
        manifest["real"] = _write_real(reals, out, scales, real_height, real_width, seed)
    (out / "testset.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def _write_synthetic(
    stills: list[StillSource], out: Path, scales: Sequence[int], height: int, width: int, seed: int, operators: Sequence[str],
) -> dict[str, object]:
    hdr_frames: list[np.ndarray] = []
    sdr_frames: dict[int, list[np.ndarray]] = {s: [] for s in scales}
    entries: list[dict[str, object]] = []
    for src in stills:
        for i, name in enumerate(src.names):
            img_h, img_w = src.images[i].shape[:2]
            if img_h < height or img_w < width:
                raise InputError(f"{src.paths[i]}: {img_w}x{img_h} is smaller than the {width}x{height} test crop")
            y0, x0 = (img_h - height) // 2, (img_w - width) // 2
            display = src.display(i, 0.0, (y0, x0, height, width))
            for k, op in enumerate(operators):
                pair_seed = seed * 1_000_003 + len(entries)
                hdr_ref = None
                for s in scales:
                    sdr, hdr, p = degrade.synthesize_pair(display, s, pair_seed, operator=op, return_params=True)
                    hdr_ref = hdr if hdr_ref is None else hdr_ref
                    sdr_frames[s].append(np.round(sdr.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
                assert hdr_ref is not None
                hdr_frames.append(np.round(hdr_ref.permute(1, 2, 0).numpy() * 1023).astype(np.uint16))
                entries.append({"frame": len(entries), "scene": name, "file": str(src.paths[i]), "operator": op,
                                "gain": p.gain, "kernel": p.kernel, "h264_crf": p.crf, "crop_yx": [y0, x0]})
    _write_mats(out, "testset", hdr_frames, sdr_frames)
    return {"scenes": sorted({str(e["scene"]) for e in entries}), "frames": entries}


def _write_real(reals: list[StillPairSource], out: Path, scales: Sequence[int], height: int, width: int, seed: int) -> dict[str, object]:
    """One centre crop per held-out real pair, the camera's SDR as input; ``testset_real_*.mat``."""
    hdr_frames: list[np.ndarray] = []
    sdr_frames: dict[int, list[np.ndarray]] = {s: [] for s in scales}
    entries: list[dict[str, object]] = []
    for src in reals:
        for i, name in enumerate(src.names):
            img_h, img_w = src.sdr[i].shape[:2]
            if img_h < height or img_w < width:
                raise InputError(f"{src.dirs[i]}: {img_w}x{img_h} is smaller than the {width}x{height} real test crop")
            y0, x0 = 8 * ((img_h - height) // 16), 8 * ((img_w - width) // 16)
            hdr_ref = None
            for s in scales:
                sdr, hdr, p = still_pair_frame(src, i, s, (y0, x0, height, width), seed * 1_000_003 + len(entries))
                hdr_ref = hdr if hdr_ref is None else hdr_ref
                sdr_frames[s].append(np.round(sdr.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
            assert hdr_ref is not None
            hdr_frames.append(np.round(hdr_ref.permute(1, 2, 0).numpy() * 1023).astype(np.uint16))
            entries.append({"frame": len(entries), "scene": name, "dir": str(src.dirs[i]), "kernel": p.kernel,
                            "h264_crf": p.crf, "crop_yx": [y0, x0]})
    _write_mats(out, "testset_real", hdr_frames, sdr_frames)
    return {"scenes": sorted({str(e["scene"]) for e in entries}), "frames": entries, "size": [height, width]}


def _write_mats(out: Path, prefix: str, hdr_frames: list[np.ndarray], sdr_frames: dict[int, list[np.ndarray]]) -> None:
    write_authors_mat(out / f"{prefix}_HDR.mat", "HDR_YUV", np.stack(hdr_frames))
    for s, frames in sdr_frames.items():
        write_authors_mat(out / f"{prefix}_SDR_x{s}.mat", "SDR_YUV", np.stack(frames))
