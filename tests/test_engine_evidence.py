"""Gates judged on counts, in the engine on the virtual clock: a 15 % canary is rolled back
within 3 polls, a noisy healthy canary never is, and 2 of 3 canary servers down trip a
health gate. The counts come from a small metrics provider with `sample_counters`."""

from __future__ import annotations

import dataclasses
import random
import re

import pytest

from relconsole.engine.journal.render import render_markdown
from relconsole.model import (
    CounterPair,
    CounterSet,
    CountSource,
    GateSpec,
    MetricPair,
    MetricSpec,
    Phase,
    Reading,
    Role,
    ServerHealth,
    Step,
    TrafficState,
    Verdict,
)
from tests.helpers import demo_session, run_until, terminal, world

ERRORS = MetricSpec("error_rate", unit="ratio",
                    counts=CountSource(events='reqs{code=~"5.."}', total="reqs"))
NOISY_GATE = GateSpec(metric="error_rate", max=0.02, max_increase=0.01, failure_limit=2)


class CountingMetrics:
    """Requests and errors per version as cumulative counters, at fixed error rates.

    Requests arrive at `rps` over both versions, split by the live weight; the values
    `sample` reports are the same rates, so a value judge would see them too.
    """

    name = "counting"

    def __init__(self, session, canary: float, baseline: float, rps: float, seed: int):
        self.session = session
        self.rates = {Role.CANARY: canary, Role.BASELINE: baseline}
        self.rps = rps
        self.rng = random.Random(seed)
        self.totals = {Role.CANARY: [0.0, 0.0], Role.BASELINE: [0.0, 0.0]}
        self.at: float | None = None
        self.last = {Role.CANARY: (0.0, 0.0), Role.BASELINE: (0.0, 0.0)}

    def _poisson(self, lam: float) -> int:
        # Knuth for small means; a rounded normal above (plenty for a test's traffic).
        if lam > 30:
            return max(0, round(self.rng.gauss(lam, lam ** 0.5)))
        k, p, limit = 0, 1.0, 2.718281828459045 ** -lam
        while True:
            p *= self.rng.random()
            if p < limit:
                return k
            k += 1

    async def sample(self, metrics):
        # What a per-poll rate query shows: the last increments' ratio (one error in 40
        # requests reads as 2.5 %), the noise a value judge is fooled by.
        now = self.session.engine.clock.now()
        values = {role: (e / n if n else 0.0) for role, (e, n) in self.last.items()}
        return {m.name: MetricPair(Reading(values[Role.CANARY], now),
                                   Reading(values[Role.BASELINE], now)) for m in metrics}

    async def history(self, metrics, seconds, step):
        return {}

    async def close(self) -> None:
        return None

    async def sample_counters(self, metrics, *, ago=0.0):
        now = self.session.engine.clock.now()
        elapsed = 0.0 if self.at is None else now - self.at
        self.at = now
        weight = world(self.session).weight
        sets = {}
        for role in (Role.CANARY, Role.BASELINE):
            share = (weight if role is Role.CANARY else 100 - weight) / 100
            n = self._poisson(self.rps * share * elapsed)
            errors = sum(self.rng.random() < self.rates[role] for _ in range(n))
            totals = self.totals[role]
            self.last[role] = (errors, n)
            totals[0] += errors
            totals[1] += n
            sets[role] = CounterSet(events={"{}": totals[0]}, total={"{}": totals[1]}, at=now)
        return {m.name: CounterPair(sets[Role.CANARY], sets[Role.BASELINE]) for m in metrics}


def counting_session(canary: float, baseline: float, *, gate: GateSpec, weight: int,
                     rps: float = 80.0, seed: int = 1, poll: float = 1.0, bake: float = 120,
                     steps: tuple[Step, ...] | None = None):
    session = demo_session(
        metrics=(ERRORS,), gates=(gate,), poll_interval=poll,
        steps=steps or (Step(weight=weight, bake=bake), Step(weight=100)),
    )
    metrics = CountingMetrics(session, canary, baseline, rps, seed)
    drive = session.engine._ctx.drive
    drive.metrics = metrics
    drive._real = (drive.traffic, metrics, drive.flags)
    return session


def at_step(engine) -> bool:
    return engine.phase is Phase.PROGRESSING and engine.snapshot().weight > 0


