"""The built-in simulator: metrics, traffic and flags over one deterministic world.

The three providers implement the same Protocols as the real adapters, run on the
injected clock and are seeded, so a scenario replays identically in the demo, the tests
and the benchmarks. Values respond to the canary's weight and to the scenario.
"""

from __future__ import annotations

import json
import math
import os
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from relconsole.clock import Clock
from relconsole.model import (
    CounterPair,
    CounterSet,
    Flag,
    FlagKind,
    MetricPair,
    MetricSpec,
    Reading,
    Role,
    ServerHealth,
    TrafficState,
    series_key,
)
from relconsole.providers.base import BuildContext, ProviderError

if TYPE_CHECKING:
    from relconsole.providers.sim_rollout import SimRollout

SCENARIOS: dict[str, str] = {
    "healthy": "a good release: canary and baseline agree",
    "bad-canary": "canary 5xx jumps to ~5% once it takes 10% of traffic",
    "latency-regression": "canary p99 is 60% slower than the baseline",
    "noisy-healthy": "large variance on both sides, no real regression",
    "no-data": "canary metrics vanish for 3 minutes once it reaches 10%",
    "flaky-provider": "one traffic call in three fails",
    "argo": "an Argo Rollout's own plan, walked by its (simulated) controller",
}

# Baseline behaviour of the stable version: error ratio and latency in seconds.
BASE_ERROR = 0.002
BASE_LATENCY = {"latency_p50": 0.040, "latency_p95": 0.090, "latency_p99": 0.150}
BLIND_FOR = 180.0  # no-data: how long the canary's metrics are missing


def _default_flags() -> list[Flag]:
    return [
        Flag("checkout-new-pricing-release", FlagKind.RELEASE, True, 25, "payments-team",
             "New pricing engine for checkout"),
        Flag("checkout-pricing-killswitch", FlagKind.KILL_SWITCH, True, None, "payments-team",
             "Kill it to turn the new pricing path off for everyone"),
        Flag("search-autocomplete-experiment", FlagKind.EXPERIMENT, True, 50, "search-team",
             "A/B test of the new autocomplete ranking"),
        Flag("payments-3ds-ops", FlagKind.OPERATIONAL, True, None, "payments-team",
             "Route card payments through 3-D Secure"),
        Flag("admin-bulk-refund-permission", FlagKind.PERMISSION, False, None, "support-tools",
             "Lets support agents refund in bulk"),
        Flag("legacy-cart-release", FlagKind.RELEASE, True, 100, "", ""),
    ]


_FLAG_AGES: dict[str, tuple[float, float]] = {
    "checkout-new-pricing-release": (12, 1),
    "checkout-pricing-killswitch": (12, 12),
    "search-autocomplete-experiment": (25, 3),
    "payments-3ds-ops": (3, 3),
    "admin-bulk-refund-permission": (400, 90),
    "legacy-cart-release": (95, 60),
}


