"""The evidence judge: anytime-valid sequential tests on counts, for one gate in one step.

A gate judged on counts sees, each poll, whole numbers: the canary's events (errors,
slow requests, orders) among its requests, and the baseline's. For every limit of the
gate it runs two one-sided mixture e-processes (research note, canary-statistics.md
§2.2 "What to implement"):

- a FAIL process, H0 "the limit holds". It is a product of per-poll likelihood ratios
  averaged over a grid of alternatives (the limit × 1.25, 1.5, 2, 3, 5, 10). Under H0
  it is a non-negative supermartingale, so by Ville's inequality the chance it EVER
  reaches 1/alpha is at most alpha, however often the console polls: reaching 1/alpha
  is FAIL.
- a safe-to-promote twin, H0 "the limit is broken", alternatives the limit × 0.2, 0.4,
  0.6, 0.8. Reaching 1/alpha shows, at the same confidence, that the limit holds. PASS
  needs every limit's twin there (and no FAIL); before that the gate needs more data.

Limits:

- `max_ratio: r` / `min_ratio: r`: the conditional binomial. Given a poll's n events
  of both versions, the canary's share is Binomial(n, θ) with θ = ρr / (ρr + 1 − ρ),
  ρ = the poll's measured request share N_c / (N_c + N_b) (not the configured weight).
  Load and bursts shared by both versions cancel.
- `max: m` / `min: m`: one-sample binomial tests of the canary's own rate against m.
- `max_increase: d`: the FAIL process is the ratio test with r0 = (p̂_b + d) / p̂_b, p̂_b
  the baseline's cumulative rate before the poll. This is a plug-in: the baseline has
  far more traffic, so p̂_b is the better known side, but its error is not accounted
  for; a canary exactly at the limit is failed somewhat more often than alpha says (a
  canary no worse than its baseline is not: r0 ≥ 1 always). With no baseline event yet
  a poll is judged as `max: d` on the canary.
- `max_decrease: d` (business metrics: the canary must not fall more than d below the
  baseline): the mirror, r0 = (p̂_b − d) / p̂_b; no evidence while p̂_b ≤ d.
- The twins of `max_increase` / `max_decrease` test the canary alone against the bound
  from the baseline's conservative estimate (its Wilson bound at alpha: p_b,low + d,
  p_b,high − d), which errs towards "needs more data". The twins of the ratio limits
  are the conditional tests themselves, so a ratio limit with no events anywhere
  stays INCONCLUSIVE (and says how many requests it needs), while `max` and
  `max_increase` can pass with zero errors (0 in ~600 requests shows < 1 % at 0.01).

Several limits in one gate: the gate's FAIL e-value is the mean of its limits' (a mean
of e-values is an e-value), so the gate as a whole fails a healthy canary with chance
≤ alpha; PASS needs every twin at 1/alpha (an intersection-union test, no split).

Overdispersion (per-version noise that is not binomial: pods, per-version bursts). We
measured it (tests/test_evidence.py, research §5.2 H4, per-poll lognormal jitter
σ = 0.3 on each version's rate): with many events per poll the plain binomial
e-process fails a healthy canary far more often than alpha. We temper: every log
e-value is divided by φ ≥ 1, the dispersion estimated from the step's own polls
(Pearson's χ² per degree of freedom of the per-poll counts against their pooled rate,
shrunk towards 1 with `DISPERSION_PRIOR_DF` pseudo degrees of freedom, capped at
`DISPERSION_CAP`). E^(1/φ) is an e-value for any fixed φ ≥ 1 (Jensen); φ estimated
from the same data is not fixed, so the bound is then approximate, which is why the
benchmark (bench/detection.py) measures false rollbacks rather than assume them. φ is
≈ 1 on binomial data, so it costs a real regression little, and it grows where the
data are noisier than binomial. The
conditional test's φ is estimated from the canary's share of each poll's events, so
bursts shared by both versions do not inflate it.

Pure Python (math only), no I/O, no clock: `start`, `fold` and `judge` are all there
is, and bench/detection.py drives them on generated data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

from relconsole import units
from relconsole.model import GateSpec, Tally, Verdict

UP = (1.25, 1.5, 2.0, 3.0, 5.0, 10.0)  # FAIL alternatives, × the limit
DOWN = (0.2, 0.4, 0.6, 0.8)  # twin alternatives, × the limit
DISPERSION_PRIOR_DF = 6.0
DISPERSION_CAP = 10.0
TEMPER = True  # tempering by the estimated dispersion (see the module docstring)
_EPS = 1e-12


class Kind(StrEnum):
    MAX = "max"
    MIN = "min"
    MAX_INCREASE = "max_increase"
    MAX_DECREASE = "max_decrease"
    MAX_RATIO = "max_ratio"
    MIN_RATIO = "min_ratio"


RATIO_KINDS = (Kind.MAX_RATIO, Kind.MIN_RATIO)
RELATIVE = (Kind.MAX_INCREASE, Kind.MAX_DECREASE, Kind.MAX_RATIO, Kind.MIN_RATIO)


@dataclass(frozen=True)
class Limit:
    """One limit's two e-processes: log-likelihood sums, one per alternative."""

    kind: Kind
    bound: float
    fail: tuple[float, ...]
    twin: tuple[float, ...]
    fail_ratio: bool = False  # its FAIL factors are conditional (ratio) ones
    fail_seen: bool = False  # at least one poll gave its FAIL process evidence


