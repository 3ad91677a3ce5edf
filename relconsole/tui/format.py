"""Turning engine values into short, unambiguous text for a tired operator.

Every number leaves here with its unit: ratios as percent ("0.21 %"), seconds as
milliseconds ("182 ms"). Missing values are an em dash, never 0.
"""

from __future__ import annotations

import math
from functools import partial
from typing import TypeGuard

from relconsole.clock import clock_text
from relconsole.model import GateSpec

MISSING = "—"


def finite(value: float | None) -> TypeGuard[float]:
    """A number that can be shown: not missing, NaN or infinite (a type checker then
    knows the value is a float)."""
    return value is not None and math.isfinite(value)


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


def percent(ratio: float | None) -> str:
    """A ratio (0.0021) as a percentage with a unit ('0.21 %')."""
    if not finite(ratio):
        return MISSING
    value = ratio * 100
    if abs(value) >= 100:
        return f"{value:.0f} %"
    if abs(value) >= 10:
        return f"{value:.1f} %"
    return f"{value:.2f} %"


def millis(seconds: float | None) -> str:
    """A duration in seconds (0.182) as milliseconds ('182 ms')."""
    if not finite(seconds):
        return MISSING
    ms = seconds * 1000
    if abs(ms) >= 10_000:
        return f"{seconds:.1f} s"
    if abs(ms) >= 10:
        return f"{ms:.0f} ms"
    return f"{ms:.1f} ms"


def compact(value: float | None, unit: str) -> str:
    """A limit as written by a person: '1 %', '0.5 %', '500 ms' (no trailing zeros)."""
    if not finite(value):
        return MISSING
    if unit == "ratio":
        return f"{value * 100:.3g} %"
    if unit == "seconds":
        return f"{value * 1000:.3g} ms" if abs(value) < 10 else f"{value:.3g} s"
    return f"{value:.3g} {unit}".rstrip()


def metric(value: float | None, unit: str) -> str:
    """A metric value in the unit its spec declares."""
    if unit == "ratio":
        return percent(value)
    if unit == "seconds":
        return millis(value)
    if not finite(value):
        return MISSING
    return f"{value:.3g} {unit}".rstrip()


def delta(value: float, unit: str) -> str:
    """A difference between two values of one metric, always signed."""
    sign = "+" if value >= 0 else "−"
    if unit == "ratio":
        return f"{sign}{percent(abs(value))}"
    if unit == "seconds":
        return f"{sign}{millis(abs(value))}"
    return f"{sign}{abs(value):.3g}"


def ratio(canary: float | None, baseline: float | None) -> str:
    """canary / baseline as '×1.08', or an em dash when it is not defined."""
    if not finite(canary) or not finite(baseline) or not baseline:
        return MISSING
    return f"×{canary / baseline:.2f}"


def threshold(spec: GateSpec, unit: str) -> str:
    """`GateSpec.describe()` with its limits in the metric's unit: '≤1 % Δ≤0.5 %', '×≤1.3'.

    Only ratios (as %) and seconds (as ms) are rewritten; a limit in any other unit
    is shown as the plain number it was configured as.
    """
    if unit not in ("ratio", "seconds"):
        return spec.describe()
    return spec.describe(partial(compact, unit=unit))


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
