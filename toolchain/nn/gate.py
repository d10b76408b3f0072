"""Variational information bottleneck gates on output channels (DJPQ section 3.2, after Dai et al.).

A :class:`ChannelGate` holds ``mu`` and ``log sigma^2`` per channel. Attached to a MAC layer
(``layer.gate``) it is one more per-output-channel factor folded after batch norm
(:meth:`toolchain.nn.mac._QuantMac.folded`): ``h = z * f(h_prev)`` of eq. 9 with

* training: ``z = mu + eps * sigma``, ``eps ~ N(0, 1)`` (eq. 10, the reparameterisation), one
  draw per channel per forward — shared by the batch, not one per sample as in VIBNet, so that
  the gate folds into the weights the quantizer sees (the weight quantizer then trains on the
  gated weights, which are what is exported);
* eval and conversion: ``z = mu``.

The gate multiplies the channel *before* the fused ReLU, ``relu(z * y)``: the same as VIBNet's
``z * relu(y)`` for ``z > 0`` (a negative ``mu`` flips the channel, which the network can use).
:meth:`kl` is eq. 13's bound ``sum log(1 + mu^2 / sigma^2)``; a channel with
``alpha = mu^2 / sigma^2 < alpha_th`` is pruned (:meth:`pruned`). :func:`fold_gate` folds ``mu``
into the layer's batch norm (``gamma * mu``, ``beta * mu``) or, without one, into its weight and
bias, and detaches the gate: the network is a plain QuantNet again.

>>> from toolchain.nn import QuantLinear
>>> layer = QuantLinear(3, 2, bn=True)
>>> layer.gate = ChannelGate(2)
>>> bool((layer.gate.alpha() > 1).all()), layer.gate.pruned(1e-3).tolist()
(True, [False, False])
>>> fold_gate(layer); layer.gate is None
True
"""

from __future__ import annotations

import torch
from torch import nn

INIT_LOG_SIGMA2 = -6.0  #: initial log sigma^2: alpha = mu^2 / sigma^2 starts at e^6 ~ 400 with mu = 1


class ChannelGate(nn.Module):
    """Per-channel Gaussian gates ``z ~ N(mu, sigma^2)``."""

    def __init__(self, channels: int, log_sigma2: float = INIT_LOG_SIGMA2) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.ones(channels))
        self.log_sigma2 = nn.Parameter(torch.full((channels,), float(log_sigma2)))

    def forward(self) -> torch.Tensor:
        if not self.training:
            return self.mu
        return self.mu + torch.randn_like(self.mu) * torch.exp(0.5 * self.log_sigma2)

    def alpha(self) -> torch.Tensor:
        """``mu^2 / sigma^2`` per channel."""
        return self.mu.pow(2) * torch.exp(-self.log_sigma2)

    def kl(self) -> torch.Tensor:
        """Eq. 13's information term of these channels: ``sum log(1 + alpha)``."""
        return torch.log1p(self.alpha()).sum()

    def pruned(self, alpha_threshold: float) -> torch.Tensor:
        """Channels to prune: ``alpha < alpha_th`` (bool, no gradient)."""
        return (self.alpha() < alpha_threshold).detach()


@torch.no_grad()
def fold_gate(layer) -> None:
    """Fold ``z = mu`` of ``layer.gate`` into the layer (exactly the factor the eval forward
    applies, up to float rounding) and remove the gate."""
    mu = layer.gate.mu.detach().clone()
    layer.gate = None
    if layer.bn is not None:
        layer.bn.weight.mul_(mu)
        layer.bn.bias.mul_(mu)
        return
    layer.weight.mul_(mu.reshape(-1, *([1] * (layer.weight.dim() - 1))))
    if layer.bias is not None:
        layer.bias.mul_(mu)


__all__ = ["ChannelGate", "fold_gate"]