@dataclass(frozen=True)
class Evidence:
    """Everything seen in one step: cumulative counts and each limit's e-processes."""

    spec: GateSpec
    limits: tuple[Limit, ...]
    canary_events: float = 0.0
    canary_total: float = 0.0
    baseline_events: float = 0.0
    baseline_total: float = 0.0
    polls: int = 0
    # Dispersion: sums for Pearson's χ² of the canary's per-poll counts (one-sample) and
    # of the canary's share of each poll's events (conditional).
    one_sq: float = 0.0  # Σ x_k² / N_k
    one_polls: int = 0
    cond_sq: float = 0.0  # Σ x_k² / n_k
    cond_events: float = 0.0  # Σ n_k (both versions' events, polls with both sides)
    cond_canary: float = 0.0  # Σ x_k over those polls
    cond_polls: int = 0
    last_share: float | None = None  # the canary's request share in the last poll


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str
    needs: int | None
    canary_rate: float | None
    baseline_rate: float | None
    low: float | None
    high: float | None
    e_value: float
    counts: tuple[float, float, float, float]
    pass_e_value: float = 0.0  # the smallest twin e-value: what stands between and PASS
    alpha: float = 0.01
    dispersion: float = 1.0  # the largest φ used for tempering


# --- small pieces ------------------------------------------------------------------


def _theta(r: float, rho: float) -> float:
    """P(an event is the canary's) when its rate is r × the baseline's, share ρ; also the
    rate whose odds are r × the odds of ρ (used for one-sample alternatives)."""
    return rho * r / (rho * r + 1.0 - rho)


def _logsumexp(values: tuple[float, ...]) -> float:
    top = max(values)
    if top == -math.inf or top == math.inf:
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


def _log_mix(sums: tuple[float, ...], phi: float) -> float:
    return _logsumexp(tuple(s / phi for s in sums)) - math.log(len(sums))


def _exp(log_value: float) -> float:
    return math.exp(min(log_value, 700.0))


def wilson(events: float, total: float, alpha: float) -> tuple[float, float] | None:
    """The Wilson interval for a rate at confidence 1 − alpha (two-sided); None for no
    requests. A fixed-n interval, shown for reading the estimate, not for deciding."""
    if total <= 0:
        return None
    z = _z(1 - alpha / 2)
    p = min(1.0, max(0.0, events / total))
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    low = 0.0 if events <= 0 else max(0.0, centre - half)
    high = 1.0 if events >= total else min(1.0, centre + half)
    return min(low, p), max(high, p)


