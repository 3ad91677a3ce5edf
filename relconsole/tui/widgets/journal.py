"""The latest events, newest at the bottom, capped so a long release cannot grow memory."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import RichLog

from relconsole.engine.state import Event, Snapshot
from relconsole.tui import format as fmt
from relconsole.tui.widgets.panel import Panel

MAX_LINES = 200

KIND_STYLE = {
    "error": "error",
    "refused": "error",
    "rollback": "error",
    "rollback.retry": "error",
    "rolled_back": "warning",
    "pause": "warning",
    "provider": "warning",
    "step": "success",
    "promoted": "success",
    "resume": "success",
    "flag": "accent",
}


class JournalLog(RichLog):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "journal--time",
        "journal--error",
        "journal--warning",
        "journal--success",
        "journal--accent",
        "journal--muted",
    }

    DEFAULT_CSS = """
    JournalLog {
        background: transparent;
        height: 1fr;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
        & > .journal--time { color: $rc-muted; }
        & > .journal--error { color: $text-error; text-style: bold; }
        & > .journal--warning { color: $text-warning; }
        & > .journal--success { color: $text-success; }
        & > .journal--accent { color: $text-accent; }
        & > .journal--muted { color: $rc-muted; }
    }
    """


class JournalPanel(Panel):
    TITLE = "Journal"

    DEFAULT_CSS = """
    JournalPanel { height: 1fr; min-height: 3; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._events: deque[Event] = deque(maxlen=MAX_LINES)

    def compose(self) -> ComposeResult:
        yield JournalLog(max_lines=MAX_LINES, wrap=False, markup=False, auto_scroll=True)

    def show(self, snapshot: Snapshot) -> bool:
        return False  # events arrive one by one through `add`

    def _theme_changed(self, _theme: object = None) -> None:
        log = self.query_one(JournalLog)
        log.clear()
        for event in self._events:
            log.write(self._line(log, event))

    def add(self, events: Iterable[Event]) -> None:
        log = self.query_one(JournalLog)
        for event in events:
            self._events.append(event)
            log.write(self._line(log, event))
        count = len(self._events)
        self.border_subtitle = f"{count} event{'s' if count != 1 else ''}" if count else ""

    def _line(self, log: JournalLog, event: Event) -> Text:
        def style(name: str):
            return log.get_component_rich_style(f"journal--{name}", partial=True)

        level = KIND_STYLE.get(event.kind)
        if level is None and event.kind.startswith("flag"):
            level = "accent"
        if event.kind == "verdict":
            level = {"pass": "success", "fail": "error"}.get(
                str(event.data.get("verdict")), "warning"
            )
        # The messages name what happened ("rolled back: …", "gate x: pass → fail"), so
        # the kind only colours the line; that keeps it readable in 30 columns.
        line = Text.assemble(
            (fmt.clock(event.at), style("time")),
            " ",
            (event.message, style(level) if level else ""),
        )
        if event.actor:
            line.append(f"  — {event.actor}", style("muted"))
        return line
