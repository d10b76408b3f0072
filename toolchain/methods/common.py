"""Small helpers every method shares: keep counts, top-k masks, sparsity, bit widths.

Sparsity, precisely (docs/methods.md):

* **channel sparsity** (channel methods): over the prunable channel groups of
  :func:`toolchain.pruning.channel_groups`, ``1 - sum(alive channels) / sum(channels)``;
  a group's channels count once however many layers share its mask.
* **weight sparsity** (unstructured methods): over the weights of every MAC layer
  (biases and batch-norm parameters excluded), the fraction whose ``weight_mask`` is 0.

>>> keep_count(16, 0.5), keep_count(16, 0.5, round_to=3), keep_count(4, 0.99)
(8, 6, 1)
>>> top_k_mask(torch.tensor([0.3, 0.1, 0.3, 0.9]), 2).tolist()
[1.0, 0.0, 0.0, 1.0]
"""

from __future__ import annotations

import copy
import math

import torch

from toolchain.nn import bit_widths, mac_layers, set_bits
from toolchain.nn.net import QuantNet
from toolchain.pruning import ChannelGroup, channel_groups

EPS = 1e-9


def keep_count(channels: int, sparsity: float, round_to: int = 1) -> int:
    """Channels a group keeps at ``sparsity``: at most ``(1 - sparsity) * channels``,
    a multiple of ``round_to``, and at least ``min(round_to, channels)`` (never zero)."""
    keep = math.floor((1.0 - sparsity) * channels + EPS)
    keep = (keep // round_to) * round_to
    return max(min(round_to, channels), keep, 1)


def top_k_mask(importance: torch.Tensor, k: int) -> torch.Tensor:
    """0/1 float mask keeping the ``k`` largest entries (ties: the lower index wins)."""
    order = torch.argsort(importance, descending=True, stable=True)
    mask = torch.zeros_like(importance, dtype=torch.float32)
    mask[order[:k]] = 1.0
    return mask


def prunable_groups(model: QuantNet) -> list[ChannelGroup]:
    """The model's prunable channel groups in topological order (first producer first)."""
    return [g for g in channel_groups(model) if g.prunable]


def channel_sparsity(groups: list[ChannelGroup]) -> float:
    """Fraction of the groups' channels whose mask is 0 (0.0 for no groups)."""
    total = sum(g.channels for g in groups)
    alive = sum(int((g.mask != 0).sum()) for g in groups)
    return 1.0 - alive / total if total else 0.0


def weight_sparsity(model: QuantNet) -> float:
    """Fraction of MAC-layer weights whose ``weight_mask`` is 0."""
    total = zeros = 0
    for _, layer in mac_layers(model):
        total += layer.weight_mask.numel()
        zeros += int((layer.weight_mask == 0).sum())
    return zeros / total if total else 0.0


def with_bits(model: QuantNet, weight_bits: int | None, act_bits: int | None) -> QuantNet:
    """A copy of ``model`` at other widths (:func:`toolchain.nn.set_bits`: every MAC layer's
    weights at ``weight_bits``, every hidden activation at ``act_bits``; ``None``: keep), or
    ``model`` itself when nothing changes. For callers that need a new object per width
    (``rule-framework`` compares trials of one snapshot, and widths are architecture, not state
    dict); to change a network in place, call ``set_bits`` directly.
    """
    new = copy.deepcopy(model)
    set_bits(new, weight_bits=weight_bits, act_bits=act_bits)
    return model if bit_widths(new) == bit_widths(model) else new