class SimWorld:
    """Everything the three simulated providers share."""

    def __init__(
        self,
        clock: Clock,
        scenario: str = "healthy",
        seed: int = 7,
        persist: Path | None = None,
    ) -> None:
        if scenario not in SCENARIOS:
            known = ", ".join(SCENARIOS)
            raise ProviderError(f"sim: unknown scenario {scenario!r} (known: {known})")
        self.clock = clock
        self.scenario = scenario
        self.seed = seed
        self.weight = 0
        self.started = clock.now()
        self.reached_at: dict[int, float] = {}
        # Every weight change and when: a past window (`SimMetrics.history_between`, for
        # `relconsole report`) then shows the canary at the weight it really had.
        self.weights: list[tuple[float, int]] = []
        # What a provider keeps in the world besides weights and flags (the simulated
        # Rollout's state), saved with it.
        self.extra: dict[str, Any] = {}
        self.flags: dict[str, Flag] = {f.key: f for f in _default_flags()}
        # Ages relative to the clock, so the flags panel and the audit have something to
        # show: days since creation, days since the last change.
        now = clock.now()
        for key, (created, changed) in _FLAG_AGES.items():
            if key in self.flags:
                self.flags[key] = replace(self.flags[key], created=now - created * 86400.0,
                                          last_changed=now - changed * 86400.0)
        self.traffic_calls = 0
        self.failed_traffic_calls = 0
        self.set_weight_calls: list[int] = []
        # One-shot commands (`relconsole advance -c ...`) are separate processes: the
        # world is kept in the state folder so the next command sees what the last did.
        self.persist = persist
        self._seen: tuple[int, int] | None = None
        self._load()

    def _stamp(self) -> tuple[int, int] | None:
        if self.persist is None:
            return None
        try:
            st = self.persist.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def refresh(self) -> None:
        """Pick up what another process did to this world since it was last read.

        A watcher in another process (or a one-shot command) shares the world only
        through its file; without this it would show the weight it started with while
        the driver moves on.
        """
        if self._stamp() != self._seen:
            self._load()

    def _load(self) -> None:
        self._seen = self._stamp()
        if self.persist is None or not self.persist.exists():
            return
        try:
            saved = json.loads(self.persist.read_text())
            self.weight = int(saved["weight"])
            self.reached_at = {int(k): float(v) for k, v in saved["reached_at"].items()}
            self.weights = [(float(t), int(w)) for t, w in saved.get("weights", [])]
            extra = saved.get("extra", {})
            self.extra = extra if isinstance(extra, dict) else {}
            for key, state in saved["flags"].items():
                if key in self.flags:
                    self.flags[key] = replace(
                        self.flags[key], enabled=bool(state["enabled"]), rollout=state["rollout"]
                    )
        except (OSError, ValueError, KeyError, TypeError):
            return  # a damaged sim file just means a fresh simulated world

    def save(self) -> None:
        if self.persist is None:
            return
        data = {
            "weight": self.weight,
            "reached_at": self.reached_at,
            "weights": self.weights,
            "extra": self.extra,
            "flags": {
                k: {"enabled": f.enabled, "rollout": f.rollout} for k, f in self.flags.items()
            },
        }
        tmp = self.persist.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.persist)
        self._seen = self._stamp()

    # -- the world's physics

    def _noise(self, *parts: object) -> random.Random:
        """A generator that depends only on the seed and the parts, never on the process."""
        key = ":".join(str(p) for p in (self.seed, *parts)).encode()
        return random.Random(zlib.crc32(key))

    def _bucket(self, at: float) -> int:
        return int(at)  # a new noise draw every virtual second

    def value(self, metric: str, role: Role, at: float, weight: int) -> Reading:
        if role is Role.CANARY and weight <= 0:
            return Reading(None, at, "no data: canary receives no traffic")
        if role is Role.CANARY and self._blind(at, weight):
            return Reading(None, at, "no data: empty result for canary")
        bucket = self._bucket(at)
        rng = self._noise(metric, role.value, bucket)
        shared = self._noise(metric, "shared", bucket)
        noisy = self.scenario == "noisy-healthy"
        if metric == "error_rate":
            if noisy:
                # Wide independent swings plus a shared load spike: looks alarming on a
                # sparkline, yet canary - baseline never exceeds 0.0045.
                value = 0.003 + rng.uniform(-0.00225, 0.00225)
                value *= 1.0 + 0.5 * max(0.0, shared.uniform(-1.0, 1.0))
            else:
                value = BASE_ERROR * (1.0 + rng.uniform(-0.2, 0.2))
            if role is Role.CANARY and self.scenario == "bad-canary" and weight >= 10:
                value = 0.05 * (1.0 + rng.uniform(-0.15, 0.15))
            return Reading(value, at)
        if metric in BASE_LATENCY:
            spread = 0.08 if noisy else 0.03
            value = BASE_LATENCY[metric] * (1.0 + rng.uniform(-spread, spread))
            if noisy:
                value *= 1.0 + 0.4 * max(0.0, shared.uniform(-1.0, 1.0))
            if role is Role.CANARY and self.scenario == "latency-regression":
                value *= {"latency_p50": 1.05, "latency_p95": 1.25, "latency_p99": 1.6}[metric]
            return Reading(value, at)
        if metric == "request_rate":
            share = weight if role is Role.CANARY else 100 - weight
            return Reading(400.0 * share / 100 * (1.0 + rng.uniform(-0.05, 0.05)), at)
        return Reading(None, at, f"sim: no metric named {metric!r}")

    def _blind(self, at: float, weight: int) -> bool:
        if self.scenario != "no-data" or weight < 10 or weight >= 100:
            return False
        since = self.reached_at.get(10)
        return since is not None and at - since < BLIND_FOR

    def apply_weight(self, weight: int) -> None:
        self.weight = weight
        now = self.clock.now()
        if not self.weights or self.weights[-1][1] != weight:
            # Changes only: the simulated Rollout re-applies its weight on every read,
            # and a day's log of reads would grow without end.
            self.weights.append((now, weight))
        for step in (1, 10, 25, 50, 100):
            if weight >= step and step not in self.reached_at:
                self.reached_at[step] = now
        self.save()

    def traffic_call(self, what: str) -> None:
        self.traffic_calls += 1
        # Seeded noise, not every third call: a strict period lines up with the engine's
        # own rhythm (read, set, read back) and then fails the same call every time.
        if self.scenario == "flaky-provider" and (
            # (a str seed is hashed with SHA-512: neighbouring call numbers do not give
            # neighbouring values, as the crc32 seeds of `_noise` would)
            random.Random(f"{self.seed}:traffic:{self.traffic_calls}").random() < 1 / 3
        ):
            self.failed_traffic_calls += 1
            raise ProviderError(f"sim traffic: {what} failed: connection reset by peer")


