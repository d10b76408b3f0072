"""Quantizers: small parts that return value, scale, zero point and bit width together.

Everything here follows the integer contract (``docs/integer-contract.md``) and
Zhang, Colbert and Das 2022, section 4.2:

* :class:`WeightQuant` — symmetric, narrow, per output channel:
  ``s[c] = max|w[c]| / (2^(b-1) - 1)``, integers in ``[-(2^(b-1)-1), 2^(b-1)-1]``.
  The scale is taken from the **current** weights (Zhang et al. Alg. 3 averages the maximum
  over steps; with the current maximum no weight ever saturates, and the scale is a pure
  function of the weights, so conversion cannot disagree with training). A channel whose
  weights are all zero borrows the largest scale of its layer (its integers are 0 either
  way; the scale only sets the precision of its bias). Weights round half to even.
* :class:`ActQuant` — asymmetric, unsigned, per tensor, from moving-average min/max
  (Zhang et al. Alg. 2). ``momentum=None`` is Alg. 2 exactly (the running mean over all
  steps); a float ``m`` is an exponential average ``(1-m) * old + m * new`` (the first
  step takes the batch value). The range is widened to contain 0 so the zero point is an
  integer inside the grid and real zero is exact; ``s = (hi - lo) / (2^b - 1)`` (Alg. 2
  divides by ``2^b``; ``2^b - 1`` maps the range onto the grid end to end),
  ``z = round(-lo / s)``. Values round **half up**, as the contract's requantization does.
* :class:`SymQuant` — symmetric narrow signed per-tensor (network input and output), from
  the moving average of ``max|x|``. The scale is rounded to float32, the type the ONNX
  graph stores it in. The input rounds half to even (ONNX QuantizeLinear), the output half up.

``power_of_two=True`` (every quantizer; the hls4ml backend's exact mode): each scale above
is rounded **up** to the next power of two, ``2^ceil(log2 s)`` (up, so no value that fitted
the grid saturates), and :class:`ActQuant`'s zero point is 0 — its grid is ``[0, 2^b - 1]``
times ``s``, so negative values clamp to 0 (after a ReLU there are none). Then every
requantization multiplier ``s_x s_w / s_y`` is a power of two, which is what
``hls_templates.hls4ml_bridge.check_hls4ml_exact`` requires.

Statistics must be finite: ``observe`` refuses NaN or infinity (:class:`CalibrationError`)
before it touches a running statistic, so no grid is ever derived from one.

Gradients use the straight-through estimator: rounding passes the gradient unchanged,
clamping blocks it outside the grid. Scales and zero points are statistics, not learned.
Every quantizer's forward is one call of :func:`fake_quantize`, a fused autograd function
that computes the same floats and the same gradient as the composite formulation
``clamp(round_ste(x / s), lo, hi) * s`` in fewer passes over the tensor (``docs/toolchain.md``,
"QAT speed").

>>> q = WeightQuant(bits=4)(torch.tensor([[0.7, -0.35], [0.0, 0.0]]))
>>> q.int_repr().tolist(), q.scale.tolist()
([[7, -4], [0, 0]], [0.10000000149011612, 0.10000000149011612])
>>> round_half_up_ste(torch.tensor([-2.5, -1.5, 0.5, 1.5])).tolist()
[-2.0, -1.0, 1.0, 2.0]
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from exporters.errors import FoldlineError
from exporters.grid import Grid, check_bits

MIN_RANGE = 1e-4  # smallest real range an activation quantizer may cover (keeps S = s_x s_w / s_y sane)
ROUNDINGS = ("half_even", "half_up")


class CalibrationError(FoldlineError):
    """A quantizer asked for its scale before it ever saw data."""


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round half to even (``torch.round``) with a straight-through gradient.

    With :func:`round_half_up_ste`, the composite reference formulation that the fused
    :func:`fake_quantize` reproduces bitwise (``tests/test_tc_fused_quant.py``)."""
    return x + (torch.round(x) - x).detach()


def round_half_up_ste(x: torch.Tensor) -> torch.Tensor:
    """Round half up (``floor(x + 1/2)``, the contract's rule) with a straight-through gradient."""
    return x + (torch.floor(x + 0.5) - x).detach()


