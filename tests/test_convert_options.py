"""``ConvertOptions``: one typed object, the only home of convert's defaults."""

from __future__ import annotations

import click
import pytest

from sdr2hdr.convert_options import ConvertOptions, EncodeOptions, MasteringOptions, TilingOptions
from sdr2hdr.errors import Sdr2HdrError


def test_build_from_flat_keywords_nests_them() -> None:
    o = ConvertOptions.build(model="bt2408-x2", tile=256, crf=18, mastering="bt2020", peak_nits=4000, overwrite=True)
    assert o == ConvertOptions(model="bt2408-x2", tiling=TilingOptions(tile=256), encode=EncodeOptions(crf=18),
                               mastering=MasteringOptions(primaries="bt2020", peak_nits=4000), overwrite=True)
    assert o.with_(crf=20).encode.crf == 20 and o.encode.crf == 18  # frozen: a copy
    with pytest.raises(TypeError, match="unknown convert option 'crff'"):
        ConvertOptions.build(crff=1)


@pytest.mark.parametrize(("flat", "message"), [
    ({"scale": 3}, "scale must be 2 or 4"),
    ({"cll": "guess"}, "cll must be one of unknown, measure"),
    ({"tile": -1}, "tile and tile pad must be >= 0"),
    ({"precision": "fp8"}, "precision must be one of"),
    ({"deinterlace": "maybe"}, "deinterlace must be one of"),
    ({"crf": 52}, "crf must be within 0-51"),
    ({"preset": "warp"}, "unknown x265 preset"),
])
def test_validate_refuses_with_one_line(flat: dict, message: str) -> None:
    with pytest.raises(Sdr2HdrError, match=message):
        ConvertOptions.build(**flat).validate()
    ConvertOptions().validate()


def test_batch_default_depends_on_the_device() -> None:
    assert TilingOptions().batch_for("cuda") == 4 and TilingOptions().batch_for("cpu") == 1
    assert TilingOptions(batch=3).batch_for("cuda") == 3


def test_cli_defaults_are_the_options_defaults() -> None:
    """The CLI states no default of its own: every convert option's default is the options object's."""
    from sdr2hdr.cli.convert import convert_cmd

    d = ConvertOptions()
    expect = {"device": d.device, "precision": d.precision, "tile": d.tiling.tile, "tile_pad": d.tiling.tile_pad,
              "batch": d.tiling.batch, "crf": d.encode.crf, "preset": d.encode.preset, "x265_extra": d.encode.x265_extra,
              "mastering": d.mastering.primaries, "peak_nits": d.mastering.peak_nits, "min_nits": d.mastering.min_nits,
              "cll": d.mastering.cll, "deinterlace": d.deinterlace}
    params = {p.name: p for p in convert_cmd.params if isinstance(p, click.Option)}
    for name, value in expect.items():
        assert params[name].default == value, name
