"""Coupled channel groups of a QuantNet: which channels must be pruned together.

The traversal walks the QuantNet's explicit layer graph once, in topological order,
giving every tensor a channel group (a union-find over groups); how each layer type
treats the groups of its inputs is its rule in :data:`GROUP_RULES`:

* a QuantConv2d or QuantConv1d (groups = 1) or QuantLinear starts a new group: it is the group's
  **producer** (its ``channel_mask`` is the group's mask) and a **consumer** of its
  input's group (its input channels/columns are cut when that group is pruned);
* a depthwise conv (in = out = groups) stays in its input's group as a producer: its
  filter ``c`` reads only channel ``c``, so removing the channel removes the filter;
* MaxPool, AvgPool (2-D and 1-D), GlobalAvgPool, QuantReLU, QuantClamp and QuantActivation keep the group
  (each acts per channel; a lookup maps a masked channel's real zero to ``f(0)``, which may not
  be zero, but consumers read masked channels with zero weights, see :mod:`.remove`); Flatten
  keeps it too, with each channel spread over ``H*W`` (``L``) consecutive features (a consuming Linear
  loses ``H*W`` columns per channel);
* a residual QuantAdd **merges** the groups of its two inputs (both branches must keep the
  same channel set);
* a QuantConcat holds its inputs' groups side by side: a tensor's channels are a *layout*, a
  list of segments (group, channels), one segment except after a concatenation. Each group
  keeps its own mask; a consumer of a concatenation is a consumer of every group in it, at the
  group's offset (``(layer, repeat, offset)``: columns ``offset + c * repeat + r``), so a group
  feeding a concatenation twice is cut at both offsets. An Add merges two layouts segment by
  segment; Upsample keeps the layout;
* the network input and output groups, any group touching a grouped (non-depthwise) conv, and
  the groups of layouts that cannot be cut exactly — a depthwise conv or an Add over
  concatenations whose segments do not line up, a consumer of flattened tensors
  concatenated — are fixed (not prunable).

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
from toolchain.nn.one_d import AvgPool1d, MaxPool1d, QuantConv1d


@dataclass
class ChannelGroup:
    """Channels pruned together: one shared mask over ``channels`` entries.

    ``producers``: layers whose output channels this group governs (their
    ``channel_mask`` buffers hold the shared mask; depthwise convs included).
    ``consumers``: ``(layer, repeat, offset)`` for layers whose input channels are cut: channel
    ``c`` is the layer's input columns ``offset + c * repeat + r``, ``r < repeat`` (``repeat``:
    ``H*W`` after a flatten; ``offset``: where the group starts in a concatenation, else 0).
    ``outputs``: layers whose outputs carry exactly these channels after requantization (the
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
    """Union-find over channel groups, with per-group membership lists; ``consumers`` holds each
    MAC layer's input layout until the walk is done (:func:`_resolve_consumers`)."""

    def __init__(self, input_channels: int) -> None:
        self.parent: list[int] = []
        self.info: list[dict] = []
        self.input_channels = int(input_channels)
        self.consumers: list[tuple[str, tuple]] = []

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

    def fix(self, layout) -> None:
        """Mark every group of ``layout`` not prunable."""
        for segment in layout:
            self.get(segment.group)["fixed"] = True


# -- one rule per QuantNet layer type: how it treats the channel groups of its inputs ----------
# A tensor's channels are a Layout: groups side by side (one segment, except after a Concat).
# rule(groups, name, module, layouts) -> the Layout of its output.

@dataclass(frozen=True)
class Segment:
    """``channels`` consecutive channels of a tensor, all of one group; ``flatten``: the Flatten
    that spread each of them over consecutive features (its repeat is resolved at the consumer)."""

    group: int
    channels: int
    flatten: str | None = None


def _new_input_group(groups, name, module, layouts):
    """The network input: its own group, fixed (no layer owns the input's channels)."""
    return (Segment(groups.new(fixed=True), groups.input_channels),)


def _produce(groups, name, module, layouts, grouped: bool):
    """A MAC layer consumes its input's groups and produces a new one; a grouped conv fixes both."""
    (layout,) = layouts
    groups.consumers.append((name, layout))
    if grouped:
        groups.fix(layout)
    g = groups.new(fixed=grouped)
    groups.get(g)["producers"].append(name)
    groups.get(g)["outputs"].append(name)
    return (Segment(g, int(module.weight.shape[0])),)


def _conv_groups(groups, name, module, layouts):
    """A depthwise conv keeps its input's group as a producer (filter c reads only channel c); on a
    concatenation of several groups it would own a slice of each: those are fixed instead."""
    if not module.depthwise:
        return _produce(groups, name, module, layouts, grouped=module.groups > 1)
    (layout,) = layouts
    if len(layout) == 1:
        groups.get(layout[0].group)["producers"].append(name)
        groups.get(layout[0].group)["outputs"].append(name)
    else:
        groups.fix(layout)
    return layout


def _linear_groups(groups, name, module, layouts):
    return _produce(groups, name, module, layouts, grouped=False)


def _merge_groups(groups, name, module, layouts):
    """A residual add: both branches must keep the same channel set, segment by segment. Branches
    whose segments do not line up (a concatenation added to a tensor of other boundaries) couple
    parts of groups, which one mask per group cannot say: their groups are fixed."""
    a, b = layouts
    if [s.channels for s in a] != [s.channels for s in b]:
        groups.fix(a + b)
        return a
    merged = tuple(Segment(groups.union(sa.group, sb.group), sa.channels, sa.flatten) for sa, sb in zip(a, b))
    if len(merged) == 1:
        groups.get(merged[0].group)["outputs"].append(name)
    return merged


def _keep_group(groups, name, module, layouts):
    """Pooling, upsampling and ReLU act per channel: the groups pass through."""
    return layouts[0]


def _flatten_group(groups, name, module, layouts):
    """Flatten keeps the groups, each channel spread over H*W consecutive features."""
    return tuple(s if s.flatten else Segment(s.group, s.channels, name) for s in layouts[0])


def _concat_groups(groups, name, module, layouts):
    """A concatenation holds its inputs' groups side by side; each keeps its own mask, and a
    consumer's input channels map to each group's offset in it."""
    return tuple(segment for layout in layouts for segment in layout)


GROUP_RULES = {
    L.QuantInput: _new_input_group,
    QuantConv2d: _conv_groups,
    QuantLinear: _linear_groups,
    L.QuantAdd: _merge_groups,
    L.MaxPool2d: _keep_group,
    L.AvgPool2d: _keep_group,
    L.GlobalAvgPool: _keep_group,
    L.QuantReLU: _keep_group,
    L.QuantClamp: _keep_group,
    L.QuantActivation: _keep_group,
    L.Flatten: _flatten_group,
    L.QuantConcat: _concat_groups,
    L.Upsample: _keep_group,
    QuantConv1d: _conv_groups,
    MaxPool1d: _keep_group,
    AvgPool1d: _keep_group,
}


def _walk(model: QuantNet) -> _Groups:
    groups = _Groups(model.input_shape[0])
    layout: dict[str, tuple[Segment, ...]] = {}
    for name, module in model.layers.items():
        rule = GROUP_RULES.get(type(module))
        if rule is None:
            raise ModelError(f"layer '{name}' ({type(module).__name__}): no channel-group rule; "
                             f"supported: {', '.join(sorted(t.__name__ for t in GROUP_RULES))}")
        layout[name] = rule(groups, name, module, [layout[s] for s in model.layer_inputs[name]])
    groups.fix(layout[model.output_name])
    _resolve_consumers(model, groups)
    return groups


def _channels(model: QuantNet, info: dict) -> int:
    counts = {model.layers[p].weight.shape[0] for p in info["producers"]}
    if len(counts) != 1:
        raise ModelError(f"coupled layers {info['producers']} have different channel counts {sorted(counts)}")
    return counts.pop()


def _resolve_consumers(model: QuantNet, groups: _Groups) -> None:
    """Each consumer's input columns per segment: ``(layer, repeat, offset)`` on the segment's group.

    Unflattened segments are one column per channel; segments flattened by one Flatten share its
    repeat, ``in_features / channels``. A consumer reading segments flattened differently (a
    concatenation of flattened tensors) has no known repeat per segment: those groups are fixed."""
    for name, layout in groups.consumers:
        module = model.layers[name]
        columns = module.in_features if isinstance(module, QuantLinear) else module.in_channels
        total = sum(s.channels for s in layout)
        flattens = {s.flatten for s in layout}
        if len(flattens) > 1:
            groups.fix(layout)
            continue
        repeat = 1
        if flattens != {None}:
            if columns % total:
                raise ModelError(f"layer '{name}': {columns} inputs are not a flatten of {total} channels")
            repeat = columns // total
        elif columns != total:
            raise ModelError(f"layer '{name}': {columns} input channels, but its input has {total}")
        offset = 0
        for s in layout:
            groups.get(s.group)["consumers"].append((name, repeat, offset))
            offset += s.channels * repeat


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
        consumers = tuple(info["consumers"])
        prunable = not info["fixed"]
        if prunable or include_fixed:
            members = set(info["producers"]) | {c for c, _, _ in consumers} | set(info["outputs"])
            result.append(ChannelGroup(info["producers"][0], channels, tuple(info["producers"]), consumers,
                                       tuple(info["outputs"]), prunable, {m: model.layers[m] for m in members}))
    return result
