"""The hls4ml exact path: an IntegerModel -> an hls4ml project that computes the same integers.

hls4ml computes in ``ap_fixed<W, I>`` real numbers, not in integers with ``(M, n)``
requantizers. The two agree **exactly** when every real number involved is a dyadic
fraction held without loss, and every requantization is "round half up to a power-of-two
grid, then clamp" — which is what an ``ap_fixed`` cast with ``AP_RND`` and ``AP_SAT``
does. That is the case when (checked by :func:`check_hls4ml_exact`, before anything is
converted):

* every activation grid has a power-of-two scale and zero point 0;
* every requantization multiplier ``M[c] / 2^n[c]`` is a power of two ``2^k[c]``
  (i.e. ``M[c]`` is a power of two), and for average pooling and residual adds it equals
  the ratio of the grids' scales (hls4ml has no multiplier of its own there);
* every layer is one hls4ml's PyTorch front end converts: Conv (groups = 1), Linear,
  MaxPool and AvgPool without padding, Flatten, residual Add — one planning rule per layer
  type in :data:`STEPS`. Depthwise/grouped Conv and GlobalAvgPool (:data:`REFUSED`) are
  refused (hls4ml 1.3 has no grouped Conv2d and no AdaptiveAvgPool for PyTorch), and so are
  lookup tables (hls4ml's sigmoid/tanh read tables of its own resolution, not the model's)
  and fused ReLU6/hardtanh clamps (an ``ap_fixed`` cast saturates only at the grid's ends).

The mapping (a tensor with grid scale ``2^e`` and integers ``q`` is the real ``q * 2^e``):

* A MAC layer becomes ``torch.nn.Conv2d``/``Linear`` with weights ``w * 2^f[c]`` and bias
  ``b * 2^(e_x + f[c])``, ``f[c] = k[c] + e_y - e_x``. Its real accumulator is then
  ``acc[c] * 2^(e_x + f[c]) = acc[c] * 2^k[c] * 2^e_y``, so the output integer
  ``acc * 2^k`` is the accumulator measured in units of the output grid.
* Rounding: ``AP_RND`` adds the bit just below the new LSB and truncates (see
  ``quantization_adjust`` in hls4ml's bundled ``ap_fixed_base.h``), i.e.
  ``floor(v + 1/2)`` — the contract's ``(acc * M + 2^(n-1)) >> n`` for ``M/2^n = 2^k``.
* Clamping: unsigned hidden grids are ``ap_ufixed<b, b+e, AP_RND, AP_SAT>`` (``[0, 2^b-1]``;
  clamping at 0 is also the fused ReLU, so no ReLU layer is needed); the signed narrow
  output grid is ``ap_fixed<b, b+e, AP_RND, AP_SAT_SYM>`` (``[-(2^(b-1)-1), 2^(b-1)-1]``).
  A signed grid with a fused ReLU gets an explicit ``nn.ReLU`` (exact accumulator in,
  rounded type out: ``round(max(v, 0)) = clamp(round(v), 0, hi)``).
* Every weight, bias and accumulator type is sized from the proven integer bounds
  (:mod:`exporters.bounds`) so that no bit is lost; MaxPool, Flatten and transposes keep
  their input's type; AvgPool sums exactly and divides by a power-of-two window with
  ``log2(window)`` extra fractional bits, so the quotient is exact before the final cast.

Every layer's precision is set explicitly; after conversion each hls4ml layer's types are
checked against the planned ones, so a fallback to hls4ml's lossy default
(``ap_fixed<16,6>``) fails loudly instead of silently.

Use::

    project = write_hls4ml_project(model, "out/hls4ml_prj", HlsConfig(clock_ns=4.0))
    y = project.compile().predict_integers(x_int)   # == the simulator's output integers

>>> import numpy as np
>>> from exporters import examples
>>> model = power_of_two_copy(examples.mlp(np.random.default_rng(0), power_of_two=True))
>>> check_hls4ml_exact(model)  # no error: this model converts exactly
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import keyword
import math
import operator
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from exporters import integer_model as im
from exporters.bounds import signed_width
from exporters.errors import FoldlineError, ModelError
from exporters.grid import Grid
from exporters.onnx_import import as_integer_model
from exporters.requant import MAX_SHIFT, quantize_multiplier, quantize_shared_shift

MAX_TYPE_BITS = 256  # widest ap_fixed we let the plan create (ap_types allow 1024)


class Hls4mlUnsupportedError(ModelError):
    """The model cannot be represented exactly by hls4ml; the message names the layer and why."""


POWER_OF_TWO_HINT = ("the hls4ml backend is exact only for power-of-two scales with zero points 0; get such a "
                     "model with fpga-compress --power-of-two (training) or export-fpga --power-of-two "
                     "(post-training quantization of a .pt2), or use --hls templates, which takes any scale")


class NotPowerOfTwoError(Hls4mlUnsupportedError):
    """A scale, zero point or multiplier outside hls4ml's power-of-two arithmetic: a restriction of
    this backend, not of the model; the message says how to get a power-of-two model."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}; {POWER_OF_TWO_HINT}")


