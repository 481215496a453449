"""Registry and safe weight loading: hash verified, refusals are one-line errors."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.helpers import REPO

from sdr2hdr import zoo
from sdr2hdr.errors import WeightsError


class Tiny(nn.Module):
    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(3, 3 * scale * scale, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pixel_shuffle(self.conv(x), self.scale)


@pytest.fixture
def tiny_arch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(zoo.ARCHITECTURES, "tiny-test", Tiny)


@pytest.fixture
def saved(tmp_path: Path, tiny_arch: None) -> tuple[Path, str, Tiny]:
    model = Tiny(2)
    path = tmp_path / "tiny.safetensors"
    digest = zoo.save_weights(model, path, architecture="tiny-test", scale=2, variant="jsinet",
                              recipe={"steps": 3}, trained_on="nothing")
    return path, digest, model


def test_save_load_roundtrip_by_path(saved: tuple[Path, str, Tiny]) -> None:
    path, digest, model = saved
    assert digest == zoo.sha256_file(path)
    loaded = zoo.load_model(str(path))
    assert not loaded.training
    x = torch.rand(1, 3, 5, 7)
    torch.testing.assert_close(loaded(x), model(x))
    _, meta = zoo.read_safetensors(path)
    assert meta["architecture"] == "tiny-test" and meta["scale"] == "2"
    assert json.loads(meta["recipe"]) == {"steps": 3}


def test_weights_files_follow_the_umask(saved: tuple[Path, str, Tiny], tmp_path: Path) -> None:
    """safetensors alone creates 0600 files: a media server or another user could not read them."""
    import os
    import stat

    from sdr2hdr.outfile import process_umask

    path, _, _ = saved
    fp16 = tmp_path / "fp16.safetensors"
    zoo.export_weights(path, fp16, dtype="fp16")
    for p in (path, fp16):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o666 & ~process_umask()
    assert not list(tmp_path.glob("*.tmp"))


def test_registered_entry_verifies_sha256(saved: tuple[Path, str, Tiny], monkeypatch: pytest.MonkeyPatch) -> None:
    path, digest, _ = saved
    monkeypatch.setenv("SDR2HDR_WEIGHTS", str(path.parent))
    entry = zoo.ModelEntry("tiny-x2", "tiny-test", 2, "jsinet", path.name, digest, "nothing")
    monkeypatch.setitem(zoo.REGISTRY, "tiny-x2", entry)
    assert zoo.load_model("tiny-x2").scale == 2
    with pytest.raises(WeightsError, match="x2, but --scale 4"):
        zoo.load_model("tiny-x2", scale=4)
    # Tamper one byte at the end: same size, different hash.
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"tiny\.safetensors fails its sha256 check") as exc:
        zoo.load_model("tiny-x2")
    assert "\n" not in str(exc.value)
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(WeightsError, match="sha256"):
        zoo.load_model("tiny-x2")
    path.unlink()
    with pytest.raises(WeightsError, match="not found"):
        zoo.load_model("tiny-x2")


def test_truncated_file_by_path(saved: tuple[Path, str, Tiny]) -> None:
    path, _, _ = saved
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(WeightsError, match="not a valid safetensors"):
        zoo.load_model(str(path))


def test_pickle_is_never_loaded(tmp_path: Path) -> None:
    class Boom:
        def __reduce__(self):  # noqa: ANN204
            return (Path.touch, (tmp_path / "pwned",))

    p = tmp_path / "evil.safetensors"
    p.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(WeightsError):
        zoo.load_model(str(p))
    assert not (tmp_path / "pwned").exists()


def test_wrong_tensors_refused(tmp_path: Path, tiny_arch: None) -> None:
    from safetensors.torch import save_file

    p = tmp_path / "wrong.safetensors"
    save_file({"conv.weight": torch.zeros(1)}, str(p), metadata={"architecture": "tiny-test", "scale": "2"})
    with pytest.raises(WeightsError, match="do not fit"):
        zoo.load_model(str(p))
    save_file({"x": torch.zeros(1)}, str(p), metadata={"architecture": "alien"})
    with pytest.raises(WeightsError, match="no known architecture"):
        zoo.load_model(str(p))


def test_crafted_metadata_is_refused_before_building(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """scale=-2 for JSInet, scale 3 for a baseline, a peak outside 100..10000: one line each, never a traceback."""
    from safetensors.torch import save_file

    from sdr2hdr.cli import main

    cases = [({"architecture": "jsinet", "scale": "-2"}, "scale x-2 is not supported"),
             ({"architecture": "bt2408", "scale": "3"}, "scale x3 is not supported"),
             ({"architecture": "jsinet", "scale": "2", "peak_nits": "1e9"}, "outside 100..10000"),
             ({"architecture": "jsinet", "scale": "2", "peak_nits": "bright"}, "bad mastering peak")]
    from tests import videos

    clip = videos.make_clip(tmp_path / "in.mp4", n=2, size=(32, 24))
    for i, (meta, msg) in enumerate(cases):
        p = tmp_path / f"crafted{i}.safetensors"
        save_file({"x": torch.zeros(1)}, str(p), metadata=meta)
        with pytest.raises(WeightsError, match=msg):
            zoo.load(str(p))
        with pytest.raises(SystemExit) as exc:
            main(["convert", str(clip), str(tmp_path / "o.mkv"), "--model", str(p)])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.startswith("error: ") and msg in err and err.count("\n") == 1, err
    assert sorted(f.name for f in tmp_path.iterdir() if f.suffix != ".safetensors") == ["in.mp4"]


def test_duplicate_registry_names_are_refused() -> None:
    entry = zoo.REGISTRY["bt2408-x2"]
    with pytest.raises(ValueError, match="registered twice"):
        zoo.register(entry)


def test_unknown_and_missing_default_names() -> None:
    with pytest.raises(WeightsError, match="unknown model 'nope'"):
        zoo.load_model("nope")
    if "jsinet-x2" not in zoo.REGISTRY:
        with pytest.raises(WeightsError, match="no trained weights for 'jsinet-x2'"):
            zoo.load_model("jsinet-x2")


def test_registered_entries_are_complete() -> None:
    for name, e in zoo.REGISTRY.items():
        assert e.name == name and e.architecture in zoo.ARCHITECTURES and e.scale in (2, 4)
        if e.file is not None:
            assert e.sha256 and len(e.sha256) == 64
            assert (zoo.weights_dir() / e.file).is_file(), f"{name}: {e.file} missing from weights/"
            assert zoo.sha256_file(zoo.weights_dir() / e.file) == e.sha256


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sdr2hdr", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_cli_version_help_models() -> None:
    from sdr2hdr import __version__

    r = _cli("--version")
    assert r.returncode == 0 and __version__ in r.stdout
    r = _cli("--help")
    assert r.returncode == 0
    for cmd in ("models",):
        assert cmd in r.stdout
    r = _cli("models", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert {row["name"] for row in rows} == set(zoo.REGISTRY)
    for row in rows:
        assert {"name", "architecture", "scale", "parameters", "file", "sha256", "trained_on"} <= set(row)
    r = _cli("models")
    assert r.returncode == 0 and "sdr2hdr models" in r.stdout
