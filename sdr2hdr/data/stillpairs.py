"""Real SDR/HDR photo pairs (``NAME/sdr.png`` + ``NAME/hdr.exr``): training patches and full frames.

Layout (``../shared/data/pairs/README.md``): each scene is a folder holding the
same picture twice, as real camera / photo pipelines rendered it:

* ``sdr.png``: 8-bit R'G'B', BT.709 primaries, sRGB transfer;
* ``hdr.exr``: linear BT.2020 RGB in cd/m² (SDR diffuse white at 203 cd/m²),
  the same size, pixel-aligned.

How a pair becomes the model's (input, target):

* **Target** (HR): the HDR light, clipped per component to the mastering peak
  (``Degradation.peak``, 1000 cd/m²), PQ, Y'CbCr BT.2020 limited 10-bit
  (:func:`sdr2hdr.data.degrade.hdr_target`, as for synthesised pairs).
* **Input** (LR): the SDR picture as a BT.709 video of it shows it: the light
  the sRGB photo shows (sRGB EOTF, white at 100 cd/m²) re-encoded with the
  BT.1886 inverse EOTF (gamma 2.4), then Y'CbCr BT.709 limited range -- the
  same display-referred convention as the synthesised inputs (a naive copy of
  the sRGB codes would make the same code mean up to 2.5x different light in
  the shadows in the two kinds of pairs). Then the degradation model's own back half
  (:func:`sdr2hdr.data.degrade.finish_sdr`): down-scaling by the scale factor
  with a kernel drawn from ``downscale_kernels``, 4:2:0 chroma, optional
  one-frame H.264 at a random CRF, 8-bit codes.

Scene names are the folder names; the validation / test split uses them like
every other scene (:func:`sdr2hdr.data.split.split_scenes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from sdr2hdr import color
from sdr2hdr.data import degrade
from sdr2hdr.data.degrade import Degradation
from sdr2hdr.data.exr import read_exr
from sdr2hdr.data.sources import Source, _codes, _crop_flip_rng, _flip, single_thread
from sdr2hdr.errors import InputError, one_line

__all__ = ["SDR_FILE", "HDR_FILE", "GAIN_BANDS", "is_pair_dir", "read_png_rgb", "shadow_gain", "StillPairSource", "still_pair_frame"]

SDR_FILE = "sdr.png"
HDR_FILE = "hdr.exr"


def is_pair_dir(path: Path) -> bool:
    """Whether ``path`` is a pair folder (holds both ``sdr.png`` and ``hdr.exr``)."""
    return (path / SDR_FILE).is_file() and (path / HDR_FILE).is_file()


def read_png_rgb(path: str | Path) -> np.ndarray:
    """An 8-bit R'G'B' PNG as ``H x W x 3`` uint8 (PyAV's FFmpeg decodes it; alpha dropped)."""
    import av

    try:
        with av.open(str(path)) as f:
            frame = next(f.decode(video=0))
            return np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
    except (OSError, StopIteration, av.error.FFmpegError) as exc:
        raise InputError(f"{path}: cannot read this PNG ({one_line(exc)})") from None


def _sdr_signal(rgb8: np.ndarray) -> torch.Tensor:
    """``h x w x 3`` uint8 sRGB R'G'B' -> ``3 x h x w`` Y'CbCr BT.709 limited range, code/255, unrounded.

    Display-referred: the light the photo shows on an sRGB display is re-encoded for a BT.1886
    display (gamma 2.4, 100 cd/m² white), as colour-managed video of it would be and as the
    synthesised inputs are; the sRGB and BT.1886 curves differ by up to 2.5x in the shadows.
    """
    v = torch.from_numpy(np.ascontiguousarray(rgb8)).permute(2, 0, 1).float() / 255.0
    sdr_white = 100.0
    signal = color.bt1886_inverse_eotf(color.srgb_eotf(v) * sdr_white, white=sdr_white)
    return color.rgb_to_ycbcr(signal, "bt709", bits=8)


class StillPairSource(Source):
    """Real SDR/HDR pairs, decoded once and kept in memory (SDR uint8, HDR float16 cd/m²)."""

    def __init__(self, dirs: Sequence[Path]) -> None:
        super().__init__(names=[Path(d).name for d in dirs], kind="real SDR/HDR pairs", real=True)
        self.dirs = [Path(d) for d in dirs]
        self.sdr: list[np.ndarray] = []
        self.hdr: list[np.ndarray] = []
        for d in self.dirs:
            s = read_png_rgb(d / SDR_FILE)
            h = read_exr(d / HDR_FILE)
            if s.shape != h.shape:
                raise InputError(f"{d / HDR_FILE}: {h.shape[1]}x{h.shape[0]} differs from {SDR_FILE}'s {s.shape[1]}x{s.shape[0]}; pairs must be pixel-aligned")
            self.sdr.append(s)
            self.hdr.append(h)

    def anchor_exposure(self) -> dict[str, float]:
        """Rescale each HDR rendition so that its shadows sit at the BT.2408 level of its SDR; returns the gains divided out.

        Most camera pairs (10 of the 13 in ``../shared/data/pairs``, all held-out ones among them) put
        SDR shadows at 1.00-1.01x their BT.2408 light (diffuse white at 203 cd/m²), as the pairs'
        README says they do, and expand only mid-tones and highlights; a few lift the whole picture
        (1.35-2.4x in the shadows: a global brightness choice, not an inverse tone map). Dividing
        that gain out keeps every pair's highlight expansion and makes the exposure convention the
        one the synthesised pairs and the HDR10 output use. For training only: test truth stays as made.
        """
        gains = {}
        for i, name in enumerate(self.names):
            g = shadow_gain(self.sdr[i], self.hdr[i])
            self.hdr[i] = (self.hdr[i].astype(np.float32) / g).astype(self.hdr[i].dtype)
            gains[name] = g
        return gains

    def weight(self, i: int, hr: int) -> float:
        h, w = self.sdr[i].shape[:2]
        return max(1, h // hr) * max(1, w // hr)

    def check_size(self, hr: int) -> None:
        for d, s in zip(self.dirs, self.sdr):
            if s.shape[0] < hr or s.shape[1] < hr:
                raise InputError(f"{d}: {s.shape[1]}x{s.shape[0]} is smaller than the {hr}x{hr} HR patch")

    def patch(self, i, rng, hr, scale, deg):  # noqa: ANN001, ANN201
        h, w = self.sdr[i].shape[:2]
        m = 2 * scale  # keep the LR grid even (4:2:0)
        y0 = m * int(rng.integers(0, (h - hr) // m + 1))
        x0 = m * int(rng.integers(0, (w - hr) // m + 1))
        fh, fv = _crop_flip_rng(rng)
        p = degrade.draw_params(rng, deg)
        sdr, hdr = _pair(self.sdr[i][y0 : y0 + hr, x0 : x0 + hr], self.hdr[i][y0 : y0 + hr, x0 : x0 + hr], scale, deg, p.kernel, p.crf)
        return _codes(_flip(sdr, fh, fv), _flip(hdr, fh, fv))


#: SDR light bands (luminance, SDR white = 1) tried in turn for :func:`shadow_gain`: shadows first.
GAIN_BANDS = ((0.02, 0.1), (0.1, 0.3), (0.3, 0.7))


def shadow_gain(sdr8: np.ndarray, hdr: np.ndarray, min_share: float = 0.01) -> float:
    """How much brighter than BT.2408 a pair's HDR shows its SDR shadows: the median of
    ``Y_hdr / (203 cd/m² * Y_sdr)`` over the pixels of the first band of :data:`GAIN_BANDS`
    that holds ``min_share`` of them (1.0 where none does).

    ``sdr8``: ``h x w x 3`` uint8 sRGB R'G'B' (BT.709); ``hdr``: linear BT.2020 RGB in cd/m².
    """
    with single_thread():
        sdr_light = color.srgb_eotf(torch.from_numpy(sdr8.astype(np.float32) / 255.0).permute(2, 0, 1))
        y_sdr = color.luminance(sdr_light, "bt709").numpy()
        y_hdr = color.luminance(torch.from_numpy(hdr.astype(np.float32)).permute(2, 0, 1), "bt2020").numpy()
    for lo, hi in GAIN_BANDS:
        m = (y_sdr >= lo) & (y_sdr < hi)
        if m.mean() >= min_share:
            return float(np.median(y_hdr[m] / (color.HDR_REFERENCE_WHITE * y_sdr[m])))
    return 1.0


def _pair(sdr8: np.ndarray, hdr: np.ndarray, scale: int, deg: Degradation, kernel: str, crf: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    with single_thread():
        disp = torch.from_numpy(np.ascontiguousarray(hdr).astype(np.float32)).permute(2, 0, 1)
        target = degrade.hdr_target(disp, primaries="bt2020", peak=deg.peak)
        inp = degrade.finish_sdr(_sdr_signal(sdr8), scale, kernel, deg.chroma420, crf)
    return inp, target


def still_pair_frame(
    src: StillPairSource, i: int, scale: int, region: tuple[int, int, int, int], seed: int = 0, *, config: Degradation = Degradation(),
) -> tuple[torch.Tensor, torch.Tensor, degrade.PairParams]:
    """A full-size evaluation pair from scene ``i``: ``region = (y0, x0, h, w)`` HR pixels (``h, w`` multiples of ``2*scale``).

    Kernel and H.264 CRF are drawn from ``numpy.random.default_rng(seed)`` as
    :func:`sdr2hdr.data.degrade.draw_params` does. Returns ``(sdr_lr, hdr_hr, params)``
    as code values / 255 and / 1023 (see the module doc).
    """
    y0, x0, h, w = region
    p = degrade.draw_params(np.random.default_rng(seed), config)
    sdr, hdr = _pair(src.sdr[i][y0 : y0 + h, x0 : x0 + w], src.hdr[i][y0 : y0 + h, x0 : x0 + w], scale, config, p.kernel, p.crf)
    return sdr, hdr, p
