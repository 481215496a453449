"""sdr2hdr.inference.model_io: decoded planes -> the model input batch (the colour path), and the upload.

Clips are tiny and generated here (tests/videos.py); code values are checked
against colour-science.
"""

from __future__ import annotations

import subprocess
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

warnings.filterwarnings("ignore", module="colour")
import colour  # noqa: E402

from sdr2hdr.inference import model_io  # noqa: E402
from sdr2hdr.inference.model_io import StagingBuffers, model_input, stacked_plane, staging_buffers  # noqa: E402
from sdr2hdr.video.frames import PlanarFrame, SourceFormat  # noqa: E402
from sdr2hdr.video.probe import probe  # noqa: E402
from sdr2hdr.video.reader import FrameReader  # noqa: E402
from tests import videos  # noqa: E402

K = {"bt709": colour.WEIGHTS_YCBCR["ITU-R BT.709"], "bt601": colour.WEIGHTS_YCBCR["ITU-R BT.601"]}


def read_all(path: Path) -> list[PlanarFrame]:
    return list(FrameReader(probe(path)))


# -------------------------------------------------------- colour path (model input)


@pytest.mark.parametrize(
    ("matrix", "full_range", "codec", "pix_fmt"),
    [
        ("bt709", False, "libx264", "yuv420p"),
        ("bt601", False, "libx264", "yuv420p"),
        ("bt709", True, "libx264", "yuv420p"),
        ("bt601", True, "ffv1", "yuv422p"),
    ],
)
def test_model_input_code_values(tmp_path: Path, matrix: str, full_range: bool, codec: str, pix_fmt: str) -> None:
    colours = [(0.9, 0.2, 0.1), (0.1, 0.7, 0.4), (0.5, 0.5, 0.95)]
    pics = [videos.flat(1, 32, 24, c)[0] for c in colours]
    opts = {"qp": "0"} if codec == "libx264" else {}
    path = videos.make_clip(tmp_path / f"flat.{'mp4' if codec == 'libx264' else 'mkv'}", frames=pics, codec=codec,
                            pix_fmt=pix_fmt, matrix=matrix, full_range=full_range, options=opts)
    info = probe(path)
    assert (info.fmt.matrix, info.fmt.full_range) == (matrix, full_range)
    got = read_all(path)
    assert len(got) == 3
    for rgb, pf in zip(colours, got):
        codes = colour.RGB_to_YCbCr(np.array(rgb), K[matrix], out_bits=8, out_legal=not full_range, out_int=True)
        assert [int(p[0, 0]) for p in pf.planes] == codes.tolist()  # the file holds what colour-science says
        rgb_q = colour.YCbCr_to_RGB(codes.astype(np.float64), K[matrix], in_bits=8, in_legal=not full_range, in_int=True)
        expect = colour.RGB_to_YCbCr(rgb_q, K["bt709"], out_bits=8, out_legal=True, out_int=False)
        x = model_input([pf])
        assert x.shape == (1, 3, 24, 32)
        torch.testing.assert_close(x[0], torch.tensor(expect, dtype=torch.float32).view(3, 1, 1).expand(3, 24, 32),
                                   atol=1e-6, rtol=0)


