"""Paths every test shares: the repository root and the ``../shared`` folder beside it.

``SDR2HDR_SHARED`` names another ``shared`` folder. Test modules import this one
by name (``from helpers import SHARED``): pytest puts ``tests/`` on ``sys.path``.
It imports nothing heavy, so ``conftest.py`` can use it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPO", "SHARED"]

#: The repository root (the folder holding ``pyproject.toml``).
REPO = Path(__file__).resolve().parents[1]
#: The shared data, spec and reference values: ``$SDR2HDR_SHARED``, else ``../shared``.
SHARED = Path(os.environ.get("SDR2HDR_SHARED", REPO.parent / "shared"))


def run_convert(input: object, output: object, progress: object = None, **flat: object) -> object:
    """``sdr2hdr.convert.convert`` with flat keyword options (``ConvertOptions.build``), as the tests write them."""
    from sdr2hdr.convert import convert
    from sdr2hdr.convert_options import ConvertOptions

    return convert(input, output, ConvertOptions.build(**flat), progress=progress)  # type: ignore[arg-type]
