"""The fused QAT forward computes bitwise what the composite formulation computes.

The references below are the straight-through formulations the fused autograd
functions replaced (``docs/toolchain.md``, "QAT speed"), written with autograd's own
ops; values and gradients must be equal element for element, gradients including the
sign of zero.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from toolchain.nn import QuantConv2d, QuantLinear
from toolchain.nn.batch_stats import batch_statistics
from toolchain.quant import ActQuant, QuantTensor, SymQuant, WeightQuant, quant_bias, round_half_up_ste, round_ste


def reference_act(q: ActQuant, x: torch.Tensor, relu: bool) -> torch.Tensor:
    """ActQuant's composite formulation: ``(clamp(round_half_up_ste(x / s) + z, 0, 2^b - 1) - z) * s``."""
    x = F.relu(x) if relu else x
    s, z = q.qparams()
    return (torch.clamp(round_half_up_ste(x / s) + z, 0, (1 << q.bits) - 1) - z) * s


def reference_sym(q: SymQuant, x: torch.Tensor, relu: bool) -> torch.Tensor:
    x = F.relu(x) if relu else x
    s, _ = q.qparams()
    r = round_ste(x / s) if q.rounding == "half_even" else round_half_up_ste(x / s)
    return torch.clamp(r, -q.qmax(), q.qmax()) * s


def reference_weight(q: WeightQuant, w: torch.Tensor) -> torch.Tensor:
    view = q.scale(w).reshape(-1, *([1] * (w.dim() - 1)))
    return torch.clamp(round_ste(w / view), -q.qmax(), q.qmax()) * view


def value_and_grad(fn, x: torch.Tensor, upstream: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    (grad,) = torch.autograd.grad(y, x, upstream)
    return y.detach(), grad


def assert_bitwise(a: torch.Tensor, b: torch.Tensor, signed_zero: bool = True) -> None:
    assert torch.equal(a, b), (a - b).abs().max()
    if signed_zero:
        assert torch.equal(a.signbit(), b.signbit())


def edge_values(scale: float, lo: int, hi: int) -> torch.Tensor:
    """Grid points, ties between them, the clamp edges and just beyond, zero and near zero."""
    ticks = torch.arange(lo - 3, hi + 4, dtype=torch.float32)
    near = torch.tensor([1e-30, -1e-30, 1e-7, -1e-7, 0.0, -0.0, 0.5 - 2.0 ** -25, -0.5 + 2.0 ** -25])
    return torch.cat([ticks, ticks + 0.5, ticks - 0.5, ticks + 0.49999997, ticks + 1e-3, near]) * scale


SCALES = [0.25, 0.0371, 1.3e-3]  # a power of two (exact ties) and two that are not


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("bits, lo_seen", [(8, -1.0), (4, -0.2), (2, 0.0)])
def test_activation_quantizer_matches_composite_at_edges(scale, relu, bits, lo_seen):
    q = ActQuant(bits)
    q.lo.fill_(lo_seen)
    q.hi.fill_(lo_seen + scale * ((1 << bits) - 1))
    q.steps.fill_(1)
    q.eval()
    s, z = q.qparams()
    x = edge_values(float(s), -z, (1 << bits) - 1 - z)
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(bits))
    got = value_and_grad(lambda v: q(v, relu=relu).value, x, upstream)
    want = value_and_grad(lambda v: reference_act(q, v, relu), x, upstream)
    assert_bitwise(got[0], want[0], signed_zero=False)
    assert_bitwise(got[1], want[1])
    assert (got[1] == 0).any() and (got[1] != 0).any()  # both sides of the clamp were exercised


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("rounding", ["half_even", "half_up"])
@pytest.mark.parametrize("relu", [False, True])
def test_symmetric_quantizer_matches_composite_at_edges(scale, rounding, relu):
    q = SymQuant(6, rounding=rounding)
    q.absmax.fill_(scale * q.qmax())
    q.steps.fill_(1)
    q.eval()
    s, _ = q.qparams()
    x = edge_values(float(s), -q.qmax(), q.qmax())
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    got = value_and_grad(lambda v: q(v, relu=relu).value, x, upstream)
    want = value_and_grad(lambda v: reference_sym(q, v, relu), x, upstream)
    assert_bitwise(got[0], want[0], signed_zero=False)
    assert_bitwise(got[1], want[1])


