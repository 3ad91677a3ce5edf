"""Modal confirmations. They are screens, so the dashboard's keys cannot fire through them.

`ReasonDialog` returns the reason typed (or None when cancelled); with `required=True`
it refuses an empty reason itself, before anything reaches the engine.
`ConfirmDialog` returns True or False.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

DIALOG_CSS = """
    align: center middle;
    background: $background 60%;
    #dialog {
        width: 72;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 0 2;
    }
    #dialog.-danger { border: thick $error; }
    #title { width: 1fr; text-style: bold; margin: 1 0 0 0; }
    #dialog.-danger #title { color: $text-error; }
    #body { width: 1fr; margin: 1 0 0 0; }
    #warning { width: 1fr; color: $text-warning; text-style: bold; margin: 1 0 0 0; }
    #reason { margin: 1 0 0 0; }
    #error { color: $text-error; text-style: bold; height: 1; }
    #buttons { height: auto; align-horizontal: right; margin: 0 0 1 0; }
    #buttons Button { margin-left: 2; }
"""


class ReasonDialog(ModalScreen[str | None]):
    """Ask for a reason that goes into the journal; Enter confirms, Escape cancels."""

    DEFAULT_CSS = "ReasonDialog {" + DIALOG_CSS + "}"

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(
        self,
        title: str,
        body: str,
        *,
        confirm: str,
        required: bool,
        danger: bool = False,
        warning: str = "",
        placeholder: str = "",
    ) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.confirm = confirm
        self.required = required
        self.danger = danger
        self.warning = warning
        self.placeholder = placeholder or (
            "reason (required — it goes into the journal)"
            if required
            else "reason (optional)"
        )

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="-danger" if self.danger else ""):
            yield Label(self.title_text, id="title", markup=False)
            yield Static(self.body, id="body", markup=False)
            if self.warning:
                yield Static(self.warning, id="warning", markup=False)
            reason = Input(placeholder=self.placeholder, id="reason")
            reason.cursor_blink = False  # steady cursor: less traffic over SSH, stable tests
            yield reason
            yield Label("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel", variant="default")
                yield Button(
                    self.confirm, id="confirm", variant="error" if self.danger else "primary"
                )

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _submit(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        if self.required and not reason:
            self.query_one("#error", Label).update(
                "A reason is required: it is written to the journal."
            )
            self.query_one("#reason", Input).focus()
            return
        self.dismiss(reason)


class ConfirmDialog(ModalScreen[bool]):
    """Yes or no. Enter presses the focused button (the confirm button); Escape cancels."""

    DEFAULT_CSS = "ConfirmDialog {" + DIALOG_CSS + "}"

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, title: str, body: str, *, confirm: str, danger: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.confirm = confirm
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="-danger" if self.danger else ""):
            yield Label(self.title_text, id="title", markup=False)
            yield Static(self.body, id="body", markup=False)
            yield Label("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel", variant="default")
                yield Button(
                    self.confirm, id="confirm", variant="error" if self.danger else "primary"
                )

    def on_mount(self) -> None:
        self.query_one("#confirm", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm")

    def action_cancel(self) -> None:
        self.dismiss(False)
