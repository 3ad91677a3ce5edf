"""The fleet screen: every release in one live table (`relconsole fleet`).

The data comes from a `FleetSource` (Argo Rollouts over a watch, or a folder of configs)
through a `FleetFeed`. The feed marks only rows that really changed, and the screen
drains it at most `MAX_REDRAWS` times a second, so 200 Rollouts moving at once cost a few
redraws a second, each touching only the cells that changed (`FleetTable.show`: rows
are added, removed, updated and reordered in place, never cleared and re-added).

Keys: typing filters (every word must appear in the row), backspace deletes, escape
clears the filter; ← → choose the sort column, ctrl+r reverses it; ↑ ↓ move; enter
attaches the console to the selected release (the app exits with its `Target`, and the
CLI runs the console, then this screen again); ctrl+q quits. Letters are the filter's,
so no action sits on a letter key.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual._two_way_dict import TwoWayDict  # reorder in place; Textual is pinned exactly
from textual.app import App, ComposeResult, ScreenStackError, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer
from textual.widgets.data_table import RowKey

from relconsole.fleet.rows import (
    FleetFeed,
    FleetRow,
    FleetSource,
    Target,
    cell_texts,
    filtered,
    phase_tone,
    sort_rows,
)
from relconsole.tui.themes import (
    NO_COLOR_CSS,
    VARIABLE_DEFAULTS,
    no_color,
    offered,
    register_themes,
    starting_theme,
)
from relconsole.tui.widgets.field import Field
from relconsole.tui.widgets.table import (
    PADDING,
    Column,
    FittedTable,
    cell_width,
    clip,
    same,
)

MAX_REDRAWS = 4.0  # per second, however fast the watch events come
AGE_TICK = 15.0  # seconds between redraws for ages alone ("3m ago" → "4m ago")

COLUMNS: dict[str, Column] = {c.key: c for c in (
    Column("context", "context", shrink_to=7, rank=3),
    Column("namespace", "namespace", shrink_to=6, rank=4),
    Column("name", "rollout", required=True, shrink_to=12),
    # A release id ("checkout-api-2.3.0-production") is long and is what tells two
    # releases apart: it keeps more of itself than a Rollout's name.
    Column("release", "release", required=True, shrink_to=24),
    Column("phase", "phase", required=True),
    Column("step", "step", rank=0),
    Column("weight", "weight", rank=1),
    Column("age", "age", rank=6),
    Column("driver", "driver", shrink_to=10, rank=2),
    Column("last", "last action", shrink_to=14, rank=5),
    Column("config", "config", shrink_to=10, rank=7),
)}
# Who gives up width first when the columns do not fit.
SHRINK_ORDER = ("last", "config", "driver", "namespace", "context", "name", "release")
NUMERIC = frozenset({"step", "weight", "age"})
TONES = ("bad", "warn", "busy", "ok", "muted")


class FleetTable(FittedTable):
    """The fleet's rows, changed in place: adds, removes, cell updates and reorders."""

    COMPONENT_CLASSES: ClassVar[set[str]] = FittedTable.COMPONENT_CLASSES | {
        f"fleet--{tone}" for tone in (*TONES, "stale")
    }

    DEFAULT_CSS = """
    FleetTable {
        height: 1fr;
        & > .fleet--bad { color: $text-error; text-style: bold; }
        & > .fleet--warn { color: $text-warning; text-style: bold; }
        & > .fleet--busy { color: $text-accent; }
        & > .fleet--ok { color: $text-success; }
        & > .fleet--muted { color: $rc-muted; }
        & > .fleet--stale { color: $rc-muted; text-style: italic; }
    }
    /* NO_COLOR: what needs a human now is reversed, what waits for one is bold. */
    FleetTable:nocolor > .fleet--bad { text-style: bold reverse; }
    FleetTable:nocolor > .fleet--stale { text-style: italic; }
    """

    # The table has the focus, so the fleet's keys are bound here, in footer order. Left
    # and right choose the sort column: columns are fitted, never scrolled sideways.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "app.attach", "attach"),
        Binding("right", "app.sort(1)", "sort", key_display="←→"),
        Binding("left", "app.sort(-1)", "sort", show=False),
        Binding("ctrl+r", "app.reverse", "reverse", key_display="^r"),
        Binding("escape", "app.clear_filter", "clear filter", key_display="esc"),
    ]

    def __init__(self, columns: Sequence[Column], **kwargs: Any) -> None:
        super().__init__(columns, cursor_type="row", **kwargs)
        self.redraws = 0  # how many times rows were changed (for the benchmark)
        self.rebuilds = 0

    def fit(self, width: int) -> tuple[tuple[str, int], ...]:
        """As `FittedTable.fit`, but cells give up width in `SHRINK_ORDER`: the last
        action first (the line under the table has it in full), the name last."""
        layout = super().fit(width)
        shown = [key for key, _ in layout]
        widths = {key: self._natural[key] for key in shown}
        spec = {c.key: c for c in self.spec}
        excess = sum(w + 2 * PADDING for w in widths.values()) - width
        for key in SHRINK_ORDER:
            if excess <= 0:
                break
            if key in widths and spec[key].shrink_to:
                cut = min(excess, max(0, widths[key] - spec[key].shrink_to))
                widths[key] -= cut
                excess -= cut
        return tuple((key, widths[key]) for key in shown)

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return str(key) if key is not None else None

    def set_labels(self, labels: Mapping[str, str]) -> None:
        """New column labels (the sort marker); the table is rebuilt with them."""
        self.spec = tuple(Column(c.key, labels.get(c.key, c.label), c.required, c.shrink_to,
                                 c.rank) for c in self.spec)
        for column in self.spec:
            self._natural[column.key] = max(self._natural.get(column.key, 0),
                                            cell_width(column.label))
        self._layout = ()  # force the rebuild on the next show

    def show(self, order: Sequence[str], cells: Mapping[str, Mapping[str, object]],
             changed: Iterable[str]) -> None:
        """Show the rows `order` (row key → cells in `cells`); `changed` are the keys
        whose cells may differ from what is drawn. Everything else stays as drawn."""
        self.redraws += 1
        changed = set(changed)
        for key in changed:
            for column, value in cells.get(key, {}).items():
                width = cell_width(value)
                if width > self._natural.get(column, 0):
                    self._natural[column] = width
        selected = self.selected_key
        self._rows = {key: cells[key] for key in order}
        layout = self.fit(self._width())
        if layout != self._layout:
            self.rebuilds += 1
            self._rebuild(layout)
            return
        wanted = set(order)
        for row in list(self.ordered_rows):
            if row.key.value not in wanted:
                self.remove_row(row.key)
        present = {str(r.key.value) for r in self.ordered_rows}
        for key in order:
            row_cells = cells[key]
            if key not in present:
                self.add_row(*(clip(row_cells[c], w) for c, w in layout), key=key)
            elif key in changed:
                for column, width in layout:
                    value = clip(row_cells[column], width)
                    if not same(self.get_cell(key, column), value):
                        self.update_cell(key, column, value)
        if [str(r.key.value) for r in self.ordered_rows] != list(order):
            self._reorder(order)
        if selected is not None and selected in wanted:
            index = list(order).index(selected)
            if index != self.cursor_row:
                self.move_cursor(row=index, animate=False)

    def _reorder(self, order: Sequence[str]) -> None:
        # DataTable.sort sorts by cell values; the order here is already decided (by
        # values that are not all shown), so it is set directly, as sort() sets it.
        self._row_locations = TwoWayDict({RowKey(key): i for i, key in enumerate(order)})
        self._update_count += 1
        self.refresh()


