"""Where the release stands: its phase, step and weight, and a rollback under way.

This is the engine's mutable state, kept apart from what it observes (`observe`) so the
decisions in `policy` can be made from plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relconsole.engine.state import RollbackCause
from relconsole.model import Phase, Route


@dataclass
class RollbackState:
    reason: str = ""
    """Why the release is being (or was) rolled back."""
    error: str = ""
    """Why the last attempt is not verified ("" once verified, or before any attempt)."""
    attempts: int = 0
    next_at: float | None = None
    """When the next attempt is due; None when no rollback is pending."""
    flags_pending: list[str] = field(default_factory=list)
    """Release flags still to kill (plan.kill_flags_on_rollback)."""
    cause: RollbackCause | None = None
    """The last rollback's cause and the verdicts behind it, for the screen."""


@dataclass
class ReleaseState:
    phase: Phase = Phase.PENDING
    step_index: int = -1
    """Index into the step plan; -1 before the first step."""
    weight: int = 0
    """The last weight read from the traffic provider."""
    expected_weight: int | None = None
    """What this engine last verified; None: unknown, adopt what the provider says next."""
    route: Route = field(default_factory=Route)
    """The last route (cohorts, mirror, batches) read from the traffic provider."""
    expected_route: Route = field(default_factory=Route)
    """The route this engine last verified (with `expected_weight`)."""
    strategy: str = "canary"
    """release.strategy, so every journal record names it."""
    step_label: str = ""
    """What the current step is in the strategy's words ("cohort beta-users", "switch")."""
    bake_elapsed: float = 0.0
    last_tick: float | None = None
    pause_reason: str = ""
    error_text: str = ""
    error_state: tuple[Phase, int] | None = None
    """The phase and step `error_text` was said in (see `last_error`)."""
    advance_failures: int = 0
    """Failed step changes in a row (see `changes.ADVANCE_FAILURE_LIMIT`)."""
    window_override: str = ""
    """Why this console may start and advance outside the deployment window ("": it may
    not); journalled as `window.override` when given."""
    hold_said: str = ""
    """The schedule hold last announced, so the event stream says it once."""
    rollback: RollbackState = field(default_factory=RollbackState)

    @property
    def last_error(self) -> str:
        """The last refused or failed action, for the status line.

        A message belongs to the state it was said in: 'advance refused: release is
        paused' must not still stand beside PROMOTED after a resume and a promotion. So
        it reads "" once the phase or the step has changed since it was set.
        """
        if self.error_state != (self.phase, self.step_index):
            return ""
        return self.error_text

    @last_error.setter
    def last_error(self, message: str) -> None:
        self.error_text = message
        self.error_state = (self.phase, self.step_index) if message else None

    @property
    def rolling_back(self) -> bool:
        return self.phase in (Phase.ROLLING_BACK, Phase.ROLLBACK_FAILED)

    def journal_view(self) -> dict[str, Any]:
        """The state as the journal's `before` / `after` fields record it.

        `step` is the number the screen, `status` and the headless lines show (1 for the
        first step, 0 before it), not the index: a postmortem reading `step -1→0` next
        to a screen that said `step 1/4` would doubt one of them.
        """
        state: dict[str, Any] = {
            "phase": self.phase.value,
            "step": self.step_index + 1,
            "weight": self.weight,
            "strategy": self.strategy,
        }
        if self.step_label:
            state["step_label"] = self.step_label
        if self.route:
            state["route"] = self.route.text()
        if self.pause_reason:
            state["pause_reason"] = self.pause_reason
        return state
