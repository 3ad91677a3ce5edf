"""Feature flags and kill switches; the row under the cursor is the one `k` flips.

Columns that do not fit are left out; the line under the table describes the selected
flag in full (type, rollout, owner, description).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import DataTable

from relconsole.engine.state import Snapshot
from relconsole.flags_audit import Finding, marker
from relconsole.model import Flag
from relconsole.tui.widgets.field import Field
from relconsole.tui.widgets.panel import Panel
from relconsole.tui.widgets.table import Column, FittedTable

COLUMNS = (
    Column("key", "flag", required=True),
    Column("state", "state", required=True),
    Column("audit", "audit"),
    Column("type", "type"),
    Column("owner", "owner"),
)


def ordered(flags: tuple[Flag, ...]) -> list[Flag]:
    """The release's own flags first, otherwise in the provider's order."""
    return sorted(flags, key=lambda f: not f.in_release)


def state_text(flag: Flag) -> str:
    """'KILLED', 'ON', or 'ON 25%' where the flag rolls out to a percentage."""
    if flag.killed:
        return "KILLED"
    return f"ON {flag.rollout}%" if flag.rollout is not None else "ON"


def state_style(flag: Flag) -> str:
    if not flag.killed:
        return "on"
    return "killed-mine" if flag.in_release else "killed"


def describe(flag: Flag, findings: tuple[Finding, ...] = ()) -> str:
    parts = [f"{'★ this release · ' if flag.in_release else ''}{flag.kind.value}"]
    parts.append(f"rollout {flag.rollout}%" if flag.rollout is not None else "no rollout")
    parts.append(f"owner {flag.owner}" if flag.owner else "no owner")
    if flag.description:
        parts.append(flag.description)
    parts.extend(f"audit: {finding.message}" for finding in findings)
    return " · ".join(parts)


class FlagsTable(FittedTable):
    COMPONENT_CLASSES: ClassVar[set[str]] = FittedTable.COMPONENT_CLASSES | {
        "flags--on",
        "flags--killed",
        "flags--killed-mine",
        "flags--mine",
        "flags--muted",
        "flags--audit",
    }

    DEFAULT_CSS = """
    FlagsTable {
        max-height: 12;
        & > .flags--on { color: $text-success; }
        & > .flags--killed { color: $text-error; text-style: bold; }
        & > .flags--killed-mine { color: $text-error; text-style: bold reverse; }
        & > .flags--mine { color: $text-accent; text-style: bold; }
        & > .flags--muted { color: $rc-muted; }
        & > .flags--audit { color: $text-warning; }
    }
    """


class FlagsPanel(Panel):
    TITLE = "Flags"
    SOURCE = "flags"

    DEFAULT_CSS = """
    FlagsPanel {
        padding: 0;
        #detail { width: 1fr; height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    }
    """

    class Selected(Message):
        """The flag under the cursor changed (the footer's `k` label follows it)."""

        def __init__(self, flag: Flag | None) -> None:
            super().__init__()
            self.flag = flag

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._flags: dict[str, Flag] = {}
        self._findings: dict[str, tuple[Finding, ...]] = {}
        self._selected: Flag | None = None

    def compose(self) -> ComposeResult:
        yield FlagsTable(COLUMNS, cursor_type="row")
        yield Field(id="detail")

    @property
    def selected(self) -> Flag | None:
        table = self.query_one(FlagsTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return self._flags.get(str(key.value))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._selection_changed()

    def _selection_changed(self) -> None:
        flag = self.selected
        detail = describe(flag, self._findings.get(flag.key, ())) if flag else ""
        self.query_one("#detail", Field).set(detail)
        if flag != self._selected:
            self._selected = flag
            self.post_message(self.Selected(flag))

    def snapshot_key(self, snapshot: Snapshot) -> Any:
        return snapshot.flags, self._audit(snapshot)

    def _audit(self, snapshot: Snapshot) -> dict[str, tuple[Finding, ...]]:
        try:
            return snapshot.flag_findings()
        except Exception:  # hygiene advice must never cost the operator the flags panel
            return {}

    def subtitle(self, snapshot: Snapshot) -> str:
        if not snapshot.flags:
            return "no flags"
        killed = sum(f.killed for f in snapshot.flags)
        return f"★ this release · {killed} off" if killed else "★ this release"

    def draw(self, snapshot: Snapshot) -> None:
        table = self.query_one(FlagsTable)
        flags = ordered(snapshot.flags)
        self._flags = {f.key: f for f in flags}
        self._findings = self._audit(snapshot)
        table.sync({f.key: self._cells(table, f) for f in flags})
        self._selection_changed()

    def _cells(self, table: FlagsTable, flag: Flag) -> dict[str, Any]:
        def style(name: str):
            return table.get_component_rich_style(f"flags--{name}", partial=True)

        key = Text.assemble(
            ("★ " if flag.in_release else "  ", style("mine")),
            (flag.key, style("mine") if flag.in_release else ""),
        )
        return {
            "key": key,
            "state": Text(state_text(flag), style=style(state_style(flag))),
            "audit": Text(marker(self._findings.get(flag.key, ())), style=style("audit")),
            "type": Text(flag.kind.value, style=style("muted")),
            "owner": Text(flag.owner or "— unowned", style=style("muted")),
        }
