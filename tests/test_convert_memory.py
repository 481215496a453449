"""Memory bounds of ``convert`` that a test can check without timing.

* the byte-bounded queues between the decode, model and encode threads block
  at their byte limit (and always take one item), with limits from the frame geometry;
* decoded frames stay uint8 / uint16 until :func:`~sdr2hdr.inference.model_io.model_input`;
* the 10-bit quantisation and light-level measurement work on strips of rows:
  bit-identical to the whole-frame computation, and a child process measuring
  its peak RSS sees far less than the several whole-frame float32 copies the
  whole-frame version made (5.5x the model output's bytes before, under 2x now);
* libx265's look-ahead is capped for 4K and larger outputs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from tests import videos

from sdr2hdr import color, memory, passes
from sdr2hdr.color.chroma import downsample_chroma, upsample_chroma
from sdr2hdr.convert import Encoding
from sdr2hdr.convert_options import EncodeOptions, MasteringOptions
from sdr2hdr.video import hdr10
from sdr2hdr.video.probe import probe
from sdr2hdr.video.reader import FrameReader

REPO = Path(__file__).resolve().parents[1]


class _Blob:
    def __init__(self, n: int) -> None:
        self.nbytes = n


# ------------------------------------------------------------------ queues


def test_queue_blocks_at_its_byte_limit() -> None:
    q = memory.ByteBoundedQueue(100)
    assert q.put(_Blob(60), timeout=0)
    assert q.put(_Blob(40), timeout=0)  # exactly at the limit
    assert not q.put(_Blob(1), timeout=0.05)  # one byte over: refused after the timeout
    assert q.bytes == 100 and len(q) == 2
    q.get(timeout=0)
    assert q.put(_Blob(50), timeout=0) and q.bytes == 90
    assert q.peak_bytes == 100


def test_queue_takes_one_oversized_item_then_blocks() -> None:
    q = memory.ByteBoundedQueue(10)
    assert q.put(_Blob(1000), timeout=0)  # an empty queue never deadlocks on a large frame
    assert not q.put(_Blob(1), timeout=0.05)
    assert not q.put(object(), timeout=0.05)  # even a zero-byte sentinel waits behind an over-budget item
    q.get(timeout=0)
    assert q.put(object(), timeout=0)


def test_blocked_producer_resumes_when_the_consumer_takes() -> None:
    q = memory.ByteBoundedQueue(64)
    q.put(np.zeros(64, np.uint8))
    done = threading.Event()

    def producer() -> None:
        q.put(np.zeros(32, np.uint8))  # no timeout: blocks until there is room
        done.set()

    t = threading.Thread(target=producer, daemon=True)
    t.start()
    assert not done.wait(0.1)  # still blocked: 64 + 32 > 64
    assert q.get(timeout=1).nbytes == 64
    assert done.wait(5)
    t.join(5)
    assert q.bytes == 32
    with pytest.raises(TimeoutError):
        memory.ByteBoundedQueue(1).get(timeout=0.01)


def test_item_bytes_count_nested_planes() -> None:
    y, c = np.zeros((4, 6), np.uint16), np.zeros((2, 3), np.uint16)
    assert memory.nbytes([(y, c, c, 10, 1), (y, c, c, 11, 1)]) == 2 * (48 + 12 + 12)
    assert memory.nbytes(object()) == 0


def test_queue_limits_from_frame_geometry() -> None:
    fmt = SimpleNamespace(width=1920, height=1080, bits=8, sub_x=2, sub_y=2, kind="yuv")
    info = SimpleNamespace(fmt=fmt, width=1920, height=1080)
    in_frame = 1920 * 1080 * 3 // 2  # uint8 4:2:0
    out_frame = 3840 * 2160 * 3  # uint16 4:2:0 at x2
    assert memory.planar_bytes(1920, 1080, bits=8) == in_frame
    assert passes.queue_limits(info, 2, 1) == (4 * in_frame, 3 * out_frame)  # 12 MB, 75 MB
    _, out4 = passes.queue_limits(info, 2, 4)
    assert 4 * out_frame <= out4 < 8 * out_frame  # one batch of four 4K frames waits, not three (300 MB)
    in8k, out8k = passes.queue_limits(info, 4, 4)
    assert out8k == 4 * 7680 * 4320 * 3 and in8k == 10 * in_frame
    fmt10 = SimpleNamespace(width=3840, height=2160, bits=10, sub_x=2, sub_y=1, kind="yuv")  # 33 MB a frame
    assert passes.queue_limits(SimpleNamespace(fmt=fmt10, width=3840, height=2160), 2, 1)[0] == memory.DECODE_QUEUE_BYTES
    fmt16k = SimpleNamespace(width=15360, height=8640, bits=10, sub_x=2, sub_y=1, kind="yuv")  # 531 MB a frame
    assert passes.queue_limits(SimpleNamespace(fmt=fmt16k, width=15360, height=8640), 2, 1)[0] == 2 * 15360 * 8640 * 2


# ------------------------------------------------------------------ dtypes


def test_decoded_frames_stay_integer(tmp_path: Path) -> None:
    clip = videos.make_clip(tmp_path / "in.mp4", n=2, size=(34, 20))
    frames = list(FrameReader(probe(clip)))
    assert frames and all(p.dtype == np.uint8 for f in frames for p in f.planes)
    assert frames[0].nbytes == 34 * 20 + 2 * 17 * 10


# ------------------------------------------------------------------ HDR10 strips


def _whole_frame(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[float], list[float]]:
    """The whole-frame quantisation and light levels (the code before strips), for comparison."""
    out = out.float()
    y = torch.clamp(torch.round(out[:, 0] * 1023.0), 4.0, 1019.0)
    c = torch.clamp(torch.round(downsample_chroma(out[:, 1:3]) * 1023.0), 4.0, 1019.0)
    b, h, w = y.shape
    cf = upsample_chroma(c / 1023.0, h, w, 2, 2, "left")
    lin = color.hdr10_to_linear(torch.cat(((y / 1023.0).unsqueeze(1), cf), dim=1), bits=10)
    m = lin.amax(dim=1).reshape(b, -1)
    return y.to(torch.int16), c.to(torch.int16), m.amax(dim=1).tolist(), m.mean(dim=1, dtype=torch.float64).tolist()


@pytest.mark.parametrize("strip_pixels", [2**18, 3 * 50, 1])
def test_strips_are_bit_identical_to_the_whole_frame(monkeypatch: pytest.MonkeyPatch, strip_pixels: int) -> None:
    torch.manual_seed(3)
    out = torch.rand(2, 3, 38, 50) * 1.3 - 0.15  # overshoots both ends: clipped codes
    out[1, :, 7:19, 11:30] = 0.95  # a bright patch: MaxCLL away from 0
    monkeypatch.setattr(hdr10, "STRIP_PIXELS", strip_pixels)
    strips = list(hdr10.row_strips(2, 38, 50, strip_pixels))
    assert strips[0][0] == 0 and strips[-1][1] == 38 and all(r0 % 2 == 0 for r0, _ in strips)
    hb = hdr10.hdr10_420(out)
    y, c, cll, fall = _whole_frame(out)
    assert hb.y.dtype == hb.c.dtype == torch.int16
    assert torch.equal(hb.y, y) and torch.equal(hb.c, c)
    assert hb.max_cll == cll
    assert hb.fall == pytest.approx(fall, rel=1e-12)
    assert hb.nbytes == 2 * (2 * 38 * 50 + 2 * 2 * 19 * 25)


def test_light_levels_odd_chroma_rows() -> None:
    """Codes of an odd-height 4:2:0 frame (decoded files): the strip filter reads the same rows."""
    y = torch.randint(64, 941, (1, 9, 8), dtype=torch.int16)
    c = torch.randint(64, 961, (1, 2, 5, 4), dtype=torch.int16)
    cf = upsample_chroma(c.float() / 1023.0, 9, 8, 2, 2, "left")
    lin = color.hdr10_to_linear(torch.cat(((y.float() / 1023.0).unsqueeze(1), cf), dim=1), bits=10)
    m = lin.amax(dim=1).reshape(1, -1)
    cll, fall = hdr10.light_levels(y, c)
    assert cll == m.amax(dim=1).tolist()
    assert fall == pytest.approx(m.mean(dim=1, dtype=torch.float64).tolist(), rel=1e-12)


_PEAK_CHILD = textwrap.dedent("""
    import torch
    torch.set_num_threads(1)
    from sdr2hdr.video.hdr10 import hdr10_420

    def hwm():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM"))

    x = torch.rand(1, 3, 1080, 1920) * 1.2 - 0.1  # a 1920x1080 model output, float32: 24.9 MB
    hdr10_420(x[:, :, :64, :64])  # lazy imports and tables out of the way
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # peak RSS := current RSS
    base = hwm()
    hb = hdr10_420(x)
    print((hwm() - base) / x.nbytes)
