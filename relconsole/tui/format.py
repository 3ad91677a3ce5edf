"""Turning engine values into short, unambiguous text for a tired operator.

Every number leaves here with its unit: ratios as percent ("0.21 %"), seconds as
milliseconds ("182 ms"). Missing values are an em dash, never 0. The metric spellings
are `relconsole.units`, shared with the engine's gate reasons, the journal, the headless
lines and `relconsole status`, so the screen says what they say.
"""

from __future__ import annotations

import math

from relconsole.clock import clock_text
from relconsole.units import MISSING, delta, finite, millis, percent, ratio, threshold
from relconsole.units import limit as compact
from relconsole.units import value as metric

__all__ = [
    "MISSING", "age", "clock", "compact", "delta", "duration", "finite", "metric",
    "millis", "percent", "ratio", "threshold", "weight",
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
    """How old something is, coarsely: '45d', '5h', '12m', '<1m'; an em dash if unknown.

    Coarse on purpose: it changes rarely, so a panel showing it rarely redraws.
    """
    if not finite(seconds):
        return MISSING
    if seconds >= 86400:
        return f"{int(seconds // 86400)}d"
    if seconds >= 3600:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60:
        return f"{int(seconds // 60)}m"
    return "<1m"
