"""The latest events, newest at the bottom, capped so a long release cannot grow memory."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import RichLog

from relconsole.engine.state import Event, EventKind, Snapshot
from relconsole.tui import format as fmt
from relconsole.tui.widgets.panel import Panel

MAX_LINES = 200

# Flag events of every kind are "accent" (`EventKind.is_flag`); verdicts take the colour
# of the verdict they report.
KIND_STYLE: dict[EventKind, str] = {
    EventKind.ERROR: "error",
    EventKind.REFUSED: "error",
    EventKind.ROLLBACK: "error",
    EventKind.ROLLBACK_RETRY: "error",
    EventKind.ROLLED_BACK: "warning",
    EventKind.PAUSE: "warning",
    EventKind.PROVIDER: "warning",
    EventKind.STEP: "success",
    EventKind.PROMOTED: "success",
    EventKind.RESUME: "success",
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

    def on_mount(self) -> None:
        # RichLog's auto_scroll alone is not enough: its scroll to the end is refused while
        # the vertical scrollbar is not shown yet, so lines that overflow the log in one
        # refresh left it at the top (how often depended on timing). Anchored, every
        # layout pass pins it to the newest line until the operator scrolls up.
        self.anchor()


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
        def style(name: str) -> Style:
            return log.get_component_rich_style(f"journal--{name}", partial=True)

        level = "accent" if event.kind.is_flag else KIND_STYLE.get(event.kind)
        if event.kind is EventKind.VERDICT:
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
