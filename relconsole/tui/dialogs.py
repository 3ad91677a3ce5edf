"""Modal confirmations. They are screens, so the dashboard's keys cannot fire through them.

`ReasonDialog` returns the reason typed (or None when cancelled); with `required=True`
it refuses an empty reason itself, before anything reaches the engine.
`RolloutDialog` returns a flag's new percentage and the reason; it refuses anything but
a whole number from 0 to 100 itself.
`ConfirmDialog` returns True or False.

With `typed_key` (every flag change in a production environment) a dialog also asks for
the flag's key to be typed out; its confirm button stays disabled, and Enter refuses,
until the key matches exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from relconsole.model import Flag

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
    #reason, #percent { margin: 1 0 0 0; }
    #typed-hint { width: 1fr; margin: 1 0 0 0; color: $text-warning; }
    #error { width: 1fr; color: $text-error; text-style: bold; height: auto; min-height: 1; }
    &.-short {  /* 24 rows must hold the longest form: rollout in production */
        #title, #typed-hint { margin: 0; }
        #buttons { margin: 0; }
    }
    #buttons { height: auto; align-horizontal: right; margin: 0 0 1 0; }
    #buttons Button { margin-left: 2; }
"""


def _input(placeholder: str, id: str) -> Input:
    field = Input(placeholder=placeholder, id=id)
    field.cursor_blink = False  # steady cursor: less traffic over SSH, stable tests
    return field


T = TypeVar("T")


class FormDialog(ModalScreen[T]):
    """Inputs checked in order before the dialog may close with a result.

    Enter in a field, or the confirm button, checks every field. The first problem is
    shown in the dialog and its field focused; a later field that is still empty is
    simply focused (Enter moves on) unless the button was pressed or Enter was pressed
    in that very field. `typed_key` adds the production confirmation: the key typed out.
    """

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    FIELDS: tuple[str, ...] = ()  # ids of the inputs, in the order they are checked

    def __init__(self, *, confirm: str, danger: bool, typed_key: str, hint: str) -> None:
        super().__init__()
        self.confirm = confirm
        self.danger = danger
        self.typed_key = typed_key
        self.hint = hint

    def compose_typed(self) -> ComposeResult:
        if self.typed_key:
            hint = self.hint or "Production — to confirm, type the flag's key:"
            yield Label(Content.assemble(hint, " ", (self.typed_key, "bold")), id="typed-hint")
            yield _input("the flag's key, exactly as above", "typed")

    def compose_end(self) -> ComposeResult:
        yield Label("", id="error", markup=False)
        with Horizontal(id="buttons"):
            yield Button("Cancel", id="cancel", variant="default")
            yield Button(
                self.confirm, id="confirm", variant="error" if self.danger else "primary",
                disabled=bool(self.typed_key),
            )

    def problem(self, field: str) -> str:
        """What is wrong with one field ("" when nothing is)."""
        if field == "typed" and self.typed_key and not self.typed_matches():
            if not self.value("typed"):
                return "Type the flag's key, as shown above, to confirm."
            return "That is not the flag's key: type it exactly as shown above."
        return ""

    def result(self) -> T:
        raise NotImplementedError

    def value(self, field: str) -> str:
        return self.query_one(f"#{field}", Input).value.strip()

    def typed_matches(self) -> bool:
        return not self.typed_key or self.value("typed") == self.typed_key

    def problems(self) -> Iterator[tuple[str, str]]:
        for field in (*self.FIELDS, *(("typed",) if self.typed_key else ())):
            message = self.problem(field)
            if message:
                yield field, message

    def on_mount(self) -> None:
        self.query_one(f"#{self.FIELDS[0]}", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "typed":
            self.query_one("#confirm", Button).disabled = not self.typed_matches()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit(event.input.id)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm":
            self._submit(None)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _submit(self, source: str | None) -> None:
        error = self.query_one("#error", Label)
        for field, message in self.problems():
            widget = self.query_one(f"#{field}", Input)
            order = (*self.FIELDS, "typed")
            moving_on = (
                source is not None
                and order.index(field) > order.index(source)
                and not widget.value
            )
            if moving_on:
                error.update("")
            else:
                error.update(message)
                widget.add_class("-invalid")
            widget.focus()
            return
        self.dismiss(self.result())


class ReasonDialog(FormDialog[str | None]):
    """Ask for a reason that goes into the journal; Enter confirms, Escape cancels."""

    DEFAULT_CSS = "ReasonDialog {" + DIALOG_CSS + "}"

    FIELDS = ("reason",)

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
        typed_key: str = "",
        typed_hint: str = "",
    ) -> None:
        super().__init__(confirm=confirm, danger=danger, typed_key=typed_key, hint=typed_hint)
        self.title_text = title
        self.body = body
        self.required = required
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
            yield _input(self.placeholder, "reason")
            yield from self.compose_typed()
            yield from self.compose_end()

    def problem(self, field: str) -> str:
        if field == "reason" and self.required and not self.value("reason"):
            return "A reason is required: it is written to the journal."
        return super().problem(field)

    def result(self) -> str | None:
        return self.value("reason")


