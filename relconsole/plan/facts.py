"""What the providers say now, for the plan: current traffic and its usual peak, the
Rollout's own steps, and the release's flags.

Each fact is best effort: a provider that cannot say leaves the fact unknown with the
reason, and the plan says "unknown (…)" rather than guessing. Nothing here changes
anything anywhere: every call is a read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

from relconsole.config.rules import PLAN_OWNERS
from relconsole.model import ControllerState, Flag, MetricPair, MetricSpec, ReleasePlan

if TYPE_CHECKING:
    from relconsole.assembly import Providers
    from relconsole.config import LoadedConfig

T = TypeVar("T")

# The window the usual peak is taken over, and the rate window of "requests per second".
PEAK_WINDOW = "7d"
RATE_WINDOW = "5m"
# The simulator answers by metric name (it keeps request rates per version); Prometheus
# by the query.
TRAFFIC_METRIC = "request_rate"
PEAK_METRIC = "request_rate_peak"


@dataclass(frozen=True)
class LiveFacts:
    traffic_now: float | None = None  # requests per second, both versions together
    traffic_why: str = "no metrics provider"  # why it is unknown
    traffic_peak: float | None = None  # the highest hourly rate of PEAK_WINDOW
    peak_why: str = "no metrics provider"
    controller: ControllerState | None = None  # the Rollout, where it owns the steps
    controller_why: str = ""  # why the Rollout could not be read
    flags: tuple[Flag, ...] | None = None  # every flag of the flag provider
    flags_why: str = "no flag provider"


def requests_selector(plan: ReleasePlan) -> str:
    """A counter of every request of a version (with `{{version}}`), from the first metric
    judged on counts of events among requests; '' when no metric names one."""
    for metric in plan.metrics:
        if metric.counts is not None and metric.counts.total and not metric.counts.histogram:
            return metric.counts.total
    return ""


def traffic_specs(plan: ReleasePlan) -> tuple[MetricSpec, MetricSpec] | None:
    """The two queries for requests per second now and at their usual peak."""
    total = requests_selector(plan)
    if not total:
        return None
    now = f"sum(rate({total}[{RATE_WINDOW}]))"
    peak = f"max_over_time({now}[{PEAK_WINDOW}:1h])"
    return (MetricSpec(TRAFFIC_METRIC, query=now, unit="req/s"),
            MetricSpec(PEAK_METRIC, query=peak, unit="req/s"))


async def _timed(call: Awaitable[T], timeout: float) -> T:
    return await asyncio.wait_for(call, timeout)


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__


def _requests(pair: MetricPair | None) -> tuple[float | None, str]:
    """Requests per second of both versions, or why not known."""
    if pair is None:
        return None, "no answer"
    if not pair.baseline.usable or pair.baseline.value is None:
        return None, pair.baseline.problem or "no data"
    # The canary takes no traffic before the first step: no series is 0 there.
    canary = pair.canary.value if pair.canary.usable else None
    return pair.baseline.value + (canary or 0.0), ""


async def gather(cfg: LoadedConfig, providers: Providers) -> LiveFacts:
    """Read what the plan can use; never raises for a provider that cannot answer."""
    plan = cfg.plan
    timeout = plan.call_timeout
    facts = LiveFacts()
    if providers.metrics is not None:
        specs = traffic_specs(plan)
        kind = cfg.providers.get("metrics", {}).get("type")
        if specs is None and kind == "sim":
            # The simulator knows its request rates by name; it keeps no history.
            specs = (MetricSpec(TRAFFIC_METRIC, unit="req/s"),
                     MetricSpec(PEAK_METRIC, unit="req/s"))
        if specs is None:
            why = ("no metric counts requests (give a metric counts: {events, total}, or "
                   "a query that is a ratio of request counters)")
            facts = replace(facts, traffic_why=why, peak_why=why)
        else:
            try:
                pairs = await _timed(providers.metrics.sample(list(specs)), timeout)
            except Exception as exc:  # a metrics source that cannot answer: unknown
                facts = replace(facts, traffic_why=_why(exc), peak_why=_why(exc))
            else:
                now, now_why = _requests(pairs.get(specs[0].name))
                peak, peak_why = _requests(pairs.get(specs[1].name))
                if peak is None and kind == "sim":
                    peak_why = "the simulator keeps no traffic history"
                facts = replace(facts, traffic_now=now, traffic_why=now_why,
                                traffic_peak=peak, peak_why=peak_why)
    traffic_type = cfg.providers.get("traffic", {}).get("type")
    if not plan.steps and traffic_type in PLAN_OWNERS:
        try:
            state = await _timed(providers.traffic.read(), timeout)
        except Exception as exc:  # said in the plan: "steps: from the Rollout (not reachable)"
            facts = replace(facts, controller_why=_why(exc))
        else:
            if state.controller is None:
                facts = replace(facts, controller_why=f"{traffic_type} reported no Rollout")
            else:
                facts = replace(facts, controller=state.controller)
    if providers.flags is not None:
        try:
            listed = tuple(await _timed(providers.flags.list_flags(), timeout))
            facts = replace(facts, flags=listed, flags_why="")
        except Exception as exc:
            facts = replace(facts, flags_why=_why(exc))
    return facts
