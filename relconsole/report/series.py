"""The metric series of a past release window, from a metrics provider that can give one.

A provider offers a past window with `history_between(metrics, start, end, step)`
(Prometheus's range query; the simulator's replay of the weights it had). One that does
not, or that fails, gives no charts and a note saying why: the report is still made from
the journal, which is the record that matters.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from typing import Any

from relconsole.model import MetricPair, ReleasePlan
from relconsole.report.model import Record, chart_metrics, window

# A chart wider than this many points shows nothing more on a page; a longer release is
# fetched at a coarser step. A short one at one second, so a jump shows where it happened.
MAX_POINTS = 400


def wanted_metrics(plan: ReleasePlan) -> list[str]:
    """The charted metrics and the gated ones (a fault's first bad value is looked for
    in the series of the gate that failed)."""
    names = [name for name, _title in chart_metrics(plan)]
    names += [g.metric for g in plan.gates if g.metric not in names]
    return names


async def fetch_series(
    provider: Any, plan: ReleasePlan, records: Sequence[Record]
) -> tuple[Mapping[str, Sequence[MetricPair]], str]:
    """(series by metric name, a note when there are none); never raises."""
    span = window(records, plan.poll_interval)
    if span is None:
        return {}, ""
    if provider is None:
        return {}, "no metrics provider is configured: no charts"
    between = getattr(provider, "history_between", None)
    if between is None:
        return {}, (f"the {getattr(provider, 'name', 'configured')} metrics provider cannot "
                    "read a past window: no charts")
    names = set(wanted_metrics(plan))
    specs = [m for m in plan.metrics if m.name in names]
    if not specs:
        return {}, "no metrics are configured: no charts"
    start, end = span
    step = float(max(1, math.ceil((end - start) / MAX_POINTS)))
    try:
        series = await asyncio.wait_for(between(specs, start, end, step),
                                        timeout=plan.call_timeout * 2)
    except Exception as exc:  # a dead metrics source must not cost the report
        return {}, f"metrics: {str(exc) or type(exc).__name__}: no charts"
    if not isinstance(series, Mapping):
        return {}, "metrics: unexpected answer to a range query: no charts"
    readings = [r for pairs in series.values() for p in pairs for r in (p.canary, p.baseline)]
    if not any(r.usable for r in readings):
        # Empty charts would read as "nothing happened"; say why there is nothing.
        why = next((r.problem for r in readings if r.problem), "no data")
        return {}, f"metrics: no usable value in the release's window ({why}): no charts"
    return series, ""