def _z(q: float) -> float:
    """The standard normal quantile (Acklam's rational approximation, |error| < 1e-8)."""
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
         1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
         6.680131188771972e01, -1.328068155288572e01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
         -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
         3.754408661907416e00)
    if q < 0.02425:
        t = math.sqrt(-2 * math.log(q))
        return (((((c[0] * t + c[1]) * t + c[2]) * t + c[3]) * t + c[4]) * t + c[5]) / (
            (((d[0] * t + d[1]) * t + d[2]) * t + d[3]) * t + 1)
    if q > 1 - 0.02425:
        return -_z(1 - q)
    u = q - 0.5
    t = u * u
    return (((((a[0] * t + a[1]) * t + a[2]) * t + a[3]) * t + a[4]) * t + a[5]) * u / (
        ((((b[0] * t + b[1]) * t + b[2]) * t + b[3]) * t + b[4]) * t + 1)


def _clamp(p: float) -> float:
    return min(1.0 - 1e-9, max(1e-9, p))


def _one_sample(x: float, n: float, m: float, alt: float) -> float:
    """log LR of `x` events in `n` requests: rate `alt` against rate `m`."""
    m, alt = _clamp(m), _clamp(alt)
    return x * math.log(alt / m) + (n - x) * math.log((1 - alt) / (1 - m))


def _conditional(x: float, y: float, rho: float, r0: float, r: float) -> float:
    """log LR of the canary's x of x + y events: ratio r against r0 at share ρ."""
    t0, t1 = _theta(r0, rho), _theta(r, rho)
    return x * math.log(t1 / t0) + y * math.log((1 - t1) / (1 - t0))


def _alts(kind: Kind, fail: bool) -> tuple[float, ...]:
    """Multipliers of the limit: for an upper limit FAIL looks above it, the twin below;
    for a lower limit the other way round."""
    upper = kind in (Kind.MAX, Kind.MAX_INCREASE, Kind.MAX_RATIO)
    grid = UP if fail else DOWN
    return grid if upper else tuple(1 / c for c in grid)


def limits_of(spec: GateSpec) -> tuple[tuple[Kind, float], ...]:
    out = []
    for kind in Kind:
        bound = getattr(spec, kind.value)
        if bound is not None:
            out.append((kind, float(bound)))
    return tuple(out)


# --- the three functions -------------------------------------------------------------


def start(spec: GateSpec) -> Evidence:
    """Empty evidence at the start of a step."""
    limits = tuple(
        Limit(kind=k, bound=b, fail=(0.0,) * len(UP), twin=(0.0,) * len(DOWN))
        for k, b in limits_of(spec)
    )
    return Evidence(spec=spec, limits=limits)


