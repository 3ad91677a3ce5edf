"""Side-by-side detection benchmark (issue 11): relconsole's evidence gates against its old
per-poll thresholds and emulations of Argo Rollouts, Flagger and a Kayenta-like judge.

Run by hand or with `make bench`; prints numbers, asserts nothing. One seeded run on a
virtual clock (no real time, no services): every scenario's data are generated once from
one master SeedSequence (one child per scenario and run), and every judge reads the same
arrays (common random numbers), so the comparisons are paired. Judges are deterministic.
The design follows the research note (../shared/research/canary-statistics.md) §5.

Time: one slice of data is 60 s (the research note's Prometheus step). relconsole judges
every slice (its poll, here 1 min), Argo's default and Flagger measure every 1 min, Argo's
documented example every 5 min, the Kayenta-like judge every 10 min on a growing window.
Delays are given in each judge's own polls and in minutes. Horizon: 60 min, one step at a
fixed canary weight, the regression present from the first minute.

Each scenario is judged on its own metric only (error scenarios on the error gate, latency
scenarios on the latency gate): in a release with both gates false rollbacks add up.
"""

from __future__ import annotations

import math
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relconsole.engine import evidence, gates
from relconsole.model import GateSpec, MetricPair, Reading, Tally, Verdict

EVIDENCE_SOURCE = "relconsole.engine.evidence"

ROOT = Path(__file__).resolve().parent.parent
MASTER_SEED = 20_261_111
MAIN, CALIBRATION = 0, 1  # the two streams of the master seed: measured, and tuning
H = 60  # slices (minutes) per run
SLICE = 60.0  # seconds per slice
P0 = 0.005  # baseline error rate
ALPHA = 0.01
ALPHA_LOOSE = 0.05
RATIO = 1.5  # the evidence gate: {metric: error_rate, max_ratio: 1.5, alpha: 0.01}
INCREASE = 0.0025  # the max_increase variant: the same limit at 0.5 %, as a difference
# client_golang's default buckets (seconds); per-bucket counts have one more, (10, +Inf].
BOUNDS = np.array([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
NBUCKETS = len(BOUNDS) + 1
SLOW = 0.5  # "bad" latency: slower than 0.5 s (the boundary at the baseline's p99)
SLOW_FROM = int(np.searchsorted(BOUNDS, SLOW)) + 1  # first per-bucket index above 0.5 s
LAT_MU, LAT_SIGMA = math.log(0.1), 0.6  # true p99 ~ 0.40 s
SCRAPE = 15.0  # seconds; irate sees the last scrape interval
GRID = tuple(2.0 ** (i / 4) for i in range(-8, 17))  # threshold multipliers, 0.25 .. 16
DEFAULT_S = GRID.index(1.0)
CONFS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)  # Kayenta's confLevel
DEFAULT_CONF = CONFS.index(0.98)


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    metric: str  # "errors" or "latency"
    rps: float
    weight: float
    runs: int
    healthy: bool
    sigma_j: float = 0.1  # per-version overdispersion of the error rate
    err_factor: float = 1.0  # canary error multiplier (from the first minute)
    lat_factor: float = 1.0  # canary latency scale (p99 x factor)
    spikes: str = ""  # "canary": 10x canary errors every 10th minute; "shared": both, p 1/30
    no_data: bool = False  # the canary gets no requests
    matches: str = ""  # the healthy scenario the judges are tuned on, for a regression


def _scenarios(healthy_runs: int = 1000, bad_runs: int = 200) -> tuple[Scenario, ...]:
    out: list[Scenario] = []
    for noise, sj in (("shared noise", 0.1), ("overdispersed σj 0.3", 0.3)):
        for rps in (10, 100):
            for w in (0.01, 0.05, 0.10):
                tag = "sh" if sj == 0.1 else "od"
                out.append(Scenario(f"H-{tag}-{w:.0%}-{rps}", f"healthy, {noise}, {w:.0%} of "
                                    f"{rps} req/s", "errors", rps, w, healthy_runs, True, sj))
    out.append(Scenario("H-spikes", "healthy, shared 10× spikes (p 1/30), 5% of 100 req/s",
                        "errors", 100, 0.05, healthy_runs, True, spikes="shared"))
    out.append(Scenario("H-lat-5%-100", "healthy latency, 5% of 100 req/s", "latency", 100,
                        0.05, healthy_runs, True))
    out.append(Scenario("H-lat-1%-100", "healthy latency, 1% of 100 req/s", "latency", 100,
                        0.01, healthy_runs, True))
    for f in (1.5, 2.0, 3.0, 10.0):
        out.append(Scenario(f"E{f:g}", f"errors {f:g}×, 5% of 100 req/s", "errors", 100, 0.05,
                            bad_runs, False, err_factor=f, matches="H-sh-5%-100"))
    out.append(Scenario("E10-low", "errors 10×, 1% of 10 req/s", "errors", 10, 0.01, bad_runs,
                        False, err_factor=10.0, matches="H-sh-1%-10"))
    out.append(Scenario("E-spikes", "canary-only 10× spikes every 10th min, 5% of 100 req/s",
                        "errors", 100, 0.05, bad_runs, False, spikes="canary",
                        matches="H-sh-5%-100"))
    for f in (1.2, 1.6):
        out.append(Scenario(f"L{f:g}", f"p99 +{f - 1:.0%} (scale), 5% of 100 req/s", "latency",
                            100, 0.05, bad_runs, False, lat_factor=f, matches="H-lat-5%-100"))
    out.append(Scenario("N0", "no data: the canary gets 0 requests, 5% of 100 req/s", "errors",
                        100, 0.05, bad_runs, False, no_data=True))
    return tuple(out)


SCENARIOS = _scenarios()


# --------------------------------------------------------------------------- generator


@dataclass(frozen=True)
class Data:
    """One scenario's runs: per-minute increments, shape (runs, H) (buckets: (runs, H, 12))."""

    scenario: Scenario
    nc: np.ndarray  # canary requests
    nb: np.ndarray  # baseline requests
    ec: np.ndarray  # canary errors (5xx)
    eb: np.ndarray  # baseline errors
    nc15: np.ndarray  # canary requests in the minute's last scrape interval (irate)
    ec15: np.ndarray  # canary errors in it
    hc: np.ndarray | None  # canary latency, per-bucket (not cumulative) counts
    hb: np.ndarray | None

    def fingerprint(self) -> str:
        import hashlib

        h = hashlib.sha256()
        for a in (self.nc, self.nb, self.ec, self.eb, self.nc15, self.ec15, self.hc, self.hb):
            if a is not None:
                h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


def _phi(z: np.ndarray) -> np.ndarray:
    """The standard normal CDF (Abramowitz-Stegun 7.1.26, |error| < 1.5e-7): numpy has no erf."""
    x = np.abs(z) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                          + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-x * x)
    out: np.ndarray = np.where(z >= 0, 0.5 * (1.0 + erf), 0.5 * (1.0 - erf))
    return out