# Counters (`SimMetrics.sample_counters`): requests per second over both versions,
# histogram buckets fine around the p99 (as a tuned service has them), and the spread
# of a lognormal latency.
REQUEST_RATE = 400.0
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4,
           0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
LATENCY_SIGMA = 0.6


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: exact (Knuth) for small means, normal beyond."""
    if mean <= 0:
        return 0
    if mean < 30:
        limit, k, product = math.exp(-mean), 0, rng.random()
        while product > limit:
            k += 1
            product *= rng.random()
        return k
    return max(0, round(rng.gauss(mean, math.sqrt(mean))))


def _binomial(rng: random.Random, n: int, p: float) -> int:
    """A binomial draw: exact for few trials, Poisson or normal approximations beyond."""
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    if n < 60:
        return sum(rng.random() < p for _ in range(n))
    if n * p < 15:
        return min(n, _poisson(rng, n * p))
    if n * (1 - p) < 15:
        return n - min(n, _poisson(rng, n * (1 - p)))
    sd = math.sqrt(n * p * (1 - p))
    return min(n, max(0, round(rng.gauss(n * p, sd))))


@dataclass
class _Counters:
    """One version's cumulative counters of one metric, as a service would export them."""

    requests: dict[str, int] = field(default_factory=dict)  # code -> count
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    at: float | None = None


@dataclass(frozen=True)
class CounterOptions:
    """The metrics block's counter settings (`lazy_errors`, `request_rate`, `restart_at`)."""

    lazy_errors: bool = True  # the 5xx series appears at the first error, as client libraries do
    request_rate: float = REQUEST_RATE  # requests per second over both versions
    restart_at: float | None = None  # seconds after the start: the canary restarts (a reset)


