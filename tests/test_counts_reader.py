"""Issue 11: counter increments read between polls (relconsole/engine/counts.py).

Raw cumulative counters in, whole counts out: resets are not negative rates, a series
created between polls counts from its first increment, a missing 5xx series is 0 errors
while requests flow, and missing requests are no traffic.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from relconsole.engine.counts import IncrementReader, threshold_for
from relconsole.model import CounterPair, CounterSet, CountSource, MetricSpec, series_key
from tests.fuzz_settings import FUZZ_SMALL

RATIO = MetricSpec("error_rate", counts=CountSource(events="e", total="t"))
HISTOGRAM = MetricSpec("latency_p99", counts=CountSource(buckets="h_bucket", quantile=0.99))


def key(**labels: str) -> str:
    return series_key(labels)


def counters(events: dict[str, float], total: dict[str, float]) -> CounterSet:
    return CounterSet(events=events, total=total, at=0.0)


def same(events: dict[str, float], total: dict[str, float]) -> CounterPair:
    return CounterPair(canary=counters(events, total), baseline=counters(events, total))


# One series' life from its birth poll: per poll its increment, whether the process
# restarted (the counter went back to 0 and then served the increment), and whether this
# poll's instant query saw it (a late scrape hides it for a poll now and then).
lives = st.tuples(
    st.integers(0, 3),
    st.lists(st.tuples(st.integers(0, 50), st.booleans(), st.booleans()),
             min_size=1, max_size=25))


@FUZZ_SMALL
@given(st.lists(lives, min_size=1, max_size=4))
def test_summed_increments_equal_the_true_increments_and_are_never_negative(
        series: list[tuple[int, list[tuple[int, bool, bool]]]]) -> None:
    reader = IncrementReader(stale_polls=100)
    value = [0.0] * len(series)
    observed = [0.0] * len(series)  # what the reader last saw of it
    true_total = 0.0
    read_total = 0.0
    length = max(born + len(life) for born, life in series)
    for poll in range(length):
        shown: dict[str, float] = {}
        for i, (born, life) in enumerate(series):
            if not born <= poll < born + len(life):
                continue
            step, restart, hidden = life[poll - born]
            last_poll = poll == born + len(life) - 1
            visible = poll == 0 or last_poll or not hidden
            # A restart shows as a counter that went down: only where it can be seen, and
            # not right after a hidden poll (what it counted then died with the process,
            # unseen by any reader).
            if restart and visible and step < observed[i] and value[i] == observed[i]:
                value[i] = float(step)
            else:
                value[i] += step
            if poll > 0:
                true_total += step
            if visible:
                shown[key(pod=str(i))] = value[i]
                observed[i] = value[i]
        result = reader.read(RATIO, same({}, shown), float(poll))
        if result.canary is not None:
            assert result.canary.total >= 0 and result.canary.events == 0
            read_total += result.canary.total
    # Increments after a series was last seen are never read; none are left here, since
    # every series is seen at its last poll.
    assert math.isclose(read_total, true_total)


def test_a_vanished_series_is_forgotten_after_it_stays_away() -> None:
    reader = IncrementReader(stale_polls=2)
    reader.read(RATIO, same({}, {key(pod="a"): 10.0, key(pod="b"): 5.0}), 0.0)
    for t in (1.0, 2.0, 3.0):
        reader.read(RATIO, same({}, {key(pod="b"): 5.0}), t)
    back = reader.read(RATIO, same({}, {key(pod="a"): 3.0, key(pod="b"): 5.0}), 4.0)
    assert back.canary is not None and back.canary.total == 3.0  # a new series: all of it


def test_the_first_poll_only_sets_the_starting_point() -> None:
    reader = IncrementReader()
    first = reader.read(RATIO, same({}, {key(code="200"): 5000.0}), 0.0)
    assert first.canary is None and first.baseline is None
    assert "starting point" in (first.problem or "")
    second = reader.read(RATIO, same({}, {key(code="200"): 5040.0}), 1.0)
    assert second.canary is not None and (second.canary.events, second.canary.total) == (0, 40)


def test_a_5xx_series_created_between_polls_counts_from_its_first_error() -> None:
    reader = IncrementReader()
    reader.read(RATIO, same({}, {key(code="200"): 100.0}), 0.0)
    later = reader.read(RATIO, same({key(code="500"): 1.0},
                                    {key(code="200"): 139.0, key(code="500"): 1.0}), 1.0)
    assert later.canary is not None
    assert (later.canary.events, later.canary.total) == (1.0, 40.0)


def test_a_counter_reset_is_its_new_value_not_a_negative_rate() -> None:
    reader = IncrementReader()
    reader.read(RATIO, same({key(code="500"): 30.0}, {key(code="200"): 9000.0,
                                                      key(code="500"): 30.0}), 0.0)
    reset = reader.read(RATIO, same({}, {key(code="200"): 12.0}), 1.0)
    assert reset.canary is not None
    assert (reset.canary.events, reset.canary.total) == (0.0, 12.0)


def test_no_requests_series_or_an_error_is_no_traffic() -> None:
    reader = IncrementReader()
    reader.read(RATIO, same({}, {key(code="200"): 10.0}), 0.0)
    pair = CounterPair(canary=counters({}, {}),
                       baseline=CounterSet({}, {}, 1.0, error="prometheus: HTTP 503"))
    found = reader.read(RATIO, pair, 1.0)
    assert found.canary is None and found.baseline is None
    assert "no requests series for the canary" in (found.problem or "")
    assert "HTTP 503" in (found.problem or "")


def _histogram(slow_share: float, n: float, base: dict[str, float]) -> dict[str, float]:
    out = {}
    for le in ("0.1", "0.25", "0.5", "+Inf"):
        fast = {"0.1": n * 0.9, "0.25": n * (1 - slow_share)}
        base[le] = base.get(le, 0.0) + fast.get(le, n)
        out[key(le=le)] = base[le]
    return out


def test_a_histogram_counts_requests_slower_than_the_baselines_quantile_bucket() -> None:
    reader = IncrementReader()
    canary: dict[str, float] = {}
    baseline: dict[str, float] = {}

    def pair(canary_slow: float) -> CounterPair:
        c = _histogram(canary_slow, 100.0, canary)
        b = _histogram(0.005, 1000.0, baseline)
        return CounterPair(canary=counters(c, {key(): c[key(le="+Inf")]}),
                           baseline=counters(b, {key(): b[key(le="+Inf")]}))

    reader.read(HISTOGRAM, pair(0.05), 0.0)
    found = reader.read(HISTOGRAM, pair(0.05), 1.0)
    # 99.5 % of the baseline is at or under 0.25 s: the p99 bucket.
    assert found.threshold == 0.25 == reader.threshold("latency_p99")
    assert found.canary is not None and found.baseline is not None
    assert math.isclose(found.canary.events, 5.0) and found.canary.total == 100.0
    assert math.isclose(found.baseline.events, 5.0) and found.baseline.total == 1000.0


def test_the_threshold_is_the_first_bucket_reaching_the_quantile() -> None:
    assert threshold_for({0.1: 90.0, 0.25: 99.0, 1.0: 100.0, math.inf: 100.0},
                         100.0, 0.99) == 0.25
    assert threshold_for({0.1: 50.0, math.inf: 100.0}, 100.0, 0.99) == 0.1
    assert threshold_for({}, 0.0, 0.99) is None