class _FakeQuantize(torch.autograd.Function):
    """``clamp(round(x / s), lo, hi) * s`` in one forward and one backward node.

    Forward: the same float operations as the composite formulation, in place where
    possible, so the values are the same floats (``x + (round(x) - x).detach()`` is exactly
    ``round(x)``: the difference of two floats within a factor of two is exact, Sterbenz;
    checked for every float32 in ``[2^-3, 2^25)``; below, both are 0, above every float is an
    even integer; only a zero may carry the other sign).
    Backward: the gradient autograd derives for the composite, ``where(inside, g * s, 0) / s``
    (the chain's multiply by ``s``, clamp mask and divide by ``s``; ``(g * s) / s`` is not
    always ``g`` in float, so it is kept), with ``inside`` = ``lo <= round(x / s) <= hi``
    (clamp passes its edges) and, with ``relu``, ``x > 0`` (ReLU's gradient). The masks are
    ATen's vectorized ``hardtanh_backward`` / ``threshold_backward`` kernels, which write
    0 outside exactly as ``where`` does but several times faster (they differ only where
    the input is NaN, and then the loss is NaN anyway)."""

    @staticmethod
    def forward(ctx, x, scale, lo, hi, half_up, relu, keep_for_backward):
        rounded = x / scale
        rounded = rounded.add_(0.5).floor_() if half_up else rounded.round_()
        lo = max(lo, 0) if relu else lo
        if keep_for_backward:
            ctx.save_for_backward(x if relu else None, rounded, scale)
            ctx.bounds = (lo - 0.5, hi + 0.5)  # the integer rounded value is inside iff strictly between
        return rounded.clamp(lo, hi).mul_(scale)

    @staticmethod
    def backward(ctx, grad):
        x, rounded, scale = ctx.saved_tensors
        grad = grad * scale  # a fresh tensor: the masks below write into it
        if x is not None:
            torch.ops.aten.threshold_backward.grad_input(grad, x, 0.0, grad_input=grad)
        torch.ops.aten.hardtanh_backward.grad_input(grad, rounded, *ctx.bounds, grad_input=grad)
        return grad.div_(scale), None, None, None, None, None, None