class SimMetrics:
    name = "sim"

    def __init__(self, world: SimWorld, options: CounterOptions | None = None) -> None:
        self.world = world
        self.sample_calls = 0
        self.options = options or CounterOptions()
        self.counter_calls = 0
        self._counters: dict[tuple[str, Role], _Counters] = {}
        self._restarted = False

    async def sample(self, metrics: Sequence[MetricSpec]) -> dict[str, MetricPair]:
        self.sample_calls += 1
        self.world.refresh()
        now = self.world.clock.now()
        weight = self.world.weight
        return {
            m.name: MetricPair(
                canary=self.world.value(m.name, Role.CANARY, now, weight),
                baseline=self.world.value(m.name, Role.BASELINE, now, weight),
            )
            for m in metrics
        }

    async def history(
        self, metrics: Sequence[MetricSpec], seconds: float, step: float
    ) -> dict[str, list[MetricPair]]:
        # The simulated past had the canary at today's weight; good enough to fill the
        # sparklines on the first frame.
        now = self.world.clock.now()
        weight = self.world.weight
        count = int(seconds // step) if step > 0 else 0
        times = [now - step * i for i in range(count, 0, -1)]
        return {
            m.name: [
                MetricPair(
                    canary=self.world.value(m.name, Role.CANARY, t, weight),
                    baseline=self.world.value(m.name, Role.BASELINE, t, weight),
                )
                for t in times
            ]
            for m in metrics
        }

    def _weight_at(self, at: float) -> int:
        weight = 0
        for t, w in self.world.weights:
            if t > at:
                break
            weight = w
        return weight

    async def history_between(
        self, metrics: Sequence[MetricSpec], start: float, end: float, step: float
    ) -> dict[str, list[MetricPair]]:
        """Values from `start` to `end`, each at the weight the canary had then."""
        self.world.refresh()
        count = int((end - start) // step) + 1 if step > 0 and end >= start else 0
        times = [start + step * i for i in range(count)]
        return {
            m.name: [
                MetricPair(
                    canary=self.world.value(m.name, Role.CANARY, t, self._weight_at(t)),
                    baseline=self.world.value(m.name, Role.BASELINE, t, self._weight_at(t)),
                )
                for t in times
            ]
            for m in metrics
        }

    async def close(self) -> None:
        return None

    # -- counters

    async def sample_counters(
        self, metrics: Sequence[MetricSpec], *, ago: float = 0.0
    ) -> dict[str, CounterPair]:
        """Cumulative counters drawn from the same error rates and latencies as `sample`.

        Each call adds the requests of the time since the last one (Poisson, at the
        version's share of `request_rate`), the errors among them (binomial at the
        scenario's error rate) and, for a histogram, their latencies (lognormal with the
        scenario's quantile), from generators seeded by the seed and the call number.
        """
        self.counter_calls += 1
        self.world.refresh()
        # A reading `ago` seconds back is drawn as if taken then: a fresh simulator's
        # first reading only sets the starting point, so the next one brings the
        # requests of the whole interval.
        now = self.world.clock.now() - max(0.0, ago)
        weight = self.world.weight
        restart = (self.options.restart_at is not None and not self._restarted
                   and now - self.world.started >= self.options.restart_at)
        if restart:
            self._restarted = True
            for (_, role), counters in self._counters.items():
                if role is Role.CANARY:
                    counters.requests.clear()
                    counters.buckets = [0] * (len(BUCKETS) + 1)
        out: dict[str, CounterPair] = {}
        for m in metrics:
            if m.counts is None:
                continue
            out[m.name] = CounterPair(
                canary=self._counter_set(m, Role.CANARY, now, weight),
                baseline=self._counter_set(m, Role.BASELINE, now, weight))
        return out

    def _counter_set(self, metric: MetricSpec, role: Role, now: float,
                     weight: int) -> CounterSet:
        source = metric.counts
        assert source is not None
        counters = self._counters.setdefault((metric.name, role), _Counters())
        first = counters.at is None
        elapsed = 0.0 if counters.at is None else max(0.0, now - counters.at)
        counters.at = now
        share = weight if role is Role.CANARY else 100 - weight
        if share > 0:
            reading = self.world.value(metric.name, role, now, weight)
            if not reading.usable or reading.value is None:
                return CounterSet({}, {}, now, f"sim: {reading.problem}")
            rng = self.world._noise("counters", metric.name, role.value, self.counter_calls)
            requests = _poisson(rng, self.options.request_rate * share / 100 * elapsed)
            if first and role is Role.BASELINE:
                requests += 10_000  # a stable version that has served for a while
            if source.histogram:
                self._observe_latencies(counters, rng, requests, reading.value,
                                        source.quantile or 0.99)
            else:
                errors = _binomial(rng, requests, min(1.0, max(0.0, reading.value)))
                self._add(counters, "200", requests - errors)
                self._add(counters, "500", errors)
        labels = {"version": role.value}
        if source.histogram:
            if not counters.requests:
                return CounterSet({}, {}, now)
            total = sum(counters.buckets)
            events = {}
            running = 0
            for le, count in zip((*BUCKETS, math.inf), counters.buckets, strict=True):
                running += count
                bound = "+Inf" if math.isinf(le) else f"{le:g}"
                events[series_key({**labels, "le": bound})] = float(running)
            return CounterSet(events, {series_key(labels): float(total)}, now)
        if not self.options.lazy_errors and counters.requests:
            counters.requests.setdefault("500", 0)
        total_map = {series_key({**labels, "code": code}): float(n)
                     for code, n in counters.requests.items()}
        events_map = {series_key({**labels, "code": code}): float(n)
                      for code, n in counters.requests.items() if code.startswith("5")}
        return CounterSet(events_map, total_map, now)

    @staticmethod
    def _add(counters: _Counters, code: str, n: int) -> None:
        # A labelled child exists from its first increment on, as in client libraries.
        if n > 0 or code in counters.requests:
            counters.requests[code] = counters.requests.get(code, 0) + n

    @staticmethod
    def _observe_latencies(counters: _Counters, rng: random.Random, requests: int,
                           quantile_value: float, quantile: float) -> None:
        if requests <= 0 or quantile_value <= 0:
            return
        median = math.log(quantile_value) - NormalDist().inv_cdf(quantile) * LATENCY_SIGMA
        left = requests
        below = 0.0
        for i, le in enumerate(BUCKETS):
            share = NormalDist(median, LATENCY_SIGMA).cdf(math.log(le))
            p = (share - below) / (1.0 - below) if below < 1.0 else 0.0
            n = _binomial(rng, left, p)
            counters.buckets[i] += n
            left -= n
            below = share
        counters.buckets[-1] += left
        counters.requests["all"] = counters.requests.get("all", 0) + requests


class SimTraffic:
    name = "sim"

    def __init__(self, world: SimWorld) -> None:
        self.world = world

    async def read(self) -> TrafficState:
        self.world.refresh()
        self.world.traffic_call("read")
        weight = self.world.weight
        servers = tuple(
            ServerHealth(f"{role.value}-{i}", role, up=True, detail="L7OK")
            for role in (Role.CANARY, Role.BASELINE)
            for i in (1, 2)
        )
        return TrafficState(canary_weight=weight, servers=servers)

    async def set_weight(self, weight: int, *, reason: str) -> None:
        if not 0 <= weight <= 100:
            raise ProviderError(f"sim traffic: weight {weight} outside 0..100")
        self.world.traffic_call(f"set weight {weight}%")
        self.world.set_weight_calls.append(weight)
        self.world.apply_weight(weight)

    async def close(self) -> None:
        return None


class SimFlags:
    name = "sim"
    supports_rollout = True

    def __init__(self, world: SimWorld) -> None:
        self.world = world

    async def list_flags(self) -> list[Flag]:
        self.world.refresh()
        return list(self.world.flags.values())

    def _get(self, key: str) -> Flag:
        try:
            return self.world.flags[key]
        except KeyError:
            raise ProviderError(f"sim flags: no flag named {key!r}") from None

    async def set_enabled(self, key: str, enabled: bool, *, reason: str) -> None:
        self.world.flags[key] = replace(self._get(key), enabled=enabled)
        self.world.save()

    async def set_rollout(self, key: str, percent: int, *, reason: str) -> None:
        if not 0 <= percent <= 100:
            raise ProviderError(f"sim flags: rollout {percent} outside 0..100")
        self.world.flags[key] = replace(self._get(key), rollout=percent)
        self.world.save()

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class _SimSettings:
    scenario: str = "healthy"
    seed: int = 7


def _settings(settings: dict[str, Any]) -> _SimSettings:
    unknown = set(settings) - {"type", "scenario", "seed"}
    if unknown:
        raise ProviderError(
            f"sim: unknown setting(s) {', '.join(sorted(unknown))} (allowed: scenario, seed)"
        )
    scenario = settings.get("scenario", "healthy")
    seed = settings.get("seed", 7)
    if not isinstance(scenario, str):
        raise ProviderError("sim: scenario must be a name")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ProviderError("sim: seed must be an integer")
    return _SimSettings(scenario, seed)


def world_for(settings: dict[str, Any], ctx: BuildContext) -> SimWorld:
    """The one world all sim providers of a release share.

    Whichever block names a scenario or seed sets it; two blocks that disagree are a
    configuration error rather than a silent pick.
    """
    wanted = _settings(settings)
    explicit = "scenario" in settings or "seed" in settings
    world = ctx.shared.get("sim.world")
    if world is None:
        state = ctx.shared.get("state_dir")
        persist = Path(state) / f"sim-{ctx.plan.release_id}.json" if state else None
        world = SimWorld(ctx.clock, wanted.scenario, wanted.seed, persist)
        ctx.shared["sim.world"] = world
        ctx.shared["sim.explicit"] = explicit
    elif explicit:
        if ctx.shared.get("sim.explicit") and (world.scenario, world.seed) != (
            wanted.scenario,
            wanted.seed,
        ):
            raise ProviderError(
                "sim: every sim provider of a release shares one world; give scenario and "
                "seed once (on providers.metrics)"
            )
        fresh = SimWorld(ctx.clock, wanted.scenario, wanted.seed)
        world.scenario, world.seed = fresh.scenario, fresh.seed
        ctx.shared["sim.explicit"] = True
    return world


COUNTER_SETTINGS = ("lazy_errors", "request_rate", "restart_at")


def _counter_options(settings: dict[str, Any]) -> CounterOptions:
    lazy = settings.get("lazy_errors", True)
    if not isinstance(lazy, bool):
        raise ProviderError("sim: lazy_errors must be true or false")
    rate = settings.get("request_rate", REQUEST_RATE)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (
            math.isfinite(rate) and rate > 0):
        raise ProviderError("sim: request_rate must be a positive number (requests per second)")
    restart = settings.get("restart_at")
    if restart is not None and (isinstance(restart, bool) or not isinstance(restart, (int, float))
                                or not math.isfinite(restart) or restart < 0):
        raise ProviderError("sim: restart_at must be a number of seconds")
    return CounterOptions(lazy_errors=lazy, request_rate=float(rate),
                          restart_at=None if restart is None else float(restart))


def build_metrics(settings: dict[str, Any], ctx: BuildContext) -> SimMetrics:
    options = _counter_options(settings)
    world_settings = {k: v for k, v in settings.items() if k not in COUNTER_SETTINGS}
    return SimMetrics(world_for(world_settings, ctx), options)


def build_traffic(settings: dict[str, Any], ctx: BuildContext) -> SimTraffic | SimRollout:
    world = world_for(settings, ctx)
    if world.scenario == "argo":
        # Imported here: the simulated Rollout reads Argo's words from providers.argo.
        from relconsole.providers.sim_rollout import SimRollout

        return SimRollout(world)
    return SimTraffic(world)


def build_flags(settings: dict[str, Any], ctx: BuildContext) -> SimFlags:
    return SimFlags(world_for(settings, ctx))
