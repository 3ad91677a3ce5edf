"""Feature flags and kill switches; the row under the cursor is the one `k` and `%` change.

Columns: key (★ for the release's own flags), type, state with rollout and cohorts
("ON 10% +plan"), owner, age and the audit marker (hygiene findings, see `flags_audit`).
Key, state and marker are always shown; a long key is cut with an ellipsis before owner,
age and type (in that order) are left out. The line under the table describes the
selected flag in full, cohorts and findings included.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable

from relconsole.engine.state import Snapshot
from relconsole.flags_audit import MARKERS, Finding, marker
from relconsole.model import Flag, FlagKind
from relconsole.tui import format as fmt
from relconsole.tui.widgets.field import Field
from relconsole.tui.widgets.panel import Panel
from relconsole.tui.widgets.table import Column, FittedTable

KEY_MIN = 20  # cells a key may be cut down to ("★ " and 17 characters and "…")

COLUMNS = (  # display order; `rank` is the order optional columns get room in
    Column("key", "flag", required=True, shrink_to=KEY_MIN),
    Column("type", "type", rank=3),
    Column("state", "state", required=True),
    Column("owner", "owner", rank=1),
    Column("age", "age", rank=2),
    Column("audit", "audit", required=True),
)

KIND_SHORT = {
    FlagKind.RELEASE: "rel",
    FlagKind.EXPERIMENT: "exp",
    FlagKind.OPERATIONAL: "ops",
    FlagKind.KILL_SWITCH: "kill",
    FlagKind.PERMISSION: "perm",
}


def ordered(flags: tuple[Flag, ...]) -> list[Flag]:
    """The release's own flags first, otherwise in the provider's order."""
    return sorted(flags, key=lambda f: not f.in_release)


def state_text(flag: Flag) -> str:
    """'KILLED', 'ON', or 'ON 25%' where the flag rolls out to a percentage; '+plan' for
    each attribute it has a cohort on ('ON 10% +plan'), so 80 columns show it too."""
    if flag.killed:
        return "KILLED"
    text = f"ON {flag.rollout}%" if flag.rollout is not None else "ON"
    if flag.segments:
        text += " +" + ",".join(s.attribute for s in flag.segments)
    return text


def cohorts_text(flag: Flag) -> str:
    """'on for plan = beta; country in DE, FR', or '' without cohorts."""
    if not flag.segments:
        return ""
    return "on for " + "; ".join(s.text() for s in flag.segments)


def state_style(flag: Flag) -> str:
    if not flag.killed:
        return "on"
    return "killed-mine" if flag.in_release else "killed"


# What the feature behind a flag of each kind does when relconsole kills the flag (serves
# its "off" to everyone) — for a kill switch "kill" reads both ways, so say it.
KILL_EFFECT = {
    FlagKind.RELEASE: "the feature it releases is switched off",
    FlagKind.EXPERIMENT: "the experiment stops; everyone gets the control (off) variant",
    FlagKind.OPERATIONAL: "what it switches on stops",
    FlagKind.KILL_SWITCH: "this is a kill switch: the feature it guards is switched OFF",
    FlagKind.PERMISSION: "nobody has the permission it grants",
}
RESTORE_EFFECT = {
    FlagKind.RELEASE: "the feature it releases is back",
    FlagKind.EXPERIMENT: "the experiment runs again",
    FlagKind.OPERATIONAL: "what it switches on starts again",
    FlagKind.KILL_SWITCH: "this is a kill switch: the feature it guards is switched back ON",
    FlagKind.PERMISSION: "the permission it grants is back",
}


def effect(flag: Flag | FlagKind, *, kill: bool) -> str:
    """What a kill (or restore) of this flag does to the feature behind it."""
    kind = flag.kind if isinstance(flag, Flag) else flag
    return (KILL_EFFECT if kill else RESTORE_EFFECT)[kind]


def describe(flag: Flag, findings: tuple[Finding, ...] = (), now: float | None = None) -> Content:
    """The selected flag in one line (or three): everything the table may have cut."""
    parts = [flag.key]
    if flag.in_release:
        parts.append("★ this release")
    parts.append(flag.kind.value)
    if flag.segments:
        parts.append(cohorts_text(flag))
    parts.append(f"rollout {flag.rollout}%" if flag.rollout is not None else "no rollout")
    parts.append(f"owner {flag.owner}" if flag.owner else "no owner")
    if now is not None and flag.created is not None:
        parts.append(f"{fmt.age(flag.age(now))} old")
    text = Content(" · ".join(parts))
    if findings:  # before the description: if three lines are not enough, that is cut
        # Each finding with its letter, so the marker in the table reads the same way.
        audit = "audit: " + "; ".join(
            f"{MARKERS[finding.check]} {finding.message}" for finding in findings
        )
        text = Content.assemble(text, " · ", (audit, "$text-warning"))
    if flag.description:
        text = Content.assemble(text, " · ", flag.description)
    return text


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
        /* Three lines whatever the flag, so moving the cursor does not move the journal. */
        #detail { width: 1fr; height: 3; padding: 0 1; color: $text-muted; }
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
        now = self._snapshot.now if self._snapshot is not None else None
        detail = describe(flag, self._findings.get(flag.key, ()), now) if flag else Content()
        self.query_one("#detail", Field).set(detail)
        if flag != self._selected:
            self._selected = flag
            self.post_message(self.Selected(flag))

    def snapshot_key(self, snapshot: Snapshot) -> Any:
        # Ages are shown coarsely ("12d"): the panel redraws when that text changes.
        ages = tuple(fmt.age(f.age(snapshot.now)) for f in snapshot.flags)
        return snapshot.flags, self._audit(snapshot), ages

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
        table.sync({f.key: self._cells(table, f, snapshot.now) for f in flags})
        self._selection_changed()

    def _cells(self, table: FlagsTable, flag: Flag, now: float) -> dict[str, Any]:
        def style(name: str) -> Style:
            return table.get_component_rich_style(f"flags--{name}", partial=True)

        key = Text.assemble(
            ("★ " if flag.in_release else "  ", style("mine")),
            (flag.key, style("mine") if flag.in_release else ""),
        )
        return {
            "key": key,
            "state": Text(state_text(flag), style=style(state_style(flag))),
            "audit": Text(marker(self._findings.get(flag.key, ())), style=style("audit")),
            "type": Text(KIND_SHORT.get(flag.kind, flag.kind.value[:4]), style=style("muted")),
            "owner": Text(flag.owner or "—", style=style("muted")),
            "age": Text(fmt.age(flag.age(now)), style=style("muted"), justify="right"),
        }
