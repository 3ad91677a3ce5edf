"""The evidence judge on generated counts: no false rollbacks from noise, fast on a real
regression, never PASS without data, and an honest "needs more" that shrinks as data come.

Counts are drawn with numpy from one seed per case, so every run is the same.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from relconsole.engine import evidence
from relconsole.model import GateSpec, Tally, Verdict
from tests.fuzz_settings import FUZZ_SMALL

NOISY_GATE = GateSpec(metric="error_rate", max=0.02, max_increase=0.01, failure_limit=2)


def polls(rng: np.random.Generator, n: int, rps: float, weight: float, interval: float,
          p_canary: float, p_baseline: float, jitter: float = 0.0):
    """`n` polls of (canary tally, baseline tally); `jitter`: per-version, per-poll
    lognormal noise on each version's rate (research §5.2 H4)."""
    nc = rng.poisson(rps * weight * interval, n)
    nb = rng.poisson(rps * (1 - weight) * interval, n)
    jc = rng.lognormal(-jitter**2 / 2, jitter, n) if jitter else np.ones(n)
    jb = rng.lognormal(-jitter**2 / 2, jitter, n) if jitter else np.ones(n)
    xc = rng.binomial(nc, np.minimum(1.0, p_canary * jc))
    xb = rng.binomial(nb, np.minimum(1.0, p_baseline * jb))
    return [(Tally(float(a), float(b)), Tally(float(c), float(d)))
            for a, b, c, d in zip(xc, nc, xb, nb, strict=True)]


def first_trip(spec: GateSpec, data) -> int | None:
    """The poll (1-based) at which `failure_limit` FAIL polls in a row trip the gate."""
    ev, run = evidence.start(spec), 0
    for k, (canary, baseline) in enumerate(data, 1):
        ev = evidence.fold(ev, canary, baseline)
        run = run + 1 if evidence.judge(ev).verdict is Verdict.FAIL else 0
        if run >= spec.failure_limit:
            return k
    return None


def test_a_healthy_noisy_canary_is_never_rolled_back_over_500_seeds() -> None:
    # The case: both versions at 1 % errors, canary 10 % of 80 req/s, 1 s polls,
    # {max: 0.02, max_increase: 0.01, failure_limit: 2} — the old per-poll gate rolled
    # this back (one error in ~40 requests reads as 2.5 %, twice in a row).
    rng = np.random.default_rng(11)
    trips = [first_trip(NOISY_GATE, polls(rng, 120, 80, 0.10, 1.0, 0.01, 0.01))
             for _ in range(500)]
    assert [t for t in trips if t is not None] == []


def test_fifteen_percent_errors_against_one_fail_within_three_polls() -> None:
    # At 80 req/s and the default 5 s polls (160 canary requests a poll). With 1 s polls
    # (32 a poll) 96.8 % trip within 3 polls and 99.9 % with 2 s polls (1,000 runs): at
    # alpha 0.01 the first few canary errors are the evidence, not the poll count.
    rng = np.random.default_rng(12)
    spec = GateSpec(metric="error_rate", max=0.02, max_increase=0.01, failure_limit=2)
    for _ in range(200):
        trip = first_trip(spec, polls(rng, 3, 80, 0.40, 5.0, 0.15, 0.01))
        assert trip is not None and trip <= 3


