"""The gates at full width: what each one measures, how, and where to look further.

The gates panel has a row per gate; an on-call engineer asking "why is this red?" needs
the query as it was sent (with the versions put in), the values with how old they are,
the limit in the metric's unit, the counters and the dashboard. Nothing here changes the
release, so it opens in watch-only mode as well.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.style import Style
from textual.widgets import Static

from relconsole import units
from relconsole.engine.state import Snapshot
from relconsole.model import GateStatus, MetricSpec, Verdict
from relconsole.placeholders import metric_dashboard, queries_sent, release_dashboard
from relconsole.tui import format as fmt
from relconsole.tui.widgets.gates import VERDICT_LABEL, at_rollback, shown_gates
from relconsole.tui.widgets.metrics import metric_unit

VERDICT_STYLE = {Verdict.PASS: "bold $text-success", Verdict.FAIL: "bold $text-error",
                 Verdict.INCONCLUSIVE: "bold $text-warning"}
QUERY_STYLE = "$text-accent"


def link(url: str) -> Content:
    """The address in full (copyable where the terminal has no OSC 8) and clickable."""
    return Content.styled(url, Style(link=url, underline=True))


def _metric(snapshot: Snapshot, name: str) -> MetricSpec | None:
    return next((m for m in snapshot.plan.metrics if m.name == name), None)


def _values_line(snapshot: Snapshot, gate: GateStatus, unit: str) -> str:
    cause = at_rollback(snapshot)
    values = (f"canary {units.value(gate.canary, unit)} · "
              f"baseline {units.value(gate.baseline, unit)}")
    if cause is not None:
        return f"{values}  (as they stood at the rollback, {fmt.clock(cause.at)})"
    at = snapshot.metrics_at
    if at is None:
        return f"{values}  (never read)"
    ago = max(0.0, snapshot.now - at)
    return f"{values}  (read at {fmt.clock(at)}, {fmt.duration(ago)} ago)"


# One line of the view: how far it is indented, and its text. A long query wraps under
# its own indent, so it still reads as a block under its heading.
Row = tuple[int, Content]


def gate_rows(snapshot: Snapshot, gate: GateStatus) -> list[Row]:
    """One gate, every fact an on-call engineer asks for."""
    plan = snapshot.plan
    unit = gate.unit or metric_unit(snapshot, gate.spec.metric)
    spec = gate.spec
    rows: list[Row] = [
        (0, Content.assemble((gate.name, "bold"), "  ",
                             (VERDICT_LABEL[gate.verdict], VERDICT_STYLE[gate.verdict]))),
        (2, Content(f"why: {gate.reason or '—'}")),
        (2, Content(f"threshold: {units.threshold(spec, unit)}")),
        (2, Content(_values_line(snapshot, gate, unit))),
        (2, Content(f"fails in a row: {gate.consecutive_failures} (trips at "
                    f"{spec.failure_limit}) · polls without data: "
                    f"{gate.consecutive_inconclusive} (pauses at {spec.inconclusive_limit})")),
    ]
    rows += evidence_rows(gate)
    if spec.is_health:
        rows.append((2, Content(f"judged on the traffic provider's {spec.health} servers "
                                "(up/down, read every poll)")))
        return rows
    metric = _metric(snapshot, spec.metric)
    url = metric_dashboard(plan, metric) if metric is not None else ""
    if url:
        rows += [(2, Content("dashboard:")), (4, link(url))]
    else:
        rows.append((2, Content(f"dashboard: none (metrics.{spec.metric}.dashboard)")))
    if metric is None or not metric.query:
        rows.append((2, Content(f"query: none configured (metrics.{spec.metric}.query)")))
        return rows
    canary, baseline = queries_sent(plan, metric)
    rows += [
        (2, Content(f"query sent for the canary ({plan.canary}):")),
        (4, Content.styled(canary, QUERY_STYLE)),
        (2, Content(f"query sent for the baseline ({plan.baseline_version or 'not set'}):")),
        (4, Content.styled(baseline, QUERY_STYLE)),
    ]
    return rows


def evidence_rows(gate: GateStatus) -> list[Row]:
    """How the gate judges, and for a gate on counts the full statistic behind it."""
    ev = gate.evidence
    if ev is None:
        return [(2, Content(f"judged on {gate.judged}"))] if gate.judged else []
    confidence = f"{(1 - ev.alpha) * 100:g} %"
    target = 1 / ev.alpha
    rows: list[Row] = [
        (2, Content("judged on counts, in this step: "
                    f"canary {ev.canary_events:g} of {ev.canary_total:g} requests "
                    f"({units.percent(ev.estimate)}) · baseline {ev.baseline_events:g} of "
                    f"{ev.baseline_total:g} ({units.percent(ev.baseline_rate)})")),
        (2, Content(f"canary rate {units.percent(ev.estimate)}, interval "
                    f"{fmt.interval(ev.low, ev.high)} (Wilson, {confidence}; for reading, "
                    "the decision is the e-values')")),
        (2, Content(f"e-value against the limits: {ev.e_value:.3g} (FAIL at {target:g} = "
                    f"1/alpha, alpha {ev.alpha:g}, anytime-valid) · for the limits "
                    f"holding: {ev.pass_e_value:.3g} (PASS at {target:g})")),
    ]
    if ev.needs is not None:
        rows.append((2, Content(f"needs: about {fmt.count(ev.needs)} more canary requests "
                                "before it could pass")))
    return rows


def detail_rows(snapshot: Snapshot) -> list[Row]:
    """Every gate of the panel, the release's dashboard first."""
    rows: list[Row] = []
    url = release_dashboard(snapshot.plan)
    if url:
        rows += [(0, Content("release dashboard:")), (2, link(url)), (0, Content(""))]
    gates = shown_gates(snapshot)
    if not gates:
        rows.append((0, Content("No gates configured (gates: in the config file).")))
    for index, gate in enumerate(gates):
        if index:
            rows.append((0, Content("")))
        rows += gate_rows(snapshot, gate)
    return rows


