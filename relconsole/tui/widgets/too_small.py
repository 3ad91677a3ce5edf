"""What the console shows in a terminal too small for its layout: a plain sentence.

Below the minimum the panels would be cut to borders and half-words, which reads as a
broken screen; this says what the size is, what it needs, and where the release
stands in one line, so the operator knows nothing went wrong with the release.
"""

from __future__ import annotations

from textual.geometry import Size
from textual.widgets import Static

from relconsole.engine.state import Snapshot

MIN_WIDTH = 60
MIN_HEIGHT = 20


def too_small(size: Size) -> bool:
    return size.width < MIN_WIDTH or size.height < MIN_HEIGHT


def message(size: Size, snapshot: Snapshot | None) -> str:
    lines = [
        f"Terminal too small: {size.width}×{size.height}.",
        f"relconsole needs at least {MIN_WIDTH}×{MIN_HEIGHT}: enlarge the window.",
    ]
    if snapshot is not None:
        plan = snapshot.plan
        lines += [
            "",
            f"{plan.service} · {plan.environment}",
            f"{snapshot.phase.label} · canary {snapshot.weight}%",
        ]
    lines += ["", "The release is not affected. q quits, ? lists the keys."]
    return "\n".join(lines)


class TooSmall(Static):
    DEFAULT_CSS = """
    TooSmall {
        width: 1fr;
        height: 1fr;
        padding: 1 2;
        text-wrap: wrap;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self._text = ""

    def show_for(self, size: Size, snapshot: Snapshot | None) -> None:
        text = message(size, snapshot)
        if text != self._text:
            self._text = text
            self.update(text)
