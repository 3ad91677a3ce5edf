"""The release engine: the one facade every front end drives a release through.

The TUI, the headless runner and the one-shot commands call the same intents (advance,
pause, resume, promote, rollback, set_flag). The safety rules of docs/design.md are
enforced below this facade, each in the module whose name says it:

1. missing or stale data is INCONCLUSIVE and never advances — `gates`, `policy`;
2. every mutating action journals its intent, calls the provider, reads the state back
   and journals the verified outcome — `record`, `changes`, `flag_actions`; a failed
   rollback is retried until verified — `rollback`;
3. a watch-only engine holds read-only facades and refuses every intent — `drive`;
4. one driver per release — `lease` (the front end holds it; `drive` demotes a console
   that lost it);
5. on attach the engine reads the real weight and the journal, and never re-applies a
   step — `recovery`;
6. secrets never reach the screen — the providers and `relconsole.secrets`.

What the engine sees lives in `observe`, where the release stands in `progress`, and
which step comes next in `steps` (the seam for a provider that owns its step plan).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Literal

from relconsole.clock import Clock
from relconsole.engine import follow, policy, recovery
from relconsole.engine.changes import ADVANCE_FAILURE_LIMIT, WeightChanges
from relconsole.engine.context import EngineContext
from relconsole.engine.drive import Drive, DriverProbe, Heartbeat
from relconsole.engine.events import EventBus, EventListener, SnapshotListener
from relconsole.engine.flag_actions import FlagActions, FlagChange
from relconsole.engine.follow import Follower
from relconsole.engine.journal import Journal, JournalError
from relconsole.engine.migrations import MigrationHook, MigrationRunner, Migrations, OfferedDown
from relconsole.engine.observe import Observations, ProviderHealth
from relconsole.engine.progress import ReleaseState
from relconsole.engine.record import Recorder
from relconsole.engine.results import ActionResult, CallFailed, WatchOnlyError
from relconsole.engine.rollback import ROLLED_BACK, Rollback
from relconsole.engine.state import Event, EventKind, Snapshot
from relconsole.engine.steps import ControllerSteps, FixedSteps, StepPlan
from relconsole.model import Actor, Mode, Phase, ReleasePlan, TrafficState
from relconsole.providers.base import (
    FlagProvider,
    MetricsProvider,
    TrafficProvider,
    owns_steps,
)

__all__ = ["ADVANCE_FAILURE_LIMIT", "ActionResult", "Intent", "ReleaseEngine", "WatchOnlyError"]

# The intents `ReleaseEngine.why_not` can judge before they are sent.
Intent = Literal["advance", "promote", "pause", "resume"]

# Reads of the weight at start before it is declared unknown: one lost answer must not
# leave a release paused (and a headless run ended) before it has begun.
FIRST_READ_TRIES = 3
# How far back an attach looks for a count gate's starting point: a step older than a
# day is judged on what follows the attach (and counters that old may be gone).
LOOK_BACK_MAX = 24 * 3600.0

# Real seconds between checks that this driver still holds its lease. A take-over must
# stop the old driver at once, not at its next poll (poll_interval may be a minute); the
# check is a stat of the lock file, and the lease's info file is rewritten far less often.
LEASE_CHECK_INTERVAL = 0.5


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
        driver_probe: DriverProbe | None = None,
        heartbeat: Heartbeat | None = None,
        steps: StepPlan | None = None,
        migrations: MigrationRunner | None = None,
    ) -> None:
        self.plan = plan
        self.clock = clock
        self.actor = actor
        self.journal = journal
        if steps is None:
            # A controller that owns the plan (Argo Rollouts) reports it on every read.
            steps = (ControllerSteps(lambda: self._obs.traffic) if owns_steps(traffic)
                     else FixedSteps(plan.steps))
        self.steps = steps
        self._bus = EventBus(clock)
        self._drive = Drive(
            mode, traffic=traffic, metrics=metrics, flags=flags, journal=journal,
            bus=self._bus, driver=driver, driver_since=driver_since,
            driver_probe=driver_probe, heartbeat=heartbeat,
        )
        self._state = ReleaseState(strategy=plan.strategy)
        self._health = ProviderHealth(clock, self._bus)
        self._obs = Observations(plan, self._health, self._bus)
        record = Recorder(journal, self._drive, self._health, self._state, actor)
        self._health.on_outage = record.outage
        self._ctx = EngineContext(
            plan=plan, steps=self.steps, clock=clock, actor=actor, state=self._state,
            obs=self._obs, health=self._health, drive=self._drive, record=record,
            bus=self._bus, publish=self._publish,
        )
        self._changes = WeightChanges(self._ctx)
        self._flag_actions = FlagActions(self._ctx)
        self._rollback = Rollback(self._ctx, self._flag_actions)
        # Expand migrations before the first step; contract ones after promotion (`tick`).
        self._migrations = Migrations(self._ctx, migrations)
        if plan.migrations:
            self._changes.before_first_step = self._migrations.before_first_step
        self._changes.on_failed_batch = self._batch_failed
        self._follower = Follower(self._ctx)
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._attached = False

    # ------------------------------------------------------------------ what front ends see

    @property
    def mode(self) -> Mode:
        return self._drive.mode

    @property
    def lease_lost(self) -> asyncio.Event:
        """Set when this driver is demoted: a front end waiting between polls wakes."""
        return self._drive.lost

    @property
    def traffic(self) -> TrafficProvider:
        return self._drive.traffic

    @traffic.setter
    def traffic(self, provider: TrafficProvider) -> None:
        self._drive.traffic = provider

    @property
    def metrics(self) -> MetricsProvider | None:
        return self._drive.metrics

    @property
    def flags_provider(self) -> FlagProvider | None:
        return self._drive.flags

    @flags_provider.setter
    def flags_provider(self, provider: FlagProvider | None) -> None:
        self._drive.flags = provider

    @property
    def phase(self) -> Phase:
        return self._state.phase

    @property
    def flag_rollout_supported(self) -> bool:
        """Whether `set_flag_rollout` can work at all (Flagsmith keeps percentages itself)."""
        flags = self._drive.flags
        return flags is not None and flags.supports_rollout

    def subscribe(
        self, on_snapshot: SnapshotListener | None = None, on_event: EventListener | None = None
    ) -> Callable[[], None]:
        return self._bus.subscribe(on_snapshot, on_event)

    def recent_events(self, n: int = 50) -> list[Event]:
        return self._bus.recent(n)

    def snapshot(self) -> Snapshot:
        state, obs, drive = self._state, self._obs, self._drive
        blind = policy.blind_reason(self._health.problems, state.expected_weight)
        return Snapshot(
            plan=self.plan,
            now=self.clock.now(),
            mode=drive.mode,
            driver=drive.driver,
            driver_since=drive.driver_since,
            phase=state.phase,
            step_index=state.step_index,
            weight=state.weight,
            bake_elapsed=state.bake_elapsed,
            pause_reason=state.pause_reason,
            ready_to_advance=policy.ready_to_advance(state, obs.gates, self.steps, blind),
            gates=tuple(obs.gates),
            latest=obs.latest(),
            series=obs.series_view(),
            traffic=obs.traffic,
            flags=obs.flags,
            problems=tuple(self._health.problems.values()),
            rollback_attempts=state.rollback.attempts,
            rollback_next_at=state.rollback.next_at,
            last_error=state.last_error,
            rollback_reason=state.rollback.reason,
            rollback_error=state.rollback.error,
            flags_provider=drive.flags.name if drive.flags is not None else "",
            flag_rollout_supported=self.flag_rollout_supported,
            journal_warnings=tuple(self.journal.warnings),
            rollback_cause=state.rollback.cause,
            traffic_at=obs.traffic_at,
            metrics_at=obs.metrics_at,
            busy=(self.steps.busy(state.step_index) or "")
            if state.phase is Phase.PROGRESSING else "",
            hold=self._changes.hold() or "",
        )

    def _publish(self) -> None:
        self._bus.publish(self.snapshot)

    def note_problem(self, source: str, message: str | None) -> None:
        """A problem of a part beside the providers (a notification target that keeps
        failing), shown with theirs until it clears (None); call it on the engine's loop."""
        self._health.note(source, message)
        self._publish()

    # ------------------------------------------------------------------ start-up

    async def attach(
        self, *, announce: bool = True, why: str = "console started", replay: bool = True
    ) -> None:
        """Read the real state from the providers and the journal (safety rule 5).

        `announce` journals that a console arrived (with `why`). A one-shot command does
        not: its action's own records say who did what, and a refused one leaves no trace.
        `replay` shows the release's recent history; a watcher that takes the lease has
        shown it already.
        """
        state = self._state
        now = self.clock.now()
        state.last_tick = now
        records = self.journal.records()
        try:
            read = await self._first_read()
            self._obs.traffic = read
            state.weight = read.canary_weight
            state.expected_weight = read.canary_weight
            state.route = state.expected_route = read.route
            self._health.note("traffic", None)
            weight_known = True
        except CallFailed as exc:
            self._health.note("traffic", str(exc))
            weight_known = False
            if records:
                state.weight = recovery.weight_from_journal(records[-1])
        state.step_index = self.steps.index_for_weight(
            state.weight, state.route if weight_known else None)
        known = self.steps.step(state.step_index)
        state.step_label = known.label if known is not None else ""
        found = recovery.recover(records, weight=state.weight, weight_known=weight_known,
                                 step_index=state.step_index, now=now)
        state.phase = found.phase
        state.pause_reason = found.pause_reason
        state.bake_elapsed = found.bake_elapsed
        if weight_known and self._obs.traffic is not None:
            # The controller's word over the journal's: it may have moved, paused or
            # aborted while no console watched.
            state.phase, state.pause_reason = recovery.controller_phase(
                self._obs.traffic.controller, found)
        # A console that arrives after a rollback (a driver restarting, a watcher) shows
        # its cause as the console that rolled back did, from the intent's record.
        state.rollback.cause = follow.last_rollback_cause(records, self.plan)
        if found.phase is Phase.ROLLING_BACK:
            self._rollback.resume_pending(found.rollback_reason, now)
        elif found.rollback_found_done:
            state.rollback.reason = found.rollback_reason
            if self._drive.driving:
                self._ctx.record.soft(
                    "rollback",
                    reason=found.rollback_reason,
                    before={"weight": 0},
                    after=state.journal_view(),
                    outcome="verified (found already done on restart)",
                )

        await self._obs.load_history(self._drive)
        if found.phase in (Phase.PROGRESSING, Phase.PAUSED) and state.step_index >= 0:
            # The step's evidence so far, from when the step began (`bake_elapsed` is
            # the time since its verified advance), not only what follows this attach.
            await self._obs.look_back(self._drive, min(found.bake_elapsed, LOOK_BACK_MAX))
        # The release's history first, for a driver restarting and a watcher alike:
        # without it a console that attaches later says only "attached: ROLLED BACK".
        if replay:
            self._follower.arrive(records)
        if announce and self.mode is not Mode.WATCH:
            # Watching goes on without a journal; acting does not (see `Recorder.write`).
            with contextlib.suppress(JournalError):
                self._ctx.record.write(
                    "attach",
                    reason=why,
                    actor=self.actor,
                    after=state.journal_view(),
                    outcome="verified" if weight_known else "failed: traffic unreadable",
                )
        self._attached = True
        self._bus.emit(
            EventKind.ATTACH,
            f"attached: {state.phase.label} at {state.weight}% "
            f"({self.steps.label(state.step_index)})",
        )
        await self._obs.poll(self._drive, now, self._changes.observe_weight)
        self._publish()

    async def _first_read(self) -> TrafficState:
        for _ in range(FIRST_READ_TRIES - 1):
            try:
                return await self._ctx.call("traffic", "read", self._drive.traffic.read())
            except CallFailed:
                await asyncio.sleep(0.2)
        return await self._ctx.call("traffic", "read", self._drive.traffic.read())

    # ------------------------------------------------------------------ the loop

    async def tick(self) -> None:
        """One poll of every provider, then whatever the plan says to do."""
        if not self._attached:
            await self.attach()
            return
        state = self._state
        now = self.clock.now()
        self._drive.renew()
        await self._obs.poll(self._drive, now, self._changes.observe_weight,
                             announce=state.phase is not Phase.ROLLED_BACK)
        async with self._lock:
            if state.phase is Phase.PROGRESSING and state.last_tick is not None:
                state.bake_elapsed += max(0.0, now - state.last_tick)
            state.last_tick = now
            if self.mode is Mode.WATCH:
                self._follower.follow()
            else:
                await self._act(now)
                if self.plan.migrations:
                    await self._migrations.after_promotion(now)
                    self._migrations.offer()
        self._publish()

    async def _act(self, now: float) -> None:
        hold = self._changes.hold() if self.plan.auto_advance else None
        self._say_hold(hold)
        decision = policy.decide(
            self._state, self._obs.gates, self._health.problems, self._health.dark_polls,
            self.steps, now=now, auto_advance=self.plan.auto_advance,
            auto_rollback=self.plan.auto_rollback, hold=hold,
        )
        match decision:
            case policy.RetryRollback():
                await self._rollback.attempt()
            case policy.StartRollback(reason=reason):
                await self._rollback.start(reason, automatic=True)
            case policy.Pause(reason=reason):
                await self._changes.auto_pause(reason)
            case policy.Advance(reason=reason):
                await self._changes.advance(reason, automatic=True)
            case policy.Hold():
                pass

    async def _batch_failed(self, message: str) -> None:
        """A rolling batch that did not come up on the new version: the done batches go
        back (auto_rollback), or the release waits for a human with the server out."""
        if self.plan.auto_rollback:
            await self._rollback.start(f"a batch failed: {message}", automatic=True)
        else:
            self._changes.set_paused(f"a batch failed: {message} — roll back, or fix the "
                                     "server and resume")

    def _say_hold(self, hold: str | None) -> None:
        """Say once on the event stream that the schedule holds the release, and once
        that it no longer does (a pipeline waiting outside its window says why)."""
        state = self._state
        said = (hold or "").split(" (in ")[0]  # its countdown changes, its cause does not
        if said == state.hold_said:
            return
        if hold:
            self._bus.emit(EventKind.HOLD, f"holding: {hold}")
        elif state.hold_said:
            self._bus.emit(EventKind.HOLD, "the schedule allows it again: moving on")
        state.hold_said = said

    def override_window(self, reason: str, actor: Actor | None = None) -> ActionResult:
        """Start and advance outside the deployment window from this console: an
        operator's explicit decision, journalled with why."""
        self._drive.require("override the deployment window")
        if not reason.strip():
            return self._ctx.refuse("window override refused: a reason is required")
        closed = self.plan.schedule.closed(self.clock.now())
        try:
            self._ctx.record.write(
                "window.override", reason=reason.strip(), actor=actor or self.actor,
                before={"window": closed or "open"}, after={"window": "overridden"},
                outcome="verified")
        except JournalError as exc:
            return self._ctx.refuse(f"window override refused: journal cannot be written "
                                    f"({exc})")
        self._state.window_override = reason.strip()
        self._bus.emit(EventKind.HOLD,
                       f"deployment window overridden: {reason.strip()}",
                       actor=str(actor or self.actor))
        return ActionResult(True, "deployment window overridden")

    async def run(self) -> None:
        """Poll until `stop()`; the front end owns this task.

        `stop()` also ends the wait between polls, so a front end that waits for this
        task (to hand the lease on) knows at once that no tick will act any more.
        """
        self._stop.clear()
        guard = asyncio.ensure_future(self.guard_lease())
        try:
            await self._loop()
        finally:
            guard.cancel()

    async def _loop(self) -> None:
        while not self._stop.is_set():
            await self.tick()
            delay = self.plan.poll_interval
            due = self._state.rollback.next_at
            if due is not None:
                delay = max(0.05, min(delay, due - self.clock.now()))
            sleeper = asyncio.ensure_future(self.clock.sleep(delay))
            stopper = asyncio.ensure_future(self._stop.wait())
            waits = {sleeper, stopper}
            if self._drive.driving:
                # Demoted: poll at once, so the screen shows the new driver's records
                # and the weight they set, not what it was before the take-over.
                waits.add(asyncio.ensure_future(self._drive.lost.wait()))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()

    def stop(self) -> None:
        self._stop.set()

    async def guard_lease(self) -> None:
        """While this engine drives, notice within a second that its lease was taken, and
        demote it at once (a front end runs this beside its polls; `run` does)."""
        while True:
            await asyncio.sleep(LEASE_CHECK_INTERVAL)  # real time: leases are wall-clock
            if not self._drive.driving:
                continue
            async with self._lock:  # never in the middle of an action's provider calls
                self._drive.renew()
            if not self._drive.driving:
                self._publish()

    async def take_drive(
        self, heartbeat: Heartbeat, *, since: float | None, reason: str, holder: dict[str, object]
    ) -> None:
        """This watcher took the free lease (the front end took it): drive from here.

        The take is journalled with its reason; then the engine attaches as a driver
        that starts would — reading the real weight and the journal — so the automatic
        advance and rollback resume from where the release really stands.
        """
        async with self._lock:
            previous = self._drive.driver  # before `follow` finds this console holding it
            self._follower.follow()  # the driver's last records, before writing after them
            self._drive.take(heartbeat, since)
            try:
                self._ctx.record.write(
                    "lease.take", reason=reason, actor=self.actor,
                    before={"driver": previous},
                    # The release as it stands, too: recovery reads the last record's
                    # phase, and a paused release must stay paused under its new driver.
                    after={**self._state.journal_view(), **holder}, outcome="verified",
                )
            except JournalError as exc:
                # Driving unrecorded is not driving: back to watching, and say why.
                self._drive.demote(f"the take could not be journalled: {exc}")
                self._publish()
                raise
            self._bus.emit(EventKind.LEASE, f"lease taken: this console drives now — {reason}")
            await self.attach(why=f"took the free lease: {reason}", replay=False)

    def leave(self, how: str) -> None:
        """Journal that this driving console goes away and how it leaves the release.

        Nothing is changed; the record is for whoever asks later why nobody drove it.
        """
        if self._drive.driving:
            self._ctx.record.soft("detach", reason=how, after=self._state.journal_view(),
                                  outcome="verified", actor=self.actor)

    async def close(self) -> None:
        drive = self._drive
        for provider in (drive.metrics, drive.traffic, drive.flags):
            if provider is not None:
                with contextlib.suppress(Exception):
                    await provider.close()

    # ------------------------------------------------------------------ intents

    def why_not(self, intent: Intent, *, skip_bake: bool = False, reason: str = "") -> str | None:
        """Why `intent` would be refused right now, in the engine's own words; None if not.

        The intents refuse with exactly these words, so a front end that asks first (`P`
        opens no dialog for a promotion the engine will refuse) cannot disagree with it.
        """
        if not self._drive.driving:
            return f"watch-only: {self._drive.driver} drives this release"
        changes = self._changes
        match intent:
            case "advance":
                return changes.advance_refusal(skip_bake=skip_bake, reason=reason)
            case "promote":
                return changes.promote_refusal()
            case "pause":
                return changes.pause_refusal()
            case "resume":
                return changes.resume_refusal()
            case _:
                raise ValueError(f"why_not cannot judge {intent!r}")

    async def advance(
        self, reason: str = "", actor: Actor | None = None, *, skip_bake: bool = False
    ) -> ActionResult:
        """One step forward. Inside a bake only with `skip_bake` and a reason: cutting a
        bake short is the operator's explicit decision, journalled as an early advance."""
        self._drive.require("advance")
        async with self._lock:
            result = await self._changes.advance(reason, actor=actor or self.actor,
                                                 skip_bake=skip_bake)
        self._publish()
        return result

    async def pause(self, reason: str = "", actor: Actor | None = None) -> ActionResult:
        self._drive.require("pause")
        async with self._lock:
            result = await self._changes.pause(reason, actor or self.actor)
        if result.ok:
            self._publish()
        return result

    async def resume(self, reason: str = "", actor: Actor | None = None) -> ActionResult:
        self._drive.require("resume")
        async with self._lock:
            result = await self._changes.resume(reason, actor or self.actor)
        if result.ok:
            self._publish()
        return result

    async def promote(self, reason: str = "", actor: Actor | None = None) -> ActionResult:
        self._drive.require("promote")
        async with self._lock:
            result = await self._changes.promote(reason, actor or self.actor)
        self._publish()
        return result

    async def rollback(self, reason: str, actor: Actor | None = None) -> ActionResult:
        self._drive.require("roll back")
        if not reason.strip():
            return self._ctx.refuse("rollback refused: a reason is required")
        async with self._lock:
            if self.phase is Phase.ROLLED_BACK:
                return self._ctx.refuse("rollback refused: already rolled back")
            contracted = self._migrations.contracted() if self.plan.migrations else []
            if contracted and not self._state.rolling_back:
                return self._ctx.refuse(
                    f"rollback refused: contract migration {', '.join(contracted)} has run, "
                    "and the old version may not work on the contracted schema — fix "
                    "forward")
            if self._state.rolling_back:
                # Retrying now is what an operator pressing r again means.
                result = await self._rollback.attempt(actor=actor or self.actor)
            else:
                result = await self._rollback.start(reason.strip(), actor=actor or self.actor)
            if self.plan.migrations:
                self._migrations.offer()
        self._publish()
        return result

    # ------------------------------------------------------------------ migrations

    @property
    def on_migration(self) -> MigrationHook | None:
        """Told (name, phase, outcome, command, who) once a migration's outcome is known."""
        return self._migrations.on_outcome

    @on_migration.setter
    def on_migration(self, hook: MigrationHook | None) -> None:
        self._migrations.on_outcome = hook

    def offered_downs(self) -> list[OfferedDown]:
        """After a rollback: the `down` of each verified expand migration, most recent
        first — offered, never run by the engine (a forward fix is usually safer)."""
        return self._migrations.offered_downs()

    def contract_pending(self) -> bool:
        """Whether a contract migration is still to run (a headless run may wait for it)."""
        return bool(self.plan.migrations) and self._migrations.contract_pending()

    def contract_failed(self) -> list[str]:
        """The contract migrations that failed in this process."""
        return self._migrations.contract_failed() if self.plan.migrations else []

    async def run_down(self, name: str, reason: str, actor: Actor | None = None) -> ActionResult:
        """Run one expand migration's `down`, because an operator asked, after a rollback:
        journalled (`migration.down`), verified by its exit status."""
        self._drive.require("run a migration's down")
        async with self._lock:
            result = await self._migrations.run_down(name, reason, actor or self.actor)
        self._publish()
        return result

    async def settle_rollback(self) -> ActionResult:
        """Keep retrying a pending rollback until verified or `rollback_give_up` passes."""
        started = self.clock.now()
        while self._state.rolling_back:
            if self.clock.now() - started > self.plan.rollback_give_up:
                return ActionResult(False, f"rollback still not verified after "
                                           f"{self.plan.rollback_give_up:g}s: a human must act")
            wait = (self._state.rollback.next_at or self.clock.now()) - self.clock.now()
            if wait > 0:
                await self.clock.sleep(wait)
            await self.tick()
        if self.phase is Phase.ROLLED_BACK:
            return ActionResult(True, ROLLED_BACK)
        return ActionResult(False, f"release is {self.phase.label.lower()}")

    async def set_flag(
        self, key: str, enabled: bool, reason: str, actor: Actor | None = None
    ) -> ActionResult:
        self._drive.require("change a flag")
        return await self._change_flag(FlagChange.enable(key, enabled, reason), actor)

    async def set_flag_rollout(
        self, key: str, percent: int, reason: str, actor: Actor | None = None
    ) -> ActionResult:
        self._drive.require("change a flag")
        if not 0 <= percent <= 100:
            return self._ctx.refuse(f"flag rollout refused: {percent} is outside 0–100")
        return await self._change_flag(FlagChange.rollout(key, percent, reason), actor)

    async def set_flag_cohort(
        self, key: str, attribute: str, values: tuple[str, ...], reason: str,
        actor: Actor | None = None,
    ) -> ActionResult:
        """Serve a flag to the users whose `attribute` is one of `values`, whatever its
        percentage (`flag.target`); with no values, stop (`flag.untarget`)."""
        self._drive.require("change a flag")
        change = FlagChange.cohort(key, attribute, values, reason)
        refusal = self._flag_actions.cohort_refusal(change, values)
        if refusal is not None:
            return self._ctx.refuse(refusal)
        return await self._change_flag(change, actor)

    async def _change_flag(self, change: FlagChange, actor: Actor | None) -> ActionResult:
        if self._drive.flags is None:
            return self._ctx.refuse("no flag provider is configured")
        if not change.reason.strip():
            return self._ctx.refuse(f"{change.intent} refused: a reason is required")
        async with self._lock:
            result = await self._flag_actions.change(change, actor or self.actor)
        self._publish()
        return result
