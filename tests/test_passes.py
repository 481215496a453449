"""One pass of ``convert`` (:func:`sdr2hdr.passes.run_pass`): the encode thread owns the writer.

The HDR10 writer is not thread-safe, so only the encode thread may open, write,
close or abort it; on a failure in the calling thread (a model error, Ctrl-C)
``run_pass`` must not return before the writer was aborted, because the caller
deletes the partial file next.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch

from sdr2hdr import passes
from sdr2hdr.inference.tiling import TiledModel
from sdr2hdr.models.baselines import BT2408DirectMapping
from sdr2hdr.video.probe import probe
from tests import videos


class SpyWriter:
    """Records which thread called each method, and when."""

    def __init__(self, calls: list[tuple[str, str, float]], slow: float = 0.0) -> None:
        self.calls = calls
        self.slow = slow
        self.report = type("R", (), {"copied": ["audio #1"], "dropped": []})()
        self.duration_seconds = 1.25
        self._log("open")

    def _log(self, what: str) -> None:
        self.calls.append((what, threading.current_thread().name, time.monotonic()))

    def write(self, y: object, cb: object, cr: object, *, pts: int, duration: int) -> None:
        time.sleep(self.slow)
        self._log("write")

    def close(self) -> None:
        self._log("close")

    def abort(self) -> None:
        time.sleep(0.2)  # a slow abort: run_pass must still wait for it
        self._log("abort")


def _runner() -> TiledModel:
    return TiledModel(BT2408DirectMapping(2), scale=2, device="cpu", precision="fp32")


def test_writer_lives_in_the_encode_thread(tmp_path: Path) -> None:
    info = probe(videos.make_clip(tmp_path / "in.mp4", n=5, size=(32, 24)))
    calls: list[tuple[str, str, float]] = []
    res = passes.run_pass(info, _runner(), batch=2, open_writer=lambda: SpyWriter(calls), phase="convert",
                          progress=None, allow_truncated=False)
    assert res.frames == 5
    assert [c[0] for c in calls] == ["open"] + ["write"] * 5 + ["close"]
    assert {c[1] for c in calls} == {"sdr2hdr-encode"}
    assert res.copied == ["audio #1"] and res.video_seconds == 1.25  # the writer's report comes back


class Boom(RuntimeError):
    pass


def test_failure_in_the_caller_aborts_the_writer_before_returning(tmp_path: Path) -> None:
    info = probe(videos.make_clip(tmp_path / "in.mp4", n=6, size=(32, 24)))
    calls: list[tuple[str, str, float]] = []
    runner = _runner()
    seen = [0]
    inner = runner.__call__

    def failing(x: torch.Tensor) -> torch.Tensor:
        seen[0] += 1
        if seen[0] == 2:
            raise Boom("model failed")
        return inner(x)

    with pytest.raises(Boom):
        passes.run_pass(info, failing_runner(runner, failing), batch=1,
                        open_writer=lambda: SpyWriter(calls, slow=0.05), phase="convert", progress=None,
                        allow_truncated=False)
    returned = time.monotonic()
    kinds = [c[0] for c in calls]
    assert kinds[0] == "open" and kinds[-1] == "abort" and "close" not in kinds
    assert {c[1] for c in calls} == {"sdr2hdr-encode"}  # never touched from the calling thread
    assert calls[-1][2] <= returned  # aborted before run_pass gave the error to its caller


def failing_runner(runner: TiledModel, call: object) -> TiledModel:
    """``runner`` whose calls go through ``call`` (TiledModel is called as an object, not a method)."""

    class Failing(TiledModel):
        def __call__(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            return call(x)  # type: ignore[operator]

    runner.__class__ = Failing
    return runner
