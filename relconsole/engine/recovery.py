"""Restart recovery, from the journal and one read of the real weight (safety rule 5).

Pure functions of journal records and values: where a release stood before this process
started, whether a rollback was left unfinished, and how long the current step has baked.
Nothing here re-applies a step; `ReleaseEngine.attach` only adopts what it finds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from relconsole.model import ControllerState, Phase

JournalRecord = Mapping[str, Any]

# Intents whose verified outcome ends any rollback that came before them.
_SETTLING_INTENTS = ("rollback", "rollback.retry", "advance", "promote")
# A new attempt of the same release (`relconsole run --again`): the records before it
# are a previous attempt's, kept (a journal is never cut) but no longer where it stands.
RESTART = "restart"
# Where an attempt has ended, so that starting another one is not a take-over of a live
# release in disguise.
ENDED_PHASES = ("rolled_back", "promoted")


@dataclass(frozen=True)
class Recovered:
    phase: Phase
    pause_reason: str = ""
    bake_elapsed: float = 0.0
    rollback_reason: str = ""
    """Set when a rollback must be completed (phase ROLLING_BACK)."""
    rollback_found_done: bool = False
    """A rollback was pending and the weight is already 0: it only needs its record."""


def current_attempt(records: Sequence[JournalRecord]) -> Sequence[JournalRecord]:
    """The records since the last `restart` record (every record when there is none)."""
    for index in range(len(records) - 1, -1, -1):
        if records[index].get("intent") == RESTART:
            return records[index + 1:]
    return records


def attempt_phase(records: Sequence[JournalRecord]) -> str | None:
    """The phase the current attempt's journal last recorded (None: none recorded)."""
    for record in reversed(current_attempt(records)):
        after = record.get("after")
        if isinstance(after, Mapping) and after.get("phase"):
            return str(after["phase"])
    return None


def again_refusal(records: Sequence[JournalRecord]) -> str | None:
    """Why a new attempt must not start now, or None when the last one has ended."""
    if not records:
        return "it has no journal yet: there is nothing to run again"
    phase = attempt_phase(records)
    if phase not in ENDED_PHASES:
        return (f"its journal says it is {(phase or 'not started').replace('_', ' ')}, not "
                "rolled back or promoted: a release under way is attached to, not restarted")
    return None


def pending_rollback(records: Sequence[JournalRecord]) -> str | None:
    """The reason of a rollback intent that never reached a verified outcome."""
    reason: str | None = None
    for record in records:
        intent = record.get("intent", "")
        outcome = record.get("outcome") or ""
        if intent == "rollback" and not outcome.startswith("verified"):
            if not outcome.startswith("refused"):
                reason = record.get("reason") or "rollback interrupted"
        elif outcome.startswith("verified") and intent in _SETTLING_INTENTS:
            reason = None
    return reason


def bake_from_journal(records: Sequence[JournalRecord], weight: int, now: float) -> float:
    """Time already baked at the current step, so a restart neither skips nor re-bakes."""
    for record in reversed(records):
        if record.get("intent") in ("advance", "promote") and str(
            record.get("outcome", "")
        ).startswith("verified"):
            if (record.get("after") or {}).get("weight") == weight:
                return max(0.0, now - float(record.get("ts", now)))
            break
    return 0.0


def weight_from_journal(last: JournalRecord | None) -> int:
    """The weight the last record left, for when the provider cannot be read at start."""
    after = (last or {}).get("after")
    if isinstance(after, Mapping):
        return int(after.get("weight", 0))
    return 0


def recover(
    records: Sequence[JournalRecord],
    *,
    weight: int,
    weight_known: bool,
    step_index: int,
    now: float,
) -> Recovered:
    """Where the release stands, given the journal and the weight read at start.

    Only the current attempt counts: after a `restart` with the canary at 0 the release
    is PENDING at the first step, however its previous attempt ended.
    """
    records = current_attempt(records)
    last = records[-1] if records else None
    after = (last or {}).get("after") or {}
    journal_phase = after.get("phase")
    rollback = pending_rollback(records)
    if rollback is not None:
        if weight_known and weight == 0:
            return Recovered(Phase.ROLLED_BACK, rollback_reason=rollback,
                             rollback_found_done=True)
        return Recovered(Phase.ROLLING_BACK, rollback_reason=rollback)
    if not weight_known:
        return Recovered(
            Phase.PAUSED, pause_reason="traffic provider unreachable: the real weight is unknown"
        )
    if weight >= 100:
        return Recovered(Phase.PROMOTED)
    if weight == 0 and journal_phase in ("rolled_back", "rollback_failed"):
        return Recovered(Phase.ROLLED_BACK)
    # Paused before the first step is paused too: a console that restarts must not
    # start a release its operator held back.
    if journal_phase == "paused":
        return Recovered(
            Phase.PAUSED, pause_reason=after.get("pause_reason", "paused before restart")
        )
    if step_index < 0:
        return Recovered(Phase.PENDING)
    return Recovered(Phase.PROGRESSING, bake_elapsed=bake_from_journal(records, weight, now))


def controller_phase(controller: ControllerState | None, found: Recovered) -> tuple[Phase, str]:
    """Where a controller-owned release stands (Argo Rollouts), the controller's word
    taking precedence over the journal's: it may have moved, paused or been resumed while
    no console watched. An abort seen here is left to the first poll, which journals it
    as done outside relconsole; a rollback the journal left unfinished is finished."""
    if controller is None or found.phase.terminal or found.phase is Phase.ROLLING_BACK:
        return found.phase, found.pause_reason
    if controller.aborted:
        return found.phase, found.pause_reason
    if controller.fully_promoted and not controller.manually_paused:
        return Phase.PROMOTED, ""
    if controller.manually_paused:
        return Phase.PAUSED, found.pause_reason or f"paused in {controller.system}"
    return Phase.PROGRESSING, ""
