"""Per-layer quantizer parts of a QuantNet: read and set bit widths, switch to learned quantizers.

A bit width is a part of its quantizer (``toolchain.quant._Quantizer.bits``, Brevitas' bit-width
part); each layer's ``weight_bits`` / ``act_bits`` (``bits`` of the input) *is* that part
(:class:`toolchain.quant.BitsOf`), so changing it here changes the quantizer in place: the next
forward quantizes on the new grid, and the spec (checkpoint), the integer model, the ONNX
metadata, ``report.json`` and the HLS kernels all read the width from there.

* :func:`bit_widths` — ``{layer: {"weight": w, "act": a}}`` for every layer with a quantizer
  (``"act"`` is the width of the tensor the layer writes: the input grid for the QuantInput,
  the signed output grid for the last layer);
* :func:`set_bits` — per layer, or every MAC layer's weights / every hidden activation at once;
* :func:`parse_layer_bits` — ``"conv1=8/8,head=8/8"`` (``fpga-compress --layer-bits``);
* :func:`use_learned_quantizers` — swap MAC layers' min/max quantizers for learned ones
  (:mod:`toolchain.learned_quant`), calibrated from the current state.

>>> from toolchain.models import build
>>> net = build("cnn", input_shape=(1, 8, 8))
>>> set_bits(net, weight_bits=3, act_bits=3)                     # hidden layers only
>>> set_bits(net, {"conv1": {"weight": 8, "act": 8}, "head": {"weight": 8}})
>>> bit_widths(net)
{'quant_in': {'act': 8}, 'conv1': {'weight': 8, 'act': 8}, 'conv2': {'weight': 3, 'act': 3}, 'head': {'weight': 8, 'act': 8}}
>>> parse_layer_bits("conv1=8/8,head=4/-")
{'conv1': {'weight': 8, 'act': 8}, 'head': {'weight': 4}}
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from exporters.errors import ModelError
from exporters.grid import MAX_BITS, MIN_BITS, check_bits
from toolchain.learned_quant import POWER_OF_TWO_BITS, LearnedActQuant, LearnedWeightQuant, _LearnedQuant
from toolchain.nn.mac import _QuantMac
from toolchain.nn.net import QuantNet, mac_layers
from toolchain.quant import _Quantizer

PARTS = ("weight", "act")


class BitsError(ModelError):
    """A bit width request naming an unknown layer or part, or a width outside 2..8."""


def layer_quantizers(module: nn.Module) -> dict[str, _Quantizer]:
    """The module's quantizers by part: MAC layers ``weight`` and ``act``; a requantizing layer
    ``act`` (its output); the QuantInput ``act`` (the input grid); others none."""
    parts = {}
    if isinstance(module, _QuantMac):
        parts["weight"] = module.weight_quant
    for attr in ("out_quant", "quant"):
        if isinstance(getattr(module, attr, None), _Quantizer):
            parts["act"] = getattr(module, attr)
    return parts


def bit_widths(net: QuantNet) -> dict[str, dict[str, int]]:
    """Every quantizing layer's widths, in layer order: ``{layer: {"weight": w, "act": a}}``."""
    return {name: {part: q.bits for part, q in layer_quantizers(m).items()}
            for name, m in net.layers.items() if layer_quantizers(m)}


def _hidden(net: QuantNet, name: str) -> bool:
    """A hidden activation: neither the network input grid nor the signed output grid."""
    module = net.layers[name]
    return name != next(iter(net.layers)) and not getattr(module, "signed_output", False)


def set_bits(net: QuantNet, layers: Mapping[str, Mapping[str, int]] | None = None, *,
             weight_bits: int | None = None, act_bits: int | None = None) -> None:
    """Change bit widths of ``net`` in place.

    ``weight_bits``: every MAC layer's weights; ``act_bits``: every hidden activation (the
    network input and output keep theirs, as the built-in models' ``input_bits`` /
    ``output_bits``); ``layers``: ``{layer: {"weight": w, "act": a}}`` (either key), applied after
    and so winning over them, and free to set the input's or output's width. Everything is checked
    before anything changes (:class:`BitsError`, one line naming the layer).
    """
    plan: list[tuple[str, str, int]] = []
    for name, module in net.layers.items():
        parts = layer_quantizers(module)
        if weight_bits is not None and "weight" in parts:
            plan.append((name, "weight", weight_bits))
        if act_bits is not None and "act" in parts and _hidden(net, name):
            plan.append((name, "act", act_bits))
    for name, widths in (layers or {}).items():
        if name not in net.layers or not layer_quantizers(net.layers[name]):
            known = ", ".join(bit_widths(net))
            raise BitsError(f"layer '{name}' has no quantizer to set bits of (layers with one: {known})")
        parts = layer_quantizers(net.layers[name])
        for part, bits in widths.items():
            if part not in parts:
                raise BitsError(f"layer '{name}' has no {part} bits (it has: {', '.join(parts)})")
            plan.append((name, part, bits))
    for name, part, bits in plan:
        try:
            check_bits(bits, f"layer '{name}' {part} bits")
        except ModelError as exc:
            raise BitsError(str(exc)) from None
        if _restricted(layer_quantizers(net.layers[name])[part]) and bits not in POWER_OF_TWO_BITS:
            raise BitsError(f"layer '{name}' {part} bits: {bits} is not one of {POWER_OF_TWO_BITS} "
                            "(its learned quantizer is restricted to powers of two)")
    for name, part, bits in plan:
        layer_quantizers(net.layers[name])[part].bits = bits


