"""Watch-only: learn the release's phase from the driver's journal, and show its records.

Also what any console that attaches shows of the release's past: the last records of
the journal, and the cause of a rollback with the verdicts behind it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from relconsole import units
from relconsole.engine.context import EngineContext
from relconsole.engine.state import EventKind, RollbackCause
from relconsole.model import (
    GateSpec,
    GateStatus,
    Mode,
    Phase,
    ReleasePlan,
    Verdict,
    actor_text,
)

# Records of the release's past a console shows when it attaches mid-release.
ARRIVAL_RECORDS = 20
# Event keywords a record's data must not shadow when it is replayed as an event.
_EVENT_FIELDS = frozenset({"kind", "message", "actor", "at", "past"})


def record_line(record: Mapping[str, Any]) -> tuple[EventKind, str, str, float | None]:
    """A journal record as an event: its kind, its text, who, and when."""
    who = actor_text(record.get("actor") or {})
    text = str(record.get("intent", "?"))
    if record.get("reason"):
        text += f": {record['reason']}"
    if record.get("outcome"):
        text += f" → {record['outcome']}"
    at = record.get("ts")
    return (EventKind.of_intent(record.get("intent")), text, who,
            float(at) if isinstance(at, int | float) else None)


def _number(raw: object) -> float | None:
    return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None


def gate_from_record(raw: Mapping[str, Any], plan: ReleasePlan) -> GateStatus | None:
    """A gate as a journal record wrote it (`GateStatus.as_dict`), or None if unreadable."""
    name = raw.get("gate")
    if not isinstance(name, str):
        return None
    spec = next((g for g in plan.gates if g.metric == name), GateSpec(name))
    try:
        verdict = Verdict(str(raw.get("verdict")))
    except ValueError:
        verdict = Verdict.INCONCLUSIVE
    failures = raw.get("consecutive_failures")
    unit = raw.get("unit")
    return GateStatus(
        spec=spec,
        verdict=verdict,
        reason=str(raw.get("reason") or ""),
        canary=_number(raw.get("canary")),
        baseline=_number(raw.get("baseline")),
        consecutive_failures=failures if isinstance(failures, int) else 0,
        unit=unit if isinstance(unit, str) and unit else units.unit_of(plan.metrics, name),
    )


def rollback_cause(record: Mapping[str, Any], plan: ReleasePlan) -> RollbackCause:
    """The cause of a rollback from its intent's record (reason, where it stood, gates)."""
    _, _, who, at = record_line(record)
    before = record.get("before") or {}
    data = record.get("data") or {}
    raw_gates = data.get("gates") if isinstance(data, Mapping) else None
    gates = [gate_from_record(g, plan) for g in raw_gates or () if isinstance(g, Mapping)]
    weight, step = before.get("weight"), before.get("step")
    return RollbackCause(
        reason=str(record.get("reason") or "rollback"),
        at=at or 0.0,
        actor=who,
        weight=weight if isinstance(weight, int) else 0,
        # The journal writes the step as shown (1-based; see ReleaseState.journal_view).
        step_index=step - 1 if isinstance(step, int) else -1,
        gates=tuple(g for g in gates if g is not None),
    )


def is_rollback_intent(record: Mapping[str, Any]) -> bool:
    """The record that starts a rollback (its outcome is written separately)."""
    return record.get("intent") == "rollback" and not record.get("outcome")


def last_rollback_cause(
    records: Sequence[Mapping[str, Any]], plan: ReleasePlan
) -> RollbackCause | None:
    for record in reversed(records):
        if is_rollback_intent(record):
            return rollback_cause(record, plan)
    return None


class Follower:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

    def show(self, record: Mapping[str, Any], *, past: bool = False) -> None:
        """Show a journal record as an event on this console, with the values it holds
        (a rollback's gate verdicts), so a detail view can show them."""
        kind, text, who, at = record_line(record)
        data = record.get("data")
        extra = ({k: v for k, v in data.items() if k not in _EVENT_FIELDS}
                 if isinstance(data, Mapping) else {})
        self.ctx.bus.emit(kind, text, actor=who, at=at, past=past, **extra)

    def arrive(self, records: Sequence[Mapping[str, Any]]) -> None:
        """A console attaching mid-release sees the recent history, then what is new.

        `records` is the journal as it stood before this console wrote anything. A
        watcher then only hears records written after them.
        """
        for record in records[-ARRIVAL_RECORDS:]:
            self.show(record, past=True)
        if self.ctx.drive.mode is Mode.WATCH:
            self.ctx.drive.journal.poll_new()

    def follow(self) -> None:
        """Learn phase and pause reason from the records the driver wrote since last time."""
        state = self.ctx.state
        for record in self.ctx.drive.journal.poll_new():
            after = record.get("after") or {}
            if "phase" in after:
                with contextlib.suppress(ValueError):
                    state.phase = Phase(after["phase"])
                state.pause_reason = after.get("pause_reason", "")
            if is_rollback_intent(record):
                state.rollback.cause = rollback_cause(record, self.ctx.plan)
                state.rollback.reason = state.rollback.cause.reason
            self.show(record)
        if state.phase is Phase.PROGRESSING and state.weight >= 100:
            state.phase = Phase.PROMOTED
        self.ctx.drive.refresh_driver()
