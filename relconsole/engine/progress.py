"""Where the release stands: its phase, step and weight, and a rollback under way.

This is the engine's mutable state, kept apart from what it observes (`observe`) so the
decisions in `policy` can be made from plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relconsole.model import Phase


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


@dataclass
class ReleaseState:
    phase: Phase = Phase.PENDING
    step_index: int = -1
    """Index into the step plan; -1 before the first step."""
    weight: int = 0
    """The last weight read from the traffic provider."""
    expected_weight: int | None = None
    """What this engine last verified; None: unknown, adopt what the provider says next."""
    bake_elapsed: float = 0.0
    last_tick: float | None = None
    pause_reason: str = ""
    last_error: str = ""
    """The last refused or failed action, for the status line."""
    advance_failures: int = 0
    """Failed step changes in a row (see `changes.ADVANCE_FAILURE_LIMIT`)."""
    rollback: RollbackState = field(default_factory=RollbackState)

    @property
    def rolling_back(self) -> bool:
        return self.phase in (Phase.ROLLING_BACK, Phase.ROLLBACK_FAILED)

    def journal_view(self) -> dict[str, Any]:
        """The state as the journal's `before` / `after` fields record it."""
        state: dict[str, Any] = {
            "phase": self.phase.value,
            "step": self.step_index,
            "weight": self.weight,
        }
        if self.pause_reason:
            state["pause_reason"] = self.pause_reason
        return state
