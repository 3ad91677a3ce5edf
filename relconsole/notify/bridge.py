"""From a driving engine's events to notices, and from failing targets to problems.

Only the driver speaks: a watch-only console sends nothing (its events are the driver's
journal, followed), and a watcher that takes the lease starts sending from then on —
the check is made per event, against the engine's mode at that moment.

| notice            | engine event                                                    |
|-------------------|-----------------------------------------------------------------|
| `started`         | the first step of an attempt (`STEP` to step 1)                 |
| `step`            | every later verified step (`STEP`)                              |
| `paused`          | `PAUSE` (an operator's, or the engine's own on missing data)    |
| `rolled_back`     | `ROLLED_BACK` (verified at 0 %)                                 |
| `rollback_failed` | the first rollback attempt not verified (`ERROR` while the      |
|                   | phase is ROLLBACK FAILED), once per rollback                    |
| `promoted`        | `PROMOTED` (verified at 100 %)                                  |
| `announced`       | not an engine event: `relconsole.notify.announce.announce`      |
| `migration`       | `NotifyBridge.migration(...)`, the hook for database migrations |

A target that keeps failing becomes one problem of source "notify" on screen, and a
`provider` journal record (`data.source: notify`) when it starts and ends failing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from relconsole.engine.journal import JournalError
from relconsole.engine.release import ReleaseEngine
from relconsole.engine.state import Event, EventKind
from relconsole.model import ENGINE_USER, Actor, GateStatus, Mode, Phase
from relconsole.notify import events as ev
from relconsole.notify.delivery import FLUSH_TIMEOUT, Notifier, Stats
from relconsole.notify.senders import GateLine, Notice, Target
from relconsole.placeholders import release_dashboard

SOURCE = "notify"  # the problem's source on screen and in the journal
SHARED_KEY = "notify"  # where open_session keeps the bridge (Providers.shared)


class NotifyBridge:
    """Subscribes to one engine and hands its events, as notices, to a `Notifier`."""

    def __init__(
        self,
        engine: ReleaseEngine,
        targets: Sequence[Target],
        *,
        notifier: Callable[..., Notifier] = Notifier,
    ) -> None:
        self.engine = engine
        self.notifier = notifier(targets, self._from_thread)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failing: dict[str, str] = {}  # target label -> its problem
        self._rollback_failure_sent = False
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        self._unsubscribe = self.engine.subscribe(on_event=self._on_event)

    @property
    def speaking(self) -> bool:
        """Only a driving console sends (safety: one voice per release)."""
        return self.engine.mode is Mode.DRIVE

    def stats(self) -> dict[str, Stats]:
        return self.notifier.stats()

    # ------------------------------------------------------------------ events

    def _on_event(self, event: Event) -> None:
        self._remember_loop()
        if event.past or not self.speaking:
            return
        name = self._name(event)
        if name is None:
            return
        self.notifier.send(self._notice(name, event))

    def _name(self, event: Event) -> str | None:
        match event.kind:
            case EventKind.STEP:
                return ev.STARTED if event.data.get("step") == 1 else ev.STEP
            case EventKind.PAUSE:
                return ev.PAUSED
            case EventKind.PROMOTED:
                return ev.PROMOTED
            case EventKind.ROLLBACK:
                self._rollback_failure_sent = False  # a new rollback: its failure is news
                return None
            case EventKind.ROLLED_BACK:
                self._rollback_failure_sent = False
                return ev.ROLLED_BACK
            case EventKind.ERROR if self.engine.phase is Phase.ROLLBACK_FAILED:
                if self._rollback_failure_sent:
                    return None  # retried with backoff until verified: said once is loud
                self._rollback_failure_sent = True
                return ev.ROLLBACK_FAILED
        return None

    def _notice(self, name: str, event: Event | None, *, why: str = "",
                detail: Mapping[str, Any] | None = None, who: str = "") -> Notice:
        engine = self.engine
        snap = engine.snapshot()
        plan = snap.plan
        gates: tuple[GateLine, ...] = _lines(snap.gates)
        extra: dict[str, Any] = dict(detail or {})
        if event is not None:
            raw = event.data.get("gates")
            if isinstance(raw, list) and raw:
                # The verdicts the engine acted on (an automatic step), not the new step's.
                gates = tuple(_line_of(g) for g in raw if isinstance(g, dict))
            who = who or event.actor
        if name in (ev.ROLLED_BACK, ev.ROLLBACK_FAILED):
            why = why or snap.rollback_reason
            cause = snap.rollback_cause
            if cause is not None and cause.gates:
                # A poll after a rollback the canary has no traffic and every gate reads
                # "no data": the verdicts that caused it are the news.
                gates = _lines(cause.gates)
            if name == ev.ROLLBACK_FAILED:
                extra.update(attempts=snap.rollback_attempts, error=snap.rollback_error)
        elif name == ev.PAUSED:
            why = why or snap.pause_reason
        elif name in (ev.STEP, ev.STARTED, ev.PROMOTED):
            why = why or self._last_reason(("advance", "promote"))
        if not who or who == ENGINE_USER:
            who = str(Actor.engine_for(engine.actor))
        return Notice(
            event=name,
            at=event.at if event is not None else snap.now,
            release=plan.release_id,
            service=plan.service,
            version=plan.version,
            environment=plan.environment,
            phase=snap.phase.value,
            step=max(snap.step_index + 1, 0),
            steps=len(snap.timeline),
            step_label=snap.step_label,
            weight=snap.weight,
            who=who,
            why=why,
            message=event.message if event is not None else "",
            gates=gates,
            dashboard=release_dashboard(plan),
            detail=extra,
        )

    def _last_reason(self, intents: tuple[str, ...]) -> str:
        """The reason of the action an event reports: its journal record, written just
        before the event (the event itself carries only the engine's summary)."""
        try:
            last = self.engine.journal.last()
        except JournalError:
            return ""
        if last is None or last.get("intent") not in intents:
            return ""
        reason = last.get("reason")
        return reason if isinstance(reason, str) else ""

    # ------------------------------------------------------------------ hooks for others

    def migration(self, name: str, phase: str, outcome: str, *, command: Sequence[str] = (),
                  who: str = "") -> bool:
        """Send `migration` for a database migration that ran (the engine's migrations
        call this, through `ReleaseEngine.on_migration`, once its outcome is known)."""
        if not self.speaking:
            return False
        self.notifier.send(self._notice(
            ev.MIGRATION, None, why=f"{phase} migration {name}: {outcome}",
            detail={"migration": name, "phase": phase, "outcome": outcome,
                    "command": list(command)}, who=who))
        return True

    # ------------------------------------------------------------------ problems

    def _remember_loop(self) -> None:
        if self._loop is None:
            with contextlib.suppress(RuntimeError):
                self._loop = asyncio.get_running_loop()

    def _from_thread(self, label: str, message: str | None) -> None:
        """A delivery thread's news about a target, carried to the engine's loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between
            loop.call_soon_threadsafe(self.target_state, label, message)

    def target_state(self, label: str, message: str | None) -> None:
        """On the engine's loop: show and journal a target starting or ending to fail."""
        was = self._failing.get(label)
        if message is None:
            if was is None:
                return
            del self._failing[label]
            self._journal(label, f"{label} answers again", "recovered")
        else:
            self._failing[label] = message
            if was is None:
                self._journal(label, message, "problem")
        show_problem(self.engine, "; ".join(self._failing.values()) or None)

    def _journal(self, label: str, message: str, outcome: str) -> None:
        engine = self.engine
        if not self.speaking:
            return
        with contextlib.suppress(JournalError):
            engine.journal.append("provider", reason=message, outcome=outcome,
                                  data={"source": SOURCE, "target": label},
                                  actor=Actor.engine_for(engine.actor))

    # ------------------------------------------------------------------ exit

    def close(self, timeout: float = FLUSH_TIMEOUT) -> list[str]:
        """Stop listening, flush briefly; what was not delivered is journalled and returned."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        lost = self.notifier.close(timeout)
        for text in lost:
            self._journal(SOURCE, f"notify: {text}", "not delivered")
        return lost


def show_problem(engine: ReleaseEngine, message: str | None) -> None:
    """The notify problem on screen, beside the providers' (None clears it)."""
    engine.note_problem(SOURCE, message)


def _lines(gates: Sequence[GateStatus]) -> tuple[GateLine, ...]:
    return tuple(_line_of(g.as_dict()) for g in gates)


def _line_of(raw: Mapping[str, Any]) -> GateLine:
    def number(value: Any) -> float | None:
        return float(value) if isinstance(value, int | float) and not isinstance(
            value, bool) else None

    return GateLine(gate=str(raw.get("gate", "")), verdict=str(raw.get("verdict", "")),
                    canary=number(raw.get("canary")), baseline=number(raw.get("baseline")),
                    unit=str(raw.get("unit") or ""), threshold=str(raw.get("threshold") or ""),
                    reason=str(raw.get("reason") or ""))


def open_bridge(
    engine: ReleaseEngine, settings: Sequence[Mapping[str, Any]]
) -> NotifyBridge | None:
    """The bridge for a config's notify: entries, subscribed; None when there are none."""
    if not settings:
        return None
    bridge = NotifyBridge(engine, [Target.from_settings(s) for s in settings])
    bridge.start()
    return bridge
