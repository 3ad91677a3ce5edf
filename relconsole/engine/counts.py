"""Counter increments between polls: raw cumulative counters in, whole counts out.

The metrics provider reads each version's counters as they are (`CounterSet`: one value
per series); this reader keeps the last value of every series and turns each poll into
a `Tally` of requests and events since the previous poll. Reading the raw counters and
differencing them here, rather than asking Prometheus for `rate()`/`increase()`, gives
whole numbers, windows that never overlap, and no "no data" for a series that does not
exist yet:

- a counter that went down was reset (its process restarted from 0): the increment is
  its new value, never a negative one;
- a series not seen at the previous poll was created since (client libraries create a
  labelled child, such as the 5xx one, on its first increment): its whole value is new;
  except at a version's very first poll, which only sets the starting point;
- a series that vanished is remembered for `stale_polls` polls (a scrape that came
  late), then forgotten: if it comes back it is a new series;
- no events series while the requests flow is 0 events; no requests series (or an
  error) is no traffic: that side is None, which the gates judge INCONCLUSIVE.

For a histogram, the events are the requests slower than T, where T is the baseline's
quantile bucket: the smallest bucket boundary `le` whose cumulative share of the
baseline's requests, since the reader started, reaches the quantile (for p99, the first
bucket holding 99 % of the baseline's requests). Each version's events in a poll are
its `_count` increment minus its `_bucket{le=T}` increment.

Pure: no I/O, no clock, no provider.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from relconsole.model import (
    CounterPair,
    CounterSet,
    CountPair,
    CountSource,
    MetricSpec,
    Role,
    Tally,
    series_labels,
)

STALE_POLLS = 10  # polls a vanished series is remembered before it is forgotten


@dataclass
class _Series:
    """The last value of each series of one counter (events or total) of one version."""

    last: dict[str, float] = field(default_factory=dict)
    away: dict[str, int] = field(default_factory=dict)

    def step(self, values: Mapping[str, float], *, first: bool,
             stale_polls: int) -> dict[str, float]:
        """Each series' increment since the last poll (0 for all at the first poll)."""
        out: dict[str, float] = {}
        for key, value in values.items():
            if not math.isfinite(value) or value < 0:
                continue  # not a counter value; as if the series were not there
            before = self.last.get(key)
            if before is None:
                delta = 0.0 if first else value
            else:
                delta = value - before if value >= before else value
            out[key] = delta
            self.last[key] = value
            self.away.pop(key, None)
        for key in list(self.last):
            if key in out:
                continue
            self.away[key] = self.away.get(key, 0) + 1
            if self.away[key] > stale_polls:
                del self.last[key]
                del self.away[key]
        return out


@dataclass
class _Version:
    events: _Series = field(default_factory=_Series)
    total: _Series = field(default_factory=_Series)
    started: bool = False


def _by_le(deltas: Mapping[str, float]) -> dict[float, float]:
    """Bucket increments summed over series, per boundary `le` (+Inf included)."""
    out: dict[float, float] = {}
    for key, delta in deltas.items():
        raw = series_labels(key).get("le")
        if raw is None:
            continue
        try:
            le = float(raw)
        except ValueError:
            continue
        if math.isnan(le):
            continue
        out[le] = out.get(le, 0.0) + delta
    return out


def threshold_for(cumulative: Mapping[float, float], total: float,
                  quantile: float) -> float | None:
    """The smallest finite `le` whose share of `total` reaches `quantile`.

    Where only +Inf reaches it (the quantile is beyond the last finite bucket), the
    largest finite boundary: the slow requests are then all those above it. None
    without data.
    """
    finite = sorted(le for le in cumulative if math.isfinite(le))
    if total <= 0 or not finite:
        return None
    running = 0.0
    for le in finite:
        # Buckets are cumulative: the running max keeps them monotonic where a reset
        # in one series made a wider bucket's increment smaller.
        running = max(running, cumulative[le])
        if running >= quantile * total:
            return le
    return finite[-1]


