"""The base of every dashboard panel: a border, a title, and redraw-only-on-change.

A panel takes the slice of a `Snapshot` it shows (`snapshot_key`) and redraws only when
that slice differs from the last one it drew: over SSH every refreshed region costs
bytes even if nothing changed. A provider problem shows in the border subtitle
("stale since 12:03:10 — haproxy: connection refused") and turns the border yellow.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual.containers import Vertical

from relconsole.engine.state import ProblemNote, Snapshot
from relconsole.tui import format as fmt


def problem_text(note: ProblemNote) -> str:
    """'stale since 12:03:10 — haproxy: connection refused' (the panel names the source)."""
    message = note.message.removeprefix(f"{note.source}: ")
    return f"stale since {fmt.clock(note.since)} — {message}"


class Panel(Vertical):
    """A bordered box fed by engine snapshots."""

    DEFAULT_CSS = """
    Panel {
        height: auto;
        border: round $rc-border;
        border-title-color: $text;
        border-title-style: bold;
        border-subtitle-color: $text-muted;
        padding: 0 1;
        &:focus-within {
            border: round $rc-border-focus;
        }
        &.-problem {
            border: round $warning;
            border-subtitle-color: $warning;
            border-subtitle-style: bold;
        }
    }
    """

    TITLE: ClassVar[str] = ""
    SOURCE: ClassVar[str | None] = None
    """Which provider's problems this panel reports: "metrics", "traffic" or "flags"."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._drawn: Any = object()  # never equal to a real key: the first show draws
        self._subtitle = ""
        self._snapshot: Snapshot | None = None
        self.border_title = self.TITLE

    def on_mount(self) -> None:
        # Published after the new theme's CSS is in place (a watch on `theme` is too early).
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, _theme: object = None) -> None:
        """Colours baked into cell text must be redrawn in the new theme."""
        if self._snapshot is not None:
            self._drawn = object()
            self.show(self._snapshot)

    def show(self, snapshot: Snapshot) -> bool:
        """Draw the snapshot if this panel's slice of it changed; True when it redrew."""
        self._snapshot = snapshot
        note = snapshot.problem(self.SOURCE) if self.SOURCE else None
        self.set_class(note is not None, "-problem")
        subtitle = problem_text(note) if note else self.subtitle(snapshot)
        if subtitle != self._subtitle:
            self._subtitle = subtitle
            self.border_subtitle = subtitle
        key = self.snapshot_key(snapshot)
        if key == self._drawn:
            return False
        self._drawn = key
        self.draw(snapshot)
        return True

    def snapshot_key(self, snapshot: Snapshot) -> Any:
        """The part of the snapshot this panel shows; equal keys mean no redraw."""
        return snapshot

    def subtitle(self, snapshot: Snapshot) -> str:
        """The border subtitle when no provider problem needs it."""
        return ""

    def draw(self, snapshot: Snapshot) -> None:
        raise NotImplementedError