# -- exactness check -----------------------------------------------------------------------

def _log2_exact(value: float) -> int | None:
    """``k`` with ``value == 2^k`` exactly, else None."""
    mantissa, exponent = math.frexp(float(value))
    return exponent - 1 if mantissa == 0.5 else None


def _power_of_two_multipliers(layer: str, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``k[c]`` with ``M[c] / 2^n[c] = 2^k[c]``; refuses a multiplier that is not a power of two."""
    m = np.asarray(multiplier, dtype=np.int64)
    bad = np.flatnonzero((m & (m - 1)) != 0)
    if bad.size:
        c = int(bad[0])
        raise NotPowerOfTwoError(
            f"layer '{layer}': requantization multiplier M[{c}] = {int(m[c])} is not a power of two, "
            "so hls4ml's ap_fixed cast cannot reproduce (acc * M) >> n")
    log2_m = np.array([int(v).bit_length() - 1 for v in m], dtype=np.int64)
    return log2_m - np.asarray(shift, dtype=np.int64)


def _grid_exponent(where: str, grid: Grid) -> int:
    e = _log2_exact(grid.scale)
    if e is None:
        raise NotPowerOfTwoError(f"{where}: scale {grid.scale!r} is not a power of two")
    if grid.zero_point != 0:
        raise NotPowerOfTwoError(f"{where}: zero point {grid.zero_point} is not 0")
    return e


def _check_ratio(layer: str, k: int, want: float, what: str) -> None:
    if 2.0 ** k != want:
        raise NotPowerOfTwoError(
            f"layer '{layer}': multiplier 2^{k} differs from {what} = {want!r}, and hls4ml has no multiplier "
            "of its own for this layer")


# -- the plan: one entry per hls4ml layer, with exact types ----------------------------------

@dataclass(frozen=True)
class FixedType:
    """``ap_[u]fixed<width, integer, rounding, saturation>``: integers times ``2^lsb``."""

    width: int
    lsb: int  # exponent of the least significant bit
    signed: bool = True
    rounding: str = "AP_TRN"
    saturation: str = "AP_WRAP"

    @property
    def integer(self) -> int:
        return self.width + self.lsb

    def __str__(self) -> str:
        kind = "ap_fixed" if self.signed else "ap_ufixed"
        return f"{kind}<{self.width},{self.integer},{self.rounding},{self.saturation}>"

    def hls4ml_str(self) -> str:
        """How hls4ml prints it back (``fixed<W,I,RND,SAT,0>``), for the post-conversion check."""
        kind = "fixed" if self.signed else "ufixed"
        return f"{kind}<{self.width},{self.integer},{self.rounding[3:]},{self.saturation[3:]},0>"


def exact_type(lo: int, hi: int, lsb: int) -> FixedType:
    """The narrowest signed type holding every integer in [lo, hi] times ``2^lsb``."""
    width = signed_width(min(int(lo), 0), max(int(hi), 0))
    return FixedType(width, lsb)


def grid_type(grid: Grid, exponent: int) -> FixedType:
    """The requantizing type of an output grid: round half up, clamp to the grid."""
    if grid.signed:  # narrow symmetric: AP_SAT_SYM clamps to -(2^(b-1)-1)
        return FixedType(grid.bits, exponent, True, "AP_RND", "AP_SAT_SYM")
    return FixedType(grid.bits, exponent, False, "AP_RND", "AP_SAT")


def input_type(grid: Grid, exponent: int) -> FixedType:
    return FixedType(grid.bits, exponent, grid.signed)


@dataclass
class Step:
    """One planned hls4ml layer: the torch module that produces it and its exact types."""

    layer: str  # the IntegerModel layer it comes from
    kind: str  # "input", "conv", "linear", "relu", "maxpool", "avgpool", "flatten", "add"
    inputs: tuple[str, ...]
    types: dict[str, FixedType]  # hls4ml precision keys: result, accum, weight, bias
    name: str = ""  # its hls4ml layer name, known after tracing
    params: dict = field(default_factory=dict)


def _mac_step(model: im.IntegerModel, layer: im.MacLayer, ex: int, ey: int, kind: str) -> Step:
    """Weights ``w * 2^f[c]``, bias ``b * 2^(e_x + f[c])``, ``f = k + e_y - e_x``; exact types."""
    for c, s in enumerate(layer.weight_scale):
        if _log2_exact(s) is None:
            raise NotPowerOfTwoError(
                f"layer '{layer.name}': weight scale [{c}] = {float(s)!r} is not a power of two")
    k = _power_of_two_multipliers(layer.name, layer.requant.multiplier, layer.requant.shift)
    f = k + ey - ex  # weight exponent per output channel
    f_min = int(f.min())
    spread = np.left_shift(np.int64(1), f - f_min)  # 2^(f[c] - f_min), exact as int64 (checked below)
    if int((f - f_min).max()) > 62:
        raise Hls4mlUnsupportedError(f"layer '{layer.name}': per-channel multipliers span more than 2^62")
    w_mag = np.abs(layer.weight_rows()).max(axis=1) * spread
    b_mag = np.abs(layer.bias) * spread
    acc = im.accumulator_analysis(model, layer).subtract_first  # zero points are 0: x - z_x = x
    acc_lo, acc_hi = acc.lo * spread, acc.hi * spread
    types = {
        "weight": exact_type(-w_mag.max(), w_mag.max(), f_min),
        "bias": exact_type(-b_mag.max(), b_mag.max(), ex + f_min),
        "accum": exact_type(min(acc_lo.min(), -b_mag.max()), max(acc_hi.max(), b_mag.max()), ex + f_min),
    }
    weight = layer.weight.astype(np.float64) * np.ldexp(1.0, f).reshape((-1,) + (1,) * (layer.weight.ndim - 1))
    bias = layer.bias.astype(np.float64) * np.ldexp(1.0, ex + f)
    return Step(layer.name, kind, (layer.input,), types, params={"weight": weight, "bias": bias})


# -- one planning rule per layer type: rule(model, layer, exps, steps) appends the layer's steps
#    and sets exps[layer] (its grid's scale exponent); refusals name the layer ----------------

def _output_exponent(model, layer, exps: dict) -> int:
    exps[layer.name] = _grid_exponent(f"layer '{layer.name}' output grid", model.grid(layer.name))
    return exps[layer.name]


def _plan_input(model, layer: im.Input, exps: dict, steps: list) -> None:
    grid = model.grid(layer.name)
    exps[layer.name] = _grid_exponent(f"input '{layer.name}'", grid)
    steps.append(Step(layer.name, "input", (), {"result": input_type(grid, exps[layer.name])}))


def _refuse_window(model, layer) -> None:
    """The window geometries this bridge maps: 2-D, no dilation, no ceil-mode end padding."""
    window = layer.geometry(model)
    if window.rank != 2:
        raise Hls4mlUnsupportedError(f"layer '{layer.name}': {layer.op_name(model)} (a 1-D layer) is not mapped to "
                                     "hls4ml's 1-D layers here; use --hls templates")
    if any(d != 1 for d in window.dilation):
        raise Hls4mlUnsupportedError(f"layer '{layer.name}': dilation {window.dilation} is not mapped to hls4ml; "
                                     "use --hls templates")
    if any(window.extra):
        raise Hls4mlUnsupportedError(f"layer '{layer.name}': ceil_mode (end padding {window.extra}) is not "
                                     "supported by hls4ml's pooling; use --hls templates")


def _plan_conv(model, layer: im.Conv, exps: dict, steps: list) -> None:
    _refuse_window(model, layer)
    ey = _output_exponent(model, layer, exps)
    if layer.groups != 1:
        raise Hls4mlUnsupportedError(
            f"layer '{layer.name}': grouped/depthwise Conv (groups={layer.groups}) is not supported by "
            "hls4ml's PyTorch converter")
    _append_mac(model, layer, exps, steps, ey, "conv")


def _plan_linear(model, layer: im.Linear, exps: dict, steps: list) -> None:
    _append_mac(model, layer, exps, steps, _output_exponent(model, layer, exps), "linear")


def _append_mac(model, layer: im.MacLayer, exps: dict, steps: list, ey: int, kind: str) -> None:
    step = _mac_step(model, layer, exps[layer.input], ey, kind)
    steps.append(step)
    _append_output_cast(steps, step, model.grid(layer.name), ey, layer.requant.relu)


def _plan_same_type(model, layer, exps: dict, steps: list, kind: str, keys: tuple[str, ...]) -> None:
    """A layer hls4ml computes in its input's type (MaxPool, Flatten)."""
    exps[layer.name] = exps[layer.input]
    keep = _result_type(steps, layer.input)
    steps.append(Step(layer.name, kind, (layer.input,), {key: keep for key in keys}))


def _plan_maxpool(model, layer: im.MaxPool, exps: dict, steps: list) -> None:
    _refuse_window(model, layer)
    if any(layer.padding):
        raise Hls4mlUnsupportedError(f"layer '{layer.name}': MaxPool padding {layer.padding} is not supported "
                                     "(hls4ml pads with its own value, not the contract's)")
    _plan_same_type(model, layer, exps, steps, "maxpool", ("result", "accum"))


def _plan_flatten(model, layer: im.Flatten, exps: dict, steps: list) -> None:
    _plan_same_type(model, layer, exps, steps, "flatten", ("result",))


def _plan_avgpool(model, layer: im.AvgPool, exps: dict, steps: list) -> None:
    ey = _output_exponent(model, layer, exps)
    steps.append(_avgpool_step(model, layer, exps[layer.input], ey, model.grid(layer.name)))


def _plan_add(model, layer: im.Add, exps: dict, steps: list) -> None:
    ey = _output_exponent(model, layer, exps)
    step = _add_step(model, layer, exps, ey)
    steps.append(step)
    _append_output_cast(steps, step, model.grid(layer.name), ey, layer.relu)


#: How each layer type becomes hls4ml layers exactly ...
STEPS = {
    im.Input: _plan_input,
    im.Conv: _plan_conv,
    im.Linear: _plan_linear,
    im.MaxPool: _plan_maxpool,
    im.AvgPool: _plan_avgpool,
    im.Add: _plan_add,
    im.Flatten: _plan_flatten,
}
#: ... and the types it refuses, with the reason (checked before anything is converted).
REFUSED = {
    im.GlobalAvgPool: "GlobalAvgPool has no hls4ml PyTorch equivalent (no AdaptiveAvgPool)",
    im.Concat: ("Concat is not mapped to hls4ml (its Concatenate casts every input to one type: exact only "
                "for power-of-two grid ratios, not wired here yet); use --hls templates"),
    im.Upsample: "Upsample is not mapped to hls4ml (its UpSampling2D is not wired here yet); use --hls templates",
    im.Lookup: ("a lookup table (an elementwise activation) has no exact hls4ml equivalent: hls4ml computes "
                "sigmoid/tanh from its own tables of another resolution; use --hls templates"),
}
#: A fused clamp (ReLU6, hardtanh) narrows the output clamp below the grid's, which an ap_fixed cast cannot.
CLAMP_REFUSED = ("a fused ReLU6/hardtanh clamp has no exact hls4ml equivalent (its ap_fixed cast saturates at "
                 "the grid's ends only); use --hls templates")


def hls4ml_plan(model: im.IntegerModel) -> list[Step]:
    """The exact hls4ml layer plan of ``model``; raises :class:`Hls4mlUnsupportedError` first."""
    model.validate()
    exps: dict[str, int] = {}
    steps: list[Step] = []
    for layer in model.layers:
        if type(layer) in REFUSED:
            raise Hls4mlUnsupportedError(f"layer '{layer.name}': {REFUSED[type(layer)]}")
        if layer.output_clamp is not None:
            raise Hls4mlUnsupportedError(f"layer '{layer.name}': {CLAMP_REFUSED}")
        rule = STEPS.get(type(layer))
        if rule is None:
            raise Hls4mlUnsupportedError(f"layer '{layer.name}': {type(layer).__name__} has no hls4ml mapping")
        rule(model, layer, exps, steps)
    for step in steps:
        for key, t in step.types.items():
            if t.width > MAX_TYPE_BITS:
                raise Hls4mlUnsupportedError(
                    f"layer '{step.layer}': its exact {key} type needs {t.width} bits (> {MAX_TYPE_BITS})")
    return steps


def _result_type(steps: list[Step], layer: str) -> FixedType:
    return [s for s in steps if s.layer == layer][-1].types["result"]


def _append_output_cast(steps: list[Step], step: Step, grid: Grid, ey: int, relu: bool) -> None:
    """The layer's result is the output grid; a signed grid with ReLU needs an explicit ReLU."""
    out = grid_type(grid, ey)
    if relu and grid.signed:
        step.types["result"] = step.types["accum"]
        steps.append(Step(step.layer, "relu", (step.layer,), {"result": out}))
    else:
        step.types["result"] = out


def _avgpool_step(model, layer: im.AvgPool, ex: int, ey: int, grid: Grid) -> Step:
    _refuse_window(model, layer)
    if any(layer.padding):
        raise Hls4mlUnsupportedError(f"layer '{layer.name}': AvgPool padding {layer.padding} is not supported")
    window = layer.kernel[0] * layer.kernel[1]
    log_window = _log2_exact(window)
    if log_window is None:
        raise Hls4mlUnsupportedError(
            f"layer '{layer.name}': AvgPool window {window} is not a power of two; hls4ml's division by it "
            "is not exact")
    k = _power_of_two_multipliers(layer.name, layer.requant.multiplier, layer.requant.shift)
    if np.unique(k).size != 1:
        raise Hls4mlUnsupportedError(f"layer '{layer.name}': per-channel AvgPool multipliers differ")
    _check_ratio(layer.name, int(k[0]), 2.0 ** (ex - ey) / window, "s_x / (s_y * window)")
    g = model.grid(layer.input)
    bound = max(abs(g.lo), abs(g.hi)) * window * window  # the sum, in units of 2^(ex - log2 window)
    types = {"accum": exact_type(-bound, bound, ex - log_window), "result": grid_type(grid, ey)}
    return Step(layer.name, "avgpool", (layer.input,), types)


def _add_step(model, layer: im.Add, exps: dict, ey: int) -> Step:
    k = _power_of_two_multipliers(layer.name, np.array(layer.multipliers), np.full(2, layer.shift))
    for src, ki in zip(layer.inputs, k):
        _check_ratio(layer.name, int(ki), 2.0 ** (exps[src] - ey), f"s_{src} / s_y")
    # M_i = 2^(n + e_i - e_y) (just checked) and z_i = 0: the integer sum is the real sum in units of
    # 2^(e_y - n); counted in the finer input's units 2^lsb it is the sum shifted right by n + lsb - e_y >= 0
    lsb = min(exps[s] for s in layer.inputs)
    lo, hi = (v >> (layer.shift + lsb - ey) for v in layer.sum_bounds(model))
    return Step(layer.name, "add", tuple(layer.inputs), {"accum": exact_type(lo, hi, lsb)})


def check_hls4ml_exact(model) -> None:
    """Return None if hls4ml can compute ``model``'s integers exactly (IntegerModel, ONNX proto
    or path); else raise a one-line :class:`Hls4mlUnsupportedError` naming the first offending
    layer and the reason."""
    hls4ml_plan(as_integer_model(model))


# -- torch module and hls4ml conversion ------------------------------------------------------

def _identifier(name: str, taken: set[str]) -> str:
    ident = re.sub(r"\W", "_", name)
    if not ident or not ident[0].isalpha() or keyword.iskeyword(ident) or ident in ("input", "x"):
        ident = f"layer_{ident}"
    base, i = ident, 1
    while ident in taken:
        ident, i = f"{base}_{i}", i + 1
    taken.add(ident)
    return ident


def _torch_layer(step: Step, layer: im.Layer):
    """The float64 torch.nn module of one step (None for the input and the Add)."""
    import torch

    nn = torch.nn
    if step.kind == "conv":
        o, i, kh, kw = layer.weight.shape
        module = nn.Conv2d(i, o, (kh, kw), stride=layer.stride, padding=layer.padding)
    elif step.kind == "linear":
        module = nn.Linear(layer.weight.shape[1], layer.weight.shape[0])
    elif step.kind in ("maxpool", "avgpool"):
        module = (nn.MaxPool2d if step.kind == "maxpool" else nn.AvgPool2d)(layer.kernel, stride=layer.stride)
    else:
        module = {"relu": nn.ReLU, "flatten": nn.Flatten}.get(step.kind, lambda: None)()
    if module is None:
        return None
    module = module.double()
    if "weight" in step.params:
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(step.params["weight"]))
            module.bias.copy_(torch.from_numpy(step.params["bias"]))
    return module


