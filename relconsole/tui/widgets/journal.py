"""The latest events, newest at the bottom, capped so a long release cannot grow memory.

At 80×24 the panel is about 28×3, so a line is never cut at its border: it wraps, and
Enter on the focused log opens every event at full width with the values it carries
(`JournalDetails`). A console that attaches late shows the release's past from the
journal first (events marked `past`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Self

from rich.console import Group
from rich.padding import Padding
from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import RichLog

from relconsole import units
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
    EventKind.HOLD: "warning",
    EventKind.PROVIDER: "warning",
    EventKind.STEP: "success",
    EventKind.PROMOTED: "success",
    EventKind.RESUME: "success",
}

COMPONENTS = {
    "journal--time",
    "journal--error",
    "journal--warning",
    "journal--success",
    "journal--accent",
    "journal--muted",
}

COMPONENT_CSS = """
    & > .journal--time { color: $rc-muted; }
    & > .journal--error { color: $text-error; text-style: bold; }
    & > .journal--warning { color: $text-warning; }
    & > .journal--success { color: $text-success; }
    & > .journal--accent { color: $text-accent; }
    & > .journal--muted { color: $rc-muted; }
"""


def level(event: Event) -> str | None:
    """The colour of an event's line: its kind's, or for a verdict the verdict's."""
    if event.kind is EventKind.VERDICT:
        return {"pass": "success", "fail": "error"}.get(str(event.data.get("verdict")),
                                                        "warning")
    return "accent" if event.kind.is_flag else KIND_STYLE.get(event.kind)


def gate_detail(raw: Mapping[str, Any], said: str = "") -> str:
    """One gate of an event's data as a line: verdict, values in its unit, threshold,
    and its reason unless the event's message (`said`) already gives it."""
    name = str(raw.get("gate", "?"))
    unit = raw.get("unit")
    unit = unit if isinstance(unit, str) else units.guess(name)
    parts = [name, str(raw.get("verdict", "")).upper()]
    for role in ("canary", "baseline"):
        value = raw.get(role)
        if isinstance(value, int | float) and not isinstance(value, bool):
            parts.append(f"{role} {units.value(float(value), unit)}")
    if raw.get("threshold"):
        parts.append(str(raw["threshold"]))
    if "consecutive_failures" in raw:
        parts.append(f"fails {raw['consecutive_failures']}")
    line = "  ".join(parts)
    reason = str(raw.get("reason") or "")
    if not reason or reason == "within thresholds" or reason in said:
        return line
    return f"{line} — {reason}"


def details(event: Event) -> list[str]:
    """What an event carries beyond its message, one line each (gate values first)."""
    data = event.data
    lines: list[str] = []
    gates = data.get("gates")
    if isinstance(gates, list):
        lines += [gate_detail(g, event.message) for g in gates if isinstance(g, Mapping)]
    if event.kind is EventKind.VERDICT and "gate" in data:
        lines.append(gate_detail(data, event.message))
        return lines
    for key, value in data.items():
        if key == "gates":
            continue
        if isinstance(value, float):
            value = f"{value:.4g}"
        lines.append(f"{key}: {value}")
    return lines


def event_text(event: Event) -> str:
    """An event as plain text, the way the detail view shows it (for the clipboard)."""
    head = f"{fmt.clock(event.at)} {event.kind.value}"
    if event.actor:
        head += f"  {event.actor}"
    return "\n".join([head, f"  {event.message}", *(f"    {line}" for line in details(event))])


