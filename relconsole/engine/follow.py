"""Watch-only: learn the release's phase from the driver's journal, and show its records."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from relconsole.engine.context import EngineContext
from relconsole.engine.state import EventKind
from relconsole.model import Phase

# Records of the driver's past a watcher shows when it arrives mid-release.
ARRIVAL_RECORDS = 20


def record_line(record: Mapping[str, Any]) -> tuple[EventKind, str, str, float | None]:
    """A journal record as an event: its kind, its text, who, and when."""
    actor = record.get("actor") or {}
    who = f"{actor.get('user', '?')}@{actor.get('host', '?')}"
    text = str(record.get("intent", "?"))
    if record.get("reason"):
        text += f": {record['reason']}"
    if record.get("outcome"):
        text += f" → {record['outcome']}"
    at = record.get("ts")
    return (EventKind.of_intent(record.get("intent")), text, who,
            float(at) if isinstance(at, int | float) else None)


class Follower:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

    def show(self, record: Mapping[str, Any]) -> None:
        """Show a record the driver wrote as an event on this (watching) console."""
        kind, text, who, at = record_line(record)
        self.ctx.bus.emit(kind, text, actor=who, at=at)

    def arrive(self) -> None:
        """A watcher arriving mid-release sees the recent history, then what is new."""
        journal = self.ctx.drive.journal
        for record in journal.records()[-ARRIVAL_RECORDS:]:
            self.show(record)
        journal.poll_new()

    def follow(self) -> None:
        """Learn phase and pause reason from the records the driver wrote since last time."""
        state = self.ctx.state
        for record in self.ctx.drive.journal.poll_new():
            after = record.get("after") or {}
            if "phase" in after:
                with contextlib.suppress(ValueError):
                    state.phase = Phase(after["phase"])
                state.pause_reason = after.get("pause_reason", "")
            self.show(record)
        if state.phase is Phase.PROGRESSING and state.weight >= 100:
            state.phase = Phase.PROMOTED
        self.ctx.drive.refresh_driver()
