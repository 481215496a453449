"""Training data: OpenEXR stills, HDR videos, the authors' .mat files, the
degradation model that synthesises (LR SDR, HR HDR10) pairs, and the torch
datasets with the by-scene validation split.

Public entry points::

    from sdr2hdr.data import synthesize_pair, scene_to_display, scene_key, Degradation, OPERATORS
    from sdr2hdr.data import split_scenes, collect_sources, TrainPatches, ValPatches, still_pair, read_exr
"""

from sdr2hdr.data.degrade import (
    OPERATORS,
    Degradation,
    scene_key,
    scene_to_display,
    synthesize_pair,
)
from sdr2hdr.data.exr import read_exr

__all__ = [
    "OPERATORS",
    "Degradation",
    "scene_key",
    "scene_to_display",
    "synthesize_pair",
    "read_exr",
    "split_scenes",
    "collect_sources",
    "TrainPatches",
    "ValPatches",
    "still_pair",
]


def __getattr__(name: str):  # noqa: ANN202 - lazy: datasets pulls in h5py / PyAV only when used
    if name in ("split_scenes", "collect_sources", "TrainPatches", "ValPatches", "still_pair"):
        from sdr2hdr.data import datasets

        return getattr(datasets, name)
    raise AttributeError(name)