@functools.cache
def _net_type():
    import torch

    class IntegerNet(torch.nn.Module):
        """Plays the plan in real numbers; torch.fx unrolls the loop into one node per step."""

        def __init__(self, steps: list[Step], modules: dict) -> None:
            super().__init__()
            self.steps = [(s.kind, s.layer, s.inputs, s.name) for s in steps]
            for name, module in modules.items():
                self.add_module(name, module)

        def forward(self, x):
            values = {}
            for kind, layer, inputs, name in self.steps:
                if kind == "input":
                    values[layer] = x
                elif kind == "add":
                    values[layer] = values[inputs[0]] + values[inputs[1]]
                else:
                    values[layer] = getattr(self, name)(values[inputs[0]])
            return values[self.steps[-1][1]]

    return IntegerNet


def torch_module(model: im.IntegerModel, steps: list[Step]):
    """A float64 ``torch.nn.Module`` computing ``model`` in real numbers, one child per step;
    sets each step's ``name`` to the hls4ml layer name it will get (torch.fx node names)."""
    from hls4ml.utils.torch import CustomFXTracer

    taken: set[str] = set()
    modules = {}
    for step in steps:
        module = _torch_layer(step, model.layer(step.layer))
        step.name = _identifier(step.layer + ("_relu" if step.kind == "relu" else ""), taken)
        if module is not None:
            modules[step.name] = module
    net = _net_type()(steps, modules)
    graph = CustomFXTracer().trace(net)
    placeholders = [n.name for n in graph.nodes if n.op == "placeholder"]
    adds = [n.name for n in graph.nodes if n.op == "call_function" and n.target is operator.add]
    by_target = {n.target: n.name for n in graph.nodes if n.op == "call_module"}
    for step in steps:
        if step.kind == "input":
            step.name = placeholders[0]
        elif step.kind == "add":
            step.name = adds.pop(0)
        else:
            step.name = by_target[step.name]
    return net