def test_a_business_metric_that_drops_fails() -> None:
    # Orders per request: 5 % on the baseline, 2.5 % on the canary.
    rng = np.random.default_rng(13)
    spec = GateSpec(metric="orders", max_decrease=0.01, min_ratio=0.9)
    trips = [first_trip(spec, polls(rng, 60, 100, 0.2, 5.0, 0.025, 0.05)) for _ in range(50)]
    found = [t for t in trips if t is not None]
    assert len(found) == len(trips)
    assert sorted(found)[len(found) // 2] <= 20  # median: ~300 canary requests each poll
    # ... and the same canary at the baseline's rate never does.
    calm = [first_trip(spec, polls(rng, 60, 100, 0.2, 5.0, 0.05, 0.05)) for _ in range(200)]
    assert [t for t in calm if t is not None] == []


def test_no_errors_anywhere_can_pass_an_absolute_limit_but_not_a_ratio() -> None:
    # 0 errors in ~600 requests shows < 1 % at alpha 0.01 (the mixture costs a little more).
    clean = [(Tally(0, 100), Tally(0, 900))] * 12
    ev = evidence.start(GateSpec(metric="e", max=0.01))
    verdicts = []
    for canary, baseline in clean:
        ev = evidence.fold(ev, canary, baseline)
        verdicts.append(evidence.judge(ev).verdict)
    assert verdicts[0] is Verdict.INCONCLUSIVE  # 100 requests are not enough
    assert verdicts[-1] is Verdict.PASS  # 1,200 are
    ratio = evidence.start(GateSpec(metric="e", max_ratio=1.5))
    for canary, baseline in clean:
        ratio = evidence.fold(ratio, canary, baseline)
    j = evidence.judge(ratio)
    assert j.verdict is Verdict.INCONCLUSIVE
    assert j.needs is not None and j.needs > 0
    assert "more canary requests" in j.reason


def test_needs_shrinks_as_data_arrive() -> None:
    ev = evidence.start(GateSpec(metric="e", max=0.02, max_increase=0.01))
    rng = np.random.default_rng(14)
    needs = []
    for canary, baseline in polls(rng, 400, 80, 0.5, 1.0, 0.002, 0.002):
        ev = evidence.fold(ev, canary, baseline)
        j = evidence.judge(ev)
        if j.verdict is Verdict.PASS:
            break
        if j.needs is not None:
            needs.append(j.needs)
    assert j.verdict is Verdict.PASS
    assert len(needs) > 10
    # Not strictly every poll (an error moves the estimate), but clearly down over time.
    quarter = len(needs) // 4
    assert max(needs[-quarter:]) < min(needs[:quarter])


@FUZZ_SMALL
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 5000)), max_size=40),
       st.sampled_from([
           GateSpec(metric="e", max=0.01), GateSpec(metric="e", max_ratio=1.2),
           GateSpec(metric="e", max_increase=0.005, min=0.0),
           GateSpec(metric="e", max_decrease=0.01, min_ratio=0.8),
       ]))
def test_pass_is_never_said_without_canary_requests(baseline, spec) -> None:
    ev = evidence.start(spec)
    assert evidence.judge(ev).verdict is Verdict.INCONCLUSIVE
    for events, total in baseline:
        ev = evidence.fold(ev, Tally(0, 0), Tally(min(events, total), total))
        j = evidence.judge(ev)
        assert j.verdict is Verdict.INCONCLUSIVE
        assert j.counts[:2] == (0, 0)


@FUZZ_SMALL
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 300), st.integers(0, 300),
                          st.integers(0, 3000)), min_size=1, max_size=30))
def test_the_judgement_is_always_well_formed(data) -> None:
    spec = GateSpec(metric="e", max=0.05, max_increase=0.01, max_ratio=2.0)
    ev = evidence.start(spec)
    for xc, nc, xb, nb in data:
        ev = evidence.fold(ev, Tally(xc, nc), Tally(xb, nb))
        j = evidence.judge(ev)
        assert j.e_value >= 0 and not math.isnan(j.e_value)
        assert j.pass_e_value >= 0
        if j.low is not None and j.high is not None:
            assert 0 <= j.low <= (j.canary_rate or 0) <= j.high <= 1
        if j.verdict is not Verdict.INCONCLUSIVE:
            assert j.needs is None


@pytest.mark.parametrize(("temper", "limit"), [(False, 0.04), (True, 0.03)])
def test_overdispersion_is_what_tempering_is_for(temper, limit, monkeypatch) -> None:
    # Research §5.2 H4: per-version lognormal jitter σ = 0.3 on each poll's rate, 60 s
    # polls at 100 req/s, canary 10 %, 0.5 % errors, max_ratio 1.0 at alpha 0.01. Many
    # events per poll make the binomial model too sure of itself; tempering by the
    # estimated dispersion cuts false rollbacks (measured, 500 runs: 4.8 % → 2.2 %), and
    # a margin (max_ratio 1.2) brings them under alpha (0.4 %); see the module docstring.
    monkeypatch.setattr(evidence, "TEMPER", temper)
    rng = np.random.default_rng(15)
    spec = GateSpec(metric="e", max_ratio=1.0)
    runs = [first_trip(spec, polls(rng, 30, 100, 0.1, 60.0, 0.005, 0.005, jitter=0.3))
            for _ in range(200)]
    rate = sum(t is not None for t in runs) / len(runs)
    assert rate <= limit + 0.03  # 200 runs: a loose bound, the numbers are in the docstring
    margin = GateSpec(metric="e", max_ratio=1.2)
    runs = [first_trip(margin, polls(rng, 30, 100, 0.1, 60.0, 0.005, 0.005, jitter=0.3))
            for _ in range(200)]
    assert sum(t is not None for t in runs) <= 4  # ≤ 2 %