def test_weight_quantizer_matches_composite_with_ties_and_a_zero_channel():
    q = WeightQuant(4)
    w = torch.tensor([[0.7, -0.35, 0.05, 0.15, -0.25],      # s = 0.1: ties at 0.05, 0.15, 0.25, 0.35
                      [0.0, 0.0, 0.0, 0.0, 0.0],            # borrows the largest scale
                      [1e-3, -3e-4, 2e-4, 5e-4, -1e-3]])
    upstream = torch.randn(w.shape, generator=torch.Generator().manual_seed(2))
    got = value_and_grad(lambda v: q(v).value, w, upstream)
    want = value_and_grad(lambda v: reference_weight(q, v), w, upstream)
    assert_bitwise(got[0], want[0], signed_zero=False)
    assert_bitwise(got[1], want[1])


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(-300, 300, allow_nan=False, width=32), min_size=1, max_size=64),
       bits=st.integers(2, 8), relu=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_quantizers_match_composite_in_training(values, bits, relu, seed):
    """Train mode (statistics from this very batch, so values sit on the clamp edges)."""
    x = torch.tensor(values)
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    for make, reference in ((lambda: ActQuant(bits), reference_act), (lambda: SymQuant(bits), reference_sym)):
        fused, ref = make().train(), make().train()
        got = value_and_grad(lambda v: fused(v, relu=relu).value, x, upstream)
        ref.observe(F.relu(x) if relu else x)
        want = value_and_grad(lambda v: reference(ref, v, relu), x, upstream)
        assert_bitwise(got[0], want[0], signed_zero=False)
        assert_bitwise(got[1], want[1])
        for key, value in ref.state_dict().items():  # the statistics of relu(x), taken without it
            assert torch.equal(fused.state_dict()[key], value), key
    w = x.reshape(1, -1)
    got = value_and_grad(lambda v: WeightQuant(bits)(v).value, w, upstream.reshape(1, -1))
    want = value_and_grad(lambda v: reference_weight(WeightQuant(bits), v), w, upstream.reshape(1, -1))
    assert_bitwise(got[0], want[0], signed_zero=False)
    assert_bitwise(got[1], want[1])


@pytest.mark.parametrize("shape", [(16, 5, 6, 6), (32, 7), (1, 3), (9, 4, 1, 1)])
def test_batch_statistics_match_mean_and_var_with_their_gradients(shape):
    g = torch.Generator().manual_seed(len(shape))
    y = torch.randn(shape, generator=g) * 2 + 3
    dims = [d for d in range(y.dim()) if d != 1]
    up_mean, up_var = torch.randn(shape[1], generator=g), torch.randn(shape[1], generator=g)

    y1 = y.clone().requires_grad_(True)
    mean, var, var_unbiased = batch_statistics(y1)
    (grad,) = torch.autograd.grad([mean, var], y1, [up_mean, up_var])

    y2 = y.clone().requires_grad_(True)
    ref_mean, ref_var = y2.mean(dims), y2.var(dims, unbiased=False)
    (ref_grad,) = torch.autograd.grad([ref_mean, ref_var], y2, [up_mean, up_var])
    assert_bitwise(mean, ref_mean)
    assert_bitwise(var, ref_var)
    assert_bitwise(var_unbiased, y.var(dims, unbiased=True) if y.numel() > y.shape[1] else ref_var)
    assert_bitwise(grad, ref_grad)
    assert not var_unbiased.requires_grad


def reference_mac_forward(layer, x: QuantTensor) -> torch.Tensor:
    """The composite training forward of a bias-free MAC layer with BN and ReLU (the
    formulation before fusion): batch statistics by ``mean``/``var`` of ``conv(x, w) + 0``,
    fold, quantize the weight, requantized bias, conv, ReLU, activation quantizer."""
    mac = (lambda v, w: F.conv2d(v, w, None, layer.stride, layer.padding, 1, layer.groups)) \
        if isinstance(layer, QuantConv2d) else F.linear
    w = layer.masked_weight()
    y = mac(x.value, w) + torch.zeros_like(layer.channel_mask).reshape(1, -1, *([1] * (w.dim() - 2)))
    dims = [d for d in range(y.dim()) if d != 1]
    mean, var = y.mean(dims), y.var(dims, unbiased=False)
    layer._update_running(mean, y.var(dims, unbiased=True))
    bn = layer.bn
    g = bn.weight / torch.sqrt(var + bn.eps)
    w = w * g.reshape(-1, *([1] * (w.dim() - 1)))
    b = ((0 - mean) * g + bn.bias) * layer.channel_mask
    wq = reference_weight(layer.weight_quant, w)
    b = quant_bias(b, x.scale, layer.weight_quant.scale(w))[1]
    y = F.relu(mac(x.value, wq) + b.reshape(1, -1, *([1] * (w.dim() - 2))))
    layer.out_quant.observe(y)
    return reference_act(layer.out_quant, y, relu=False)


@pytest.mark.parametrize("make, shape", [
    (lambda: QuantConv2d(3, 6, 3, padding=1, bias=False, bn=True, relu=True, weight_bits=4), (8, 3, 7, 7)),
    (lambda: QuantConv2d(4, 4, 3, stride=2, padding=1, groups=4, bias=False, bn=True, relu=True), (8, 4, 6, 6)),
    (lambda: QuantLinear(10, 5, bias=False, bn=True, relu=True, weight_bits=3), (16, 10)),
])
def test_mac_layer_training_step_matches_composite(make, shape):
    torch.manual_seed(0)
    layer = make().train()
    layer.channel_mask[1] = 0
    ref = copy.deepcopy(layer)
    x = torch.rand(shape)
    xq = QuantTensor(torch.round(x * 100) / 100, torch.tensor(0.01), 0, 8, False)
    upstream = torch.randn(layer(xq).value.shape)
    layer.load_state_dict(ref.state_dict())  # undo the statistics of the shape probe

    out = layer(xq).value
    grads = torch.autograd.grad(out, list(layer.parameters()), upstream)
    ref_out = reference_mac_forward(ref, xq)
    ref_grads = torch.autograd.grad(ref_out, list(ref.parameters()), upstream)
    assert_bitwise(out, ref_out, signed_zero=False)
    for got, want in zip(grads, ref_grads):
        assert_bitwise(got, want)
    for key, value in ref.state_dict().items():  # running BN statistics and activation range
        assert torch.equal(layer.state_dict()[key], value), key
