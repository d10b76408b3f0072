"""Per-channel activation statistics through forward hooks (Zhang et al.'s importance measure).

:class:`ActivationRecorder` hooks the layers in each group's ``outputs`` and averages
``|activation|`` per channel over every batch, position and hooked layer while the
``with`` block runs. The hooks are removed on exit.

>>> from toolchain.models import build
>>> from toolchain.pruning.graph import channel_groups
>>> net = build("cnn", input_shape=(1, 8, 8))
>>> groups = channel_groups(net)
>>> with ActivationRecorder(net, groups) as rec:
...     _ = net(torch.randn(4, 1, 8, 8))
>>> rec.importance(groups[0]).shape
torch.Size([16])
"""

from __future__ import annotations

import torch

from toolchain.quant import QuantTensor


def channel_l1(output) -> torch.Tensor:
    """Mean ``|value|`` per channel of a (N, C, ...) tensor or QuantTensor."""
    value = output.value if isinstance(output, QuantTensor) else output
    dims = [d for d in range(value.dim()) if d != 1]
    return value.detach().abs().mean(dim=dims)


class ActivationRecorder:
    """Context manager: ``importance(group)`` = mean |activation| per channel seen inside it."""

    def __init__(self, model, groups) -> None:
        self.model, self.groups = model, list(groups)
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}
        self._handles = []

    def __enter__(self) -> "ActivationRecorder":
        for group in self.groups:
            for name in group.outputs:
                self._handles.append(self.model.layers[name].register_forward_hook(self._hook(group.name)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def _hook(self, key: str):
        def hook(module, args, output):
            l1 = channel_l1(output)
            self._sums[key] = self._sums.get(key, torch.zeros_like(l1)) + l1
            self._counts[key] = self._counts.get(key, 0) + 1
        return hook

    def importance(self, group) -> torch.Tensor:
        """Mean |activation| per channel of ``group`` (zeros if nothing was recorded)."""
        if group.name not in self._sums:
            return torch.zeros(group.channels)
        return self._sums[group.name] / self._counts[group.name]
