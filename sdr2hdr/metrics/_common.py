"""Input handling shared by the metrics: numpy/torch in, float64 torch tensor out."""

from __future__ import annotations

from typing import Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]


def as_tensor(
    x: ArrayLike,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = torch.float64,
) -> torch.Tensor:
    """Convert a numpy array or torch tensor to a torch tensor (no autograd history).

    Tensors stay on their device unless ``device`` is given; numpy arrays go to ``device``
    (CPU by default). ``dtype=None`` keeps a float32/float64 input's dtype and promotes
    anything else to float64.
    """
    t = x.detach() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if device is not None:
        t = t.to(device)
    if dtype is None:
        dtype = t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float64
    return t.to(dtype)


def as_image_batch(
    pred: ArrayLike, ref: ArrayLike, name: str, *, dtype: torch.dtype | None = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check and convert a prediction/reference pair to ``B x C x H x W`` tensors.

    Accepts ``C x H x W`` or ``B x C x H x W`` (numpy or torch). The reference goes to the
    prediction's device. ``dtype`` as in :func:`as_tensor` (float64 by default).
    """
    p = as_tensor(pred, dtype=dtype)
    r = as_tensor(ref, device=p.device, dtype=dtype)
    if p.shape != r.shape:
        raise ValueError(f"{name}: prediction shape {tuple(p.shape)} != reference shape {tuple(r.shape)}")
    if p.ndim == 3:
        p, r = p[None], r[None]
    if p.ndim != 4:
        raise ValueError(f"{name}: expected C x H x W or B x C x H x W, got shape {tuple(p.shape)}")
    return p, r