class JournalLog(RichLog):
    COMPONENT_CLASSES: ClassVar[set[str]] = COMPONENTS

    BINDINGS: ClassVar[list[BindingType]] = [
        # Not in the footer (its room is for the release's keys); the panel's border
        # says it while the log has focus.
        Binding("enter", "details", "details", show=False),
    ]

    DEFAULT_CSS = """
    JournalLog {
        background: transparent;
        height: 1fr;
        scrollbar-size-vertical: 1;
        /* Lines are wrapped to the width they are written at: a scrollbar that comes
           and goes would cut the last cell of every line. */
        scrollbar-gutter: stable;
        overflow-x: hidden;
    """ + COMPONENT_CSS + """
    }
    """

    def __init__(self) -> None:
        # min_width 1: RichLog's default of 78 would wrap at 78 cells in a 28-cell log.
        # auto_scroll off: the anchor follows the newest line, and `_follow` decides.
        super().__init__(max_lines=MAX_LINES, min_width=1, wrap=True, markup=False,
                         auto_scroll=False)
        self.written_width = 0
        """The width the lines on screen were wrapped at (0: not known yet)."""
        self._held_at: int | None = None
        """The first line of a newest event taller than the log, while the view is held
        there (by this log, not by the operator scrolling)."""
        self._pinning = False
        self._operator_moved = False

    def on_mount(self) -> None:
        # RichLog's auto_scroll alone is not enough: its scroll to the end is refused while
        # the vertical scrollbar is not shown yet, so lines that overflow the log in one
        # refresh left it at the top (how often depended on timing). Anchored, every
        # layout pass pins it to the newest line until the operator scrolls up.
        self.anchor()

    def following(self) -> bool:
        """Whether the view follows the newest event (the operator has not scrolled)."""
        if not self._anchor_released:
            self._operator_moved = False
            return True
        return self._held_at is not None and not self._operator_moved

    def release_anchor(self) -> None:
        # Every scroll releases the anchor; only the operator's means "stop following".
        super().release_anchor()
        if not self._pinning:
            self._operator_moved = True

    def add_line(self, line: Text, *, follow: bool | None = None) -> None:
        follow = self.following() if follow is None else follow
        before, trimmed = len(self.lines), self._start_line
        # RichLog on its own wraps at the console's width at most (80 in a headless run),
        # whatever the log's own width: the width is given, so a line uses all of it.
        width = self.scrollable_content_region.width if self._size_known else 0
        if width:
            self.written_width = width
        self.write(line, width=width or None, scroll_end=False)
        if follow and self._size_known:
            added = len(self.lines) - before + (self._start_line - trimmed)
            self._follow(len(self.lines) - added, added)

    def _follow(self, start: int, height: int) -> None:
        """Show the newest event: all of it, or — when it is taller than the log (a 28×3
        log at 80×24) — its first lines rather than the tail of a sentence."""
        view = self.scrollable_content_region.height
        if view and height > view:
            self._held_at = start
            self._pinning = True
            try:
                self.scroll_to(y=start, animate=False, immediate=True)
            finally:
                self._pinning = False
        else:
            self._held_at = None
            self.scroll_end(animate=False, immediate=True)

    def replace_lines(self, lines: list[Text]) -> None:
        """Write every line again (a new theme, a new width), keeping whether it follows."""
        follow = self.following()
        self.clear()
        for index, line in enumerate(lines):
            self.add_line(line, follow=follow and index == len(lines) - 1)

    def on_resize(self, event: events.Resize) -> None:
        # Written lines keep the width they were wrapped at; a new width rewraps them,
        # after RichLog has written what it deferred until its size was known.
        if event.size.width:
            self.call_later(self._rewrap)

    def _rewrap(self) -> None:
        if self.scrollable_content_region.width != self.written_width:
            self.query_ancestor(JournalPanel).rewrite()
        elif self.following() and self.lines:
            self._refollow()

    def _refollow(self) -> None:
        # A new height with the same width: where the newest event starts is unchanged.
        start = self._held_at if self._held_at is not None else len(self.lines) - 1
        self._follow(start, len(self.lines) - start)

    def action_details(self) -> None:
        self.query_ancestor(JournalPanel).open_details()


class JournalDetailsLog(RichLog):
    COMPONENT_CLASSES: ClassVar[set[str]] = COMPONENTS

    BINDINGS: ClassVar[list[BindingType]] = [
        # ↑↓ pick the event that `c` copies (marked ▶); page keys still scroll.
        Binding("up", "pick(-1)", "previous event", show=False),
        Binding("down", "pick(1)", "next event", show=False),
        Binding("home", "pick_end(0)", "first event", show=False),
        Binding("end", "pick_end(-1)", "last event", show=False),
    ]

    DEFAULT_CSS = """
    JournalDetailsLog {
        background: transparent;
        height: 1fr;
        scrollbar-gutter: stable;
        overflow-x: hidden;
    """ + COMPONENT_CSS + """
    }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.starts: list[int] = []
        """The first line of each event (one write per event; RichLog defers writes
        until its size is known, and then writes them again through here)."""

    def write(self, content: Any, *args: Any, **kwargs: Any) -> Self:
        if self._size_known:
            self.starts.append(len(self.lines))
        return super().write(content, *args, **kwargs)

    def clear(self) -> Self:
        self.starts = []
        return super().clear()

    def show_event(self, index: int) -> None:
        """Scroll so that the event's first lines are in view."""
        if not 0 <= index < len(self.starts):
            return
        start = self.starts[index]
        end = self.starts[index + 1] if index + 1 < len(self.starts) else len(self.lines)
        view = self.scrollable_content_region.height
        top = round(self.scroll_y)
        if start < top or end - start > view:
            self.scroll_to(y=start, animate=False, immediate=True)
        elif end > top + view:
            self.scroll_to(y=end - view, animate=False, immediate=True)

    def action_pick(self, step: int) -> None:
        screen = self.screen
        if isinstance(screen, JournalDetails):
            screen.pick(step)

    def action_pick_end(self, which: int) -> None:
        screen = self.screen
        if isinstance(screen, JournalDetails):
            screen.select(which if which >= 0 else len(screen.items) - 1)


