"""What to do next, decided from values alone: no providers, no clock, no journal.

The safety rules that decide whether a release moves live here as plain functions, so
they can be tested exhaustively: no step is taken on missing data (rule 1), a tripped
gate rolls back or pauses, and dark providers pause a release rather than let it sit.
"""

from __future__ import annotations

import math
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


def blocking_gate(
    gates: Sequence[GateStatus], *, short_ok: bool = False
) -> GateStatus | None:
    """The first gate whose state forbids moving forward (failing or without data).

    `short_ok` lets through a gate that only needs more data (`needs_more_data`): an
    operator may cut the gathering of evidence short as they may cut a bake short.
    """
    for g in gates:
        if g.tripped or g.verdict is not Verdict.PASS:
            if short_ok and not g.tripped and g.needs_more_data:
                continue
            return g
    return None


def short_gate(gates: Sequence[GateStatus]) -> GateStatus | None:
    """The first gate that has not gathered enough evidence yet (`needs_more_data`)."""
    return next((g for g in gates if g.needs_more_data), None)


def gate_refusal(action: str, gate: GateStatus) -> str:
    state = "failing" if gate.tripped else gate.verdict.value
    return f"{action} refused: gate {gate.name} is {state} ({gate.reason})"


def _spell(seconds: float) -> str:
    """'26s', '1m30s': rounded up, as the console shows a bake that is still running."""
    total = max(0, math.ceil(seconds - 1e-9))
    minutes, secs = divmod(total, 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def bake_left(state: ReleaseState, steps: StepPlan) -> float:
    """Seconds of the current step's bake still to go (0 when nothing is baking)."""
    if state.phase is not Phase.PROGRESSING:
        return 0.0
    step = steps.step(state.step_index)
    if step is None:
        return 0.0
    return max(0.0, step.bake - state.bake_elapsed)


def promote_refusal(
    state: ReleaseState, gates: Sequence[GateStatus], blind: str | None,
    *, action: str = "promote",
) -> str | None:
    """Why a promotion to 100 % must not happen now; None when it may.

    The engine refuses with these words and the console asks with them before it opens a
    dialog, so the two cannot disagree. `action` names what is refused: an advance to the
    last step follows the same rules.
    """
    if state.phase not in (Phase.PENDING, Phase.PROGRESSING, Phase.PAUSED):
        return f"{action} refused: release is {state.phase.label.lower()}"
    if blind is not None:
        return f"{action} refused: {blind}"
    blocking = blocking_gate(gates)
    # Before the first step the canary has no traffic, so no gate can have judged it.
    if blocking is not None and state.step_index >= 0:
        return gate_refusal(action, blocking)
    return None


def advance_refusal(
    state: ReleaseState, gates: Sequence[GateStatus], steps: StepPlan, blind: str | None,
    *, skip_bake: bool, reason: str, window: str | None = None, step_hold: str | None = None,
) -> str | None:
    """Why one step forward must not be taken now; None when it may.

    A bake that is not over refuses unless the operator says to cut it short and why
    (`skip_bake` with a `reason`); so does a gate that still needs more data (counts
    that show no breach but not yet enough health). A step to the last weight is a
    promotion and follows `promote_refusal`, which no `skip_bake` overrides. A failing
    gate, missing data or a blind engine is the better reason to give, so they come
    first.
    """
    if state.phase not in (Phase.PENDING, Phase.PROGRESSING):
        return f"advance refused: release is {state.phase.label.lower()}"
    nxt = steps.next_index(state.step_index)
    step = steps.step(nxt) if nxt is not None else None
    if nxt is None or step is None:
        return "advance refused: already at the last step"
    if blind is not None:
        return f"advance refused: {blind}"
    started = state.phase is not Phase.PENDING
    if not started and window is not None:
        # Outside the deployment window (or in a freeze) no release starts, by hand or not.
        return (f"advance refused: the release may not start now: {window}; starting "
                "anyway must be asked for, with a reason (--override-window --reason TEXT)")
    if started:
        blocking = blocking_gate(gates, short_ok=True)
        if blocking is not None:
            return gate_refusal("advance", blocking)
    if step_hold is not None and not skip_bake:
        return (f"advance refused: {step_hold}; beginning it early must be asked for, with "
                "a reason (relconsole advance --skip-bake --reason TEXT)")
    if step_hold is not None and not reason.strip():
        return f"advance refused: beginning the step early ({step_hold}) needs a reason"
    last = nxt == steps.last_index
    left = bake_left(state, steps)
    busy = steps.busy(state.step_index) if started else None
    if busy is not None and not skip_bake:
        # The controller leaves this step by itself; a promote now skips what is left
        # of it (a pause's wait, an analysis), which is the operator's explicit call.
        return (f"advance refused: {busy}; promoting now cuts this step short and must "
                "be asked for, with a reason (relconsole advance --skip-bake --reason TEXT)")
    if busy is not None and not reason.strip():
        return f"advance refused: cutting the step short ({busy}) needs a reason for the journal"
    if left > 0 and not skip_bake:
        current = steps.step(state.step_index)
        baked = f"{_spell(state.bake_elapsed)} of {_spell(current.bake if current else 0)}"
        return (f"advance refused: the canary has baked {baked} at {state.weight}% "
                f"({_spell(left)} left); cutting a bake short must be asked for, with "
                "a reason (relconsole advance --skip-bake --reason TEXT)")
    if last:
        # A promotion needs the canary shown healthy: no early one on too little data.
        refusal = promote_refusal(state, gates, blind, action=f"advance to {step.weight}%")
        if refusal is not None:
            return refusal
    short = short_gate(gates) if started else None
    if short is not None and not skip_bake:
        return (f"advance refused: gate {short.name} needs more data ({short.reason}); "
                "advancing on less evidence must be asked for, with a reason "
                "(relconsole advance --skip-bake --reason TEXT)")
    if not reason.strip():
        if left > 0:
            return (f"advance refused: cutting the bake short ({_spell(left)} left) needs "
                    "a reason for the journal")
        if short is not None:
            return (f"advance refused: advancing before gate {short.name} has enough "
                    "data needs a reason for the journal")
    return None


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
    # The last step is the end; a step at 100 % before it (blue-green's switch) bakes.
    if step is None or steps.next_index(state.step_index) is None:
        return False
    if state.bake_elapsed < step.bake:
        return False
    if steps.busy(state.step_index) is not None:
        return False  # the controller moves on by itself; promoting would skip its step
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
    hold: str | None = None,
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
    # `hold`: outside the deployment window, or the next step's `at:` still to come —
    # the schedule stops only moving on, never a rollback or a pause.
    if auto_advance and hold is None and ready_to_advance(state, gates, steps, blind):
        return Advance("bake complete, gates passing")
    return Hold()
