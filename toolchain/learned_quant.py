"""Learnable quantizers: trained step size ``d``, range ``q_m`` and (weights) exponent ``t``.

Wang, Lu and Blankevoort, "Differentiable Joint Pruning and Quantization for Hardware
Efficiency" (DJPQ), section 3.1. With ``q_s = 0`` (below) their equations read:

* mapping (eq. 1) and quantization (eq. 2): ``x_q = sign(x) d round(min(|x|, q_m)^t / d)``;
  activations use ``t = 1`` and, after a ReLU, the unsigned grid ``x_q = d round(clamp(x, 0, q_m) / d)``;
* bit width (eq. 3, weights): ``b = log2(ceil(n) + 1) + 1`` with ``n = q_m^t / d`` the number of
  steps to the range's end; (eq. 4, activations) ``b = log2(ceil(n) + 1)`` — eq. 4 prints
  ``log2 ceil(n)``, which forgets the level 0 (``n = 256`` would need 9 bits, not 8);
* straight-through gradients (eqs. 5–7) with respect to ``d``, ``q_m`` and ``t``; for ``x`` the
  quantizer is the identity inside ``[-q_m, q_m]`` and blocks the gradient outside (the paper
  gives no rule for ``x``; this is Bengio et al.'s straight-through estimator it cites);
* power-of-two bits (Algorithm 2, ``restricted``): ``b' = 2^floor(log2 b)``, here kept in
  {2, 4, 8}, and the step ``d' = q_m^t / (2^(b'-1) - 1)`` (weights) or ``q_m / (2^b' - 1)``
  (activations; the paper's ``2^b'`` levels would not fit ``b'`` unsigned bits). The forward uses
  ``d'``, the backward is unchanged: the gradient of ``d'`` goes to the latent ``d``, which is
  never overwritten (else a width could only ever fall).

**Where it lands on the integer contract** (docs/integer-contract.md): the weight integers are
``sign(x) round(min(|x|, q_m)^t / d)`` — the very values the forward multiplies by ``d`` — and the
exported per-output-channel weight scale is ``d`` for every channel (a per-layer scale is a
special case of per-channel symmetric weights); the nonlinear mapping ``|x|^t`` only decides
which integer each weight gets, the grid itself is uniform. Activations land on an unsigned grid
with scale ``d``, zero point 0 and the real clamp ``[0, q_m]``, which conversion fuses into the
requantization as the integer clamp ``[0, Q(q_m)]`` (contract, "Clamp"). The integer bits are
those of the largest level the quantizer can emit, ``L = round(q_m^t / d)``: ``bit_length(L) + 1``
for weights, ``bit_length(L)`` for activations; ``d`` is kept (straight through) between the 8-bit
and the 2-bit step of the range, so the width always lies in the contract's 2..8. That is never more than
``ceil`` of eq. 3/4, and less when ``n``'s fraction is below one half. Eqs. 3/4 themselves, with
a straight-through ``ceil``, are :meth:`soft_bits` — what a loss on bit operations differentiates.

``q_s`` (the paper's dead zone, "fixed to a small value") is 0: the ReLU grid then starts at
real zero, so its zero point is the integer 0, and a pruned (masked) weight stays the integer 0.
Eq. 7's ``log(|x| - q_s)`` is taken as 0 where ``|x| = 0`` (there the mapped value is 0 too).

A quantizer is **calibrated** once, from data: weights from the weights they first see
(``q_m = max|w|``, ``t = 1``), activations from their first training batch (``q_m = max x``),
or from a min/max quantizer's statistics (:meth:`LearnedActQuant.calibrate_from`); then
``d = q_m^t / levels(bits)`` for the declared width. Before that, ``bits`` is the declared width.

>>> q = LearnedWeightQuant(bits=4)
>>> out = q(torch.tensor([[0.7, -0.35], [0.0, 0.1]]))        # calibrates: q_m = 0.7, d = 0.1
>>> out.int_repr().tolist(), q.bits
([[7, -4], [0, 1]], 4)
>>> q.bits = 3; q(torch.tensor([[0.7, -0.35]])).int_repr().tolist()   # in place: d = 0.7 / 3
[[3, -2]]
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from exporters.errors import ModelError
from exporters.grid import MAX_BITS, MIN_BITS
from toolchain.quant import MIN_RANGE, CalibrationError, QuantTensor, _Quantizer

FLOOR = 1e-8                  #: q_m kept at least this (straight-through: the gradient still flows)
T_RANGE = (0.05, 20.0)        #: the exponent t kept inside (eq. 1 needs t > 0)
POWER_OF_TWO_BITS = (2, 4, 8)  #: Algorithm 2's widths inside the contract's 2..8


def _kept_in(p: torch.Tensor, lo: float, hi: float = math.inf) -> torch.Tensor:
    """``clamp(p, lo, hi)`` in value, the identity in gradient (a parameter may leave the range
    for a while without losing its gradient)."""
    return p + (p.clamp(lo, hi) - p).detach()


def ceil_ste(x: torch.Tensor) -> torch.Tensor:
    """``ceil(x)`` with a straight-through gradient (eqs. 3–4 are differentiated this way)."""
    return x + (torch.ceil(x) - x).detach()


def power_of_two_bits(bits: float) -> int:
    """Algorithm 2: ``2^floor(log2 b)``, kept in {2, 4, 8}.

    >>> [power_of_two_bits(b) for b in (1.5, 3.9, 4.0, 7.99, 8.0, 11.0)]
    [2, 2, 4, 4, 8, 8]
    """
    b = 2 ** math.floor(math.log2(max(bits, 1.0)))
    return min(max(b, POWER_OF_TWO_BITS[0]), POWER_OF_TWO_BITS[-1])


class _LearnedWeightFn(torch.autograd.Function):
    """``sign(x) d round(min(|x|, q_m)^t / d)`` (eq. 2) and the gradients of eqs. 5–7."""

    @staticmethod
    def forward(ctx, x, d, q_m, t):
        outside = x.abs() > q_m
        m = torch.where(outside, q_m, x.abs())
        p = m.pow(t)
        ratio = p / d
        k = torch.round(ratio)
        sign = torch.sign(x)
        ctx.save_for_backward(sign, m, p, ratio, k, outside, q_m, t)
        return sign * k * d

    @staticmethod
    def backward(ctx, grad):
        sign, m, p, ratio, k, outside, q_m, t = ctx.saved_tensors
        gs = grad * sign
        zero = torch.zeros_like(grad)
        grad_x = torch.where(outside, zero, grad)                                          # straight through
        grad_d = (gs * (k - ratio)).sum()                                                  # eq. 5
        grad_q = (gs * torch.where(outside, t * q_m.pow(t - 1), zero)).sum()               # eq. 6
        grad_t = (gs * p * torch.where(m > 0, m, torch.ones_like(m)).log()).sum()          # eq. 7
        return grad_x, grad_d, grad_q, grad_t


class _LearnedActFn(torch.autograd.Function):
    """``d floor(clamp(x, 0, q_m) / d + 1/2)`` (half up, the contract's rounding) and eqs. 5–6
    with ``t = 1``."""

    @staticmethod
    def forward(ctx, x, d, q_m):
        m = torch.clamp(x, min=torch.zeros_like(q_m), max=q_m)
        ratio = m / d
        k = torch.floor(ratio + 0.5)
        ctx.save_for_backward(x, ratio, k, q_m)
        return k * d

    @staticmethod
    def backward(ctx, grad):
        x, ratio, k, q_m = ctx.saved_tensors
        outside = x > q_m
        zero = torch.zeros_like(grad)
        grad_x = torch.where(~outside & (x > 0), grad, zero)                               # straight through
        grad_d = (grad * (k - ratio)).sum()                                                # eq. 5 (x < 0: 0)
        grad_q = torch.where(outside, grad, zero).sum()                                    # eq. 6, t = 1
        return grad_x, grad_d, grad_q


class _LearnedQuant(_Quantizer):
    """What the learned weight and activation quantizers share: parameters, widths, calibration."""

    kind = "learned"
    signed: ClassVar[bool]

    def __init__(self, bits: int = 8) -> None:
        super().__init__(bits)
        self.d = nn.Parameter(torch.tensor(1.0 / self.levels(bits)))
        self.q_m = nn.Parameter(torch.tensor(1.0))
        self.register_buffer("calibrated", torch.tensor(False))
        self.register_buffer("restricted", torch.tensor(False))  # Algorithm 2 (power-of-two bits)

    # -- widths ------------------------------------------------------------------------
    def levels(self, bits: int) -> int:
        """The largest integer of a ``bits``-wide grid of this kind."""
        raise NotImplementedError

    def exponent(self) -> torch.Tensor:
        return torch.ones(())

    def span(self) -> torch.Tensor:
        """``(q_m - q_s)^t`` with ``q_s = 0``: the mapped range's end."""
        return _kept_in(self.q_m, FLOOR).pow(self.exponent())

    def continuous_bits(self) -> torch.Tensor:
        """Eq. 3 (weights) / eq. 4 with level 0 counted (activations), a straight-through ceil."""
        raise NotImplementedError

    def soft_bits(self) -> torch.Tensor:
        """The differentiable width a loss on bit operations uses: :meth:`continuous_bits`, or
        Algorithm 2's power of two in value with the unchanged gradient when ``restricted``; kept
        in 2..8 (outside, the grid does not follow, so neither does the gradient)."""
        b = self.continuous_bits()
        if bool(self.restricted):
            b = b + (power_of_two_bits(float(b.detach())) - b).detach()
        return b.clamp(MIN_BITS, MAX_BITS)

    def latent_step(self) -> torch.Tensor:
        """``d`` kept between the 8-bit and the 2-bit step of the current range (straight through),
        so eqs. 3–4 always give a width in the contract's 2..8: a finer step would only saturate at
        the 8-bit grid's end, a coarser one would leave no level but 0."""
        span = self.span().detach()
        return _kept_in(self.d, float(span) / self.levels(MAX_BITS), float(span) / self.levels(MIN_BITS))

    def step(self) -> torch.Tensor:
        """The step the forward uses: :meth:`latent_step`, or Algorithm 2's ``d'`` (gradient to ``d``)
        when restricted."""
        d = self.latent_step()
        if bool(self.restricted):
            target = self.span() / self.levels(power_of_two_bits(float(self.continuous_bits().detach())))
            d = d + (target - d).detach()
        return d

    def max_level(self, step: torch.Tensor) -> int:
        """The largest level this quantizer emits, ``round(q_m^t / d)``."""
        raise NotImplementedError

    def _grid_bits(self, step: torch.Tensor) -> int:
        """The width of the largest level; 2..8 by :meth:`latent_step` (the bounds guard float ties)."""
        needed = self.max_level(step).bit_length() + (1 if self.signed else 0)
        return min(max(needed, MIN_BITS), MAX_BITS)

    @property
    def bits(self) -> int:
        """The integer grid's width (the declared width until calibrated)."""
        if not self.is_calibrated:
            return self._bits
        with torch.no_grad():
            return self._grid_bits(self.step())

    @bits.setter
    def bits(self, bits: int) -> None:
        """Declare ``bits``; once calibrated, ``d = q_m^t / levels(bits)`` (Algorithm 2's last line),
        so the grid has exactly that width."""
        _Quantizer.bits.fset(self, bits)
        if "restricted" in self._buffers and bool(self.restricted) and bits not in POWER_OF_TWO_BITS:
            raise ModelError(f"{type(self).__name__}: bit width {bits} is not one of {POWER_OF_TWO_BITS} "
                             "(power-of-two restriction)")
        if self.is_calibrated:
            with torch.no_grad():
                self.d.copy_(self.span() / self.levels(bits))

    @property
    def is_calibrated(self) -> bool:
        return "calibrated" in self._buffers and bool(self._buffers["calibrated"])

    def restrict(self, on: bool = True) -> None:
        """Algorithm 2 on (bits in {2, 4, 8}) or off; a checkpointed switch like ``enabled``."""
        self.restricted.fill_(bool(on))

    def _set_range(self, q_m: float, t: float = 1.0) -> None:
        with torch.no_grad():
            self.q_m.fill_(max(float(q_m), MIN_RANGE))
            if isinstance(getattr(self, "t", None), nn.Parameter):
                self.t.fill_(t)
            self.d.copy_(self.span() / self.levels(self._bits))
            self.calibrated.fill_(True)

    def extra_repr(self) -> str:
        d, q_m, t = (float(v.detach()) for v in (self.d, self.q_m, self.exponent()))
        return (f"bits={self.bits}, d={d:.4g}, q_m={q_m:.4g}, t={t:.3g}"
                + (", restricted" if bool(self.restricted) else ""))


class LearnedWeightQuant(_LearnedQuant):
    """Learned per-layer weight quantizer on the symmetric narrow grid (DJPQ eqs. 1–3, 5–7)."""

    signed = True

    def __init__(self, bits: int = 8) -> None:
        super().__init__(bits)
        self.t = nn.Parameter(torch.tensor(1.0))

    def levels(self, bits: int) -> int:
        return (1 << (bits - 1)) - 1

    def exponent(self) -> torch.Tensor:
        return _kept_in(self.t, *T_RANGE)

    def continuous_bits(self) -> torch.Tensor:
        return torch.log2(ceil_ste(self.span() / self.latent_step()) + 1) + 1

    def max_level(self, step: torch.Tensor) -> int:
        return int(torch.round(self.span().detach() / step.detach()))

    def calibrate(self, w: torch.Tensor) -> None:
        """``q_m = max|w|``, ``t = 1``, ``d = q_m / (2^(b-1) - 1)``: the min/max grid of the layer."""
        self._set_range(float(w.detach().abs().max()) if w.numel() else 1.0)

    def forward(self, w: torch.Tensor) -> QuantTensor:
        if not self.is_calibrated:
            self.calibrate(w)
        if not bool(self.enabled):
            return QuantTensor(w, None, 0, self.bits, True)
        d = self.step()
        value = _LearnedWeightFn.apply(w, d, _kept_in(self.q_m, FLOOR), self.exponent())
        return QuantTensor(value, d.detach().expand(w.shape[0]).clone(), 0, self._grid_bits(d.detach()), True)


class LearnedActQuant(_LearnedQuant):
    """Learned per-tensor activation quantizer after a ReLU: unsigned grid, zero point 0, real clamp
    ``[0, q_m]`` (DJPQ eqs. 1–2 and 4–6 with ``t = 1``)."""

    signed = False

    def levels(self, bits: int) -> int:
        return (1 << bits) - 1

    def continuous_bits(self) -> torch.Tensor:
        return torch.log2(ceil_ste(self.span() / self.latent_step()) + 1)

    def max_level(self, step: torch.Tensor) -> int:
        """``floor(q_m / d + 1/2)`` in float32: the contract's ``Q(q_m)`` on this grid."""
        return int(torch.floor(self.q_m.detach().clamp(min=FLOOR) / step.detach() + 0.5))

    def calibrate(self, x: torch.Tensor) -> None:
        """``q_m`` = the largest value of ``x`` after the ReLU, ``d = q_m / (2^b - 1)``."""
        self._set_range(float(x.detach().max().clamp(min=0.0)))

    def calibrate_from(self, quantizer) -> None:
        """``q_m`` from an :class:`~toolchain.quant.ActQuant`'s running maximum, if it has one."""
        if int(quantizer.steps) > 0:
            self._set_range(float(quantizer.hi))

    def real_clamp(self) -> tuple[float | None, float | None]:
        return None, float(self.q_m.detach().clamp(min=FLOOR))

    def forward(self, x: torch.Tensor, relu: bool = False) -> QuantTensor:
        """Quantize ``relu(x)`` (the grid starts at real zero, so the ReLU is part of it)."""
        if self.training and not self.is_calibrated:
            self.calibrate(x)
        if not bool(self.enabled):
            return QuantTensor(torch.relu(x), None, 0, self.bits, False)
        if not self.is_calibrated:
            raise CalibrationError("learned activation quantizer is not calibrated: run the model in train mode "
                                   "on data first")
        d = self.step()
        value = _LearnedActFn.apply(x, d, _kept_in(self.q_m, FLOOR))
        return QuantTensor(value, d.detach().to(torch.float32), 0, self._grid_bits(d.detach()), False)


__all__ = ["LearnedActQuant", "LearnedWeightQuant", "POWER_OF_TWO_BITS", "ceil_ste", "power_of_two_bits"]
