"""Post-training quantization of a plain float network saved with ``torch.export.save`` (``.pt2``).

``quantize_exported(program, x_calib)`` walks the exported program's ATen graph once and
maps the ops of a plain CNN/MLP onto Foldline layers (a :class:`~toolchain.nn.QuantNet`),
copying weights and biases, then calibrates the activation ranges on ``x_calib``:

* ``conv1d`` / ``conv2d`` / ``convolution`` (stride, padding, groups, dilation) -> ``QuantConv1d`` /
  ``QuantConv2d``; ``linear`` / ``addmm`` / ``mm`` -> ``QuantLinear``.
* ``batch_norm`` (and ``_native_batch_norm_legit_no_training``) directly after a conv/linear
  that feeds nothing else is **folded here**, in float64, into that layer's weight and bias
  (running statistics). The QuantNet has no BN at all, so calibration cannot touch BN
  statistics. A batch norm in **training mode** (``training=True`` in ``batch_norm``,
  ``_native_batch_norm_legit[_functional]``, ``native_batch_norm``: the model was exported
  in ``train()`` mode) normalises with batch statistics, a different function: refused. A batch
  norm anywhere else, and ``x - k``, ``x + k``, ``x * k``, ``x / k`` with a per-channel constant (the
  input normalisation), are per-channel affine maps: folded into the conv/linear before or after
  them where that is exact, else a depthwise 1x1 conv (:mod:`toolchain.ptq_affine`).
* ``relu`` is fused (``relu=True``) into the conv/linear/add before it, also through
  max pools (``relu(maxpool(y)) == maxpool(relu(y))``); that layer must feed nothing else. After an
  average or global pool a ReLU (or a clamp around 0) is a ``QuantReLU`` (``QuantClamp``), fused at
  conversion into the pool's requantizer.
  ``relu6``, ``hardtanh`` and ``clamp`` / ``clamp_min`` / ``clamp_max`` with constant bounds
  around 0 fuse the same way (``clamp=(a, b)``: the integer clamp ``[Q(a), Q(b)]``); a clamp
  that cannot fuse (bounds away from 0, after another layer) becomes a ``clamp`` lookup.
* ``sigmoid``, ``tanh``, ``hardsigmoid``, ``hardswish``, ``silu``, ``gelu`` (``approximate``
  ``none`` or ``tanh``), ``elu``, ``selu``, ``celu``, ``leaky_relu``, ``softplus``, ``mish``,
  ``log_sigmoid`` -> ``QuantActivation`` (a Lookup table over its input grid). ``run_decompositions()``
  rewrites hardswish/silu as ``x * f(x)``, which is refused: quantize the program
  ``torch.export.export`` returns. ``softmax`` / ``log_softmax`` are
  refused naming the alternative: the integer logits' argmax is softmax's.
* ``max_pool1d/2d`` (dilation 1, ceil mode) -> ``MaxPool1d/2d``; ``avg_pool1d/2d`` (ceil mode,
  ``count_include_pad``) -> ``AvgPool1d/2d``; ``adaptive_avg_pool1d/2d`` to 1 and ``mean`` over L
  or H, W -> ``GlobalAvgPool`` (a size that divides the input: an AvgPool), which may be the output;
  the core-ATen form's 1-D pools (a 2-D pool over ``unsqueeze(-2)``) map back to the 1-D ones.
* ``flatten`` / ``view`` / ``reshape`` to ``(N, -1)`` -> ``Flatten`` (free after a
  global average pool, as ``squeeze`` of its unit axes is); ``add`` of two activations of one shape -> ``QuantAdd``; ``cat`` of
  activations along channels (dim 1) -> ``QuantConcat``; ``upsample_nearest2d`` (and
  ``_upsample_nearest_exact2d``: the same for integer factors; ``nn.Upsample``,
  ``F.interpolate(mode='nearest')``) by integer factors -> ``Upsample`` (bilinear/bicubic refused). A linear
  layer must read an ``(N, features)`` tensor: on a pool's ``(N, C, 1, 1)`` torch
  broadcasts over the trailing 1, which no integer layer does, so it is refused.
* ``dropout`` (eval), ``clone``, ``contiguous``, ``alias``, ``detach`` pass through;
  computations on weights alone (``t``, ``permute`` of a weight) are evaluated here.

Anything else raises :class:`PtqError` naming the node and op and listing these ops.
The network's output layer gets ``signed_output=True``. Hidden activations use
``act_bits``, weights ``weight_bits``; the network input and output grids are 8-bit
(as the built-in models' ``input_bits``/``output_bits`` defaults). ``power_of_two=True``
puts every quantizer in power-of-two mode (:mod:`toolchain.quant`; the hls4ml backend's
exact mode).

**Calibration** (:func:`calibrate`): every quantizer is built with ``momentum=None``, the
cumulative average of the per-batch min/max (Zhang et al. Alg. 2), so the result does not
depend on the order of batches beyond their grouping, and quantization is switched
**off** while observing (``set_quantization(model, False)``): each quantizer sees the
float activations of the float network, as a PTQ observer does, not activations
perturbed by half-calibrated upstream quantizers. One pass in train mode under
``torch.no_grad()``, batches of :data:`CALIBRATION_BATCH` (a calibration set up to that
size gives the exact min/max), then quantization on and ``eval()``. Calibration data
holding NaN or infinity is refused first, naming the first bad value's index.

The float program's and the PTQ model's (fake-quant) top-1 agreement on the calibration
data is logged and stored as ``model.ptq_info``; ``export-fpga`` reports the float program
against the **integer** model (:mod:`toolchain.accuracy`).
"""

from __future__ import annotations

import logging
import math
import operator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from exporters.errors import FoldlineError, ModelError
from fpga_sim.errors import FeedError
from fpga_sim.inputs import check_finite
from toolchain.nn import (AvgPool1d, AvgPool2d, Flatten, GlobalAvgPool, MaxPool1d, MaxPool2d, QuantActivation,
                          QuantAdd, QuantClamp, QuantConcat, QuantConv1d, QuantConv2d, QuantInput, QuantLinear,
                          QuantNet, QuantReLU, Upsample, set_quantization)
from toolchain.nn.functions import NOT_A_LOOKUP, resolve
from toolchain.ptq_affine import Affine, NotPerChannel, batch_norm_map, fold_conv, fold_linear, per_channel
from toolchain.quant import CalibrationError

log = logging.getLogger(__name__)

CALIBRATION_BATCH = 256
IO_BITS = 8  # network input and output grids
aten = torch.ops.aten

