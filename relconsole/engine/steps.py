"""Which step a release is on, and what advancing means: the one seam for step plans.

The plan is the config's `release.steps` (`FixedSteps`), or, when the traffic provider's
controller owns it (an Argo Rollout's `spec.strategy.canary.steps`), the plan that
controller reports on every read (`ControllerSteps`); nothing else in the engine reads
the steps directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from relconsole.model import ControllerState, Route, Step, TrafficState


class StepPlan(Protocol):
    @property
    def count(self) -> int: ...

    def step(self, index: int) -> Step | None:
        """The step at `index`; None before the first (-1) or past the last."""
        ...

    def index_for_weight(self, weight: int, route: Route | None = None) -> int:
        """The step a live canary weight (and route, where the strategy has one) corresponds
        to; -1 before the first step. `route` None: not known, judged by the weight."""
        ...

    def next_index(self, index: int) -> int | None:
        """The step an advance from `index` goes to; None at the last step."""
        ...

    @property
    def last_index(self) -> int: ...

    def label(self, index: int) -> str:
        """'step 2/5' as this plan counts its steps."""
        ...

    def busy(self, index: int) -> str | None:
        """Why the plan's owner moves on from this step by itself, so that an advance
        now would cut it short; None when the step waits to be advanced."""
        ...

    @property
    def controller(self) -> ControllerState | None:
        """What the controller that owns the plan said last; None for the config's plan."""
        ...


class FixedSteps:
    """The config's own steps: weights that only grow, the last one usually 100."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self._steps = tuple(steps)

    @property
    def count(self) -> int:
        return len(self._steps)

    def step(self, index: int) -> Step | None:
        return self._steps[index] if 0 <= index < len(self._steps) else None

    def index_for_weight(self, weight: int, route: Route | None = None) -> int:
        index = -1
        for i, step in enumerate(self._steps):
            if step.weight <= weight and (route is None or route.covers(step.route)):
                index = i
        # Steps at one position (blue-green's switch and its end, both at 100 %) cannot be
        # told apart by a read: the first of them, so a restart bakes again rather than
        # calling the release done.
        while index > 0 and self._same_place(index - 1, index):
            index -= 1
        return index

    def _same_place(self, a: int, b: int) -> bool:
        first, second = self._steps[a], self._steps[b]
        return first.weight == second.weight and first.route.same(second.route)

    def next_index(self, index: int) -> int | None:
        nxt = index + 1
        return nxt if nxt < len(self._steps) else None

    @property
    def last_index(self) -> int:
        return len(self._steps) - 1

    def label(self, index: int) -> str:
        text = f"step {index + 1}/{len(self._steps)}"
        step = self.step(index)
        return f"{text} · {step.label}" if step is not None and step.label else text

    def busy(self, index: int) -> str | None:
        return None

    @property
    def controller(self) -> ControllerState | None:
        return None


class ControllerSteps:
    """The plan of a controller that owns it (Argo Rollouts), as its last read says.

    Index i is the controller's own step number (Argo's status.currentStepIndex: steps
    completed), so `len(plan)` is "done" at 100 %. The step a release is on is the one
    the controller reports, whatever the weight (two steps may share a weight). Timed
    pauses are the controller's bake, not the engine's: every step has bake 0, and a step
    the controller leaves by itself is `busy`.
    """

    def __init__(self, read: Callable[[], TrafficState | None]) -> None:
        self._read = read

    @property
    def controller(self) -> ControllerState | None:
        traffic = self._read()
        return traffic.controller if traffic is not None else None

    def _plan_len(self) -> int:
        c = self.controller
        return len(c.plan) if c is not None else 0

    @property
    def count(self) -> int:
        return self._plan_len() + 1

    def step(self, index: int) -> Step | None:
        c = self.controller
        if c is None or index < 0 or index > len(c.plan):
            return None
        if index == len(c.plan):
            return Step(weight=100)
        return Step(weight=c.plan[index].weight)

    def index_for_weight(self, weight: int, route: Route | None = None) -> int:
        c = self.controller
        if c is None:
            return -1
        if c.step is None:
            # Argo reads a missing index as the first step; a rollout with no steps is at
            # its end once promoted.
            return len(c.plan) if not c.plan else 0
        return max(0, min(c.step, len(c.plan)))

    def next_index(self, index: int) -> int | None:
        nxt = index + 1
        return nxt if nxt <= self._plan_len() else None

    @property
    def last_index(self) -> int:
        return self._plan_len()

    def label(self, index: int) -> str:
        # The number `kubectl argo rollouts get` prints, so the two never disagree.
        return f"step {max(index, 0)}/{self._plan_len()}"

    def busy(self, index: int) -> str | None:
        c = self.controller
        if c is None or c.waiting or c.manually_paused or c.aborted:
            return None
        if not 0 <= index < len(c.plan):
            return None
        return f"{c.system} is at {c.plan[index].text} and moves on by itself"