@pytest.mark.asyncio
async def test_a_fifteen_percent_canary_is_rolled_back_within_three_polls() -> None:
    session = counting_session(0.15, 0.01, weight=40, poll=5.0,
                               gate=dataclasses.replace(NOISY_GATE, failure_limit=1))
    engine = session.engine
    await run_until(session, at_step, max_ticks=20)
    polls = await run_until(session, lambda e: e.phase in (Phase.ROLLING_BACK,
                                                           Phase.ROLLED_BACK), max_ticks=10)
    assert polls <= 3
    await run_until(session, terminal, max_ticks=50)
    assert engine.phase is Phase.ROLLED_BACK
    cause = engine.snapshot().rollback_cause
    assert cause is not None
    gate = next(g for g in cause.gates if g.name == "error_rate")
    assert gate.verdict is Verdict.FAIL and gate.evidence is not None
    assert gate.evidence.e_value >= 1 / gate.spec.alpha
    assert gate.evidence.canary_total > 0


@pytest.mark.asyncio
async def test_the_rollback_is_journalled_with_its_counts_and_statistic(tmp_path) -> None:
    session = demo_session(state=tmp_path, metrics=(ERRORS,), gates=(NOISY_GATE,),
                           poll_interval=5.0, steps=(Step(40, 120), Step(100)))
    metrics = CountingMetrics(session, 0.15, 0.01, 80, 3)
    drive = session.engine._ctx.drive
    drive.metrics = metrics
    drive._real = (drive.traffic, metrics, drive.flags)
    await run_until(session, terminal, max_ticks=100)
    assert session.engine.phase is Phase.ROLLED_BACK
    records = session.engine.journal.records()
    data = [r.get("data") for r in records if r.get("intent") == "rollback"]
    evidence = next(g["evidence"] for d in data if isinstance(d, dict)
                    for g in d.get("gates", []) if "evidence" in g)
    assert evidence["e_value"] >= 100 and evidence["alpha"] == 0.01
    assert evidence["canary_total"] > 0 and evidence["low"] is not None
    text = render_markdown(records, "release")
    assert "on counts: canary" in text and "1/alpha 100" in text


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(25))
async def test_a_noisy_healthy_canary_is_never_rolled_back(seed) -> None:
    # The case: both at 1 %, canary 10 % of 80 req/s, 1 s polls. (500 seeds of
    # the same data are in tests/test_evidence.py; here the whole engine, fewer seeds.)
    session = counting_session(0.01, 0.01, gate=NOISY_GATE, weight=10, seed=seed, bake=300)
    engine = session.engine
    for _ in range(300):
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
        assert engine.phase not in (Phase.ROLLING_BACK, Phase.ROLLED_BACK)
        gate = engine.snapshot().gates[0]
        assert gate.consecutive_failures < 2
        if engine.snapshot().weight:
            assert gate.judged == "counts" and gate.evidence is not None
        if engine.phase is Phase.PROMOTED:
            break
    # Holding while it needs data is not "no data": it never paused for it.
    assert engine.phase in (Phase.PROGRESSING, Phase.PROMOTED)


def health(up: int, of: int = 3) -> TrafficState:
    canary = tuple(ServerHealth(f"canary-{i}", Role.CANARY, up=i < up) for i in range(of))
    stable = tuple(ServerHealth(f"stable-{i}", Role.BASELINE, up=True) for i in range(3))
    return TrafficState(canary_weight=10, servers=canary + stable)


@pytest.mark.asyncio
@pytest.mark.parametrize("min_up", [(2.0, False), (0.66, True)])
async def test_two_of_three_canary_servers_down_trip_the_health_gate(min_up) -> None:
    gate = GateSpec(metric="canary up", health="canary", min_up=min_up[0],
                    min_up_share=min_up[1], failure_limit=2)
    session = demo_session("healthy", gates=(gate,), steps=(Step(10, 600), Step(100)))
    engine = session.engine
    traffic = session.engine._ctx.drive.traffic
    servers = {"up": 3}
    real_read = traffic.read

    async def read() -> TrafficState:
        state = await real_read()
        return dataclasses.replace(state, servers=health(servers["up"]).servers)

    traffic.read = read
    await run_until(session, at_step, max_ticks=20)
    await run_until(session, lambda e: e.snapshot().gates[0].verdict is Verdict.PASS,
                    max_ticks=5)
    servers["up"] = 1
    polls = await run_until(session, lambda e: e.phase in (Phase.ROLLING_BACK,
                                                           Phase.ROLLED_BACK), max_ticks=10)
    assert polls == 2  # failure_limit 2: two failing polls
    cause = engine.snapshot().rollback_cause
    assert cause is not None
    assert "1/3 canary servers up" in cause.gates[0].reason