def fake_quantize(x: torch.Tensor, scale: torch.Tensor, lo: int, hi: int, rounding: str = "half_even",
                  relu: bool = False) -> torch.Tensor:
    """``clamp(round(x / scale), lo, hi) * scale`` with the straight-through gradient (fused).

    ``scale`` (0-d, or shaped to broadcast per channel) is a statistic: no gradient flows to
    it. ``rounding`` is ``"half_even"`` (``torch.round``) or ``"half_up"`` (``floor(v + 1/2)``).
    ``relu=True`` quantizes ``relu(x)`` without materializing it: the lower bound becomes
    ``max(lo, 0)`` and the gradient is also blocked where ``x <= 0``. Values and gradients
    are the floats of ``clamp(round_ste(relu(x) / scale), lo, hi) * scale`` (a zero value
    may carry the other sign).

    >>> x = torch.tensor([-1.0, 0.25, 0.3, 9.0], requires_grad=True)
    >>> y = fake_quantize(x, torch.tensor(0.5), -2, 3, "half_up")
    >>> y.tolist()
    [-1.0, 0.5, 0.5, 1.5]
    >>> y.sum().backward(); x.grad.tolist()
    [1.0, 1.0, 1.0, 0.0]
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    keep = torch.is_grad_enabled() and x.requires_grad
    return _FakeQuantize.apply(x, scale.detach(), lo, hi, rounding == "half_up", relu, keep)


def power_of_two_ceil(s: torch.Tensor) -> torch.Tensor:
    """``2^ceil(log2 s)`` elementwise for ``s > 0``, exactly (frexp: ``s = m 2^e``, ``m`` in [0.5, 1)).

    >>> power_of_two_ceil(torch.tensor([0.25, 0.3, 5.0])).tolist()
    [0.25, 0.5, 8.0]
    """
    mantissa, exponent = torch.frexp(s)
    exponent = exponent - (mantissa == 0.5).to(exponent.dtype)  # s is already 2^(e-1)
    return torch.ldexp(torch.ones_like(s), exponent.to(s.dtype))


def _finite_statistic(value: torch.Tensor, what: str) -> torch.Tensor:
    if not bool(torch.isfinite(value).all()):
        raise CalibrationError(f"{what} of the observed values is {float(value)}: NaN or infinity reached the "
                               "quantizer, so its grid would be undefined")
    return value


@dataclass
class QuantTensor:
    """A tensor and its quantization: ``value = scale * (q - zero_point)``.

    ``scale`` is 0-d for activations, ``(C,)`` for weights (per output channel);
    ``scale is None`` means quantization is disabled (``value`` is a plain float tensor).
    ``channel_mask`` (activations only) marks alive channels ``(C,)`` — or alive features
    ``(F,)`` after a flatten; ``None`` means all alive.
    """

    value: torch.Tensor
    scale: torch.Tensor | None
    zero_point: int
    bits: int
    signed: bool
    channel_mask: torch.Tensor | None = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    def _scale_view(self) -> torch.Tensor:
        s = self.scale.detach()
        return s.reshape(-1, *([1] * (self.value.dim() - 1))) if s.dim() else s

    def int_repr(self) -> torch.Tensor:
        """The integers ``q`` (int64). Exact: ``value`` was computed as ``(q - z) * scale``."""
        if not self.quantized:
            raise CalibrationError("this tensor is not quantized (quantization is disabled)")
        return torch.round(self.value.detach() / self._scale_view()).to(torch.int64) + self.zero_point

    def grid(self) -> Grid:
        """The activation grid of this tensor (scale rounded through float32 exactly)."""
        if not self.quantized or self.scale.dim():
            raise CalibrationError("only a quantized per-tensor activation has a grid")
        return Grid(float(self.scale), int(self.zero_point), int(self.bits), bool(self.signed))

    def with_value(self, value: torch.Tensor, channel_mask=None) -> "QuantTensor":
        return replace(self, value=value, channel_mask=channel_mask)


class _Quantizer(nn.Module):
    """Shared bit-width part, the power-of-two mode, and the ``enabled`` switch (a buffer,
    so it is checkpointed; ``power_of_two`` is architecture and travels in the layer config).

    ``bits`` is the quantizer's own part (Brevitas' bit-width part): the layer that holds the
    quantizer reads it (:class:`BitsOf`), and :func:`toolchain.nn.set_bits` changes it in place;
    every grid, clamp and exported width follows at the next forward. ``kind`` names the
    quantizer family in a layer's config (``"minmax"`` here, ``"learned"`` for
    :mod:`toolchain.learned_quant`)."""

    kind = "minmax"

    def __init__(self, bits: int, power_of_two: bool = False) -> None:
        super().__init__()
        self.bits = bits
        self.power_of_two = bool(power_of_two)
        self.register_buffer("enabled", torch.tensor(True))

    @property
    def bits(self) -> int:
        return self._bits

    @bits.setter
    def bits(self, bits: int) -> None:
        check_bits(bits, type(self).__name__)
        self._bits = bits

    def real_clamp(self) -> tuple[float | None, float | None] | None:
        """A real clamp ``[a, b]`` the quantizer applies before its grid (None: none; conversion
        narrows the integer clamp to ``[Q(a), Q(b)]``, contract "Clamp")."""
        return None

    def _snap(self, s: torch.Tensor) -> torch.Tensor:
        """The scale as used: rounded up to a power of two in power-of-two mode."""
        return power_of_two_ceil(s) if self.power_of_two else s

    def range_problem(self) -> str | None:
        """Why the calibrated range is degenerate (a phrase), or None. Weights: never."""
        return None

    def clip_problem(self) -> str | None:
        """Which calibrated values the grid cannot hold by construction (a phrase), or None.

        Matters when the grid must reproduce a float function (post-training quantization);
        quantization-aware training already saw the clamp."""
        return None

    def extra_repr(self) -> str:
        return f"bits={self.bits}" + (", power_of_two=True" if self.power_of_two else "")


class BitsOf:
    """A layer attribute that *is* the bit width of one of its quantizers (``weight_bits =
    BitsOf("weight_quant")``): reading and writing it reads and writes the quantizer's part, so
    the layer's config, its forward and the exported grid can never disagree.

    >>> class Layer(nn.Module):
    ...     act_bits = BitsOf("out_quant")
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.out_quant = ActQuant(8)
    >>> layer = Layer(); layer.act_bits = 4; layer.out_quant.bits
    4
    """

    def __init__(self, quantizer: str) -> None:
        self.quantizer = quantizer

    def __get__(self, layer, owner=None):
        return self if layer is None else getattr(layer, self.quantizer).bits

    def __set__(self, layer, bits: int) -> None:
        getattr(layer, self.quantizer).bits = bits


def _running_update(buf: torch.Tensor, steps: torch.Tensor, new: torch.Tensor, momentum: float | None) -> None:
    """Zhang et al. Alg. 2 line 1-2 (``momentum=None``) or an exponential moving average."""
    new = new.detach().to(buf.dtype)
    t = int(steps)
    if t == 0:
        buf.copy_(new)
    elif momentum is None:
        buf.copy_((buf * t + new) / (t + 1))
    else:
        buf.copy_((1 - momentum) * buf + momentum * new)


class WeightQuant(_Quantizer):
    """Symmetric narrow per-output-channel weight quantizer (current max|w| per channel)."""

    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    def scale(self, w: torch.Tensor) -> torch.Tensor:
        absmax = w.detach().abs().reshape(w.shape[0], -1).amax(dim=1)
        # A channel whose largest |w| would give a subnormal (or zero) scale counts as all zero:
        # its integers are 0 either way, and a scale must stay a positive normal float.
        usable = absmax >= torch.finfo(absmax.dtype).tiny * self.qmax()
        absmax = torch.where(usable, absmax, torch.zeros_like(absmax))
        top = absmax.max() if absmax.numel() else absmax.new_tensor(0.0)
        fallback = torch.where(top > 0, top, torch.ones_like(top))
        return self._snap(torch.where(absmax > 0, absmax, fallback) / self.qmax())

    def forward(self, w: torch.Tensor) -> QuantTensor:
        s = self.scale(w)
        view = s.reshape(-1, *([1] * (w.dim() - 1)))
        return QuantTensor(fake_quantize(w, view, -self.qmax(), self.qmax()), s, 0, self.bits, True)


class ActQuant(_Quantizer):
    """Asymmetric unsigned per-tensor activation quantizer with moving-average min/max."""

    def __init__(self, bits: int = 8, momentum: float | None = 0.1, power_of_two: bool = False) -> None:
        super().__init__(bits, power_of_two)
        self.momentum = momentum
        self.register_buffer("lo", torch.tensor(0.0))
        self.register_buffer("hi", torch.tensor(0.0))
        self.register_buffer("steps", torch.tensor(0, dtype=torch.int64))

    def observe(self, x: torch.Tensor, relu: bool = False) -> None:
        """Update the running min/max with ``x`` (with those of ``relu(x)`` if ``relu``; the
        same values as ``x.min()``, ``x.max()`` of the materialized tensor, though a zero
        extreme may carry the other sign, which no grid sees)."""
        with torch.no_grad():
            lo, hi = torch.aminmax(x)
            if relu:
                lo, hi = lo.clamp(min=0.0), hi.clamp(min=0.0)
            lo, hi = _finite_statistic(lo, "the minimum"), _finite_statistic(hi, "the maximum")
            _running_update(self.lo, self.steps, lo, self.momentum)
            _running_update(self.hi, self.steps, hi, self.momentum)
            self.steps += 1

    def qparams(self) -> tuple[torch.Tensor, int]:
        """``(scale, zero_point)`` from the current statistics (0-d float32 tensor, int)."""
        if int(self.steps) == 0:
            raise CalibrationError("activation quantizer has no statistics: run the model in train mode on data first")
        lo = self._lo()
        hi = torch.clamp(self.hi, min=0.0)
        hi = torch.maximum(hi, lo + MIN_RANGE)
        top = (1 << self.bits) - 1
        s = self._snap((hi - lo) / top)
        z = int(torch.clamp(torch.round(-lo / s), 0, top))
        return s, z

    def _lo(self) -> torch.Tensor:
        """The grid's real lower end before widening: <= 0, and exactly 0 in power-of-two mode."""
        return torch.zeros_like(self.lo) if self.power_of_two else torch.clamp(self.lo, max=0.0)

    def range_problem(self) -> str | None:
        if int(self.steps) == 0:
            return None
        lo, hi = torch.clamp(self.lo, max=0.0), torch.clamp(self.hi, min=0.0)
        if float(hi - lo) < MIN_RANGE:
            return (f"calibration range [{float(self.lo):.6g}, {float(self.hi):.6g}] is degenerate "
                    f"(narrower than {MIN_RANGE:g}; the grid was widened to it)")
        return None

    def clip_problem(self) -> str | None:
        if int(self.steps) == 0 or not self.power_of_two or float(-self.lo) <= float(self.qparams()[0]):
            return None
        return (f"the power-of-two grid has zero point 0, so its negative values (calibrated down to "
                f"{float(self.lo):.6g}) clamp to 0")

    def forward(self, x: torch.Tensor, relu: bool = False) -> QuantTensor:
        """Quantize ``x`` (``relu(x)`` if ``relu``: the fused ReLU of the layer before)."""
        if self.training:
            self.observe(x, relu)
        if not bool(self.enabled):
            return QuantTensor(F.relu(x) if relu else x, None, 0, self.bits, False)
        s, z = self.qparams()
        top = (1 << self.bits) - 1
        # (clamp(q + z, 0, top) - z) * s with integer-valued q is clamp(q, -z, top - z) * s, exactly
        return QuantTensor(fake_quantize(x, s, -z, top - z, "half_up", relu), s, z, self.bits, False)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, momentum={self.momentum}"


