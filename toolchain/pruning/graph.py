"""Coupled channel groups of a QuantNet: which channels must be pruned together.

The traversal walks the QuantNet's explicit layer graph once, in topological order,
giving every tensor a channel group (a union-find over groups); how each layer type
treats the groups of its inputs is its rule in :data:`GROUP_RULES`:

* a QuantConv2d (groups = 1) or QuantLinear starts a new group: it is the group's
  **producer** (its ``channel_mask`` is the group's mask) and a **consumer** of its
  input's group (its input channels/columns are cut when that group is pruned);
* a depthwise conv (in = out = groups) stays in its input's group as a producer: its
  filter ``c`` reads only channel ``c``, so removing the channel removes the filter;
* MaxPool, AvgPool, GlobalAvgPool and QuantReLU keep the group; Flatten keeps it too,
  with each channel spread over ``H*W`` consecutive features (a consuming Linear loses
  ``H*W`` columns per channel);
* a residual QuantAdd **merges** the groups of its two inputs (both branches must keep the
  same channel set);
* the network input and output groups, and any group touching a grouped (non-depthwise)
  conv, are fixed (not prunable).

Torch-Pruning builds the same kind of graph from autograd, but it does not know these
quantized modules (or the QuantTensor they pass), and its removal rebuilds modules it
understands; the QuantNet graph is already explicit data, so a walk over it is short
and exact.

>>> from toolchain.models import build
>>> [(g.name, g.producers) for g in channel_groups(build("resnet", input_shape=(1, 8, 8)))]
[('stem', ('stem', 'block1_conv2', 'block2_conv2')), ('block1_conv1', ('block1_conv1',)), ('block2_conv1', ('block2_conv1',))]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from exporters.errors import ModelError
from toolchain.nn import layers as L
from toolchain.nn.mac import QuantConv2d, QuantLinear
from toolchain.nn.net import QuantNet


@dataclass
class ChannelGroup:
    """Channels pruned together: one shared mask over ``channels`` entries.

    ``producers``: layers whose output channels this group governs (their
    ``channel_mask`` buffers hold the shared mask; depthwise convs included).
    ``consumers``: ``(layer, repeat)`` for layers whose input channels are cut; ``repeat``
    is the number of consecutive input features per channel (``H*W`` after a flatten).
    ``outputs``: layers whose outputs carry these channels after requantization (the
    producers and residual adds) — hook these to read per-channel activations.
    """

    name: str
    channels: int
    producers: tuple[str, ...]
    consumers: tuple[tuple[str, int], ...]
    outputs: tuple[str, ...]
    prunable: bool
    modules: dict = field(repr=False, default_factory=dict)

    @property
    def mask(self) -> torch.Tensor:
        """The shared mask (a copy; float 0/1). Raises if the producers disagree."""
        masks = [self.modules[p].channel_mask for p in self.producers]
        for p, m in zip(self.producers[1:], masks[1:]):
            if not torch.equal(m, masks[0]):
                raise ModelError(f"channel group '{self.name}': producers '{self.producers[0]}' and '{p}' "
                                 "have different channel masks; set masks with ChannelGroup.set_mask")
        return masks[0].detach().clone()

    def set_mask(self, mask) -> None:
        """Write ``mask`` (``channels`` values, nonzero = keep) into every producer."""
        mask = torch.as_tensor(mask).reshape(-1)
        if mask.numel() != self.channels:
            raise ModelError(f"channel group '{self.name}': mask has {mask.numel()} entries, expected {self.channels}")
        if not self.prunable and not bool((mask != 0).all()):
            raise ModelError(f"channel group '{self.name}' is fixed (network input/output or grouped conv)")
        for p in self.producers:
            self.modules[p].channel_mask.copy_((mask != 0).to(self.modules[p].channel_mask.dtype))


class _Groups:
    """Union-find over channel groups, with per-group membership lists."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.info: list[dict] = []

    def new(self, fixed: bool = False) -> int:
        self.parent.append(len(self.parent))
        self.info.append({"producers": [], "consumers": [], "outputs": [], "fixed": fixed})
        return len(self.parent) - 1

    def find(self, g: int) -> int:
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def union(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        if a != b:
            first, second = min(a, b), max(a, b)
            self.parent[second] = first
            for key in ("producers", "consumers", "outputs"):
                self.info[first][key] += self.info[second][key]
            self.info[first]["fixed"] |= self.info[second]["fixed"]
        return self.find(a)

    def get(self, g: int) -> dict:
        return self.info[self.find(g)]


# -- one rule per QuantNet layer type: how it treats the channel groups of its inputs ----------
# rule(groups, name, module, in_groups, in_flat) -> (group of its output, output is flattened)

def _new_input_group(groups, name, module, in_groups, in_flat):
    """The network input: its own group, fixed (no layer owns the input's channels)."""
    return groups.new(fixed=True), False


def _produce(groups, name, in_groups, in_flat, grouped: bool):
    """A MAC layer consumes its input's group and produces a new one; a grouped conv fixes both."""
    (src,) = in_groups
    groups.get(src)["consumers"].append((name, in_flat[0]))
    if grouped:
        groups.get(src)["fixed"] = True
    g = groups.new(fixed=grouped)
    groups.get(g)["producers"].append(name)
    groups.get(g)["outputs"].append(name)
    return g, False


def _conv_groups(groups, name, module, in_groups, in_flat):
    """A depthwise conv keeps its input's group as a producer (filter c reads only channel c)."""
    if not module.depthwise:
        return _produce(groups, name, in_groups, in_flat, grouped=module.groups > 1)
    (g,) = in_groups
    groups.get(g)["producers"].append(name)
    groups.get(g)["outputs"].append(name)
    return g, False


def _linear_groups(groups, name, module, in_groups, in_flat):
    return _produce(groups, name, in_groups, in_flat, grouped=False)


def _merge_groups(groups, name, module, in_groups, in_flat):
    """A residual add: both branches must keep the same channel set."""
    g = groups.union(*in_groups)
    groups.get(g)["outputs"].append(name)
    return g, in_flat[0]


def _keep_group(groups, name, module, in_groups, in_flat):
    """Pooling and ReLU act per channel: the group passes through."""
    return in_groups[0], in_flat[0]


def _flatten_group(groups, name, module, in_groups, in_flat):
    """Flatten keeps the group, each channel spread over H*W consecutive features."""
    return in_groups[0], True


GROUP_RULES = {
    L.QuantInput: _new_input_group,
    QuantConv2d: _conv_groups,
    QuantLinear: _linear_groups,
    L.QuantAdd: _merge_groups,
    L.MaxPool2d: _keep_group,
    L.AvgPool2d: _keep_group,
    L.GlobalAvgPool: _keep_group,
    L.QuantReLU: _keep_group,
    L.Flatten: _flatten_group,
}


def _walk(model: QuantNet) -> _Groups:
    groups = _Groups()
    tensor: dict[str, int] = {}
    flat: dict[str, bool] = {}
    for name, module in model.layers.items():
        rule = GROUP_RULES.get(type(module))
        if rule is None:
            raise ModelError(f"layer '{name}' ({type(module).__name__}): no channel-group rule; "
                             f"supported: {', '.join(sorted(t.__name__ for t in GROUP_RULES))}")
        srcs = model.layer_inputs[name]
        tensor[name], flat[name] = rule(groups, name, module, [tensor[s] for s in srcs], [flat[s] for s in srcs])
    groups.get(tensor[model.output_name])["fixed"] = True
    return groups


def _channels(model: QuantNet, info: dict) -> int:
    counts = {model.layers[p].weight.shape[0] for p in info["producers"]}
    if len(counts) != 1:
        raise ModelError(f"coupled layers {info['producers']} have different channel counts {sorted(counts)}")
    return counts.pop()


def _repeat(model: QuantNet, consumer: str, flattened: bool, channels: int) -> int:
    module = model.layers[consumer]
    if not flattened:
        return 1
    if not isinstance(module, QuantLinear) or module.in_features % channels:
        raise ModelError(f"layer '{consumer}': {module.weight.shape[1]} inputs are not a flatten of {channels} channels")
    return module.in_features // channels


def channel_groups(model: QuantNet, include_fixed: bool = False) -> list[ChannelGroup]:
    """The coupled channel groups of ``model`` (prunable ones only unless ``include_fixed``)."""
    if not isinstance(model, QuantNet):
        raise ModelError(f"channel_groups needs a toolchain.nn.QuantNet, got {type(model).__name__}")
    groups = _walk(model)
    result = []
    for g in range(len(groups.parent)):
        if groups.find(g) != g:
            continue
        info = groups.info[g]
        if not info["producers"]:
            continue  # the input group: no layer owns its channels
        channels = _channels(model, info)
        consumers = tuple((c, _repeat(model, c, f, channels)) for c, f in info["consumers"])
        prunable = not info["fixed"]
        if prunable or include_fixed:
            members = set(info["producers"]) | {c for c, _ in consumers} | set(info["outputs"])
            result.append(ChannelGroup(info["producers"][0], channels, tuple(info["producers"]), consumers,
                                       tuple(info["outputs"]), prunable, {m: model.layers[m] for m in members}))
    return result