@dataclass(frozen=True)
class FleetView:
    """How the operator left the table: kept across a visit to a console."""

    sort: str = ""
    reverse: bool = False
    query: str = ""
    selected: str | None = None


class FleetApp(App[Target | None]):
    """Every release of `source` in one table; exits with the release to attach to."""

    TITLE = "relconsole fleet"
    CSS = """
    Screen { layout: vertical; }
    #title { height: 1; padding: 0 1; text-style: bold; }
    #filter { height: 1; padding: 0 1; color: $text-muted; }
    #filter.-active { color: $text; text-style: bold; }
    /* Two lines, each cut with an ellipsis: a long message must not push the last
       action out of its line. The status lines wrap: an error is read in full. */
    #detail { height: 2; width: 100%; padding: 0 1; color: $text-muted;
              text-wrap: nowrap; text-overflow: ellipsis; }
    #status { height: auto; max-height: 4; width: 100%; padding: 0 1; color: $text-muted; }
    #status.-problem { color: $text-warning; text-style: bold; }
    #status.-empty { display: none; }
    """ + NO_COLOR_CSS
    ENABLE_COMMAND_PALETTE = True

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "reverse", "reverse", show=False),
        Binding("escape", "clear_filter", "clear filter", show=False),
        Binding("ctrl+q", "quit", "quit", key_display="^q", priority=True),
    ]

    def __init__(self, source: FleetSource, *, theme: str | None = None, mouse: bool = True,
                 clock: Callable[[], float] = time.time, notice: str = "",
                 start_source: bool = True, feed: FleetFeed | None = None,
                 max_redraws: float = MAX_REDRAWS, view: FleetView | None = None) -> None:
        """`clock` gives the time ages are counted to (wall clock; fixed in tests);
        `notice` is said once at start (how the console was left); `start_source=False`
        leaves filling `feed` to the caller (tests, the benchmark); `view` is the sort,
        filter and selection to start with (`self.view` of the previous fleet)."""
        super().__init__(ansi_color=True if no_color() else None)
        self.source = source
        self.mouse = mouse
        self.clock = clock
        self.notice = notice
        self.start_source = start_source
        self.feed = feed if feed is not None else FleetFeed()
        self.feed.on_change = self._feed_changed
        self.min_interval = 1.0 / max_redraws
        self.columns = tuple(source.columns)
        self.query_text = ""
        # Two clusters: by context first; else by name.
        self.sort_column = next((c for c in ("context", "name", "release")
                                 if c in self.columns), self.columns[0])
        self.sort_reverse = False
        view = view or FleetView()
        if view.sort in self.columns:
            self.sort_column, self.sort_reverse = view.sort, view.reverse
        self.query_text = view.query
        self._reselect = view.selected  # put the cursor back on it once it is listed
        self._selected_at_exit: str | None = view.selected
        self.frame_times: list[float] = []  # seconds each redraw took (benchmark)
        self._wanted_theme = theme
        self._theme_problem = ""
        self._flush_pending = False
        self._last_flush = 0.0
        self._order: list[str] = []
        self._texts: dict[str, dict[str, str]] = {}
        self._cells: dict[str, dict[str, object]] = {}
        self._theme_problem = register_themes(self)

    # ------------------------------------------------------------------ set-up

    def _initial_theme(self) -> str:
        name, problem = starting_theme(self, self._wanted_theme)
        if problem:
            self._theme_problem = problem
        return name

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def compose(self) -> ComposeResult:
        yield Field(id="title")
        yield Field(id="filter")
        yield FleetTable([COLUMNS[c] for c in self.columns])
        yield Field(id="detail")
        yield Field(id="status", classes="-empty")
        yield Footer()

    def run(self, *args: Any, mouse: bool | None = None, **kwargs: Any) -> Any:
        return super().run(*args, mouse=self.mouse if mouse is None else mouse, **kwargs)

    def on_mount(self) -> None:
        self.theme = self._initial_theme()
        if self._theme_problem:
            self.notify(f"{self._theme_problem}; using {self.theme}", severity="warning")
        if self.notice:
            self.notify(self.notice, timeout=20)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.query_one(FleetTable).focus()
        self._label_sort()
        self.feed.drain()  # what was put before the screen existed is drawn here, once
        self._redraw(set(self.feed.rows), statuses=True)
        if self.start_source:
            self.run_worker(self.source.run(self.feed), name="fleet-source", group="source",
                            exit_on_error=False)
        self.set_interval(AGE_TICK, self._tick)

    def _theme_changed(self, _theme: object = None) -> None:
        """Colours baked into cells must be drawn again in the new theme."""
        self._texts.clear()
        self._redraw(set(self.feed.rows), statuses=True)

    # ------------------------------------------------------------------ feed → screen

    def _feed_changed(self) -> None:
        """Coalesce: one redraw for every change since the last, at most MAX_REDRAWS/s."""
        if self._flush_pending:
            return
        self._flush_pending = True
        wait = self._last_flush + self.min_interval - time.monotonic()
        if wait > 0:
            self.set_timer(wait, self._flush_feed)
        else:
            self.call_later(self._flush_feed)

    def _flush_feed(self) -> None:
        self._flush_pending = False
        self._last_flush = time.monotonic()
        drained = self.feed.drain()
        if drained.keys or drained.statuses:
            self._redraw(set(drained.keys), statuses=drained.statuses)

    def _tick(self) -> None:
        self._redraw(set(self.feed.rows))  # only cells whose age text changed are sent

    def flush_now(self) -> None:
        """Draw what the feed holds now (tests, benchmark)."""
        self._flush_feed()

    def _redraw(self, changed: set[str], *, statuses: bool = False) -> None:
        started = time.perf_counter()
        try:
            table = self.query_one(FleetTable)
        except NoMatches:  # exiting: nothing left to draw on
            return
        now = self.clock()
        stale = set(self.feed.problems())
        rows = self.feed.rows
        for key in changed:
            row = rows.get(key)
            if row is None:
                self._texts.pop(key, None)
                self._cells.pop(key, None)
        touched: set[str] = set()
        for key, row in rows.items():
            # Every row's texts are cheap to recompute (ages move on); cells are rebuilt
            # only where a text, or the row's staleness, changed.
            texts = cell_texts(row, now)
            texts["_stale"] = "1" if row.context in stale else ""
            if self._texts.get(key) != texts:
                self._texts[key] = texts
                self._cells[key] = self._style(row, texts, table)
                touched.add(key)
        visible = filtered(rows.values(), self.query_text, now, self.columns)
        order = [row.key for row in sort_rows(visible, self.sort_column, self.sort_reverse)]
        self._order = order
        table.show(order, self._cells, touched)
        if self._reselect is not None and self._reselect in order:
            table.move_cursor(row=order.index(self._reselect), animate=False)
            self._reselect = None
        self._show_lines(now)
        if statuses:
            self._show_status()
        self.frame_times.append(time.perf_counter() - started)

    def _style(self, row: FleetRow, texts: Mapping[str, str], table: FleetTable,
               ) -> dict[str, object]:
        def style(name: str) -> Any:
            return table.get_component_rich_style(f"fleet--{name}", partial=True)

        stale = bool(texts.get("_stale"))
        muted = style("stale") if stale else style("muted")
        cells: dict[str, object] = {}
        for column in self.columns:
            text = texts[column]
            if column == "phase":
                cells[column] = Text(text, style=style("stale") if stale
                                     else style(phase_tone(row.phase)))
            elif column in NUMERIC:
                cells[column] = Text(text, justify="right",
                                     style=muted if stale or column == "age" else "")
            elif column in ("context", "namespace", "last", "config", "driver"):
                cells[column] = Text(text, style=muted)
            else:
                cells[column] = Text(text, style=style("stale") if stale else "")
        return cells

    # ------------------------------------------------------------------ the lines

    def _show_lines(self, now: float) -> None:
        total = len(self.feed.rows)
        shown = len(self._order)
        noun = "release" if total == 1 else "releases"
        self.query_one("#title", Field).set(
            f"relconsole fleet · {self.source.title} · {total} {noun}")
        sort = f"sort: {COLUMNS[self.sort_column].label} " \
               f"{'▼' if self.sort_reverse else '▲'}"
        filt = self.query_one("#filter", Field)
        if self.query_text:
            filt.set(f"filter: {self.query_text}▏  {shown} of {total} shown · esc clears · "
                     f"{sort}")
        else:
            filt.set(f"type to filter · {sort}")
        filt.set_class(bool(self.query_text), "-active")
        self.query_one("#detail", Field).set(self._detail(now))

    def _detail(self, now: float) -> str:
        if not self.feed.rows:
            return "no releases yet" + (" — see below" if self.feed.statuses else "")
        if not self._order:
            return f"nothing matches “{self.query_text}” — esc clears the filter"
        key = self.query_one(FleetTable).selected_key
        row = self.feed.rows.get(key or "")
        if row is None:
            return ""
        where = "/".join(p for p in (row.context, row.namespace, row.name) if p)
        head = f"{where} · {row.phase}" + (f": {row.message}" if row.message else "")
        if row.step:
            head += f" · step {row.step}"
        if row.last is None:
            tail = "no relconsole action recorded"
        else:
            tail = f"last action: {row.last.text(now)}"
            if row.last.reason:
                tail += f" — “{row.last.reason}”"
        return f"{head}\n{tail}"

    def _show_status(self) -> None:
        status = self.query_one("#status", Field)
        lines = [f"{source}: {s.text}" if s.text and not s.text.startswith(source) else s.text
                 for source, s in sorted(self.feed.statuses.items())]
        status.set("\n".join(lines))
        status.set_class(not lines, "-empty")
        status.set_class(any(s.problem for s in self.feed.statuses.values()), "-problem")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.query_one("#detail", Field).set(self._detail(self.clock()))

    # ------------------------------------------------------------------ keys

    async def on_key(self, event: events.Key) -> None:
        """Printable keys type into the filter; backspace deletes; ctrl+u clears it."""
        if len(self.screen_stack) > 1:
            return  # the palette (or another screen) has the keyboard
        if event.key == "backspace":
            self._set_query(self.query_text[:-1])
        elif event.key == "ctrl+u":
            self._set_query("")
        elif event.is_printable and event.character and event.character.isprintable():
            self._set_query(self.query_text + event.character)
        else:
            return
        event.stop()
        event.prevent_default()

    def _set_query(self, text: str) -> None:
        if text != self.query_text:
            self.query_text = text
            self._redraw(set())

    def action_clear_filter(self) -> None:
        if self.query_text:
            self._set_query("")
        else:
            self.notify("no filter to clear — ctrl+q quits, enter attaches", timeout=4)

    def action_sort(self, step: int = 1) -> None:
        index = self.columns.index(self.sort_column) if self.sort_column in self.columns else 0
        self.sort_by(self.columns[(index + step) % len(self.columns)])

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        self.sort_column = column
        if reverse is not None:
            self.sort_reverse = reverse
        self._label_sort()
        self._redraw(set())

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._label_sort()
        self._redraw(set())

    def _label_sort(self) -> None:
        mark = " ▼" if self.sort_reverse else " ▲"
        labels = {c: COLUMNS[c].label + (mark if c == self.sort_column else "")
                  for c in self.columns}
        self.query_one(FleetTable).set_labels(labels)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        column = str(event.column_key.value)
        if column == self.sort_column:
            self.action_reverse()
        else:
            self.sort_by(column, reverse=False)

    def action_attach(self) -> None:
        key = self.query_one(FleetTable).selected_key
        row = self.feed.rows.get(key or "")
        if row is None:
            self.notify("nothing selected", severity="warning")
            return
        if row.target is None:
            self.notify(f"{row.name}: nothing to attach to", severity="warning")
            return
        self.exit(row.target)

    # ------------------------------------------------------------------ palette

    REPLACED_COMMANDS = frozenset({"Quit", "Theme", "Screenshot"})

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title not in self.REPLACED_COMMANDS:
                yield command
        yield SystemCommand("Attach", "the console on the selected release (enter)",
                            self.action_attach)
        for column in self.columns:
            label = COLUMNS[column].label
            yield SystemCommand(f"Sort by {label}", "← → cycle the columns, ctrl+r reverses",
                                partial(self.sort_by, column))
        yield SystemCommand("Reverse the sort", "ctrl+r", self.action_reverse)
        yield SystemCommand("Clear the filter", "escape", partial(self._set_query, ""))
        yield SystemCommand("Quit", "leave the fleet (ctrl+q)", self.action_quit)
        if no_color():
            return
        for name in offered(self.available_themes):
            yield SystemCommand(f"Theme: {name}", "colour theme",
                                partial(setattr, self, "theme", name))

    @property
    def view(self) -> FleetView:
        """Sort, filter and selection now (or when the app exited)."""
        try:
            selected = self.query_one(FleetTable).selected_key
        except (NoMatches, ScreenStackError):  # exited (or never ran): no table
            selected = self._selected_at_exit
        return FleetView(self.sort_column, self.sort_reverse, self.query_text, selected)

    def exit(self, *args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(NoMatches, ScreenStackError):
            self._selected_at_exit = self.query_one(FleetTable).selected_key
        super().exit(*args, **kwargs)

    # ------------------------------------------------------------------ for tests

    @property
    def shown(self) -> list[str]:
        """Row keys in the order the table shows them."""
        return [str(r.key.value) for r in self.query_one(FleetTable).ordered_rows]
