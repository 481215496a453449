"""Memory budgets of a conversion: byte-bounded queues and the encoder's look-ahead.

What a ``convert`` holds at once (CPU, batch 1, 1080p -> 4K x2; measured
with ``benchmarks/bench_convert.py``):

* decoded frames: compact uint8 / uint16 planes (3.1 MB a 1080p 4:2:0 frame),
  in a queue bounded by bytes (:class:`ByteBoundedQueue`, :func:`decode_queue_bytes`);
* the model's activations on one tile, and its float32 output frame;
* the 10-bit 4:2:0 output (uint16, 24.9 MB a 4K frame), quantised and
  measured in row strips (:mod:`sdr2hdr.video.hdr10`), in a queue bounded by
  bytes (:func:`encode_queue_bytes`);
* libx265's own frames: about 59 MB per look-ahead frame at 4K (7.1 bytes per
  output pixel) on top of about 1.2 GB of reference, reconstruction and
  analysis buffers. :func:`x265_lookahead` caps ``rc-lookahead`` so the
  look-ahead stays within :data:`X265_LOOKAHEAD_BYTES`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable

#: Decoded frames waiting for the model: at most this many bytes (and 2 x batch + 2 frames).
DECODE_QUEUE_BYTES = 64 * 2**20
#: Encoder input waiting for libx265: at most this many bytes (and 3 batches).
ENCODE_QUEUE_BYTES = 96 * 2**20
#: Bytes of libx265 look-ahead frames (uint16 picture + half-resolution analysis planes) we allow.
X265_LOOKAHEAD_BYTES = 600 * 2**20
#: libx265 memory per look-ahead frame and output pixel (measured: 59 MB at 3840x2160, 10-bit).
X265_BYTES_PER_LOOKAHEAD_PIXEL = 7.1
#: ``rc-lookahead`` of each x265 preset (x265 4.x ``x265_param_default_preset``).
X265_PRESET_LOOKAHEAD = {"ultrafast": 5, "superfast": 10, "veryfast": 15, "faster": 15, "fast": 15,
                         "medium": 20, "slow": 25, "slower": 40, "veryslow": 40, "placebo": 60}
#: ``bframes`` of each x265 preset: the look-ahead never goes below this + 1.
X265_PRESET_BFRAMES = {"ultrafast": 3, "superfast": 3, "veryfast": 4, "faster": 4, "fast": 4, "medium": 4,
                       "slow": 4, "slower": 8, "veryslow": 8, "placebo": 8}


def nbytes(item: object) -> int:
    """Bytes of the arrays an item carries: an object with ``nbytes``, or a (nested) tuple / list of them."""
    n = getattr(item, "nbytes", None)
    if isinstance(n, int):
        return n
    if isinstance(item, (list, tuple)):
        return sum(nbytes(x) for x in item)
    return 0


class ByteBoundedQueue:
    """A FIFO between two threads bounded by the bytes of its items, not their count.

    :meth:`put` blocks while the queue holds items and adding ``item`` would
    pass ``max_bytes`` (or ``max_items``); an empty queue always takes one
    item, however large, so a frame bigger than the budget cannot deadlock.
    ``item`` bytes are :func:`nbytes` unless given. Timeouts are in seconds;
    a timed-out :meth:`put` returns False, a timed-out :meth:`get` raises
    :class:`TimeoutError`.
    """

    def __init__(self, max_bytes: int, max_items: int | None = None) -> None:
        if max_bytes <= 0 or (max_items is not None and max_items <= 0):
            raise ValueError("queue limits must be positive")
        self.max_bytes = int(max_bytes)
        self.max_items = max_items
        self.bytes = 0
        self.peak_bytes = 0
        self._items: deque[tuple[object, int]] = deque()
        self._cond = threading.Condition()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def _fits(self, n: int) -> bool:
        if not self._items:
            return True
        if self.max_items is not None and len(self._items) >= self.max_items:
            return False
        return self.bytes + n <= self.max_bytes

    def put(self, item: object, timeout: float | None = None, size: int | None = None) -> bool:
        """Append ``item`` when it fits; False if it still did not after ``timeout`` seconds."""
        n = nbytes(item) if size is None else int(size)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._fits(n):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            self._items.append((item, n))
            self.bytes += n
            self.peak_bytes = max(self.peak_bytes, self.bytes)
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> object:
        """The oldest item; :class:`TimeoutError` if none came within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError("queue empty")
                self._cond.wait(left)
            item, n = self._items.popleft()
            self.bytes -= n
            self._cond.notify_all()
            return item


def planar_bytes(width: int, height: int, *, bits: int, sub_x: int = 2, sub_y: int = 2, planes: int = 3) -> int:
    """Bytes of one frame of ``planes`` planes (uint8 up to 8 bits, else uint16), chroma subsampled."""
    item = 1 if bits <= 8 else 2
    luma = width * height
    chroma = -(-width // sub_x) * -(-height // sub_y)
    return item * (luma + (planes - 1) * chroma)


def decode_queue_bytes(frame_bytes: int, batch: int) -> int:
    """Byte limit of the decoded-frame queue: ``2 * batch + 2`` frames, at most :data:`DECODE_QUEUE_BYTES`."""
    return max(frame_bytes, min(DECODE_QUEUE_BYTES, (2 * batch + 2) * frame_bytes))


def encode_queue_bytes(frame_bytes: int, batch: int) -> int:
    """Byte limit of the encoder queue (items are batches): 3 batches, at most :data:`ENCODE_QUEUE_BYTES`."""
    return max(batch * frame_bytes, min(ENCODE_QUEUE_BYTES, 3 * batch * frame_bytes))


def _x265_keys(extra: str) -> Iterable[str]:
    for item in extra.split(":"):
        key = item.split("=", 1)[0].strip().lstrip("-").replace("_", "-").lower()
        if key:
            yield key


def x265_lookahead(width: int, height: int, preset: str, extra: str = "") -> int | None:
    """``rc-lookahead`` for a ``width x height`` output that keeps libx265's look-ahead within
    :data:`X265_LOOKAHEAD_BYTES`, or None where the preset's own is within it (or ``extra`` sets it).

    Never above the preset's own depth nor below its ``bframes + 1``: 3840x2160 with
    ``medium`` gives 10 (of 20); 2560x1440 and smaller keep the preset's.
    """
    if "rc-lookahead" in set(_x265_keys(extra)):
        return None
    own = X265_PRESET_LOOKAHEAD.get(preset)
    if own is None:
        return None
    per_frame = X265_BYTES_PER_LOOKAHEAD_PIXEL * width * height
    fits = int(X265_LOOKAHEAD_BYTES // max(per_frame, 1.0))
    depth = max(X265_PRESET_BFRAMES.get(preset, 4) + 1, fits)
    return depth if depth < own else None
