"""The report as one self-contained HTML file: inline CSS and inline SVG charts.

No script and no network: it opens from a ticket attachment or a bastion's scp alike.
The chart geometry is worked out here (plain numbers in, SVG coordinates out), so the
template only lays it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jinja2

from relconsole.clock import clock_text
from relconsole.report.model import Chart, Report, StepMark
from relconsole.report.text import FILTERS
from relconsole.units import value

WIDTH, HEIGHT = 1000, 260
LEFT, RIGHT, TOP, BOTTOM = 78, 40, 22, 34
Y_TICKS = 4
X_TICKS = 6


@dataclass(frozen=True)
class Line:
    role: str  # "canary" or "baseline"
    points: str  # "x,y x,y …" for one unbroken run (a gap in the data breaks a line)
    count: int


@dataclass(frozen=True)
class Tick:
    at: float  # x or y in the SVG
    label: str


@dataclass(frozen=True)
class Marker:
    x: float
    label: str
    kind: str


@dataclass(frozen=True)
class ChartView:
    chart: Chart
    width: int
    height: int
    lines: tuple[Line, ...]
    markers: tuple[Marker, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    limit_y: float | None
    limit_label: str
    plot: tuple[float, float, float, float]  # left, top, right, bottom


def _view(chart: Chart, marks: Sequence[StepMark]) -> ChartView | None:
    times = [p.at for p in chart.points]
    if not times:
        return None
    t0, t1 = min(times), max(times)
    if t1 <= t0:
        t1 = t0 + 1.0
    values = [v for p in chart.points for v in (p.canary, p.baseline) if v is not None]
    top = max([*values, chart.limit or 0.0, 0.0]) * 1.15 or 1.0
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM

    def x(t: float) -> float:
        return round(LEFT + (t - t0) / (t1 - t0) * (right - LEFT), 1)

    def y(v: float) -> float:
        return round(bottom - v / top * (bottom - TOP), 1)

    lines: list[Line] = []
    for role in ("baseline", "canary"):
        run: list[str] = []
        for p in chart.points:
            v = getattr(p, role)
            if v is None:
                if run:
                    lines.append(Line(role, " ".join(run), len(run)))
                run = []
                continue
            run.append(f"{x(p.at)},{y(v)}")
        if run:
            lines.append(Line(role, " ".join(run), len(run)))
    markers = tuple(Marker(x(m.at), m.label, m.kind) for m in marks if t0 <= m.at <= t1)
    x_ticks = tuple(Tick(x(t0 + (t1 - t0) * i / (X_TICKS - 1)),
                         clock_text(t0 + (t1 - t0) * i / (X_TICKS - 1)))
                    for i in range(X_TICKS))
    y_ticks = tuple(Tick(y(top * i / Y_TICKS), value(top * i / Y_TICKS, chart.unit))
                    for i in range(Y_TICKS + 1))
    limit = chart.limit
    return ChartView(
        chart=chart, width=WIDTH, height=HEIGHT, lines=tuple(lines), markers=markers,
        x_ticks=x_ticks, y_ticks=y_ticks,
        limit_y=y(limit) if limit is not None else None,
        limit_label=f"limit {value(limit, chart.unit)}" if limit is not None else "",
        plot=(LEFT, TOP, right, bottom),
    )


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("relconsole.report", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)
_ENV.filters.update(FILTERS)


def render_html(report: Report) -> str:
    views = [v for v in (_view(c, report.marks) for c in report.charts) if v is not None]
    return _ENV.get_template("report.html.j2").render(r=report, charts=views)