@dataclass
class Hls4mlSettings:
    """The hls4ml settings this bridge varies, read from a dict or an ``HlsConfig``-like object
    (``part``, ``clock_ns``, ``reuse_factor``, ``layer_reuse``; ``project_name``, ``io_type``)."""

    part: str = "xcu250-figd2104-2L-e"
    clock_ns: float = 5.0
    reuse_factor: int = 1
    layer_reuse: dict = field(default_factory=dict)
    io_type: str = "io_parallel"
    project_name: str = "myproject"

    @classmethod
    def from_config(cls, config) -> "Hls4mlSettings":
        if config is None:
            return cls()
        if isinstance(config, dict):
            unknown = sorted(set(config) - {f.name for f in fields(cls)})
            if unknown:
                raise FoldlineError(f"unknown hls4ml bridge settings {unknown}; known: {[f.name for f in fields(cls)]}")
            return cls(**config)
        names = [f.name for f in fields(cls)]
        return cls(**{n: getattr(config, n) for n in names if getattr(config, n, None) is not None})

    def reuse(self, layer: str) -> int:
        return int(dict(self.layer_reuse).get(layer, self.reuse_factor))


def hls4ml_config(steps: list[Step], settings: Hls4mlSettings, input_shape: tuple[int, ...]) -> dict:
    """hls4ml's ``hls_config`` with every layer's precision set from the plan."""
    layers = {}
    for step in steps:
        entry = {"Precision": {k: str(t) for k, t in step.types.items()}, "Trace": False}
        if step.kind in ("conv", "linear", "maxpool", "avgpool"):
            entry["ReuseFactor"] = settings.reuse(step.layer)
        layers[step.name] = entry
    return {
        "Model": {"Precision": {"default": "ap_fixed<16,6>"}, "ReuseFactor": settings.reuse_factor,
                  "Strategy": "Latency", "ChannelsLastConversion": "full", "TransposeOutputs": True,
                  "BramFactor": 1_000_000_000, "TraceOutput": False},
        "LayerName": layers,
        "InputShape": tuple(input_shape),
    }


