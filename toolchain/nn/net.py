"""QuantNet: a quantized network whose architecture is plain data.

A QuantNet is an ordered list of named layers; each layer reads the outputs of earlier
layers by name (the previous layer by default). The first layer is a
:class:`~toolchain.nn.layers.QuantInput` reading the float network input. ``spec()``
returns the architecture as dicts/lists/str/int/float (no code), ``from_spec`` rebuilds
it; checkpoints, conversion and channel pruning all walk this one explicit graph.

>>> from toolchain.nn import QuantInput, QuantLinear
>>> net = QuantNet([("x", QuantInput()), ("fc", QuantLinear(4, 2, signed_output=True))], input_shape=(4,))
>>> net(torch.ones(3, 4)).shape
torch.Size([3, 2])
>>> QuantNet.from_spec(net.spec()).spec() == net.spec()
True
"""

from __future__ import annotations

import torch
from torch import nn

from exporters.errors import ModelError
from toolchain.nn.layers import (AvgPool2d, Flatten, GlobalAvgPool, MaxPool2d, QuantActivation, QuantAdd, QuantClamp,
                                 QuantConcat, QuantInput, QuantReLU, Upsample)
from toolchain.nn.mac import QuantConv2d, QuantLinear, _QuantMac
from toolchain.nn.one_d import AvgPool1d, MaxPool1d, QuantConv1d
from toolchain.quant import CalibrationError, QuantTensor, _Quantizer

SPEC_FORMAT = "foldline-net/1"
RESERVED_NAMES = frozenset({"input"})  # the ONNX graph input's name

#: Every layer type a QuantNet may hold, by the name its spec uses (explicit: a typo fails at import).
LAYER_TYPES: dict[str, type[nn.Module]] = {
    cls.__name__: cls
    for cls in (QuantInput, QuantConv2d, QuantLinear, QuantReLU, QuantAdd, MaxPool2d, AvgPool2d, GlobalAvgPool,
                Flatten, QuantClamp, QuantActivation, QuantConcat, Upsample, QuantConv1d, MaxPool1d, AvgPool1d)
}


