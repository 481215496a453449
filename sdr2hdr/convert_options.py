"""What ``convert`` is asked to do: one typed options object, with every default in this file only.

:class:`ConvertOptions` nests :class:`TilingOptions` (how the model is run),
:class:`EncodeOptions` (x265 and what else the file carries) and
:class:`MasteringOptions` (the HDR10 metadata) and :class:`SegmentOptions` (segments, resume,
workers). The CLI reads its defaults
from these classes (``ConvertOptions()``), :func:`sdr2hdr.convert.convert`
takes one instance, and :meth:`ConvertOptions.build` makes one from flat
keywords (``crf=18, tile=256``) for Python callers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from sdr2hdr.errors import Sdr2HdrError

if TYPE_CHECKING:  # the options stay importable without torch (the CLI's --help)
    from torch import nn

CLL_MODES = ("unknown", "measure")
DEINTERLACE_MODES = ("auto", "off", "on")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MASTERING_DISPLAYS = ("p3", "bt2020")
X265_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")


@dataclass(frozen=True)
class TilingOptions:
    """How frames go through the model.

    ``tile``: tile side in LR pixels, 0 = automatic from free memory (one below the
    model's receptive field is raised to it). ``tile_pad``: context around each tile
    in LR pixels, None = from the receptive field. ``batch``: frames per model call,
    0 = 4 on CUDA, 1 on CPU.
    """

    tile: int = 0
    tile_pad: int | None = None
    batch: int = 0

    def batch_for(self, device_type: str) -> int:
        """The batch size actually used on a device of ``device_type`` ("cuda", "cpu")."""
        return self.batch if self.batch > 0 else (4 if device_type == "cuda" else 1)


@dataclass(frozen=True)
class EncodeOptions:
    """The x265 encoding and the streams copied beside the video.

    ``x265_extra``: ``k=v:k=v`` checked by x265 itself before anything is written
    (HDR10 signalling keys and crf / preset are refused there).
    """

    crf: float = 16.0  # near-transparent for 4K HDR10
    preset: str = "medium"
    x265_extra: str = ""
    copy_audio: bool = True
    copy_subtitles: bool = True


@dataclass(frozen=True)
class MasteringOptions:
    """The HDR10 metadata: SMPTE ST 2086 mastering display and CTA-861.3 light levels.

    ``primaries``: "p3" (P3-D65) or "bt2020". ``peak_nits`` (cd/m²): None = the peak
    the model was trained for (its registry entry or weights metadata).
    ``min_nits``: the display's black, cd/m². ``cll``: "unknown" signals
    MaxCLL/MaxFALL 0,0 (one pass); "measure" runs the model twice and signals them.
    """

    primaries: str = "p3"
    peak_nits: float | None = None
    min_nits: float = 0.0001
    cll: str = "unknown"


@dataclass(frozen=True)
class SegmentOptions:
    """How a long conversion is cut into independent segments, resumed and spread over workers
    (:mod:`sdr2hdr.segments`).

    ``segment_seconds``: target segment length in seconds of video (cut at the next keyframe);
    a shorter input is one segment and converts directly, without a work folder. ``resume``: keep
    finished segments in the work folder ``.NAME.sdr2hdr/`` beside the output and reuse them when the
    same command runs again (False: no work folder unless workers need one, deleted at the end).
    ``restart``: discard a work folder made with another input, model or options. ``keep_work``:
    keep the work folder after success. ``workers``: local worker processes, 0 (default) = one per
    visible CUDA device (1 without CUDA: the conversion runs in this process). ``threads``: torch threads per worker, 0 = torch's default.
    ``ray``: None = no Ray; "" = start a local Ray cluster; else the address of an existing one.
    """

    segment_seconds: float = 30.0
    resume: bool = True
    restart: bool = False
    keep_work: bool = False
    workers: int = 0
    threads: int = 0
    ray: str | None = None


@dataclass(frozen=True)
class ConvertOptions:
    """Everything that decides a conversion besides the input and output paths.

    ``model``: a registry name, a ``.safetensors`` path, an ``nn.Module`` (tests,
    benchmarks) or None for the default model of ``scale`` / ``gan``. ``scale``: 2, 4
    or None (the model's own). ``device``: auto | cpu | cuda[:N]. ``precision``:
    auto | fp32 | bf16 | fp16 (:func:`sdr2hdr.precision.resolve_precision`).
    ``deinterlace``: auto | off | on (:mod:`sdr2hdr.video.deinterlace`).
    """

    model: str | nn.Module | None = None
    scale: int | None = None
    gan: bool = False
    device: str = "auto"
    precision: str = "auto"
    tiling: TilingOptions = field(default_factory=TilingOptions)
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    mastering: MasteringOptions = field(default_factory=MasteringOptions)
    segments: SegmentOptions = field(default_factory=SegmentOptions)
    overwrite: bool = False
    allow_truncated: bool = False
    deinterlace: str = "auto"

    @classmethod
    def build(cls, **flat: Any) -> ConvertOptions:
        """Options from flat keywords: the fields of this class and of its nested groups
        (``tile=256, crf=18, peak_nits=4000``); ``mastering`` may also name the primaries (a str)."""
        return cls().with_(**flat)

    def with_(self, **flat: Any) -> ConvertOptions:
        """A copy with flat keywords changed (see :meth:`build`); an unknown keyword is a ``TypeError``."""
        groups: dict[str, dict[str, Any]] = {"tiling": {}, "encode": {}, "mastering": {}, "segments": {}}
        top: dict[str, Any] = {}
        if isinstance(flat.get("mastering"), str):
            groups["mastering"]["primaries"] = flat.pop("mastering")
        for key, value in flat.items():
            group = _GROUP_OF.get(key)
            if group is not None:
                groups[group][key] = value
            elif key in _TOP:
                top[key] = value
            else:
                raise TypeError(f"unknown convert option {key!r}")
        for name, changes in groups.items():
            if changes:
                top[name] = replace(getattr(self, name), **changes)
        return replace(self, **top)

    def validate(self) -> None:
        """Refuse values no conversion can use, with one line each (before any file is read)."""
        t, e, m, g = self.tiling, self.encode, self.mastering, self.segments
        checks = [
            (g.segment_seconds > 0, f"segment seconds must be > 0, got {g.segment_seconds}"),
            (g.workers >= 0 and g.threads >= 0, "workers and threads must be >= 0"),
            (self.scale in (None, 2, 4), f"scale must be 2 or 4, got {self.scale}"),
            (m.cll in CLL_MODES, f"cll must be one of {', '.join(CLL_MODES)}, got {m.cll!r}"),
            (t.tile >= 0 and (t.tile_pad is None or t.tile_pad >= 0), "tile and tile pad must be >= 0"),
            (t.batch >= 0, f"batch must be >= 0, got {t.batch}"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
            (self.deinterlace in DEINTERLACE_MODES,
             f"deinterlace must be one of {', '.join(DEINTERLACE_MODES)}, got {self.deinterlace!r}"),
            (0 <= e.crf <= 51, f"crf must be within 0-51, got {e.crf}"),
            (e.preset in X265_PRESETS, f"unknown x265 preset {e.preset!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise Sdr2HdrError(message)


_GROUP_OF = {f.name: group for group, cls in (("tiling", TilingOptions), ("encode", EncodeOptions),
                                              ("mastering", MasteringOptions), ("segments", SegmentOptions))
             for f in fields(cls)}
_TOP = {f.name for f in fields(ConvertOptions)}
