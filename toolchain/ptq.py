"""Post-training quantization of a plain float network saved with ``torch.export.save`` (``.pt2``).

``quantize_exported(program, x_calib)`` walks the exported program's ATen graph once and
maps the ops of a plain CNN/MLP onto Foldline layers (a :class:`~toolchain.nn.QuantNet`),
copying weights and biases, then calibrates the activation ranges on ``x_calib``:

* ``conv2d`` / ``convolution`` (stride, padding, groups; dilation 1) -> ``QuantConv2d``;
  ``linear`` / ``addmm`` / ``mm`` -> ``QuantLinear``.
* ``batch_norm`` (and ``_native_batch_norm_legit_no_training``) directly after a conv/linear
  that feeds nothing else is **folded here**, in float64, into that layer's weight and bias
  (running statistics). The QuantNet has no BN at all, so calibration cannot touch BN
  statistics. A batch norm in **training mode** (``training=True`` in ``batch_norm``,
  ``_native_batch_norm_legit[_functional]``, ``native_batch_norm``: the model was exported
  in ``train()`` mode) normalises with batch statistics, a different function: refused.
* ``relu`` is fused (``relu=True``) into the conv/linear/add before it, also through
  max pools (``relu(maxpool(y)) == maxpool(relu(y))``); that layer must feed nothing else.
* ``max_pool2d`` (dilation 1, no ceil mode) -> ``MaxPool2d``; ``avg_pool2d`` (no ceil
  mode, ``count_include_pad``) -> ``AvgPool2d``; ``adaptive_avg_pool2d`` to 1x1 and
  ``mean`` over H, W -> ``GlobalAvgPool`` (to k x k when H, W divide: ``AvgPool2d``).
* ``flatten`` / ``view`` / ``reshape`` to ``(N, -1)`` -> ``Flatten`` (free after a
  global average pool); ``add`` of two activations of one shape -> ``QuantAdd``. A linear
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

from exporters.errors import FoldlineError
from fpga_sim.errors import FeedError
from fpga_sim.inputs import check_finite
from toolchain.nn import (AvgPool2d, Flatten, GlobalAvgPool, MaxPool2d, QuantAdd, QuantConv2d, QuantInput,
                          QuantLinear, QuantNet, set_quantization)
from toolchain.quant import CalibrationError

log = logging.getLogger(__name__)

CALIBRATION_BATCH = 256
IO_BITS = 8  # network input and output grids
aten = torch.ops.aten

SUPPORTED_OPS = ("conv2d", "convolution", "linear", "addmm", "mm", "relu", "batch_norm", "max_pool2d",
                 "avg_pool2d", "adaptive_avg_pool2d", "mean (over H, W)", "flatten", "view", "reshape",
                 "add (residual)", "dropout (eval)", "clone", "contiguous")


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
    if not isinstance(val, torch.Tensor) or val.dim() not in (2, 4):
        raise PtqError("the program's input must be a tensor of shape (N, C, H, W) or (N, F)")
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


@dataclass
class _Act:
    """An activation: the QuantNet layer producing it and that layer's output rank."""

    entry: _Entry
    rank: int


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

    def act(self, node, arg) -> _Act:
        v = self.env.get(arg) if isinstance(arg, torch.fx.Node) else None
        if not isinstance(v, _Act):
            self.fail(node, "expected an activation input (a tensor computed from the network input)")
        return v

    def const(self, node, arg, what: str):
        if arg is None or isinstance(arg, torch.Tensor):
            return arg
        v = self.env.get(arg) if isinstance(arg, torch.fx.Node) else None
        if not isinstance(v, torch.Tensor):
            self.fail(node, f"{what} must be a stored tensor (a parameter or constant)")
        return v

    def add(self, node, cls, kwargs, inputs, weight=None, bias=None) -> _Entry:
        names = {e.name for e in self.entries}
        name = node.name if node.name.isidentifier() and node.name != "input" else f"layer_{len(self.entries)}"
        while name in names:
            name += "_"
        e = _Entry(name, cls, kwargs, [i.name for i in inputs], weight, bias, tail=node)
        self.entries.append(e)
        return e

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
        a = self.env.get(outs[0])
        if not isinstance(a, _Act) or a.rank != 2:
            self.fail(node, "the network's output must be an (N, classes) activation")
        if a.entry.cls not in (QuantConv2d, QuantLinear, QuantAdd):
            self.fail(node, f"the output must come from a conv, linear or add, not {a.entry.cls.__name__}")
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
                if item.entry.tail is args[0] and len(args[0].users) == 1:
                    item.entry.tail = node  # the getitem is now the layer's last node (for fusion)
                return item
            if isinstance(src, (tuple, list)):
                return src[args[1]]
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
        a = self.act(node, x)
        if a.rank != 4:
            self.fail(node, "a convolution needs an (N, C, H, W) input")
        w = self.const(node, w, "the weight")
        b = self.const(node, b, "the bias")
        if transposed:
            self.fail(node, "transposed convolution is not supported")
        if w.dim() != 4:
            self.fail(node, "only 2-D convolutions are supported")
        if any(d != 1 for d in _ints(dilation)):
            self.fail(node, f"dilation {list(_ints(dilation))} is not supported (only 1)")
        k = tuple(w.shape[2:])
        if isinstance(padding, str):
            if padding == "valid":
                padding = (0, 0)
            elif padding == "same" and all(s == 1 for s in _ints(stride)) and all(d % 2 for d in k):
                padding = (k[0] // 2, k[1] // 2)
            else:
                self.fail(node, f"padding {padding!r} is not supported with kernel {k} and stride {stride}")
        cout, cin = w.shape[0], w.shape[1] * groups
        e = self.add(node, QuantConv2d, dict(in_channels=cin, out_channels=cout, kernel_size=list(k),
                                             stride=list(_ints(stride)), padding=list(_ints(padding)),
                                             groups=int(groups), bias=True, weight_bits=self.weight_bits,
                                             act_bits=self.act_bits, **self.quant),
                     [a.entry], w, b if b is not None else torch.zeros(cout))
        return _Act(e, 4)

    def linear(self, node, x, w, b):
        a = self.act(node, x)
        if a.rank != 2 or len(_shape(x)) != 2:  # a global pool's (N, C, 1, 1) is rank 2 here, not in torch
            self.fail(node, f"a linear layer needs an (N, features) input, got {list(_shape(x))} "
                            "(flatten first: torch.flatten(x, 1))")
        w = self.const(node, w, "the weight")
        b = self.const(node, b, "the bias")
        if w.dim() != 2:
            self.fail(node, "the weight must be a matrix")
        e = self.add(node, QuantLinear, dict(in_features=int(w.shape[1]), out_features=int(w.shape[0]), bias=True,
                                             weight_bits=self.weight_bits, act_bits=self.act_bits, **self.quant),
                     [a.entry], w, b if b is not None else torch.zeros(w.shape[0]))
        return _Act(e, 2)

    def batch_norm(self, node, x, gamma, beta, mean, var, eps):
        a = self.act(node, x)
        e = a.entry
        if e.cls not in (QuantConv2d, QuantLinear) or not self.single_tail(a, x) or e.kwargs.get("relu"):
            self.fail(node, "batch norm must directly follow a conv/linear that feeds nothing else")
        mean, var = self.const(node, mean, "running_mean"), self.const(node, var, "running_var")
        if mean is None or var is None:
            self.fail(node, "batch norm without running statistics cannot be folded")
        gamma = self.const(node, gamma, "the weight")
        beta = self.const(node, beta, "the bias")
        g = (torch.ones_like(mean) if gamma is None else gamma).double() / torch.sqrt(var.double() + float(eps))
        w = e.weight.double() * g.reshape(-1, *([1] * (e.weight.dim() - 1)))
        b = (e.bias.double() - mean.double()) * g + (0.0 if beta is None else beta.double())
        e.weight, e.bias, e.tail = w.float(), b.float(), node
        return a

    def relu(self, node):
        x = node.args[0]
        a = self.act(node, x)
        src = x
        # relu commutes with max pooling: walk back through single-use max pools
        while (isinstance(src, torch.fx.Node) and self.env.get(src) is not None
               and isinstance(self.env[src], _Act) and self.env[src].entry.cls is MaxPool2d
               and self.env[src].entry.tail is src and len(src.users) == 1):
            src = src.args[0]
        s = self.env.get(src)
        if (not isinstance(s, _Act) or s.entry.cls not in (QuantConv2d, QuantLinear, QuantAdd)
                or not self.single_tail(s, src)):
            self.fail(node, "relu must follow a conv, linear or add (possibly through max pooling) "
                            "that feeds nothing else")
        s.entry.kwargs["relu"] = True
        if src is x:
            s.entry.tail = node
        else:  # relu after the pool: the pool's output is this node's value
            a.entry.tail = node
        return a

    def pool(self, node, kind):
        x, k = node.args[0], node.args[1]
        a = self.act(node, x)
        if a.rank != 4:
            self.fail(node, "pooling needs an (N, C, H, W) input")
        names = {"max": ("stride", "padding", "dilation", "ceil_mode"),
                 "avg": ("stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")}[kind]
        defaults = dict(stride=[], padding=0, dilation=1, ceil_mode=False, count_include_pad=True,
                        divisor_override=None)
        opts = dict(defaults)
        opts.update(zip(names, node.args[2:]))
        opts.update(node.kwargs)
        k = _ints(k)
        stride = _ints(opts["stride"]) if opts["stride"] not in ([], (), None) else k
        padding = _ints(opts["padding"])
        if opts["ceil_mode"]:
            self.fail(node, "ceil_mode=True is not supported")
        if kind == "max":
            if any(d != 1 for d in _ints(opts["dilation"])):
                self.fail(node, "dilation other than 1 is not supported")
            e = self.add(node, MaxPool2d, dict(kernel_size=list(k), stride=list(stride), padding=list(padding)),
                         [a.entry])
        else:
            if opts["divisor_override"] is not None or (not opts["count_include_pad"] and any(padding)):
                self.fail(node, "only count_include_pad=True and no divisor_override are supported")
            e = self.add(node, AvgPool2d, dict(kernel_size=list(k), stride=list(stride), padding=list(padding),
                                               act_bits=self.act_bits, **self.quant), [a.entry])
        out = _Act(e, 4)
        return _Tuple({0: out}) if node.target is aten.max_pool2d_with_indices.default else out

    def gap(self, node, x, keepdim: bool):
        a = self.act(node, x)
        if a.rank != 4:
            self.fail(node, "global average pooling needs an (N, C, H, W) input")
        e = self.add(node, GlobalAvgPool, dict(act_bits=self.act_bits, **self.quant), [a.entry])
        return _Act(e, 2)  # the QuantNet value is (N, C) even when the float one is (N, C, 1, 1)

    def adaptive(self, node):
        x, size = node.args[0], _ints(node.args[1])
        if size == (1, 1):
            return self.gap(node, x, True)
        h, w = _shape(x)[2:] if len(_shape(x)) == 4 else (None, None)
        if h is None or h % size[0] or w % size[1]:
            self.fail(node, f"output size {list(size)} must be 1x1 or divide the input {h}x{w}")
        k = (h // size[0], w // size[1])
        a = self.act(node, x)
        e = self.add(node, AvgPool2d, dict(kernel_size=list(k), stride=list(k), padding=[0, 0],
                                           act_bits=self.act_bits, **self.quant), [a.entry])
        return _Act(e, 4)

    def mean(self, node):
        x, dims = node.args[0], node.args[1]
        keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
        rank = len(_shape(x))
        if rank != 4 or sorted(d % 4 for d in dims) != [2, 3]:
            self.fail(node, "mean is supported only over H and W of an (N, C, H, W) tensor")
        return self.gap(node, x, keepdim)

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
        if not (isinstance(self.env.get(x), _Act) and isinstance(self.env.get(y), _Act)):
            self.fail(node, "only the add of two activations (a residual) is supported")
        a, b = self.act(node, x), self.act(node, y)
        if _shape(x) != _shape(y) or a.rank != b.rank:
            self.fail(node, f"residual add of shapes {list(_shape(x))} and {list(_shape(y))} (no broadcasting)")
        e = self.add(node, QuantAdd, dict(act_bits=self.act_bits, **self.quant), [a.entry, b.entry])
        return _Act(e, a.rank)

    def identity(self, node):
        if node.target is aten.dropout.default and len(node.args) > 2 and node.args[2]:
            self.fail(node, "dropout in training mode: export the model in eval() mode")
        return self.act(node, node.args[0])


def _arg(node, i, name, default=None):
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(name, default)


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


_HANDLERS = {
    aten.conv2d.default: _conv2d,
    aten.conv2d.padding: _conv2d,
    aten.convolution.default: _convolution,
    aten.linear.default: lambda b, n: b.linear(n, n.args[0], n.args[1], _arg(n, 2, "bias")),
    aten.addmm.default: _addmm,
    aten.mm.default: lambda b, n: _mm_common(b, n, n.args[0], n.args[1], None),
    aten.relu.default: lambda b, n: b.relu(n),
    aten.batch_norm.default: _batch_norm,
    aten._native_batch_norm_legit_no_training.default: _bn_no_training,
    aten._native_batch_norm_legit.default: _native_batch_norm,
    aten._native_batch_norm_legit_functional.default: _native_batch_norm,
    aten._native_batch_norm_legit.no_stats: _bn_no_stats,
    aten.native_batch_norm.default: _native_batch_norm,
    aten.max_pool2d.default: lambda b, n: b.pool(n, "max"),
    aten.max_pool2d_with_indices.default: lambda b, n: b.pool(n, "max"),
    aten.avg_pool2d.default: lambda b, n: b.pool(n, "avg"),
    aten.adaptive_avg_pool2d.default: lambda b, n: b.adaptive(n),
    aten._adaptive_avg_pool2d.default: lambda b, n: b.adaptive(n),
    aten.mean.dim: lambda b, n: b.mean(n),
    aten.flatten.using_ints: lambda b, n: b.flatten(n),
    aten.view.default: lambda b, n: b.flatten(n),
    aten.reshape.default: lambda b, n: b.flatten(n),
    aten._unsafe_view.default: lambda b, n: b.flatten(n),
    aten.add.Tensor: lambda b, n: b.add_op(n),
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
