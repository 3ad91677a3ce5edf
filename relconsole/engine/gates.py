"""Health gates: compare the canary with thresholds and with the baseline.

Safety rule 1 lives here: a missing, NaN, infinite, errored or stale value can never
produce PASS. Only a usable, fresh reading is evidence.

A gate's reason is written in its metric's unit (`relconsole.units`): it goes into the
journal, the headless lines and onto the screen as it is, so all three say '4.39 % >
max 1 %' rather than one of them '0.04389 > max 0.01'.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import partial

from relconsole import units
from relconsole.clock import clock_text
from relconsole.engine import evidence
from relconsole.model import (
    CountPair,
    GateEvidence,
    GateSpec,
    GateStatus,
    MetricPair,
    MetricSpec,
    Reading,
    Role,
    TrafficState,
    Verdict,
)


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
    return any(getattr(spec, k) is not None
               for k in ("max_increase", "max_ratio", "max_decrease", "min_ratio"))


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
    banded = ""  # inside an inconclusive band (Argo: neither condition holds)
    if spec.max is not None and c_val > spec.max:
        if spec.inconclusive_max is not None and c_val <= spec.inconclusive_max:
            banded = (f"canary {value(c_val)} between max {limit(spec.max)} and "
                      f"{limit(spec.inconclusive_max)}: neither passing nor failing")
        else:
            failures.append(f"canary {value(c_val)} > max {limit(spec.max)}")
    if spec.min is not None and c_val < spec.min:
        if spec.inconclusive_min is not None and c_val >= spec.inconclusive_min:
            banded = (f"canary {value(c_val)} between {limit(spec.inconclusive_min)} and "
                      f"min {limit(spec.min)}: neither passing nor failing")
        else:
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
    if spec.max_decrease is not None:
        assert b_val is not None
        if b_val - c_val > spec.max_decrease:
            failures.append(f"{units.delta(c_val - b_val, unit)} under baseline, more than "
                            f"{limit(spec.max_decrease)}")
    if spec.min_ratio is not None:
        assert b_val is not None
        if b_val > 0 and c_val / b_val < spec.min_ratio:
            failures.append(f"×{c_val / b_val:.2f} of baseline < ×{spec.min_ratio:g}")
    if failures:
        return Verdict.FAIL, "; ".join(failures), c_val, b_val
    if banded:
        return Verdict.INCONCLUSIVE, banded, c_val, b_val
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
        judged=previous.judged,
    )


def new_step(status: GateStatus) -> GateStatus:
    """A new step needs fresh evidence: forget that the gate passed at the last one."""
    return dataclasses.replace(status, passed_this_step=False)


# --- gates judged on counts ----------------------------------------------------------

# Limits in the metric's own unit: on a histogram the counts are requests slower than
# the baseline's quantile bucket, a share, so a limit in seconds cannot be held to them.
ABSOLUTE = ("max", "min", "max_increase", "max_decrease")


def values_why(spec: GateSpec, metric: MetricSpec | None) -> str | None:
    """Why this gate is judged on values; None when it is judged on counts."""
    if metric is None or metric.counts is None:
        why = metric.values_why if metric is not None else ""
        return why or "the metric has no counters"
    if metric.counts.histogram and any(getattr(spec, k) is not None for k in ABSOLUTE):
        return ("a histogram's counts are shares of slow requests; max/min are in the "
                "metric's unit, so this gate compares values (use max_ratio for counts)")
    return None


def judged_text(spec: GateSpec, metric: MetricSpec | None) -> str:
    why = values_why(spec, metric)
    return "counts" if why is None else f"values: {why}"


@dataclass(frozen=True)
class CountState:
    """What a gate judged on counts carries from poll to poll within one step."""

    evidence: evidence.Evidence
    folded_at: float | None = None  # the `at` of the last CountPair folded in
    traffic_seen: bool = False  # the canary has had a request in this step
    last_request_at: float | None = None  # the last poll that brought the canary a request
    first_request_at: float | None = None  # since when the canary's rate is measured
    requests_before: float = 0.0  # canary requests folded in before first_request_at
    opened_at: float | None = None  # the step's first poll with counts for this gate
    longest_gap: float = 0.0  # the longest wait between two polls that brought requests


def start_counts(spec: GateSpec) -> CountState:
    return CountState(evidence=evidence.start(spec))


def _gate_evidence(j: evidence.Judgement) -> GateEvidence:
    ce, cn, be, bn = j.counts
    return GateEvidence(
        canary_events=ce, canary_total=cn, baseline_events=be, baseline_total=bn,
        alpha=j.alpha, e_value=j.e_value, pass_e_value=j.pass_e_value,
        estimate=j.canary_rate, baseline_rate=j.baseline_rate, low=j.low, high=j.high,
        needs=j.needs,
    )


def _about(seconds: float) -> str:
    """A coarse duration for an estimate: '~40 s', '~12 min', '~3 h'."""
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"~{round(seconds / 60)} min"
    return f"~{round(seconds / 3600)} h"


def _no_data(previous: GateStatus, state: CountState, reason: str) -> tuple[GateStatus,
                                                                           CountState]:
    """Safety rule 1 on counts: no traffic data is INCONCLUSIVE and counts as no data."""
    return dataclasses.replace(
        previous, verdict=Verdict.INCONCLUSIVE, reason=reason,
        consecutive_inconclusive=previous.consecutive_inconclusive + 1,
    ), state


def update_counts(
    previous: GateStatus, state: CountState, pair: CountPair | None, now: float,
    stale_after: float,
) -> tuple[GateStatus, CountState]:
    """Fold one poll's counts into the gate's evidence and judge it.

    FAIL only when the e-value against the limits reaches 1/alpha (anytime-valid), PASS
    only when every limit is shown to hold; otherwise the gate needs more data. Needing
    more data while the canary takes requests is not "no data": it does not count
    towards `inconclusive_limit`. No requests series, a stale or errored read, or no
    canary request for longer than the scrapes explain does (safety rule 1, as for
    values).
    """
    spec = previous.spec
    if pair is None:
        return _no_data(previous, state, "no counts read yet")
    if now - pair.at > stale_after:
        return _no_data(previous, state, f"counts stale since {clock_text(pair.at)}")
    if pair.canary is None:
        # The reader's problem names its version already.
        return _no_data(previous, state, pair.problem or "canary: no traffic data")
    if pair.baseline is None and needs_baseline(spec):
        return _no_data(previous, state, pair.problem or "baseline: no traffic data")
    if state.folded_at is not None and pair.at <= state.folded_at:
        return previous, state  # the same increments again: nothing new to judge
    ev = evidence.fold(state.evidence, pair.canary, pair.baseline)
    took = pair.canary.total > 0
    seen = state.traffic_seen or took
    opened = state.opened_at if state.opened_at is not None else pair.at
    gap = state.longest_gap
    if took and state.last_request_at is not None:
        gap = max(gap, pair.at - state.last_request_at)
    last_request = pair.at if took else state.last_request_at
    first_request, before = state.first_request_at, state.requests_before
    if first_request is None and took:
        # This poll's requests came in since the previous poll; at the step's first poll
        # nobody knows since when, so the rate is measured from this poll on.
        if state.folded_at is not None:
            first_request = state.folded_at
        else:
            first_request, before = pair.at, ev.canary_total
    state = CountState(evidence=ev, folded_at=pair.at, traffic_seen=seen,
                       last_request_at=last_request, first_request_at=first_request,
                       requests_before=before, opened_at=opened, longest_gap=gap)
    j = evidence.judge(ev)
    failures, inconclusive = previous.consecutive_failures, 0
    passed = previous.passed_this_step
    reason = j.reason
    if j.verdict is Verdict.FAIL:
        failures += 1
    elif j.verdict is Verdict.PASS:
        failures, passed = 0, True
    else:
        failures = 0  # the e-value fell back below 1/alpha: no longer failing
        # A canary that gets no requests is no evidence: once none has come for too long
        # (since the step's first poll, or since the last that brought one) the polls
        # count as no data and pause the release, as missing values do. Measured in
        # time, not polls, and never shorter than three of the longest waits seen between
        # requests in this step: counters move only when Prometheus scrapes (every 15 or
        # 30 s is common), so a console polling faster sees still counters between two
        # scrapes of a healthy canary, and a new step's first requests come a scrape late.
        since = last_request if last_request is not None else opened
        quiet = now - since > max(stale_after, 3 * gap)
        if quiet:
            inconclusive = previous.consecutive_inconclusive + 1
            if last_request is not None:
                reason = f"no canary request since {clock_text(last_request)}; {reason}"
        elif j.needs is not None and first_request is not None and pair.at > first_request:
            # How long that is at the canary's request rate in this step: "~300 more
            # requests" means little to a tired engineer; "~4 min at this weight" does.
            rate = (ev.canary_total - before) / (pair.at - first_request)
            if rate > 0:
                reason = reason.replace(" more canary requests",
                                        f" more canary requests ({_about(j.needs / rate)} "
                                        "at this weight)", 1)
    status = dataclasses.replace(
        previous, verdict=j.verdict, reason=reason, canary=j.canary_rate,
        baseline=j.baseline_rate, consecutive_failures=failures,
        consecutive_inconclusive=inconclusive, passed_this_step=passed, judged="counts",
        evidence=_gate_evidence(j), unit=units.RATIO,  # on counts: rates, shares of requests
    )
    return status, state


# --- the health gate ------------------------------------------------------------------


def health_needed(spec: GateSpec, total: int) -> int:
    """How many servers must be up: min_up, or its share of `total` rounded up."""
    if spec.min_up is None:
        return 0
    if spec.min_up_share:
        return math.ceil(spec.min_up * total - 1e-9)
    return math.ceil(spec.min_up - 1e-9)


def update_health(
    previous: GateStatus, traffic: TrafficState | None, read_at: float | None, now: float,
    stale_after: float,
) -> GateStatus:
    """A health gate: enough of the role's servers up, as the traffic provider reports.

    Trips like any gate after `failure_limit` failing polls; no reading, a stale one, or
    a provider that reports no servers of that role is INCONCLUSIVE (safety rule 1).
    """
    spec = previous.spec
    role = Role.CANARY if spec.health == "canary" else Role.BASELINE
    if traffic is None or read_at is None:
        verdict, reason = Verdict.INCONCLUSIVE, "no server health read yet"
    elif now - read_at > stale_after:
        verdict, reason = Verdict.INCONCLUSIVE, f"server health stale since {clock_text(read_at)}"
    else:
        group = [s for s in traffic.servers if s.role is role]
        if not group:
            verdict = Verdict.INCONCLUSIVE
            reason = f"the traffic provider reports no {role.value} servers"
        else:
            up = sum(s.up for s in group)
            need = health_needed(spec, len(group))
            down = [s.name for s in group if not s.up]
            shown = f"{up}/{len(group)} {role.value} servers up"
            if up < need:
                verdict = Verdict.FAIL
                reason = f"{shown} < min {need}" + (f" (down: {', '.join(down[:3])})"
                                                    if down else "")
            else:
                verdict, reason = Verdict.PASS, f"{shown} (min {need})"
            previous = dataclasses.replace(previous, canary=float(up))
    if verdict is Verdict.INCONCLUSIVE:
        return dataclasses.replace(previous, verdict=verdict, reason=reason,
                                   consecutive_inconclusive=previous.consecutive_inconclusive
                                   + 1)
    failures = previous.consecutive_failures + 1 if verdict is Verdict.FAIL else 0
    return dataclasses.replace(
        previous, verdict=verdict, reason=reason, consecutive_failures=failures,
        consecutive_inconclusive=0,
        passed_this_step=previous.passed_this_step or verdict is Verdict.PASS,
    )