def fold(ev: Evidence, canary: Tally, baseline: Tally | None) -> Evidence:
    """One poll's increments into the step's evidence (pure; returns a new value)."""
    x = max(0.0, float(canary.events))
    nc = max(0.0, float(canary.total))
    x = min(x, nc) if nc > 0 else 0.0
    y = nb = 0.0
    if baseline is not None:
        y = max(0.0, float(baseline.events))
        nb = max(0.0, float(baseline.total))
        y = min(y, nb) if nb > 0 else 0.0
    alpha = ev.spec.alpha
    # Bounds from the baseline are taken from the polls BEFORE this one (predictable),
    # so a poll's own baseline events never move the bar its canary events are held to.
    pb = ev.baseline_events / ev.baseline_total if ev.baseline_total > 0 else None
    b_interval = wilson(ev.baseline_events, ev.baseline_total, alpha)
    b_low, b_high = b_interval if b_interval is not None else (0.0, 1.0)
    both = nc > 0 and nb > 0
    rho = nc / (nc + nb) if both else None
    limits = []
    for lim in ev.limits:
        fail, twin, ratio, seen = list(lim.fail), list(lim.twin), lim.fail_ratio, lim.fail_seen
        fail_alts, twin_alts = _alts(lim.kind, True), _alts(lim.kind, False)
        k, b = lim.kind, lim.bound
        if k is Kind.MAX and b <= 0:
            if x > 0:  # "no events at all": one is a breach
                fail = [math.inf] * len(fail)
            seen = seen or nc > 0
        elif k in (Kind.MAX, Kind.MIN):
            if nc > 0:
                for j, c in enumerate(fail_alts):
                    fail[j] += _one_sample(x, nc, b, _theta(c, b))
                for j, c in enumerate(twin_alts):
                    twin[j] += _one_sample(x, nc, b, _theta(c, b))
                seen = True
        elif k in RATIO_KINDS:
            if rho is not None and x + y > 0:
                for j, c in enumerate(fail_alts):
                    fail[j] += _conditional(x, y, rho, b, b * c)
                for j, c in enumerate(twin_alts):
                    twin[j] += _conditional(x, y, rho, b, b * c)
                ratio = seen = True
        elif k is Kind.MAX_INCREASE:
            if rho is not None and pb is not None and pb > 0:
                if x + y > 0:
                    r0 = (pb + b) / pb
                    for j, c in enumerate(fail_alts):
                        fail[j] += _conditional(x, y, rho, r0, r0 * c)
                    ratio = seen = True
            elif nc > 0:  # no baseline event yet: as `max: d` on the canary
                for j, c in enumerate(fail_alts):
                    fail[j] += _one_sample(x, nc, b, _theta(c, b))
                seen = True
            if nc > 0:
                m = b_low + b
                for j, c in enumerate(twin_alts):
                    twin[j] += _one_sample(x, nc, m, _theta(c, m))
        elif k is Kind.MAX_DECREASE:
            if rho is not None and pb is not None and pb > b and x + y > 0:
                r0 = (pb - b) / pb
                for j, c in enumerate(fail_alts):
                    fail[j] += _conditional(x, y, rho, r0, r0 * c)
                ratio = seen = True
            m = b_high - b
            if nc > 0 and m > 0:
                for j, c in enumerate(twin_alts):
                    twin[j] += _one_sample(x, nc, m, _theta(c, m))
        limits.append(replace(lim, fail=tuple(fail), twin=tuple(twin), fail_ratio=ratio,
                              fail_seen=seen))
    out = replace(
        ev, limits=tuple(limits),
        canary_events=ev.canary_events + x, canary_total=ev.canary_total + nc,
        baseline_events=ev.baseline_events + y, baseline_total=ev.baseline_total + nb,
        polls=ev.polls + 1,
    )
    if nc > 0:
        out = replace(out, one_sq=out.one_sq + x * x / nc, one_polls=out.one_polls + 1,
                      last_share=rho if rho is not None else out.last_share)
    if rho is not None and x + y > 0:
        out = replace(out, cond_sq=out.cond_sq + x * x / (x + y),
                      cond_events=out.cond_events + x + y, cond_canary=out.cond_canary + x,
                      cond_polls=out.cond_polls + 1)
    return out


def _dispersion(sq: float, hits: float, trials: float, polls: int) -> float:
    """Pearson's χ²/df of per-poll counts against their pooled rate, shrunk towards 1."""
    if not TEMPER or polls < 2 or trials <= 0:
        return 1.0
    p = hits / trials
    if p <= 0 or p >= 1:
        return 1.0
    chi2 = max(0.0, (sq - p * hits) / (p * (1 - p)))
    phi = (chi2 + DISPERSION_PRIOR_DF) / (polls - 1 + DISPERSION_PRIOR_DF)
    return min(DISPERSION_CAP, max(1.0, phi))


