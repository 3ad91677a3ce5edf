"""What the engine sees: readings, the weight, flags, gate verdicts and provider health.

One poll samples every provider concurrently, so one slow provider costs one timeout,
and turns the answers into gate verdicts. Provider trouble is a value here (a
`ProblemNote` shown on screen), never an exception.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from relconsole import units
from relconsole.clock import Clock
from relconsole.engine import gates as gate_logic
from relconsole.engine.baseline_hold import BaselineHold
from relconsole.engine.counts import IncrementReader
from relconsole.engine.drive import Drive
from relconsole.engine.events import EventBus
from relconsole.engine.results import CallFailed, call_provider
from relconsole.engine.state import EventKind, ProblemNote, Series
from relconsole.model import (
    CounterPair,
    CountPair,
    Flag,
    GateStatus,
    MetricPair,
    ReleasePlan,
    TrafficState,
)
from relconsole.providers.base import reads_counters

T = TypeVar("T")
HISTORY_POINTS = 60
# Problems of these sources are journalled when they start and end.
PROVIDER_SOURCES = ("metrics", "traffic", "flags")
# Sources whose dark polls are counted (see `policy.dark_pause`).
DARK_SOURCES = ("metrics", "traffic")

OutageListener = Callable[[str, str, str], None]


class ProviderHealth:
    """Current provider problems, with the time each started.

    A problem seen on two polls in a row is an outage, not a blip: `on_outage` hears
    once when it starts and once when it ends, which keeps a flaky provider from
    flooding the journal.
    """

    def __init__(self, clock: Clock, bus: EventBus) -> None:
        self.clock = clock
        self.bus = bus
        self.problems: dict[str, ProblemNote] = {}
        self.on_outage: OutageListener | None = None
        self._journalled: set[str] = set()
        # Polls in a row on which a provider gave nothing usable.
        self.dark_polls = dict.fromkeys(DARK_SOURCES, 0)

    def note(self, source: str, message: str | None) -> None:
        """Record or clear a provider problem, keeping the time it started.

        A provider's problem that changes is a new state, and its time starts again: a
        Prometheus that is back but answers NaN is not "stale since" the minute it went
        away. (A rollback's note changes with every attempt and keeps its first time.)
        """
        current = self.problems.get(source)
        if message is None:
            if current is not None:
                del self.problems[source]
                self.bus.emit(EventKind.PROVIDER, f"{source} recovered")
                if source in self._journalled:
                    self._journalled.discard(source)
                    self._outage(source, f"{source} recovered", "recovered")
            return
        if current is None:
            self.problems[source] = ProblemNote(source, message, self.clock.now())
            self.bus.emit(EventKind.PROVIDER, message)
            return
        if source not in self._journalled:
            self._journalled.add(source)
            self._outage(source, message, "problem")
        if current.message != message:
            since = self.clock.now() if source in PROVIDER_SOURCES else current.since
            self.problems[source] = ProblemNote(source, message, since)

    def _outage(self, source: str, message: str, outcome: str) -> None:
        if self.on_outage is not None and source in PROVIDER_SOURCES:
            self.on_outage(source, message, outcome)

    def count_dark_polls(self) -> None:
        for source, polls in self.dark_polls.items():
            self.dark_polls[source] = polls + 1 if source in self.problems else 0

    def forgive_dark_polls(self) -> None:
        self.dark_polls = dict.fromkeys(self.dark_polls, 0)


class Observations:
    def __init__(self, plan: ReleasePlan, health: ProviderHealth, bus: EventBus) -> None:
        self.plan = plan
        self.health = health
        self.bus = bus
        self.pairs: dict[str, MetricPair] = {}
        self.counts: dict[str, CountPair] = {}
        """Each count metric's increments in the latest poll (`engine.counts`)."""
        self.reader = IncrementReader()
        self.series: dict[str, tuple[deque[float | None], deque[float | None]]] = {
            m.name: (deque(maxlen=HISTORY_POINTS), deque(maxlen=HISTORY_POINTS))
            for m in plan.metrics
        }
        self._traffic: TrafficState | None = None
        self.traffic_at: float | None = None
        """When the weight and server health in `traffic` were read."""
        self.metrics_at: float | None = None
        """When the metrics provider last answered a sample."""
        self.flags: tuple[Flag, ...] = ()
        self.gates: list[GateStatus] = [
            gate_logic.initial_status(
                g, "up" if g.is_health else units.unit_of(plan.metrics, g.metric))
            for g in plan.gates
        ]
        # Evidence of the gates judged on counts, gathered since the step began.
        self.count_states: list[gate_logic.CountState] = [
            gate_logic.start_counts(g) for g in plan.gates
        ]
        # Blue-green: blue's readings from before the switch, the baseline once green
        # has all the traffic (engine.baseline_hold).
        self.hold = BaselineHold(plan)

    @property
    def traffic(self) -> TrafficState | None:
        return self._traffic

    @traffic.setter
    def traffic(self, state: TrafficState | None) -> None:
        # Every read of the weight (a poll, a read-back, a rollback) passes here, so the
        # time a screen shows for "last read" cannot lag behind the value it shows.
        self._traffic = state
        self.traffic_at = self.health.clock.now() if state is not None else None

    async def call(self, source: str, what: str, coro: Awaitable[T]) -> T:
        return await call_provider(source, what, coro, self.plan.call_timeout)

    def latest(self) -> dict[str, tuple[float | None, float | None]]:
        return {
            name: (
                pair.canary.value if pair.canary.usable else None,
                pair.baseline.value if pair.baseline.usable else None,
            )
            for name, pair in self.pairs.items()
        }

    def series_view(self) -> dict[str, Series]:
        return {
            name: Series(canary=tuple(c), baseline=tuple(b))
            for name, (c, b) in self.series.items()
        }

    def mark_release_flags(self, listed: list[Flag]) -> tuple[Flag, ...]:
        mine = set(self.plan.release_flags)
        return tuple(
            dataclasses.replace(f, in_release=f.in_release or f.key in mine) for f in listed
        )

    def flag(self, key: str) -> Flag | None:
        return next((f for f in self.flags if f.key == key), None)

    async def load_history(self, drive: Drive) -> None:
        """Fill the sparklines from the metrics' recent past, so the first frame is whole."""
        if drive.metrics is None or not self.plan.metrics:
            return
        try:
            history = await self.call(
                "metrics",
                "history",
                drive.metrics.history(
                    self.plan.metrics,
                    HISTORY_POINTS * self.plan.poll_interval,
                    self.plan.poll_interval,
                ),
            )
        except CallFailed as exc:
            self.health.note("metrics", str(exc))
            return
        for name, pairs in history.items():
            if name not in self.series:
                continue
            canary, baseline = self.series[name]
            for pair in pairs[-HISTORY_POINTS:]:
                canary.append(pair.canary.value if pair.canary.usable else None)
                baseline.append(pair.baseline.value if pair.baseline.usable else None)

    async def poll(
        self, drive: Drive, now: float, on_weight: Callable[[int], None], *,
        announce: bool = True,
    ) -> None:
        """Sample every provider concurrently, then judge the gates on what came back.

        `announce` False keeps verdict changes off the event stream: after a rollback
        the canary has no traffic, and 'fail → inconclusive' lines would push the
        rollback's cause out of a small journal panel while saying nothing new.
        """
        await asyncio.gather(
            self._poll_metrics(drive), self._poll_traffic(drive, on_weight),
            self._poll_flags(drive),
        )
        self.health.count_dark_polls()
        # Blue-green (engine.baseline_hold): blue's readings while it serves, and once
        # after the switch its counts before it, where this console saw too few.
        if self.hold.wants_history(self.traffic) and drive.metrics is not None:
            await self.hold.look_back(partial(self._counters_ago, drive), self.plan.metrics,
                                      now)
        self.hold.observe(self.traffic, self.pairs, self.counts, now)
        self._judge(now, announce=announce)

    async def _sample(self, drive: Drive) -> dict[str, MetricPair] | str:
        """Every metric's values, or why there are none."""
        assert drive.metrics is not None
        try:
            return await self.call("metrics", "query", drive.metrics.sample(self.plan.metrics))
        except CallFailed as exc:
            return str(exc)

    async def _poll_counters(self, drive: Drive) -> tuple[dict[str, CounterPair], str | None]:
        """The raw counters of the count metrics, or why they could not be read."""
        counted = [m for m in self.plan.metrics if m.counts is not None]
        if drive.metrics is None or not counted or not reads_counters(drive.metrics):
            return {}, None
        try:
            found = await self.call("metrics", "counters",
                                    drive.metrics.sample_counters(counted))  # type: ignore[attr-defined]
        except CallFailed as exc:
            return {}, str(exc)
        return found, None

    async def look_back(self, drive: Drive, ago: float) -> None:
        """Take the counters as they stood `ago` seconds back as their starting point.

        A console that attaches mid-step (a restart, a one-shot `advance` or `status`)
        would otherwise judge the count gates on what comes after its first poll only:
        a one-shot command, which polls once, would have nothing but a starting point.
        A metric whose counters could not be read then starts at the first poll, as
        always; so does everything when the provider cannot look back.
        """
        counted = [m for m in self.plan.metrics if m.counts is not None]
        if ago <= 0 or drive.metrics is None or not counted or not reads_counters(drive.metrics):
            return
        try:
            found = await self.call(
                "metrics", "counters",
                drive.metrics.sample_counters(counted, ago=ago))  # type: ignore[attr-defined]
        except CallFailed:
            return
        then = self.health.clock.now() - ago
        for metric in counted:
            pair = found.get(metric.name)
            if pair is None or any(side is None or side.error is not None
                                   for side in (pair.canary, pair.baseline)):
                continue
            self.reader.read(metric, pair, then)

    async def _counters_ago(self, drive: Drive, ago: float) -> dict[str, CounterPair] | None:
        """The count metrics' counters as they stood `ago` seconds back, or None."""
        counted = [m for m in self.plan.metrics if m.counts is not None]
        if drive.metrics is None or not counted or not reads_counters(drive.metrics):
            return None
        try:
            return await self.call(
                "metrics", "counters",
                drive.metrics.sample_counters(counted, ago=ago))  # type: ignore[attr-defined]
        except CallFailed:
            return None

    def _take_counts(self, counters: dict[str, CounterPair], problem: str | None) -> set[str]:
        """Feed the increment reader; the names of the metrics whose requests were read."""
        now = self.health.clock.now()
        read: set[str] = set()
        for metric in self.plan.metrics:
            if metric.counts is None:
                continue
            pair = counters.get(metric.name)
            if pair is None:
                # Never the previous poll's increments again: this poll brought none.
                self.counts[metric.name] = CountPair(
                    None, None, now, problem or "no counters read for this metric")
                continue
            self.counts[metric.name] = self.reader.read(metric, pair, now)
            if any(side is not None and side.error is None and side.total
                   for side in (pair.canary, pair.baseline)):
                read.add(metric.name)
        return read

    async def _poll_metrics(self, drive: Drive) -> None:
        if drive.metrics is None or not self.plan.metrics:
            return
        sampled, (counters, counters_problem) = await asyncio.gather(
            self._sample(drive), self._poll_counters(drive))
        counted = (self._take_counts(counters, counters_problem)
                   if reads_counters(drive.metrics) else set())
        if isinstance(sampled, str):
            self.health.note("metrics", sampled)
            return
        pairs = sampled
        # One bad metric shows on its gate; the panel is marked only when nothing at all
        # came back, which is what a dead or misconfigured source looks like. A count
        # metric whose requests were read is alive, whatever its value query says (the
        # design's error ratio has no series until the first 5xx).
        dead = [p for n, p in pairs.items()
                if not p.canary.usable and not p.baseline.usable and n not in counted]
        if pairs and len(dead) == len(pairs):
            first = dead[0].canary.problem or dead[0].baseline.problem
            self.health.note("metrics", f"metrics: {first}")
        else:
            self.health.note("metrics", None)
        self.metrics_at = self.health.clock.now()
        self.pairs.update(pairs)
        for name, (canary, baseline) in self.series.items():
            pair = pairs.get(name)
            canary.append(pair.canary.value if pair and pair.canary.usable else None)
            baseline.append(pair.baseline.value if pair and pair.baseline.usable else None)

    async def _poll_traffic(self, drive: Drive, on_weight: Callable[[int], None]) -> None:
        try:
            state = await self.call("traffic", "read", drive.traffic.read())
        except CallFailed as exc:
            self.health.note("traffic", str(exc))
            return
        self.health.note("traffic", None)
        self.traffic = state
        on_weight(state.canary_weight)

    async def _poll_flags(self, drive: Drive) -> None:
        if drive.flags is None:
            return
        try:
            listed = await self.call("flags", "list", drive.flags.list_flags())
        except CallFailed as exc:
            self.health.note("flags", str(exc))
            return
        self.health.note("flags", None)
        self.flags = self.mark_release_flags(listed)

    def _judge(self, now: float, *, announce: bool = True) -> None:
        stale_after = self.plan.effective_stale_after
        updated = []
        for index, old in enumerate(self.gates):
            new = self._update_gate(index, old, now, stale_after)
            if announce and new.verdict is not old.verdict:
                self.bus.emit(
                    EventKind.VERDICT,
                    f"gate {new.name}: {old.verdict.value} → {new.verdict.value} ({new.reason})",
                    gate=new.name,
                    verdict=new.verdict.value,
                    canary=new.canary,
                    baseline=new.baseline,
                    unit=new.unit,
                )
            updated.append(new)
        self.gates = updated

    def _update_gate(
        self, index: int, old: GateStatus, now: float, stale_after: float
    ) -> GateStatus:
        """One gate, one poll: on counts where its metric has them and they were read
        (`counts` is filled before the gates are judged), on the server
        health for a health gate, else on values as always."""
        spec = old.spec
        if spec.is_health:
            return gate_logic.update_health(old, self.traffic, self.traffic_at, now,
                                            stale_after)
        metric = next((m for m in self.plan.metrics if m.name == spec.metric), None)
        why = gate_logic.values_why(spec, metric)
        if why is None and spec.metric not in self.counts:
            why = "the metrics provider does not read counters"
        held = self.hold.active(self.traffic)  # blue-green after the switch (baseline_hold)
        if why is None and held:
            return self.hold.update_counts(index, old, self.counts.get(spec.metric), now,
                                           stale_after)
        if why is None:
            new, self.count_states[index] = gate_logic.update_counts(
                old, self.count_states[index], self.counts.get(spec.metric), now, stale_after)
            return new
        if held:
            new = self.hold.update_values(old, self.pairs.get(spec.metric), now, stale_after)
        else:
            new = gate_logic.update(old, self.pairs.get(spec.metric), now, stale_after)
        return dataclasses.replace(new, judged=f"values: {why}")

    def new_step(self) -> None:
        """A new step: each gate must pass again, and evidence on counts starts anew
        (the weight, and so each version's share of the requests, has changed)."""
        self.gates = [gate_logic.new_step(g) for g in self.gates]
        self.count_states = [gate_logic.start_counts(g.spec) for g in self.gates]
        self.hold.new_step(self.traffic, self.traffic_at)

    def forgive_inconclusive(self) -> None:
        """Give missing data a fresh allowance; failures keep counting."""
        self.gates = [dataclasses.replace(g, consecutive_inconclusive=0) for g in self.gates]

    def gate_data(self) -> dict[str, list[dict[str, object]]]:
        return {"gates": [g.as_dict() for g in self.gates]}