@dataclass(frozen=True)
class Rollout:
    percent: int
    reason: str


def parse_percent(text: str) -> int | str:
    """A whole percentage from 0 to 100, or what is wrong with the text."""
    raw = text.strip().removesuffix("%").strip()
    if not raw:
        return "Enter the new percentage: a whole number from 0 to 100."
    if not re.fullmatch(r"[+-]?[0-9]{1,12}", raw):
        return f"“{text.strip()}” is not a whole number: enter 0 to 100."
    percent = int(raw)
    if not 0 <= percent <= 100:
        return f"{percent} is outside 0–100: a rollout is a percentage of users."
    return percent


def rollout_now(flag: Flag) -> str:
    """What the flag serves now, for the dialog's body."""
    if flag.killed:
        now = f"rollout {flag.rollout}%" if flag.rollout is not None else "no percentage rollout"
        return f"It is KILLED (off for everyone) with {now}; a new percentage applies " \
               "once it is restored."
    if flag.rollout is None:
        return "It has no percentage rollout now: ON for everyone it targets."
    return f"It is ON for {flag.rollout}% of users now."


class RolloutDialog(FormDialog[Rollout | None]):
    """The selected flag's new rollout percentage, and the reason for the journal."""

    DEFAULT_CSS = "RolloutDialog {" + DIALOG_CSS + "    #reason { margin: 0; }\n}"

    FIELDS = ("percent", "reason")

    def __init__(self, flag: Flag, *, typed_key: bool = False, typed_hint: str = "") -> None:
        super().__init__(confirm="Set rollout", danger=False,
                         typed_key=flag.key if typed_key else "", hint=typed_hint)
        self.flag = flag

    def compose(self) -> ComposeResult:
        flag = self.flag
        mine = " ★ It belongs to this release." if flag.in_release else ""
        now = "none" if flag.rollout is None else f"{flag.rollout}"
        with Vertical(id="dialog"):
            yield Label(f"Change the rollout of {flag.key}?", id="title", markup=False)
            yield Static(rollout_now(flag) + mine, id="body", markup=False)
            yield _input(f"new percentage, 0–100 (now {now})", "percent")
            yield _input("reason (required — it goes into the journal)", "reason")
            yield from self.compose_typed()
            yield from self.compose_end()

    def on_input_changed(self, event: Input.Changed) -> None:
        # (Textual calls FormDialog's handler as well: it minds the typed key.)
        if event.input.id == "percent":
            percent = parse_percent(event.value)
            label = f"Set {percent}%" if isinstance(percent, int) else self.confirm
            self.query_one("#confirm", Button).label = label

    def problem(self, field: str) -> str:
        if field == "percent":
            percent = parse_percent(self.value("percent"))
            return percent if isinstance(percent, str) else ""
        if field == "reason" and not self.value("reason"):
            return "A reason is required: it is written to the journal."
        return super().problem(field)

    def result(self) -> Rollout | None:
        percent = parse_percent(self.value("percent"))
        assert isinstance(percent, int)
        return Rollout(percent, self.value("reason"))


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
