"""Blue-green's gates after the switch judge green against blue's last readings
(relconsole/engine/baseline_hold.py), in the engine's own Observations on the virtual clock.

A small world serves both versions: requests split by the weight the traffic provider
reports, each version at its own error rate and latency. Once the switch puts the weight
at 100, blue serves nothing: its live latency is NaN and its counters stop, as a real
Prometheus would report them.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest

from relconsole.clock import FastClock
from relconsole.engine.baseline_hold import held_spec
from relconsole.engine.events import EventBus
from relconsole.engine.observe import Observations, ProviderHealth
from relconsole.model import (
    CounterPair,
    CounterSet,
    CountSource,
    GateSpec,
    MetricPair,
    MetricSpec,
    Reading,
    ReleasePlan,
    Role,
    Step,
    Tally,
    TrafficState,
    Verdict,
)

ERRORS = MetricSpec("error_rate", unit="ratio",
                    counts=CountSource(events='reqs{code=~"5.."}', total="reqs"))
LATENCY = MetricSpec("latency_p99", unit="seconds")
LATENCY_GATE = GateSpec(metric="latency_p99", max_ratio=1.5)
ERROR_GATE = GateSpec(metric="error_rate", max_increase=0.01, failure_limit=1)
BLUE_GREEN_STEPS = (Step(100, 600.0, label="switch"), Step(100, 0.0, label="done"))
RPS = 400  # requests a second over both versions


class World:
    """Both versions, their rates, and the weight; counters grow by whole requests and
    keep their history (as Prometheus does), `history` seconds of it before the test."""

    def __init__(self, clock: FastClock, *, blue_errors: float, green_errors: float,
                 blue_latency: float = 0.100, green_latency: float = 0.100,
                 history: float = 0.0) -> None:
        self.clock = clock
        self.weight = 0
        self.errors = {Role.BASELINE: blue_errors, Role.CANARY: green_errors}
        self.latency = {Role.BASELINE: blue_latency, Role.CANARY: green_latency}
        self.totals = {Role.CANARY: [0.0, 0.0], Role.BASELINE: [0.0, 0.0]}
        self.at = clock.now() - history
        self.past: list[tuple[float, dict[Role, tuple[float, float]]]] = []
        self.name = "world"
        self.asked_ago: list[float] = []
        self._grow()

    def share(self, role: Role) -> float:
        return (self.weight if role is Role.CANARY else 100 - self.weight) / 100

    def _grow(self) -> None:
        """The counters up to now, at the current weight, a second at a time."""
        now = self.clock.now()
        while self.at < now:
            step = min(1.0, now - self.at)
            for role, totals in self.totals.items():
                n = RPS * self.share(role) * step
                totals[0] += n * self.errors[role]
                totals[1] += n
            self.at += step
            self.past.append((self.at, {r: (t[0], t[1]) for r, t in self.totals.items()}))

    # -- traffic

    async def read(self) -> TrafficState:
        return TrafficState(canary_weight=self.weight)

    # -- metrics

    async def sample(self, metrics: Any) -> dict[str, MetricPair]:
        now = self.clock.now()

        def reading(role: Role) -> Reading:
            # A quantile over no requests is NaN, as histogram_quantile answers it.
            value = self.latency[role] if self.share(role) > 0 else math.nan
            return Reading(value, now)

        return {m.name: MetricPair(reading(Role.CANARY), reading(Role.BASELINE))
                for m in metrics}

    async def sample_counters(self, metrics: Any, *, ago: float = 0.0
                              ) -> dict[str, CounterPair]:
        self._grow()
        when = self.clock.now() - ago
        totals = next((t for at, t in reversed(self.past) if at <= when + 1e-9),
                      {Role.CANARY: (0.0, 0.0), Role.BASELINE: (0.0, 0.0)})
        self.asked_ago.append(ago)
        sets = {role: CounterSet(events={"{}": round(e)}, total={"{}": round(n)}, at=when)
                for role, (e, n) in totals.items()}
        return {m.name: CounterPair(sets[Role.CANARY], sets[Role.BASELINE]) for m in metrics}

    async def history(self, metrics: Any, seconds: float, step: float) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        return None


def observing(strategy: str = "blue-green", *, gates: tuple[GateSpec, ...] = (LATENCY_GATE,),
              **rates: Any) -> tuple[Observations, World, Any]:
    clock = FastClock()
    bus = EventBus(clock)
    plan = ReleasePlan(service="checkout", version="2.0.0", environment="prod",
                       strategy=strategy, steps=BLUE_GREEN_STEPS, poll_interval=5.0,
                       metrics=(ERRORS, LATENCY), gates=gates)
    obs = Observations(plan, ProviderHealth(clock, bus), bus)
    world = World(clock, **rates)
    drive = SimpleNamespace(traffic=world, metrics=world, flags=None)
    return obs, world, drive


async def poll(obs: Observations, world: World, drive: Any, times: int = 1) -> None:
    for _ in range(times):
        world.clock.advance(obs.plan.poll_interval)
        await obs.poll(drive, world.clock.now(), lambda weight: None)


def switch(obs: Observations, world: World) -> None:
    """What the engine does at the switch: the weight read back at 100, then a new step."""
    world._grow()  # the counters up to the switch, at weight 0
    world.weight = 100
    obs.traffic = TrafficState(canary_weight=100)
    obs.new_step()


def gate(obs: Observations, metric: str):
    return next(g for g in obs.gates if g.spec.metric == metric)


# ----------------------------------------------------------------------------- values


async def test_after_the_switch_a_value_gate_compares_green_with_blues_last_reading() -> None:
    obs, world, drive = observing(blue_errors=0.0, green_errors=0.0, blue_latency=0.100,
                                  green_latency=0.120)
    await poll(obs, world, drive, 3)  # blue serves everything
    switch(obs, world)
    world.clock.advance(175)  # a few minutes into the bake: 3 min after blue's last
    await poll(obs, world, drive)
    status = gate(obs, "latency_p99")
    assert status.verdict is Verdict.PASS
    assert status.baseline == pytest.approx(0.100) and status.canary == pytest.approx(0.120)
    # The reason says whose reading it is and how old: blue's last was taken 3 min ago.
    assert status.reason == "within thresholds (baseline: blue's last reading, 3m ago)"


async def test_a_slow_green_fails_against_blues_last_reading() -> None:
    obs, world, drive = observing(blue_errors=0.0, green_errors=0.0, blue_latency=0.100,
                                  green_latency=0.200)
    await poll(obs, world, drive, 3)
    switch(obs, world)
    await poll(obs, world, drive)
    status = gate(obs, "latency_p99")
    assert status.verdict is Verdict.FAIL
    assert status.reason.startswith("×2.00 of baseline > ×1.5")
    assert "blue's last reading, 5s ago" in status.reason


async def test_without_blue_green_the_empty_baseline_is_no_data() -> None:
    """The same world under `strategy: canary`: at 100 % nobody holds blue's reading, and
    its NaN is no data (which is why blue-green needs the hold)."""
    obs, world, drive = observing("canary", blue_errors=0.0, green_errors=0.0,
                                  green_latency=0.200)
    await poll(obs, world, drive, 3)
    switch(obs, world)
    await poll(obs, world, drive)
    status = gate(obs, "latency_p99")
    assert status.verdict is Verdict.INCONCLUSIVE
    assert status.reason == "baseline: value is NaN"


async def test_a_console_that_attaches_after_the_switch_has_no_baseline_and_says_so() -> None:
    obs, world, drive = observing(blue_errors=0.0, green_errors=0.0)
    switch(obs, world)  # never saw blue serve
    await poll(obs, world, drive, 2)
    status = gate(obs, "latency_p99")
    assert status.verdict is Verdict.INCONCLUSIVE
    assert "no reading of blue from before the switch" in status.reason


async def test_before_the_switch_the_gates_judge_as_always() -> None:
    obs, world, drive = observing(blue_errors=0.0, green_errors=0.0)
    await poll(obs, world, drive, 3)
    status = gate(obs, "latency_p99")
    # Green takes no user traffic yet: its latency is NaN, and nothing is held for it.
    assert status.verdict is Verdict.INCONCLUSIVE and status.reason == "canary: value is NaN"


# ----------------------------------------------------------------------------- counts


async def test_an_erroring_green_fails_against_blues_counts_before_the_switch() -> None:
    obs, world, drive = observing(gates=(ERROR_GATE,), blue_errors=0.01, green_errors=0.06)
    await poll(obs, world, drive, 4)  # blue served 20 s in this world: 8,000 requests
    switch(obs, world)
    await poll(obs, world, drive, 3)
    status = gate(obs, "error_rate")
    assert status.verdict is Verdict.FAIL, status.reason
    assert status.judged == "counts"
    assert status.baseline == pytest.approx(0.01)
    assert "(baseline: blue's 1.00 % of 8.0k requests before the switch)" in status.reason
    evidence = status.evidence
    assert evidence is not None
    assert (evidence.baseline_events, evidence.baseline_total) == (80, 8000)
    assert evidence.canary_total == 3 * 5 * RPS  # green's requests in the bake only


async def test_a_healthy_green_passes_against_blues_counts() -> None:
    obs, world, drive = observing(gates=(ERROR_GATE,), blue_errors=0.01, green_errors=0.01)
    await poll(obs, world, drive, 4)
    switch(obs, world)
    await poll(obs, world, drive, 6)
    status = gate(obs, "error_rate")
    assert status.verdict is Verdict.PASS, status.reason
    assert status.baseline == pytest.approx(0.01)


async def test_the_same_counts_without_the_hold_never_judge_green() -> None:
    obs, world, drive = observing("canary", gates=(ERROR_GATE,), blue_errors=0.01,
                                  green_errors=0.06)
    await poll(obs, world, drive, 4)
    switch(obs, world)
    await poll(obs, world, drive, 3)
    # Blue's requests stopped: max_increase has no baseline rate to add to, and the
    # erroring green is judged as `max: 0.01` would judge it — not against blue at all.
    assert "blue" not in gate(obs, "error_rate").reason


async def test_blues_counts_are_those_of_the_step_before_the_switch() -> None:
    obs, world, drive = observing(gates=(ERROR_GATE,), blue_errors=0.05, green_errors=0.01)
    await poll(obs, world, drive, 4)  # an earlier step at 5 % errors on blue …
    obs.new_step()
    world._grow()
    world.errors[Role.BASELINE] = 0.01
    await poll(obs, world, drive, 61)  # … and 5 min of the step before the switch at 1 %
    switch(obs, world)
    await poll(obs, world, drive, 2)
    status = gate(obs, "error_rate")
    assert status.baseline == pytest.approx(0.01)
    assert "of 122k requests before the switch" in status.reason
    assert world.asked_ago.count(0.0) == len(world.asked_ago)  # seen whole: no look back


async def test_a_switch_at_the_first_poll_reads_blues_counts_from_history() -> None:
    """A headless run switches at its first poll, before it has counted anything of
    blue: blue's counts over the 5 min before the switch come from the history."""
    obs, world, drive = observing(gates=(ERROR_GATE,), blue_errors=0.02, green_errors=0.02,
                                  history=3600.0)
    await poll(obs, world, drive)  # the counters' starting point, nothing counted yet
    switch(obs, world)
    world.clock.advance(5)
    await poll(obs, world, drive)
    status = gate(obs, "error_rate")
    assert status.baseline == pytest.approx(0.02)
    assert "(baseline: blue's 2.00 % of 120k requests before the switch)" in status.reason
    assert sorted(set(world.asked_ago)) == [0.0, 10.0, 310.0]  # at the switch and 5 min before
    await poll(obs, world, drive, 8)
    assert gate(obs, "error_rate").verdict is Verdict.PASS
    assert world.asked_ago.count(310.0) == 1  # once per switch


