"""Journal writes of a driving engine: the first and last step of every action.

Safety rule 2 starts with the intent written down and ends with the verified outcome;
this is where both are written, where a journal that cannot be written turns into a
problem on screen (and refuses the action), and where a watcher is kept from writing.
"""

from __future__ import annotations

import contextlib
from typing import Any

from relconsole.engine.drive import Drive
from relconsole.engine.journal import Journal, JournalError
from relconsole.engine.observe import ProviderHealth
from relconsole.engine.progress import ReleaseState
from relconsole.model import Actor, Mode


class Recorder:
    def __init__(
        self,
        journal: Journal,
        drive: Drive,
        health: ProviderHealth,
        state: ReleaseState,
        actor: Actor,
    ) -> None:
        self.journal = journal
        self.drive = drive
        self.health = health
        self.state = state
        self.actor = actor
        # Who a record names when no person asked for the action: the engine, acting on
        # its rules for the lease holder (see `write`).
        self.engine = Actor.engine_for(actor)

    def write(self, intent: str, **fields: Any) -> dict[str, Any]:
        """Write one record, or raise JournalError (the action must then not be taken)."""
        # Every action starts with its journal record: the last moment to make sure this
        # console still drives (a stopped process may resume after a take-over).
        self.drive.renew()
        if self.drive.mode is Mode.WATCH:
            raise JournalError(f"watch-only: {self.drive.driver} drives this release")
        # No actor means nobody asked: the engine acts on its own rules (a gate tripped,
        # a bake ended, a retry came due). The intents of `ReleaseEngine` always name
        # the person, so a postmortem never blames them for what the engine decided.
        actor = fields.pop("actor", None) or self.engine
        try:
            record = self.journal.append(intent, actor=actor, **fields)
        except JournalError as exc:
            # Shown until a record is written again: no action is taken meanwhile.
            self.health.note("journal", f"journal: {exc} — actions are refused")
            raise
        self.health.note("journal", None)
        return record

    def soft(self, intent: str, **fields: Any) -> None:
        """Write a record whose loss must not stop what is already done."""
        with contextlib.suppress(JournalError):
            self.write(intent, **fields)

    def outcome(
        self, intent: str, reason: str, before: dict[str, Any], outcome: str, actor: Actor | None
    ) -> None:
        self.soft(intent, reason=reason, before=before, after=self.state.journal_view(),
                  outcome=outcome, actor=actor)

    def outage(self, source: str, message: str, outcome: str) -> None:
        """A provider going dark or coming back is part of the release's story.

        Only transitions are written (not every failing poll), and only by the driver.
        The journal's own trouble and a rollback's retries have records of their own.
        """
        if self.drive.mode is not Mode.DRIVE:
            return
        with contextlib.suppress(JournalError):
            self.journal.append(
                "provider", reason=message, after=self.state.journal_view(), outcome=outcome,
                data={"source": source}, actor=self.engine,
            )
