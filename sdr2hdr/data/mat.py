"""The authors' training files (MATLAB v7.3 = HDF5), read lazily with h5py.

Layout (spec, "The authors' data files"): ``SDR_youtube_80.mat`` (dataset
``SDR_data``, 8-bit code values; ``SDR_youtube_80_x4.mat`` for x4) and
``HDR_youtube_80.mat`` (dataset ``HDR_data``, 10-bit code values). MATLAB
stores ``H x W x C x N`` column-major, so h5py sees ``N x C x W x H``:
swapping axes 1 and 3 gives ``N x H x W x C``. One patch is read at a time
(the real files are tens of GB); the file is opened on first use in each
process (h5py handles must not cross a ``fork``, so DataLoader workers each
open their own).

The test files (``testset_SDR_x2.mat`` ``SDR_YUV`` ...) are full frames for
evaluation, not training patches: :func:`find_mat_pair` skips them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sdr2hdr.errors import InputError, one_line

__all__ = ["MatPatches", "find_mat_pair", "write_authors_mat", "SDR_KEY", "HDR_KEY", "TEST_KEYS"]

SDR_KEY = "SDR_data"
HDR_KEY = "HDR_data"
TEST_KEYS = ("SDR_YUV", "HDR_YUV")


def _h5():  # noqa: ANN202
    import h5py

    return h5py


def mat_keys(path: Path) -> list[str]:
    """Top-level dataset names of a v7.3 .mat file; one-line InputError if it is not HDF5."""
    h5py = _h5()
    try:
        with h5py.File(path, "r") as f:
            return [k for k in f.keys() if not k.startswith("#")]
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{path}: not a readable MATLAB v7.3 (HDF5) file ({one_line(exc)}); "
            "re-save it with save(..., '-v7.3')"
        ) from None


class MatPatches:
    """Lazy view of one dataset of patches: ``len()``, ``[i]`` -> ``C x H x W`` float32 code values.

    ``bits`` 8 (SDR) or 10 (HDR): the stored values are integer code values
    (any numeric dtype); ``[i]`` returns them as they are (not normalised).
    """

    def __init__(self, path: str | Path, key: str) -> None:
        self.path = Path(path)
        self.key = key
        self._file = None
        self._pid = -1
        h5py = _h5()
        keys = mat_keys(self.path)
        if key not in keys:
            raise InputError(f"{self.path}: no dataset {key!r} (has {', '.join(keys) or 'none'}); is this the authors' file?")
        with h5py.File(self.path, "r") as f:
            ds = f[key]
            if ds.ndim != 4 or ds.shape[1] != 3:
                raise InputError(
                    f"{self.path}: dataset {key!r} has shape {ds.shape}; expected N x 3 x W x H (MATLAB H x W x 3 x N)"
                )
            n, _, w, h = ds.shape
        self.n, self.height, self.width = int(n), int(h), int(w)

    def __len__(self) -> int:
        return self.n

    def _ds(self):  # noqa: ANN202
        if self._file is None or self._pid != os.getpid():
            self._file = _h5().File(self.path, "r")
            self._pid = os.getpid()
        return self._file[self.key]

    def __getitem__(self, i: int) -> np.ndarray:
        try:
            a = self._ds()[int(i)]  # C x W x H
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{self.path}: cannot read patch {i} of {self.key!r} ({one_line(exc)})") from None
        return np.ascontiguousarray(np.swapaxes(a, 1, 2)).astype(np.float32)

    def __getstate__(self) -> dict:
        d = dict(self.__dict__)
        d["_file"], d["_pid"] = None, -1
        return d


def find_mat_pair(folder_or_files: list[Path], scale: int) -> tuple[MatPatches, MatPatches] | None:
    """Among ``.mat`` files, the (SDR, HDR) training pair for ``scale``; None if there are none.

    Every .mat must hold ``SDR_data`` or ``HDR_data`` (test sets ``SDR_YUV`` /
    ``HDR_YUV`` are skipped). Errors: a .mat with other keys, no HDR file, no
    SDR file, or no SDR file whose patches are ``1/scale`` of the HDR patches.
    """
    mats = sorted(p for p in folder_or_files if p.suffix.lower() == ".mat")
    if not mats:
        return None
    sdrs: list[MatPatches] = []
    hdrs: list[MatPatches] = []
    for p in mats:
        keys = mat_keys(p)
        if SDR_KEY in keys:
            sdrs.append(MatPatches(p, SDR_KEY))
        elif HDR_KEY in keys:
            hdrs.append(MatPatches(p, HDR_KEY))
        elif any(k in keys for k in TEST_KEYS):
            continue
        else:
            raise InputError(
                f"{p}: no {SDR_KEY!r} or {HDR_KEY!r} dataset (has {', '.join(keys) or 'none'}); "
                "expected the authors' SDR_youtube_80.mat / HDR_youtube_80.mat"
            )
    if not sdrs and not hdrs:
        return None
    if not hdrs:
        raise InputError(f"{sdrs[0].path}: found no matching HDR_youtube_80.mat ({HDR_KEY!r}) beside it")
    if not sdrs:
        raise InputError(f"{hdrs[0].path}: found no matching SDR_youtube_80*.mat ({SDR_KEY!r}) beside it")
    hdr = hdrs[0]
    for sdr in sdrs:
        if sdr.height * scale == hdr.height and sdr.width * scale == hdr.width:
            if len(sdr) != len(hdr):
                raise InputError(f"{sdr.path}: {len(sdr)} patches but {hdr.path} has {len(hdr)}")
            return sdr, hdr
    have = ", ".join(f"{s.path.name} is x{hdr.height / s.height:g}" for s in sdrs)
    raise InputError(f"{sdrs[0].path}: no SDR file for --scale {scale} ({have} of {hdr.path.name})")


def write_authors_mat(path: str | Path, key: str, patches: np.ndarray) -> None:
    """Write ``N x H x W x C`` patches as the authors did (MATLAB v7.3: HDF5, column-major).

    For tests and small custom sets; stores ``uint8`` / ``uint16`` or floats as given.
    """
    h5py = _h5()
    path = Path(path)
    arr = np.swapaxes(np.asarray(patches), 1, 3)  # N x C x W x H
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset(key, data=arr, chunks=(1,) + arr.shape[1:])
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as f:
        f.write(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM" + b"\x00" * (512 - 128))
