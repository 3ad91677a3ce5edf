"""The health gates: one row each with its verdict, values, threshold and counters.

The verdict comes right after the gate's name so it stays visible in 80 columns; the
reason of every gate that does not pass is spelled out on a line under the table. While
a release is being or has been rolled back, the verdicts shown are the ones that stood
when the rollback began (see `at_rollback`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.content import Content
from textual.css.scalar import Scalar
from textual.markup import escape

from relconsole.engine.state import RollbackCause, Snapshot
from relconsole.model import GateStatus, Phase, Verdict
from relconsole.placeholders import release_dashboard
from relconsole.tui import format as fmt
from relconsole.tui.widgets import controller as ctl
from relconsole.tui.widgets.field import Field
from relconsole.tui.widgets.metrics import metric_unit
from relconsole.tui.widgets.panel import Panel
from relconsole.tui.widgets.table import Column, FittedTable

COLUMNS = (
    Column("gate", "gate", required=True),
    Column("verdict", "verdict", required=True),
    # Gates judged on counts: the evidence bar first (it is the answer), the canary's
    # rate and this step's counts next (at 80 columns the threshold and the baseline's
    # value give way to them; `g` shows everything), the interval last.
    Column("evidence", "evidence", rank=0),
    Column("canary", "canary", rank=1),
    Column("counts", "counts c vs b", rank=2),
    Column("interval", "interval", rank=6),
    Column("baseline", "baseline", rank=3),
    Column("threshold", "threshold", rank=4),
    Column("fails", "fails", rank=5),
)
# Shown only while some gate is judged on counts: a release judged on values alone
# keeps the table it always had.
COUNT_COLUMNS = frozenset({"evidence", "counts", "interval"})

VERDICT_LABEL = {
    Verdict.PASS: "✔ PASS",
    Verdict.FAIL: "✘ FAIL",
    Verdict.INCONCLUSIVE: "? INCONCLUSIVE",
}


ROLLBACK_PHASES = (Phase.ROLLING_BACK, Phase.ROLLED_BACK, Phase.ROLLBACK_FAILED)
# Shown once the release is rolled back: the way forward (`?` and the README say more).
# One line at 80 columns: at 80x24 every line here is one fewer for the journal.
# One line at 80 columns: wrapped to two it took the journal's last row at 80×24.
AGAIN_HINT = "Try again: bump release.version, or run --again --reason TEXT (? tells)"
# An aborted Argo Rollout is tried again on the cluster: Argo's retry, or a new revision.
AGAIN_HINT_ARGO = "Again: kubectl argo rollouts retry rollout NAME (or a new revision)"


def _quoted(url: str) -> str:
    """A link target for Textual markup, quoted so `=`, `&` and `]` stay in the link."""
    return f"'{url}'" if "'" not in url else f'"{url}"'


def idle(snapshot: Snapshot) -> bool:
    """No canary traffic (not started, or rolled back): missing canary data is expected."""
    return snapshot.weight == 0 and snapshot.phase in (Phase.PENDING, Phase.ROLLED_BACK)


def at_rollback(snapshot: Snapshot) -> RollbackCause | None:
    """The rollback whose verdicts this panel shows instead of the live ones, if any.

    While a release is being or has been rolled back the news is why: a poll after the
    rollback began every gate reads "no data" (the canary takes no traffic), so the
    panel keeps the verdicts as they stood when it began.
    """
    cause = snapshot.rollback_cause
    if cause is None or not cause.gates or snapshot.phase not in ROLLBACK_PHASES:
        return None
    return cause


def shown_gates(snapshot: Snapshot) -> tuple[GateStatus, ...]:
    cause = at_rollback(snapshot)
    return cause.gates if cause is not None else snapshot.gates


def summary(snapshot: Snapshot) -> Content:
    """The panel title: the answer to 'are the gates green?' in one phrase."""
    gates = snapshot.gates
    if not gates:
        return Content("Gates — none configured")
    cause = at_rollback(snapshot)
    if cause is not None:
        when = fmt.clock(cause.at)
        tripped = cause.tripped
        if tripped:
            names = ", ".join(g.name for g in tripped)
            return Content.assemble(
                "Gates — ", (f"✘ {names} tripped the rollback", "bold $text-error"),
                f" at {when}",
            )
        return Content.assemble("Gates — ", (f"as they stood at the rollback, {when}",
                                            "$text-muted"))
    failing = [g for g in gates if g.verdict is Verdict.FAIL]
    unknown = [g for g in gates if g.verdict is Verdict.INCONCLUSIVE]
    if failing:
        names = ", ".join(g.name for g in failing)
        return Content.assemble("Gates — ", (f"✘ FAILING: {names}", "bold $text-error"))
    if unknown and idle(snapshot):
        return Content.assemble("Gates — ", ("no verdict: the canary takes no traffic",
                                            "$text-muted"))
    # No data and needing more data are not the same (safety rule 1 counts only the
    # first): a title that lumps them would send a tired engineer hunting for an outage.
    blind = [g for g in unknown if not g.needs_more_data]
    if blind:
        names = ", ".join(g.name for g in blind)
        return Content.assemble("Gates — ", (f"? NO VERDICT: {names}", "bold $text-warning"))
    if unknown:
        names = ", ".join(g.name for g in unknown)
        return Content.assemble("Gates — ", (f"? NEEDS MORE DATA: {names}",
                                            "bold $text-warning"))
    return Content.assemble("Gates — ", (f"✔ all {len(gates)} pass", "bold $text-success"))


def fails_cell(gate: GateStatus) -> str:
    """'1/2'; a counter stops at its limit ('2/2'): past it, the count is in the reason."""
    limit = gate.spec.failure_limit
    return f"{min(gate.consecutive_failures, limit)}/{limit}"


def reason_line(gate: GateStatus) -> str:
    """Why a gate does not pass, in the metric's unit, with how far it is from its limit.

    The reason is the engine's own (`engine/gates.py` writes it in the metric's unit),
    so the screen says what the journal and the headless log say. A counter past its
    limit is said as a count, never as '30/5'.
    """
    if gate.verdict is Verdict.INCONCLUSIVE and gate.evidence is not None and not (
            gate.consecutive_inconclusive):
        counted = ""  # it needs more data, and says how much: not "no data"
    elif gate.verdict is Verdict.INCONCLUSIVE:
        n, limit = gate.consecutive_inconclusive, gate.spec.inconclusive_limit
        counted = f"{n}/{limit} polls without data" if n < limit else f"no data for {n} polls"
    else:
        n, limit = gate.consecutive_failures, gate.spec.failure_limit
        # At its limit the fails column says so in red; the line keeps its room for the
        # values (one line of 76 cells at 80 columns).
        counted = f"{n}/{limit} fails" if n < limit else (
            f"failing for {n} polls" if n > limit else "")
    return f"{gate.name}: {gate.reason}" + (f" ({counted})" if counted else "")


class GatesTable(FittedTable):
    """A read-only table; verdict colours come from the theme via component classes."""

    COMPONENT_CLASSES: ClassVar[set[str]] = FittedTable.COMPONENT_CLASSES | {
        "gates--pass",
        "gates--fail",
        "gates--inconclusive",
        "gates--old",
        "gates--bar-fail",
    }

    counts_shown = False  # some gate is judged on counts: show the count columns

    def fit(self, width: int) -> tuple[tuple[str, int], ...]:
        if self.counts_shown:
            return super().fit(width)
        full = self.spec
        self.spec = tuple(c for c in full if c.key not in COUNT_COLUMNS)
        try:
            return super().fit(width)
        finally:
            self.spec = full

    DEFAULT_CSS = """
    GatesTable {
        max-height: 12;
        & > .gates--pass { color: $text-success; text-style: bold; }
        & > .gates--fail { color: $text-error; text-style: bold reverse; }
        & > .gates--inconclusive { color: $text-warning; text-style: bold; }
        & > .gates--old { color: $text-muted; text-style: dim; }
        & > .gates--bar-fail { color: $text-error; }
    }
    """


class GatesPanel(Panel):
    TITLE = "Gates"

    DEFAULT_CSS = """
    GatesPanel {
        padding: 0;
        /* A reason wraps rather than lose its limits at the border: at 60 columns the
           table has no room for the threshold column, and this line is all there is.
           Its height is set from its text (`_fit_reasons`): a grid row sized `auto`
           measures an auto-height label at another width and leaves blank rows. */
        .reason { width: 100%; height: 1; padding: 0 1; }
        .reason.-fail { color: $text-error; }
        .reason.-inconclusive { color: $text-warning; }
        /* The controller's own AnalysisRuns (Argo), beside relconsole's gates. */
        .analysis { width: 100%; height: 1; padding: 0 1; display: none; }
        .analysis.-shown { display: block; }
        .hint { width: 100%; height: 1; padding: 0 1; color: $text-warning; display: none; }
        .hint.-shown { display: block; }
    }
    """

    def compose(self) -> ComposeResult:
        table = GatesTable(COLUMNS, cursor_type="none", show_cursor=False)
        table.can_focus = False
        yield table
        yield ctl.FitField(classes="analysis")
        yield Field(AGAIN_HINT, classes="hint")

    def subtitle(self, snapshot: Snapshot) -> str:
        # The release's dashboard sits with the gates, where "why is this red?" is asked;
        # the address in full where it fits (a terminal without OSC 8 links can copy it).
        url = release_dashboard(snapshot.plan)
        text = "g details"
        if not url:
            return text
        room = self.size.width - 4 - len(text + " · dashboard ")
        shown = escape(url) if len(url) <= room else "dashboard ↗"
        label = f"dashboard {shown}" if len(url) <= room else shown
        return f"{text} · [link={_quoted(url)}]{label}[/link]"

    def snapshot_key(self, snapshot: Snapshot) -> Any:
        controller = ctl.controller_of(snapshot)
        return (snapshot.gates, idle(snapshot), at_rollback(snapshot),
                snapshot.old("metrics") is not None, snapshot.phase,
                controller.analysis if controller is not None else None)

    def draw(self, snapshot: Snapshot) -> None:
        controller = ctl.controller_of(snapshot)
        title = summary(snapshot)
        argo = ctl.analysis_summary(controller)
        self.border_title = title if argo is None else Content.assemble(title, argo)
        analysis = self.query_one(".analysis", ctl.FitField)
        choices = ctl.analysis_choices(controller)
        analysis.choose(*choices)
        analysis.set_class(bool(choices), "-shown")
        table = self.query_one(GatesTable)
        gates = shown_gates(snapshot)
        # Values read before the metrics provider went dark are old: dimmed, not live.
        old = at_rollback(snapshot) is None and snapshot.old("metrics") is not None
        table.counts_shown = any(g.evidence is not None for g in gates)
        table.sync({gate.name: self._cells(snapshot, table, gate, old) for gate in gates})
        # Without canary traffic "no data" is expected; only failures need explaining.
        explain = [
            g for g in gates
            if g.verdict is Verdict.FAIL
            or (g.verdict is Verdict.INCONCLUSIVE and not idle(snapshot)
                and at_rollback(snapshot) is None)
        ]
        self._draw_reasons(explain)
        hint = self.query_one(".hint", Field)
        c = snapshot.controller
        hint.set(AGAIN_HINT_ARGO.replace("NAME", c.resource.rpartition("/")[2])
                 if c is not None and c.system == "Argo Rollouts" else AGAIN_HINT)
        hint.set_class(snapshot.phase is Phase.ROLLED_BACK, "-shown")

    def _draw_reasons(self, gates: list[GateStatus]) -> None:
        lines = list(self.query(".reason").results(Field))
        for extra in lines[len(gates):]:
            extra.remove()
        for index, gate in enumerate(gates):
            if index < len(lines):
                line = lines[index]
            else:
                line = Field(classes="reason")
                self.mount(line)
            line.set(reason_line(gate))
            line.set_class(gate.verdict is Verdict.FAIL, "-fail")
            line.set_class(gate.verdict is Verdict.INCONCLUSIVE, "-inconclusive")
        self._fit_reasons()

    def on_resize(self, _event: events.Resize) -> None:
        self._fit_reasons()
        if self._snapshot is not None:
            self.show(self._snapshot)  # the dashboard's address, in full where it now fits

    def _fit_reasons(self) -> None:
        width = self.content_region.width - 2  # the reason's own padding
        if width <= 0:
            return
        for line in self.query(".reason, .hint, .analysis").results(Field):
            rows = len(Text(line.text).wrap(self.app.console, width))
            if line.styles.height != Scalar.from_number(max(1, rows)):
                line.styles.height = max(1, rows)

    def _cells(
        self, snapshot: Snapshot, table: GatesTable, gate: GateStatus, old: bool
    ) -> dict[str, Any]:
        unit = gate.unit or metric_unit(snapshot, gate.spec.metric)
        style = table.get_component_rich_style(f"gates--{gate.verdict.value}", partial=True)
        value_style = table.get_component_rich_style("gates--old", partial=True) if old else ""
        fails = Text(fails_cell(gate))
        if gate.consecutive_failures:
            fails.stylize(table.get_component_rich_style("gates--fail", partial=True))
        return {
            "gate": Text(gate.name),
            "verdict": Text(VERDICT_LABEL[gate.verdict], style=style),
            **self._evidence_cells(table, gate, value_style),
            "canary": Text(fmt.metric(gate.canary, unit), style=value_style, justify="right"),
            "baseline": Text(fmt.metric(gate.baseline, unit), style=value_style,
                             justify="right"),
            "threshold": Text(fmt.threshold(gate.spec, unit)),
            "fails": fails,
        }

    @staticmethod
    def _evidence_cells(table: GatesTable, gate: GateStatus, value_style: Any
                        ) -> dict[str, Any]:
        """The bar, this step's counts and the interval of a gate judged on counts; a
        gate judged on values says so in the bar's place."""
        ev = gate.evidence
        if ev is None:
            label = "values" if gate.judged.startswith("values") else ""
            muted = table.get_component_rich_style("gates--old", partial=True)
            return {"evidence": Text(label, style=muted), "counts": Text(""),
                    "interval": Text("")}
        good = table.get_component_rich_style("gates--pass", partial=True)
        bad = table.get_component_rich_style("gates--bar-fail", partial=True)
        tick, left, middle, right, cross = fmt.evidence_bar(ev.pass_e_value, ev.e_value,
                                                            ev.alpha)
        bar = Text.assemble((tick, good), (left, good), middle, (right, bad), (cross, bad))
        shown = (f"{fmt.counts(ev.canary_events, ev.canary_total)} vs "
                 f"{fmt.counts(ev.baseline_events, ev.baseline_total)}")
        return {
            "evidence": bar,
            "counts": Text(shown, style=value_style),
            "interval": Text(fmt.interval(ev.low, ev.high), style=value_style),
        }