async def test_a_canary_that_stops_getting_requests_mid_step_pauses_the_release() -> None:
    """Routing to the canary breaks after it served requests: its counters stop moving.
    That is no evidence, like a missing value: the release pauses after
    `inconclusive_limit` polls without a canary request, it does not wait for ever."""
    gate = GateSpec(metric="error_rate", max_ratio=1.5, inconclusive_limit=4)
    session = counting_session(0.01, 0.01, gate=gate, weight=10, bake=600)
    engine = session.engine
    await engine.attach()
    await engine.advance("start")
    await run_until(session, lambda e: engine.snapshot().gates[0].evidence is not None
                    and engine.snapshot().gates[0].evidence.canary_total > 0)
    metrics = engine._ctx.drive.metrics
    metrics.rps = 0.0  # nothing reaches either version any more
    await run_until(session, terminal, max_ticks=20)
    assert engine.phase is Phase.PAUSED
    gate_now = engine.snapshot().gates[0]
    assert gate_now.verdict is Verdict.INCONCLUSIVE
    assert "no canary request since" in gate_now.reason


@pytest.mark.asyncio
async def test_needing_more_data_says_how_long_at_this_weight() -> None:
    """'~2.5k more canary requests' means little on call; at the canary's own request rate
    in this step it is a time: 8 req/s at 10 % of 80 req/s."""
    session = counting_session(0.01, 0.01, gate=NOISY_GATE, weight=10, seed=2, bake=300)
    engine = session.engine
    for _ in range(6):
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
    gate = engine.snapshot().gates[0]
    assert gate.needs_more_data, gate
    assert gate.evidence is not None and gate.evidence.needs is not None
    expected = gate.evidence.needs / 8.0  # seconds at about 8 canary requests a second
    match = re.search(r"more canary requests \(~(\d+) (s|min|h) at this weight\)", gate.reason)
    assert match, gate.reason
    said = float(match.group(1)) * {"s": 1, "min": 60, "h": 3600}[match.group(2)]
    assert expected / 2 <= said <= expected * 2, (said, expected, gate.reason)


class ScrapedMetrics(CountingMetrics):
    """The counters as Prometheus serves them when it scrapes every `every` polls: between
    two scrapes the console reads the same values again."""

    def __init__(self, *args, every: int) -> None:
        super().__init__(*args)
        self.every = every
        self.calls = 0
        self.served: dict | None = None

    async def sample_counters(self, metrics, *, ago=0.0):
        self.calls += 1
        if self.served is None or self.calls % self.every == 0:
            self.served = await super().sample_counters(metrics, ago=ago)
        return self.served


@pytest.mark.asyncio
async def test_counters_that_move_only_at_each_scrape_are_not_no_data() -> None:
    """5 s polls and a 15 s scrape interval (a common Prometheus set-up): two polls in three
    see the counters unchanged, and a new step's first requests come a scrape late. That is
    not a canary without traffic: no poll counts as no data and nothing pauses."""
    gate = dataclasses.replace(NOISY_GATE, inconclusive_limit=2)
    session = counting_session(0.01, 0.01, gate=gate, weight=10, poll=5.0, bake=600,
                               steps=(Step(10, 60.0), Step(50, 600.0), Step(100)))
    engine = session.engine
    drive = engine._ctx.drive
    drive.metrics = ScrapedMetrics(session, 0.01, 0.01, 800.0, 3, every=3)
    drive._real = (drive.traffic, drive.metrics, drive.flags)
    for _ in range(60):
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
        gate_now = engine.snapshot().gates[0]
        assert gate_now.consecutive_inconclusive == 0 or engine.snapshot().weight == 0, \
            gate_now
        assert engine.phase is not Phase.PAUSED, engine.snapshot().pause_reason
    assert engine.snapshot().weight >= 50  # through a step change, a scrape late each time


class HealthChecked(CountingMetrics):
    """A canary that answers its load balancer's health checks at 0 %: a few requests a
    second whatever the weight (the sandbox counts /healthz as requests)."""

    async def sample_counters(self, metrics, *, ago=0.0):
        found = await super().sample_counters(metrics, ago=ago)
        self.totals[Role.CANARY][1] += 2
        return found


@pytest.mark.asyncio
async def test_the_first_step_is_never_an_early_advance() -> None:
    """Before the first step no gate has judged the canary, even one with counts from
    health checks: going from 0 % to the first step is not journalled as cutting
    anything short (it was, in the sandbox: 'gates still needing data: error_rate')."""
    session = counting_session(0.0, 0.01, gate=NOISY_GATE, weight=10, bake=600)
    engine = session.engine
    drive = engine._ctx.drive
    drive.metrics = HealthChecked(session, 0.0, 0.01, 80.0, 5)
    drive._real = (drive.traffic, drive.metrics, drive.flags)
    for _ in range(3):
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
    step = [r for r in engine.journal.records() if r["intent"] == "advance"
            and r.get("outcome")]
    assert step and step[0]["after"]["weight"] == 10, step
    assert step[0]["outcome"] == "verified", step[0]
