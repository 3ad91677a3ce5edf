"""Blue-green's baseline after the switch: what blue measured while it still served.

After a blue-green switch blue serves no user, so its live metrics go stale or empty (a
rate over no requests is NaN) and every gate that compares green with its baseline would
read INCONCLUSIVE for the whole bake. While `release.strategy` is blue-green and the
weight is 100, the gates are judged against blue's readings from before the switch:

- on values, each metric's baseline is blue's last usable reading taken while the weight
  was below 100, held (it does not go stale: it is the reference, not a live reading)
  and named in the gate's reason with its age: "baseline: blue's last reading, 3m ago";
- on counts, green's increments in the bake are compared with blue's increments over
  the step before the switch (since the last step began while blue served). Blue's rate
  then is a known number, so each relative limit becomes a limit on green's own rate,
  judged by the same sequential tests (`engine.evidence`): `max_increase: d` → `max:
  p + d`, `max_ratio: r` → `max: r·p`, `max_decrease: d` → `min: p − d`, `min_ratio: r` →
  `min: r·p`, the stricter one kept where the gate has an absolute limit too. `p` is
  blue's rate with half an event added, (events + ½) / (requests + 1), as the evidence
  judge's projections count "none yet", so a blue that served without an error does not
  turn `max_ratio` into "not one error on green". Like the judge's `max_increase`, this is
  a plug-in: the uncertainty of blue's rate is not accounted for; blue served all users
  before the switch, so it is usually the far better measured side.

A console that watched blue for less than `LOOK_BACK` before the switch (a headless run
switches at its first poll) would have few or no counts of blue: at the first poll after
the switch blue's counts over the `LOOK_BACK` before it are read from the metrics
provider's history (the counters as they stood then, `sample_counters(ago=…)`), and used
where they hold more requests than the console saw itself.

No reading of blue from before the switch (a console that attached after it, or a metrics
provider that cannot look back) is no data, never a pass (safety rule 1): the gate says
so and stays INCONCLUSIVE.

No clock and no provider of its own: `engine.observe` calls it around each poll, and
hands it the one provider call it makes (`look_back`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from relconsole import units
from relconsole.engine import evidence
from relconsole.engine import gates as gate_logic
from relconsole.engine.counts import IncrementReader
from relconsole.model import (
    CounterPair,
    CountPair,
    GateSpec,
    GateStatus,
    MetricPair,
    MetricSpec,
    Reading,
    ReleasePlan,
    Tally,
    TrafficState,
    Verdict,
)

STRATEGY = "blue-green"
LOOK_BACK = 300.0  # seconds of blue's counts before the switch, read from history

# Blue's and green's counters as they stood `ago` seconds back; None when unreadable.
CountersAgo = Callable[[float], Awaitable[dict[str, CounterPair] | None]]


@dataclass(frozen=True)
class Held:
    """Blue's last usable reading of one metric while it served."""

    value: float
    at: float


def ago(seconds: float) -> str:
    """'12s ago', '3m ago', '2h ago'."""
    if seconds < 60:
        return f"{max(0, int(seconds))}s ago"
    return f"{units.age(seconds)} ago"


def _rate(tally: Tally) -> float:
    return (tally.events + 0.5) / (tally.total + 1.0)


def held_spec(spec: GateSpec, blue: Tally) -> GateSpec:
    """`spec` with its relative limits turned into limits on green's own rate, given
    blue's counts before the switch (see the module docstring)."""
    p = _rate(blue)
    uppers = [spec.max] if spec.max is not None else []
    lowers = [spec.min] if spec.min is not None else []
    if spec.max_increase is not None:
        uppers.append(p + spec.max_increase)
    if spec.max_ratio is not None:
        uppers.append(spec.max_ratio * p)
    if spec.max_decrease is not None:
        lowers.append(p - spec.max_decrease)
    if spec.min_ratio is not None:
        lowers.append(spec.min_ratio * p)
    # A rate is a share of requests: an upper limit at 1 or more, or a lower one at 0 or
    # less, can never be broken, and the one-sample tests are not defined there.
    upper = min(uppers) if uppers else None
    lower = max(lowers) if lowers else None
    return dataclasses.replace(
        spec,
        max=upper if upper is not None and (upper < 1.0 or spec.max is not None) else None,
        min=lower if lower is not None and (lower > 0.0 or spec.min is not None) else None,
        max_increase=None, max_ratio=None, max_decrease=None, min_ratio=None,
    )


