"""``train --scene-weights psnr``: scenes drawn by 1 / the --init model's MSE on them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sdr2hdr.data.degrade import Degradation
from sdr2hdr.data.patches import MSE_FLOOR, TrainPatches, inverse_mse_weights
from sdr2hdr.data.sources import Source
from sdr2hdr.errors import InputError
from sdr2hdr.training import TrainConfig
from sdr2hdr.training.scene_error import scene_mse


@dataclass
class _Flat(Source):
    """Scenes of flat patches: SDR code 128, HDR code ``levels[i]`` (a known error against a model
    that outputs the SDR level / 255 everywhere)."""

    levels: list[int] = field(default_factory=list)
    real_kind: bool = False

    def __post_init__(self) -> None:
        self.names = [f"{'real' if self.real_kind else 'syn'}{i}" for i in range(len(self.levels))]
        self.real = self.real_kind

    def weight(self, i: int, hr: int) -> float:
        return 4.0

    def patch(self, i, rng, hr, scale, deg):  # noqa: ANN001, ANN201
        rng.random()  # drawn like a real source, result unused
        return (np.full((3, hr // scale, hr // scale), 128, np.uint8), np.full((3, hr, hr), self.levels[i], np.int16))


class _Nearest(nn.Module):
    """Nearest-neighbour x2 up-sampling: output = input / 255 code levels on the HR grid."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")


def test_inverse_mse_weights_floor_and_bad_input() -> None:
    w = inverse_mse_weights(np.array([1e-3, 4e-4, 1e-6, 0.0]))
    assert w == pytest.approx([1e3, 2.5e3, 1 / MSE_FLOOR, 1 / MSE_FLOOR])
    for bad in ([np.nan], [-1e-3], [[1e-3]]):
        with pytest.raises(ValueError, match="finite numbers >= 0"):
            inverse_mse_weights(np.array(bad))


def test_scene_mse_measures_the_models_error_per_scene_in_table_order() -> None:
    a, b = _Flat(levels=[512, 600], real_kind=True), _Flat(levels=[700])
    mse = scene_mse([a, b], _Nearest(), scale=2, hr=8, degradation=Degradation(), n=3)
    expect = [float(f"{(128 / 255 - lv / 1023) ** 2:.4g}") for lv in (512, 600, 700)]
    assert mse.tolist() == expect
    assert scene_mse([a, b], _Nearest(), scale=2, hr=8, degradation=Degradation(), n=3).tolist() == expect


def test_psnr_weights_draw_scenes_by_inverse_mse_and_keep_each_kinds_share() -> None:
    real, syn = _Flat(levels=[1, 2, 3], real_kind=True), _Flat(levels=[4, 5])
    error = [1e-3, 2.5e-4, 1e-6, 2e-4, 2e-4]  # real: weights 1 : 4 : 10 (floored); synthesised: alike
    ds = TrainPatches([real, syn], scale=2, seed=0, hr_patch=8, real_share=0.25, scene_weights="psnr", scene_error=error)
    draws = np.array([int(ds[g][1][0, 0, 0]) for g in range(6000)])
    share = {lv: float(np.mean(draws == lv)) for lv in (1, 2, 3, 4, 5)}
    assert share[1] + share[2] + share[3] == pytest.approx(0.25, abs=0.02)
    assert share[1] == pytest.approx(0.25 / 15, abs=0.01)
    assert share[2] == pytest.approx(0.25 * 4 / 15, abs=0.015)
    assert share[3] == pytest.approx(0.25 * 10 / 15, abs=0.02)
    assert share[4] == pytest.approx(share[5], abs=0.03)
    with pytest.raises(ValueError, match="one MSE per scene"):
        TrainPatches([real, syn], scale=2, seed=0, hr_patch=8, scene_weights="psnr", scene_error=error[:2])
    with pytest.raises(ValueError, match="one MSE per scene"):
        TrainPatches([real, syn], scale=2, seed=0, hr_patch=8, scene_weights="psnr")


def test_psnr_weights_need_init() -> None:
    with pytest.raises(InputError, match="--scene-weights psnr weighs each scene by the --init model's error"):
        TrainConfig(data=["d"], stage="jsinet", scene_weights="psnr").resolve()
    TrainConfig(data=["d"], stage="jsinet", scene_weights="psnr", init="w.safetensors").resolve()


def test_training_run_logs_the_scene_errors(tmp_path: Path) -> None:
    """End to end on four tiny real pairs: the run measures every training scene with its --init
    weights, logs the MSEs, and trains."""
    from sdr2hdr.training import train

    from tests.test_stillpairs import _write_pairs

    pairs = tmp_path / "pairs"
    _write_pairs(pairs, h=64, w=64)
    init = tmp_path / "a" / "jsinet-x2-last.safetensors"
    first = TrainConfig(data=[str(pairs)], out=str(tmp_path / "a"), stage="jsinet", scale=2, steps=1, batch_size=2,
                        hr_patch=32, val_patches=0, heldout_fraction=0.0)
    train(first)
    cfg = TrainConfig(data=[str(pairs)], out=str(tmp_path / "b"), stage="jsinet", scale=2, steps=2, batch_size=2,
                      hr_patch=32, val_patches=0, heldout_fraction=0.0, init=str(init), scene_weights="psnr")
    train(cfg)
    start = json.loads((tmp_path / "b" / "log.jsonl").read_text().splitlines()[0])
    assert set(start["scene_mse"]) == {p.name for p in pairs.iterdir() if p.name != "LICENSES"}
    assert all(0 < v < 1 for v in start["scene_mse"].values())