class IncrementReader:
    """Successive `CounterPair`s of each count metric -> each poll's `CountPair`."""

    def __init__(self, stale_polls: int = STALE_POLLS) -> None:
        self.stale_polls = stale_polls
        self._versions: dict[tuple[str, Role], _Version] = {}
        # Histograms: the baseline's bucket increments since the reader started.
        self._baseline_le: dict[str, dict[float, float]] = {}
        self._baseline_total: dict[str, float] = {}
        self._threshold: dict[str, float] = {}

    def threshold(self, metric: str) -> float | None:
        """A histogram metric's T (the baseline's quantile bucket), once chosen."""
        return self._threshold.get(metric)

    def _deltas(self, metric: str, role: Role, counters: CounterSet
                ) -> tuple[dict[str, float], dict[str, float]]:
        version = self._versions.setdefault((metric, role), _Version())
        first = not version.started
        version.started = True
        events = version.events.step(counters.events, first=first, stale_polls=self.stale_polls)
        total = version.total.step(counters.total, first=first, stale_polls=self.stale_polls)
        return events, total

    def _side(self, metric: str, role: Role, counters: CounterSet | None
              ) -> tuple[tuple[dict[str, float], dict[str, float]] | None, str | None]:
        if counters is None:
            return None, f"no {role.value} counters"
        if counters.error is not None:
            return None, counters.error
        started = (metric, role) in self._versions and self._versions[(metric, role)].started
        deltas = self._deltas(metric, role, counters)
        if not started:
            return None, f"{role.value}: first reading of the counters (the starting point)"
        if not counters.total:
            return None, f"no requests series for the {role.value}"
        return deltas, None

    def read(self, metric: MetricSpec, pair: CounterPair, at: float) -> CountPair:
        """One poll's increments of `metric` for both versions."""
        source = metric.counts or CountSource()
        sides = {role: self._side(metric.name, role, counters)
                 for role, counters in ((Role.CANARY, pair.canary),
                                        (Role.BASELINE, pair.baseline))}
        problems = [why for _, why in sides.values() if why]
        problem = "; ".join(problems) or None
        if source.histogram:
            return self._histogram(metric.name, source, sides, at, problem)
        tallies = {
            role: None if deltas is None
            else Tally(events=math.fsum(deltas[0].values()), total=math.fsum(deltas[1].values()))
            for role, (deltas, _) in sides.items()
        }
        return CountPair(canary=tallies[Role.CANARY], baseline=tallies[Role.BASELINE], at=at,
                         problem=problem)

    def _histogram(self, name: str, source: CountSource,
                   sides: Mapping[Role, tuple[tuple[dict[str, float], dict[str, float]] | None,
                                              str | None]],
                   at: float, problem: str | None) -> CountPair:
        per_le: dict[Role, tuple[dict[float, float], float]] = {}
        for role, (deltas, _) in sides.items():
            if deltas is not None:
                buckets = _by_le(deltas[0])
                total = math.fsum(deltas[1].values()) if deltas[1] else buckets.get(math.inf, 0.0)
                per_le[role] = (buckets, total)
        if Role.BASELINE in per_le:
            buckets, total = per_le[Role.BASELINE]
            seen = self._baseline_le.setdefault(name, {})
            for le, delta in buckets.items():
                seen[le] = seen.get(le, 0.0) + delta
            self._baseline_total[name] = self._baseline_total.get(name, 0.0) + total
        found = threshold_for(self._baseline_le.get(name, {}),
                              self._baseline_total.get(name, 0.0), source.quantile or 0.0)
        if found is not None:
            self._threshold[name] = found
        threshold = self._threshold.get(name)
        if threshold is None:
            why = "no baseline latency yet to choose the threshold bucket from"
            return CountPair(None, None, at, "; ".join(x for x in (problem, why) if x))
        tallies: dict[Role, Tally | None] = {Role.CANARY: None, Role.BASELINE: None}
        for role, (buckets, total) in per_le.items():
            fast = max((v for le, v in buckets.items() if le <= threshold), default=0.0)
            tallies[role] = Tally(events=max(0.0, total - fast), total=total)
        return CountPair(canary=tallies[Role.CANARY], baseline=tallies[Role.BASELINE], at=at,
                         problem=problem, threshold=threshold)