def test_model_input_textured_601_full_444(tmp_path: Path) -> None:
    """Non-flat 4:4:4 BT.601 full range: exact planes -> exact BT.709 limited values, pixel by pixel."""
    pics = videos.scene(2, 32, 24)
    path = videos.make_clip(tmp_path / "t.mkv", frames=pics, codec="ffv1", pix_fmt="yuv444p", matrix="bt601", full_range=True)
    got = read_all(path)
    for pf in got:
        codes = np.stack(pf.planes, axis=-1).astype(np.float64)
        rgb_q = colour.YCbCr_to_RGB(codes, K["bt601"], in_bits=8, in_legal=False, in_int=True)
        expect = colour.RGB_to_YCbCr(rgb_q, K["bt709"], out_bits=8, out_legal=True, out_int=False)
        x = model_input([pf], dtype=torch.float64)[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(x, expect, atol=1e-9)


def test_ffmpeg_cli_made_601_full_range_clip(tmp_path: Path) -> None:
    """A clip made by the ffmpeg CLI (not our writer), BT.601 full range 4:4:4: exact values pixel by pixel."""
    path = tmp_path / "cli.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=48x32:rate=25:duration=0.2",
         "-vf", "scale=out_color_matrix=bt601:out_range=full,format=yuv444p", "-color_range", "pc",
         "-colorspace", "smpte170m", "-color_primaries", "smpte170m", "-color_trc", "smpte170m",
         "-c:v", "libx264", "-qp", "0", str(path)],
        check=True,
    )
    info = probe(path)
    assert (info.fmt.matrix, info.fmt.full_range, info.width, info.height) == ("bt601", True, 48, 32)
    got = read_all(path)
    assert len(got) == 5
    codes = np.stack(got[0].planes, axis=-1).astype(np.float64)
    assert codes[..., 0].min() < 16 or codes[..., 0].max() > 235  # really full range in the file
    rgb_q = colour.YCbCr_to_RGB(codes, K["bt601"], in_bits=8, in_legal=False, in_int=True)
    expect = colour.RGB_to_YCbCr(rgb_q, K["bt709"], out_bits=8, out_legal=True, out_int=False)
    x = model_input(got[:1], dtype=torch.float64)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(x, expect, atol=1e-9)


# ------------------------------------------------------------------ upload


