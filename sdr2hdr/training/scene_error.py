"""Scene weights from a model's error (``train --scene-weights psnr``).

Why: the release bar and the paper's tables average PSNR over frames, i.e. they average
``log MSE`` per frame, while L2 over a batch averages MSE. Under L2 a scene the model already
renders well (a real pair whose HDR is almost BT.2408 of its SDR: a few 1e-5 of MSE) counts for
almost nothing beside a bright daylight scene at 1e-3, so the model learns the expansion of the
hard scenes and spoils the easy ones; the frame-averaged metrics punish exactly that. The
gradient of ``sum_s log MSE_s`` is ``sum_s grad MSE_s / MSE_s``: drawing scene ``s`` with a
probability proportional to ``1 / MSE_s`` makes plain L2 follow it. ``MSE_s`` is measured once,
with the run's ``--init`` model, on a fixed set of patches of the scene, and floored at
:data:`~sdr2hdr.data.patches.MSE_FLOOR` (40 dB) so that a scene already rendered better than that cannot take over
the draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from sdr2hdr.data.degrade import Degradation
from sdr2hdr.data.sources import Source, single_thread

__all__ = ["PATCHES_PER_SCENE", "init_scene_error", "scene_mse"]

#: Patches drawn per scene to measure its error.
PATCHES_PER_SCENE = 8
#: Seed stream of the measuring patches (apart from training and validation draws).
_STREAM = 5


@torch.no_grad()
def scene_mse(sources: Sequence[Source], model: nn.Module, *, scale: int, hr: int, degradation: Degradation,
              n: int = PATCHES_PER_SCENE, seed: int = 0) -> np.ndarray:
    """Mean squared error of ``model`` on ``n`` patches of every scene, in the sampler's table order
    (source by source, scene by scene).

    Patches are drawn as training draws them (crop, flips, degradation) with
    ``numpy.random.default_rng([seed, 5, source, scene, k])``; the model runs in fp32 on the CPU on
    input codes / 255 and is compared with the target codes / 1023 (PQ Y'CbCr, limited range).
    Values are rounded to 4 significant digits, so a resumed run recomputes the same weights.
    """
    model = model.eval()
    out = []
    for si, src in enumerate(sources):
        for i in range(len(src.names)):
            sdr, hdr = [], []
            for k in range(n):
                rng = np.random.default_rng([seed, _STREAM, si, i, k])
                with single_thread():
                    s, h = src.patch(i, rng, hr, scale, degradation)
                sdr.append(torch.from_numpy(np.ascontiguousarray(s)))
                hdr.append(torch.from_numpy(np.ascontiguousarray(h)))
            x = torch.stack(sdr).float() / 255.0
            y = torch.stack(hdr).float() / 1023.0
            mse = float(((model(x).float().clamp(0, 1) - y) ** 2).mean())
            out.append(float(f"{mse:.4g}"))
    return np.array(out, dtype=np.float64)


def init_scene_error(init: str, sources: Sequence[Source], *, scale: int, hr: int, degradation: Degradation) -> np.ndarray:
    """:func:`scene_mse` of the ``--init`` weights (a path or a registered name) on the training ``sources``."""
    from sdr2hdr.zoo import load

    with torch.random.fork_rng(devices=[]):  # measuring must not move the run's random numbers
        model = load(str(init), scale=scale).module.float().cpu()
        return scene_mse(sources, model, scale=scale, hr=hr, degradation=degradation)