@dataclass
class Hls4mlProject:
    """A written hls4ml project: ``graph`` is hls4ml's ``ModelGraph`` (``build()``, reports ...)."""

    graph: object
    model: im.IntegerModel
    steps: list[Step]
    path: Path

    def compile(self) -> "Hls4mlProject":
        """Build the C++ with g++ and load it (hls4ml's ``compile``; seconds, no vendor tool)."""
        with contextlib.redirect_stdout(io.StringIO()):
            self.graph.compile()
        return self

    def predict_integers(self, x_int: np.ndarray) -> np.ndarray:
        """Output integers for input integers ``(batch, *input_shape)`` on the model's input grid.

        The integers become reals ``q * s_in`` (exact); hls4ml's outputs are divided by the
        power-of-two output scale. A value off the output grid raises: the path would not be exact.
        """
        model = self.model
        x = np.ascontiguousarray(np.asarray(x_int, dtype=np.float64) * model.input.grid.scale)
        y = np.asarray(self.graph.predict(x), dtype=np.float64).reshape(len(x), -1)
        q = y / model.grid(model.output.name).scale
        if not np.array_equal(q, np.round(q)):
            raise RuntimeError("hls4ml returned values off the output grid")
        return q.astype(np.int64).reshape((len(x),) + model.shape(model.output.name))