""")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc peak-RSS reset")
def test_quantisation_peak_rss_stays_below_a_few_frame_copies() -> None:
    """Whole-frame float temporaries (upsampled chroma, R'G'B', PQ EOTF) took 5.5x the output's bytes; strips < 2x."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", _PEAK_CHILD], check=False, capture_output=True, text=True, env=env, timeout=300)
    if res.returncode and "Permission denied" in res.stderr:
        pytest.skip("/proc/self/clear_refs is not writable here")
    assert res.returncode == 0, res.stderr
    ratio = float(res.stdout.split()[-1])
    assert ratio < 3.5, f"hdr10_420 on a 1080p frame raised peak RSS by {ratio:.2f}x the frame's float32 bytes"


# ------------------------------------------------------------------ x265 look-ahead


def test_x265_lookahead_capped_for_large_frames() -> None:
    assert memory.x265_lookahead(3840, 2160, "medium") == 10
    assert memory.x265_lookahead(2560, 1440, "medium") is None  # the preset's 20 fits
    assert memory.x265_lookahead(1920, 1080, "veryslow") is None
    assert memory.x265_lookahead(7680, 4320, "medium") == 5  # bframes + 1, the least x265 works with
    assert memory.x265_lookahead(3840, 2160, "ultrafast") is None  # its 5 is below the cap
    assert memory.x265_lookahead(3840, 2160, "medium", "rc-lookahead=30") is None  # the user's wins
    assert memory.x265_lookahead(3840, 2160, "medium", "no-sao=1:--rc_lookahead=3") is None


def test_x265_params_carry_the_cap_before_the_users_keys() -> None:
    enc = Encoding("matroska", EncodeOptions(x265_extra="no-sao=1"), MasteringOptions(), 1000.0)
    enc.lookahead = memory.x265_lookahead(3840, 2160, enc.encode.preset, enc.encode.x265_extra)
    params = enc.params()
    assert params.endswith("rc-lookahead=10:no-sao=1")
    enc.lookahead = None
    assert "rc-lookahead" not in enc.params()