class JournalDetails(ModalScreen[None]):
    """Every event of the journal panel at full width, with the values it carries.

    One event is picked (▶, the newest at first; ↑↓ move it): `c` or ctrl+c copies it,
    since neither the mouse nor the terminal can select text in a log.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_details", "close"),
        Binding("enter", "dismiss_details", "close", show=False),
        # ctrl+c too: it is what an engineer presses to copy, and here there is
        # something to copy.
        Binding("c,ctrl+c", "copy_event", "copy", show=False),
    ]

    DEFAULT_CSS = """
    JournalDetails {
        align: center middle;
        & > Vertical {
            width: 100%; height: 100%;
            border: round $rc-border-focus;
            border-title-style: bold;
            background: $surface;
            padding: 0 1;
        }
    }
    """

    def __init__(self, items: Iterable[Event]) -> None:
        super().__init__()
        self.items = tuple(items)
        self.picked = len(self.items) - 1

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            count = len(self.items)
            box.border_title = f"Journal — {count} event{'s' if count != 1 else ''}"
            box.border_subtitle = "esc close · ↑↓ pick · c copy"
            yield JournalDetailsLog(max_lines=MAX_LINES * 8, min_width=1, wrap=True,
                                    markup=False, auto_scroll=False)

    def on_mount(self) -> None:
        log = self.query_one(JournalDetailsLog)
        self._write(log)
        log.focus()
        # Once the deferred writes are done: the newest event in view.
        self.call_after_refresh(lambda: log.show_event(self.picked))

    def _write(self, log: JournalDetailsLog) -> None:
        def style(name: str) -> Style:
            return log.get_component_rich_style(f"journal--{name}", partial=True)

        log.clear()
        for index, event in enumerate(self.items):
            head = Text("▶ " if index == self.picked else "  ", style="bold")
            head.append_text(Text.assemble(
                (fmt.clock(event.at), style("time")), " ",
                (event.kind.value, style(level(event) or "muted")),
            ))
            if event.actor:
                head.append(f"  {event.actor}", style("muted"))
            if event.past:
                head.append("  (from the journal)", style("muted"))
            # Indented as a block, so a wrapped line stays under the event it belongs to.
            # One write per event: the log counts where each begins.
            log.write(Group(
                head,
                Padding(Text(event.message), (0, 0, 0, 4)),
                *(Padding(Text(line, style=style("muted")), (0, 0, 0, 6))
                  for line in details(event)),
            ))

    def pick(self, step: int) -> None:
        self.select(self.picked + step)

    def select(self, index: int) -> None:
        index = max(0, min(len(self.items) - 1, index))
        if index == self.picked:
            return
        self.picked = index
        log = self.query_one(JournalDetailsLog)
        top = log.scroll_y
        self._write(log)
        log.scroll_to(y=top, animate=False, immediate=True)
        log.show_event(index)

    def action_copy_event(self) -> None:
        if not 0 <= self.picked < len(self.items):
            return
        event = self.items[self.picked]
        self.app.copy_to_clipboard(event_text(event))
        self.app.notify(f"copied the {fmt.clock(event.at)} {event.kind.value} event (OSC 52: "
                        "a terminal that supports it puts it on the clipboard; s on the "
                        "dashboard saves the whole journal)", title="copy", timeout=8)

    def action_dismiss_details(self) -> None:
        self.dismiss(None)


class JournalPanel(Panel):
    TITLE = "Journal"

    DEFAULT_CSS = """
    JournalPanel { height: 1fr; min-height: 3; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._events: deque[Event] = deque(maxlen=MAX_LINES)
        self._focused = False

    def compose(self) -> ComposeResult:
        yield JournalLog()

    def show(self, snapshot: Snapshot) -> bool:
        return False  # events arrive one by one through `add`

    def _theme_changed(self, _theme: object = None) -> None:
        self.rewrite()

    def rewrite(self) -> None:
        """Write every kept event again (a new theme's colours, a new width to wrap at)."""
        log = self.query_one(JournalLog)
        log.replace_lines([self._line(log, event) for event in self._events])

    def add(self, events: Iterable[Event]) -> None:
        log = self.query_one(JournalLog)
        for event in events:
            self._events.append(event)
            log.add_line(self._line(log, event))
        self._subtitle_now()

    def open_details(self) -> None:
        self.app.push_screen(JournalDetails(self._events))

    def on_descendant_focus(self, _event: events.DescendantFocus) -> None:
        self._focused = True
        self._subtitle_now()

    def on_descendant_blur(self, _event: events.DescendantBlur) -> None:
        self._focused = False
        self._subtitle_now()

    def _subtitle_now(self) -> None:
        count = len(self._events)
        text = f"{count} event{'s' if count != 1 else ''}" if count else ""
        if self._focused:
            text = f"{text} · enter: details" if text else "enter: details"
        self.border_subtitle = text

    def _line(self, log: JournalLog, event: Event) -> Text:
        def style(name: str) -> Style:
            return log.get_component_rich_style(f"journal--{name}", partial=True)

        colour = level(event)
        # The messages name what happened ("rolled back: …", "gate x: pass → fail"), so
        # the kind only colours the line; that keeps it readable in 30 columns.
        line = Text.assemble(
            (fmt.clock(event.at), style("time")),
            " ",
            (event.message, style(colour) if colour else ""),
        )
        if event.actor:
            line.append(f"  — {event.actor}", style("muted"))
        return line
