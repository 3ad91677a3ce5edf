"""DataTable rows kept in step with the engine, with columns that fit the panel.

Columns are listed in display order. Required columns are always shown; the others are
offered room by rank (their position, unless `rank` says otherwise) and left out, from
the first that does not fit, rather than scrolled off half-visible (the panel shows the
detail elsewhere). A column with `shrink_to` gives up width first: its cells are cut
with an ellipsis, never below that width, so a long flag key does not push out the
columns that matter. Between rebuilds only changed cells are updated (`update_cell`
keeps cursor and scroll). Column widths only grow, so values that change length from
poll to poll do not make the table rebuild every time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable

PADDING = 1  # DataTable's cell_padding: cells added on each side of a column


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    required: bool = False  # shown even when it does not fit
    shrink_to: int = 0  # > 0: may be cut (with an ellipsis) down to this many cells
    rank: int | None = None  # order in which optional columns get room; default position


def same(a: object, b: object) -> bool:
    """Cell equality that sees styles: Rich's Text.__eq__ ignores the base style."""
    if isinstance(a, Text) and isinstance(b, Text):
        return (a.plain, a.style, a.spans, a.justify) == (b.plain, b.style, b.spans, b.justify)
    return a == b


def cell_width(value: object) -> int:
    return value.cell_len if isinstance(value, Text) else Text(str(value)).cell_len


def clip(value: object, width: int) -> object:
    """The cell cut to `width` cells with an ellipsis; unchanged when it fits."""
    if cell_width(value) <= width:
        return value
    text = value.copy() if isinstance(value, Text) else Text(str(value))
    text.truncate(width, overflow="ellipsis")
    return text


class FittedTable(DataTable):
    """A DataTable whose columns are chosen to fit its width."""

    DEFAULT_CSS = """
    FittedTable {
        height: auto;
        background: transparent;
        overflow-x: hidden;
        scrollbar-size-horizontal: 0;
        scrollbar-size-vertical: 1;
        scrollbar-gutter: stable;  /* columns are fitted once, not again when it scrolls */
    }
    """

    def __init__(self, columns: Sequence[Column], **kwargs: object) -> None:
        super().__init__(cell_padding=PADDING, **kwargs)  # type: ignore[arg-type]
        self.spec = tuple(columns)
        self._natural: dict[str, int] = {c.key: cell_width(c.label) for c in columns}
        self._layout: tuple[tuple[str, int], ...] = ()
        self._rows: dict[str, Mapping[str, object]] = {}

    def fit(self, width: int) -> tuple[tuple[str, int], ...]:
        """(column key, width) of the columns to show in `width` cells, in display order."""

        def least(column: Column) -> int:
            natural = self._natural[column.key]
            return min(natural, column.shrink_to) if column.shrink_to else natural

        def cost(columns: list[Column]) -> int:
            return sum(least(c) + 2 * PADDING for c in columns)

        chosen = [c for c in self.spec if c.required]
        optional = sorted(
            (c for c in self.spec if not c.required),
            key=lambda c: self.spec.index(c) if c.rank is None else c.rank,
        )
        for column in optional:
            if cost([*chosen, column]) > width:
                break
            chosen.append(column)
        widths = {c.key: self._natural[c.key] for c in chosen}
        excess = sum(w + 2 * PADDING for w in widths.values()) - width
        for column in chosen:
            if excess <= 0:
                break
            if column.shrink_to:
                cut = min(excess, widths[column.key] - least(column))
                widths[column.key] -= cut
                excess -= cut
        return tuple((c.key, widths[c.key]) for c in self.spec if c.key in widths)

    def sync(self, rows: Mapping[str, Mapping[str, object]]) -> None:
        """Show these rows (row key → column key → cell) and nothing else."""
        for cells in rows.values():
            for key, value in cells.items():
                self._natural[key] = max(self._natural.get(key, 0), cell_width(value))
        self._rows = dict(rows)
        layout = self.fit(self._width())
        if layout != self._layout or [str(k.value) for k in self.rows] != list(rows):
            self._rebuild(layout)
            return
        for row_key, cells in rows.items():
            for column, width in layout:
                value = clip(cells[column], width)
                if not same(self.get_cell(row_key, column), value):
                    self.update_cell(row_key, column, value)

    def _width(self) -> int:
        """Cells available to columns (the scrollbar gutter is kept free)."""
        if not self.size.width:
            return self.app.size.width
        return self.scrollable_content_region.width

    def on_resize(self) -> None:
        if self._rows and self.fit(self._width()) != self._layout:
            self._rebuild(self.fit(self._width()))

    def _rebuild(self, layout: tuple[tuple[str, int], ...]) -> None:
        selected = None
        if self.row_count and self.cursor_type == "row":
            selected = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        labels = {c.key: c.label for c in self.spec}
        self.clear(columns=True)
        self._layout = layout
        for key, width in layout:
            self.add_column(labels[key], key=key, width=width)
        for row_key, cells in self._rows.items():
            self.add_row(*(clip(cells[key], width) for key, width in layout), key=row_key)
        if selected is not None and selected in self._rows:
            self.move_cursor(row=list(self._rows).index(selected), animate=False)
