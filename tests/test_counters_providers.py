"""Issue 11: the providers' raw counters (`sample_counters`) for metrics judged on counts."""

from __future__ import annotations

import asyncio
from typing import Any

from relconsole.engine.counts import IncrementReader
from relconsole.model import CountSource, MetricSpec, series_labels
from relconsole.providers.sim import CounterOptions, SimMetrics, SimWorld
from tests.test_prometheus import FakePrometheus, fake, provider  # noqa: F401 - the fixture

EVENTS = 'http_requests_total{version="{{version}}",code=~"5.."}'
TOTAL = 'http_requests_total{version="{{version}}"}'
ERRORS = MetricSpec("error_rate", unit="ratio", counts=CountSource(events=EVENTS, total=TOTAL))
P99 = MetricSpec("latency_p99", unit="seconds", counts=CountSource(
    buckets='http_request_duration_seconds_bucket{version="{{version}}"}', quantile=0.99))


def series(*rows: tuple[dict[str, str], str]) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": labels, "value": [1_700_000_000.0, value]} for labels, value in rows]}}


async def test_prometheus_reads_every_series_raw_and_an_empty_5xx_is_no_error(
        fake: FakePrometheus) -> None:  # noqa: F811
    def answer(path: str, q: dict[str, str]) -> tuple[int, Any]:
        if "code=~" in q["query"]:
            return 200, series()  # no 5xx yet: the series does not exist
        if "_count" in q["query"]:
            return 200, series(({"version": "2.3.0"}, "40"))
        if "_bucket" in q["query"]:
            return 200, series(({"le": "0.1"}, "30"), ({"le": "+Inf"}, "40"))
        return 200, series(({"code": "200", "pod": "a"}, "120"), ({"code": "200", "pod": "b"},
                                                                  "80"))

    fake.answer = answer
    prom = provider(fake.url)
    found = await prom.sample_counters([ERRORS, P99, MetricSpec("plain", "x")])
    assert set(found) == {"error_rate", "latency_p99"}  # only the count metrics
    # One query per selector and version, each the raw selector with the version in it.
    sent = sorted(r["query"]["query"] for r in fake.requests)
    assert len(sent) == 8
    assert 'http_requests_total{version="2.3.0",code=~"5.."}' in sent
    assert 'http_request_duration_seconds_count{version="2.2.1"}' in sent
    assert len({r["query"]["time"] for r in fake.requests}) == 1  # one instant for all
    canary = found["error_rate"].canary
    assert canary is not None and canary.error is None
    assert canary.events == {}
    assert sorted(canary.total.values()) == [80.0, 120.0]
    buckets = found["latency_p99"].baseline
    assert buckets is not None
    assert {series_labels(k)["le"]: v for k, v in buckets.events.items()} == {
        "0.1": 30.0, "+Inf": 40.0}
    assert list(buckets.total.values()) == [40.0]
    await prom.close()


async def test_prometheus_reads_the_counters_as_they_stood_a_while_ago(
        fake: FakePrometheus) -> None:  # noqa: F811
    """An attach mid-step takes the step's start as its starting point: Prometheus
    evaluates the selectors at that instant (its `time` parameter), not now."""
    import time

    fake.answer = lambda path, q: (200, series(({"code": "200"}, "10")))
    prom = provider(fake.url)
    before = time.time()
    await prom.sample_counters([ERRORS], ago=90)
    asked = {float(r["query"]["time"]) for r in fake.requests}
    assert len(asked) == 1
    assert before - 91 <= asked.pop() <= time.time() - 89
    await prom.close()


async def test_prometheus_errors_are_the_counter_sets_error(fake: FakePrometheus) -> None:  # noqa: F811
    fake.answer = lambda path, q: (200, series(({"code": "200"}, "NaN")))
    prom = provider(fake.url)
    found = await prom.sample_counters([ERRORS])
    assert found["error_rate"].canary is not None
    assert "NaN" in (found["error_rate"].canary.error or "")
    fake.answer = lambda path, q: (503, {"status": "error", "error": "overloaded"})
    found = await prom.sample_counters([ERRORS])
    assert "overloaded" in (found["error_rate"].baseline.error or "")  # type: ignore[union-attr]
    await prom.close()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t


def run_sim(scenario: str, seed: int, polls: int = 30, **options: Any
            ) -> list[tuple[float, float, float, float]]:
    clock = Clock()
    world = SimWorld(clock, scenario, seed)  # type: ignore[arg-type]
    world.apply_weight(10)
    sim = SimMetrics(world, CounterOptions(**options))
    reader = IncrementReader()
    out = []
    for _ in range(polls):
        clock.t += 1.0
        pairs = asyncio.run(sim.sample_counters([ERRORS]))
        got = reader.read(ERRORS, pairs["error_rate"], clock.t)
        if got.canary is not None and got.baseline is not None:
            out.append((got.canary.events, got.canary.total, got.baseline.events,
                        got.baseline.total))
    return out


def test_the_simulators_counters_replay_per_seed_and_follow_the_scenario() -> None:
    assert run_sim("healthy", 7) == run_sim("healthy", 7)
    assert run_sim("healthy", 7) != run_sim("healthy", 8)
    healthy = run_sim("healthy", 7)
    bad = run_sim("bad-canary", 7)
    canary_rate = sum(r[0] for r in bad) / sum(r[1] for r in bad)
    assert 0.03 < canary_rate < 0.08  # the scenario's ~5 % canary errors
    assert sum(r[0] for r in healthy) / sum(r[1] for r in healthy) < 0.01
    # 10 % of 400 req/s, once per second.
    assert 30 < sum(r[1] for r in healthy) / len(healthy) < 50


def test_the_simulators_5xx_series_appears_at_the_first_error_unless_asked() -> None:
    clock = Clock()
    world = SimWorld(clock, "healthy", 7)  # type: ignore[arg-type]
    world.apply_weight(1)
    lazy = SimMetrics(world, CounterOptions(request_rate=1000))
    eager = SimMetrics(world, CounterOptions(request_rate=1000, lazy_errors=False))
    clock.t += 1
    lazy_first = asyncio.run(lazy.sample_counters([ERRORS]))["error_rate"].canary
    clock.t += 1
    lazy_set = asyncio.run(lazy.sample_counters([ERRORS]))["error_rate"].canary
    eager_set = asyncio.run(eager.sample_counters([ERRORS]))["error_rate"].canary
    clock.t += 1
    eager_set = asyncio.run(eager.sample_counters([ERRORS]))["error_rate"].canary
    assert lazy_first is not None and lazy_set is not None and eager_set is not None
    assert lazy_set.events == {}
    assert list(eager_set.events.values()) == [0.0]


def test_a_restart_resets_the_canarys_counters_without_a_negative_count() -> None:
    rows = run_sim("healthy", 7, polls=20, restart_at=10)
    assert rows and all(min(r) >= 0 for r in rows)
    assert all(r[1] > 0 for r in rows)
