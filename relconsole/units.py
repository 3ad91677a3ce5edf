"""How a metric value is written, on every surface: the screen, the journal's words,
`relconsole journal --format md`, the headless lines and `relconsole status`.

One spelling everywhere, so an operator can match the number in a gate's reason on
screen with the one in the journal and the pipeline log by eye: ratios as percent
("4.39 %"), seconds as milliseconds ("226 ms"), anything else as a plain number with the
unit its config names. A missing, NaN or infinite value is an em dash, never 0.

This sits beside `model.py`, below the engine and both front ends, so all of them may
import it without breaking the layers of docs/design.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, TypeGuard

if TYPE_CHECKING:
    from relconsole.model import GateSpec, MetricSpec

MISSING = "—"
RATIO = "ratio"
SECONDS = "seconds"


def finite(value: float | None) -> TypeGuard[float]:
    """A number that can be shown: not missing, NaN or infinite (a type checker then
    knows the value is a float)."""
    return value is not None and math.isfinite(value)


def guess(name: str) -> str:
    """The unit of a metric whose config declares none, from its conventional name.

    `error_rate` is a ratio and `latency_*` are seconds in every config we know of; a
    guess kept in one place keeps the screen and the log from guessing differently.
    """
    if name == "error_rate" or name.endswith("_ratio"):
        return RATIO
    if name.startswith("latency") or name.endswith("_seconds"):
        return SECONDS
    return ""


def unit_of(metrics: Iterable[MetricSpec], name: str) -> str:
    """The unit a metric is written in: the one its spec declares, else `guess`."""
    for spec in metrics:
        if spec.name == name and spec.unit:
            return spec.unit
    return guess(name)


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


def value(number: float | None, unit: str) -> str:
    """A measured value in its metric's unit: '4.39 %', '226 ms', '412 req/s'."""
    if unit == RATIO:
        return percent(number)
    if unit == SECONDS:
        return millis(number)
    if not finite(number):
        return MISSING
    return f"{number:.4g} {unit}".rstrip()


def limit(number: float | None, unit: str) -> str:
    """A configured limit as a person wrote it: '1 %', '0.5 %', '500 ms' (no trailing
    zeros, so a limit never looks more precise than it was set)."""
    if not finite(number):
        return MISSING
    if unit == RATIO:
        return f"{number * 100:.3g} %"
    if unit == SECONDS:
        return f"{number * 1000:.3g} ms" if abs(number) < 10 else f"{number:.3g} s"
    return f"{number:g} {unit}".rstrip()


def delta(number: float, unit: str) -> str:
    """A difference between two values of one metric, always signed: '+4.22 %'."""
    sign = "+" if number >= 0 else "−"
    if unit == RATIO:
        return f"{sign}{percent(abs(number))}"
    if unit == SECONDS:
        return f"{sign}{millis(abs(number))}"
    return f"{sign}{value(abs(number), unit)}"


def ratio(canary: float | None, baseline: float | None) -> str:
    """canary / baseline as '×1.08', or an em dash when it is not defined."""
    if not finite(canary) or not finite(baseline) or not baseline:
        return MISSING
    return f"×{canary / baseline:.2f}"


def threshold(spec: GateSpec, unit: str) -> str:
    """A gate's limits in its metric's unit: '≤1 % Δ≤0.5 %', '×≤1.3', '≤3'."""
    return spec.describe(partial(limit, unit=unit))


def count(n: float) -> str:
    """A count of requests or events, short: '12', '4.1k', '81k', '1.2M' (the engine's
    reasons and the screen write counts alike)."""
    if n < 1000:
        return f"{n:.0f}"
    if n < 10_000:
        return f"{n / 1000:.1f}k"
    if n < 1_000_000:
        return f"{n / 1000:.0f}k"
    return f"{n / 1e6:.1f}M"


def age(seconds: float | None) -> str:
    """How old something is, coarsely: '45d', '5h', '12m', '<1m'; an em dash if unknown.

    Coarse on purpose: it changes rarely, so a panel or table showing it rarely redraws.
    """
    if seconds is None or not math.isfinite(seconds):
        return MISSING
    if seconds >= 86400:
        return f"{int(seconds // 86400)}d"
    if seconds >= 3600:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60:
        return f"{int(seconds // 60)}m"
    return "<1m"