async def test_no_counts_of_blue_is_no_data() -> None:
    obs, world, drive = observing(gates=(ERROR_GATE,), blue_errors=0.01, green_errors=0.01)
    switch(obs, world)
    await poll(obs, world, drive, 3)
    status = gate(obs, "error_rate")
    assert status.verdict is Verdict.INCONCLUSIVE
    assert status.reason.startswith("baseline: no counts of blue from before the switch")
    assert status.consecutive_inconclusive == 3


async def test_after_a_rollback_the_gates_judge_live_again() -> None:
    obs, world, drive = observing(blue_errors=0.0, green_errors=0.0, green_latency=0.200)
    await poll(obs, world, drive, 3)
    switch(obs, world)
    await poll(obs, world, drive)
    world._grow()
    world.weight = 0
    obs.traffic = TrafficState(canary_weight=0)
    obs.new_step()
    await poll(obs, world, drive)
    assert gate(obs, "latency_p99").reason == "canary: value is NaN"


# ----------------------------------------------------------------------------- the limits


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"max_increase": 0.01}, {"max": 0.02}),
        ({"max_ratio": 2.0}, {"max": 0.02}),
        ({"max_ratio": 2.0, "max": 0.015}, {"max": 0.015}),  # the stricter is kept
        ({"max_decrease": 0.005}, {"min": 0.005}),
        ({"min_ratio": 0.5}, {"min": 0.005}),
        ({"max_decrease": 0.5}, {}),  # 1 % cannot fall 50 points: nothing to break
        ({"max_ratio": 200.0}, {}),  # nor rise past 100 %
    ],
)
def test_relative_limits_become_limits_on_greens_rate(
    limits: dict[str, float], expected: dict[str, float],
) -> None:
    blue = Tally(events=99.5, total=9999.0)  # (99.5 + ½) / (9999 + 1) = 1 %
    spec = held_spec(GateSpec(metric="error_rate", **limits), blue)
    got = {k: getattr(spec, k) for k in ("max", "min", "max_increase", "max_ratio",
                                         "max_decrease", "min_ratio")
           if getattr(spec, k) is not None}
    assert got == pytest.approx(expected)


def test_a_blue_without_errors_does_not_forbid_every_green_error() -> None:
    spec = held_spec(GateSpec(metric="error_rate", max_ratio=2.0), Tally(0.0, 4999.0))
    assert spec.max == pytest.approx(2 * 0.5 / 5000)
