"""The torch side of the training data: step-indexed training patches, the fixed validation
patches and the batch sampler.

Sampling is a pure function of ``(seed, index)``: training sample ``g`` (the
``g``-th patch of the run, ``g = step * batch + i``) is drawn with
``numpy.random.default_rng([seed, stream, g])`` (``stream`` 0 for JSInet, 1 for
JSI-GAN). The data position of a checkpoint is therefore just the step, and
DataLoader workers are deterministic. Samples are the sources' integer code
values (:mod:`sdr2hdr.data.sources`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from sdr2hdr.data.degrade import Degradation
from sdr2hdr.data.sources import MatSource, Source, _crop_flip_rng, single_thread

__all__ = ["MSE_FLOOR", "VAL_SEED", "StepBatchSampler", "TrainPatches", "ValPatches", "inverse_mse_weights"]

#: Validation patches are drawn with this seed whatever ``--seed`` is, so runs compare.
VAL_SEED = 20200207


#: MSE (of /1023 code values) below which a scene counts as this good for ``scene_weights`` "psnr": 1e-4 is 40 dB.
MSE_FLOOR = 1e-4


def inverse_mse_weights(mse: np.ndarray, floor: float = MSE_FLOOR) -> np.ndarray:
    """Relative draw weight per scene: ``1 / max(MSE, floor)``, the gradient weight of mean log MSE
    (:mod:`sdr2hdr.training.scene_error` says why)."""
    mse = np.asarray(mse, dtype=np.float64)
    if mse.ndim != 1 or not np.all(np.isfinite(mse)) or np.any(mse < 0):
        raise ValueError("scene MSEs must be a 1-D array of finite numbers >= 0")
    return 1.0 / np.maximum(mse, floor)


def _pick(sources: Sequence[Source], cum: np.ndarray, table: list[tuple[int, int]], rng: np.random.Generator) -> tuple[Source, int]:
    u = rng.random() * cum[-1]
    j = int(np.searchsorted(cum, u, side="right"))
    j = min(j, len(table) - 1)
    si, i = table[j]
    return sources[si], i


class _Sampler:
    """Scene table and cumulative sampling weights.

    Scenes are drawn in proportion to their patch count (``scene_weights``
    "patches") or, with "equal", each scene of a kind (real pairs, synthesised)
    alike, with the kinds keeping their patch-count shares; "psnr" draws each
    scene of a kind in proportion to :func:`inverse_mse_weights` of ``scene_error``
    (a model's MSE per scene in table order,
    :mod:`sdr2hdr.training.scene_error`), the kinds again keeping their shares.
    With ``real_share`` (0..1) the real pairs' weights are scaled so that this
    share of patches comes from them (when both real and synthesised scenes are present).
    """

    def __init__(self, sources: Sequence[Source], hr: int, real_share: float | None = None, scene_weights: str = "patches",
                 scene_error: Sequence[float] | None = None) -> None:
        if scene_weights not in ("patches", "equal", "psnr"):
            raise ValueError(f"scene_weights must be 'patches', 'equal' or 'psnr', not {scene_weights!r}")
        self.sources = list(sources)
        self.table = [(si, i) for si, s in enumerate(self.sources) for i in range(len(s.names))]
        w = np.array([self.sources[si].weight(i, hr) for si, i in self.table], dtype=np.float64)
        self.epoch_size = int(w.sum())
        real = np.array([self.sources[si].real for si, _ in self.table], dtype=bool)
        if scene_weights in ("equal", "psnr"):
            inv = np.ones_like(w)
            if scene_weights == "psnr":
                if scene_error is None or len(scene_error) != len(w):
                    raise ValueError(f"scene_weights 'psnr' needs one MSE per scene ({len(w)})")
                inv = inverse_mse_weights(np.asarray(scene_error))
            for kind in (real, ~real):
                if kind.any():
                    w = np.where(kind, w[kind].sum() * inv / inv[kind].sum(), w)
        if real_share is not None and real.any() and (~real).any():
            w = np.where(real, w * real_share / w[real].sum(), w * (1.0 - real_share) / w[~real].sum())
        self.cum = np.cumsum(w)


class TrainPatches(Dataset):
    """Training patches; item ``g`` is a pure function of ``(seed, stream, g)`` (see the module doc).

    ``stream`` separates the sample sequences of the two training stages;
    ``real_share`` is the share of patches drawn from real SDR/HDR pairs
    (default: in proportion to their patch count); ``scene_weights`` "equal"
    draws each scene of a kind alike instead of by its patch count, "psnr" by
    ``1 / MSE`` of ``scene_error`` (one model MSE per scene, see :class:`_Sampler`).

    Returns ``(sdr uint8 3 x hr/s x hr/s, hdr int16 3 x hr x hr)`` as torch tensors.
    When the only source is the authors' .mat file, items follow a seeded
    permutation per epoch (every patch once per epoch, as the paper trained).
    """

    def __init__(
        self, sources: Sequence[Source], *, scale: int, seed: int, hr_patch: int = 160,
        degradation: Degradation = Degradation(), stream: int = 0, real_share: float | None = None,
        scene_weights: str = "patches", scene_error: Sequence[float] | None = None,
    ) -> None:
        if hr_patch % (2 * scale):
            raise ValueError(f"HR patch {hr_patch} must be a multiple of 2 x scale = {2 * scale}")
        self.sources = list(sources)
        self.scale, self.seed, self.hr, self.deg, self.stream = scale, int(seed), hr_patch, degradation, int(stream)
        self._s = _Sampler(self.sources, hr_patch, real_share, scene_weights, scene_error)
        self._mat = self.sources[0] if len(self.sources) == 1 and isinstance(self.sources[0], MatSource) else None
        self._perm: tuple[int, np.ndarray] | None = None

    @property
    def epoch_size(self) -> int:
        """Patches in one epoch: the .mat patch count, else non-overlapping HR patches of all scenes."""
        return len(self._mat.indices) if self._mat is not None else self._s.epoch_size

    def __len__(self) -> int:  # effectively unbounded; the sampler decides
        return 2**62

    def __getitem__(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        with single_thread():
            return self._item(g)

    def _item(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.stream, int(g)])
        if self._mat is not None:
            n = len(self._mat.indices)
            epoch, pos = divmod(int(g), n)
            if self._perm is None or self._perm[0] != epoch:
                self._perm = (epoch, np.random.default_rng([self.seed, self.stream, epoch, 7]).permutation(n))
            fh, fv = _crop_flip_rng(rng)
            s, h = self._mat.item(int(self._perm[1][pos]), fh, fv)
        else:
            src, i = _pick(self.sources, self._s.cum, self._s.table, rng)
            s, h = src.patch(i, rng, self.hr, self.scale, self.deg)
        return torch.from_numpy(np.ascontiguousarray(s)), torch.from_numpy(np.ascontiguousarray(h))


class ValPatches:
    """The fixed validation set: ``n`` patches of the held-out scenes, drawn with :data:`VAL_SEED`.

    Built once in memory (integer codes). The authors' .mat hold-out is used
    as it is (all its patches, no flips), up to ``n``.
    """

    def __init__(self, sources: Sequence[Source], *, scale: int, n: int = 500, hr_patch: int = 160, degradation: Degradation = Degradation()) -> None:
        self.sdr: torch.Tensor
        self.hdr: torch.Tensor
        sdrs: list[np.ndarray] = []
        hdrs: list[np.ndarray] = []
        mats = [s for s in sources if isinstance(s, MatSource)]
        others = [s for s in sources if not isinstance(s, MatSource)]
        for m in mats:
            for k in range(min(len(m.indices), n)):
                s, h = m.item(k, False, False)
                sdrs.append(s)
                hdrs.append(h)
        rest = n - len(sdrs)
        if others and rest > 0:
            self._draw(others, rest, scale, hr_patch, degradation, sdrs, hdrs)
        lr = hr_patch // scale
        self.sdr = torch.from_numpy(np.stack(sdrs)) if sdrs else torch.zeros(0, 3, lr, lr, dtype=torch.uint8)
        self.hdr = torch.from_numpy(np.stack(hdrs)) if hdrs else torch.zeros(0, 3, hr_patch, hr_patch, dtype=torch.int16)

    @staticmethod
    def _draw(others, rest, scale, hr_patch, degradation, sdrs, hdrs) -> None:  # noqa: ANN001
        with single_thread():
            smp = _Sampler(others, hr_patch)
            for i in range(rest):
                rng = np.random.default_rng([VAL_SEED, i])
                src, j = _pick(others, smp.cum, smp.table, rng)
                s, h = src.patch(j, rng, hr_patch, scale, degradation)
                sdrs.append(s)
                hdrs.append(h)

    def __len__(self) -> int:
        return int(self.sdr.shape[0])

    def batches(self, batch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, len(self), batch):
            yield self.sdr[i : i + batch], self.hdr[i : i + batch]


class StepBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of global sample indices for steps ``start .. stop-1``.

    Step ``k`` uses samples ``k * batch .. (k+1) * batch - 1``; with
    ``world`` processes rank ``r`` takes its contiguous ``batch / world`` share,
    so the global batch is the same for any number of processes.
    """

    def __init__(self, start: int, stop: int, batch: int, rank: int = 0, world: int = 1) -> None:
        if batch % world:
            raise ValueError(f"batch size {batch} is not divisible by the {world} processes")
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch, rank, world
        self.local = batch // world

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        for k in range(self.start, self.stop):
            base = k * self.batch + self.rank * self.local
            yield list(range(base, base + self.local))