def _old_planes(frames: list[PlanarFrame], dtype: torch.dtype) -> list[torch.Tensor]:
    """The float-first conversion model_input used before (per-frame float planes, then stacked)."""
    peak = float(2 ** frames[0].fmt.bits - 1)

    def one(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(a)
        return (t.to(torch.int32) if t.dtype == torch.uint16 else t).to(dtype)

    return [torch.stack([one(f.planes[i]) for f in frames]) / peak for i in range(3)]


@pytest.mark.parametrize(("bits", "dtype"), [(8, torch.float32), (10, torch.float32), (16, torch.float32),
                                             (10, torch.float64)])
def test_model_input_planes_match_float_first(bits: int, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(bits)
    npdt = np.uint8 if bits == 8 else np.uint16
    fmt = SourceFormat("yuv", bits, 2, 2, "bt709", False, "left", 10, 6,
                       "yuv420p" if bits == 8 else f"yuv420p{bits}le")
    frames = [PlanarFrame(fmt, (rng.integers(0, 2**bits, (6, 10)).astype(npdt),
                                rng.integers(0, 2**bits, (3, 5)).astype(npdt),
                                rng.integers(0, 2**bits, (3, 5)).astype(npdt)), pts=i) for i in range(2)]
    for i, old in enumerate(_old_planes(frames, dtype)):
        new = stacked_plane(frames, i, torch.device("cpu"), dtype)
        assert new.dtype == dtype and torch.equal(new, old)


def _random_frames(bits: int, seed: int, n: int = 2) -> list[PlanarFrame]:
    """``n`` random 10x6 4:2:0 frames of ``bits`` (uint8 / uint16 planes, as decoded)."""
    rng = np.random.default_rng(seed)
    npdt = np.uint8 if bits == 8 else np.uint16
    fmt = SourceFormat("yuv", bits, 2, 2, "bt709", False, "left", 10, 6, "yuv420p" if bits == 8 else f"yuv420p{bits}le")
    return [PlanarFrame(fmt, tuple(rng.integers(0, 2**bits, s).astype(npdt) for s in ((6, 10), (3, 5), (3, 5))), pts=i)
            for i in range(n)]


def _spy_uploads(monkeypatch: pytest.MonkeyPatch, shapes: set[tuple[int, ...]]) -> list[tuple[torch.dtype, int, bool]]:
    """Record (dtype, data_ptr, non_blocking) of every plane-stack-shaped tensor ``Tensor.to`` sends to a device."""
    crossed: list[tuple[torch.dtype, int, bool]] = []
    real_to = torch.Tensor.to

    def to(self: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        target = kwargs.get("device", args[0] if args else None)
        if isinstance(target, (torch.device, str)) and tuple(self.shape) in shapes:
            crossed.append((self.dtype, self.data_ptr(), bool(kwargs.get("non_blocking", False))))
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)
    return crossed


@pytest.mark.parametrize("bits", [8, 10, 16])
def test_planes_cross_to_the_device_as_stored_integers(monkeypatch: pytest.MonkeyPatch, bits: int) -> None:
    """Issue #14 item 4: 1 or 2 bytes a sample cross (uint8, uint16 as int16), not int32 / float; widened there."""
    frames = _random_frames(bits, seed=bits)
    want = model_input(frames)
    crossed = _spy_uploads(monkeypatch, {(2, 6, 10), (2, 3, 5)})
    got = model_input(frames)
    assert torch.equal(got, want)
    assert [d for d, _, _ in crossed] == [torch.uint8 if bits == 8 else torch.int16] * 3
    assert all(non_blocking for _, _, non_blocking in crossed)


def test_cuda_uploads_come_from_reused_staging_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CUDA target (simulated: the staging policy forced on, pinning off) uploads out of the cached buffers,
    the same ones batch after batch, and the refilled buffers give the same values as a fresh stack."""
    batches = [_random_frames(bits, seed) for bits, seed in ((10, 1), (10, 2), (16, 3))]
    want = [model_input(b) for b in batches]
    buffers = StagingBuffers(pin=False)
    monkeypatch.setattr(model_io, "uses_pinned_staging", lambda device: True)
    monkeypatch.setattr(model_io, "staging_buffers", lambda: buffers)
    crossed = _spy_uploads(monkeypatch, {(2, 6, 10), (2, 3, 5)})
    got = [model_input(b) for b in batches]
    assert all(torch.equal(g, w) for g, w in zip(got, want))
    assert len(buffers) == 3  # Y, Cb, Cr: one buffer each, reused by the three batches
    ptrs = [buffers.get(i, s, torch.int16).data_ptr() for i, s in enumerate(((2, 6, 10), (2, 3, 5), (2, 3, 5)))]
    assert [p for _, p, _ in crossed] == ptrs * 3
    assert {d for d, _, _ in crossed} == {torch.int16} and all(nb for _, _, nb in crossed)


def test_staging_buffer_cache() -> None:
    """Keyed by (slot, shape, dtype), least recently used dropped, a pending upload waited for before reuse."""
    sb = StagingBuffers(pin=False, max_buffers=2)
    a = sb.get(0, (2, 4), torch.uint8)
    assert sb.get(0, (2, 4), torch.uint8) is a and not a.is_pinned()
    b = sb.get(1, (2, 4), torch.uint8)
    c = sb.get(0, (2, 4), torch.int16)
    assert b is not a and c is not a and sb.get(0, (3, 4), torch.uint8) is not a
    assert len(sb) == 2  # a and b were dropped, least recently used first
    assert sb.get(0, (2, 4), torch.int16) is c and sb.get(0, (2, 4), torch.uint8) is not a

    class Event:
        waits = 0

        def synchronize(self) -> None:
            Event.waits += 1

    sb.uploaded(0, (2, 4), torch.uint8, Event())
    sb.uploaded(5, (9, 9), torch.uint8, Event())  # no such buffer: ignored
    sb.get(0, (2, 4), torch.uint8)
    assert Event.waits == 1
    sb.get(0, (2, 4), torch.uint8)
    assert Event.waits == 1  # waited once; the buffer is free since


def test_staging_buffers_are_per_thread_and_pinned_only_for_cuda() -> None:
    mine = staging_buffers()
    assert mine is staging_buffers() and mine.pin
    other: list[StagingBuffers] = []
    t = threading.Thread(target=lambda: other.append(staging_buffers()))
    t.start()
    t.join()
    assert other[0] is not mine
    assert not model_io.uses_pinned_staging(torch.device("cpu"))
    assert model_io.uses_pinned_staging(torch.device("cuda")) == torch.cuda.is_available()
