"""Pruning schedules as pure functions of the step (Zhang, Colbert and Das 2022, section 4.1 and 5.1).

All three channel schedules spend the same pruning budget of ``L * t_p`` steps
(``L`` prunable groups, ``t_p`` steps per group) and update masks every ``dp`` steps:

* **layerwise** (Zhang et al., Algorithm 1): group ``i`` owns steps
  ``[i * t_p, (i + 1) * t_p)``; its mask is set to the target sparsity at the mask
  updates inside its window, from importance gathered since the window began.
  Groups are visited in topological order, one at a time.
* **stepwise** (Zhu & Gupta 2018, the paper's baseline): every group at once, with the
  cubic ramp :func:`cubic_sparsity` from 0 to the target over the whole budget.
* **one-shot**: dense training for the budget, importance from its last ``t_p``
  steps, then every group pruned to the target at the final step.

>>> [layerwise_update(t, steps_per_group=4, update_every=2) for t in range(1, 9)]
[None, 0, None, 0, None, 1, None, 1]
>>> [round(cubic_sparsity(t, 8, 0.5), 3) for t in (0, 4, 8)]
[0.0, 0.438, 0.5]
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """Step counts of a channel-pruning run (``t_p``, ``dp`` and the number of groups)."""

    groups: int
    steps_per_group: int
    update_every: int

    def __post_init__(self) -> None:
        if self.steps_per_group < 1 or self.update_every < 1:
            raise ValueError("steps_per_group and update_every must be >= 1")

    @property
    def total(self) -> int:
        return self.groups * self.steps_per_group


def layerwise_update(step: int, steps_per_group: int, update_every: int) -> int | None:
    """The group whose mask is updated after optimizer step ``step`` (1-based), or None.

    Inside each group's window of ``steps_per_group`` steps the mask is updated every
    ``update_every`` steps and always at the window's last step.
    """
    if step < 1:
        return None
    group, local = divmod(step - 1, steps_per_group)
    local += 1  # 1..steps_per_group
    if local % update_every == 0 or local == steps_per_group:
        return group
    return None


def is_update_step(step: int, total: int, update_every: int) -> bool:
    """Stepwise/one-shot mask updates: every ``update_every`` steps and at the last one."""
    return 1 <= step <= total and (step % update_every == 0 or step == total)


def cubic_sparsity(step: int, total: int, target: float, initial: float = 0.0) -> float:
    """Zhu & Gupta: ``s_t = s_T + (s_0 - s_T) (1 - t / total)^3`` for ``0 <= t <= total``."""
    if total <= 0:
        return target
    t = min(max(step, 0), total)
    return target + (initial - target) * (1.0 - t / total) ** 3
