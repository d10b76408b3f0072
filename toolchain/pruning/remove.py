"""Physical channel removal: masked channels leave every coupled tensor.

For each prunable group (see :mod:`toolchain.pruning.graph`) the kept channel indices
come from its mask (:func:`kept_channels`); then each producer loses those output
channels (weight rows, bias, BN parameters and statistics, masks), a depthwise producer
also its input channels and groups, and each consumer the matching input channels — or,
after a flatten, the matching ``repeat`` consecutive columns per channel, at the group's
offset in a concatenation — each as its layer type's entry in :data:`REMOVERS` does it.
Quantizer statistics are per tensor and stay as they are.

Why this is exact (integer outputs of the masked and the removed model are equal bit for
bit): the consumer's weights on a masked channel are already 0 in the masked model (the
QuantTensor carries the alive-channel mask and the consumer multiplies the weights reading
masked channels by 0 before its weight scales are taken), so whatever the masked channel
carries adds nothing and no scale, multiplier or bias changes. That does not need the channel
to be real zero: it is (its zero point) after requantization, ReLU, clamps, pooling and a
residual add whose branches share the mask, but a lookup maps real zero to ``f(0)``, which
need not be zero (``sigmoid(0) = 1/2``), and the channel stays prunable all the same
(``tests/test_tc_activation.py`` checks it with a sigmoid).

``round_to=N`` keeps a multiple of ``N`` channels per group (hardware parallelism): the
count is rounded **up** by keeping some masked channels (lowest indices first). They stay
masked — dead channels that output real zero — so the integers are still unchanged.

>>> kept_channels(torch.tensor([1., 0., 1., 0., 0., 1.]), round_to=4).tolist()
[0, 1, 2, 5]
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from exporters.errors import ModelError
from toolchain.nn.mac import QuantConv2d, QuantLinear, _QuantMac
from toolchain.nn.net import QuantNet
from toolchain.nn.one_d import QuantConv1d
from toolchain.pruning.graph import channel_groups


def kept_channels(mask: torch.Tensor, round_to: int = 1) -> torch.Tensor:
    """Sorted indices removal keeps: the alive ones, padded with masked ones up to a multiple of ``round_to``."""
    if round_to < 1:
        raise ValueError(f"round_to must be >= 1, got {round_to}")
    mask = torch.as_tensor(mask).reshape(-1) != 0
    total = mask.numel()
    alive = int(mask.sum())
    target = min(total, max(round_to, -(-alive // round_to) * round_to))
    extra = torch.nonzero(~mask).reshape(-1)[: target - alive]
    return torch.sort(torch.cat([torch.nonzero(mask).reshape(-1), extra])).values


def _select(module: nn.Module, attr: str, index: torch.Tensor, dim: int) -> None:
    tensor = getattr(module, attr)
    if tensor is None:
        return
    value = tensor.detach().index_select(dim, index).clone()
    if isinstance(tensor, nn.Parameter):
        setattr(module, attr, nn.Parameter(value, requires_grad=tensor.requires_grad))
    else:
        module._buffers[attr] = value


def _prune_out_tensors(module: _QuantMac, keep: torch.Tensor) -> None:
    for attr in ("weight", "weight_mask"):
        _select(module, attr, keep, 0)
    for attr in ("bias", "channel_mask"):
        _select(module, attr, keep, 0)
    if module.bn is not None:
        for attr in ("weight", "bias", "running_mean", "running_var"):
            _select(module.bn, attr, keep, 0)
        module.bn.num_features = len(keep)


def _prune_in_tensors(module: _QuantMac, keep: torch.Tensor, repeat: int) -> int:
    index = (keep[:, None] * repeat + torch.arange(repeat)).reshape(-1)
    for attr in ("weight", "weight_mask"):
        _select(module, attr, index, 1)
    return len(index)


def _linear_out(module: QuantLinear, keep: torch.Tensor) -> None:
    _prune_out_tensors(module, keep)
    module.out_features = len(keep)


def _linear_in(module: QuantLinear, keep: torch.Tensor, repeat: int = 1) -> None:
    module.in_features = _prune_in_tensors(module, keep, repeat)


def _conv_out(module: QuantConv2d, keep: torch.Tensor) -> None:
    """A conv loses filters; a depthwise one loses channel ``c`` entirely: filter, input and output."""
    depthwise = module.depthwise
    _prune_out_tensors(module, keep)
    module.out_channels = len(keep)
    if depthwise:
        module.in_channels = module.groups = len(keep)


def _conv_in(module: QuantConv2d, keep: torch.Tensor, repeat: int = 1) -> None:
    if module.groups != 1:
        raise ModelError(f"cannot cut input channels of a grouped conv ({module.groups} groups)")
    module.in_channels = _prune_in_tensors(module, keep, repeat)


#: How each layer type with channels of its own loses them: (as a producer, as a consumer).
#: The graph (GROUP_RULES) decides which layers lose which channels; layers without weights
#: (pooling, ReLU, Add, Flatten) hold nothing to remove.
REMOVERS = {
    QuantConv2d: (_conv_out, _conv_in),
    QuantConv1d: (_conv_out, _conv_in),  # the same cuts: weights (O, I/groups, k) lose rows / columns alike
    QuantLinear: (_linear_out, _linear_in),
}


def prune_out(module: _QuantMac, keep: torch.Tensor) -> None:
    """Keep only output channels ``keep`` of a MAC layer (and of its batch norm; a depthwise
    conv's input channels and groups too)."""
    REMOVERS[type(module)][0](module, keep)


def prune_in(module: _QuantMac, keep: torch.Tensor, repeat: int = 1) -> None:
    """Keep only input channels ``keep`` (each ``repeat`` consecutive features) of a MAC layer."""
    REMOVERS[type(module)][1](module, keep, repeat)


def remove_channels(model: QuantNet, round_to: int = 1) -> QuantNet:
    """A copy of ``model`` with every masked channel of every prunable group physically removed.

    A consumer's columns are cut once, after every group: a concatenation feeds it several groups
    at offsets of the original layout (``ChannelGroup.consumers``). Create a new optimizer
    afterwards: parameters are new tensors.
    """
    new = copy.deepcopy(model)
    dropped: dict[str, list[torch.Tensor]] = {}
    for group in channel_groups(new):
        keep = kept_channels(group.mask, round_to)
        if len(keep) == group.channels:
            continue
        for name in group.producers:
            prune_out(new.layers[name], keep)
        removed = torch.ones(group.channels, dtype=torch.bool)
        removed[keep] = False
        lost = torch.nonzero(removed).reshape(-1)
        for name, repeat, offset in group.consumers:
            dropped.setdefault(name, []).append(offset + (lost[:, None] * repeat + torch.arange(repeat)).reshape(-1))
    for name, columns in dropped.items():
        module = new.layers[name]
        kept = torch.ones(module.weight.shape[1], dtype=torch.bool)  # consumers are never grouped convs
        kept[torch.cat(columns)] = False
        prune_in(module, torch.nonzero(kept).reshape(-1))
    return new


def count_parameters(model: nn.Module) -> int:
    """Number of parameter elements (weights, biases, batch-norm scales and shifts)."""
    return sum(p.numel() for p in model.parameters())
