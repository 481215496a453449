"""The free peer: FFmpeg's libplacebo filter (up-scaling + inverse tone mapping), run for real on a test set.

What a user without sdr2hdr would run (``../shared`` issue "ship trained weights")::

    ffmpeg -init_hw_device vulkan=vk -filter_hw_device vk -i sdr.mp4 \\
      -vf "format=yuv420p,hwupload,libplacebo=w=iw*2:h=ih*2:inverse_tonemapping=1:tonemapping=spline:
           color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc:range=tv:format=yuv420p10le,
           hwdownload,format=yuv420p10le" out.mkv

Here each SDR frame of a test set (``testset[_real]_SDR_xS.mat``, 8-bit BT.709 limited
Y'CbCr 4:4:4, the exact input the models get) is fed to that filter as raw ``yuv444p``
tagged BT.709 / limited range, one FFmpeg run per frame (so libplacebo's peak detection
never mixes scenes), and read back as ``yuv444p10le`` (4:4:4 like the models' output, so
chroma sub-sampling costs the peer nothing). The frames are written as ``.npy`` Y'CbCr
code values and scored with ``sdr2hdr eval`` against ``testset[_real]_HDR.mat``.

Without a GPU libplacebo runs on Mesa's CPU Vulkan driver (lavapipe:
``apt-get install mesa-vulkan-drivers``). Where FFmpeg, its libplacebo filter or a Vulkan
device is missing, the script says so in one line and exits 0 (nothing is measured).

    python benchmarks/peer_libplacebo.py --testset runs/recipe/testset --scale 2 \\
        [--set real] [--tonemapping spline|auto] --json runs/recipe/eval_real-x2-libplacebo-spline.json
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

FILTER = (
    "hwupload,libplacebo=w=iw*{s}:h=ih*{s}:inverse_tonemapping=1:tonemapping={tm}:color_primaries=bt2020:"
    "color_trc=smpte2084:colorspace=bt2020nc:range=tv:format=yuv444p10le,hwdownload,format=yuv444p10le"
)


def available() -> str | None:
    """None when FFmpeg + libplacebo + a Vulkan device work here, else the reason."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return "ffmpeg is not installed (apt-get install ffmpeg)"
    filters = subprocess.run([ffmpeg, "-hide_banner", "-filters"], capture_output=True, text=True).stdout
    if " libplacebo " not in filters:
        return "this ffmpeg has no libplacebo filter"
    probe = subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-init_hw_device", "vulkan=vk", "-f", "lavfi",
                            "-i", "nullsrc=s=16x16:d=0.04", "-f", "null", "-"], capture_output=True, text=True)
    if probe.returncode != 0:
        return "no Vulkan device for libplacebo (on a CPU: apt-get install mesa-vulkan-drivers)"
    return None


def run_frame(sdr_codes: np.ndarray, scale: int, tonemapping: str) -> np.ndarray:
    """One SDR frame (``3 x h x w`` uint8 Y'CbCr BT.709 limited) through libplacebo -> ``3 x sh x sw`` 10-bit codes."""
    _, h, w = sdr_codes.shape
    cmd = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-init_hw_device", "vulkan=vk", "-filter_hw_device", "vk",
        "-f", "rawvideo", "-pix_fmt", "yuv444p", "-s", f"{w}x{h}", "-color_range", "tv", "-colorspace", "bt709",
        "-color_primaries", "bt709", "-color_trc", "bt709", "-i", "-",
        "-vf", FILTER.format(s=scale, tm=tonemapping), "-f", "rawvideo", "-",
    ]
    r = subprocess.run(cmd, input=np.ascontiguousarray(sdr_codes, dtype=np.uint8).tobytes(), capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"error: ffmpeg libplacebo failed: {r.stderr.decode(errors='replace').strip().splitlines()[-1:]}")
    out = np.frombuffer(r.stdout, dtype="<u2")
    if out.size != 3 * h * w * scale * scale:
        raise SystemExit(f"error: ffmpeg returned {out.size} samples, expected {3 * h * w * scale * scale}")
    return out.reshape(3, h * scale, w * scale)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--testset", type=Path, required=True, help="Folder written by `sdr2hdr testset`.")
    ap.add_argument("--scale", type=int, choices=(2, 4), default=2)
    ap.add_argument("--set", choices=("synthetic", "real"), default="synthetic")
    ap.add_argument("--tonemapping", default="spline", help="libplacebo tone-mapping function (spline, auto, bt.2390, ...).")
    ap.add_argument("--metrics", default="psnr,ssim,mpsnr,hdrvdp")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    why = available()
    if why is not None:
        print(f"skipped: libplacebo peer not measured: {why}")
        return 0
    from sdr2hdr.data.mat import MatPatches

    prefix = "testset" if a.set == "synthetic" else "testset_real"
    sdr = MatPatches(a.testset / f"{prefix}_SDR_x{a.scale}.mat", "SDR_YUV")
    with tempfile.TemporaryDirectory(prefix="libplacebo-") as tmp:
        for i in range(len(sdr)):
            codes = run_frame(np.clip(np.round(sdr[i]), 0, 255).astype(np.uint8), a.scale, a.tonemapping)
            np.save(Path(tmp) / f"{i:05d}.npy", codes.astype(np.int16))
        cmd = [sys.executable, "-m", "sdr2hdr", "eval", "--prediction", tmp, "--reference", str(a.testset / f"{prefix}_HDR.mat"),
               "--metrics", a.metrics, "-q"] + (["--json", str(a.json)] if a.json else [])
        return subprocess.run(cmd).returncode


if __name__ == "__main__":
    raise SystemExit(main())