def _restricted(quantizer: _Quantizer) -> bool:
    return isinstance(quantizer, _LearnedQuant) and bool(quantizer.restricted)


def parse_layer_bits(text: str) -> dict[str, dict[str, int]]:
    """``"conv1=8/8,head=8/4"`` -> ``{"conv1": {"weight": 8, "act": 8}, ...}``: ``LAYER=W/A`` items
    (``W`` weight bits, ``A`` activation bits, ``-`` to keep one; a lone ``LAYER=A`` for a layer
    without weights). One-line :class:`BitsError` for anything else, or a width outside 2..8."""
    result: dict[str, dict[str, int]] = {}
    for item in (part.strip() for part in text.split(",")):
        name, sep, value = item.partition("=")
        name = name.strip()
        fields = value.split("/")
        if not sep or not name or not value or len(fields) > 2:
            raise BitsError(f"layer bits {item!r}: expected LAYER=W/A, e.g. conv1=8/8 (- keeps one)")
        keys = PARTS if len(fields) == 2 else ("act",)
        widths = {}
        for key, field in zip(keys, fields):
            field = field.strip()
            if field == "-":
                continue
            try:
                bits = int(field)
            except ValueError:
                raise BitsError(f"layer bits {item!r}: {field!r} is not a bit width") from None
            if not MIN_BITS <= bits <= MAX_BITS:
                raise BitsError(f"layer bits {item!r}: {key} bit width {bits} is outside {MIN_BITS}..{MAX_BITS}")
            widths[key] = bits
        if name in result:
            raise BitsError(f"layer bits: '{name}' is given twice")
        result[name] = widths
    return result


def _learned_parts(layer: _QuantMac) -> tuple[str, ...]:
    """The parts of a MAC layer that take a learned quantizer: its weights, and its output if
    that is a hidden one after a fused ReLU (the learned grid starts at real zero)."""
    act = layer.relu and not layer.signed_output
    return ("weight", "act") if act else ("weight",)


def check_learnable(net: QuantNet, restrict: bool = False) -> None:
    """What :func:`use_learned_quantizers` refuses, checked without changing anything: a
    power-of-two network, and with ``restrict`` a width outside {2, 4, 8} (:class:`BitsError`)."""
    if any(getattr(q, "power_of_two", False) for q in net.modules() if isinstance(q, _Quantizer)):
        raise BitsError("learned quantizers train their steps: they cannot replace power-of-two quantizers")
    if not restrict:
        return
    for name, layer in mac_layers(net):
        for part in _learned_parts(layer):
            bits = layer_quantizers(layer)[part].bits
            if bits not in POWER_OF_TWO_BITS:
                raise BitsError(f"layer '{name}' {part} bits: {bits} is not one of {POWER_OF_TWO_BITS} "
                                "(power-of-two restriction)")


def use_learned_quantizers(net: QuantNet, restrict: bool = False) -> list[str]:
    """Give every MAC layer a learned weight quantizer and every MAC layer with a fused ReLU on a
    hidden output a learned activation quantizer, in place, at the widths they have now;
    calibrated from the current state (weights: the folded weights; activations: the min/max
    quantizer's running maximum, or the first training batch if it never saw data).
    ``restrict``: Algorithm 2's power-of-two widths (every such width must then be 2, 4 or 8; else a
    :class:`BitsError` before anything changes). Returns the layers whose activations are learned.
    """
    check_learnable(net, restrict)
    parts = [(name, layer, part) for name, layer in mac_layers(net) for part in _learned_parts(layer)]
    for name, layer, part in parts:
        old = layer_quantizers(layer)[part]
        if isinstance(old, _LearnedQuant):
            learned = old
        elif part == "weight":
            learned = LearnedWeightQuant(old.bits)
            with torch.no_grad():
                learned.calibrate(layer.folded()[0])
            layer.weight_quant = learned
        else:
            learned = LearnedActQuant(old.bits)
            learned.calibrate_from(old)
            layer.out_quant = learned
        learned.enabled.copy_(old.enabled)
        if restrict:
            bits = learned.bits
            learned.restrict(True)
            learned.bits = bits  # d = q_m^t / levels(bits): the grid keeps exactly this width
    return [name for name, _, part in parts if part == "act"]


__all__ = ["BitsError", "bit_widths", "check_learnable", "layer_quantizers", "parse_layer_bits", "set_bits", "use_learned_quantizers"]
