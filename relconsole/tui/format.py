"""Turning engine values into short, unambiguous text for a tired operator.

Every number leaves here with its unit: ratios as percent ("0.21 %"), seconds as
milliseconds ("182 ms"). Missing values are an em dash, never 0. The metric spellings
are `relconsole.units`, shared with the engine's gate reasons, the journal, the headless
lines and `relconsole status`, so the screen says what they say.
"""

from __future__ import annotations

import math

from relconsole import units
from relconsole.clock import clock_text
from relconsole.units import MISSING, delta, finite, millis, percent, ratio, threshold
from relconsole.units import count as short_count
from relconsole.units import limit as compact
from relconsole.units import value as metric

__all__ = [
    "MISSING", "age", "clock", "compact", "count", "counts", "delta", "duration",
    "evidence_bar", "finite", "interval", "metric", "millis", "percent", "ratio",
    "threshold", "weight",
]


def clock(at: float | None) -> str:
    """Local wall-clock time of an engine timestamp, HH:MM:SS."""
    if at is None:
        return MISSING
    return clock_text(at)


def duration(seconds: float) -> str:
    """'45s', '1m12s', '2h03m'. Rounds up, so a bake never shows 0s while still running."""
    total = max(0, math.ceil(seconds - 1e-9))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def weight(value: int) -> str:
    return f"{value}%"


def age(seconds: float | None) -> str:
    """How old something is, coarsely: '45d', '5h', '12m', '<1m' (`units.age`)."""
    return units.age(seconds)


def count(n: float | None) -> str:
    """A count of requests or events, short: '12', '4.1k', '81k', '1.2M'."""
    if not finite(n):
        return MISSING
    return short_count(n)


def counts(events: float, total: float) -> str:
    """Events among requests: '12/4.1k'."""
    return f"{count(events)}/{count(total)}"


def interval(low: float | None, high: float | None) -> str:
    """A rate's interval as percent, the unit once: '0.13–0.60 %'."""
    if not finite(low) or not finite(high):
        return MISSING
    return f"{percent(low).removesuffix(' %')}–{percent(high)}"


BAR_HALF = 4  # cells on each side of the bar's middle
BAR_FILL = "■"
BAR_EMPTY = "·"


def _progress(e_value: float, alpha: float) -> float:
    """How far an e-value is towards 1/alpha on a log scale, 0..1 (1 and below is 0)."""
    if not finite(e_value) and e_value != math.inf:
        return 0.0
    if e_value <= 1:
        return 0.0
    return min(1.0, math.log(e_value) / math.log(1 / alpha))


def evidence_bar(pass_e: float, fail_e: float, alpha: float) -> tuple[str, str, str, str, str]:
    """A small bar from "needs data" (the middle) out to "pass" (left, ✔) and "fail"
    (right, ✘): each side fills, in characters, as its e-value climbs towards 1/alpha on
    a log scale, so it reads without colour. (✔, pass side, middle, fail side, ✘)."""
    left = round(_progress(pass_e, alpha) * BAR_HALF)
    right = round(_progress(fail_e, alpha) * BAR_HALF)
    return ("✔", BAR_EMPTY * (BAR_HALF - left) + BAR_FILL * left, "│",
            BAR_FILL * right + BAR_EMPTY * (BAR_HALF - right), "✘")
