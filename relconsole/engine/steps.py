"""Which step a release is on, and what advancing means: the one seam for step plans.

Today the plan is the config's `release.steps`. A traffic provider that owns its own plan
(an Argo Rollout's `spec.strategy.canary.steps`) supplies another `StepPlan`; nothing
else in the engine reads the steps directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from relconsole.model import Step


class StepPlan(Protocol):
    @property
    def count(self) -> int: ...

    def step(self, index: int) -> Step | None:
        """The step at `index`; None before the first (-1) or past the last."""
        ...

    def index_for_weight(self, weight: int) -> int:
        """The step a live canary weight corresponds to; -1 before the first step."""
        ...

    def next_index(self, index: int) -> int | None:
        """The step an advance from `index` goes to; None at the last step."""
        ...

    @property
    def last_index(self) -> int: ...


class FixedSteps:
    """The config's own steps: weights that only grow, the last one usually 100."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self._steps = tuple(steps)

    @property
    def count(self) -> int:
        return len(self._steps)

    def step(self, index: int) -> Step | None:
        return self._steps[index] if 0 <= index < len(self._steps) else None

    def index_for_weight(self, weight: int) -> int:
        index = -1
        for i, step in enumerate(self._steps):
            if step.weight <= weight:
                index = i
        return index

    def next_index(self, index: int) -> int | None:
        nxt = index + 1
        return nxt if nxt < len(self._steps) else None

    @property
    def last_index(self) -> int:
        return len(self._steps) - 1
