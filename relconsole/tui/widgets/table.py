"""DataTable rows kept in step with the engine, with columns that fit the panel.

Columns are listed in priority order; those that do not fit the panel's width are left
out rather than scrolled off half-visible (the panel shows the detail elsewhere).
Between rebuilds only changed cells are
updated (`update_cell` keeps cursor and scroll). Column widths only grow, so values
that change length from poll to poll do not make the table rebuild every time.
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


def same(a: object, b: object) -> bool:
    """Cell equality that sees styles: Rich's Text.__eq__ ignores the base style."""
    if isinstance(a, Text) and isinstance(b, Text):
        return (a.plain, a.style, a.spans, a.justify) == (b.plain, b.style, b.spans, b.justify)
    return a == b


def cell_width(value: object) -> int:
    return value.cell_len if isinstance(value, Text) else Text(str(value)).cell_len


class FittedTable(DataTable):
    """A DataTable whose columns are chosen to fit its width."""

    DEFAULT_CSS = """
    FittedTable {
        height: auto;
        background: transparent;
        overflow-x: hidden;
        scrollbar-size-horizontal: 0;
    }
    """

    def __init__(self, columns: Sequence[Column], **kwargs: object) -> None:
        super().__init__(cell_padding=PADDING, **kwargs)  # type: ignore[arg-type]
        self.spec = tuple(columns)
        self._natural: dict[str, int] = {c.key: cell_width(c.label) for c in columns}
        self._layout: tuple[tuple[str, int], ...] = ()
        self._rows: dict[str, Mapping[str, object]] = {}

    def fit(self, width: int) -> tuple[tuple[str, int], ...]:
        """(column key, width) of the columns to show in `width` cells, in order."""
        chosen: list[tuple[str, int]] = []
        used = 0
        for column in self.spec:
            natural = self._natural[column.key]
            cost = natural + 2 * PADDING
            if used + cost > width and not column.required:
                break
            chosen.append((column.key, natural))
            used += cost
        return tuple(chosen)

    def sync(self, rows: Mapping[str, Mapping[str, object]]) -> None:
        """Show these rows (row key → column key → cell) and nothing else."""
        for cells in rows.values():
            for key, value in cells.items():
                self._natural[key] = max(self._natural.get(key, 0), cell_width(value))
        self._rows = dict(rows)
        layout = self.fit(self.size.width or self.app.size.width)
        if layout != self._layout or [str(k.value) for k in self.rows] != list(rows):
            self._rebuild(layout)
            return
        shown = [key for key, _ in layout]
        for row_key, cells in rows.items():
            for column in shown:
                value = cells[column]
                if not same(self.get_cell(row_key, column), value):
                    self.update_cell(row_key, column, value)

    def on_resize(self) -> None:
        if self._rows and self.fit(self.size.width) != self._layout:
            self._rebuild(self.fit(self.size.width))

    def _rebuild(self, layout: tuple[tuple[str, int], ...]) -> None:
        selected = None
        if self.row_count and self.cursor_type == "row":
            selected = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        labels = {c.key: c.label for c in self.spec}
        self.clear(columns=True)
        self._layout = layout
        for key, width in layout:
            self.add_column(labels[key], key=key, width=width)
        shown = [key for key, _ in layout]
        for row_key, cells in self._rows.items():
            self.add_row(*(cells[key] for key in shown), key=row_key)
        if selected is not None and selected in self._rows:
            self.move_cursor(row=list(self._rows).index(selected), animate=False)