class BaselineHold:
    """Blue's last readings, kept while blue serves and used once green has it all."""

    def __init__(self, plan: ReleasePlan) -> None:
        self.enabled = plan.strategy == STRATEGY
        self.values: dict[str, Held] = {}
        """Each metric's last usable baseline reading while blue served."""
        self._counts: dict[str, Tally] = {}  # blue's increments since the step began
        self._counted_at: dict[str, float] = {}  # the CountPair.at last added, per metric
        self._step_before: dict[str, Tally] = {}  # the same, for the step before
        self._states: dict[int, gate_logic.CountState] = {}  # per gate, in this step
        self._watched_from: float | None = None  # the first counts added in this step
        self.switched_at: float | None = None
        """When this console first saw all traffic on green (the switch's read-back)."""
        self._looked_back = False

    # ------------------------------------------------------------------ when

    def active(self, traffic: TrafficState | None) -> bool:
        """Whether the gates are judged against the held baseline now: blue-green, and
        the last read weight has all traffic on green."""
        return self.enabled and traffic is not None and traffic.canary_weight >= 100

    # ------------------------------------------------------------------ while blue serves

    def observe(self, traffic: TrafficState | None, pairs: dict[str, MetricPair],
                counts: dict[str, CountPair], now: float) -> None:
        """After a poll: while blue serves, remember its readings and add up its counts."""
        if self.active(traffic):
            if self.switched_at is None:
                self.switched_at = now
            return
        if not self.enabled or traffic is None:
            return
        self.switched_at, self._looked_back = None, False  # blue serves: no switch yet
        for name, pair in pairs.items():
            reading = pair.baseline
            if reading.usable:
                assert reading.value is not None  # usable says so
                self.values[name] = Held(reading.value, reading.at)
        for name, count in counts.items():
            blue = count.baseline
            if blue is None or self._counted_at.get(name) == count.at:
                continue  # no counts, or the same poll's increments again
            self._counted_at[name] = count.at
            if self._watched_from is None:
                self._watched_from = count.at
            before = self._counts.get(name, Tally(0.0, 0.0))
            self._counts[name] = Tally(before.events + blue.events, before.total + blue.total)

    def new_step(self, traffic: TrafficState | None, read_at: float | None) -> None:
        """A new step: each gate's evidence starts again. Blue's counts start again too
        while blue serves; at the switch they are kept — they are the step before it. Kept
        as the step before even then, in case the switch's step began on a read taken
        before the weight moved."""
        self._states = {}
        if self.active(traffic):
            if self.switched_at is None:
                self.switched_at = read_at
            return
        if any(t.total > 0 for t in self._counts.values()):
            self._step_before = self._counts
        self._counts = {}
        self._watched_from = None

    def wants_history(self, traffic: TrafficState | None) -> bool:
        """Whether blue's counts before the switch are still to be read from history:
        once per switch, when this console watched blue for less than `LOOK_BACK`."""
        if not self.active(traffic) or self._looked_back:
            return False
        watched = (self.switched_at - self._watched_from
                   if self.switched_at is not None and self._watched_from is not None else 0.0)
        return watched < LOOK_BACK

    async def look_back(self, counters_ago: CountersAgo, metrics: Sequence[MetricSpec],
                        now: float) -> None:
        """Blue's counts over the `LOOK_BACK` before the switch, from the metrics
        provider's history, where they hold more requests than this console counted."""
        self._looked_back = True
        counted = [m for m in metrics if m.counts is not None]
        if not counted:
            return
        switched = self.switched_at if self.switched_at is not None else now
        end = max(0.0, now - switched)
        before = await counters_ago(end + LOOK_BACK)
        after = await counters_ago(end) if before is not None else None
        if before is None or after is None:
            return  # what this console counted itself is all there is
        reader = IncrementReader()
        for metric in counted:
            first, last = before.get(metric.name), after.get(metric.name)
            if first is None or last is None:
                continue
            reader.read(metric, first, switched - LOOK_BACK)  # the starting point
            blue = reader.read(metric, last, switched).baseline
            seen = self.blue_counts(metric.name)
            if blue is not None and blue.total > (seen.total if seen is not None else 0.0):
                self._counts[metric.name] = blue

    def blue_counts(self, metric: str) -> Tally | None:
        """Blue's counts of `metric` over the step before the switch, or None."""
        for source in (self._counts, self._step_before):
            tally = source.get(metric)
            if tally is not None and tally.total > 0:
                return tally
        return None

    # ------------------------------------------------------------------ judging green

    def text(self, metric: str, now: float) -> str:
        """'blue's last reading, 3m ago', or why there is none."""
        held = self.values.get(metric)
        if held is None:
            return "no reading of blue from before the switch"
        return f"blue's last reading, {ago(now - held.at)}"

    def pair(self, metric: str, live: MetricPair | None, now: float) -> MetricPair | None:
        """`live` with blue's held reading as its baseline (fresh on purpose: it is the
        reference, and its age is in the gate's reason)."""
        if live is None:
            return None
        held = self.values.get(metric)
        baseline = (Reading(held.value, now) if held is not None else
                    Reading(None, now, error="no reading of blue from before the switch "
                                             "(this console attached after it)"))
        return dataclasses.replace(live, baseline=baseline)

    def update_values(self, old: GateStatus, live: MetricPair | None, now: float,
                      stale_after: float) -> GateStatus:
        """A gate judged on values, against blue's held reading."""
        new = gate_logic.update(old, self.pair(old.spec.metric, live, now), now, stale_after)
        if gate_logic.needs_baseline(old.spec) and old.spec.metric in self.values:
            new = dataclasses.replace(
                new, reason=f"{new.reason} (baseline: {self.text(old.spec.metric, now)})")
        return new

    def update_counts(self, index: int, old: GateStatus, pair: CountPair | None, now: float,
                      stale_after: float) -> GateStatus:
        """A gate judged on counts: green's counts in this step against blue's before
        the switch."""
        spec = old.spec
        blue = self.blue_counts(spec.metric)
        if blue is None:
            if not gate_logic.needs_baseline(spec):
                blue = Tally(0.0, 0.0)  # absolute limits only: blue is not needed
            else:
                return dataclasses.replace(
                    old, verdict=Verdict.INCONCLUSIVE,
                    reason="baseline: no counts of blue from before the switch (this "
                           "console attached after it)",
                    consecutive_inconclusive=old.consecutive_inconclusive + 1)
        derived = held_spec(spec, blue)
        state = self._states.get(index)
        if state is None:
            seeded = dataclasses.replace(evidence.start(derived), baseline_events=blue.events,
                                         baseline_total=blue.total)
            state = gate_logic.CountState(evidence=seeded)
        green_only = dataclasses.replace(pair, baseline=None) if pair is not None else None
        status, self._states[index] = gate_logic.update_counts(
            dataclasses.replace(old, spec=derived), state, green_only, now, stale_after)
        status = dataclasses.replace(status, spec=spec)
        if blue.total > 0 and gate_logic.needs_baseline(spec):
            rate = units.percent(blue.events / blue.total)
            status = dataclasses.replace(
                status, baseline=blue.events / blue.total,
                reason=f"{status.reason} (baseline: blue's {rate} of "
                       f"{units.count(blue.total)} requests before the switch)")
        return status
