"""JSInet and the discriminator against the spec (../shared/spec/jsi-gan.md)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from sdr2hdr.models import Discriminator, JSInet, detail_layer, guided_filter
from sdr2hdr.models import ops

CUDA = torch.cuda.is_available()


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(scope="module")
def nets() -> dict[int, JSInet]:
    torch.manual_seed(0)
    return {2: JSInet(2).eval(), 4: JSInet(scale=4).eval()}


# --------------------------------------------------------------------------
# JSInet structure
# --------------------------------------------------------------------------


def test_parameter_counts_exact(nets):
    assert _n_params(nets[2]) == 1_454_159
    assert _n_params(nets[4]) == 3_025_907


def test_layer_names_and_filter_channels(nets):
    for s, net in nets.items():
        assert net.scale == s and isinstance(net.scale, int)
        keys = net.state_dict().keys()
        for scope in ("local_contrast_enhancement", "detail_restoration", "image_reconstruction"):
            assert any(k.startswith(scope + ".") for k in keys)
        assert net.local_contrast_enhancement.conv_filter.out_channels == 81 * s * s
        assert net.detail_restoration.conv_filter_v.out_channels == 41 * s * s
        assert net.detail_restoration.conv_filter_h.out_channels == 41 * s * s
        assert net.image_reconstruction.conv_up.out_channels == 64 * s * s
        assert net.image_reconstruction.res_block2.conv1.in_channels == 128
        convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
        assert all(c.kernel_size == (3, 3) and c.stride == (1, 1) and c.padding == (1, 1) for c in convs)
        assert all(c.bias is not None for c in convs)


def test_receptive_field(nets):
    assert nets[2].receptive_field == 34 and nets[4].receptive_field == 34


def test_init_xavier_normal_zero_bias():
    torch.manual_seed(1)
    net = JSInet(2)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            assert torch.count_nonzero(m.bias) == 0
    conv = net.image_reconstruction.conv_up  # 64 -> 256, 3x3
    expected = math.sqrt(2.0 / (64 * 9 + 256 * 9))
    assert abs(conv.weight.std().item() / expected - 1) < 0.03
    assert abs(conv.weight.mean().item()) < 0.05 * expected


@pytest.mark.parametrize("s", [2, 4])
@pytest.mark.parametrize("hw", [(13, 17), (4, 3)])
def test_output_shapes_odd_sizes(nets, s, hw):
    h, w = hw
    x = torch.rand(2, 3, h, w)
    with torch.inference_mode():
        y = nets[s](x)
    assert y.shape == (2, 3, s * h, s * w) and y.dtype == torch.float32
    assert torch.isfinite(y).all()


def _reference_forward(net: JSInet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """P = (I + D) * Cl written from the spec with independent pieces
    (explicit softmax, unfold-based dynamic filters, explicit TF depth_to_space)."""
    s = net.scale
    b, c, h, w = x.shape
    xb = guided_filter(x, 5, 0.01)
    xd = x / (xb + 1e-15)
    lce, dr, ir = net.local_contrast_enhancement, net.detail_restoration, net.image_reconstruction

    def rb(block, t):
        return t[:, :64] + block.conv2(F.relu(block.conv1(F.relu(t))))

    # LCE
    t = lce.conv_in(xb)
    for blk in lce.res_blocks:
        t = rb(blk, t)
    logits = lce.conv_filter(F.relu(t)).reshape(b, 81, s * s, h, w)
    filt = torch.softmax(logits, dim=1).reshape(b, 81 * s * s, h, w)
    loc = ops.dynamic_local_filter_unfold(xb, filt, s)  # b c s2 h w
    cl = 2 * torch.sigmoid(F.pixel_shuffle(loc.reshape(b, c * s * s, h, w), s))
    # DR
    t = dr.conv_in(xd)
    t = rb(dr.res_blocks[0], t)
    i_dr = t
    for blk in dr.res_blocks[1:]:
        t = rb(blk, t)
    t = F.relu(t)
    fv, fh = dr.conv_filter_v(t), dr.conv_filter_h(t)
    sep = ops.dynamic_separable_filter_unfold(xd, fv, fh, s)
    d = F.pixel_shuffle(sep.reshape(b, c * s * s, h, w), s)
    # IR
    t = rb(ir.res_block1, ir.conv_in(x))
    t = torch.cat([t, i_dr], 1)
    for blk in (ir.res_block2, ir.res_block3, ir.res_block4):
        t = rb(blk, t)
    t = F.relu(ir.conv_up(F.relu(t)))
    # TF depth_to_space: channel (i*s + j)*64 + f -> (y*s + i, x*s + j, f)
    up = torch.zeros(b, 64, h * s, w * s)
    for i in range(s):
        for j in range(s):
            up[:, :, i::s, j::s] = t[:, (i * s + j) * 64 : (i * s + j + 1) * 64]
    img = ir.conv_out(up)
    return {"P": (img + d) * cl, "I": img, "D": d, "Cl": cl}


@pytest.mark.parametrize("s", [2, 4])
def test_forward_is_i_plus_d_times_cl(nets, s):
    torch.manual_seed(3)
    x = torch.rand(1, 3, 7, 10) * 0.8 + 0.06
    net = nets[s]
    with torch.inference_mode():
        ref = _reference_forward(net, x)
        p = net(x)
        i = net(x, conv_only=True)
    torch.testing.assert_close(p, ref["P"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(i, ref["I"], atol=1e-5, rtol=1e-4)
    assert ((ref["Cl"] > 0) & (ref["Cl"] < 2)).all()


def test_conv_only_flag(nets):
    x = torch.rand(1, 3, 9, 10)
    net = JSInet(2, conv_only=True).eval()
    with torch.inference_mode():
        y = net(x)
        assert y.shape == (1, 3, 18, 20)
        net.conv_only = False
        assert not torch.equal(net(x), y)
        torch.testing.assert_close(net(x, conv_only=True), y)


def test_tiles_with_receptive_field_context_reproduce_whole_frame(nets):
    """An output pixel depends on at most `receptive_field` LR pixels of context."""
    s, rf = 2, nets[2].receptive_field
    torch.manual_seed(4)
    x = torch.rand(1, 3, 84, 84) * 0.8 + 0.06
    net = nets[s]
    with torch.inference_mode():
        full = net(x)
        y0, x0, th, tw = 36, 38, 8, 6  # tile in LR pixels, 34 context on every side fits inside
        crop = x[..., y0 - rf : y0 + th + rf, x0 - rf : x0 + tw + rf]
        out = net(crop)[..., rf * s : (rf + th) * s, rf * s : (rf + tw) * s]
    torch.testing.assert_close(out, full[..., y0 * s : (y0 + th) * s, x0 * s : (x0 + tw) * s], atol=2e-5, rtol=1e-4)


def test_nothing_beyond_receptive_field_matters(nets):
    """Perturbing an LR pixel 35 away leaves the output of p bit-identical;
    the 41-tap vertical filter alone reaches 20 + 4 rows."""
    net, rf = nets[2], nets[2].receptive_field
    torch.manual_seed(8)
    x = torch.rand(1, 3, 71, 71) * 0.8 + 0.06
    py, px = 35, 35
    batch = x.repeat(5, 1, 1, 1)  # one forward: image 0 untouched, 1-4 perturbed
    for i, (dy, dx) in enumerate([(rf + 1, 0), (-rf - 1, rf + 1), (3, -rf - 1), (24, 0)], start=1):
        batch[i, :, py + dy, px + dx] += 0.5
    with torch.inference_mode():
        out = net(batch)[..., 2 * py : 2 * py + 2, 2 * px : 2 * px + 2]
    for i in (1, 2, 3):
        assert torch.equal(out[i], out[0]), i
    assert not torch.equal(out[4], out[0])


def test_training_backward():
    torch.manual_seed(5)
    net = JSInet(2).train()
    x = torch.rand(2, 3, 10, 12) * 0.8 + 0.06
    y = net(x)
    loss = (y - 0.5).pow(2).mean()
    loss.backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert net.local_contrast_enhancement.conv_filter.weight.grad.abs().sum() > 0
    assert net.detail_restoration.conv_filter_h.weight.grad.abs().sum() > 0


def test_bf16_autocast_cpu(nets):
    x = torch.rand(1, 3, 12, 12) * 0.8 + 0.06
    with torch.inference_mode():
        ref = nets[2](x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = nets[2](x)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    assert (y - ref).abs().max() < 0.1 * ref.abs().max() + 0.05


def test_channels_last_cpu(nets):
    x = torch.rand(1, 3, 12, 15) * 0.8 + 0.06
    net = JSInet(2).eval()
    net.load_state_dict(nets[2].state_dict())
    with torch.inference_mode():
        ref = net(x)
        net = net.to(memory_format=torch.channels_last)
        y = net(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(y, ref, atol=1e-4, rtol=1e-4)


def test_half_model_on_half_input_cpu():
    net = JSInet(2).eval().to(torch.bfloat16)
    x = (torch.rand(1, 3, 8, 9) * 0.8 + 0.06).to(torch.bfloat16)
    with torch.inference_mode():
        y = net(x)
    assert y.dtype == torch.bfloat16 and torch.isfinite(y.float()).all()


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_cuda_autocast(nets, dtype, channels_last):
    net = JSInet(4).cuda().eval()
    net.load_state_dict(nets[4].state_dict())
    x = torch.rand(1, 3, 40, 48, device="cuda") * 0.8 + 0.06
    x[..., :10, :10] = 0.0  # black: Xb = 0, the 1e-15 guard must hold
    with torch.inference_mode():
        ref = net(x)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=dtype):
            y = net(x)
    assert torch.isfinite(y).all()
    assert (y.float() - ref).abs().max() < 0.05 * ref.abs().max() + 0.05


# --------------------------------------------------------------------------
# Discriminator
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def disc() -> Discriminator:
    torch.manual_seed(6)
    return Discriminator()


def test_discriminator_shapes(disc):
    d = disc.train()
    x = torch.rand(2, 3, 160, 160)
    logit, fms = d(x)
    assert logit.shape == (2, 1)
    assert len(fms) == 4
    assert [tuple(f.shape) for f in fms] == [(2, 32, 80, 80), (2, 64, 40, 40), (2, 128, 20, 20), (2, 256, 10, 10)]
    # fm maps are LReLU(0.2) outputs of BN outputs: both signs before, negatives scaled by 0.2
    assert (fms[0] < 0).any() and (fms[0] > 0).any()
    (logit.sum() + sum(f.mean() for f in fms)).backward()
    assert all(p.grad is not None for p in d.parameters() if p.requires_grad)
    d.zero_grad(set_to_none=True)
    # eval mode with a single image (D2 takes detail layers the same way)
    d.eval()
    with torch.inference_mode():
        logit1, fms1 = d(detail_layer(x[:1]))
    assert logit1.shape == (1, 1) and fms1[3].shape == (1, 256, 10, 10)


def test_discriminator_spectral_norm_bn_init(disc):
    d = disc
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 + 4 * 2 + 3
    for c in convs:
        assert parametrize.is_parametrized(c, "weight")
        sn = c.parametrizations.weight[0]
        assert sn.n_power_iterations == 1
        w = c.parametrizations.weight.original
        assert w.abs().max() <= 0.04 + 1e-7  # truncated at 2 std
    big = d.conv_fc.parametrizations.weight.original
    assert abs(big.std().item() / 0.02 - 1) < 0.2  # truncation shrinks std to ~0.88 x 0.02
    assert [c.bias is not None for c in convs] == [True] + [False] * 11
    assert torch.count_nonzero(d.conv_in.bias) == 0
    bns = [m for m in d.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 4 * 2 + 3
    assert all(b.momentum == 0.1 and b.eps == 1e-5 and b.affine for b in bns)
    # spectral norm: the effective weight's largest singular value is ~1 (one power
    # iteration per training forward, on top of the 15 done at registration)
    conv = d.blocks[1].conv1  # 64 x (64*4*4)
    conv.train()
    with torch.no_grad():
        for _ in range(3):
            conv(torch.rand(1, 64, 4, 4))
    w_eff = conv.weight.detach().reshape(64, -1)
    assert abs(torch.linalg.matrix_norm(w_eff, ord=2).item() - 1) < 0.05