def _bucket_probs(mu: np.ndarray) -> np.ndarray:
    cdf = _phi((np.log(BOUNDS)[None, :] - mu[:, None]) / LAT_SIGMA)
    cdf = np.concatenate([np.zeros((len(mu), 1)), cdf, np.ones((len(mu), 1))], axis=1)
    p: np.ndarray = np.clip(np.diff(cdf, axis=1), 0.0, None)
    probs: np.ndarray = p / p.sum(axis=1, keepdims=True)
    return probs


def _lognormal_mean1(rng: np.random.Generator, sigma: float, n: int) -> np.ndarray:
    return rng.lognormal(-sigma * sigma / 2, sigma, n)


def _one_run(sc: Scenario, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Research note §5.2: shared load and burstiness, per-version jitter, binomial errors."""
    m = rng.lognormal(0.0, 0.2, H)  # shared traffic factor
    w = np.minimum(sc.weight * rng.lognormal(0.0, 0.05, H), 0.95)  # realised canary share
    nc = rng.poisson(SLICE * sc.rps * w * m)
    nb = rng.poisson(SLICE * sc.rps * (1 - w) * m)
    if sc.no_data:
        nc = np.zeros(H, dtype=np.int64)
    s = _lognormal_mean1(rng, 0.5, H)  # shared error burstiness
    spike = rng.random(H) < 1 / 30
    if sc.spikes == "shared":
        s = s * np.where(spike, 10.0, 1.0)
    jc = _lognormal_mean1(rng, sc.sigma_j, H)
    jb = _lognormal_mean1(rng, sc.sigma_j, H)
    fc = np.full(H, sc.err_factor)
    if sc.spikes == "canary":
        fc = np.where(np.arange(H) % 10 == 0, 10.0, 1.0)
    ec = rng.binomial(nc, np.minimum(P0 * s * jc * fc, 1.0))
    eb = rng.binomial(nb, np.minimum(P0 * s * jb, 1.0))
    # The minute's last scrape interval: a quarter of its requests, and the errors among them.
    nc15 = rng.binomial(nc, SCRAPE / SLICE)
    some = nc15 > 0
    ec15 = np.where(some, rng.hypergeometric(np.where(some, ec, 0), np.where(some, nc - ec, 1),
                                             np.maximum(nc15, 1) * some + (~some)), 0)
    if sc.metric != "latency":
        return nc, nb, ec, eb, nc15, ec15
    drift = rng.lognormal(0.0, 0.05, H)
    uc = rng.lognormal(0.0, 0.02, H)
    ub = rng.lognormal(0.0, 0.02, H)
    hc = rng.multinomial(nc, _bucket_probs(LAT_MU + np.log(drift * uc * sc.lat_factor)))
    hb = rng.multinomial(nb, _bucket_probs(LAT_MU + np.log(drift * ub)))
    return nc, nb, ec, eb, nc15, ec15, hc, hb


def generate(sc: Scenario, stream: int = MAIN, runs: int | None = None) -> Data:
    """All runs of one scenario; run i always comes from the same child seed."""
    index = next(i for i, s in enumerate(SCENARIOS) if s.key == sc.key)
    n = sc.runs if runs is None else runs
    parts = [_one_run(sc, np.random.default_rng(
        np.random.SeedSequence(MASTER_SEED, spawn_key=(stream, index, r)))) for r in range(n)]
    cols = [np.stack(c) for c in zip(*parts, strict=True)]
    for c in cols:
        c.setflags(write=False)
    hc, hb = (cols[6], cols[7]) if len(cols) == 8 else (None, None)
    nc, nb, ec, eb, nc15, ec15 = cols[:6]
    return Data(sc, nc, nb, ec, eb, nc15, ec15, hc, hb)


def histogram_quantile(h: np.ndarray, q: float = 0.99) -> np.ndarray:
    """Prometheus's bucketQuantile on per-bucket counts (..., 12): linear inside the bucket,
    the highest finite bound if the rank falls in +Inf, NaN without observations."""
    cum = np.cumsum(h, axis=-1).astype(float)
    total = cum[..., -1]
    rank = q * total
    b = np.argmax(cum[..., :-1] >= rank[..., None], axis=-1)
    none = ~(cum[..., :-1] >= rank[..., None]).any(axis=-1)
    upper = BOUNDS[b]
    lower = np.where(b > 0, BOUNDS[np.maximum(b - 1, 0)], 0.0)
    prev = np.where(b > 0, np.take_along_axis(cum, np.maximum(b - 1, 0)[..., None], -1)[..., 0],
                    0.0)
    here = np.take_along_axis(cum, b[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        v = lower + (upper - lower) * (rank - prev) / (here - prev)
    v = np.where(none, BOUNDS[-1], v)
    return np.where(total > 0, v, np.nan)


def slow_counts(d: Data) -> tuple[np.ndarray, np.ndarray]:
    """Latency as counts (research §2.3 ii): per minute, the requests above T, where T is the
    smallest bucket boundary whose cumulative share of the baseline's requests so far in the
    step reaches 0.99: the rule of relconsole.engine.counts.threshold_for, vectorised here
    (tests/test_bench_detection.py checks the two agree)."""
    assert d.hc is not None and d.hb is not None
    seen = np.cumsum(np.cumsum(d.hb, axis=1), axis=2)  # (runs, H, 12): over time, over le
    share = seen / np.maximum(seen[..., -1:], 1)
    reached = share[..., :-1] >= 0.99
    # The index of T among BOUNDS; where only +Inf reaches 0.99, the largest finite bound.
    t = np.where(reached.any(axis=-1), np.argmax(reached, axis=-1), len(BOUNDS) - 1)
    above_c = np.cumsum(d.hc[..., ::-1], axis=-1)[..., ::-1]  # requests in bucket >= i
    above_b = np.cumsum(d.hb[..., ::-1], axis=-1)[..., ::-1]
    return (np.take_along_axis(above_c, (t + 1)[..., None], -1)[..., 0],
            np.take_along_axis(above_b, (t + 1)[..., None], -1)[..., 0])


def bad_requests(d: Data) -> np.ndarray:
    """What a user of the canary feels: its errors, or its requests slower than 0.5 s."""
    if d.scenario.metric == "latency":
        assert d.hc is not None
        slow: np.ndarray = d.hc[..., SLOW_FROM:].sum(axis=-1)
        return slow
    return d.ec


# --------------------------------------------------------------------------- judges


@dataclass(frozen=True)
class Outcome:
    """Per run: the minute of the rollback/abort (0: none within the horizon) and whether
    the judge would have let the release go on (PASS / promote)."""

    at: np.ndarray
    passed: np.ndarray


def _rates(events: np.ndarray, total: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, events / np.maximum(total, 1), np.nan)


def gate_spec(**kw: object) -> GateSpec:
    """A gate as a config would write it (an unknown key is an error, not dropped)."""
    return GateSpec(**kw)  # type: ignore[arg-type]


def evidence_spec(metric: str, limit: str, alpha: float = ALPHA) -> GateSpec:
    if limit == "increase":
        return gate_spec(metric=metric, max_increase=INCREASE, alpha=alpha)
    if limit == "no-margin":
        return gate_spec(metric=metric, max_ratio=1.0, alpha=alpha)
    return gate_spec(metric=metric, max_ratio=RATIO, alpha=alpha)


def judge_evidence(d: Data, limit: str = "ratio", alpha: float = ALPHA) -> Outcome:
    """relconsole's evidence gate: `evidence.start/fold/judge` once a minute on the minute's
    counts (errors/requests, or requests above the baseline's p99 bucket/requests);
    rollback on the first FAIL."""
    if d.scenario.metric == "latency":
        xc, xb = slow_counts(d)
    else:
        xc, xb = d.ec, d.eb
    spec = evidence_spec(d.scenario.metric, limit, alpha)
    n = len(d.nc)
    at = np.zeros(n, dtype=np.int64)
    passed = np.zeros(n, dtype=bool)
    cols = [a.tolist() for a in (xc, d.nc, xb, d.nb)]
    for r, (ec, nc, eb, nb) in enumerate(zip(*cols, strict=True)):
        ev = evidence.start(spec)
        for k in range(H):
            ev = evidence.fold(ev, Tally(float(ec[k]), float(nc[k])),
                               Tally(float(eb[k]), float(nb[k])))
            verdict = evidence.judge(ev).verdict
            if verdict is Verdict.FAIL:
                at[r] = k + 1
                break
            if verdict is Verdict.PASS:
                passed[r] = True
    return Outcome(at, passed)


def old_spec(metric: str, s: float = 1.0) -> GateSpec:
    """config.example.yaml's gates as they were before issue 11, thresholds scaled by s."""
    if metric == "latency":
        return GateSpec(metric="latency_p99", max_ratio=1.0 + 0.3 * s, failure_limit=2)
    return GateSpec(metric="error_rate", max=0.01 * s, max_increase=0.005 * s, failure_limit=2)


def old_values(d: Data) -> tuple[np.ndarray, np.ndarray]:
    """What the old gates read each minute: the ratio of rates over [1m] (errors, with the
    `or vector(0)` workaround, NaN without requests) or histogram_quantile(0.99) per version."""
    if d.scenario.metric == "latency":
        assert d.hc is not None and d.hb is not None
        return histogram_quantile(d.hc), histogram_quantile(d.hb)
    return _rates(d.ec, d.nc), _rates(d.eb, d.nb)


def judge_old(d: Data, s: float = 1.0) -> Outcome:
    """relconsole's per-poll threshold gate as today: `gates.update` each minute, trips at
    `failure_limit` consecutive FAILs (GateStatus.tripped), pauses after inconclusive_limit
    consecutive INCONCLUSIVE polls (policy.decide); promote needs a PASS this step."""
    spec = old_spec(d.scenario.metric, s)
    c, b = old_values(d)
    n = len(c)
    at = np.zeros(n, dtype=np.int64)
    passed = np.zeros(n, dtype=bool)
    for r, (cr, br) in enumerate(zip(c.tolist(), b.tolist(), strict=True)):
        status = gates.initial_status(spec)
        for k in range(H):
            now = (k + 1) * SLICE
            pair = MetricPair(Reading(cr[k], now), Reading(br[k], now))
            status = gates.update(status, pair, now, 3 * SLICE)
            if status.tripped:
                at[r] = k + 1
                break
            if status.consecutive_inconclusive >= spec.inconclusive_limit:
                break  # paused: no rollback, no promotion
            if status.verdict is Verdict.PASS:
                passed[r] = True
    return Outcome(at, passed)


def judge_old_np(d: Data, s: float = 1.0) -> Outcome:
    """The same rule as `judge_old`, vectorised for the tuning grid (checked against it)."""
    spec = old_spec(d.scenario.metric, s)
    c, b = old_values(d)
    usable = np.isfinite(c) & np.isfinite(b)
    fail = np.zeros_like(usable)
    with np.errstate(invalid="ignore", divide="ignore"):
        if spec.max is not None:
            fail |= c > spec.max
        if spec.max_increase is not None:
            fail |= c - b > spec.max_increase
        if spec.max_ratio is not None:
            fail |= np.where(b > 0, c / np.where(b > 0, b, 1) > spec.max_ratio, c > 0)
    fail &= usable
    n = len(c)
    at = np.zeros(n, dtype=np.int64)
    passed = np.zeros(n, dtype=bool)
    alive = np.ones(n, dtype=bool)
    cons = np.zeros(n, dtype=np.int64)
    inc = np.zeros(n, dtype=np.int64)
    for k in range(H):
        cons = np.where(fail[:, k], cons + 1, np.where(usable[:, k], 0, cons))
        inc = np.where(usable[:, k], 0, inc + 1)
        trip = alive & (cons >= spec.failure_limit)
        at[trip] = k + 1
        alive &= ~trip & (inc < spec.inconclusive_limit)
        passed |= alive & usable[:, k] & ~fail[:, k]
    return Outcome(at, passed)


OK, FAILED, ERROR = 0, 1, 2


def _argo_limits(status: np.ndarray, failure_limit: int, consecutive_error_limit: int = 4
                 ) -> np.ndarray:
    """argo-rollouts analysis/analysis.go assessMetricFailureInconclusiveOrError: the run
    fails when Failed > failureLimit (cumulative), errors when ConsecutiveError >
    consecutiveErrorLimit; either aborts the rollout. Returns the measurement (1-based)."""
    n, k_max = status.shape
    at = np.zeros(n, dtype=np.int64)
    failed = np.zeros(n, dtype=np.int64)
    errors = np.zeros(n, dtype=np.int64)
    for k in range(k_max):
        failed += status[:, k] == FAILED
        errors = np.where(status[:, k] == ERROR, errors + 1, 0)
        stop = (at == 0) & ((failed > failure_limit) | (errors > consecutive_error_limit))
        at[stop] = k + 1
    return at


def _measure(value: np.ndarray, empty: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """utils/evaluate/evaluate.go: an empty result errors (`result[0]` of nothing), NaN fails
    the condition (NaN >= x is false), else the successCondition decides."""
    return np.where(empty, ERROR, np.where(np.isnan(value) | ~ok, FAILED, OK))


def judge_argo_default(d: Data, s: float = 1.0) -> Outcome:
    """Argo Rollouts with its defaults (argoproj/argo-rollouts @ 9f8d111d: utils/defaults/
    defaults.go failureLimit 0, consecutiveErrorLimit 4; utils/evaluate/evaluate.go;
    analysis/analysis.go): interval 1m, `result[0] >= 0.99` on the canary's success ratio
    over [1m] (or `result[0] <= 0.5` on histogram_quantile(0.99, ...[1m])). The canary's
    series is empty until its first request (NaN once it exists and a minute is idle).
    Promotes when the steps' time runs out without an abort."""
    empty = np.cumsum(d.nc, axis=1) == 0
    if d.scenario.metric == "latency":
        assert d.hc is not None
        v = histogram_quantile(d.hc)
        with np.errstate(invalid="ignore"):
            ok = v <= 0.5 * s
    else:
        v = _rates(d.nc - d.ec, d.nc)
        with np.errstate(invalid="ignore"):
            ok = v >= 1.0 - 0.01 * s
    at = _argo_limits(_measure(v, empty, ok), failure_limit=0)
    return Outcome(at, at == 0)


def judge_argo_docs(d: Data, s: float = 1.0, irate: bool = True) -> Outcome:
    """Argo's documented example (docs/features/analysis.md, docs/analysis/prometheus.md @
    9f8d111d): interval 5m, `successCondition: result[0] >= 0.95`, failureLimit 3, so it
    aborts on the 4th failed measurement (Failed > failureLimit). The query is a ratio of
    `irate(...[5m])`: irate sees only the last two samples, i.e. the last scrape interval
    (15 s) before the measurement; the `rate(...[5m])` variant sees the whole 5 minutes.
    Latency (not in the docs): the same interval and limit on histogram_quantile(0.99,
    rate[5m]) <= 0.5 s."""
    m = H // 5
    last = np.arange(1, m + 1) * 5 - 1  # the minute each measurement ends
    empty = (np.cumsum(d.nc, axis=1) == 0)[:, last]
    if d.scenario.metric == "latency":
        assert d.hc is not None
        h5 = d.hc.reshape(len(d.hc), m, 5, NBUCKETS).sum(axis=2)
        v = histogram_quantile(h5)
        with np.errstate(invalid="ignore"):
            ok = v <= 0.5 * s
    else:
        if irate:
            n, e = d.nc15[:, last], d.ec15[:, last]
        else:
            n = d.nc.reshape(len(d.nc), m, 5).sum(axis=2)
            e = d.ec.reshape(len(d.ec), m, 5).sum(axis=2)
        v = _rates(n - e, n)
        with np.errstate(invalid="ignore"):
            ok = v >= 1.0 - 0.05 * s
    k = _argo_limits(_measure(v, empty, ok), failure_limit=3)
    return Outcome(k * 5, k == 0)


def judge_flagger(d: Data, s: float = 1.0) -> Outcome:
    """Flagger (fluxcd/flagger @ 15bd6ad5: pkg/controller/scheduler.go FailedChecks >=
    threshold, cumulative, reset only by a new analysis; scheduler_metrics.go and
    pkg/metrics/providers/prometheus.go: no values / NaN -> ErrNoValuesFound -> a failed
    check; pkg/metrics/observers/istio.go the built-in queries): interval 1m, threshold 5,
    request-success-rate >= 99 % over [1m], request-duration histogram_quantile(0.99) <= 500
    ms. The canary only; no baseline. Promotes when the run ends without a rollback."""
    if d.scenario.metric == "latency":
        assert d.hc is not None
        v = histogram_quantile(d.hc) * 1000.0
        with np.errstate(invalid="ignore"):
            bad = np.isnan(v) | (v > 500.0 * s)
    else:
        v = 100.0 * _rates(d.nc - d.ec, d.nc)
        with np.errstate(invalid="ignore"):
            bad = np.isnan(v) | (v < 100.0 - 1.0 * s)
    failed = np.cumsum(bad, axis=1)
    hit = failed >= 5
    at = np.where(hit.any(axis=1), np.argmax(hit, axis=1) + 1, 0)
    return Outcome(at, at == 0)


def _ranks_z(conf: float) -> float:
    return statistics.NormalDist().inv_cdf(1.0 - (1.0 - conf) / 2.0)


def mann_whitney_lower(x: np.ndarray, y: np.ndarray, confs: Sequence[float]
                       ) -> tuple[str, list[float], float, float]:
    """Kayenta's MannWhitneyClassifier preliminaries and MannWhitney.mannWhitneyUTest's
    Hodges-Lehmann interval (a port of R's wilcox.test(conf.int=TRUE), normal approximation
    with continuity correction). The roots of z(mu) = +-q sit at pairwise differences
    x_i - y_j, so the lower bound is the order statistic of those differences where the
    rank sum crosses mn/2 + 0.5 + q*sigma (sigma tie-corrected over the two samples; the
    Brent root of the Scala code lands on the same step). Returns (status, lower bound
    per conf, estimate, mean ratio); status "pass"/"nodata"/"error" short-cuts."""
    if x.size == 0 or y.size == 0:
        return "nodata", [], 0.0, math.nan
    if x.size == y.size and np.array_equal(np.sort(x), np.sort(y)):
        return "pass", [], 0.0, math.nan
    both = np.concatenate([x, y])
    if np.all(both == both[0]):
        return "pass", [], 0.0, math.nan
    if np.all(x == x[0]) and np.all(y == y[0]):  # both constant: Kayenta adds tiny noise
        noise = np.random.default_rng(0)
        x = x + noise.normal(0.0, abs(x[0]) * 1e-5 or 1e-12, x.size)
        y = y + noise.normal(0.0, abs(y[0]) * 1e-5 or 1e-12, y.size)
    m, n = x.size, y.size
    diffs = np.sort(np.subtract.outer(x, y).ravel())
    ties = sum(float(np.sum(c.astype(float) ** 3 - c)) for c in
               (np.unique(x, return_counts=True)[1], np.unique(y, return_counts=True)[1]))
    var = m * n / 12.0 * ((m + n + 1) - ties / ((m + n) * (m + n - 1)))
    if var <= 0:
        return "error", [], 0.0, math.nan
    sigma = math.sqrt(var)
    total = diffs.size
    lows = []
    for conf in confs:
        target = total / 2.0 + 0.5 + _ranks_z(conf) * sigma
        i = min(max(math.floor(total - target) + 1, 1), total)
        lows.append(float(diffs[i - 1]))
    mx, my = float(np.mean(x)), float(np.mean(y))
    ratio = mx / my if mx != 0 and my != 0 else math.nan
    return "ok", lows, float(np.median(diffs)), ratio


def judge_kayenta(d: Data, confs: Sequence[float] = (0.98,)) -> list[Outcome]:
    """Kayenta-like (spinnaker/kayenta @ a69573be: NetflixACAJudge.scala passes tolerance
    0.25 and confLevel 0.98 to MannWhitneyClassifier.scala; MannWhitney.scala the test and
    interval; WeightedSumScorer.scala, ThresholdScoreClassifier.scala the score;
    standalone MonitorCanaryTask.java ends the run when an interim score <= marginal 75,
    GenerateCanaryAnalysisResultTask.java needs the last score >= pass 95). Per-step (60 s)
    points per version: the error ratio (nanStrategy replace: an idle minute is 0) or the
    per-step histogram_quantile(0.99) (remove). direction increase: High when the CI's lower
    bound > 0.25 x |estimate| and mean ratio >= allowedIncrease 1.0 (skipped if NaN). One
    metric, so the score is 100 (Pass, Error) or 0 (High, Nodata). Judged every 10 minutes
    on a growing window; returns one Outcome per confLevel."""
    if d.scenario.metric == "latency":
        assert d.hc is not None and d.hb is not None
        xs, ys = histogram_quantile(d.hc), histogram_quantile(d.hb)
    else:
        xs = np.where(d.nc > 0, _rates(d.ec, d.nc), 0.0)
        ys = np.where(d.nb > 0, _rates(d.eb, d.nb), 0.0)
    n = len(xs)
    at = np.zeros((len(confs), n), dtype=np.int64)
    for r in range(n):
        for t in range(10, H + 1, 10):
            x, y = xs[r, :t], ys[r, :t]
            x, y = x[np.isfinite(x)], y[np.isfinite(y)]
            status, lows, est, ratio = mann_whitney_lower(x, y, confs)
            for c in range(len(confs)):
                if at[c, r]:
                    continue
                high = status == "nodata" or (
                    status == "ok" and lows[c] > 0.25 * abs(est)
                    and (math.isnan(ratio) or ratio >= 1.0))
                if high:
                    at[c, r] = t
            if at[:, r].all():
                break
    return [Outcome(a, a == 0) for a in at]


@dataclass(frozen=True)
class Judge:
    key: str
    title: str
    interval: int  # minutes per poll
    metrics: tuple[str, ...]
    grid: tuple[float, ...]  # tuning values, from aggressive to conservative; () = not tuned
    default: int  # index of the documented default in grid
    run: Callable[[Data, Sequence[float]], list[Outcome]]


def _each(f: Callable[[Data, float], Outcome]) -> Callable[[Data, Sequence[float]], list[Outcome]]:
    return lambda d, params: [f(d, p) for p in params]


BOTH = ("errors", "latency")
JUDGES = (
    Judge("evidence", f"relconsole evidence ×{RATIO:g}, α {ALPHA:g}", 1, BOTH, (), 0,
          lambda d, _p: [judge_evidence(d, "ratio")]),
    Judge("evidence+", f"relconsole evidence +{INCREASE:.2%}, α {ALPHA:g}", 1, ("errors",), (),
          0, lambda d, _p: [judge_evidence(d, "increase")]),
    # Not the gate the issue names: the same test with no tolerated margin (H0: ratio <= 1),
    # to show what the ×1.5 margin costs in delay.
    Judge("evidence1", f"relconsole evidence ×1, α {ALPHA:g}", 1, BOTH, (), 0,
          lambda d, _p: [judge_evidence(d, "no-margin")]),
    # The price of anytime validity is log(1/alpha): the same test at alpha 0.05, to show
    # what a 2x regression costs at each confidence.
    Judge("evidence1-05", f"relconsole evidence ×1, α {ALPHA_LOOSE:g}", 1, BOTH, (), 0,
          lambda d, _p: [judge_evidence(d, "no-margin", ALPHA_LOOSE)]),
    Judge("old", "relconsole old thresholds (fl 2)", 1, BOTH, GRID, DEFAULT_S,
          _each(judge_old_np)),
    Judge("argo", "Argo default (1m, fl 0)", 1, BOTH, GRID, DEFAULT_S, _each(judge_argo_default)),
    Judge("argo-docs", "Argo docs (5m irate, fl 3)", 5, ("errors",), GRID, DEFAULT_S,
          _each(judge_argo_docs)),
    Judge("argo-docs-rate", "Argo docs (5m rate, fl 3)", 5, BOTH, GRID, DEFAULT_S,
          _each(lambda d, s: judge_argo_docs(d, s, irate=False))),
    Judge("flagger", "Flagger (1m, threshold 5)", 1, BOTH, GRID, DEFAULT_S, _each(judge_flagger)),
    Judge("kayenta", "Kayenta-like (MW 98 %, 10m)", 10, BOTH, CONFS, DEFAULT_CONF,
          judge_kayenta),
)
JUDGE = {j.key: j for j in JUDGES}


def param_text(j: Judge, metric: str, i: int) -> str:
    """The tuned judge's threshold, in its own terms."""
    p = j.grid[i]
    lat = metric == "latency"
    if j.key == "kayenta":
        return f"conf {p:g}"
    if j.key == "old":
        return f"×≤{1 + 0.3 * p:.2f}" if lat else f"≤{p:.2%} Δ≤{0.5 * p:.2%}"
    if j.key == "flagger":
        return f"p99≤{500 * p:.0f}ms" if lat else f"succ≥{100 - p:.2f}%"
    if lat:
        return f"p99≤{0.5 * p:.3g}s"
    limit = 0.05 if j.key.startswith("argo-docs") else 0.01
    return f"succ≥{1 - limit * p:.2%}"


# --------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class TaskResult:
    stream: int
    key: str
    outcomes: dict[str, list[Outcome]]  # per judge: one Outcome per grid value (or one)
    requests: np.ndarray  # canary requests, cumulative per minute (runs, H)
    bad: np.ndarray  # canary bad requests, cumulative per minute (runs, H)
    old_real: Outcome | None  # judge_old through gates.update, at the defaults
    fingerprint: str
    seconds: float


def run_task(stream: int, key: str, grid: bool) -> TaskResult:
    started = time.perf_counter()
    sc = next(s for s in SCENARIOS if s.key == key)
    d = generate(sc, stream)
    outcomes: dict[str, list[Outcome]] = {}
    for j in JUDGES:
        if sc.metric not in j.metrics:
            continue
        if stream == CALIBRATION and not j.grid:
            continue  # only threshold judges are tuned
        params = j.grid if (grid and j.grid) else (j.grid[j.default],) if j.grid else ()
        outcomes[j.key] = j.run(d, params)
    old_real = judge_old(d) if stream == MAIN else None
    return TaskResult(stream, key, outcomes, np.cumsum(d.nc, axis=1),
                      np.cumsum(bad_requests(d), axis=1), old_real, d.fingerprint(),
                      time.perf_counter() - started)


# --------------------------------------------------------------------------- statistics


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Delay:
    detected: float
    median_polls: float
    p95_polls: float
    median_min: float
    p95_min: float
    requests: float
    bad: float
    censored_median: bool


def delay(o: Outcome, interval: int, requests: np.ndarray, bad: np.ndarray) -> Delay:
    """Missed runs count as horizon + 1 poll (censored) for the median and p95."""
    polls_h = H // interval
    polls = np.where(o.at > 0, o.at // interval, polls_h + 1).astype(float)
    idx = np.where(o.at > 0, o.at, H) - 1
    rows = np.arange(len(o.at))
    med = float(np.median(polls))
    return Delay(float(np.mean(o.at > 0)), med, float(np.percentile(polls, 95)),
                 med * interval, float(np.percentile(polls, 95)) * interval,
                 float(np.mean(requests[rows, idx])), float(np.mean(bad[rows, idx])),
                 med > polls_h)


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def fr_text(o: Outcome) -> str:
    k, n = int(np.sum(o.at > 0)), len(o.at)
    lo, hi = wilson(k, n)
    return f"{100 * k / n:.1f} ({100 * lo:.1f}–{100 * hi:.1f})"


def polls_text(x: float, interval: int, censored: bool) -> str:
    if censored:
        return f">{H // interval}"
    return f"{x:g}"


# --------------------------------------------------------------------------- report


def main(workers: int = 2) -> None:
    started = time.perf_counter()
    by_key = {s.key: s for s in SCENARIOS}
    matching = sorted({s.matches for s in SCENARIOS if s.matches})
    tasks = [(MAIN, s.key, (not s.healthy) or s.key in matching) for s in SCENARIOS]
    tasks += [(CALIBRATION, k, True) for k in matching]
    tasks.sort(key=lambda t: -by_key[t[1]].runs)  # longest first
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(run_task, *t) for t in tasks]
        results = {(r.stream, r.key): r for r in (f.result() for f in futures)}
    main_res = {k: v for (s, k), v in results.items() if s == MAIN}
    cal_res = {k: v for (s, k), v in results.items() if s == CALIBRATION}

    def default(res: TaskResult, jk: str) -> Outcome:
        j = JUDGE[jk]
        outs = res.outcomes[jk]
        return outs[j.default] if len(outs) > 1 else outs[0]

    lines: list[str] = []
    out = lines.append
    n_runs = sum(s.runs for s in SCENARIOS) + sum(by_key[k].runs for k in matching)
    out("# Detection benchmark (bench/detection.py)")
    out("")
    out(f"Seed {MASTER_SEED}; {n_runs:,} runs ({len(SCENARIOS)} scenarios + "
        f"{len(matching)} tuning scenarios on a separate stream); horizon {H} min; "
        f"baseline error rate {P0:.1%}; evidence module: {EVIDENCE_SOURCE}.")
    out(f"relconsole evidence gate: max_ratio {RATIO:g} (errors; latency: requests above the "
        f"baseline's p99 bucket), alpha {ALPHA:g}, judged every minute; "
        f"`max_increase` variant {INCREASE:.2%}. Polls: relconsole, Argo default and "
        "Flagger 1 min, Argo docs 5 min, Kayenta-like 10 min.")
    if getattr(evidence, "TEMPER", False):
        out("Overdispersion: the evidence module divides its log e-values by the dispersion "
            "it estimates from the step's own polls (see relconsole/engine/evidence.py).")
    out("")
    # Every judge read the same data: the old gate through gates.update and its port agree.
    agree = all(np.array_equal(r.old_real.at, default(r, "old").at)
                for r in main_res.values() if r.old_real is not None)

    judges_cols = [j for j in JUDGES]
    out("## False rollbacks on healthy runs, % (Wilson 95 %)")
    out("")
    out("| scenario | runs | " + " | ".join(j.title for j in judges_cols) + " |")
    out("|---|---|" + "---|" * len(judges_cols))
    for s in SCENARIOS:
        if not s.healthy:
            continue
        res = main_res[s.key]
        cells = [fr_text(default(res, j.key)) if j.key in res.outcomes else "—"
                 for j in judges_cols]
        out(f"| {s.title} | {s.runs} | " + " | ".join(cells) + " |")
    out("")

    out("## Regressions, documented defaults")
    out("")
    out("Delay: median / p95 in the judge's polls, and in minutes (missed runs censored at "
        "horizon + 1 poll). Served: mean canary requests up to the rollback (or the horizon), "
        "and the bad ones among them (errors, or slower than 0.5 s).")
    out("")
    out("| scenario | judge | detected | polls med / p95 | min med / p95 | served | bad |")
    out("|---|---|---|---|---|---|---|")
    regressions = [s for s in SCENARIOS if not s.healthy and not s.no_data]
    for s in regressions:
        res = main_res[s.key]
        for j in judges_cols:
            if j.key not in res.outcomes:
                continue
            dl = delay(default(res, j.key), j.interval, res.requests, res.bad)
            out(f"| {s.title} | {j.title} | {pct(dl.detected)} | "
                f"{polls_text(dl.median_polls, j.interval, dl.censored_median)} / "
                f"{dl.p95_polls:g} | "
                f"{polls_text(dl.median_min, 1, dl.censored_median)} / {dl.p95_min:g} | "
                f"{dl.requests:,.0f} | {dl.bad:,.1f} |")
    out("")

    # Tuning: each threshold judge's most aggressive value whose false-rollback rate on the
    # calibration stream of the matching healthy scenario is <= relconsole's rate there.
    target: dict[str, float] = {}
    for k in matching:
        fr = float(np.mean(main_res[k].outcomes["evidence"][0].at > 0))
        target[k] = max(fr, 1.0 / by_key[k].runs)
    tuned: dict[tuple[str, str], tuple[int, float, bool]] = {}
    for k in matching:
        for jk, outs in cal_res[k].outcomes.items():
            rates = [float(np.mean(o.at > 0)) for o in outs]
            ok = [i for i, r in enumerate(rates) if r <= target[k] + 1e-12]
            i = ok[0] if ok else len(rates) - 1
            tuned[(k, jk)] = (i, rates[i], bool(ok))
    out("## At equal false-rollback rate")
    out("")
    out("Each threshold judge tuned on a separate seed (the calibration stream, "
        f"{by_key[matching[0]].runs} healthy runs of the matching scenario) to the most "
        "aggressive setting whose false-rollback rate is at most relconsole's on the same "
        "healthy scenario (main stream; at least 1 run in the calibration count). FR cal / "
        "main: its false-rollback rate on the calibration and main streams.")
    out("")
    out("| scenario | judge | tuned to | FR cal / main | detected | polls med / p95 | "
        "min med / p95 | served | bad |")
    out("|---|---|---|---|---|---|---|---|---|")
    wins: list[str] = []
    shortfalls: list[str] = []
    for s in regressions:
        res = main_res[s.key]
        ref = delay(res.outcomes["evidence"][0], 1, res.requests, res.bad)
        ref_fr = float(np.mean(main_res[s.matches].outcomes["evidence"][0].at > 0))
        out(f"| {s.title} | {JUDGE['evidence'].title} | target {pct(target[s.matches])} | "
            f"— / {pct(ref_fr)} | {pct(ref.detected)} | "
            f"{polls_text(ref.median_polls, 1, ref.censored_median)} / {ref.p95_polls:g} | "
            f"{polls_text(ref.median_min, 1, ref.censored_median)} / {ref.p95_min:g} | "
            f"{ref.requests:,.0f} | {ref.bad:,.1f} |")
        for j in judges_cols:
            if not j.grid or j.key not in res.outcomes:
                continue
            i, cal_fr, reached = tuned[(s.matches, j.key)]
            main_fr = float(np.mean(main_res[s.matches].outcomes[j.key][i].at > 0))
            dl = delay(res.outcomes[j.key][i], j.interval, res.requests, res.bad)
            note = "" if reached else " (target not reached)"
            out(f"| {s.title} | {j.title} | {param_text(j, s.metric, i)}{note} | "
                f"{pct(cal_fr)} / {pct(main_fr)} | {pct(dl.detected)} | "
                f"{polls_text(dl.median_polls, j.interval, dl.censored_median)} / "
                f"{dl.p95_polls:g} | "
                f"{polls_text(dl.median_min, 1, dl.censored_median)} / {dl.p95_min:g} | "
                f"{dl.requests:,.0f} | {dl.bad:,.1f} |")
            if j.key == "old":
                continue  # not an emulated anchor
            # Faster: a smaller median delay in minutes, or the same median and a smaller p95.
            faster = (ref.median_min, ref.p95_min) < (dl.median_min, dl.p95_min)
            if faster:
                wins.append(f"{s.key}/{j.key}")
            else:
                why = []
                if (ref.median_min, ref.p95_min) == (dl.median_min, dl.p95_min):
                    why.append("a tie: both decide at the same polls (median and p95)")
                if s.err_factor and s.err_factor <= RATIO and s.metric == "errors" \
                        and not s.spikes:
                    why.append(f"a {s.err_factor:g}× regression is within the gate's own "
                               f"limit (max_ratio {RATIO:g}), so it is not meant to fail")
                if main_fr > ref_fr:
                    why.append(f"tuned {j.title} still has more false rollbacks on the main "
                               f"stream ({pct(main_fr)} vs {pct(ref_fr)})")
                if not reached:
                    why.append("its tuning could not reach the target rate")
                plain = delay(res.outcomes["evidence1"][0], 1, res.requests, res.bad)
                within = s.metric == "errors" and not s.spikes and s.err_factor <= RATIO
                if not within and (plain.median_min, plain.p95_min) < (dl.median_min,
                                                                       dl.p95_min):
                    why.append(f"the ×{RATIO:g} margin: the gate fails only once the data "
                               f"show a ratio above {RATIO:g}, the anchor any excess; the "
                               f"same test with no margin (max_ratio 1) takes "
                               f"{plain.median_min:g} / {plain.p95_min:g} min")
                if len(why) == 0:
                    why.append("the evidence gate needs enough canary events to show the "
                               f"ratio is above {RATIO:g} at α {ALPHA:g}")
                shortfalls.append(f"{s.title} vs {j.title}: relconsole "
                                  f"{ref.median_min:g} / {ref.p95_min:g} min, anchor "
                                  f"{dl.median_min:g} / {dl.p95_min:g} min — "
                                  + "; ".join(why))
    out("")

    out(f"## No data (the canary gets 0 requests, {by_key['N0'].runs} runs)")
    out("")
    out("| judge | PASS / promote | rollback / abort | hold |")
    out("|---|---|---|---|")
    nd = main_res["N0"]
    nodata_pass: dict[str, float] = {}
    for j in judges_cols:
        if j.key not in nd.outcomes:
            continue
        o = default(nd, j.key)
        if j.key == "old" and nd.old_real is not None:
            o = nd.old_real
        rb = float(np.mean(o.at > 0))
        ps = float(np.mean(o.passed & (o.at == 0)))
        nodata_pass[j.key] = ps
        out(f"| {j.title} | {pct(ps)} | {pct(rb)} | {pct(1 - rb - ps)} |")
    out("")

    out("## Goals")
    out("")

    def goal(ok: bool, text: str) -> None:
        out(f"- {'HOLDS' if ok else 'FAILS'}: {text}")

    worst = max((float(np.mean(main_res[s.key].outcomes["evidence"][0].at > 0)), s.title)
                for s in SCENARIOS if s.healthy)
    goal(worst[0] <= ALPHA, f"false rollbacks ≤ α = {ALPHA:g} on every healthy scenario "
         f"(worst: {pct(worst[0])}, {worst[1]})")
    for key, bound in (("E2", 8), ("E10", 2), ("L1.6", 6)):
        res = main_res[key]
        dl = delay(res.outcomes["evidence"][0], 1, res.requests, res.bad)
        goal(dl.median_polls <= bound, f"{by_key[key].title}: median {dl.median_polls:g} polls "
             f"(≤ {bound})")
    goal(not shortfalls, f"at equal false-rollback rate, faster than every emulated anchor on "
         f"every regression scenario ({len(wins)} of {len(wins) + len(shortfalls)} pairs)")
    for text in shortfalls:
        out(f"  - not faster: {text}")
    for jk, what in (("evidence1", f"with no margin (max_ratio 1), α {ALPHA:g}"),
                     ("evidence1-05", f"with no margin (max_ratio 1), α {ALPHA_LOOSE:g}")):
        for key in ("E2", "L1.2"):
            res = main_res[key]
            dl = delay(res.outcomes[jk][0], 1, res.requests, res.bad)
            out(f"  - for comparison, {what}: {by_key[key].title}: median "
                f"{polls_text(dl.median_polls, 1, dl.censored_median)} polls; its worst "
                "healthy false-rollback rate: " + pct(max(float(np.mean(
                    main_res[s.key].outcomes[jk][0].at > 0)) for s in SCENARIOS
                    if s.healthy)))
    # The same goals for the gate without a margin at alpha 0.05: an anytime-valid test
    # pays log(1/alpha) in evidence (4.6 at 0.01, 3.0 at 0.05), and at 300 canary requests
    # a minute and 0.5 % baseline errors a 2x regression brings about 0.6 a poll, so no
    # such test reaches 8 polls at 0.01 (the research note's pilot: 10.5).
    loose = max((float(np.mean(main_res[s.key].outcomes["evidence1-05"][0].at > 0)), s.title)
                for s in SCENARIOS if s.healthy)
    res = main_res["E2"]
    dl = delay(res.outcomes["evidence1-05"][0], 1, res.requests, res.bad)
    goal(loose[0] <= ALPHA_LOOSE and dl.median_polls <= 8,
         f"with max_ratio 1 and α {ALPHA_LOOSE:g}: false rollbacks ≤ {ALPHA_LOOSE:g} on every "
         f"healthy scenario (worst: {pct(loose[0])}, {loose[1]}) and "
         f"{by_key['E2'].title} in a median {dl.median_polls:g} polls (≤ 8)")
    goal(nodata_pass.get("evidence", 1.0) == 0.0, "no data never passes relconsole's evidence "
         f"gate ({pct(nodata_pass.get('evidence', 1.0))})")
    out("")
    fingerprints_ok = len({r.fingerprint for r in results.values()}) == len(results)
    out(f"Checks: the old gate through gates.update and its vectorised port agree on every "
        f"main-stream run: {'yes' if agree else 'NO'}; every scenario/stream has its own data: "
        f"{'yes' if fingerprints_ok else 'NO'}.")
    out("")
    out("Emulations follow the code paths named in the research note (§1, §3.3, §3.4, §7): "
        "Argo Rollouts @ 9f8d111d (utils/evaluate/evaluate.go, analysis/analysis.go, "
        "utils/defaults/defaults.go, docs/features/analysis.md); Flagger @ 15bd6ad5 "
        "(pkg/controller/scheduler.go, scheduler_metrics.go, pkg/metrics/providers/"
        "prometheus.go, pkg/metrics/observers/istio.go); Kayenta @ a69573be "
        "(NetflixACAJudge.scala, MannWhitneyClassifier.scala, MannWhitney.scala, "
        "WeightedSumScorer.scala, MonitorCanaryTask.java). Each judge's docstring in "
        "bench/detection.py says which.")
    elapsed = time.perf_counter() - started
    cpu = sum(r.seconds for r in results.values())
    out(f"Run time: {elapsed:.0f} s wall ({cpu:.0f} s of work on {workers} workers).")
    text = "\n".join(lines) + "\n"
    print(text)
    target_file = ROOT / "bench" / "results" / "detection.md"
    target_file.parent.mkdir(parents=True, exist_ok=True)
    target_file.write_text(text, encoding="utf-8")
    print(f"(written to {target_file.relative_to(ROOT)})")


if __name__ == "__main__":
    # `--scale 0.1`: a tenth of the runs, for a quick look while changing this file.
    if "--scale" in sys.argv:
        f = float(sys.argv[sys.argv.index("--scale") + 1])
        SCENARIOS = _scenarios(max(10, int(1000 * f)), max(10, int(200 * f)))
    main()