def write_hls4ml_project(model, out_dir, config=None) -> Hls4mlProject:
    """Convert ``model`` (IntegerModel, ONNX proto or path) to an hls4ml project in ``out_dir``.

    Refuses (one-line :class:`Hls4mlUnsupportedError`) before converting anything when the
    model is not exactly representable. Returns the written project; ``.compile()`` then
    ``.predict_integers(x)``. ``config``: a dict or an ``HlsConfig``-like object (``part``,
    ``clock_ns``, ``reuse_factor``, ``layer_reuse``; ``project_name``, ``io_type``).
    """
    import hls4ml

    model = as_integer_model(model)
    steps = hls4ml_plan(model)
    settings = Hls4mlSettings.from_config(config)
    if settings.io_type != "io_parallel":
        raise Hls4mlUnsupportedError(f"io_type '{settings.io_type}': only io_parallel is supported by this bridge")
    net = torch_module(model, steps)
    hls_config = hls4ml_config(steps, settings, model.input.shape)
    with contextlib.redirect_stdout(io.StringIO()):
        graph = hls4ml.converters.convert_from_pytorch_model(
            net, hls_config=hls_config, backend="Vivado",
            io_type=settings.io_type, output_dir=str(Path(out_dir)), project_name=settings.project_name,
            part=settings.part, clock_period=settings.clock_ns)
        graph.write()
    _check_converted_types(graph, steps)
    return Hls4mlProject(graph, model, steps, Path(out_dir))