def dispersions(ev: Evidence) -> tuple[float, float]:
    """(φ of the canary's own counts, φ of the canary's share of events)."""
    one = _dispersion(ev.one_sq, ev.canary_events, ev.canary_total, ev.one_polls)
    cond = _dispersion(ev.cond_sq, ev.cond_canary, ev.cond_events, ev.cond_polls)
    return one, cond


@dataclass(frozen=True)
class _Reading:
    """One limit, judged now."""

    kind: Kind
    bound: float
    log_fail: float
    log_twin: float
    needs: int | None  # canary requests until its twin could reach 1/alpha
    twin_bound: float | None  # the one-sample bound its twin tests against, if any


def _estimates(ev: Evidence) -> tuple[float, float, float]:
    """Rates for projecting: each version's shrunk towards the pooled rate, the more the
    fewer events it has (all the way with none), so 'no events yet' projects equal rates,
    as rare as the requests so far say (half an event in all of them), rather than 0."""
    n = ev.canary_total + ev.baseline_total
    pooled = (ev.canary_events + ev.baseline_events + 0.5) / (n + 1.0)

    def shrunk(events: float, total: float) -> float:
        own = events / total if total > 0 else pooled
        weight = 1.0 / (1.0 + events)
        return (1 - weight) * own + weight * pooled

    return (shrunk(ev.canary_events, ev.canary_total),
            shrunk(ev.baseline_events, ev.baseline_total), pooled)


def _needs(lim: Limit, ev: Evidence, phi: float, target: float, twin_bound: float | None,
           ) -> int | None:
    """About how many more canary requests until the twin reaches `target` (log 1/alpha),
    at the current estimate; None when at that estimate it would not."""
    pc, pb, _ = _estimates(ev)
    alts = _alts(lim.kind, False)
    best: float | None = None
    for j, c in enumerate(alts):
        if lim.kind in RATIO_KINDS:
            rho = ev.last_share
            if rho is None or rho <= 0 or rho >= 1:
                return None
            t0, t1 = _theta(lim.bound, rho), _theta(lim.bound * c, rho)
            drift = pc * math.log(t1 / t0) + pb * (1 - rho) / rho * math.log((1 - t1) / (1 - t0))
        else:
            m = twin_bound if twin_bound is not None else lim.bound
            if m <= 0:
                return None
            alt = _theta(c, m)
            drift = pc * math.log(_clamp(alt) / _clamp(m)) + (1 - pc) * math.log(
                (1 - _clamp(alt)) / (1 - _clamp(m)))
        if drift <= _EPS:
            continue
        gap = target + math.log(len(alts)) - lim.twin[j] / phi
        more = max(1.0, gap * phi / drift)
        best = more if best is None else min(best, more)
    return None if best is None else math.ceil(best)


def _twin_bound(kind: Kind, bound: float, ev: Evidence) -> float | None:
    interval = wilson(ev.baseline_events, ev.baseline_total, ev.spec.alpha)
    low, high = interval if interval is not None else (0.0, 1.0)
    if kind is Kind.MAX_INCREASE:
        return low + bound
    if kind is Kind.MAX_DECREASE:
        return high - bound
    if kind in (Kind.MAX, Kind.MIN):
        return bound
    return None