SUPPORTED_OPS = ("conv1d", "conv2d", "convolution", "linear", "addmm", "mm", "relu", "relu6", "hardtanh",
                 "clamp (constant)", "sub/add/mul/div by a per-channel constant (normalisation)",
                 "sigmoid", "tanh", "hardsigmoid", "hardswish", "silu", "gelu", "elu", "selu", "celu", "leaky_relu",
                 "softplus", "mish", "log_sigmoid", "batch_norm", "max_pool1d", "max_pool2d", "avg_pool1d",
                 "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "mean (over L, or H and W)", "flatten",
                 "view", "reshape", "squeeze / unsqueeze (after a global pool, around a 1-D pool)",
                 "add (residual)", "cat (along channels)", "upsample_nearest2d (integer factor)", "dropout (eval)",
                 "clone", "contiguous")


class PtqError(FoldlineError):
    """A ``.pt2`` that cannot be loaded or post-training quantized (one line)."""


def load_float_program(path: str | Path) -> torch.export.ExportedProgram:
    """``torch.export.load(path)`` with a one-line :class:`PtqError` for a missing/corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise PtqError(f"{path}: no such file")
    quiet = logging.getLogger("torch.export")  # it logs a traceback before raising on a bad archive
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        program = torch.export.load(str(path))
    except Exception as exc:  # zip, pickle and schema errors alike
        raise PtqError(f"{path}: not a readable torch.export .pt2 file ({type(exc).__name__})") from None
    finally:
        quiet.setLevel(level)
    if not isinstance(program, torch.export.ExportedProgram):
        raise PtqError(f"{path}: not a torch.export ExportedProgram")
    return program


def _user_inputs(program) -> list:
    names = {s.arg.name for s in program.graph_signature.input_specs
             if s.kind == torch.export.graph_signature.InputKind.USER_INPUT}
    return [n for n in program.graph.nodes if n.op == "placeholder" and n.name in names]


def input_shape(program) -> tuple[int, ...]:
    """The per-sample input shape (without the batch dimension) from the example input spec."""
    inputs = _user_inputs(program)
    if len(inputs) != 1:
        raise PtqError(f"the program takes {len(inputs)} tensor inputs; post-training quantization needs exactly 1")
    val = inputs[0].meta.get("val")
    if not isinstance(val, torch.Tensor) or val.dim() not in (2, 3, 4):
        raise PtqError("the program's input must be a tensor of shape (N, C, H, W), (N, C, L) or (N, F) (volumes "
                       "(N, C, D, H, W) and Conv3d are not supported; Conv1d and Conv2d are)")
    try:
        return tuple(int(d) for d in val.shape[1:])
    except Exception:
        raise PtqError(f"the program's input has a dynamic non-batch dimension: {tuple(val.shape)}") from None


# -- graph -> layer list ------------------------------------------------------------------

@dataclass
class _Entry:
    """One QuantNet layer under construction (instantiated once the whole graph is read)."""

    name: str
    cls: type
    kwargs: dict
    inputs: list
    weight: torch.Tensor | None = None
    bias: torch.Tensor | None = None
    tail: object = None  # the last fx node whose value this layer's output is (for fusion)
    source: object = None  # the fx node its input came from (a pool's: fusion walks back through it)


@dataclass
class _Act:
    """An activation: the QuantNet layer producing it and that layer's output rank; ``row``: a 1-D map
    ``(N, C, L)`` viewed as ``(N, C, 1, L)`` (the core-ATen form writes 1-D pools as 2-D ones so)."""

    entry: _Entry
    rank: int
    row: bool = False


@dataclass
class _Tuple:
    items: dict = field(default_factory=dict)


def _op_name(node) -> str:
    t = node.target
    name = getattr(t, "__name__", str(t))
    return name.split(".")[0]


def _shape(node) -> tuple:
    val = node.meta.get("val")
    return tuple(val.shape) if isinstance(val, torch.Tensor) else ()


def _ints(v, n=2) -> tuple[int, ...]:
    if isinstance(v, int):
        return (v,) * n
    v = tuple(int(a) for a in v)
    return v * n if len(v) == 1 else v


class _Builder:
    def __init__(self, program, weight_bits: int, act_bits: int, power_of_two: bool) -> None:
        self.program, self.weight_bits, self.act_bits = program, weight_bits, act_bits
        self.quant = dict(momentum=None, power_of_two=power_of_two)  # every quantizing layer's options
        self.entries: list[_Entry] = []
        self.env: dict = {}
        sig = program.graph_signature
        self.consts = {}
        state, constants = program.state_dict, getattr(program, "constants", {}) or {}
        for spec in sig.input_specs:
            if spec.kind == torch.export.graph_signature.InputKind.USER_INPUT:
                continue
            key = spec.target
            value = state.get(key) if key in state else constants.get(key)
            if value is None:
                raise PtqError(f"input '{spec.arg.name}' ({spec.kind.name}) has no stored value")
            self.consts[spec.arg.name] = value.detach()

    # -- helpers ------------------------------------------------------------------------
    def fail(self, node, why: str):
        raise PtqError(f"node '{node.name}' ({_op_name(node)}): {why}")

    def source(self, node, arg) -> "_Act | Affine":
        """An activation input, or a per-channel affine map still to be taken by a conv or linear."""
        v = self.env.get(arg) if isinstance(arg, torch.fx.Node) else None
        if not isinstance(v, (_Act, Affine)):
            self.fail(node, "expected an activation input (a tensor computed from the network input)")
        return v

    def act(self, node, arg, row_ok: bool = False) -> _Act:
        """An activation input; a pending affine map becomes its affine layer (:meth:`affine_layer`)."""
        v = self.source(node, arg)
        if isinstance(v, Affine):
            v = self.affine_layer(node, v)
        if v.row and not row_ok:
            self.fail(node, "a 1-D map viewed as (N, C, 1, L) is supported only through pooling and its squeeze")
        return v

    def affine_layer(self, node, affine: Affine) -> _Act:
        """The per-channel affine layer of ``affine`` (made once): a depthwise 1x1 conv (a diagonal linear
        layer on an ``(N, F)`` tensor) with weights ``scale`` and bias ``shift`` (:mod:`toolchain.ptq_affine`)."""
        if affine.layer is not None:
            return affine.layer
        a, c = affine.source, affine.scale.numel()
        if a.row:
            self.fail(node, "a per-channel affine map on a 1-D map viewed as (N, C, 1, L) is not supported")
        if a.rank == 2:
            cls, kwargs, weight = QuantLinear, dict(in_features=c, out_features=c), torch.diag(affine.scale)
        else:
            cls = QuantConv2d if a.rank == 4 else QuantConv1d
            kwargs = dict(in_channels=c, out_channels=c, kernel_size=1, groups=c)
            weight = affine.scale.reshape(c, 1, *([1] * (a.rank - 2)))
        e = self.add(affine.tail, cls, dict(kwargs, bias=True, weight_bits=self.weight_bits, act_bits=self.act_bits,
                                            **self.quant), [a.entry], weight.float(), affine.shift.float())
        affine.layer = _Act(e, a.rank)
        return affine.layer

    def const(self, node, arg, what: str):
        if arg is None or isinstance(arg, torch.Tensor):
            return arg
        v = self.env.get(arg) if isinstance(arg, torch.fx.Node) else None
        if not isinstance(v, torch.Tensor):
            self.fail(node, f"{what} must be a stored tensor (a parameter or constant)")
        return v

    def add(self, node, cls, kwargs, inputs, weight=None, bias=None, source=None) -> _Entry:
        names = {e.name for e in self.entries}
        name = node.name if node.name.isidentifier() and node.name != "input" else f"layer_{len(self.entries)}"
        while name in names:
            name += "_"
        e = _Entry(name, cls, kwargs, [i.name for i in inputs], weight, bias, tail=node, source=source)
        self.entries.append(e)
        return e

    def view(self, node, a: _Act, rank: int, row: bool = False) -> _Act:
        """``a`` under a view that changes no value of its layer (squeeze, unsqueeze): the same layer,
        whose last node this view becomes when it is its only reader (ReLU fusion looks through it)."""
        src = node.args[0]
        if self.single_tail(a, src):
            a.entry.tail = node
        return _Act(a.entry, rank, row)

    def single_tail(self, a: _Act, src) -> bool:
        """``src`` is the last node of ``a``'s layer and feeds exactly one node."""
        return a.entry.tail is src and len(src.users) == 1

    # -- the walk -----------------------------------------------------------------------
    def build(self) -> QuantNet:
        graph = self.program.graph
        shape = input_shape(self.program)  # checks there is exactly one tensor input
        (inp,) = _user_inputs(self.program)
        first = _Entry("quant_in", QuantInput, dict(bits=IO_BITS, **self.quant), [], tail=inp)
        self.entries.append(first)
        for node in graph.nodes:
            if node.op == "placeholder":
                self.env[node] = _Act(first, 1 + len(shape)) if node is inp else self.consts[node.name]
            elif node.op == "get_attr":
                self.env[node] = getattr(self.program.graph_module, node.target)
            elif node.op == "call_function":
                self.env[node] = self.call(node)
            elif node.op == "output":
                self.output(node)
            else:
                self.fail(node, f"unsupported node kind {node.op!r}")
        layers = []
        for e in self.entries:
            module = e.cls(**e.kwargs)
            if e.weight is not None:
                with torch.no_grad():
                    module.weight.copy_(e.weight.to(torch.float32))
                    if module.bias is not None:
                        module.bias.copy_(e.bias.to(torch.float32))
            layers.append((e.name, module, e.inputs if e is not first else None))
        return QuantNet(layers, shape, name="ptq_model")

    def output(self, node) -> None:
        outs = node.args[0]
        outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
        if len(outs) != 1:
            self.fail(node, f"the network must return one tensor, it returns {len(outs)}")
        a = self.act(node, outs[0]) if isinstance(self.env.get(outs[0]), (_Act, Affine)) else None
        if a is None or a.rank != 2:
            self.fail(node, "the network's output must be an (N, classes) activation")
        if a.entry.cls not in (QuantConv2d, QuantConv1d, QuantLinear, QuantAdd, QuantActivation, GlobalAvgPool):
            self.fail(node, f"the output must come from a conv, linear, add, activation or global average pool, "
                            f"not {a.entry.cls.__name__}")
        if a.entry is not self.entries[-1]:
            self.fail(node, f"the output layer '{a.entry.name}' must be the last layer computed")
        a.entry.kwargs["signed_output"] = True
        a.entry.kwargs["act_bits"] = IO_BITS

    def call(self, node):
        t = node.target
        args = node.args
        # assertions and symbolic sizes carry no tensor computation
        if _op_name(node).startswith("_assert") or t in (aten.sym_size.int, aten.sym_numel.default):
            return None
        if t is operator.getitem:
            src = self.env.get(args[0])
            if isinstance(src, _Tuple) and args[1] in src.items:
                item = src.items[args[1]]
                if isinstance(item, Affine):  # a batch norm's values, still a map to fold or to make a layer of
                    item.tail = node
                elif self.single_tail(item, args[0]):
                    item.entry.tail = node  # the getitem is now the layer's last node (for fusion)
                return item
            if isinstance(src, (tuple, list)):
                return src[args[1]]
            if isinstance(src, _Tuple) and not node.users:
                return None  # an output nobody reads (a loaded program names the pool's indices so)
            self.fail(node, "only the first output (the values) of a pool/batch norm may be used")
        # constant folding: computations on weights alone (t, permute, ...)
        tensor_args = [a for a in node.all_input_nodes]
        if tensor_args and all(isinstance(self.env.get(a), torch.Tensor) for a in tensor_args):
            a2 = torch.fx.node.map_arg(args, lambda n: self.env[n])
            k2 = torch.fx.node.map_arg(node.kwargs, lambda n: self.env[n])
            with torch.no_grad():
                return t(*a2, **k2)
        handler = _HANDLERS.get(t)
        if handler is None:
            self.fail(node, f"unsupported op {t}; supported: {', '.join(SUPPORTED_OPS)}")
        return handler(self, node)

    # -- op handlers --------------------------------------------------------------------
    def conv(self, node, x, w, b, stride, padding, dilation, groups, transposed=False):
        """``conv1d`` / ``conv2d`` / ``convolution`` -> QuantConv1d / QuantConv2d (stride, padding incl. "same"
        for odd kernels at stride 1, dilation, groups); a pending affine map on its input folds into it
        when that is exact (:mod:`toolchain.ptq_affine`)."""
        src = self.source(node, x)
        w = self.const(node, w, "the weight")
        b = self.const(node, b, "the bias")
        if transposed:
            self.fail(node, "transposed convolution is not supported; nearest upsampling by an integer factor "
                            "(nn.Upsample(scale_factor=2)) followed by a conv is")
        if w.dim() not in (3, 4):
            self.fail(node, f"a {w.dim() - 2}-D convolution is not supported; Conv1d and Conv2d are")
        rank = w.dim()  # of the input activation: (N, C, L) for a (O, I, k) weight
        if (src.source.rank if isinstance(src, Affine) else src.rank) != rank:
            self.fail(node, f"a {rank - 2}-D convolution needs an "
                            f"{'(N, C, L)' if rank == 3 else '(N, C, H, W)'} input, got {list(_shape(x))}")
        k = tuple(w.shape[2:])
        dilation = _ints(dilation, rank - 2)
        if isinstance(padding, str):
            if padding == "valid":
                padding = (0,) * len(k)
            elif padding == "same" and all(s == 1 for s in _ints(stride, len(k))) and all(d % 2 for d in k):
                padding = tuple(d * (kk // 2) for kk, d in zip(k, dilation))
            else:
                self.fail(node, f"padding {padding!r} is not supported with kernel {k} and stride {stride}")
        padding = _ints(padding, len(k))
        cout, cin = w.shape[0], w.shape[1] * groups
        b = b if b is not None else torch.zeros(cout)
        if isinstance(src, Affine):
            if src.shifts and any(padding):
                a = self.act(node, x)  # a padded tap is real zero after the map, not before it
            else:
                (w, b), a = fold_conv(w, b, src, int(groups)), src.source
        else:
            a = src
        cls = QuantConv2d if rank == 4 else QuantConv1d
        e = self.add(node, cls, dict(in_channels=cin, out_channels=cout, kernel_size=list(k),
                                     stride=list(_ints(stride, len(k))), padding=list(padding),
                                     dilation=list(dilation), groups=int(groups), bias=True,
                                     weight_bits=self.weight_bits, act_bits=self.act_bits, **self.quant),
                     [a.entry], w, b)
        return _Act(e, rank)

    def linear(self, node, x, w, b):
        src = self.source(node, x)
        a = src.source if isinstance(src, Affine) else src
        if a.rank != 2 or len(_shape(x)) != 2:  # a global pool's (N, C, 1, 1) is rank 2 here, not in torch
            self.fail(node, f"a linear layer needs an (N, features) input, got {list(_shape(x))} "
                            "(flatten first: torch.flatten(x, 1))")
        w = self.const(node, w, "the weight")
        b = self.const(node, b, "the bias")
        if w.dim() != 2:
            self.fail(node, "the weight must be a matrix")
        b = b if b is not None else torch.zeros(w.shape[0])
        if isinstance(src, Affine):
            w, b = fold_linear(w, b, src)
        e = self.add(node, QuantLinear, dict(in_features=int(w.shape[1]), out_features=int(w.shape[0]), bias=True,
                                             weight_bits=self.weight_bits, act_bits=self.act_bits, **self.quant),
                     [a.entry], w, b)
        return _Act(e, 2)

    def batch_norm(self, node, x, gamma, beta, mean, var, eps):
        """Folded into the conv/linear before it when that layer feeds nothing else; anywhere else (before
        the first conv, after a ReLU) a per-channel affine map (:mod:`toolchain.ptq_affine`)."""
        mean, var = self.const(node, mean, "running_mean"), self.const(node, var, "running_var")
        if mean is None or var is None:
            self.fail(node, "batch norm without running statistics cannot be folded")
        gamma = self.const(node, gamma, "the weight")
        beta = self.const(node, beta, "the bias")
        return self.per_channel_map(node, x, *batch_norm_map(gamma, beta, mean, var, eps))

    def per_channel_map(self, node, x, scale: torch.Tensor, shift: torch.Tensor):
        """``y = scale * x + shift`` per channel: folded into the conv/linear producing ``x`` when that layer
        feeds nothing else and has no ReLU or clamp (its output channels scale and shift exactly), else a
        pending :class:`~toolchain.ptq_affine.Affine` (composed with one already pending)."""
        src = self.source(node, x)
        if isinstance(src, Affine):
            return src.then(scale, shift, node)
        e = src.entry
        if src.row or e.cls not in (QuantConv2d, QuantConv1d, QuantLinear) or not self.single_tail(src, x) \
                or e.kwargs.get("relu") or e.kwargs.get("clamp"):
            return Affine(src, scale, shift, node)
        w = e.weight.double() * scale.reshape(-1, *([1] * (e.weight.dim() - 1)))
        b = e.bias.double() * scale + shift
        e.weight, e.bias, e.tail = w.float(), b.float(), node
        return src

    def scale_shift(self, node, op: str):
        """``x - k``, ``x + k``, ``k + x``, ``x * k``, ``k * x``, ``x / k`` with a constant ``k`` per tensor or per
        channel: a per-channel affine map (the input normalisation ``(x - m) / s``, a constant gain)."""
        x, k = node.args[0], node.args[1]
        negate = op == "sub" and not isinstance(self.env.get(x), (_Act, Affine))  # k - x
        if op in ("add", "mul") or negate:
            if not isinstance(self.env.get(x), (_Act, Affine)):
                x, k = k, x
        if isinstance(k, torch.fx.Node) and isinstance(self.env.get(k), (_Act, Affine)):
            if op == "add":
                return self.add_op(node)
            self.fail(node, f"{op} of two activations is not supported, only by a constant (a per-channel "
                            "affine map) or a residual add (run_decompositions() writes hardswish and silu as "
                            "x * f(x): quantize the program torch.export.export returns, before decompositions)")
        src = self.source(node, x)
        if isinstance(src, _Act) and src.row:
            self.fail(node, "an affine map on a 1-D map viewed as (N, C, 1, L) is not supported")
        value = self.const(node, k, "the constant") if isinstance(k, torch.fx.Node) else k
        alpha = node.kwargs.get("alpha", 1)
        try:
            v = per_channel(value, _shape(node))
        except NotPerChannel as exc:
            self.fail(node, f"{exc}; only a per-tensor or per-channel constant is supported")
        if negate:  # k - alpha x
            scale, shift = -alpha * torch.ones_like(v), v
        elif op in ("add", "sub"):
            scale, shift = torch.ones_like(v), v * alpha * (1 if op == "add" else -1)
        else:
            if op == "div" and bool((v == 0).any()):
                self.fail(node, "division by zero")
            scale, shift = (v if op == "mul" else 1.0 / v), torch.zeros_like(v)
        return self.per_channel_map(node, x, scale, shift)

    def fusion_target(self, x):
        """``(node, activation)`` of the conv/linear/add a ReLU or clamp on ``x`` fuses into, walking
        back through single-use max pools (a monotone function commutes with the maximum) and the views
        around them; the activation is None when there is no such layer feeding nothing else."""
        src = x
        while (isinstance(src, torch.fx.Node) and isinstance(self.env.get(src), _Act)
               and self.env[src].entry.cls in (MaxPool2d, MaxPool1d)
               and self.single_tail(self.env[src], src)):
            src = self.env[src].entry.source
        s = self.env.get(src)
        if isinstance(s, Affine):  # a batch norm / affine map that became a layer for this very reader
            s = s.layer
        fusable = (isinstance(s, _Act) and s.entry.cls in (QuantConv2d, QuantConv1d, QuantLinear, QuantAdd, QuantConcat)
                   and self.single_tail(s, src))
        return src, (s if fusable else None)

    def fused(self, node, x, a: _Act, src, s: _Act) -> _Act:
        """``node`` fused into ``s``'s layer: it is now the last node of that layer (or of the pool after it)."""
        if src is x:
            s.entry.tail = node
        else:  # after the pool: the pool's output is this node's value
            a.entry.tail = node
        return a

    def after_pool(self, node, x, a: _Act, cls, kwargs) -> _Act | None:
        """A ReLU / clamp right after an average pool (it requantizes, but has no fused ReLU of its own in
        a QuantNet): a QuantReLU / QuantClamp layer, which conversion fuses into the pool's clamp, exact on
        its grid. None when ``x`` is not such a pool's only output."""
        if a.entry.cls not in (AvgPool2d, AvgPool1d, GlobalAvgPool) or not self.single_tail(a, x):
            return None
        return _Act(self.add(node, cls, kwargs, [a.entry]), a.rank)

    def relu(self, node):
        x = node.args[0]
        a = self.act(node, x)
        src, s = self.fusion_target(x)
        if s is None:
            pooled = self.after_pool(node, x, a, QuantReLU, {})
            if pooled is not None:
                return pooled
            self.fail(node, "relu must follow a conv, linear, add, cat or average pool (possibly through max "
                            "pooling) that feeds nothing else")
        s.entry.kwargs["relu"] = True
        return self.fused(node, x, a, src, s)

    def clamp(self, node, min_val, max_val):
        """ReLU6 / hardtanh / clamp with constant bounds: fused into the conv/linear/add before it
        when the bounds contain 0 (a clamp of its integers, docs/integer-contract.md), a QuantClamp
        after an average pool (fused at conversion), otherwise a lookup of ``clamp`` (a new grid)."""
        x = node.args[0]
        a = self.act(node, x)
        if any(v is not None and not isinstance(v, (int, float)) for v in (min_val, max_val)):
            self.fail(node, "only constant (number) bounds are supported")
        if min_val is not None and max_val is not None and min_val > max_val:
            self.fail(node, f"min {min_val} > max {max_val}")
        src, s = self.fusion_target(x)
        around_zero = (min_val is None or min_val <= 0) and (max_val is None or max_val >= 0)
        if s is None and around_zero:
            pooled = self.after_pool(node, x, a, QuantClamp, dict(min_val=min_val, max_val=max_val))
            if pooled is not None:
                return pooled
        if s is None or not around_zero:
            return self.activation(node, "clamp", {"min": min_val, "max": max_val})
        s.entry.kwargs["clamp"] = _narrow(s.entry.kwargs.get("clamp"), (min_val, max_val))
        return self.fused(node, x, a, src, s)

    def activation(self, node, function: str, params: dict):
        """An elementwise function: a QuantActivation (a Lookup table after conversion)."""
        a = self.act(node, node.args[0])
        try:
            params = resolve(function, params)
        except ModelError as exc:
            self.fail(node, str(exc))
        e = self.add(node, QuantActivation, dict(function=function, params=params, act_bits=self.act_bits,
                                                 **self.quant), [a.entry])
        return _Act(e, a.rank)

    def pool(self, node, kind, rank: int = 2):
        """``max_pool1d/2d`` and ``avg_pool1d/2d`` (ceil mode, ``count_include_pad`` as torch's) -> MaxPool1d/2d,
        AvgPool1d/2d. The core-ATen form pools a 1-D map as a row ``(N, C, 1, L)`` with kernel ``(1, k)``: a
        1-D pool again (its output stays a row until squeezed)."""
        x, k = node.args[0], node.args[1]
        a = self.act(node, x, row_ok=True)
        names = {"max": ("stride", "padding", "dilation", "ceil_mode"),
                 "avg": ("stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")}[kind]
        defaults = dict(stride=[], padding=0, dilation=1, ceil_mode=False, count_include_pad=True,
                        divisor_override=None)
        opts = dict(defaults)
        opts.update(zip(names, node.args[2:]))
        opts.update(node.kwargs)
        k = _ints(k, rank)
        stride = _ints(opts["stride"], rank) if opts["stride"] not in ([], (), None) else k
        padding, dilation = _ints(opts["padding"], rank), _ints(opts["dilation"], rank)
        one_d = rank == 1 or a.row
        if a.row:  # a 1-D pool written as 2-D over one row
            if k[0] != 1 or stride[0] != 1 or padding[0] != 0 or dilation[0] != 1:
                self.fail(node, f"a 2-D pool (kernel {list(k)}) over a 1-D map viewed as (N, C, 1, L)")
            k, stride, padding, dilation = k[1:], stride[1:], padding[1:], dilation[1:]
        elif a.rank != rank + 2:
            self.fail(node, f"{kind} pooling in {rank}-D needs an {'(N, C, L)' if rank == 1 else '(N, C, H, W)'} "
                            f"input, got {list(_shape(x))}")
        if kind == "max" and any(d != 1 for d in dilation):
            self.fail(node, f"max pooling with dilation {list(dilation)} is not supported; use dilation=1 (a dilated "
                            "convolution is supported)")
        if opts["divisor_override"] is not None:
            self.fail(node, "avg pooling with divisor_override is not supported; the divisor is the window's count "
                            "of taps (count_include_pad=True or False)")
        common = dict(kernel_size=list(k), stride=list(stride), padding=list(padding), ceil_mode=bool(opts["ceil_mode"]))
        if kind == "max":
            e = self.add(node, MaxPool1d if one_d else MaxPool2d, common, [a.entry], source=x)
        else:
            e = self.add(node, AvgPool1d if one_d else AvgPool2d,
                         dict(common, count_include_pad=bool(opts["count_include_pad"]), act_bits=self.act_bits,
                              **self.quant), [a.entry], source=x)
        out = _Act(e, 4 if a.row else rank + 2, a.row)
        indices = (aten.max_pool2d_with_indices.default, aten.max_pool1d_with_indices.default)
        return _Tuple({0: out}) if node.target in indices else out

    def gap(self, node, x, keepdim: bool):
        a = self.act(node, x, row_ok=True)
        if a.rank not in (3, 4):
            self.fail(node, "global average pooling needs an (N, C, L) or (N, C, H, W) input")
        e = self.add(node, GlobalAvgPool, dict(act_bits=self.act_bits, **self.quant), [a.entry])
        return _Act(e, 2)  # the QuantNet value is (N, C) even when the float one is (N, C, 1, 1)

    def adaptive(self, node, rank: int = 2):
        """``adaptive_avg_pool1d/2d``: to 1 (1x1) a global pool; to a size dividing the input, an AvgPool."""
        x, size = node.args[0], _ints(node.args[1], rank)
        if size == (1,) * rank:
            return self.gap(node, x, True)
        spatial = _shape(x)[2:]
        if len(spatial) != rank or any(s % o for s, o in zip(spatial, size)):
            self.fail(node, f"output size {list(size)} must be 1 or divide the input {list(spatial)}")
        k = [s // o for s, o in zip(spatial, size)]
        a = self.act(node, x)
        e = self.add(node, AvgPool2d if rank == 2 else AvgPool1d,
                     dict(kernel_size=k, stride=k, padding=[0] * rank, act_bits=self.act_bits, **self.quant),
                     [a.entry], source=x)
        return _Act(e, rank + 2)

    def mean(self, node):
        x, dims = node.args[0], node.args[1]
        keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
        rank = len(_shape(x))
        if rank not in (3, 4) or sorted(d % rank for d in dims) != list(range(2, rank)):
            self.fail(node, "mean is supported only over every axis after the channels (L, or H and W)")
        return self.gap(node, x, keepdim)

    def squeeze(self, node):
        """``squeeze`` / ``unsqueeze`` that change no value: a 1-D map as a row and back (around a 1-D pool),
        and the unit axes of a global pool's ``(N, C, 1, 1)`` (its QuantNet value is ``(N, C)`` already)."""
        a = self.act(node, node.args[0], row_ok=True)
        ins, outs = _shape(node.args[0]), _shape(node)
        if node.target.overloadpacket is aten.unsqueeze:
            if a.rank == 3 and len(outs) == 4 and outs[2] == 1 and node.args[1] % 4 == 2:
                return self.view(node, a, 4, row=True)
        elif a.row and len(outs) == 3 and ins[2] == 1:
            return self.view(node, a, 3)
        elif a.rank == 2 and not a.row and len(outs) >= 2 and math.prod(outs[1:]) == outs[1]:
            return a  # (N, C, 1[, 1]) -> fewer unit axes: the same (N, C) values
        self.fail(node, f"{_op_name(node)} {list(ins)} -> {list(outs)} is supported only after a global pool or "
                        "around a 1-D pool")

    def flatten(self, node):
        x = node.args[0]
        a = self.act(node, x)
        ins, outs = _shape(x), _shape(node)
        ok = len(outs) == 2 and len(ins) >= 2 and ins[0] == outs[0]
        if ok:
            try:
                ok = math.prod(int(d) for d in ins[1:]) == int(outs[1])
            except Exception:
                ok = False
        if not ok:
            self.fail(node, f"only a reshape to (N, -1) is supported, got {list(ins)} -> {list(outs)}")
        if a.rank == 2:
            return a  # already flat (after a global average pool or a linear): free
        e = self.add(node, Flatten, {}, [a.entry])
        return _Act(e, 2)

    def add_op(self, node):
        x, y = node.args[0], node.args[1]
        if node.kwargs.get("alpha", 1) != 1:
            self.fail(node, "add with alpha != 1 is not supported")
        a, b = self.act(node, x), self.act(node, y)
        if _shape(x) != _shape(y) or a.rank != b.rank:
            self.fail(node, f"residual add of shapes {list(_shape(x))} and {list(_shape(y))} (no broadcasting)")
        e = self.add(node, QuantAdd, dict(act_bits=self.act_bits, **self.quant), [a.entry, b.entry])
        return _Act(e, a.rank)

    def cat(self, node):
        """``torch.cat`` of activations along channels -> ``QuantConcat`` (each input requantized onto
        its grid)."""
        tensors, dim = node.args[0], _arg(node, 1, "dim", 0)
        rank = len(_shape(node))
        if rank < 2 or dim % rank != 1:
            self.fail(node, f"cat along dim {dim} of a rank-{rank} tensor: only along channels (dim 1) is supported; "
                            "concatenate along dim 1 (torch.cat(xs, dim=1))")
        acts = [self.act(node, t) for t in tensors]
        if len(acts) < 2:
            self.fail(node, "cat of a single tensor: pass it on instead")
        if len({a.rank for a in acts}) != 1:
            self.fail(node, f"cat of tensors of shapes {[list(_shape(t)) for t in tensors]}")
        e = self.add(node, QuantConcat, dict(act_bits=self.act_bits, **self.quant), [a.entry for a in acts])
        return _Act(e, acts[0].rank)

    def upsample(self, node):
        """``upsample_nearest2d`` (and ``nearest-exact``, equal for integer factors) -> ``Upsample``:
        the factors are the output size over the input size, and must be integers (any given
        ``scale_factor`` too: torch indexes with it)."""
        x = node.args[0]
        a = self.act(node, x)
        ins, outs = _shape(x), _shape(node)
        if a.rank != 4 or len(ins) != 4:
            self.fail(node, "upsampling needs an (N, C, H, W) input")
        given = [v for v in _upsample_scales(node) if v is not None]
        ratios = [outs[i] / ins[i] for i in (2, 3)]
        if any(float(r) != int(r) for r in ratios) or any(float(v) not in ratios for v in given):
            self.fail(node, f"scale factor {given or ratios} ({list(ins[2:])} -> {list(outs[2:])}) is not an integer; "
                            "nearest upsampling by an integer factor (e.g. scale_factor=2) is supported")
        e = self.add(node, Upsample, dict(scale_factor=[int(r) for r in ratios]), [a.entry])
        return _Act(e, 4)

    def identity(self, node):
        if node.target is aten.dropout.default and len(node.args) > 2 and node.args[2]:
            self.fail(node, "dropout in training mode: export the model in eval() mode")
        return self.act(node, node.args[0])


def _arg(node, i, name, default=None):
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(name, default)


def _upsample_scales(node) -> list:
    """The scale factors an upsampling node was given (None where it was given a size instead)."""
    if node.target.overloadpacket in (aten.upsample_nearest2d, aten._upsample_nearest_exact2d) and \
            node.target._overloadname == "vec":
        return list(_arg(node, 2, "scale_factors") or [None])
    return [_arg(node, 2, "scales_h"), _arg(node, 3, "scales_w")]


def _not_nearest(b, n):
    mode = _op_name(n).removeprefix("upsample_").removesuffix("2d")
    b.fail(n, f"{mode} upsampling is not supported: it interpolates new values; use mode='nearest' with an "
              "integer scale factor")


def _narrow(current, bounds):
    """Two clamps in a row: the intersection (None is an open side)."""
    if current is None:
        return tuple(bounds)
    lows = [v for v in (current[0], bounds[0]) if v is not None]
    highs = [v for v in (current[1], bounds[1]) if v is not None]
    return (max(lows) if lows else None, min(highs) if highs else None)


def _function(name: str, *params: tuple[str, int, object]):
    """A handler mapping an ATen activation onto ``QuantActivation(name)``; ``params`` are
    ``(parameter, argument position, default)``."""
    return lambda b, n: b.activation(n, name, {k: _arg(n, i, k, d) for k, i, d in params})


def _not_exported(b, n):
    b.fail(n, NOT_A_LOOKUP["log_softmax" if "log_softmax" in _op_name(n) else "softmax"])


def _conv2d(b, n):
    return b.conv(n, n.args[0], n.args[1], _arg(n, 2, "bias"), _arg(n, 3, "stride", 1), _arg(n, 4, "padding", 0),
                  _arg(n, 5, "dilation", 1), _arg(n, 6, "groups", 1))


def _convolution(b, n):
    x, w, bias, stride, padding, dilation, transposed, _, groups = n.args[:9]
    return b.conv(n, x, w, bias, stride, padding, dilation, groups, transposed)


def _addmm(b, n):
    bias, x, wt = n.args[:3]
    if n.kwargs.get("beta", 1) != 1 or n.kwargs.get("alpha", 1) != 1:
        b.fail(n, "addmm with alpha/beta != 1 is not supported")
    return _mm_common(b, n, x, wt, bias)


def _mm_common(b, n, x, wt, bias):
    wt = b.const(n, wt, "the weight")  # (in, out): linear() takes (out, in)
    if wt.dim() != 2:
        b.fail(n, "the weight must be a matrix")
    return b.linear(n, x, None if wt is None else wt.t().contiguous(), b.const(n, bias, "the bias"))


def _refuse_training_bn(b, n, training) -> None:
    """Batch statistics make the output of a sample depend on its batch; folding the running
    statistics instead would quietly compute another function."""
    if training is not False:
        b.fail(n, "batch norm in training mode (it normalises with batch statistics): "
                  "export the model in eval() mode")


def _batch_norm(b, n):
    # batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn)
    _refuse_training_bn(b, n, _arg(n, 5, "training"))
    return b.batch_norm(n, n.args[0], n.args[1], n.args[2], n.args[3], n.args[4], n.args[7])


def _native_batch_norm(b, n):
    # _native_batch_norm_legit[_functional] / native_batch_norm(input, weight, bias, running_mean,
    # running_var, training, momentum, eps) -> (out, save_mean, save_rstd[, new_mean, new_var])
    _refuse_training_bn(b, n, _arg(n, 5, "training"))
    return _Tuple({0: b.batch_norm(n, n.args[0], n.args[1], n.args[2], n.args[3], n.args[4], n.args[7])})


def _bn_no_stats(b, n):
    # _native_batch_norm_legit.no_stats(input, weight, bias, training, momentum, eps)
    b.fail(n, "batch norm without running statistics (track_running_stats=False) normalises with batch "
              "statistics and cannot be folded")


def _bn_no_training(b, n):
    # _native_batch_norm_legit_no_training(input, weight, bias, running_mean, running_var, momentum, eps)
    return _Tuple({0: b.batch_norm(n, n.args[0], n.args[1], n.args[2], n.args[3], n.args[4], n.args[6])})


def _refuse(why: str):
    """A handler refusing an op by name, with the nearest supported alternative."""
    return lambda b, n: b.fail(n, why)


_PADDING_MODES = ("padding modes other than zeros (reflect, replicate, circular) are not supported; use "
                  "padding_mode='zeros' (the conv's own padding)")

_HANDLERS = {
    aten.conv1d.default: _conv2d,
    aten.conv1d.padding: _conv2d,
    aten.conv2d.default: _conv2d,
    aten.conv2d.padding: _conv2d,
    aten.conv_transpose1d.default: _refuse("transposed convolution is not supported; nearest upsampling by an "
                                           "integer factor followed by a conv is"),
    aten.conv_transpose2d.input: _refuse("transposed convolution is not supported; nearest upsampling by an "
                                         "integer factor (nn.Upsample(scale_factor=2)) followed by a conv is"),
    aten.reflection_pad1d.default: _refuse(_PADDING_MODES),
    aten.reflection_pad2d.default: _refuse(_PADDING_MODES),
    aten.replication_pad1d.default: _refuse(_PADDING_MODES),
    aten.replication_pad2d.default: _refuse(_PADDING_MODES),
    aten.pad.default: _refuse("explicit padding (F.pad) is not supported; use the conv's or pool's own padding "
                              "(zeros)"),
    aten.constant_pad_nd.default: _refuse("explicit padding (F.pad) is not supported; use the conv's or pool's own "
                                          "padding (zeros)"),
    aten.convolution.default: _convolution,
    aten.linear.default: lambda b, n: b.linear(n, n.args[0], n.args[1], _arg(n, 2, "bias")),
    aten.addmm.default: _addmm,
    aten.mm.default: lambda b, n: _mm_common(b, n, n.args[0], n.args[1], None),
    aten.relu.default: lambda b, n: b.relu(n),
    aten.relu6.default: lambda b, n: b.clamp(n, 0.0, 6.0),
    aten.hardtanh.default: lambda b, n: b.clamp(n, _arg(n, 1, "min_val", -1.0), _arg(n, 2, "max_val", 1.0)),
    aten.clamp.default: lambda b, n: b.clamp(n, _arg(n, 1, "min"), _arg(n, 2, "max")),
    aten.clamp_min.default: lambda b, n: b.clamp(n, _arg(n, 1, "min"), None),
    aten.clamp_max.default: lambda b, n: b.clamp(n, None, _arg(n, 1, "max")),
    aten.sigmoid.default: _function("sigmoid"),
    aten.tanh.default: _function("tanh"),
    aten.hardsigmoid.default: _function("hardsigmoid"),
    aten.hardswish.default: _function("hardswish"),
    aten.silu.default: _function("silu"),
    aten.gelu.default: _function("gelu", ("approximate", 1, "none")),
    aten.elu.default: _function("elu", ("alpha", 1, 1.0), ("scale", 2, 1.0), ("input_scale", 3, 1.0)),
    aten.selu.default: _function("selu"),
    aten.celu.default: _function("celu", ("alpha", 1, 1.0)),
    aten.leaky_relu.default: _function("leaky_relu", ("negative_slope", 1, 0.01)),
    aten.softplus.default: _function("softplus", ("beta", 1, 1.0), ("threshold", 2, 20.0)),
    aten.mish.default: _function("mish"),
    aten.log_sigmoid.default: _function("logsigmoid"),
    aten.softmax.int: _not_exported,
    aten._softmax.default: _not_exported,
    aten.log_softmax.int: _not_exported,
    aten._log_softmax.default: _not_exported,
    aten.batch_norm.default: _batch_norm,
    aten._native_batch_norm_legit_no_training.default: _bn_no_training,
    aten._native_batch_norm_legit.default: _native_batch_norm,
    aten._native_batch_norm_legit_functional.default: _native_batch_norm,
    aten._native_batch_norm_legit.no_stats: _bn_no_stats,
    aten.native_batch_norm.default: _native_batch_norm,
    aten.max_pool1d.default: lambda b, n: b.pool(n, "max", 1),
    aten.max_pool1d_with_indices.default: lambda b, n: b.pool(n, "max", 1),
    aten.max_pool2d.default: lambda b, n: b.pool(n, "max"),
    aten.max_pool2d_with_indices.default: lambda b, n: b.pool(n, "max"),
    aten.avg_pool1d.default: lambda b, n: b.pool(n, "avg", 1),
    aten.avg_pool2d.default: lambda b, n: b.pool(n, "avg"),
    aten.adaptive_avg_pool1d.default: lambda b, n: b.adaptive(n, 1),
    aten.adaptive_avg_pool2d.default: lambda b, n: b.adaptive(n),
    aten._adaptive_avg_pool2d.default: lambda b, n: b.adaptive(n),
    aten.squeeze.dim: lambda b, n: b.squeeze(n),
    aten.squeeze.dims: lambda b, n: b.squeeze(n),
    aten.squeeze.default: lambda b, n: b.squeeze(n),
    aten.unsqueeze.default: lambda b, n: b.squeeze(n),
    aten.sub.Tensor: lambda b, n: b.scale_shift(n, "sub"),
    aten.mul.Tensor: lambda b, n: b.scale_shift(n, "mul"),
    aten.div.Tensor: lambda b, n: b.scale_shift(n, "div"),
    aten.mean.dim: lambda b, n: b.mean(n),
    aten.flatten.using_ints: lambda b, n: b.flatten(n),
    aten.view.default: lambda b, n: b.flatten(n),
    aten.reshape.default: lambda b, n: b.flatten(n),
    aten._unsafe_view.default: lambda b, n: b.flatten(n),
    aten.add.Tensor: lambda b, n: b.scale_shift(n, "add"),
    aten.cat.default: lambda b, n: b.cat(n),
    aten.concat.default: lambda b, n: b.cat(n),
    aten.upsample_nearest2d.vec: lambda b, n: b.upsample(n),
    aten.upsample_nearest2d.default: lambda b, n: b.upsample(n),
    aten._upsample_nearest_exact2d.vec: lambda b, n: b.upsample(n),
    aten._upsample_nearest_exact2d.default: lambda b, n: b.upsample(n),
    aten.upsample_bilinear2d.vec: _not_nearest,
    aten.upsample_bilinear2d.default: _not_nearest,
    aten.upsample_bicubic2d.vec: _not_nearest,
    aten.upsample_bicubic2d.default: _not_nearest,
    aten.dropout.default: lambda b, n: b.identity(n),
    aten.clone.default: lambda b, n: b.identity(n),
    aten.contiguous.default: lambda b, n: b.identity(n),
    aten.alias.default: lambda b, n: b.identity(n),
    aten.detach.default: lambda b, n: b.identity(n),
}


# -- calibration and the public entry points ------------------------------------------------

def calibrate(model: QuantNet, x: torch.Tensor, batch_size: int = CALIBRATION_BATCH) -> QuantNet:
    """Observe float activation ranges on ``x`` (train mode, quantization off), then eval.

    The PTQ model holds no batch norm (folded at build time), so nothing but the
    quantizers' statistics changes here.
    """
    if len(x) == 0:
        raise PtqError("the calibration set is empty")
    try:
        check_finite(x.detach().numpy(), "the calibration data")
    except FeedError as exc:
        raise PtqError(str(exc)) from None
    set_quantization(model, False)
    model.train()
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                model(x[i:i + batch_size])
    except CalibrationError as exc:  # e.g. an activation that overflows to inf in float32
        raise PtqError(f"calibration: {exc}") from None
    set_quantization(model, True)
    return model.eval()



def float_outputs(program, x: torch.Tensor) -> torch.Tensor:
    """The float program's outputs on ``x``, in chunks of the exported batch size (padded)."""
    inp = _user_inputs(program)[0]
    try:
        batch = int(inp.meta["val"].shape[0])
    except Exception:
        batch = 1
    module = program.module()
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            chunk = x[i:i + batch]
            n = len(chunk)
            if n < batch:
                chunk = torch.cat([chunk, chunk.new_zeros(batch - n, *chunk.shape[1:])])
            y = module(chunk)
            y = y[0] if isinstance(y, (tuple, list)) else y
            outs.append(y[:n].reshape(n, -1))
    return torch.cat(outs)


def top1_agreement(program, model: QuantNet, x: torch.Tensor) -> float:
    """Fraction of samples where the float program and the PTQ model (fake-quant) pick the same class."""
    ref = float_outputs(program, x)
    with torch.no_grad():
        got = model.eval()(x).reshape(len(x), -1)
    return float((ref.argmax(1) == got.argmax(1)).float().mean())


def quantize_exported(program: torch.export.ExportedProgram, x_calib: torch.Tensor, weight_bits: int = 8,
                      act_bits: int = 8, power_of_two: bool = False) -> QuantNet:
    """Map ``program`` onto a QuantNet (see the module docstring), calibrate on ``x_calib``.

    ``power_of_two``: every quantizer in power-of-two mode (:mod:`toolchain.quant`), the
    hls4ml backend's exact mode. The float program vs fake-quant PTQ model top-1 agreement
    on ``x_calib`` is logged and stored as ``model.ptq_info =
    {"float_program_vs_fake_quant_top1_agreement": float, "calibration_samples": int}``.
    """
    from exporters.grid import check_bits

    check_bits(weight_bits, "--weight-bits")
    check_bits(act_bits, "--act-bits")
    x_calib = torch.as_tensor(x_calib, dtype=torch.float32)
    shape = input_shape(program)
    if tuple(x_calib.shape[1:]) != shape:
        raise PtqError(f"calibration data has shape {tuple(x_calib.shape)}, the program needs (N, {shape})")
    try:
        model = _Builder(program, weight_bits, act_bits, power_of_two).build()
    except (ValueError, TypeError, RuntimeError) as exc:  # a module refusing the mapped arguments
        raise PtqError(f"cannot build the quantized network: {exc}".splitlines()[0]) from None
    calibrate(model, x_calib)
    agreement = top1_agreement(program, model, x_calib)
    model.ptq_info = {"float_program_vs_fake_quant_top1_agreement": agreement,
                      "calibration_samples": int(len(x_calib))}
    log.info("PTQ (w%d/a%d): float program vs fake-quant top-1 agreement %.4f on %d calibration samples",
             weight_bits, act_bits, agreement, len(x_calib))
    return model


def quantize_for_export(path: str | Path, calibration: str | Path | None, samples: int | None = None,
                        weight_bits: int = 8, act_bits: int = 8, power_of_two: bool = False):
    """``export-fpga`` on a ``.pt2``: ``(QuantNet, x, y, float_logits)``: the calibration arrays
    it used and the float program's outputs on ``x`` (what the report compares the integers with)."""
    from toolchain.export_pipeline import load_calibration

    if calibration is None:
        raise PtqError(f"{path}: a .pt2 float model needs --calibration FILE.npz for post-training quantization")
    program = load_float_program(path)
    x, y = load_calibration(calibration, input_shape(program), samples)
    model = quantize_exported(program, torch.from_numpy(x), weight_bits, act_bits, power_of_two)
    return model, x, y, float_outputs(program, torch.from_numpy(x)).numpy()
