"""Error rate and latency of the canary against the stable baseline.

Numbers always carry their unit and sit beside the chart; the charts share one scale
that starts at zero, so canary and baseline bars compare honestly.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal

from relconsole import units
from relconsole.engine.state import Series, Snapshot
from relconsole.model import GateSpec, GateStatus, Verdict
from relconsole.tui import format as fmt
from relconsole.tui.widgets.field import Field
from relconsole.tui.widgets.panel import Panel
from relconsole.tui.widgets.spark import Spark, scale_top

VERDICT_CLASSES = {
    Verdict.PASS: "-pass",
    Verdict.FAIL: "-fail",
    Verdict.INCONCLUSIVE: "-inconclusive",
}


def metric_unit(snapshot: Snapshot, name: str) -> str:
    """The unit a metric is written in, the same way on every surface (`units.unit_of`)."""
    return units.unit_of(snapshot.plan.metrics, name)


def as_of(snapshot: Snapshot) -> str | None:
    """'as of 12:03:10, 2m ago' while the metrics provider is dark (the values on screen
    are that old), else None. The age is coarse so the panel seldom redraws for it."""
    at = snapshot.old("metrics")
    if at is None:
        return None
    return f"as of {fmt.clock(at)}, {fmt.age(snapshot.now - at)} ago"


def gate_for(snapshot: Snapshot, metric: str) -> GateStatus | None:
    return next((g for g in snapshot.gates if g.spec.metric == metric), None)


def spec_for(snapshot: Snapshot, metric: str) -> GateSpec | None:
    return next((g for g in snapshot.plan.gates if g.metric == metric), None)


def latest(snapshot: Snapshot, metric: str) -> tuple[float | None, float | None]:
    return snapshot.latest.get(metric, (None, None))


def step_rates(gate: GateStatus | None) -> tuple[float | None, float | None] | None:
    """The canary's and the baseline's rate in this step, from the counts that decide a
    gate judged on counts; None for a gate judged on values (or no canary request yet).

    The query's own values cover its window, which may reach into the previous step: shown
    beside the gates panel's counts they would give two different canary error rates on
    one screen, and the one that decides is the step's.
    """
    ev = gate.evidence if gate is not None and gate.judged == "counts" else None
    if ev is None or ev.canary_total <= 0 or ev.estimate is None:
        return None
    return ev.estimate, ev.baseline_rate


def set_verdict_class(field: Field, gate: GateStatus | None) -> None:
    for verdict, css_class in VERDICT_CLASSES.items():
        field.set_class(gate is not None and gate.verdict is verdict, css_class)


class MetricPanel(Panel):
    SOURCE = "metrics"

    DEFAULT_CSS = """
    MetricPanel {
        .row { height: 1; }
        .name { width: 9; color: $text-muted; }
        .value { width: 8; text-align: right; margin-right: 1; text-style: bold; }
        .value.-fail { color: $text-error; }
        .value.-inconclusive { color: $text-warning; }
        .value.-old, .cell.-old { color: $text-muted; text-style: dim; }
        .note { width: 1fr; color: $text-muted; text-overflow: ellipsis; }
        .note.-old { color: $text-warning; }
    }
    """


class ErrorRatePanel(MetricPanel):
    """Canary vs baseline error ratio, each with its number and a chart; the gate's limit."""

    TITLE = "Error rate"
    METRIC = "error_rate"

    def compose(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Field("canary", classes="name")
            yield Field(id="canary-value", classes="value")
            yield Spark(id="canary-spark")
        with Horizontal(classes="row"):
            yield Field("baseline", classes="name")
            yield Field(id="baseline-value", classes="value")
            yield Spark(id="baseline-spark", classes="-baseline")
        with Horizontal(classes="row"):
            yield Field(id="gate", classes="note")

    def snapshot_key(self, snapshot: Snapshot) -> Any:
        gate = gate_for(snapshot, self.METRIC)
        return (
            latest(snapshot, self.METRIC),
            snapshot.series.get(self.METRIC),
            spec_for(snapshot, self.METRIC),
            gate.verdict if gate else None,
            step_rates(gate),
            as_of(snapshot),
        )

    def subtitle(self, snapshot: Snapshot) -> str:
        spec = spec_for(snapshot, self.METRIC)
        unit = metric_unit(snapshot, self.METRIC)
        return f"gate {fmt.threshold(spec, unit)}" if spec else "no gate"

    def draw(self, snapshot: Snapshot) -> None:
        unit = metric_unit(snapshot, self.METRIC)
        canary, baseline = latest(snapshot, self.METRIC)
        series = snapshot.series.get(self.METRIC, Series())
        spec = spec_for(snapshot, self.METRIC)
        gate = gate_for(snapshot, self.METRIC)
        old = as_of(snapshot)
        counted = step_rates(gate)
        if counted is not None:
            # The numbers that decide: this step's counts, as the gates panel shows them;
            # the chart keeps the query's history.
            canary, baseline = counted

        value = self.query_one("#canary-value", Field)
        value.set(fmt.metric(canary, unit))
        set_verdict_class(value, gate)
        value.set_class(old is not None, "-old")
        base = self.query_one("#baseline-value", Field)
        base.set(fmt.metric(baseline, unit))
        base.set_class(old is not None, "-old")

        limit = spec.max if spec is not None else None
        top = scale_top(series.canary, series.baseline, floor=limit or 0.0)
        self.query_one("#canary-spark", Spark).set_data(series.canary, top, alert=limit)
        self.query_one("#baseline-spark", Spark).set_data(series.baseline, top, alert=limit)

        parts = []
        if old is not None:
            parts.append(old)
        if counted is not None:
            # Where the numbers come from; the chart's scale gives way (the row is narrow).
            parts.append("this step")
        if fmt.finite(canary) and fmt.finite(baseline):
            parts.append(f"Δ {fmt.delta(canary - baseline, unit)}")
        if counted is None:
            parts.append(f"chart 0–{fmt.compact(top, unit)}" if top else "no data yet")
        note = self.query_one("#gate", Field)
        note.set(" · ".join(parts))
        note.set_class(old is not None, "-old")


LATENCY = (("p50", "latency_p50"), ("p95", "latency_p95"), ("p99", "latency_p99"))


class LatencyPanel(MetricPanel):
    """p50/p95/p99 for canary and baseline in ms, their ratio, and a p99 chart."""

    TITLE = "Latency"
    CHART = "latency_p99"

    DEFAULT_CSS = """
    LatencyPanel {
        .cell { width: 8; margin-left: 1; text-align: right; }
        .cell.ratio { width: 6; }
        .cell.-fail { color: $text-error; text-style: bold; }
        .cell.-inconclusive { color: $text-warning; text-style: bold; }
        .head { color: $text-muted; }
        .label { width: 3; color: $text-muted; }
        #chart-label { width: auto; margin-right: 1; color: $text-muted; }
        #chart-label.-old { color: $text-warning; }
    }
    """

    def compose(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Field(classes="label head")
            yield Field("canary", classes="cell head")
            yield Field("baseline", classes="cell head")
            yield Field("ratio", classes="cell ratio head")
        for label, metric in LATENCY:
            detail = "" if metric == self.CHART else " detail"
            with Horizontal(classes=f"row{detail}"):
                yield Field(label, classes="label")
                yield Field(id=f"{label}-canary", classes="cell")
                yield Field(id=f"{label}-baseline", classes="cell")
                yield Field(id=f"{label}-ratio", classes="cell ratio")
        with Horizontal(classes="row"):
            yield Field(id="chart-label")
            yield Spark(id="chart")

    def snapshot_key(self, snapshot: Snapshot) -> Any:
        return (
            tuple(latest(snapshot, metric) for _, metric in LATENCY),
            snapshot.series.get(self.CHART),
            tuple(gate_for(snapshot, metric) for _, metric in LATENCY),
            as_of(snapshot),
        )

    def subtitle(self, snapshot: Snapshot) -> str:
        gates = [
            f"{label} {fmt.threshold(spec, metric_unit(snapshot, metric))}"
            for label, metric in LATENCY
            if (spec := spec_for(snapshot, metric)) is not None
        ]
        return "gate " + ", ".join(gates) if gates else "no gate"

    def draw(self, snapshot: Snapshot) -> None:
        old = as_of(snapshot)
        for label, metric in LATENCY:
            unit = metric_unit(snapshot, metric)
            canary, baseline = latest(snapshot, metric)
            gate = gate_for(snapshot, metric)
            cell = self.query_one(f"#{label}-canary", Field)
            cell.set(fmt.metric(canary, unit))
            set_verdict_class(cell, gate)
            cell.set_class(old is not None, "-old")
            base = self.query_one(f"#{label}-baseline", Field)
            base.set(fmt.metric(baseline, unit))
            base.set_class(old is not None, "-old")
            ratio = self.query_one(f"#{label}-ratio", Field)
            ratio.set(fmt.ratio(canary, baseline))
            set_verdict_class(ratio, gate)
            ratio.set_class(old is not None, "-old")

        series = snapshot.series.get(self.CHART, Series())
        spec = spec_for(snapshot, self.CHART)
        alert = None
        if spec is not None and spec.max is not None:
            alert = spec.max
        elif spec is not None and spec.max_ratio is not None:
            _, baseline = latest(snapshot, self.CHART)
            if fmt.finite(baseline) and baseline:
                alert = baseline * spec.max_ratio
        top = scale_top(series.canary, series.baseline, floor=alert or 0.0)
        unit = metric_unit(snapshot, self.CHART)
        label = f"p99 0–{fmt.compact(top, unit)}" if top else "p99"
        if old is not None:
            label = f"{label} · {old}"
        chart_label = self.query_one("#chart-label", Field)
        chart_label.set(label)
        chart_label.set_class(old is not None, "-old")
        self.query_one("#chart", Spark).set_data(series.canary, top, alert=alert)