def judge(ev: Evidence) -> Judgement:
    """The verdict now, from everything folded in this step."""
    spec = ev.spec
    alpha = spec.alpha
    target = math.log(1 / alpha)
    phi_one, phi_cond = dispersions(ev)
    counts = (ev.canary_events, ev.canary_total, ev.baseline_events, ev.baseline_total)
    pc = ev.canary_events / ev.canary_total if ev.canary_total > 0 else None
    pb = ev.baseline_events / ev.baseline_total if ev.baseline_total > 0 else None
    interval = wilson(ev.canary_events, ev.canary_total, alpha)
    low, high = interval if interval is not None else (None, None)
    readings: list[_Reading] = []
    for lim in ev.limits:
        phi_fail = phi_cond if lim.fail_ratio else phi_one
        phi_twin = phi_cond if lim.kind in RATIO_KINDS else phi_one
        log_fail = _log_mix(lim.fail, phi_fail) if lim.fail_seen else 0.0
        twin_bound = _twin_bound(lim.kind, lim.bound, ev)
        if lim.kind is Kind.MAX_DECREASE and twin_bound is not None and twin_bound <= 0:
            # The baseline is shown to be within d of 0: the canary cannot fall d below it.
            log_twin = math.inf if ev.canary_total > 0 else 0.0
        else:
            log_twin = _log_mix(lim.twin, phi_twin)
        needs = None
        if log_twin < target:
            needs = _needs(lim, ev, phi_twin, target, twin_bound)
        readings.append(_Reading(lim.kind, lim.bound, log_fail, log_twin, needs, twin_bound))
    phi = max(phi_one, phi_cond)
    if not readings:
        return Judgement(Verdict.INCONCLUSIVE, "no limit to judge", None, pc, pb, low, high,
                         0.0, counts, 0.0, alpha, phi)
    # The gate's FAIL e-value: the mean of its limits' (an e-value under any dependence).
    log_gate = _logsumexp(tuple(r.log_fail for r in readings)) - math.log(len(readings))
    e_value = _exp(log_gate)
    log_pass = min(r.log_twin for r in readings)
    pass_e = _exp(log_pass)
    rates = _rates_text(pc, pb, any(r.kind in RELATIVE for r in readings))
    threshold = units.threshold(spec, units.RATIO)
    if ev.canary_total <= 0:
        return Judgement(Verdict.INCONCLUSIVE, "no canary requests in this step yet", None,
                         pc, pb, low, high, e_value, counts, pass_e, alpha, phi)
    if log_gate >= target:
        worst = max(readings, key=lambda r: r.log_fail)
        reason = (f"{rates}: breaks {_limit_text(worst)} "
                  f"(e-value {_e_text(e_value)} ≥ {_e_text(1 / alpha)})")
        return Judgement(Verdict.FAIL, reason, None, pc, pb, low, high, e_value, counts,
                         pass_e, alpha, phi)
    if log_pass >= target:
        reason = f"{rates}: {threshold} holds (e-values ≥ {_e_text(1 / alpha)})"
        return Judgement(Verdict.PASS, reason, None, pc, pb, low, high, e_value, counts,
                         pass_e, alpha, phi)
    open_ = [r for r in readings if r.log_twin < target]
    if any(r.needs is None for r in open_):
        stuck = next(r for r in open_ if r.needs is None)
        needs = None
        reason = (f"{rates}: not enough margin yet to show {_limit_text(stuck)} holds; "
                  "more data will tell")
    else:
        needs = max(r.needs for r in open_ if r.needs is not None)
        reason = f"needs ~{units.count(needs)} more canary requests: {rates}"
    return Judgement(Verdict.INCONCLUSIVE, reason, needs, pc, pb, low, high, e_value, counts,
                     pass_e, alpha, phi)


def _rates_text(pc: float | None, pb: float | None, relative: bool) -> str:
    text = f"canary {units.percent(pc)}"
    if relative:
        text += f" vs baseline {units.percent(pb)}"
    return text


def _limit_text(r: _Reading) -> str:
    """One limit as the gate's threshold writes it: '≤2 %', 'Δ≤1 %', '×≤1.5'."""
    bound = units.limit(r.bound, units.RATIO)
    return {
        Kind.MAX: f"≤{bound}", Kind.MIN: f"≥{bound}", Kind.MAX_INCREASE: f"Δ≤{bound}",
        Kind.MAX_DECREASE: f"Δ≥−{bound}", Kind.MAX_RATIO: f"×≤{r.bound:g}",
        Kind.MIN_RATIO: f"×≥{r.bound:g}",
    }[r.kind]


def _e_text(e: float) -> str:
    if e >= 1e6:
        return f"{e:.1e}"
    if e >= 100:
        return f"{e:.0f}"
    return f"{e:.3g}"
