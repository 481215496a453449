"""JSInet, the generator of JSI-GAN (Kim, Oh and Kim, AAAI 2020).

Layer by layer as ``../shared/spec/jsi-gan.md`` (parameter counts
1,454,159 for x2 and 3,025,907 for x4).  Sub-module names mirror the
TensorFlow scopes of the authors' release (``Network/local_contrast_enhancement``,
``Network/detail_restoration``, ``Network/image_reconstruction``) and every
tensor keeps their layout, so their checkpoint maps 1:1 (conv weights HWIO ->
OIHW by ``w.permute(3, 2, 0, 1)``, nothing else):

* LCE filter conv output channel ``tap * s*s + subpixel``, ``tap = row*9 + col``;
* DR filter convs output channel ``subpixel * 41 + tap``;
* IR up-sampling conv: TF ``depth_to_space`` order ``subpixel * 64 + c`` with
  ``subpixel = i*s + j`` (:func:`~sdr2hdr.models.ops.depth_to_space_tf`).

Data convention: input ``X`` is ``B x 3 x H x W`` Y'CbCr (Y, U, V order)
BT.709 limited-range 8-bit code values / 255; output ``P`` is ``B x 3 x sH x sW``
Y'CbCr BT.2020 PQ limited-range 10-bit code values / 1023.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import ops

__all__ = ["JSInet", "ResBlock", "conv3x3", "Fp32Conv2d"]

FEATURES = 64
N_RES_BLOCKS = 4
#: Subnets that keep bf16 / fp16 autocast at inference; the others run in fp32 there. Measured
#: with trained weights on held-out crops (bf16 vs fp32 output in 10-bit codes, see
#: tests/test_precision.py): the IR and DR trunks in bf16 give 2-3 codes at the 99.9th
#: percentile (IR alone ~61 dB), both in fp32 give <= 1 code and > 80 dB; the LCE subnet
#: (a softmax over 81 taps feeding a sigmoid gain) does not move the output measurably.
#: Training runs every subnet under autocast (the loss does not need 1-code accuracy).
INFERENCE_REDUCED_SUBNETS: tuple[str, ...] = ("local_contrast_enhancement",)


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    """3x3, stride 1, zero 'same' padding, with bias."""
    return nn.Conv2d(cin, cout, 3, stride=1, padding=1, bias=True)


class Fp32Conv2d(nn.Conv2d):
    """A 3x3 'same' conv that always runs in float32, autocast or not (same parameters and state_dict keys).

    Used where bf16 / fp16 cannot carry the signal: the subnets' input convs
    (``Xd = X / Xb`` is ~1 +- a few 1e-3, below bf16's 2**-8 step near 1, so a
    bf16 input would erase the detail layer, and a float32 result keeps the
    residual stream float32) and the HR output conv (its result is ``I``
    itself, where one bf16 step is ~4 10-bit codes). Both have 3 channels on
    one side: their cost is negligible.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, 3, stride=1, padding=1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        """Computed in float32 (float64 stays float64); returned in ``x``'s dtype (float32 under autocast)."""
        dt = torch.float64 if x.dtype == torch.float64 else torch.float32
        with torch.autocast(device_type=x.device.type, enabled=False):
            b = None if self.bias is None else self.bias.to(dt)
            return self._conv_forward(x.to(dt), self.weight.to(dt), b).to(x.dtype)


class ResBlock(nn.Module):
    """``RB(x) = x + conv2(relu(conv1(relu(x))))`` (pre-activation, paper Eq. 2).

    With ``cin > cout`` (the IR block after the concatenation) the first conv
    takes all ``cin`` channels and the skip keeps only the first ``cout``.
    """

    def __init__(self, cin: int = FEATURES, cout: int = FEATURES) -> None:
        super().__init__()
        if cin < cout:
            raise ValueError("ResBlock needs cin >= cout")
        self.cout = cout
        self.conv1 = conv3x3(cin, cout)
        self.conv2 = conv3x3(cout, cout)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv2(F.relu(self.conv1(F.relu(x))))
        skip = x if x.shape[1] == self.cout else x[:, : self.cout]
        return skip + y


