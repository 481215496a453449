"""OpenEXR reading: scene-linear HDR stills as ``H x W x 3`` float arrays.

The stills of ``../shared/data/stills`` are one ``RGB`` channel set, half
float, scene-linear BT.709 (relative units). This reader also accepts the
other common layouts: separate ``R``/``G``/``B`` channels (any layer prefix of
the first RGB layer), ``RGBA``, and luminance-only ``Y`` (greyscale).
Non-finite values become 0 and negatives are clipped to 0 (scene light is
non-negative; a negative EXR value is an artefact of a gamut conversion).
Every failure is a one-line :class:`~sdr2hdr.errors.InputError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sdr2hdr.errors import InputError, one_line

__all__ = ["read_exr", "EXR_SUFFIXES"]

EXR_SUFFIXES = (".exr",)
HALF_MAX = 65504.0


def _pick_rgb(channels: dict[str, np.ndarray], path: Path) -> np.ndarray:
    for key in ("RGB", "RGBA"):
        if key in channels:
            px = np.asarray(channels[key])
            return px[..., :3]
    names = sorted(channels)
    # Separate channels, possibly with a layer prefix ("beauty.R").
    for prefix in [""] + sorted({n.rsplit(".", 1)[0] + "." for n in names if "." in n}):
        if all(prefix + c in channels for c in "RGB"):
            return np.stack([np.asarray(channels[prefix + c]) for c in "RGB"], axis=-1)
        if prefix + "RGB" in channels or prefix + "RGBA" in channels:
            key = prefix + "RGB" if prefix + "RGB" in channels else prefix + "RGBA"
            return np.asarray(channels[key])[..., :3]
    if "Y" in channels:
        y = np.asarray(channels["Y"])
        return np.repeat(y[..., None], 3, axis=-1)
    raise InputError(f"{path}: no RGB or Y channels in this OpenEXR file (has {', '.join(names) or 'none'})")


def read_exr(path: str | Path, dtype: type = np.float16) -> np.ndarray:
    """Read an OpenEXR still as a ``H x W x 3`` array (R, G, B), scene-linear, >= 0.

    ``dtype`` float16 (the default, half the memory; values are clipped to the
    half range) or float32.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"HDR still not found: {path}")
    try:
        import OpenEXR
    except ImportError:  # pragma: no cover - a dependency
        raise InputError(f"cannot read {path}: the OpenEXR python package is not installed (pip install openexr)") from None
    try:
        with OpenEXR.File(str(path)) as f:
            channels = {name: ch.pixels for name, ch in f.channels().items()}
    except Exception as exc:  # noqa: BLE001 - the binding raises plain Exceptions
        raise InputError(f"{path}: cannot decode this OpenEXR file ({one_line(exc)})") from None
    rgb = _pick_rgb(channels, path)
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise InputError(f"{path}: unexpected OpenEXR image shape {rgb.shape}")
    rgb = rgb.astype(np.float32, copy=False)
    rgb = np.nan_to_num(rgb, nan=0.0, posinf=HALF_MAX, neginf=0.0)
    rgb = np.clip(rgb, 0.0, HALF_MAX if dtype == np.float16 else None)
    return np.ascontiguousarray(rgb.astype(dtype, copy=False))
