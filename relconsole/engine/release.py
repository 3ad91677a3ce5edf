"""The release state machine: polls the providers, judges the gates, and acts.

Every front end drives a release through `ReleaseEngine`: the TUI, the headless runner
and the one-shot commands call the same intents (advance, pause, resume, promote,
rollback, set_flag). The safety rules of DESIGN.md are enforced here, not in a UI:

1. missing or stale data is INCONCLUSIVE and never advances (see `gates`);
2. every mutating action journals its intent, calls the provider, reads the state back,
   and journals the verified outcome; a failed rollback is retried until verified;
3. a watch-only engine holds read-only facades and refuses every intent;
5. on attach the engine reads the real weight and the journal, and never re-applies a step.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from relconsole.clock import Clock
from relconsole.engine import gates as gate_logic
from relconsole.engine.journal import Journal, JournalError
from relconsole.engine.state import Event, ProblemNote, Series, Snapshot
from relconsole.model import (
    Actor,
    Flag,
    GateStatus,
    MetricPair,
    Mode,
    Phase,
    ReleasePlan,
    TrafficState,
    Verdict,
)
from relconsole.providers.base import FlagProvider, MetricsProvider, TrafficProvider
from relconsole.providers.readonly import ReadOnlyFlags, ReadOnlyMetrics, ReadOnlyTraffic

T = TypeVar("T")
SnapshotListener = Callable[[Snapshot], None]
EventListener = Callable[[Event], None]

HISTORY_POINTS = 60
# Problems of these sources are journalled when they start and end.
PROVIDER_SOURCES = ("metrics", "traffic", "flags")
# Failed step changes in a row before the engine stops trying and pauses.
ADVANCE_FAILURE_LIMIT = 3


class WatchOnlyError(RuntimeError):
    """An intent reached a watch-only engine (safety rule 3)."""


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str


class _CallFailed(Exception):
    """A provider call failed or timed out; the message is safe to show."""


def _clock_text(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


class ReleaseEngine:
    def __init__(
        self,
        plan: ReleasePlan,
        *,
        traffic: TrafficProvider,
        clock: Clock,
        journal: Journal,
        actor: Actor,
        metrics: MetricsProvider | None = None,
        flags: FlagProvider | None = None,
        mode: Mode = Mode.DRIVE,
        driver: str = "you",
        driver_since: float | None = None,
        driver_probe: Callable[[], tuple[str, float | None]] | None = None,
        heartbeat: Callable[[], str | None] | None = None,
    ) -> None:
        self.plan = plan
        self.clock = clock
        self.mode = mode
        self.actor = actor
        self.journal = journal
        if mode is Mode.WATCH:
            traffic = ReadOnlyTraffic(traffic)
            metrics = ReadOnlyMetrics(metrics) if metrics is not None else None
            flags = ReadOnlyFlags(flags) if flags is not None else None
        self.traffic = traffic
        self.metrics = metrics
        self.flags_provider = flags
        self._driver = driver
        self._driver_since = driver_since
        self._driver_probe = driver_probe
        # Keeps the driver's lease alive while it polls; returns why, once it is lost.
        self._heartbeat = heartbeat

        self._phase = Phase.PENDING
        self._step_index = -1
        self._weight = 0
        self._expected_weight: int | None = None  # None: unknown, adopt what the provider says
        self._bake_elapsed = 0.0
        self._last_tick: float | None = None
        self._pause_reason = ""
        self._gates: list[GateStatus] = [gate_logic.initial_status(g) for g in plan.gates]
        self._pairs: dict[str, MetricPair] = {}
        self._series: dict[str, tuple[deque[float | None], deque[float | None]]] = {
            m.name: (deque(maxlen=HISTORY_POINTS), deque(maxlen=HISTORY_POINTS))
            for m in plan.metrics
        }
        self._traffic_state: TrafficState | None = None
        self._flags: tuple[Flag, ...] = ()
        self._problems: dict[str, ProblemNote] = {}
        self._rollback_reason = ""
        self._rollback_attempts = 0
        self._advance_failures = 0
        self._journalled_problems: set[str] = set()
        # Polls in a row on which a provider gave nothing usable.
        self._dark_polls = {"metrics": 0, "traffic": 0}
        self._rollback_next_at: float | None = None
        self._rollback_started_at: float | None = None
        # Release flags a rollback must still kill (plan.kill_flags_on_rollback).
        self._rollback_flags_pending: list[str] = []
        self._last_error = ""
        self._events: deque[Event] = deque(maxlen=500)
        self._snapshot_listeners: list[SnapshotListener] = []
        self._event_listeners: list[EventListener] = []
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._attached = False

    # ------------------------------------------------------------------ observing

    def subscribe(
        self, on_snapshot: SnapshotListener | None = None, on_event: EventListener | None = None
    ) -> Callable[[], None]:
        if on_snapshot:
            self._snapshot_listeners.append(on_snapshot)
        if on_event:
            self._event_listeners.append(on_event)

        def unsubscribe() -> None:
            if on_snapshot in self._snapshot_listeners:
                self._snapshot_listeners.remove(on_snapshot)
            if on_event in self._event_listeners:
                self._event_listeners.remove(on_event)

        return unsubscribe

    def recent_events(self, n: int = 50) -> list[Event]:
        return list(self._events)[-n:]

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def flag_rollout_supported(self) -> bool:
        """Whether `set_flag_rollout` can work at all (Flagsmith keeps percentages itself)."""
        provider = self.flags_provider
        inner = getattr(provider, "_inner", provider)  # a watch-only facade wraps it
        return provider is not None and bool(getattr(inner, "supports_rollout", True))

    def snapshot(self) -> Snapshot:
        return Snapshot(
            plan=self.plan,
            now=self.clock.now(),
            mode=self.mode,
            driver=self._driver,
            driver_since=self._driver_since,
            phase=self._phase,
            step_index=self._step_index,
            weight=self._weight,
            bake_elapsed=self._bake_elapsed,
            pause_reason=self._pause_reason,
            ready_to_advance=self._ready_to_advance(),
            gates=tuple(self._gates),
            latest={
                name: (
                    pair.canary.value if pair.canary.usable else None,
                    pair.baseline.value if pair.baseline.usable else None,
                )
                for name, pair in self._pairs.items()
            },
            series={
                name: Series(canary=tuple(c), baseline=tuple(b))
                for name, (c, b) in self._series.items()
            },
            traffic=self._traffic_state,
            flags=self._flags,
            problems=tuple(self._problems.values()),
            rollback_attempts=self._rollback_attempts,
            rollback_next_at=self._rollback_next_at,
            last_error=self._last_error,
        )

    def _publish(self) -> None:
        if not self._snapshot_listeners:
            return
        snap = self.snapshot()
        for listener in list(self._snapshot_listeners):
            listener(snap)

    def _event(
        self, kind: str, message: str, actor: str = "", at: float | None = None, **data: Any
    ) -> None:
        event = Event(at=self.clock.now() if at is None else at, kind=kind, message=message,
                      data=data, actor=actor)
        self._events.append(event)
        for listener in list(self._event_listeners):
            listener(event)

    # ------------------------------------------------------------------ helpers

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "phase": self._phase.value,
            "step": self._step_index,
            "weight": self._weight,
        }
        if self._pause_reason:
            state["pause_reason"] = self._pause_reason
        return state

    def _gate_data(self) -> dict[str, Any]:
        return {"gates": [g.as_dict() for g in self._gates]}

    async def _call(self, source: str, what: str, coro: Awaitable[T]) -> T:
        """Run one provider call with the plan's timeout; failures become `_CallFailed`."""
        try:
            return await asyncio.wait_for(coro, timeout=self.plan.call_timeout)
        except TimeoutError:
            raise _CallFailed(
                f"{source}: {what} timed out after {self.plan.call_timeout:g}s"
            ) from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a provider bug must not take the console down
            text = str(exc) or type(exc).__name__
            if not text.startswith(f"{source}"):
                text = f"{source}: {text}"
            raise _CallFailed(text) from None

    def _problem(self, source: str, message: str | None) -> None:
        """Record or clear a provider problem, keeping the time it started."""
        current = self._problems.get(source)
        if message is None:
            if current is not None:
                del self._problems[source]
                self._event("provider", f"{source} recovered")
                if source in self._journalled_problems:
                    self._journalled_problems.discard(source)
                    self._journal_problem(source, f"{source} recovered", "recovered")
            return
        if current is None:
            self._problems[source] = ProblemNote(source, message, self.clock.now())
            self._event("provider", message)
            return
        if source not in self._journalled_problems:
            # Seen twice in a row: an outage, not a blip. One record when it starts
            # and one when it ends keeps a flaky provider from flooding the journal.
            self._journalled_problems.add(source)
            self._journal_problem(source, message, "problem")
        if current.message != message:
            self._problems[source] = ProblemNote(source, message, current.since)

    def _journal_problem(self, source: str, message: str, outcome: str) -> None:
        """A provider going dark or coming back is part of the release's story.

        Only transitions are written (not every failing poll), and only by the driver.
        The journal's own trouble and a rollback's retries have records of their own.
        """
        if source not in PROVIDER_SOURCES or self.mode is not Mode.DRIVE:
            return
        with contextlib.suppress(JournalError):
            self.journal.append(
                "provider", reason=message, after=self._state(), outcome=outcome,
                data={"source": source},
            )

    def _journal(self, intent: str, **fields: Any) -> dict[str, Any]:
        # Every action starts with its journal record: the last moment to make sure this
        # console still drives (a stopped process may resume after a take-over).
        if self._heartbeat is not None and self.mode is Mode.DRIVE:
            lost = self._heartbeat()
            if lost:
                self._lose_drive(lost)
        if self.mode is Mode.WATCH:
            raise JournalError(f"watch-only: {self._driver} drives this release")
        actor = fields.pop("actor", None) or self.actor
        try:
            record = self.journal.append(intent, actor=actor, **fields)
        except JournalError as exc:
            # Shown until a record is written again: no action is taken meanwhile.
            self._problem("journal", f"journal: {exc} — actions are refused")
            raise
        self._problem("journal", None)
        return record

    def _lose_drive(self, why: str) -> None:
        """Someone took the lease over: from now on this console only watches."""
        self.mode = Mode.WATCH
        self.traffic = ReadOnlyTraffic(self.traffic)
        if self.metrics is not None:
            self.metrics = ReadOnlyMetrics(self.metrics)
        if self.flags_provider is not None:
            self.flags_provider = ReadOnlyFlags(self.flags_provider)
        self.journal.read_only = True
        self.journal.poll_new()  # the new driver's records are news from here on
        if self._driver_probe is not None:
            self._driver, self._driver_since = self._driver_probe()
        self._event("lease", f"lease lost: {why} — this console is now watch-only")

    def _journal_soft(self, intent: str, **fields: Any) -> None:
        with contextlib.suppress(JournalError):
            self._journal(intent, **fields)

    def _require_drive(self, what: str) -> None:
        if self.mode is Mode.WATCH:
            raise WatchOnlyError(f"watch-only: {self._driver} drives this release; cannot {what}")

    def _refuse(self, message: str) -> ActionResult:
        self._last_error = message
        self._event("refused", message)
        self._publish()
        return ActionResult(False, message)

    def _ready_to_advance(self) -> bool:
        if self._blind_reason() is not None:
            return False
        if self._phase is Phase.PENDING:
            return True
        if self._phase is not Phase.PROGRESSING:
            return False
        step = self.plan.steps[self._step_index] if self._step_index >= 0 else None
        if step is None or step.weight >= 100:
            return False
        if self._bake_elapsed < step.bake:
            return False
        return all(g.verdict is Verdict.PASS and g.passed_this_step for g in self._gates)

    def _blind_reason(self) -> str | None:
        """Why the engine cannot trust what it sees right now, if it cannot.

        A gate may still hold a reading from before a metrics outage (it turns stale only
        after stale_after), and the weight may be unknown after a failed or unverified
        change: no step is ever taken on that (safety rule 1).
        """
        for source in ("metrics", "traffic"):
            note = self._problems.get(source)
            if note is not None:
                return note.message
        if self._expected_weight is None:
            return "the canary weight has not been verified since the last change"
        return None

    def _blocking_gate(self) -> GateStatus | None:
        """The first gate whose state forbids moving forward (failing or without data)."""
        for g in self._gates:
            if g.tripped or g.verdict is not Verdict.PASS:
                return g
        return None

    # ------------------------------------------------------------------ start-up

    async def attach(self) -> None:
        """Read the real state from the providers and the journal (safety rule 5)."""
        now = self.clock.now()
        self._last_tick = now
        last = self.journal.last()
        try:
            state = await self._first_read()
            self._traffic_state = state
            self._weight = state.canary_weight
            self._expected_weight = state.canary_weight
            self._problem("traffic", None)
            weight_known = True
        except _CallFailed as exc:
            self._problem("traffic", str(exc))
            weight_known = False
            if last and isinstance(last.get("after"), dict):
                self._weight = int(last["after"].get("weight", 0))

        self._step_index = self.plan.step_for_weight(self._weight)
        after = (last or {}).get("after") or {}
        journal_phase = after.get("phase")
        pending_rollback = self._pending_rollback()

        if pending_rollback is not None:
            if weight_known and self._weight == 0:
                self._phase = Phase.ROLLED_BACK
                if self.mode is Mode.DRIVE:
                    self._journal_soft(
                        "rollback",
                        reason=pending_rollback,
                        before={"weight": 0},
                        after=self._state(),
                        outcome="verified (found already done on restart)",
                    )
            else:
                self._phase = Phase.ROLLING_BACK
                self._rollback_reason = pending_rollback
                self._rollback_next_at = now
                self._rollback_started_at = now
                self._rollback_flags_pending = self._flags_to_kill()
        elif not weight_known:
            self._phase = Phase.PAUSED
            self._pause_reason = "traffic provider unreachable: the real weight is unknown"
        elif self._weight >= 100:
            self._phase = Phase.PROMOTED
        elif self._weight == 0 and journal_phase in ("rolled_back", "rollback_failed"):
            self._phase = Phase.ROLLED_BACK
        elif self._step_index < 0:
            self._phase = Phase.PENDING
        elif journal_phase == "paused":
            self._phase = Phase.PAUSED
            self._pause_reason = after.get("pause_reason", "paused before restart")
        else:
            self._phase = Phase.PROGRESSING
            self._bake_elapsed = self._bake_from_journal(now)

        await self._load_history()
        if self.mode is Mode.WATCH:
            # A watcher arriving mid-release sees the recent history, then what is new.
            for record in self.journal.records()[-20:]:
                self._journal_event(record)
            self.journal.poll_new()
        else:
            # Watching goes on without a journal; acting does not (see `_journal`).
            with contextlib.suppress(JournalError):
                self._journal(
                    "attach",
                    reason="console started",
                    after=self._state(),
                    outcome="verified" if weight_known else "failed: traffic unreadable",
                )
        self._attached = True
        self._event(
            "attach",
            f"attached: {self._phase.label} at {self._weight}% "
            f"(step {self._step_index + 1}/{len(self.plan.steps)})",
        )
        await self._poll(now)
        self._publish()

    async def _first_read(self) -> TrafficState:
        """The weight at start, asked up to three times: one lost answer must not leave a
        release paused (and a headless run ended) before it has begun."""
        for _ in range(2):
            try:
                return await self._call("traffic", "read", self.traffic.read())
            except _CallFailed:
                await asyncio.sleep(0.2)
        return await self._call("traffic", "read", self.traffic.read())

    def _pending_rollback(self) -> str | None:
        """The reason of a rollback intent that never reached a verified outcome."""
        reason: str | None = None
        for record in self.journal.records():
            intent = record.get("intent", "")
            outcome = record.get("outcome") or ""
            if intent == "rollback" and not outcome.startswith("verified"):
                if not outcome.startswith("refused"):
                    reason = record.get("reason") or "rollback interrupted"
            elif outcome.startswith("verified") and intent in (
                "rollback", "rollback.retry", "advance", "promote"
            ):
                reason = None
        return reason

    def _bake_from_journal(self, now: float) -> float:
        """Time already baked at the current step, so a restart neither skips nor re-bakes."""
        for record in reversed(self.journal.records()):
            if record.get("intent") in ("advance", "promote") and str(
                record.get("outcome", "")
            ).startswith("verified"):
                if (record.get("after") or {}).get("weight") == self._weight:
                    return max(0.0, now - float(record.get("ts", now)))
                break
        return 0.0

    async def _load_history(self) -> None:
        if self.metrics is None or not self.plan.metrics:
            return
        try:
            history = await self._call(
                "metrics",
                "history",
                self.metrics.history(
                    self.plan.metrics,
                    HISTORY_POINTS * self.plan.poll_interval,
                    self.plan.poll_interval,
                ),
            )
        except _CallFailed as exc:
            self._problem("metrics", str(exc))
            return
        for name, pairs in history.items():
            if name not in self._series:
                continue
            canary, baseline = self._series[name]
            for pair in pairs[-HISTORY_POINTS:]:
                canary.append(pair.canary.value if pair.canary.usable else None)
                baseline.append(pair.baseline.value if pair.baseline.usable else None)

    # ------------------------------------------------------------------ polling

    async def _poll(self, now: float) -> None:
        """Sample every provider concurrently; one slow provider costs one timeout."""

        async def metrics() -> None:
            if self.metrics is None or not self.plan.metrics:
                return
            try:
                pairs = await self._call("metrics", "query", self.metrics.sample(self.plan.metrics))
            except _CallFailed as exc:
                self._problem("metrics", str(exc))
                return
            # One bad metric shows on its gate; the panel is marked only when nothing at
            # all came back, which is what a dead or misconfigured source looks like.
            dead = [p for p in pairs.values() if not p.canary.usable and not p.baseline.usable]
            if pairs and len(dead) == len(pairs):
                first = dead[0].canary.problem or dead[0].baseline.problem
                self._problem("metrics", f"metrics: {first}")
            else:
                self._problem("metrics", None)
            self._pairs.update(pairs)
            for name, (canary, baseline) in self._series.items():
                pair = pairs.get(name)
                canary.append(pair.canary.value if pair and pair.canary.usable else None)
                baseline.append(pair.baseline.value if pair and pair.baseline.usable else None)

        async def traffic() -> None:
            try:
                state = await self._call("traffic", "read", self.traffic.read())
            except _CallFailed as exc:
                self._problem("traffic", str(exc))
                return
            self._problem("traffic", None)
            self._traffic_state = state
            self._observe_weight(state.canary_weight)

        async def flags() -> None:
            if self.flags_provider is None:
                return
            try:
                listed = await self._call("flags", "list", self.flags_provider.list_flags())
            except _CallFailed as exc:
                self._problem("flags", str(exc))
                return
            self._problem("flags", None)
            self._flags = self._mark_release_flags(listed)

        await asyncio.gather(metrics(), traffic(), flags())
        for source, polls in self._dark_polls.items():
            self._dark_polls[source] = polls + 1 if source in self._problems else 0
        stale_after = self.plan.effective_stale_after
        updated = []
        for old in self._gates:
            new = gate_logic.update(old, self._pairs.get(old.spec.metric), now, stale_after)
            if new.verdict is not old.verdict:
                self._event(
                    "verdict",
                    f"gate {new.name}: {old.verdict.value} → {new.verdict.value} ({new.reason})",
                    gate=new.name,
                    verdict=new.verdict.value,
                    canary=new.canary,
                    baseline=new.baseline,
                )
            updated.append(new)
        self._gates = updated

    def _mark_release_flags(self, listed: list[Flag]) -> tuple[Flag, ...]:
        mine = set(self.plan.release_flags)
        return tuple(
            dataclasses.replace(f, in_release=f.in_release or f.key in mine) for f in listed
        )

    def _observe_weight(self, weight: int) -> None:
        """Reconcile what the provider reports with what this engine set."""
        self._weight = weight
        if self.mode is Mode.WATCH:
            self._expected_weight = weight
            self._step_index = self.plan.step_for_weight(weight)
            return
        if self._expected_weight is None:
            # An earlier change could not be verified; this read is the verification.
            self._expected_weight = weight
            index = self.plan.step_for_weight(weight)
            if index != self._step_index and self._phase in (
                Phase.PENDING, Phase.PROGRESSING, Phase.PAUSED
            ):
                self._advance_failures = 0
                before = self._state()
                self._enter_step(index)
                self._journal_outcome(
                    "advance", "earlier unverified change", before,
                    f"verified on a later read: canary at {weight}%", None,
                )
                self._announce_step("engine", "verified on a later read")
            return
        if weight != self._expected_weight and self._phase not in (
            Phase.ROLLING_BACK,
            Phase.ROLLBACK_FAILED,
        ):
            # Someone changed the weight behind our back: stop acting on a plan that no
            # longer matches reality and let a human decide.
            was = self._expected_weight
            self._expected_weight = weight
            self._step_index = self.plan.step_for_weight(weight)
            if self._phase in (Phase.PROGRESSING, Phase.PENDING):
                self._set_paused(f"traffic changed outside relconsole: {was}% → {weight}%")

    def _set_paused(self, reason: str, actor: Actor | None = None) -> None:
        before = self._state()
        self._phase = Phase.PAUSED
        self._pause_reason = reason
        self._event("pause", f"paused: {reason}", actor=str(actor or "engine"))
        with contextlib.suppress(JournalError):
            self._journal(
                "pause",
                reason=reason,
                before=before,
                after=self._state(),
                outcome="verified",
                data=self._gate_data(),
                actor=actor,
            )

    # ------------------------------------------------------------------ the loop

    async def tick(self) -> None:
        """One poll of every provider, then whatever the plan says to do."""
        if not self._attached:
            await self.attach()
            return
        now = self.clock.now()
        if self._heartbeat is not None and self.mode is Mode.DRIVE:
            lost = self._heartbeat()
            if lost:
                self._lose_drive(lost)
        await self._poll(now)
        async with self._lock:
            if self._phase is Phase.PROGRESSING and self._last_tick is not None:
                self._bake_elapsed += max(0.0, now - self._last_tick)
            self._last_tick = now
            if self.mode is Mode.WATCH:
                self._follow_driver()
            else:
                await self._decide(now)
        self._publish()

    async def _decide(self, now: float) -> None:
        if self._phase in (Phase.ROLLING_BACK, Phase.ROLLBACK_FAILED):
            if self._rollback_next_at is not None and now >= self._rollback_next_at:
                await self._attempt_rollback()
            return
        if self._phase.terminal:
            return
        tripped = next((g for g in self._gates if g.tripped), None)
        if tripped is not None and self._phase in (Phase.PROGRESSING, Phase.PAUSED):
            reason = (
                f"gate {tripped.name} failed {tripped.consecutive_failures}× "
                f"({tripped.reason})"
            )
            if self.plan.auto_rollback:
                await self._start_rollback(reason, automatic=True)
                return
            if self._phase is Phase.PROGRESSING:
                self._set_paused(f"{reason} — roll back or resume")
                return
        if self._pause_if_dark():
            return
        if self._phase is Phase.PROGRESSING:
            blind = next(
                (
                    g
                    for g in self._gates
                    if g.consecutive_inconclusive >= g.spec.inconclusive_limit
                ),
                None,
            )
            if blind is not None:
                self._set_paused(
                    f"no data: gate {blind.name} inconclusive for "
                    f"{blind.consecutive_inconclusive} polls ({blind.reason})"
                )
                return
        if self.plan.auto_advance and self._ready_to_advance():
            await self._advance_locked("bake complete, gates passing", automatic=True)

    def _pause_if_dark(self) -> bool:
        """Pause a release whose providers have been dark for `inconclusive_limit` polls.

        Nothing steps while they are dark anyway; pausing tells a human the release is
        not moving, and leaves it to them to decide when it may go on. A blind gate
        says the same for metrics once a step is under way (see `_decide`), so metrics
        are checked here only before the first step, where gates are not judged.
        """
        if self._phase not in (Phase.PENDING, Phase.PROGRESSING):
            return False
        limit = min((g.spec.inconclusive_limit for g in self._gates), default=6)
        sources = {"traffic": "no traffic read for {n} polls, the canary weight is unknown"}
        if self._phase is Phase.PENDING:
            sources["metrics"] = "no metrics for {n} polls, the gates cannot be judged"
        for source, text in sources.items():
            note = self._problems.get(source)
            n = self._dark_polls[source]
            if note is not None and n >= limit:
                self._set_paused(f"{text.format(n=n)} ({note.message})")
                return True
        return False

    def _journal_event(self, record: dict[str, Any]) -> None:
        """Show a record the driver wrote as an event on this (watching) console."""
        actor = record.get("actor") or {}
        who = f"{actor.get('user', '?')}@{actor.get('host', '?')}"
        text = str(record.get("intent", "?"))
        if record.get("reason"):
            text += f": {record['reason']}"
        if record.get("outcome"):
            text += f" → {record['outcome']}"
        at = record.get("ts")
        self._event(str(record.get("intent", "journal")), text, actor=who,
                    at=float(at) if isinstance(at, int | float) else None)

    def _follow_driver(self) -> None:
        """Watch-only: learn phase and pause reason from the driver's journal."""
        for record in self.journal.poll_new():
            after = record.get("after") or {}
            if "phase" in after:
                with contextlib.suppress(ValueError):
                    self._phase = Phase(after["phase"])
                self._pause_reason = after.get("pause_reason", "")
            self._journal_event(record)
        if self._phase is Phase.PROGRESSING and self._weight >= 100:
            self._phase = Phase.PROMOTED
        if self._driver_probe is not None:
            self._driver, self._driver_since = self._driver_probe()

    async def run(self) -> None:
        """Poll until `stop()`; the front end owns this task."""
        self._stop.clear()
        while not self._stop.is_set():
            await self.tick()
            delay = self.plan.poll_interval
            if self._rollback_next_at is not None:
                delay = max(0.05, min(delay, self._rollback_next_at - self.clock.now()))
            await self.clock.sleep(delay)

    def stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        for provider in (self.metrics, self.traffic, self.flags_provider):
            if provider is not None:
                with contextlib.suppress(Exception):
                    await provider.close()

    # ------------------------------------------------------------------ weight changes

    async def _apply_weight(
        self, weight: int, *, intent: str, reason: str, actor: Actor | None, data: dict[str, Any]
    ) -> ActionResult:
        """Journal → call → read back → journal (safety rule 2)."""
        before = self._state()
        try:
            self._journal(
                intent, reason=reason, before=before, after={"weight": weight}, data=data,
                actor=actor,
            )
        except JournalError as exc:
            return self._refuse(f"{intent} refused: journal cannot be written ({exc})")
        try:
            await self._call("traffic", f"set weight {weight}%", self.traffic.set_weight(
                weight, reason=reason
            ))
            state = await self._call("traffic", "read back", self.traffic.read())
        except _CallFailed as exc:
            # The change may or may not have landed. One more read tells a change that
            # landed in part (one of two servers) from one that did not land at all.
            seen = await self._read_quietly()
            mismatch = seen is not None and seen not in (before["weight"], weight)
            self._expected_weight = seen if seen != weight else None
            message = f"{intent} to {weight}% not verified: {exc}"
            if mismatch:
                message += f"; provider reports {seen}%"
            self._journal_outcome(intent, reason, before, f"failed: {message}", actor)
            self._last_error = message
            self._event("error", message)
            # A read showing the weight asked for means only the answer was lost: the
            # next poll verifies the change.
            if seen != weight:
                self._after_failed_change(message, mismatch=mismatch)
            return ActionResult(False, message)
        self._traffic_state = state
        self._weight = state.canary_weight
        if state.canary_weight != weight:
            # What the provider shows is known, just not what was asked: adopting it keeps
            # a later read from passing it off as a verified step.
            self._expected_weight = state.canary_weight
            message = (
                f"{intent} to {weight}% not verified: provider reports {state.canary_weight}%"
            )
            self._journal_outcome(intent, reason, before, f"failed: {message}", actor)
            self._last_error = message
            self._event("error", message)
            self._after_failed_change(message, mismatch=True)
            return ActionResult(False, message)
        self._expected_weight = weight
        self._advance_failures = 0
        return ActionResult(True, f"{intent}: canary at {weight}% (verified)")

    async def _read_quietly(self) -> int | None:
        """The live weight, or None when the provider cannot say."""
        try:
            state = await self._call("traffic", "read back", self.traffic.read())
        except _CallFailed:
            return None
        self._traffic_state = state
        self._weight = state.canary_weight
        return state.canary_weight

    def _after_failed_change(self, message: str, *, mismatch: bool) -> None:
        """Pause after a step change that was not verified, when it will not mend itself.

        A read-back that disagrees (`mismatch`: one of two servers changed, a provider
        that ignores the call) does not mend itself, and neither does a call that keeps
        failing: a human looks before anything else moves.
        """
        if mismatch:
            self._advance_failures = 0
        else:
            self._advance_failures += 1
            if self._advance_failures < ADVANCE_FAILURE_LIMIT:
                return
            self._advance_failures = 0
        if self._phase in (Phase.PENDING, Phase.PROGRESSING, Phase.PAUSED):
            self._set_paused(f"{message} — check the traffic provider, then resume")

    def _journal_outcome(
        self, intent: str, reason: str, before: dict[str, Any], outcome: str, actor: Actor | None
    ) -> None:
        with contextlib.suppress(JournalError):
            self._journal(
                intent, reason=reason, before=before, after=self._state(), outcome=outcome,
                actor=actor,
            )

    def _enter_step(self, index: int) -> None:
        self._step_index = index
        self._bake_elapsed = 0.0
        self._gates = [gate_logic.new_step(g) for g in self._gates]
        weight = self.plan.steps[index].weight
        self._phase = Phase.PROMOTED if weight >= 100 else Phase.PROGRESSING
        self._pause_reason = ""

    def _announce_step(self, actor: str, how: str, **data: Any) -> None:
        promoted = self._phase is Phase.PROMOTED
        self._event(
            "promoted" if promoted else "step",
            f"step {self._step_index + 1}/{len(self.plan.steps)}: canary at {self._weight}% "
            f"({how})" + (" — PROMOTED" if promoted else ""),
            actor=actor,
            step=self._step_index + 1,
            weight=self._weight,
            **data,
        )

    async def _advance_locked(
        self, reason: str, *, automatic: bool = False, actor: Actor | None = None
    ) -> ActionResult:
        if self._phase not in (Phase.PENDING, Phase.PROGRESSING):
            return self._refuse(f"advance refused: release is {self._phase.label.lower()}")
        nxt = self._step_index + 1
        if nxt >= len(self.plan.steps):
            return self._refuse("advance refused: already at the last step")
        blind = self._blind_reason()
        if blind is not None:
            return self._refuse(f"advance refused: {blind}")
        if self._phase is not Phase.PENDING:
            blocking = self._blocking_gate()
            if blocking is not None:
                return self._refuse(
                    f"advance refused: gate {blocking.name} is "
                    f"{'failing' if blocking.tripped else blocking.verdict.value} "
                    f"({blocking.reason})"
                )
        weight = self.plan.steps[nxt].weight
        data = self._gate_data() if automatic else {}
        who = None if automatic else actor
        result = await self._apply_weight(
            weight, intent="advance", reason=reason or "manual advance", actor=who, data=data
        )
        if not result.ok:
            return result
        before = self._state()
        self._enter_step(nxt)
        self._journal_outcome("advance", reason, before, "verified", who)
        self._announce_step(
            str(who or ("engine" if automatic else self.actor)),
            "verified",
            **({"gates": self._gate_data()["gates"]} if automatic else {}),
        )
        self._last_error = ""
        return result

    async def _start_rollback(
        self, reason: str, *, automatic: bool = False, actor: Actor | None = None
    ) -> ActionResult:
        before = self._state()
        data = self._gate_data()
        try:
            self._journal(
                "rollback", reason=reason, before=before, after={"weight": 0}, data=data,
                actor=None if automatic else actor,
            )
        except JournalError as exc:
            return self._refuse(f"rollback refused: journal cannot be written ({exc})")
        self._phase = Phase.ROLLING_BACK
        self._rollback_reason = reason
        self._rollback_attempts = 0
        self._rollback_started_at = self.clock.now()
        self._rollback_flags_pending = self._flags_to_kill()
        self._event(
            "rollback",
            f"rolling back: {reason}",
            actor="engine" if automatic else str(actor or self.actor),
            **data,
        )
        self._publish()
        return await self._attempt_rollback(first_intent_written=True)

    async def _attempt_rollback(self, *, first_intent_written: bool = False) -> ActionResult:
        self._rollback_attempts += 1
        intent = "rollback" if first_intent_written else "rollback.retry"
        before = self._state()
        if not first_intent_written:
            with contextlib.suppress(JournalError):
                self._journal(intent, reason=self._rollback_reason, before=before,
                              after={"weight": 0})
        # Flags first: a kill switch acts on the next evaluation everywhere, while
        # traffic drains. Each kill is journalled and verified on its own; one that fails
        # is retried with the traffic on the next attempt and keeps the rollback unverified.
        flag_failure = await self._kill_rollback_flags()
        failure: str | None = None
        try:
            await self._call("traffic", "set weight 0%", self.traffic.set_weight(
                0, reason=self._rollback_reason
            ))
            state = await self._call("traffic", "read back", self.traffic.read())
            self._traffic_state = state
            self._weight = state.canary_weight
            if state.canary_weight != 0:
                failure = f"provider reports canary at {state.canary_weight}%"
        except _CallFailed as exc:
            failure = str(exc)
        if failure is None and flag_failure is not None:
            # Traffic is back, flags are not: say so, so the journal shows which half held.
            self._journal_outcome(intent, self._rollback_reason, before,
                                  "traffic verified at 0%; release flags not yet verified off",
                                  None)
        if flag_failure is not None:
            failure = f"{failure}; {flag_failure}" if failure else flag_failure
        if failure is None:
            self._phase = Phase.ROLLED_BACK
            self._expected_weight = 0
            self._step_index = -1
            self._rollback_next_at = None
            self._problem("rollback", None)
            self._journal_outcome(intent, self._rollback_reason, before, "verified", None)
            self._event(
                "rolled_back",
                f"rolled back: canary at 0% (verified) — {self._rollback_reason}",
            )
            self._last_error = ""
            return ActionResult(True, "rolled back: canary at 0% (verified)")
        backoff = min(2.0 ** (self._rollback_attempts - 1), self.plan.rollback_retry_max)
        self._phase = Phase.ROLLBACK_FAILED
        self._rollback_next_at = self.clock.now() + backoff
        self._expected_weight = None
        message = (
            f"ROLLBACK NOT VERIFIED (attempt {self._rollback_attempts}): {failure}; "
            f"retrying in {backoff:g}s"
        )
        self._problem("rollback", message)
        self._journal_outcome(intent, self._rollback_reason, before, f"failed: {failure}", None)
        self._event("error", message)
        self._last_error = message
        return ActionResult(False, message)

    # ------------------------------------------------------------------ intents

    async def advance(self, reason: str = "", actor: Actor | None = None) -> ActionResult:
        self._require_drive("advance")
        async with self._lock:
            result = await self._advance_locked(reason or "manual advance", actor=actor)
        self._publish()
        return result

    async def pause(self, reason: str = "", actor: Actor | None = None) -> ActionResult:
        self._require_drive("pause")
        async with self._lock:
            if self._phase not in (Phase.PROGRESSING, Phase.PENDING):
                return self._refuse(f"pause refused: release is {self._phase.label.lower()}")
            try:
                self._journal("pause", reason=reason or "paused by operator",
                              before=self._state(), after={"phase": "paused"}, actor=actor)
            except JournalError as exc:
                return self._refuse(f"pause refused: journal cannot be written ({exc})")
            self._set_paused(reason or "paused by operator", actor or self.actor)
        self._publish()
        return ActionResult(True, "paused")

    async def resume(self, reason: str = "", actor: Actor | None = None) -> ActionResult:
        self._require_drive("resume")
        async with self._lock:
            if self._phase is not Phase.PAUSED:
                return self._refuse(f"resume refused: release is {self._phase.label.lower()}")
            before = self._state()
            try:
                self._journal("resume", reason=reason or "resumed by operator", before=before,
                              after={"phase": "progressing"}, actor=actor)
            except JournalError as exc:
                return self._refuse(f"resume refused: journal cannot be written ({exc})")
            self._phase = Phase.PENDING if self._step_index < 0 else Phase.PROGRESSING
            self._pause_reason = ""
            # Give missing data a fresh allowance; failures keep counting.
            self._gates = [dataclasses.replace(g, consecutive_inconclusive=0) for g in self._gates]
            self._dark_polls = dict.fromkeys(self._dark_polls, 0)
            self._journal_outcome("resume", reason, before, "verified", actor)
            self._event("resume", f"resumed{': ' + reason if reason else ''}",
                        actor=str(actor or self.actor))
        self._publish()
        return ActionResult(True, "resumed")

    async def promote(self, reason: str = "", actor: Actor | None = None) -> ActionResult:
        self._require_drive("promote")
        async with self._lock:
            if self._phase not in (Phase.PENDING, Phase.PROGRESSING, Phase.PAUSED):
                return self._refuse(f"promote refused: release is {self._phase.label.lower()}")
            blind = self._blind_reason()
            if blind is not None:
                return self._refuse(f"promote refused: {blind}")
            blocking = self._blocking_gate()
            if blocking is not None and self._step_index >= 0:
                return self._refuse(
                    f"promote refused: gate {blocking.name} is "
                    f"{'failing' if blocking.tripped else blocking.verdict.value} "
                    f"({blocking.reason})"
                )
            reason = reason or "promoted by operator"
            result = await self._apply_weight(100, intent="promote", reason=reason, actor=actor,
                                              data=self._gate_data())
            if result.ok:
                before = self._state()
                self._enter_step(len(self.plan.steps) - 1)
                self._journal_outcome("promote", reason, before, "verified", actor)
                self._event("promoted", "PROMOTED: canary at 100% (verified)",
                            actor=str(actor or self.actor))
        self._publish()
        return result

    async def rollback(self, reason: str, actor: Actor | None = None) -> ActionResult:
        self._require_drive("roll back")
        if not reason.strip():
            return self._refuse("rollback refused: a reason is required")
        async with self._lock:
            if self._phase is Phase.ROLLED_BACK:
                return self._refuse("rollback refused: already rolled back")
            if self._phase in (Phase.ROLLING_BACK, Phase.ROLLBACK_FAILED):
                # Retrying now is what an operator pressing r again means.
                result = await self._attempt_rollback()
            else:
                result = await self._start_rollback(reason.strip(), actor=actor)
        self._publish()
        return result

    async def settle_rollback(self) -> ActionResult:
        """Keep retrying a pending rollback until verified or `rollback_give_up` passes."""
        started = self.clock.now()
        while self._phase in (Phase.ROLLING_BACK, Phase.ROLLBACK_FAILED):
            if self.clock.now() - started > self.plan.rollback_give_up:
                return ActionResult(False, f"rollback still not verified after "
                                           f"{self.plan.rollback_give_up:g}s: a human must act")
            wait = (self._rollback_next_at or self.clock.now()) - self.clock.now()
            if wait > 0:
                await self.clock.sleep(wait)
            await self.tick()
        if self._phase is Phase.ROLLED_BACK:
            return ActionResult(True, "rolled back: canary at 0% (verified)")
        return ActionResult(False, f"release is {self._phase.label.lower()}")

    async def set_flag(
        self, key: str, enabled: bool, reason: str, actor: Actor | None = None
    ) -> ActionResult:
        self._require_drive("change a flag")
        intent = "flag.restore" if enabled else "flag.kill"
        return await self._change_flag(
            key, intent, reason, actor,
            apply=lambda p: p.set_enabled(key, enabled, reason=reason),
            check=lambda f: f.enabled == enabled,
            done=f"{key} {'restored (on)' if enabled else 'KILLED (off)'}",
        )

    async def set_flag_rollout(
        self, key: str, percent: int, reason: str, actor: Actor | None = None
    ) -> ActionResult:
        self._require_drive("change a flag")
        if not 0 <= percent <= 100:
            return self._refuse(f"flag rollout refused: {percent} is outside 0–100")
        return await self._change_flag(
            key, "flag.rollout", reason, actor,
            apply=lambda p: p.set_rollout(key, percent, reason=reason),
            check=lambda f: f.rollout == percent,
            done=f"{key} rollout at {percent}%",
        )

    def _flags_to_kill(self) -> list[str]:
        if not self.plan.kill_flags_on_rollback or self.flags_provider is None:
            return []
        return list(dict.fromkeys(self.plan.release_flags))

    async def _kill_rollback_flags(self) -> str | None:
        """Kill every release flag still pending; None when all are verified off."""
        failed: list[str] = []
        for key in list(self._rollback_flags_pending):
            reason = f"rollback: {self._rollback_reason}"
            result = await self._change_flag_locked(
                key, "flag.kill", reason, None,
                apply=lambda p, k=key, r=reason: p.set_enabled(k, False, reason=r),
                check=lambda f: not f.enabled,
                done=f"{key} KILLED (off)",
            )
            if result.ok:
                self._rollback_flags_pending.remove(key)
            else:
                failed.append(result.message)
        if not failed:
            return None
        return "flags not verified off: " + "; ".join(failed)

    async def _change_flag(
        self,
        key: str,
        intent: str,
        reason: str,
        actor: Actor | None,
        *,
        apply: Callable[[FlagProvider], Awaitable[None]],
        check: Callable[[Flag], bool],
        done: str,
    ) -> ActionResult:
        if self.flags_provider is None:
            return self._refuse("no flag provider is configured")
        if not reason.strip():
            return self._refuse(f"{intent} refused: a reason is required")
        async with self._lock:
            result = await self._change_flag_locked(
                key, intent, reason, actor, apply=apply, check=check, done=done
            )
        self._publish()
        return result

    async def _change_flag_locked(
        self,
        key: str,
        intent: str,
        reason: str,
        actor: Actor | None,
        *,
        apply: Callable[[FlagProvider], Awaitable[None]],
        check: Callable[[Flag], bool],
        done: str,
    ) -> ActionResult:
        """Journal → call → read back → verify → journal, with the engine lock held."""
        provider = self.flags_provider
        if provider is None:
            return ActionResult(False, "no flag provider is configured")
        current = next((f for f in self._flags if f.key == key), None)
        before = {"flag": key, "enabled": current.enabled if current else None,
                  "rollout": current.rollout if current else None}
        try:
            self._journal(intent, reason=reason, before=before, data={"flag": key},
                          actor=actor)
        except JournalError as exc:
            return self._refuse(f"{intent} refused: journal cannot be written ({exc})")
        try:
            await self._call("flags", f"change {key}", apply(provider))
            listed = await self._call("flags", "read back", provider.list_flags())
        except _CallFailed as exc:
            message = f"{intent} {key} not verified: {exc}"
            self._journal_outcome(intent, reason, before, f"failed: {exc}", actor)
            self._last_error = message
            self._event("error", message)
            self._publish()
            return ActionResult(False, message)
        self._flags = self._mark_release_flags(listed)
        flag = next((f for f in self._flags if f.key == key), None)
        if flag is None or not check(flag):
            shown = ("no such flag" if flag is None else
                     f"{'on' if flag.enabled else 'off'}"
                     + (f", rollout {flag.rollout}%" if flag.rollout is not None else ""))
            message = f"{intent} {key} not verified: provider shows {shown}"
            self._journal_outcome(intent, reason, before, f"failed: {message}", actor)
            self._last_error = message
            self._event("error", message)
            self._publish()
            return ActionResult(False, message)
        with contextlib.suppress(JournalError):
            self._journal(intent, reason=reason, before=before,
                          after={"flag": key, "enabled": flag.enabled,
                                 "rollout": flag.rollout},
                          outcome="verified", actor=actor)
        self._event("flag", f"{done}: {reason}", actor=str(actor or self.actor))
        self._publish()
        return ActionResult(True, f"{done} (verified)")


def describe_time(at: float | None) -> str:
    return _clock_text(at) if at is not None else "—"
