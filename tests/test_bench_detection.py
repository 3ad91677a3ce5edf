"""Structural facts of the detection benchmark (bench/detection.py), not its numbers: the
judges share one data set, and the emulations count the way the code they copy counts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import detection as det


def scenario(key: str) -> det.Scenario:
    return next(s for s in det.SCENARIOS if s.key == key)


def made(nc: list[int], ec: list[int], *, nc15: list[int] | None = None,
         ec15: list[int] | None = None, key: str = "E2") -> det.Data:
    """One run written by hand: per-minute canary requests and errors, a clean baseline."""
    n = np.array([nc + [nc[-1]] * (det.H - len(nc))])
    e = np.array([ec + [0] * (det.H - len(ec))])
    n15 = np.array([nc15 + [100] * (det.H - len(nc15))]) if nc15 else n // 4
    e15 = np.array([ec15 + [0] * (det.H - len(ec15))]) if ec15 else e * 0
    nb = np.full((1, det.H), 6000)
    eb = np.full((1, det.H), 30)
    return det.Data(scenario(key), n, nb, e, eb, n15, e15, None, None)


@pytest.fixture(scope="module")
def small() -> det.Data:
    return det.generate(scenario("E2"), runs=6)


def test_every_judge_sees_the_same_data(small: det.Data) -> None:
    before = small.fingerprint()
    seen = []
    for judge in det.JUDGES:
        if small.scenario.metric in judge.metrics:
            judge.run(small, judge.grid[:1] if judge.grid else ())
            seen.append(small.fingerprint())
    assert seen == [before] * len(seen)  # nobody changed it (the arrays are read-only too)
    assert not small.ec.flags.writeable
    # The same seed gives the same data, and run i comes from its own child seed: asking
    # for fewer runs does not change the first ones.
    again = det.generate(scenario("E2"), runs=6)
    assert again.fingerprint() == before
    fewer = det.generate(scenario("E2"), runs=3)
    assert np.array_equal(fewer.ec, small.ec[:3]) and np.array_equal(fewer.nc, small.nc[:3])
    # The calibration stream is another data set.
    other = det.generate(scenario("E2"), stream=det.CALIBRATION, runs=6)
    assert other.fingerprint() != before


def test_latency_data_and_slow_counts() -> None:
    d = det.generate(scenario("L1.6"), runs=3)
    assert d.hc is not None and d.hb is not None
    assert np.array_equal(d.hc.sum(axis=-1), d.nc)  # every request lands in one bucket
    slow_c, slow_b = det.slow_counts(d)
    # T is the 0.5 s boundary here (the baseline's share below it is ~99.6 %).
    assert np.array_equal(slow_b, d.hb[..., det.SLOW_FROM:].sum(axis=-1))
    assert np.array_equal(slow_c, d.hc[..., det.SLOW_FROM:].sum(axis=-1))


def test_slow_counts_use_the_threshold_rule_of_the_counts_module() -> None:
    counts = pytest.importorskip("relconsole.engine.counts")
    d = det.generate(scenario("L1.2"), runs=2)
    assert d.hc is not None and d.hb is not None
    slow_c, _ = det.slow_counts(d)
    bounds = [*det.BOUNDS.tolist(), float("inf")]
    for r in range(2):
        seen = np.cumsum(d.hb[r], axis=0)  # the baseline's buckets so far, per minute
        for k in (0, 5, det.H - 1):
            cumulative = dict(zip(bounds, np.cumsum(seen[k]).tolist(), strict=True))
            t = counts.threshold_for(cumulative, float(seen[k].sum()), 0.99)
            above = int(d.hc[r, k, int(np.searchsorted(det.BOUNDS, t)) + 1:].sum())
            assert slow_c[r, k] == above


def test_argo_docs_fails_on_the_fourth_failed_measurement_not_the_third() -> None:
    # Measurements at minutes 5, 10, 15, ...; irate sees the minute's last 15 s. 90 %
    # success < 95 % fails a measurement.
    three = [100] * det.H
    bad = [0] * det.H
    for minute in (5, 10, 15):
        bad[minute - 1] = 10
    d = made([400] * det.H, [0] * det.H, nc15=three, ec15=bad)
    assert det.judge_argo_docs(d).at[0] == 0  # three failures: failureLimit 3 not exceeded
    bad[20 - 1] = 10
    d = made([400] * det.H, [0] * det.H, nc15=three, ec15=bad)
    assert det.judge_argo_docs(d).at[0] == 20  # the 4th failed measurement aborts
    # Argo's default (failureLimit 0) aborts on the first failed measurement.
    assert det.judge_argo_default(made([100, 100], [0, 5])).at[0] == 2


def test_flaggers_failed_checks_are_cumulative() -> None:
    # Alternate failing and passing minutes: never two in a row.
    errors = [5 if k % 2 == 0 else 0 for k in range(det.H)]  # 5 % errors every other minute
    d = made([100] * det.H, errors)
    assert det.judge_flagger(d).at[0] == 9  # the 5th failed check (minutes 1, 3, 5, 7, 9)
    # relconsole's old gate counts consecutive failures (failure_limit 2): never trips.
    assert det.judge_old(d).at[0] == 0


def test_kayenta_judges_every_ten_polls() -> None:
    d = det.generate(scenario("E10"), runs=8)
    for outcome in det.judge_kayenta(d, det.CONFS):
        assert set(outcome.at.tolist()) <= {0, 10, 20, 30, 40, 50, 60}
    # A canary far worse from the first minute is seen at the first judgement, minute 10.
    d = made([300] * det.H, [60] * det.H)
    assert det.judge_kayenta(d)[0].at[0] == 10


def test_the_old_gate_port_agrees_with_gates_update(small: det.Data) -> None:
    for key in ("H-sh-1%-10", "H-lat-5%-100"):
        d = det.generate(scenario(key), runs=10)
        for s in (0.5, 1.0, 2.0):
            real, port = det.judge_old(d, s), det.judge_old_np(d, s)
            assert np.array_equal(real.at, port.at)
            assert np.array_equal(real.passed, port.passed)


def test_no_data_never_passes_the_evidence_gate() -> None:
    d = det.generate(scenario("N0"), runs=4)
    assert not d.nc.any()
    outcome = det.judge_evidence(d)
    assert not outcome.passed.any() and not outcome.at.any()


def test_a_gate_the_benchmark_names_wrongly_is_an_error_not_dropped() -> None:
    """A misspelt limit would silently benchmark a gate with no such limit."""
    assert det.gate_spec(metric="error_rate", max_ratio=1.5, alpha=0.01).alpha == 0.01
    with pytest.raises(TypeError):
        det.gate_spec(metric="error_rate", max_ratoi=1.5)
