"""A one-line label that refreshes only when its text really changes."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Label


class Field(Label):
    """Setting the same text again costs nothing on the wire."""

    def __init__(
        self, text: str | Content = "", *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(text, id=id, classes=classes, markup=False)
        self._text: str | Content = text

    @property
    def text(self) -> str:
        return self._text.plain if isinstance(self._text, Content) else self._text

    def set(self, text: str | Content) -> None:
        if text != self._text:
            self._text = text
            self.update(text)
