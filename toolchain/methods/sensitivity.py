"""Per-layer pruning sensitivity and the per-layer ratios it implies (Paupamah, James and Klein 2020).

Paupamah et al. (after Han et al.) picks how much of each network to prune from a
*sensitivity scan*: prune one layer at a time by weight magnitude at increasing ratios,
retrain briefly, and see where accuracy starts to fall. Here the scan is done without
retraining (cheap, and it ranks layers the same way) and, instead of a hand-chosen
threshold, the ratios are chosen automatically so the whole network lands exactly on
the requested weight sparsity:

1. :func:`scan` — for each layer ``l`` and ratio ``r`` of the grid, the validation
   accuracy drop ``d_l(r)`` when only layer ``l`` is pruned to ``r``;
2. the curve is made monotone (``D_l(r) = max over r' <= r of d_l(r')``, ``D_l(0) = 0``)
   and linear between grid points;
3. :func:`allocate` — one accuracy tolerance ``tau`` shared by all layers; layer ``l``
   gets the largest ratio with ``D_l(r) <= tau``; ``tau`` is the smallest value whose
   weight-weighted mean ratio reaches the target (bisection, then interpolation between
   the two allocations around the jump, so the mean is exactly the target).

Less sensitive layers are pruned harder; no layer goes beyond ``max_ratio``.

>>> a = Sensitivity("a", 100, (0.0, 0.5, 0.9), (0.0, 0.0, 0.02))   # robust layer
>>> b = Sensitivity("b", 100, (0.0, 0.5, 0.9), (0.0, 0.30, 0.60))  # sensitive layer
>>> r = allocate([a, b], target=0.5, max_ratio=0.9)
>>> r["a"] > r["b"], round(r["a"] * 100 + r["b"] * 100)
(True, 100)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from toolchain.methods.base import MethodError

BISECTION_STEPS = 100


@dataclass(frozen=True)
class Sensitivity:
    """Accuracy drop of layer ``name`` (``weights`` prunable weights) at each ratio."""

    name: str
    weights: int
    ratios: tuple[float, ...]
    drops: tuple[float, ...]

    def envelope(self) -> tuple[list[float], list[float]]:
        """Grid with ``(0, 0)`` first and the running maximum of the drops."""
        rs, ds = [0.0], [0.0]
        for r, d in sorted(zip(self.ratios, self.drops)):
            if r <= 0.0:
                continue
            rs.append(r)
            ds.append(max(ds[-1], d))
        return rs, ds

    def ratio_at(self, tolerance: float) -> float:
        """Largest ratio whose (monotone, interpolated) drop is at most ``tolerance``."""
        rs, ds = self.envelope()
        for j in range(1, len(rs)):
            if ds[j] > tolerance:
                if ds[j - 1] > tolerance:
                    return rs[j - 1]
                frac = (tolerance - ds[j - 1]) / (ds[j] - ds[j - 1])
                return rs[j - 1] + frac * (rs[j] - rs[j - 1])
        return rs[-1]

    def to_dict(self) -> dict:
        return {"weights": self.weights, "ratios": list(self.ratios), "drops": list(self.drops)}


def magnitude_mask(magnitude: torch.Tensor, mask: torch.Tensor, ratio: float) -> torch.Tensor:
    """Mask pruning the ``ceil(ratio * n)`` smallest magnitudes; already-masked entries
    go first, so masks only grow. Ties: the lower flat index is pruned first.

    >>> magnitude_mask(torch.tensor([0.5, 0.1, 0.3, 0.2]), torch.ones(4), 0.5).tolist()
    [1.0, 0.0, 1.0, 0.0]
    """
    n = magnitude.numel()
    k = min(n, max(0, math.ceil(ratio * n - 1e-9)))
    score = torch.where(mask.reshape(-1) != 0, magnitude.reshape(-1).to(torch.float32),
                        torch.full((n,), -1.0))
    order = torch.argsort(score, stable=True)
    new = torch.ones(n)
    new[order[:k]] = 0.0
    return new.reshape(mask.shape)


def scan(layers: Sequence[tuple[str, object]], ratios: Sequence[float],
         magnitude: Callable[[object], torch.Tensor], accuracy: Callable[[], float]
         ) -> list[Sensitivity]:
    """Prune each layer alone (its ``weight_mask``) to each ratio and measure ``accuracy()``.

    ``magnitude(layer)`` gives the weight magnitudes pruning ranks by. Every mask is
    restored afterwards.
    """
    base = accuracy()
    result = []
    for name, layer in layers:
        saved = layer.weight_mask.clone()
        drops = []
        try:
            with torch.no_grad():
                mags = magnitude(layer)
            for r in ratios:
                layer.weight_mask.copy_(magnitude_mask(mags, saved, r))
                drops.append(base - accuracy())
        finally:
            layer.weight_mask.copy_(saved)
        result.append(Sensitivity(name, saved.numel(), tuple(ratios), tuple(drops)))
    return result


def allocate(sensitivities: Sequence[Sensitivity], target: float, max_ratio: float
             ) -> dict[str, float]:
    """Per-layer ratios with weighted mean exactly ``target`` (see the module docstring)."""
    total = sum(s.weights for s in sensitivities)
    if total == 0 or target <= 0:
        return {s.name: 0.0 for s in sensitivities}
    reachable = sum(s.weights * min(max_ratio, s.ratio_at(math.inf)) for s in sensitivities)
    if reachable / total < target - 1e-12:
        raise MethodError(f"target sparsity {target} is above the most the scan allows "
                          f"({reachable / total:.3f}, every layer at ratio {max_ratio})")

    def ratios(tol: float) -> list[float]:
        return [min(max_ratio, s.ratio_at(tol)) for s in sensitivities]

    def mean(rs: list[float]) -> float:
        return sum(s.weights * r for s, r in zip(sensitivities, rs)) / total

    lo, hi = -1.0, max(max(s.envelope()[1]) for s in sensitivities) + 1.0
    low = [0.0] * len(sensitivities)
    if mean(ratios(0.0)) < target:
        lo = 0.0
        for _ in range(BISECTION_STEPS):
            mid = (lo + hi) / 2
            if mean(ratios(mid)) >= target:
                hi = mid
            else:
                lo = mid
        low = ratios(lo)
    else:
        hi = 0.0
    high = ratios(hi)
    f_lo, f_hi = mean(low), mean(high)
    theta = 1.0 if f_hi == f_lo else (target - f_lo) / (f_hi - f_lo)
    return {s.name: a + theta * (b - a) for s, a, b in zip(sensitivities, low, high)}