class SymQuant(_Quantizer):
    """Symmetric narrow signed per-tensor quantizer (network input/output), zero point 0."""

    def __init__(self, bits: int = 8, momentum: float | None = 0.1, rounding: str = "half_up",
                 power_of_two: bool = False) -> None:
        super().__init__(bits, power_of_two)
        if rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
        self.momentum = momentum
        self.rounding = rounding
        self.register_buffer("absmax", torch.tensor(0.0))
        self.register_buffer("steps", torch.tensor(0, dtype=torch.int64))

    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    def observe(self, x: torch.Tensor, relu: bool = False) -> None:
        """Update the running ``max|x|`` with ``x`` (with ``max|relu(x)|`` if ``relu``)."""
        with torch.no_grad():
            absmax = x.max().clamp(min=0.0).abs() if relu else x.abs().max()  # abs: a zero is +0
            absmax = _finite_statistic(absmax, "the largest magnitude")
            _running_update(self.absmax, self.steps, absmax, self.momentum)
            self.steps += 1

    def qparams(self) -> tuple[torch.Tensor, int]:
        if int(self.steps) == 0:
            raise CalibrationError("input/output quantizer has no statistics: run the model in train mode on data first")
        s = torch.clamp(self.absmax, min=MIN_RANGE / 2) / self.qmax()
        return self._snap(s.to(torch.float32)), 0

    def range_problem(self) -> str | None:
        if int(self.steps) == 0 or float(self.absmax) >= MIN_RANGE / 2:
            return None
        a = float(self.absmax)
        return (f"calibration range [-{a:.6g}, {a:.6g}] is degenerate (narrower than {MIN_RANGE:g}; "
                "the grid was widened to it)")

    def forward(self, x: torch.Tensor, relu: bool = False) -> QuantTensor:
        """Quantize ``x`` (``relu(x)`` if ``relu``: the fused ReLU of the layer before)."""
        if self.training:
            self.observe(x, relu)
        if not bool(self.enabled):
            return QuantTensor(F.relu(x) if relu else x, None, 0, self.bits, True)
        s, _ = self.qparams()
        return QuantTensor(fake_quantize(x, s, -self.qmax(), self.qmax(), self.rounding, relu), s, 0, self.bits, True)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, momentum={self.momentum}, rounding={self.rounding}"


INT32_MAX = (1 << 31) - 1


def quant_bias(bias: torch.Tensor, x_scale: torch.Tensor, w_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int32 bias on the grid ``s_x * s_w[c]``: ``(round(b / (s_x s_w)) as int64, its float value)``.

    Computed in float64 (what conversion stores), saturated to int32, rounded half to
    even; the returned value carries a straight-through gradient to ``bias``.
    """
    step = x_scale.detach().double() * w_scale.detach().double()
    q = torch.clamp(torch.round(bias.detach().double() / step), -INT32_MAX, INT32_MAX)
    value = bias + ((q * step).to(bias.dtype) - bias).detach()
    return q.to(torch.int64), value
