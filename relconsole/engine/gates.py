"""Health gates: compare the canary with thresholds and with the baseline.

Safety rule 1 lives here: a missing, NaN, infinite, errored or stale value can never
produce PASS. Only a usable, fresh reading is evidence.

A gate's reason is written in its metric's unit (`relconsole.units`): it goes into the
journal, the headless lines and onto the screen as it is, so all three say '4.39 % >
max 1 %' rather than one of them '0.04389 > max 0.01'.
"""

from __future__ import annotations

import dataclasses
from functools import partial

from relconsole import units
from relconsole.clock import clock_text
from relconsole.model import GateSpec, GateStatus, MetricPair, Reading, Verdict


def _unusable(reading: Reading | None, role: str, now: float, stale_after: float) -> str | None:
    if reading is None:
        return f"{role}: no data"
    problem = reading.problem
    if problem is not None:
        return f"{role}: {problem}"
    if now - reading.at > stale_after:
        return f"{role}: stale since {clock_text(reading.at)}"
    return None


def needs_baseline(spec: GateSpec) -> bool:
    return spec.max_increase is not None or spec.max_ratio is not None


def judge(
    spec: GateSpec, pair: MetricPair | None, now: float, stale_after: float, unit: str = ""
) -> tuple[Verdict, str, float | None, float | None]:
    """One gate, one poll: (verdict, reason, canary value, baseline value)."""
    canary = pair.canary if pair else None
    baseline = pair.baseline if pair else None
    c_val = canary.value if canary is not None and canary.usable else None
    b_val = baseline.value if baseline is not None and baseline.usable else None

    problem = _unusable(canary, "canary", now, stale_after)
    if problem is None and needs_baseline(spec):
        problem = _unusable(baseline, "baseline", now, stale_after)
    if problem is not None:
        return Verdict.INCONCLUSIVE, problem, c_val, b_val
    assert c_val is not None  # _unusable returned None, so the canary reading is usable

    value = partial(units.value, unit=unit)
    limit = partial(units.limit, unit=unit)
    failures: list[str] = []
    if spec.max is not None and c_val > spec.max:
        failures.append(f"canary {value(c_val)} > max {limit(spec.max)}")
    if spec.min is not None and c_val < spec.min:
        failures.append(f"canary {value(c_val)} < min {limit(spec.min)}")
    if spec.max_increase is not None:
        assert b_val is not None
        if c_val - b_val > spec.max_increase:
            failures.append(f"{units.delta(c_val - b_val, unit)} over baseline > "
                            f"{limit(spec.max_increase)}")
    if spec.max_ratio is not None:
        assert b_val is not None
        if b_val > 0:
            ratio = c_val / b_val
            if ratio > spec.max_ratio:
                failures.append(f"×{ratio:.2f} of baseline > ×{spec.max_ratio:g}")
        elif c_val > 0:
            # A zero baseline makes any positive canary value an unbounded ratio.
            failures.append("baseline is 0, canary is not")
    if failures:
        return Verdict.FAIL, "; ".join(failures), c_val, b_val
    return Verdict.PASS, "within thresholds", c_val, b_val


def initial_status(spec: GateSpec, unit: str = "") -> GateStatus:
    return GateStatus(spec=spec, verdict=Verdict.INCONCLUSIVE, reason="no sample yet",
                      unit=unit)


def update(
    previous: GateStatus, pair: MetricPair | None, now: float, stale_after: float
) -> GateStatus:
    """Fold one poll into the gate's counters.

    Inconclusive polls neither reset nor add to the failure count: missing data must
    not wash away evidence of a regression, nor invent one.
    """
    verdict, reason, c_val, b_val = judge(previous.spec, pair, now, stale_after, previous.unit)
    failures = previous.consecutive_failures
    inconclusive = 0
    passed = previous.passed_this_step
    if verdict is Verdict.PASS:
        failures = 0
        passed = True
    elif verdict is Verdict.FAIL:
        failures += 1
    else:
        inconclusive = previous.consecutive_inconclusive + 1
    return GateStatus(
        spec=previous.spec,
        verdict=verdict,
        reason=reason,
        canary=c_val,
        baseline=b_val,
        consecutive_failures=failures,
        consecutive_inconclusive=inconclusive,
        passed_this_step=passed,
        unit=previous.unit,
    )


def new_step(status: GateStatus) -> GateStatus:
    """A new step needs fresh evidence: forget that the gate passed at the last one."""
    return dataclasses.replace(status, passed_this_step=False)
