"""Durations as people write them in a config file: 500ms, 30s, 2m, 1h30m, 1d.

The config schema and provider settings both read durations, so this lives below
both and imports neither pydantic nor YAML.
"""

from __future__ import annotations

import math
import re

from relconsole.suggest import describe

__all__ = ["DURATION_HINT", "DurationError", "parse_duration"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_UNIT_ORDER = ("d", "h", "m", "s", "ms")
DURATION_HINT = "Write a number with a unit: 500ms, 30s, 2m, 1h30m (a bare number means seconds)"


class DurationError(ValueError):
    """A duration could not be read; `problem` and `hint` are shown separately."""

    def __init__(self, problem: str, hint: str = DURATION_HINT) -> None:
        super().__init__(f"{problem}. {hint}.")
        self.problem = problem
        self.hint = hint


def parse_duration(text: str | int | float) -> float:
    """Seconds in "30s", "2m", "1h30m", "500ms", "1h", "1d"; a bare number is seconds.

    Raises ValueError (a `DurationError`) with a message that says what to write.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise DurationError(f"expected a duration, got {describe(text)}")
    if isinstance(text, (int, float)):
        value = float(text)
        if not math.isfinite(value):
            raise DurationError(f"{text!r} is not a finite duration")
        if value < 0:
            raise DurationError(f"duration {text:g} is negative", "Use 0 or more")
        return value
    raw = text.strip()
    if not raw:
        raise DurationError("the duration is empty")
    if raw.startswith("-"):
        raise DurationError(f"duration '{raw}' is negative", "Use 0 or more")
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise DurationError(f"'{raw}' is not a finite duration")
        return value
    return _sum_of_parts(raw)


def _sum_of_parts(raw: str) -> float:
    """Seconds in text such as 1h30m. Each unit once, largest first: 30m1h is a mistake."""
    compact = raw.replace(" ", "")
    total = 0.0
    pos = 0
    last_rank = -1
    for match in _DURATION_PART.finditer(compact):
        if match.start() != pos:
            break
        unit = match.group(2).lower()
        rank = _UNIT_ORDER.index(unit)
        if rank <= last_rank:
            raise DurationError(
                f"'{raw}' repeats or misorders its units",
                "Go from the largest unit to the smallest, each once, e.g. 1h30m",
            )
        last_rank = rank
        total += float(match.group(1)) * _UNIT_SECONDS[unit]
        pos = match.end()
    if pos != len(compact) or pos == 0:
        raise DurationError(f"'{raw}' is not a duration")
    return total
