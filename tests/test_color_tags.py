"""sdr2hdr.color.tags: FFmpeg's names for the H.273 enum numbers, the one HDR-transfer test, guess_matrix."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from sdr2hdr.color import tags


def test_hdr_transfers_are_pq_and_hlg_by_number_and_name() -> None:
    assert tags.HDR_TRANSFERS == {16, 18} == {tags.TRC_SMPTE2084, tags.TRC_ARIB_STD_B67}
    assert tags.HDR_TRANSFER_NAMES == {"smpte2084", "arib-std-b67"}
    for trc in (16, 18, "smpte2084", "arib-std-b67"):
        assert tags.is_hdr_transfer(trc), trc
    for trc in (None, 0, 1, 2, 6, 13, 14, 15, 17, "bt709", "unknown", "bt2020-10", "pq", "hlg"):
        assert not tags.is_hdr_transfer(trc), trc
    assert tags.describe_hdr_transfer(16) == tags.describe_hdr_transfer("smpte2084") == "PQ / SMPTE ST 2084"
    assert tags.describe_hdr_transfer(18) == tags.describe_hdr_transfer("arib-std-b67") == "HLG / ARIB STD-B67"


def test_named_constants_match_their_names() -> None:
    assert tags.TRC_NAMES[tags.TRC_BT709] == "bt709" and tags.TRC_NAMES[tags.TRC_UNSPECIFIED] == "unknown"
    assert tags.TRC_NAMES[tags.TRC_SMPTE170M] == "smpte170m" and tags.TRC_NAMES[tags.TRC_BT2020_10] == "bt2020-10"
    assert tags.PRIMARIES_NAMES[tags.PRI_BT2020] == "bt2020" and tags.PRIMARIES_NAMES[tags.PRI_SMPTE432] == "smpte432"
    assert tags.MATRIX_NAMES[tags.SPC_BT2020_NCL] == "bt2020nc" and tags.MATRIX_NAMES[tags.SPC_BT2020_CL] == "bt2020c"
    assert tags.MATRIX_NAMES[tags.SPC_RGB] == "gbr" and tags.MATRIX_NAMES[tags.SPC_ICTCP] == "ictcp"
    assert tags.RANGE_NAMES == {tags.RANGE_UNSPECIFIED: "unknown", tags.RANGE_MPEG: "tv", tags.RANGE_JPEG: "pc"}
    assert tags.tag_name(tags.TRC_NAMES, 99) == "99" and tags.tag_name(tags.TRC_NAMES, None, "unspecified") == "unspecified"


@pytest.mark.parametrize(("trc", "pri", "spc", "rng"), [(4, 5, 5, 2), (18, 12, 10, 1), (16, 9, 9, 1), (13, 11, 14, 1),
                                                         (14, 6, 6, 2), (8, 4, 8, 1), (15, 7, 7, 1)])
def test_names_are_what_ffprobe_prints(tmp_path: Path, trc: int, pri: int, spc: int, rng: int) -> None:
    """A stream tagged with these numbers (PyAV, as the converter sets them): ffprobe names them as the table does."""
    if shutil.which("ffprobe") is None:
        pytest.skip("needs ffprobe")
    path = tmp_path / "tagged.mkv"
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=24)
        cc = s.codec_context
        cc.width, cc.height, cc.pix_fmt, cc.time_base = 16, 16, "yuv420p", Fraction(1, 24)
        cc.color_trc, cc.color_primaries, cc.colorspace, cc.color_range = trc, pri, spc, rng
        f = av.VideoFrame.from_ndarray(np.zeros((24, 16), np.uint8), format="yuv420p")
        f.color_trc, f.color_primaries, f.colorspace, f.color_range = trc, pri, spc, rng
        f.pts = 0
        for p in [*s.encode(f), *s.encode(None)]:
            out.mux(p)
    got = json.loads(subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_streams", str(path)],
                                    capture_output=True, text=True, check=True).stdout)["streams"][0]
    assert got["color_transfer"] == tags.TRC_NAMES[trc]
    assert got["color_primaries"] == tags.PRIMARIES_NAMES[pri]
    assert got["color_space"] == tags.MATRIX_NAMES[spc]
    assert got["color_range"] == tags.RANGE_NAMES[rng]


def test_guess_matrix() -> None:
    assert tags.guess_matrix(tags.SPC_BT709, 64, 48) == "bt709"
    for spc in (tags.SPC_BT470BG, tags.SPC_SMPTE170M, tags.SPC_FCC):
        assert tags.guess_matrix(spc, 1920, 1080) == "bt601"
    assert tags.guess_matrix(tags.SPC_BT2020_NCL, 64, 48) == "bt2020"
    assert tags.guess_matrix(tags.SPC_SMPTE240M, 64, 48) == "bt709"
    for spc in (tags.SPC_UNSPECIFIED, tags.SPC_RESERVED, 15):  # guessed from the size, as mpv / FFmpeg do
        assert tags.guess_matrix(spc, 720, 576) == "bt601"
        assert tags.guess_matrix(spc, 1280, 16) == "bt709" == tags.guess_matrix(spc, 640, 578)
    for spc in (tags.SPC_RGB, tags.SPC_YCGCO, tags.SPC_BT2020_CL, tags.SPC_ICTCP):
        assert tags.guess_matrix(spc, 1920, 1080) is None
