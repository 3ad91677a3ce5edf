"""What to do next, decided from values alone: no providers, no clock, no journal.

The safety rules that decide whether a release moves live here as plain functions, so
they can be tested exhaustively: no step is taken on missing data (rule 1), a tripped
gate rolls back or pauses, and dark providers pause a release rather than let it sit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from relconsole.engine.progress import ReleaseState
from relconsole.engine.state import ProblemNote
from relconsole.engine.steps import StepPlan
from relconsole.model import GateStatus, Phase, Verdict

# Sources whose problems make the engine blind: nothing moves while either is dark.
BLINDING_SOURCES = ("metrics", "traffic")
# How long providers may stay dark when no gate says otherwise.
DEFAULT_DARK_LIMIT = 6


@dataclass(frozen=True)
class Hold:
    """Nothing to do on this poll."""


@dataclass(frozen=True)
class Advance:
    reason: str


@dataclass(frozen=True)
class Pause:
    reason: str


@dataclass(frozen=True)
class StartRollback:
    reason: str


@dataclass(frozen=True)
class RetryRollback:
    """A pending rollback's next attempt is due."""


Decision = Hold | Advance | Pause | StartRollback | RetryRollback


def blind_reason(problems: Mapping[str, ProblemNote], expected_weight: int | None) -> str | None:
    """Why the engine cannot trust what it sees right now, if it cannot.

    A gate may still hold a reading from before a metrics outage (it turns stale only
    after stale_after), and the weight may be unknown after a failed or unverified
    change: no step is ever taken on that (safety rule 1).
    """
    for source in BLINDING_SOURCES:
        note = problems.get(source)
        if note is not None:
            return note.message
    if expected_weight is None:
        return "the canary weight has not been verified since the last change"
    return None


def blocking_gate(gates: Sequence[GateStatus]) -> GateStatus | None:
    """The first gate whose state forbids moving forward (failing or without data)."""
    for g in gates:
        if g.tripped or g.verdict is not Verdict.PASS:
            return g
    return None


def gate_refusal(action: str, gate: GateStatus) -> str:
    state = "failing" if gate.tripped else gate.verdict.value
    return f"{action} refused: gate {gate.name} is {state} ({gate.reason})"


def ready_to_advance(
    state: ReleaseState, gates: Sequence[GateStatus], steps: StepPlan, blind: str | None
) -> bool:
    """Bake over and every gate passing in this step: the next step may be taken."""
    if blind is not None:
        return False
    if state.phase is Phase.PENDING:
        return True
    if state.phase is not Phase.PROGRESSING:
        return False
    step = steps.step(state.step_index)
    if step is None or step.weight >= 100:
        return False
    if state.bake_elapsed < step.bake:
        return False
    return all(g.verdict is Verdict.PASS and g.passed_this_step for g in gates)


def dark_pause(
    phase: Phase,
    gates: Sequence[GateStatus],
    problems: Mapping[str, ProblemNote],
    dark_polls: Mapping[str, int],
) -> str | None:
    """Why a release whose providers stayed dark for `inconclusive_limit` polls pauses.

    Nothing steps while they are dark anyway; pausing tells a human the release is not
    moving, and leaves it to them to decide when it may go on. A blind gate says the
    same for metrics once a step is under way (see `decide`), so metrics are checked
    here only before the first step, where gates are not judged.
    """
    if phase not in (Phase.PENDING, Phase.PROGRESSING):
        return None
    limit = min((g.spec.inconclusive_limit for g in gates), default=DEFAULT_DARK_LIMIT)
    sources = {"traffic": "no traffic read for {n} polls, the canary weight is unknown"}
    if phase is Phase.PENDING:
        sources["metrics"] = "no metrics for {n} polls, the gates cannot be judged"
    for source, text in sources.items():
        note = problems.get(source)
        n = dark_polls.get(source, 0)
        if note is not None and n >= limit:
            return f"{text.format(n=n)} ({note.message})"
    return None


def decide(
    state: ReleaseState,
    gates: Sequence[GateStatus],
    problems: Mapping[str, ProblemNote],
    dark_polls: Mapping[str, int],
    steps: StepPlan,
    *,
    now: float,
    auto_advance: bool,
    auto_rollback: bool,
) -> Decision:
    """The driver's one decision per poll, in order of what matters most."""
    if state.rolling_back:
        due = state.rollback.next_at
        return RetryRollback() if due is not None and now >= due else Hold()
    if state.phase.terminal:
        return Hold()
    tripped = next((g for g in gates if g.tripped), None)
    if tripped is not None and state.phase in (Phase.PROGRESSING, Phase.PAUSED):
        reason = f"gate {tripped.name} failed {tripped.consecutive_failures}× ({tripped.reason})"
        if auto_rollback:
            return StartRollback(reason)
        if state.phase is Phase.PROGRESSING:
            return Pause(f"{reason} — roll back or resume")
    dark = dark_pause(state.phase, gates, problems, dark_polls)
    if dark is not None:
        return Pause(dark)
    if state.phase is Phase.PROGRESSING:
        blind_gate = next(
            (g for g in gates if g.consecutive_inconclusive >= g.spec.inconclusive_limit), None
        )
        if blind_gate is not None:
            return Pause(
                f"no data: gate {blind_gate.name} inconclusive for "
                f"{blind_gate.consecutive_inconclusive} polls ({blind_gate.reason})"
            )
    blind = blind_reason(problems, state.expected_weight)
    if auto_advance and ready_to_advance(state, gates, steps, blind):
        return Advance("bake complete, gates passing")
    return Hold()
