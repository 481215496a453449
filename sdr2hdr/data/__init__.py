"""Training data: OpenEXR stills (``exr``), HDR videos (``hdrvideo``), the authors' .mat files
(``mat``), real photo pairs (``stillpairs``), the degradation model that synthesises (LR SDR,
HR HDR10) pairs (``degrade``), the sources built on them (``sources``), the by-scene
validation split (``split``), finding it all under ``--data`` (``collect``) and the torch
datasets (``patches``).

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


#: Where the lazily imported names live (their modules pull in torch's datasets, h5py or PyAV).
_LAZY = {
    "split_scenes": "split",
    "collect_sources": "collect",
    "TrainPatches": "patches",
    "ValPatches": "patches",
    "still_pair": "sources",
}


def __getattr__(name: str):  # noqa: ANN202 - lazy: see _LAZY
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"sdr2hdr.data.{_LAZY[name]}"), name)
    raise AttributeError(name)