class LocalContrastEnhancement(nn.Module):
    """LCE subnet on ``Xb``: Conv(3->64), RB x4, ReLU, Conv(64 -> 81 s^2).

    Returns the raw filter logits (softmax over the 81 taps is applied by
    :class:`JSInet`)."""

    def __init__(self, scale: int, in_ch: int = 3, k: int = ops.LCE_TAPS) -> None:
        super().__init__()
        self.conv_in = Fp32Conv2d(in_ch, FEATURES)
        self.res_blocks = nn.Sequential(*[ResBlock() for _ in range(N_RES_BLOCKS)])
        self.conv_filter = conv3x3(FEATURES, k * k * scale * scale)

    def forward(self, xb: Tensor) -> Tensor:
        return self.conv_filter(F.relu(self.res_blocks(self.conv_in(xb))))


class DetailRestoration(nn.Module):
    """DR subnet on ``Xd``: Conv(3->64), RB x4 (output of the first RB is
    ``i_DR``), ReLU, two Conv(64 -> 41 s^2) for the vertical and horizontal
    1D filters.  Returns ``(i_DR, filters_v, filters_h)``."""

    def __init__(self, scale: int, in_ch: int = 3, k: int = ops.DR_TAPS) -> None:
        super().__init__()
        self.conv_in = Fp32Conv2d(in_ch, FEATURES)
        self.res_blocks = nn.Sequential(*[ResBlock() for _ in range(N_RES_BLOCKS)])
        self.conv_filter_v = conv3x3(FEATURES, k * scale * scale)
        self.conv_filter_h = conv3x3(FEATURES, k * scale * scale)

    def forward(self, xd: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        i_dr = self.res_blocks[0](self.conv_in(xd))
        h = i_dr
        for rb in self.res_blocks[1:]:
            h = rb(h)
        h = F.relu(h)
        return i_dr, self.conv_filter_v(h), self.conv_filter_h(h)


class ImageReconstruction(nn.Module):
    """IR subnet on ``X``: Conv(3->64), RB, concat ``i_DR`` (128 ch), RB(128->64),
    RB, RB, ReLU, Conv(64 -> 64 s^2), ReLU, pixel shuffle (TF order), Conv(64->3)
    at HR.  Returns ``I``."""

    def __init__(self, scale: int, in_ch: int = 3, out_ch: int = 3) -> None:
        super().__init__()
        self.scale = scale
        self.conv_in = Fp32Conv2d(in_ch, FEATURES)
        self.res_block1 = ResBlock()
        self.res_block2 = ResBlock(2 * FEATURES, FEATURES)
        self.res_block3 = ResBlock()
        self.res_block4 = ResBlock()
        self.conv_up = conv3x3(FEATURES, FEATURES * scale * scale)
        self.conv_out = Fp32Conv2d(FEATURES, out_ch)

    def forward(self, x: Tensor, i_dr: Tensor) -> Tensor:
        i_ir = self.res_block1(self.conv_in(x))
        h = torch.cat([i_ir, i_dr.to(i_ir.dtype)], dim=1)
        h = self.res_block4(self.res_block3(self.res_block2(h)))
        h = F.relu(self.conv_up(F.relu(h)))
        h = ops.depth_to_space_tf(h, self.scale)
        return self.conv_out(h)


class JSInet(nn.Module):
    """The JSInet generator.

    ``forward(x)``: ``x`` ``B x 3 x H x W`` -> ``P = (I + D) * Cl``,
    ``B x 3 x sH x sW``.  Any ``H, W >= 3`` (the guided filter's reflect
    padding needs 3), odd sizes included.

    ``conv_only`` (attribute, or the ``forward`` argument) skips the dynamic
    filtering (softmax, the 9x9 local filter, the 41+41 separable filter,
    the sigmoid and the final combination) and returns ``I``; every
    convolution, the filter-predicting ones included, and the guided filter
    still run.  Only meant for timing the convolution stack alone.

    Precision: the decomposition (guided filter, ``X / (Xb + 1e-15)``) is done
    in float32 (see :func:`~sdr2hdr.models.ops.guided_filter`); the subnets get
    it in the input's dtype; the dynamic filtering accumulates in the promoted
    dtype of the float32 ``Xb`` / ``Xd`` and the filters (float32); the result
    is returned in the input's dtype.  Works under fp16 / bf16 autocast and with
    channels_last.
    """

    def __init__(self, scale: int = 2, in_ch: int = 3, conv_only: bool = False) -> None:
        super().__init__()
        # The paper trains x2 and x4; the architecture works for any integer scale.
        if isinstance(scale, bool) or int(scale) != scale or scale < 1:
            raise ValueError(f"scale must be a positive int, got {scale!r}")
        self.scale = int(scale)
        self.conv_only = conv_only
        #: Subnets that keep autocast at inference (see INFERENCE_REDUCED_SUBNETS); a tuple to change per model.
        self.reduced_subnets: tuple[str, ...] = INFERENCE_REDUCED_SUBNETS
        self.local_contrast_enhancement = LocalContrastEnhancement(self.scale, in_ch)
        self.detail_restoration = DetailRestoration(self.scale, in_ch)
        self.image_reconstruction = ImageReconstruction(self.scale, in_ch, in_ch)
        self.reset_parameters()

    # LR pixels of context an output pixel depends on, per side, from its LR
    # position: guided filter (two 5x5 boxes: 2 + 2) + ten 3x3 convs on the DR
    # path (conv_in, 4 RBs x 2, filter conv) + half the 41-tap filter.
    @property
    def receptive_field(self) -> int:
        guided = 2 * (ops.GUIDED_FILTER_WINDOW // 2)
        convs = 1 + 2 * N_RES_BLOCKS + 1
        return guided + convs + ops.DR_TAPS // 2

    def reset_parameters(self) -> None:
        """Xavier (Glorot) normal weights, zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _subnet(self, name: str, *args: Tensor):  # noqa: ANN202
        """Run subnet ``name``; at inference under autocast, only :attr:`reduced_subnets` keep it."""
        dev = args[0].device.type
        if self.training or name in self.reduced_subnets or not torch.is_autocast_enabled(dev):
            return getattr(self, name)(*args)
        with torch.autocast(device_type=dev, enabled=False):
            return getattr(self, name)(*(a.float() for a in args))

    def forward(self, x: Tensor, conv_only: bool | None = None) -> Tensor:
        conv_only = self.conv_only if conv_only is None else conv_only
        if x.dim() != 4 or x.shape[-1] < 3 or x.shape[-2] < 3:
            raise ValueError(f"expected B x C x H x W with H, W >= 3, got {tuple(x.shape)}")
        s = self.scale
        xb, xd = ops.decompose(x)  # float32
        in_dtype = x.dtype if x.is_floating_point() else torch.float32
        lce_logits = self._subnet("local_contrast_enhancement", xb.to(in_dtype))
        i_dr, f_v, f_h = self._subnet("detail_restoration", xd.to(in_dtype))
        i = self._subnet("image_reconstruction", x.to(in_dtype), i_dr)
        if conv_only:
            return i
        b, c, h, w = x.shape
        # Softmax over the 81 taps of each (subpixel, pixel) filter (layout
        # tap*s^2 + subpixel), fused into the local filtering.
        cl = ops.dynamic_local_filter(xb, lce_logits, s, softmax=True)  # B x C x s^2 x H x W
        cl = 2.0 * torch.sigmoid(F.pixel_shuffle(cl.reshape(b, c * s * s, h, w), s))
        d = ops.dynamic_separable_filter(xd, f_v, f_h, s)
        d = F.pixel_shuffle(d.reshape(b, c * s * s, h, w), s)
        p = (i + d) * cl
        return p.to(in_dtype)