def plain(rows: list[Row]) -> str:
    """The view as text, for the clipboard."""
    return "\n".join(" " * indent + text.plain for indent, text in rows)


class GateDetails(ModalScreen[None]):
    """The gates panel's gates at full width; escape closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_details", "close"),
        Binding("enter", "dismiss_details", "close", show=False),
        Binding("g", "dismiss_details", "close", show=False),
        Binding("c", "copy", "copy", show=False),
        Binding("ctrl+c", "copy", "copy", show=False),
    ]

    DEFAULT_CSS = """
    GateDetails {
        align: center middle;
        & > VerticalScroll {
            width: 100%; height: 100%;
            border: round $rc-border-focus;
            border-title-style: bold;
            background: $surface;
            padding: 0 1;
            scrollbar-gutter: stable;
        }
    }
    """

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.rows = detail_rows(snapshot)
        self.text = plain(self.rows)
        self.count = len(shown_gates(snapshot))

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = f"Gates — {self.count} gate{'s' if self.count != 1 else ''}"
            box.border_subtitle = "esc close · ↑↓ scroll · c copy"
            yield from self._lines(self.rows)

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()

    def show(self, snapshot: Snapshot) -> None:
        """Follow the release while open: values, ages and verdicts move on."""
        rows = detail_rows(snapshot)
        if rows == self.rows:
            return
        box = self.query_one(VerticalScroll)
        lines = list(box.query(Static))
        if len(lines) == len(rows):
            for line, (old, new) in zip(lines, zip(self.rows, rows, strict=True), strict=True):
                if old != new:  # only what changed is sent to the terminal
                    line.update(new[1])
        else:
            box.remove_children()
            box.mount_all(self._lines(rows))
        self.rows, self.text = rows, plain(rows)
        self.count = len(shown_gates(snapshot))

    @staticmethod
    def _lines(rows: list[Row]) -> list[Static]:
        lines = []
        for indent, text in rows:
            line = Static(text)
            line.styles.padding = (0, 0, 0, indent)
            lines.append(line)
        return lines

    def action_copy(self) -> None:
        selected = self.get_selected_text()
        self.app.copy_to_clipboard(selected or self.text)
        self.app.notify("copied the gate details (a terminal with OSC 52 puts them on the "
                        "clipboard)" if not selected else "copied the selected text",
                        title="copy", timeout=6)

    def action_dismiss_details(self) -> None:
        self.dismiss(None)
