"""Model in, ready-to-run tiled model out: the one path ``convert``, ``preview`` and ``eval`` share.

:func:`prepare_model` resolves the model (a registry name, a ``.safetensors``
file or an ``nn.Module``), checks the asked-for scale against the model's own,
and wraps it in a :class:`~sdr2hdr.inference.tiling.TiledModel` whose tile is at
least the model's receptive field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from sdr2hdr.errors import Sdr2HdrError
from sdr2hdr.inference.tiling import TiledModel, receptive_field

if TYPE_CHECKING:
    from sdr2hdr.convert_options import ConvertOptions


@dataclass
class PreparedModel:
    """A model ready to run on frames, and what callers report about it.

    ``runner`` maps ``B x 3 x H x W`` BT.709 limited-range Y'CbCr / 255 (on any device)
    to ``B x 3 x sH x sW`` BT.2020 PQ limited-range Y'CbCr / 1023 on ``device``.
    """

    runner: TiledModel
    name: str
    sha256: str | None  # of the weights file (None: weight-free baseline or an in-memory module)
    peak_nits: float  # mastering peak the model was trained for, cd/m²
    scale: int
    warnings: list[str] = field(default_factory=list)


def _load(model: str | nn.Module | None, scale: int | None, gan: bool,
          device: torch.device) -> tuple[nn.Module, str, str | None, float, int]:
    """(module on ``device``, name, sha256, trained peak, scale); ``scale`` None: the model's own."""
    from sdr2hdr.zoo import DEFAULT_PEAK_NITS, default_model_name, load

    if isinstance(model, nn.Module):
        m = model.to(device).eval()
        own = getattr(m, "scale", None)
        if scale is not None and own is not None and int(own) != scale:
            raise Sdr2HdrError(f"the model is x{own}, but scale {scale} was asked for")
        return m, type(model).__name__, None, DEFAULT_PEAK_NITS, int(own or scale or 2)
    name = str(model or default_model_name(scale or 2, gan))
    loaded = load(name, device=device, scale=scale)  # sha256: registry entry's (verified) or the file's
    return loaded.module, name, loaded.sha256, loaded.peak_nits, loaded.scale


def prepare_model(model: str | nn.Module | None, *, scale: int | None = None, gan: bool = False,
                  device: torch.device, precision: str = "auto", tile: int = 0,
                  tile_pad: int | None = None) -> PreparedModel:
    """Load ``model`` (None: the default model of ``scale`` / ``gan``) and wrap it for tiled inference.

    ``tile`` (LR pixels, 0 = automatic) below the model's receptive field is raised to
    it with a warning; ``tile_pad`` None takes the receptive field's padding.
    """
    if scale is not None and scale not in (2, 4):
        raise Sdr2HdrError(f"scale must be 2 or 4, got {scale}")
    net, name, sha, peak, own_scale = _load(model, scale, gan, device)
    warnings: list[str] = []
    rf = receptive_field(net)
    if 0 < tile < rf:
        warnings.append(f"--tile {tile} is smaller than the model's receptive field ({rf} LR pixels); using {rf}")
        tile = rf
    runner = TiledModel(net, scale=own_scale, tile=tile, pad=tile_pad, device=device, precision=precision)
    return PreparedModel(runner, name, sha, peak, own_scale, warnings)


def prepare_for(o: ConvertOptions, device: torch.device) -> PreparedModel:
    """:func:`prepare_model` with a conversion's options: what ``convert`` and every segment worker load."""
    t = o.tiling
    return prepare_model(o.model, scale=o.scale, gan=o.gan, device=device, precision=o.precision, tile=t.tile,
                         tile_pad=t.tile_pad)
