"""Per-channel affine maps ``y = a * x + c`` met by post-training quantization of a ``.pt2``: the
input normalisation ``(x - m) / s`` (per tensor or per channel), a constant ``x * k``, ``x + k``, and
a batch norm that does not follow a conv (before the first conv, after a ReLU).

:class:`Affine` composes a chain of them exactly (in float64) and says how the next layer takes it:

* **folded into the next conv or linear** (:func:`fold_conv`, :func:`fold_linear`):
  ``conv(W, a x + c) + b = conv(W a, x) + (b + sum W c)`` — the same real function, exact when
  ``c = 0`` or the conv has no padding (a padded tap is real zero *after* the map, ``a * 0 + c``
  before it: only a map with ``c = 0`` keeps padding zero);
* otherwise **a per-channel affine layer**: a depthwise 1x1 convolution with weights ``a`` and bias
  ``c`` (a diagonal linear layer on an ``(N, F)`` tensor) — an existing layer type, exact in the
  weights (each channel's single weight is its own grid's maximum).

Why not the input quantizer: the network input's grid is symmetric with zero point 0 (the
contract), so it cannot absorb a mean ``m``, and a per-channel ``s`` would need per-channel scales;
the first layer's weights and bias can (docs/toolchain.md, "Post-training quantization").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from exporters.layers.window import grouped_input_channels


class NotPerChannel(ValueError):
    """A constant that varies along other dims than the channels (or does not broadcast)."""


def per_channel(value, shape: tuple[int, ...]) -> torch.Tensor:
    """``value`` (a number or a tensor broadcasting onto an activation of ``shape`` = ``(N, C, ...)``)
    as one float64 number per channel, ``(C,)``; raises :class:`NotPerChannel` otherwise."""
    v = torch.as_tensor(value, dtype=torch.float64)
    try:
        if torch.broadcast_shapes(v.shape, shape) != torch.Size(shape):
            raise NotPerChannel(f"a constant of shape {list(v.shape)} grows the activation {list(shape)}")
    except RuntimeError:
        raise NotPerChannel(f"a constant of shape {list(v.shape)} does not broadcast to {list(shape)}") from None
    full = v.expand(shape)[0].reshape(shape[1], -1)
    if not bool((full == full[:, :1]).all()):
        raise NotPerChannel(f"a constant of shape {list(v.shape)} varies along other dims than the channels")
    return full[:, 0].clone()


@dataclass
class Affine:
    """``y = scale * x + shift`` per channel (float64 ``(C,)`` each) on the activation ``source``; ``tail``
    is its last fx node; ``layer`` the affine layer once one was made for a consumer that cannot fold it."""

    source: object  # the ptq _Act it maps
    scale: torch.Tensor
    shift: torch.Tensor
    tail: object
    layer: object = None

    def then(self, scale: torch.Tensor, shift: torch.Tensor, tail) -> "Affine":
        """This map followed by ``y -> scale * y + shift``."""
        return Affine(self.source, self.scale * scale, self.shift * scale + shift, tail)

    @property
    def shifts(self) -> bool:
        return bool((self.shift != 0).any())


def fold_conv(weight: torch.Tensor, bias: torch.Tensor, affine: Affine, groups: int):
    """``(W a, b + sum W c)`` for a conv reading ``affine``'s output (any rank, any groups)."""
    o, i_local = weight.shape[:2]
    channel = torch.as_tensor(grouped_input_channels(o, i_local, groups))  # (O, I / groups)
    w = weight.double()
    spread = (1,) * (w.dim() - 2)
    folded = w * affine.scale[channel].reshape(o, i_local, *spread)
    shift = (w * affine.shift[channel].reshape(o, i_local, *spread)).reshape(o, -1).sum(dim=1)
    return folded.float(), (bias.double() + shift).float()


def fold_linear(weight: torch.Tensor, bias: torch.Tensor, affine: Affine):
    """``(W diag(a), b + W c)`` for a linear layer reading ``affine``'s output."""
    w = weight.double()
    return (w * affine.scale[None, :]).float(), (bias.double() + w @ affine.shift).float()


def batch_norm_map(gamma, beta, mean, var, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """An inference batch norm as ``(scale, shift)``: ``g = gamma / sqrt(var + eps)``, ``beta - mean g``."""
    mean, var = mean.double(), var.double()
    g = (torch.ones_like(mean) if gamma is None else gamma.double()) / torch.sqrt(var + float(eps))
    return g, (0.0 if beta is None else beta.double()) - mean * g