class QuantNet(nn.Module):
    """A graph of quantized layers in topological order; ``forward`` returns the float output."""

    def __init__(self, layers, input_shape, name: str = "foldline_model") -> None:
        super().__init__()
        self.name = str(name)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.layers = nn.ModuleDict()
        self.layer_inputs: dict[str, tuple[str, ...]] = {}
        previous = None
        for entry in layers:
            lname, module = entry[0], entry[1]
            inputs = tuple(entry[2]) if len(entry) > 2 and entry[2] is not None else (
                () if previous is None else (previous,))
            self._add(lname, module, inputs)
            previous = lname
        if not self.layers:
            raise ModelError("a QuantNet needs at least a QuantInput layer")

    def _add(self, lname: str, module: nn.Module, inputs: tuple[str, ...]) -> None:
        if not isinstance(lname, str) or not lname.isidentifier() or lname in RESERVED_NAMES:
            raise ModelError(f"layer name {lname!r} must be a Python identifier other than 'input'")
        if lname in self.layers:
            raise ModelError(f"layer name '{lname}' is used twice")
        first = not self.layers
        if isinstance(module, QuantInput) != first:
            raise ModelError(f"layer '{lname}': the first layer, and only it, must be a QuantInput")
        for src in inputs:
            if src not in self.layers:
                raise ModelError(f"layer '{lname}': input '{src}' is not an earlier layer")
        if isinstance(module, QuantConcat):
            if len(inputs) < 2:
                raise ModelError(f"layer '{lname}' (QuantConcat) takes 2 or more inputs, got {list(inputs)}")
        else:
            arity = 2 if isinstance(module, QuantAdd) else (0 if first else 1)
            if len(inputs) != arity:
                raise ModelError(f"layer '{lname}' ({type(module).__name__}) takes {arity} input(s), "
                                 f"got {list(inputs)}")
        self.layers[lname] = module
        self.layer_inputs[lname] = inputs

    @property
    def output_name(self) -> str:
        return next(reversed(self.layers.keys()))

    def trace(self, x: torch.Tensor) -> dict[str, QuantTensor]:
        """Every layer's output :class:`QuantTensor`, by layer name (topological order).

        A quantizer's :class:`CalibrationError` (no statistics yet, NaN/inf observed) is
        re-raised with the layer's name in front."""
        outs: dict[str, QuantTensor] = {}
        for lname, module in self.layers.items():
            args = [outs[s] for s in self.layer_inputs[lname]] or [x]
            try:
                outs[lname] = module(*args)
            except CalibrationError as exc:
                raise CalibrationError(f"layer '{lname}': {exc}") from None
        return outs

    def forward_quant(self, x: torch.Tensor) -> QuantTensor:
        return self.trace(x)[self.output_name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_quant(x).value

    def spec(self) -> dict:
        """The architecture as plain data (channel counts reflect the current modules)."""
        layers = []
        for lname, module in self.layers.items():
            if type(module).__name__ not in LAYER_TYPES or LAYER_TYPES[type(module).__name__] is not type(module):
                raise ModelError(f"layer 'layers.{lname}' ({type(module).__name__}) cannot be described as data")
            layers.append({"name": lname, "type": type(module).__name__, "inputs": list(self.layer_inputs[lname]),
                           "args": module.config()})
        return {"format": SPEC_FORMAT, "name": self.name, "input_shape": list(self.input_shape), "layers": layers}

    @classmethod
    def from_spec(cls, spec: dict) -> "QuantNet":
        if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
            raise ModelError(f"not a QuantNet spec (format {SPEC_FORMAT!r} expected)")
        layers = []
        for d in spec["layers"]:
            kind = d.get("type")
            if kind not in LAYER_TYPES:
                raise ModelError(f"layer '{d.get('name')}': unknown type {kind!r}; supported: {sorted(LAYER_TYPES)}")
            layers.append((d["name"], LAYER_TYPES[kind](**d.get("args", {})), d.get("inputs", [])))
        return cls(layers, spec["input_shape"], spec.get("name", "foldline_model"))

    def extra_repr(self) -> str:
        return f"name={self.name!r}, input_shape={self.input_shape}"


def mac_layers(model: QuantNet) -> list[tuple[str, _QuantMac]]:
    """Every multiply-accumulate layer (QuantConv2d, QuantConv1d, QuantLinear), in order, by layer name."""
    return [(n, m) for n, m in model.layers.items() if isinstance(m, _QuantMac)]


def with_power_of_two(model: QuantNet) -> QuantNet:
    """``model`` with every quantizer in power-of-two mode (``toolchain.quant``), as a new
    QuantNet rebuilt from the spec with the same state; ``model`` itself if already so.

    The state (weights, statistics, masks) does not depend on the mode; the integers do,
    so fine-tune after switching (``fpga-compress --init CKPT --power-of-two``)."""
    spec = model.spec()
    layers = [d["args"] for d in spec["layers"] if "power_of_two" in d["args"]]
    if all(args["power_of_two"] for args in layers):
        return model
    for args in layers:
        args["power_of_two"] = True
    new = QuantNet.from_spec(spec)
    new.load_state_dict(model.state_dict())
    new.train(model.training)
    return new


def is_power_of_two(model: QuantNet) -> bool:
    """Every quantizer of ``model`` rounds its scales to powers of two."""
    return all(m.power_of_two for m in model.modules() if isinstance(m, _Quantizer))


def set_quantization(model: nn.Module, enabled: bool) -> None:
    """Switch every quantizer on or off. Off, they still collect statistics in training
    but pass floats through (Zhang et al.: quantizers are latent until pruning is done)."""
    for m in model.modules():
        if isinstance(m, _Quantizer):
            m.enabled.fill_(bool(enabled))
