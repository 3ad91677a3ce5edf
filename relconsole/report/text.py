"""How the report writes times, durations, changes and gate values (Markdown and HTML)."""

from __future__ import annotations

from datetime import datetime

from relconsole.clock import clock_text
from relconsole.report.model import GateValue, TimelineEntry, gate_text
from relconsole.units import MISSING, value


def clock(at: float | None) -> str:
    return clock_text(at) if at is not None else MISSING


def offset(at: float) -> str:
    off = datetime.fromtimestamp(at).astimezone().utcoffset()
    minutes = int(off.total_seconds() // 60) if off is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def span(start: float | None, end: float | None) -> str:
    """'2026-01-01 00:00:00 to 00:00:45 (UTC+00:00)'."""
    if start is None or end is None:
        return MISSING
    first = datetime.fromtimestamp(start).astimezone()
    last = datetime.fromtimestamp(end).astimezone()
    tail = f"{last:%H:%M:%S}" if last.date() == first.date() else f"{last:%Y-%m-%d %H:%M:%S}"
    return f"{first:%Y-%m-%d %H:%M:%S} to {tail} ({offset(start)})"


def duration(seconds: float | None) -> str:
    """'5 s', '2 min 5 s', '1 h 3 min'."""
    if seconds is None:
        return MISSING
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _arrow(before: int | None, after: int | None, suffix: str = "") -> str:
    if before is None and after is None:
        return ""
    if before is None:  # the first record (attach): where the release stood, no change
        return f"{after}{suffix}"
    b = MISSING if before is None else f"{before}{suffix}"
    a = MISSING if after is None else f"{after}{suffix}"
    return b if before == after else f"{b}→{a}"


def step_change(e: TimelineEntry) -> str:
    return _arrow(e.step_before, e.step_after)


def weight_change(e: TimelineEntry) -> str:
    return _arrow(e.weight_before, e.weight_after, "%")


def measured(number: float | None, unit: str) -> str:
    return value(number, unit)


def gate(g: GateValue) -> str:
    return gate_text(g)


def cell(text: object) -> str:
    """One Markdown table cell: a single line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


FILTERS = {
    "clock": clock,
    "span_of": span,
    "duration": duration,
    "step_change": step_change,
    "weight_change": weight_change,
    "measured": measured,
    "gate": gate,
    "cell": cell,
}
