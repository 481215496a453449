"""Training data: EXR / video / .mat readers, the degradation model, the split, the datasets."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from sdr2hdr import color
from sdr2hdr.data import degrade as dg
from sdr2hdr.data.collect import collect_sources
from sdr2hdr.data.exr import read_exr
from sdr2hdr.data.mat import MatPatches, find_mat_pair, write_authors_mat
from sdr2hdr.data.patches import StepBatchSampler, TrainPatches, ValPatches
from sdr2hdr.data.split import HELDOUT_FRACTION, is_heldout, split_scenes
from sdr2hdr.errors import InputError

#: Stills of ../shared/data used by the small tests (small files, varied content).
SMALL_STILLS = ("openexr-images/ScanLines_Cannon", "polyhaven/assets__sky", "blender/city")

#: The held-out scenes of ../shared/data under the default rule (pinned: shipped
#: weights are evaluated on these, so the rule must not drift silently).
SHARED_HELDOUT = [
    "LuminanceChroma_StarField",
    "MultiResolution_StageEnvLatLong",
    "MultiView_Adjuster",
    "3d-demo-data__thatch_chapel_1k",
    "drei-assets__forest_slope_1k",
    "drei-assets__studio_small_03_1k",
]


def _still(shared: Path, name: str) -> Path:
    p = shared / "data" / "stills" / f"{name}.exr"
    if not p.is_file():
        pytest.skip(f"shared still {p} not found")
    return p


@pytest.fixture
def stills_dir(shared: Path, tmp_path: Path) -> Path:
    """A data folder of three real stills (symlinks) plus a non-data file."""
    d = tmp_path / "stills"
    d.mkdir()
    for n in SMALL_STILLS:
        (d / Path(n).name).with_suffix(".exr").symlink_to(_still(shared, n))
    (d / "README.txt").write_text("not data")
    return d




# --------------------------------------------------------------------------- EXR


def test_read_exr_real_still(shared: Path) -> None:
    a = read_exr(_still(shared, "openexr-images/ScanLines_Cannon"))
    assert a.dtype == np.float16 and a.ndim == 3 and a.shape[2] == 3
    assert a.shape[:2] == (566, 780)
    assert np.isfinite(a.astype(np.float32)).all() and float(a.min()) >= 0.0 and float(a.max()) > 1.0


def test_read_exr_layouts(tmp_path: Path) -> None:
    import OpenEXR

    rgb = np.random.default_rng(0).random((6, 5, 3), dtype=np.float32) * 4
    for name, channels in {
        "sep.exr": {c: np.ascontiguousarray(rgb[..., i]) for i, c in enumerate("RGB")},
        "y.exr": {"Y": np.ascontiguousarray(rgb[..., 1])},
        "bad.exr": {"Z": np.ascontiguousarray(rgb[..., 0])},
    }.items():
        OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, channels).write(str(tmp_path / name))
    np.testing.assert_allclose(read_exr(tmp_path / "sep.exr", dtype=np.float32), rgb, rtol=1e-6)
    y = read_exr(tmp_path / "y.exr", dtype=np.float32)
    np.testing.assert_allclose(y[..., 0], rgb[..., 1]) and np.testing.assert_allclose(y[..., 2], rgb[..., 1])
    with pytest.raises(InputError, match=r"bad\.exr: no RGB or Y channels"):
        read_exr(tmp_path / "bad.exr")
    (tmp_path / "junk.exr").write_bytes(b"not an exr at all")
    with pytest.raises(InputError, match=r"junk\.exr: cannot decode") as ei:
        read_exr(tmp_path / "junk.exr")
    assert "\n" not in str(ei.value)


# --------------------------------------------------------------------------- degradation model


def _is_codes(x: torch.Tensor, bits: int) -> bool:
    c = x.double() * (2**bits - 1)
    return bool(torch.allclose(c, c.round(), atol=1e-4))


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("op", dg.OPERATORS)
def test_synthesize_pair_ranges_and_sizes(shared: Path, op: str, scale: int) -> None:
    img = read_exr(_still(shared, "openexr-images/ScanLines_Cannon"))
    key = dg.scene_key(img)
    disp = dg.scene_to_display(torch.from_numpy(img[100:203, 200:330].astype(np.float32)).permute(2, 0, 1), key)
    # Area down-scaling and no H.264: the code ranges are exact (no ringing).
    cfg = replace(dg.Degradation(), downscale_kernels=("area",), h264_prob=0.0)
    sdr, hdr = dg.synthesize_pair(disp, scale, np.random.default_rng(1), operator=op, config=cfg)
    m = 2 * scale
    H, W = 103 // m * m, 130 // m * m  # cropped to multiples of 2 x scale
    assert hdr.shape == (3, H, W) and sdr.shape == (3, H // scale, W // scale)
    assert sdr.dtype == torch.float32 and hdr.dtype == torch.float32
    assert _is_codes(sdr, 8) and _is_codes(hdr, 10)
    sy, sc = sdr[0] * 255, sdr[1:] * 255
    assert 16 <= float(sy.min()) and float(sy.max()) <= 235
    assert 16 <= float(sc.min()) and float(sc.max()) <= 240
    hy, hc = hdr[0] * 1023, hdr[1:] * 1023
    peak_code = 64 + 876 * float(color.pq_inverse_eotf(torch.tensor(1000.0)))
    assert 64 <= float(hy.min()) and float(hy.max()) <= round(peak_code)
    assert 64 <= float(hc.min()) and float(hc.max()) <= 960
    # With H.264 and bicubic: still 8-bit codes of the same size.
    sdr2, hdr2 = dg.synthesize_pair(disp, scale, np.random.default_rng(1), operator=op, h264=True)
    assert sdr2.shape == sdr.shape and _is_codes(sdr2, 8) and torch.equal(hdr2, hdr)


def test_synthesize_pair_levels() -> None:
    """Reference white (203 cd/m²) and the peak land on the documented codes."""
    x = torch.full((3, 16, 16), 203.0)
    x[:, :8] = 1e6  # far above the 1000 cd/m² mastering peak
    cfg = replace(dg.Degradation(), sdr_gain_stops=(0.0, 0.0), h264_prob=0.0, downscale_kernels=("area",))
    sdr, hdr = dg.synthesize_pair(x, 2, 0, operator="clip", config=cfg)
    pq203 = float(color.pq_inverse_eotf(torch.tensor(203.0)))
    assert round(float(hdr[0, 12, 4]) * 1023) == round(64 + 876 * pq203)  # 573
    assert round(float(hdr[0, 0, 0]) * 1023) == 723  # PQ(1000 cd/m²)
    assert torch.allclose(hdr[1:] * 1023, torch.full_like(hdr[1:], 512.0))  # neutral
    assert round(float(sdr[0, 7, 2]) * 255) == 235  # diffuse white -> SDR white
    assert torch.allclose(sdr[1:] * 255, torch.full_like(sdr[1:], 128.0))


def test_synthesize_pair_deterministic(shared: Path) -> None:
    img = read_exr(_still(shared, "polyhaven/assets__sky"))
    disp = dg.scene_to_display(torch.from_numpy(img[200:264, 300:364].astype(np.float32)).permute(2, 0, 1), dg.scene_key(img))
    runs = [dg.synthesize_pair(disp, 2, np.random.default_rng(7), return_params=True) for _ in range(2)]
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2]
    # Forced H.264 is deterministic too (one thread).
    a = dg.synthesize_pair(disp, 2, 3, h264=True)
    b = dg.synthesize_pair(disp, 2, 3, h264=True)
    assert torch.equal(a[0], b[0])
    params = {str(dg.synthesize_pair(disp, 2, s, return_params=True)[2]) for s in range(8)}
    assert len(params) > 1  # the seed matters


def test_exposure_and_tone_curves() -> None:
    scene = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0)) + 0.01
    key = dg.scene_key(scene)
    disp = dg.scene_to_display(scene, key)
    assert dg.scene_key(disp) == pytest.approx(dg.HDR_GREY, rel=1e-4)
    assert dg.scene_key(dg.scene_to_display(scene, key, 1.0)) == pytest.approx(2 * dg.HDR_GREY, rel=1e-4)
    lum = torch.linspace(0, 1000, 200, dtype=torch.float64)
    e = dg.eetf_bt2390(lum, src_peak=1000.0, dst_peak=100.0)
    assert bool((e[1:] >= e[:-1]).all()) and float(e[-1]) == pytest.approx(100.0, rel=1e-6)
    assert float(dg.eetf_bt2390(torch.tensor([5.0], dtype=torch.float64), src_peak=1000.0, dst_peak=100.0)) == pytest.approx(5.0)
    for op in dg.OPERATORS:
        out = dg.gamut_map(dg.tone_map(disp, op, peak=1000.0))
        assert float(out.min()) >= 0 and float(out.max()) <= 1
    # BT.2020 saturated colour: gamut mapping keeps it in [0, 1] with its luminance.
    rgb = color.convert_primaries(torch.tensor([0.0, 0.5, 0.0]).reshape(3, 1, 1), "bt2020", "bt709")
    assert float(rgb.min()) < 0
    gm = dg.gamut_map(rgb)
    assert float(gm.min()) >= 0
    assert float(color.luminance(gm, "bt709")) == pytest.approx(float(color.luminance(rgb, "bt709")), rel=1e-5)
    inside = torch.tensor([0.2, 0.5, 0.7]).reshape(3, 1, 1)
    assert torch.allclose(dg.gamut_map(inside), inside)


# --------------------------------------------------------------------------- split


def test_split_scenes_rule() -> None:
    names = [f"scene_{i:03d}" for i in range(200)]
    train, held = split_scenes(names)
    assert sorted(train + held) == sorted(names) and not set(train) & set(held)
    assert 0.05 * len(names) < len(held) < 0.3 * len(names)
    assert held == [n for n in names if is_heldout(n)]
    # Membership is a function of the name alone: adding or reordering names moves nobody.
    t2, h2 = split_scenes(list(reversed(names)) + ["extra_a", "extra_b"])
    assert set(held) <= set(h2) and set(train) <= set(t2)
    # Tiny sets: two scenes -> one held out; one scene -> none.
    assert len(split_scenes(["a", "b"])[1]) == 1
    assert split_scenes(["only"]) == (["only"], [])
    assert HELDOUT_FRACTION == 0.15


def test_still_pair_full_frame(shared: Path) -> None:
    from sdr2hdr.data.sources import still_pair

    p = _still(shared, "openexr-images/ScanLines_Cannon")
    sdr, hdr = still_pair(p, 4, seed=2, operator="hable")
    assert hdr.shape == (3, 560, 776) and sdr.shape == (3, 140, 194)  # 566 x 780 cropped to multiples of 8
    sdr2, hdr2 = still_pair(p, 4, seed=2, operator="hable")
    assert torch.equal(sdr, sdr2) and torch.equal(hdr, hdr2)


def test_split_of_shared_data(shared: Path) -> None:
    files = sorted((shared / "data" / "stills").rglob("*.exr")) + sorted((shared / "data" / "video").iterdir())
    if len(files) < 60:
        pytest.skip("the shared stills are incomplete")
    _, held = split_scenes([f.stem for f in files])
    assert sorted(held) == sorted(SHARED_HELDOUT)


# --------------------------------------------------------------------------- the authors' .mat files


def _mat_pair(d: Path, n: int = 12, scale: int = 2, hr: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    sdr = rng.integers(16, 236, (n, hr // scale, hr // scale, 3)).astype(np.uint8)
    hdr = rng.integers(64, 941, (n, hr, hr, 3)).astype(np.float64)  # MATLAB doubles
    write_authors_mat(d / ("SDR_youtube_80.mat" if scale == 2 else "SDR_youtube_80_x4.mat"), "SDR_data", sdr)
    write_authors_mat(d / "HDR_youtube_80.mat", "HDR_data", hdr)
    return sdr, hdr


def test_mat_reader_layout(tmp_path: Path) -> None:
    import h5py

    sdr, hdr = _mat_pair(tmp_path)
    with h5py.File(tmp_path / "SDR_youtube_80.mat", "r") as f:  # column-major as MATLAB writes it: N x C x W x H
        assert f["SDR_data"].shape == (12, 3, 8, 8)
    assert (tmp_path / "SDR_youtube_80.mat").read_bytes()[:10] == b"MATLAB 7.3"
    s = MatPatches(tmp_path / "SDR_youtube_80.mat", "SDR_data")
    assert len(s) == 12 and (s.height, s.width) == (8, 8)
    np.testing.assert_array_equal(s[5], sdr[5].transpose(2, 0, 1))  # C x H x W
    pair = find_mat_pair(sorted(tmp_path.iterdir()), 2)
    assert pair is not None
    np.testing.assert_array_equal(pair[1][11], hdr[11].transpose(2, 0, 1))


def test_mat_dataset_epochs_and_holdout(tmp_path: Path) -> None:
    sdr, hdr = _mat_pair(tmp_path, n=30)
    spec = collect_sources([tmp_path], 2, hr_patch=16)
    assert spec.mat_only and spec.heldout
    ds = TrainPatches(spec.train, scale=2, seed=3, hr_patch=16)
    assert ds.epoch_size == 27  # the last n // 10 patches are held out
    seen = set()
    for g in range(27):  # one epoch = every training patch once (up to flips)
        s, h = ds[g]
        assert s.dtype == torch.uint8 and h.dtype == torch.int16 and s.shape == (3, 8, 8) and h.shape == (3, 16, 16)
        for k in range(30):
            ref = torch.from_numpy(sdr[k].transpose(2, 0, 1).copy())
            if any(torch.equal(s, ref.flip(d) if d else ref) for d in ([], [-1], [-2], [-1, -2])):
                seen.add(k)
                break
    assert seen == set(range(27))
    val = ValPatches(spec.val, scale=2, n=100, hr_patch=16)
    assert len(val) == 3
    np.testing.assert_array_equal(val.sdr[0].numpy(), sdr[27].transpose(2, 0, 1))


def test_mat_bad_input(tmp_path: Path) -> None:
    _mat_pair(tmp_path)
    with pytest.raises(InputError, match=r"SDR_youtube_80\.mat: no SDR file for --scale 4"):
        collect_sources([tmp_path], 4, hr_patch=16)
    write_authors_mat(tmp_path / "other.mat", "images", np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(InputError, match=r"other\.mat: no 'SDR_data' or 'HDR_data' dataset \(has images\)"):
        collect_sources([tmp_path], 2, hr_patch=16)
    (tmp_path / "other.mat").write_bytes(b"MATLAB 5.0 MAT-file, not HDF5")
    with pytest.raises(InputError, match=r"other\.mat: not a readable MATLAB v7\.3"):
        collect_sources([tmp_path], 2, hr_patch=16)


# --------------------------------------------------------------------------- stills and the datasets


def test_collect_stills_and_patches(stills_dir: Path) -> None:
    spec = collect_sources([stills_dir], 2, hr_patch=32)
    names = [n for s in spec.train + spec.val for n in s.names]
    assert sorted(names) == sorted(Path(n).name for n in SMALL_STILLS)
    assert len(spec.heldout) == 1 and spec.val  # three scenes: one held out
    ds = TrainPatches(spec.train, scale=2, seed=0, hr_patch=32)
    s, h = ds[4]
    assert s.shape == (3, 16, 16) and s.dtype == torch.uint8
    assert h.shape == (3, 32, 32) and h.dtype == torch.int16
    assert 0 <= int(h.min()) and int(h.max()) <= 1023
    # A pure function of (seed, stream, index): same instance, a new instance, other seeds.
    s2, h2 = TrainPatches(spec.train, scale=2, seed=0, hr_patch=32)[4]
    assert torch.equal(s, s2) and torch.equal(h, h2)
    assert not torch.equal(h, TrainPatches(spec.train, scale=2, seed=1, hr_patch=32)[4][1])
    assert not torch.equal(h, TrainPatches(spec.train, scale=2, seed=0, hr_patch=32, stream=1)[4][1])
    # The validation set is fixed (independent of the training seed) and from held-out scenes only.
    v1 = ValPatches(spec.val, scale=2, n=6, hr_patch=32)
    v2 = ValPatches(spec.val, scale=2, n=6, hr_patch=32)
    assert len(v1) == 6 and torch.equal(v1.hdr, v2.hdr) and torch.equal(v1.sdr, v2.sdr)


def test_loader_workers_deterministic(stills_dir: Path) -> None:
    from torch.utils.data import DataLoader

    spec = collect_sources([stills_dir], 2, hr_patch=32)
    ds = TrainPatches(spec.train, scale=2, seed=5, hr_patch=32)
    a = list(DataLoader(ds, batch_sampler=StepBatchSampler(3, 6, 4), num_workers=0))
    b = list(DataLoader(ds, batch_sampler=StepBatchSampler(3, 6, 4), num_workers=2))
    assert len(a) == 3
    for (s1, h1), (s2, h2) in zip(a, b):
        assert torch.equal(s1, s2) and torch.equal(h1, h2)
    # Two processes of batch 2 each = one process of batch 4.
    r0 = list(StepBatchSampler(3, 4, 4, rank=0, world=2))
    r1 = list(StepBatchSampler(3, 4, 4, rank=1, world=2))
    assert r0[0] + r1[0] == list(StepBatchSampler(3, 4, 4))[0] == [12, 13, 14, 15]


def test_collect_bad_input(tmp_path: Path, shared: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"empty: no training data found"):
        collect_sources([empty], 2)
    with pytest.raises(InputError, match=r"data path not found: .*nope"):
        collect_sources([tmp_path / "nope"], 2)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.exr").symlink_to(_still(shared, "openexr-images/ScanLines_Cannon"))
    (bad / "broken.exr").write_bytes(b"\x76\x2f\x31\x01garbage")
    with pytest.raises(InputError, match=r"broken\.exr: cannot decode"):
        collect_sources([bad], 2)
    with pytest.raises(InputError, match=r"smaller than the 1024x1024 HR patch"):
        collect_sources([_still(shared, "openexr-images/ScanLines_Cannon")], 2, hr_patch=1024)
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0)
        try:
            with pytest.raises(InputError, match=r"locked: cannot read"):
                collect_sources([locked], 2)
        finally:
            locked.chmod(0o755)


# --------------------------------------------------------------------------- videos


def _encode(path: Path, w: int, h: int, n: int, hdr: bool, base: int = 0) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx265" if hdr else "libx264", rate=25)
        s.width, s.height = w, h
        s.pix_fmt = "yuv420p10le" if hdr else "yuv420p"
        if hdr:
            s.options = {"crf": "8", "x265-params": "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc"}
        else:
            s.options = {"crf": "8", "x264-params": "colorprim=bt709:transfer=bt709:colormatrix=bt709"}
        yy, xx = np.mgrid[0:h, 0:w]
        for i in range(n):
            if hdr:
                y = (200 + 2 * xx + yy + 10 * i + base).clip(64, 940).astype(np.uint16)
                uv = np.full((h // 2, w), 512, np.uint16)
                f = av.VideoFrame.from_ndarray(np.concatenate([y, uv]), format="yuv420p10le")
            else:
                y = (40 + xx + yy // 2 + 5 * i + base).clip(16, 235).astype(np.uint8)
                uv = np.full((h // 2, w), 128, np.uint8)
                f = av.VideoFrame.from_ndarray(np.concatenate([y, uv]), format="yuv420p")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_hdr_video_source(shared: Path) -> None:
    from sdr2hdr.data.hdrvideo import decode_frames, hdr_to_display, planes_to_ycbcr

    p = shared / "data" / "video" / "androidx_media__dolbyVision-hdr.MOV"
    if not p.is_file():
        pytest.skip(f"{p} not found")
    v = decode_frames(p, 2, require_hdr=True)
    assert v.info.transfer == "arib-std-b67" and v.info.fmt.bits == 10 and v.y.shape == (2, 720, 1280) and v.uv.shape == (2, 2, 360, 640)
    disp = hdr_to_display(planes_to_ycbcr(v.y[0], v.uv[0], 10), v.info)
    assert float(disp.min()) >= 0 and float(disp.max()) <= 1000.0 + 1e-3
    spec = collect_sources([p], 2, hr_patch=32, max_video_frames=2)
    s, h = TrainPatches(spec.train + spec.val, scale=2, seed=0, hr_patch=32)[0]
    assert s.shape == (3, 16, 16) and h.shape == (3, 32, 32)


def test_paired_videos(tmp_path: Path) -> None:
    d = tmp_path / "pairs"
    (d / "sdr").mkdir(parents=True)
    (d / "hdr").mkdir()
    for k, name in enumerate(("clipA", "clipB")):
        _encode(d / "sdr" / f"{name}.mp4", 64, 48, 3, False, base=20 * k)
        _encode(d / "hdr" / f"{name}.mkv", 128, 96, 3, True, base=20 * k)
    spec = collect_sources([d], 2, hr_patch=32)
    assert sorted(n for s in spec.train + spec.val for n in s.names) == ["clipA", "clipB"]
    src = spec.train[0]
    s, h = src.patch(0, np.random.default_rng(0), 32, 2, dg.Degradation())
    assert s.shape == (3, 16, 16) and s.dtype == np.uint8 and h.shape == (3, 32, 32)
    assert 16 <= int(s[0].min()) and int(s[0].max()) <= 235 and 64 <= int(h[0].min()) and int(h[0].max()) <= 940
    # Frame alignment: the HDR crop is the SDR crop's area at twice the size (both ramps grow to the right).
    assert float(np.corrcoef(s[0].astype(float).ravel(), h[0, ::2, ::2].astype(float).ravel())[0, 1]) > 0.9
    with pytest.raises(InputError, match=r"hdr/clip.\.mkv: 128x96 is not 4 x the SDR 64x48"):
        collect_sources([d], 4, hr_patch=32)
    (d / "sdr" / "clipC.mp4").write_bytes(b"")
    with pytest.raises(InputError, match=r"clipC\.\*: has no partner"):
        collect_sources([d], 2, hr_patch=32)