def _check_converted_types(graph, steps: list[Step]) -> None:
    """Every hls4ml layer must carry one of the planned exact types (no silent default)."""
    planned = {s.name: s for s in steps}
    allowed = {t.hls4ml_str() for s in steps for t in s.types.values()}
    for layer in graph.get_layers():
        step = planned.get(layer.name)
        for key, var in layer.types.items():
            got = str(var.precision)
            if key in ("index_t", "table_t"):
                continue
            want = step.types.get(key[:-2]) if step else None
            ok = got == want.hls4ml_str() if want is not None else got in allowed
            if not ok:
                raise RuntimeError(f"hls4ml layer '{layer.name}' ({layer.class_name}) got {key} = {got}, "
                                   f"not the planned exact type {want}")


# -- a helper to make example models exact ----------------------------------------------------

def power_of_two_copy(model: im.IntegerModel) -> im.IntegerModel:
    """A copy of ``model`` with every scale snapped to a power of two, zero points 0 and every
    requantization multiplier the exact power of two nearest (in log2) to the original ``M/2^n``.

    For building demo and test models (``examples.*(power_of_two=True)`` draws random ``M``);
    it changes what the integers mean, so never apply it to a trained model.
    """
    model = copy.deepcopy(model)
    for layer in model.layers:
        for attr in ("grid", "out"):
            g = getattr(layer, attr, None)
            if isinstance(g, Grid):
                setattr(layer, attr, _snap_grid(g))
        rq = getattr(layer, "requant", None)
        if rq is not None:
            rq.out = _snap_grid(rq.out)
    model.invalidate()
    for layer in model.layers:
        if layer.requantizes:
            SNAP_MULTIPLIERS[type(layer)](model, layer, model.grid(layer.name).scale)
    model.validate()
    return model


