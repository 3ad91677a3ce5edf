"""The health gates: one row each with its verdict, values, threshold and counters.

The verdict comes right after the gate's name so it stays visible in 80 columns; the
reason of every gate that does not pass is spelled out on a line under the table.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.content import Content

from relconsole.engine.state import Snapshot
from relconsole.model import GateStatus, Phase, Verdict
from relconsole.tui import format as fmt
from relconsole.tui.widgets.field import Field
from relconsole.tui.widgets.metrics import metric_unit
from relconsole.tui.widgets.panel import Panel
from relconsole.tui.widgets.table import Column, FittedTable

COLUMNS = (
    Column("gate", "gate", required=True),
    Column("verdict", "verdict", required=True),
    Column("canary", "canary"),
    Column("baseline", "baseline"),
    Column("threshold", "threshold"),
    Column("fails", "fails"),
)

VERDICT_LABEL = {
    Verdict.PASS: "✔ PASS",
    Verdict.FAIL: "✘ FAIL",
    Verdict.INCONCLUSIVE: "? INCONCLUSIVE",
}


def idle(snapshot: Snapshot) -> bool:
    """No canary traffic (not started, or rolled back): missing canary data is expected."""
    return snapshot.weight == 0 and snapshot.phase in (Phase.PENDING, Phase.ROLLED_BACK)


def summary(snapshot: Snapshot) -> Content:
    """The panel title: the answer to 'are the gates green?' in one phrase."""
    gates = snapshot.gates
    if not gates:
        return Content("Gates — none configured")
    failing = [g for g in gates if g.verdict is Verdict.FAIL]
    unknown = [g for g in gates if g.verdict is Verdict.INCONCLUSIVE]
    if failing:
        names = ", ".join(g.name for g in failing)
        return Content.assemble("Gates — ", (f"✘ FAILING: {names}", "bold $text-error"))
    if unknown and idle(snapshot):
        return Content.assemble("Gates — ", ("no verdict: the canary takes no traffic",
                                            "$text-muted"))
    if unknown:
        names = ", ".join(g.name for g in unknown)
        return Content.assemble("Gates — ", (f"? NO VERDICT: {names}", "bold $text-warning"))
    return Content.assemble("Gates — ", (f"✔ all {len(gates)} pass", "bold $text-success"))


def failure_text(gate: GateStatus, unit: str) -> str:
    """Why a gate fails, in the metric's unit ('canary 4.38 % > max 1 %').

    The engine's reason carries raw numbers (0.04383); next to a table in percent that
    invites misreading. Falls back to the engine's words if the values do not explain it.
    """
    spec, canary, baseline = gate.spec, gate.canary, gate.baseline
    if canary is None:
        return gate.reason
    parts: list[str] = []
    if spec.max is not None and canary > spec.max:
        parts.append(f"canary {fmt.metric(canary, unit)} > max {fmt.compact(spec.max, unit)}")
    if spec.min is not None and canary < spec.min:
        parts.append(f"canary {fmt.metric(canary, unit)} < min {fmt.compact(spec.min, unit)}")
    increase = spec.max_increase
    if baseline is not None and increase is not None and canary - baseline > increase:
        parts.append(
            f"{fmt.delta(canary - baseline, unit)} over baseline > {fmt.compact(increase, unit)}"
        )
    if baseline and spec.max_ratio is not None and canary / baseline > spec.max_ratio:
        parts.append(f"×{canary / baseline:.2f} of baseline > ×{spec.max_ratio:g}")
    return "; ".join(parts) or gate.reason


def reason_line(gate: GateStatus, unit: str) -> str:
    if gate.verdict is Verdict.INCONCLUSIVE:
        return (
            f"{gate.name}: {gate.reason} ({gate.consecutive_inconclusive}/"
            f"{gate.spec.inconclusive_limit} polls without data)"
        )
    return (
        f"{gate.name}: {failure_text(gate, unit)} ({gate.consecutive_failures}/"
        f"{gate.spec.failure_limit} fails)"
    )


class GatesTable(FittedTable):
    """A read-only table; verdict colours come from the theme via component classes."""

    COMPONENT_CLASSES: ClassVar[set[str]] = FittedTable.COMPONENT_CLASSES | {
        "gates--pass",
        "gates--fail",
        "gates--inconclusive",
    }

    DEFAULT_CSS = """
    GatesTable {
        max-height: 12;
        & > .gates--pass { color: $text-success; text-style: bold; }
        & > .gates--fail { color: $text-error; text-style: bold reverse; }
        & > .gates--inconclusive { color: $text-warning; text-style: bold; }
    }
    """


class GatesPanel(Panel):
    TITLE = "Gates"

    DEFAULT_CSS = """
    GatesPanel {
        padding: 0;
        .reason { width: 1fr; height: 1; padding: 0 1; text-overflow: ellipsis; }
        .reason.-fail { color: $text-error; }
        .reason.-inconclusive { color: $text-warning; }
    }
    """

    def compose(self) -> ComposeResult:
        table = GatesTable(COLUMNS, cursor_type="none", show_cursor=False)
        table.can_focus = False
        yield table

    def snapshot_key(self, snapshot: Snapshot) -> Any:
        return snapshot.gates, idle(snapshot)

    def draw(self, snapshot: Snapshot) -> None:
        self.border_title = summary(snapshot)
        table = self.query_one(GatesTable)
        table.sync({gate.name: self._cells(snapshot, table, gate) for gate in snapshot.gates})
        # Without canary traffic "no data" is expected; only failures need explaining.
        explain = [
            g for g in snapshot.gates
            if g.verdict is Verdict.FAIL
            or (g.verdict is Verdict.INCONCLUSIVE and not idle(snapshot))
        ]
        self._draw_reasons(snapshot, explain)

    def _draw_reasons(self, snapshot: Snapshot, gates: list[GateStatus]) -> None:
        lines = list(self.query(".reason").results(Field))
        for extra in lines[len(gates):]:
            extra.remove()
        for index, gate in enumerate(gates):
            if index < len(lines):
                line = lines[index]
            else:
                line = Field(classes="reason")
                self.mount(line)
            line.set(reason_line(gate, metric_unit(snapshot, gate.spec.metric, "")))
            line.set_class(gate.verdict is Verdict.FAIL, "-fail")
            line.set_class(gate.verdict is Verdict.INCONCLUSIVE, "-inconclusive")

    def _cells(self, snapshot: Snapshot, table: GatesTable, gate: GateStatus) -> dict[str, Any]:
        unit = metric_unit(snapshot, gate.spec.metric, "")
        style = table.get_component_rich_style(f"gates--{gate.verdict.value}", partial=True)
        spec = gate.spec
        fails = Text(f"{gate.consecutive_failures}/{spec.failure_limit}")
        if gate.consecutive_failures:
            fails.stylize(table.get_component_rich_style("gates--fail", partial=True))
        return {
            "gate": Text(gate.name),
            "verdict": Text(VERDICT_LABEL[gate.verdict], style=style),
            "canary": Text(fmt.metric(gate.canary, unit), justify="right"),
            "baseline": Text(fmt.metric(gate.baseline, unit), justify="right"),
            "threshold": Text(fmt.threshold(spec, unit)),
            "fails": fails,
        }
