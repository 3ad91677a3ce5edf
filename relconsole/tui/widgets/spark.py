"""A one-line bar chart on a fixed scale from zero, with gaps where data is missing.

Textual's `Sparkline` stretches its own min..max over the full height, so a flat 0.2 %
error rate with a little noise looks like a spike, and a missing sample cannot be
shown. Here the scale is given (zero to the gate's threshold or the larger of both
series), canary and baseline share it, and a missing sample is a blank column.
The number with its unit is always printed beside the chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment
from textual.strip import Strip
from textual.widget import Widget

BARS = "▁▂▃▄▅▆▇█"


def bar(value: float | None, top: float) -> str:
    if value is None or not math.isfinite(value):
        return " "
    if top <= 0:
        return BARS[0]
    level = round(max(0.0, value) / top * (len(BARS) - 1))
    return BARS[min(level, len(BARS) - 1)]


def scale_top(*series: Sequence[float | None], floor: float = 0.0) -> float:
    """The top of a shared scale: the largest value seen, but never below `floor`."""
    values = [v for s in series for v in s if v is not None and math.isfinite(v)]
    return max([floor, *values]) if values or floor else 0.0


class Spark(Widget):
    """Bars for the newest values that fit, oldest on the left."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"spark--bar", "spark--alert"}

    DEFAULT_CSS = """
    Spark {
        height: 1;
        width: 1fr;
        & > .spark--bar { color: $primary; }
        & > .spark--alert { color: $error; }
        &.-baseline > .spark--bar { color: $secondary; }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._values: tuple[float | None, ...] = ()
        self._top = 0.0
        self._alert: float | None = None

    def set_data(
        self, values: Sequence[float | None], top: float, alert: float | None = None
    ) -> None:
        """New data; bars above `alert` take the alert colour. Redraws only on change."""
        values = tuple(values)
        if (values, top, alert) == (self._values, self._top, self._alert):
            return
        self._values, self._top, self._alert = values, top, alert
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y != 0 or width <= 0:
            return Strip.blank(width, self.rich_style)
        base = self.rich_style
        normal = base + self.get_component_rich_style("spark--bar", partial=True)
        alert = base + self.get_component_rich_style("spark--alert", partial=True)
        shown = self._values[-width:]
        pad = width - len(shown)
        segments = [Segment(" " * pad, base)] if pad else []
        for value in shown:
            over = self._alert is not None and value is not None and value > self._alert
            segments.append(Segment(bar(value, self._top), alert if over else normal))
        return Strip(segments, width).simplify()