def _snap_mac(model, layer: im.MacLayer, sy: float) -> None:
    sx = model.grid(layer.input).scale
    real = layer.requant.multiplier / np.ldexp(1.0, layer.requant.shift)
    k = np.clip(np.round(np.log2(real)), 15 - MAX_SHIFT, 15).astype(np.int64)
    layer.requant.multiplier = np.full(k.shape, 1 << 15, dtype=np.int64)
    layer.requant.shift = 15 - k
    layer.weight_scale = np.ldexp(1.0, k) * sy / sx


def _snap_average(model, layer, sy: float) -> None:
    sx = model.grid(layer.input).scale
    taps = int(np.prod(layer.window(model)))
    m, n = quantize_multiplier(sx / (sy * taps))
    c = layer.requant.multiplier.size
    layer.requant.multiplier, layer.requant.shift = np.full(c, m), np.full(c, n)
    if getattr(layer, "partial_multipliers", ()):  # an AvgPool's edge windows: one (M, n) per count
        layer.partial_multipliers, layer.partial_shifts = im.count_requant(sx, sy, range(1, taps))


def _snap_concat(model, layer: im.Concat, sy: float) -> None:
    pairs = [quantize_multiplier(model.grid(src).scale / sy) for src in layer.sources]
    layer.multipliers, layer.shifts = tuple(m for m, _ in pairs), tuple(n for _, n in pairs)


def _snap_add(model, layer: im.Add, sy: float) -> None:
    m, n = quantize_shared_shift([model.grid(layer.a).scale / sy, model.grid(layer.b).scale / sy])
    layer.multipliers, layer.shift = tuple(int(v) for v in m), int(n)


def _keep_table(model, layer: im.Lookup, sy: float) -> None:
    """A table has no multiplier: its integers stay (and, like every integer here, mean another real)."""


#: power_of_two_copy: how each requantizing layer type gets its power-of-two multipliers.
SNAP_MULTIPLIERS = {
    im.Conv: _snap_mac, im.Linear: _snap_mac, im.AvgPool: _snap_average, im.GlobalAvgPool: _snap_average,
    im.Add: _snap_add, im.Lookup: _keep_table, im.Concat: _snap_concat,
}


def _snap_grid(g: Grid) -> Grid:
    return Grid(float(2.0 ** round(math.log2(g.scale))), 0, g.bits, g.signed)
