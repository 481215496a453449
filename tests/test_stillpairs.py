"""Real SDR/HDR photo pairs (NAME/sdr.png + NAME/hdr.exr): discovery, split, patches, the real test set,
and the training options that came with them (--heldout, --init warm restart, --schedule cosine)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
import torch

from tests.videos import write_png

from sdr2hdr import color
from sdr2hdr.data.collect import collect_sources
from sdr2hdr.data.mat import MatPatches
from sdr2hdr.data.patches import TrainPatches
from sdr2hdr.data.sources import Source
from sdr2hdr.data.split import split_scenes
from sdr2hdr.data.stillpairs import StillPairSource, read_png_rgb, still_pair_frame
from sdr2hdr.data.testset import write_testset
from sdr2hdr.errors import InputError
from sdr2hdr.training import TrainConfig, stage1_lr, train

NAMES = ["pairA", "pairB", "pairC", "pairD"]


def _write_pairs(root: Path, h: int = 48, w: int = 64) -> None:
    """Pixel-aligned pairs: the SDR is a gradient, the HDR its BT.2408 mapping with highlights x4."""
    g = np.random.default_rng(0)
    for k, n in enumerate(NAMES):
        d = root / n
        d.mkdir(parents=True)
        sig = np.clip(np.linspace(0.05, 1.0, w)[None, :, None] * (0.6 + 0.4 * g.random((h, 1, 3))), 0, 1)
        write_png(d / "sdr.png", np.round(sig * 255).astype(np.uint8))
        lin = sig**2.4 * 203.0 * np.where(sig > 0.9, 4.0, 1.0)  # cd/m², BT.709 ~ BT.2020 for the test
        OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                     {"RGB": lin.astype(np.float16)}).write(str(d / "hdr.exr"))
    (root / "LICENSES").mkdir()
    (root / "LICENSES" / "note.txt").write_text("not data")


def test_pairs_are_found_split_and_not_taken_for_stills(tmp_path: Path) -> None:
    _write_pairs(tmp_path / "pairs")
    spec = collect_sources([tmp_path / "pairs"], 2, hr_patch=16, heldout=["pairc"])
    srcs = spec.train + spec.val
    assert all(isinstance(s, StillPairSource) for s in srcs)  # hdr.exr files are not stills named "hdr"
    assert "pairC" in spec.heldout and sorted(n for s in srcs for n in s.names) == NAMES
    assert "real SDR/HDR pairs" in spec.describe()
    with pytest.raises(InputError, match="--heldout nope: no scene of that name"):
        collect_sources([tmp_path / "pairs"], 2, hr_patch=16, heldout=["nope"])


def test_pair_patch_is_the_real_sdr_signal_and_hdr_truth(tmp_path: Path) -> None:
    _write_pairs(tmp_path / "pairs")
    src = StillPairSource([tmp_path / "pairs" / "pairA"])
    rgb = read_png_rgb(tmp_path / "pairs" / "pairA" / "sdr.png")
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    sdr, hdr, p = still_pair_frame(src, 0, 2, (0, 0, 48, 64), seed=3)
    assert sdr.shape == (3, 24, 32) and hdr.shape == (3, 48, 64)
    # Truth: PQ BT.2020 limited codes of the HDR light clipped at 1000 cd/m².
    lin = torch.from_numpy(src.hdr[0].astype(np.float32)).permute(2, 0, 1).clamp(0, 1000)
    ref = color.quantize(color.linear_to_hdr10(lin, bits=10), 10)
    assert torch.equal(hdr, ref)
    # Input: the light the sRGB photo shows, re-encoded for a BT.1886 display, BT.709 matrix, down-scaled.
    light = color.srgb_eotf(torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)) * 100
    ycc = color.rgb_to_ycbcr(color.bt1886_inverse_eotf(light, white=100.0), "bt709", bits=8)
    assert abs(float(sdr[0].mean() - ycc[0].mean())) < 2 / 255
    naive = color.rgb_to_ycbcr(torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1), "bt709", bits=8)
    assert float(sdr[0].mean() - naive[0].mean()) > 4 / 255  # not the sRGB codes copied: shadows are lifted
    ds = TrainPatches([src], scale=2, seed=0, hr_patch=16)
    s, h = ds[0]
    assert s.shape == (3, 8, 8) and s.dtype == torch.uint8 and h.shape == (3, 16, 16) and h.dtype == torch.int16
    s2, h2 = ds[0]
    assert torch.equal(s, s2) and torch.equal(h, h2)


def test_misaligned_pair_is_refused(tmp_path: Path) -> None:
    _write_pairs(tmp_path / "pairs")
    write_png(tmp_path / "pairs" / "pairB" / "sdr.png", np.zeros((40, 64, 3), np.uint8))
    with pytest.raises(InputError, match="pixel-aligned"):
        collect_sources([tmp_path / "pairs"], 2, hr_patch=16)


def test_real_testset(tmp_path: Path) -> None:
    _write_pairs(tmp_path / "pairs")
    m = write_testset([tmp_path / "pairs"], tmp_path / "ts", heldout=["pairA", "pairB"], real_height=32, real_width=48)
    real = m["real"]
    expected = sorted(split_scenes(NAMES, force=["pairA", "pairB"])[1])  # forced ones + the hash rule's
    assert isinstance(real, dict) and {"pairA", "pairB"} <= set(expected) and real["scenes"] == expected and "frames" not in m
    hdr = MatPatches(tmp_path / "ts/testset_real_HDR.mat", "HDR_YUV")
    x4 = MatPatches(tmp_path / "ts/testset_real_SDR_x4.mat", "SDR_YUV")
    assert len(hdr) == len(x4) == len(expected) and hdr[0].shape == (3, 32, 48) and x4[0].shape == (3, 8, 12)
    assert json.loads((tmp_path / "ts/testset.json").read_text())["real"]["size"] == [32, 48]


def test_cosine_schedule() -> None:
    total = 1000
    assert stage1_lr(0, total, 2e-4, "cosine") == pytest.approx(2e-4 / 20)  # warm-up over 2 % of the steps
    assert stage1_lr(19, total, 2e-4, "cosine") == pytest.approx(2e-4)
    mid = 20 + (total - 20) // 2
    assert stage1_lr(mid, total, 2e-4, "cosine") == pytest.approx(1e-4, rel=1e-3)
    assert stage1_lr(total, total, 2e-4, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert all(stage1_lr(k + 1, total, 1.0, "cosine") <= stage1_lr(k, total, 1.0, "cosine") for k in range(20, total))
    assert stage1_lr(850, total, 1e-4) == pytest.approx(1e-5)  # the paper's steps stay the default
    assert not math.isnan(stage1_lr(5, 1, 1e-4, "cosine"))


def test_init_warm_restart_starts_from_the_weights(tmp_path: Path) -> None:
    _write_pairs(tmp_path / "pairs")
    base = dict(data=[str(tmp_path / "pairs")], batch_size=2, hr_patch=16, val_patches=2, log_interval=1, progress=False,
                stage="jsinet", device="cpu", precision="fp32", heldout=["pairD"])
    first = train(TrainConfig(out=str(tmp_path / "a"), steps=2, **base))  # type: ignore[arg-type]
    src = first.files["jsinet-last"]
    from sdr2hdr.zoo import read_safetensors

    w0, _ = read_safetensors(src)
    # One more step from the weights at a tiny learning rate: the result stays next to them, unlike a fresh start.
    second = train(TrainConfig(out=str(tmp_path / "b"), steps=1, init=str(src), lr=1e-9, schedule="cosine", **base))  # type: ignore[arg-type]
    w1, meta = read_safetensors(second.files["jsinet-last"])
    assert max(float((w0[k] - w1[k]).abs().max()) for k in w0) < 1e-6
    recipe = json.loads(meta["recipe"])
    assert recipe["init"] == str(src) and recipe["schedule"] == "cosine" and recipe["precision"] == "fp32"
    events = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert any(e["event"] == "init" and e["stage"] == "jsinet" for e in events)


class _Synthetic(Source):
    """A stand-in for synthesised scenes: all-zero patches, 3x the pairs' patch count."""

    def __init__(self) -> None:
        super().__init__(names=["flat"], kind="flat", real=False)

    def weight(self, i: int, hr: int) -> float:
        return 3.0 * len(NAMES) * (48 // hr) * (64 // hr)

    def patch(self, i, rng, hr, scale, deg):  # noqa: ANN001, ANN201
        return np.zeros((3, hr // scale, hr // scale), np.uint8), np.zeros((3, hr, hr), np.int16)


@pytest.mark.parametrize("share, expected", [(None, 0.25), (0.8, 0.8), (1.0, 1.0)])
def test_real_share_sets_the_share_of_patches_from_real_pairs(tmp_path: Path, share: float | None, expected: float) -> None:
    _write_pairs(tmp_path / "pairs")
    pairs = StillPairSource([tmp_path / "pairs" / n for n in NAMES])
    ds = TrainPatches([pairs, _Synthetic()], scale=2, seed=0, hr_patch=16, real_share=share)
    real = [bool(ds[g][0].any()) for g in range(400)]  # the pairs' SDR is never all zero
    assert abs(np.mean(real) - expected) < 0.06
    assert ds.epoch_size == 4 * len(NAMES) * 3 * 4  # an epoch is still counted in patches, whatever the mix


@pytest.mark.parametrize("weights", ["patches", "equal"])
def test_scene_weights_equal_draws_each_scene_alike_whatever_its_size(tmp_path: Path, weights: str) -> None:
    _write_pairs(tmp_path / "big", h=64, w=96)  # 4 x 6 patches of 16 each
    _write_pairs(tmp_path / "small", h=16, w=16)  # 1 patch each
    paths = [tmp_path / "big" / n for n in NAMES[:2]] + [tmp_path / "small" / n for n in NAMES[2:]]
    pairs = StillPairSource(paths)
    ds = TrainPatches([pairs, _Synthetic()], scale=2, seed=0, hr_patch=16, real_share=0.5, scene_weights=weights)
    draws = [ds[g][0] for g in range(1200)]
    real = [d for d in draws if d.any()]  # the synthetic stand-in is all zero
    small = np.mean([int(d.max()) - int(d.min()) > 110 for d in real])  # a 16-wide scene spans its whole gradient
    assert abs(len(real) / len(draws) - 0.5) < 0.05  # the real share holds either way
    assert abs(small - (0.5 if weights == "equal" else 2 / 50)) < 0.06
    with pytest.raises(ValueError, match="scene_weights"):
        TrainPatches([pairs], scale=2, seed=0, hr_patch=16, scene_weights="area")


def _write_grey_pair(d: Path, gain: float, lo: float = 0.02) -> None:
    """A grey ramp whose HDR is ``gain`` x its BT.2408 light, highlights (SDR light > 0.7) x3 more."""
    d.mkdir(parents=True)
    code = np.round(np.linspace(255 * lo**(1 / 2.4), 255, 64)).astype(np.uint8)
    rgb8 = np.repeat(np.repeat(code[None, :, None], 32, 0), 3, 2)
    light = color.srgb_eotf(torch.from_numpy(rgb8.astype(np.float32) / 255)).numpy()
    hdr = light * 203.0 * gain * np.where(light > 0.7, 3.0, 1.0)
    write_png(d / "sdr.png", rgb8)
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                 {"RGB": hdr.astype(np.float32)}).write(str(d / "hdr.exr"))


def test_pair_exposure_anchors_training_shadows_at_bt2408_and_keeps_the_highlight_expansion(tmp_path: Path) -> None:
    for name, gain, lo in [("bright", 1.75, 0.02), ("asis", 1.0, 0.02), ("noshadow", 2.4, 0.15), ("held", 1.6, 0.02)]:
        _write_grey_pair(tmp_path / "pairs" / name, gain, lo)
    spec = collect_sources([tmp_path / "pairs"], 2, hr_patch=16, heldout=["held"], heldout_fraction=0.0)
    (train,), (val,) = spec.train, spec.val
    before = [h.astype(np.float32).copy() for h in train.hdr]
    gains = spec.anchor_pair_exposure()
    assert gains.keys() == {"bright", "asis", "noshadow"}  # the held-out pair is not touched
    assert gains["bright"] == pytest.approx(1.75, rel=0.01) and gains["asis"] == pytest.approx(1.0, rel=0.01)
    assert gains["noshadow"] == pytest.approx(2.4, rel=0.01)  # no shadows: the mid-tone band decides
    for name, b, h in zip(train.names, before, train.hdr):
        assert np.allclose(h.astype(np.float32) * gains[name], b, rtol=2e-3)  # one gain per picture: highlights keep their x3
    assert isinstance(val, StillPairSource) and float(val.hdr[0].max()) == pytest.approx(255 / 255 * 203 * 1.6 * 3, rel=1e-3)
