"""Modal confirmations. They are screens, so the dashboard's keys cannot fire through them.

`ReasonDialog` returns the reason typed (or None when cancelled); with `required=True`
it refuses an empty reason itself, before anything reaches the engine.
`RolloutDialog` returns a flag's new percentage and the reason; it refuses anything but
a whole number from 0 to 100 itself.
`TargetDialog` returns a flag's cohort to serve (`ATTR=V1,V2`) or to remove (`ATTR=`) and
the reason; it refuses a cohort it cannot read, or the removal of one the flag lacks.
`ConfirmDialog` returns True or False; `ChoiceDialog` the id of the choice made, or None.

With `typed_key` (every flag change, and a promotion, in a production environment) a
dialog also asks for a name to be typed out; its confirm button stays disabled, and Enter
refuses, until it matches exactly.

Keys are applied in the order they arrived, however fast they come (`Dialog.take`).
Textual on its own does not: it hands a printable key to the focused input at once, but
acts on Tab, Backspace and Enter only after they have bubbled back up to the app, by
which time the keys behind them have already been handed to the old field. A paste or an
SSH link delivers keys in bursts, so `60 Tab ramp up` became `60ramp up` in one field and
`xyz BSpace×3 abcdefgh` became `xyzabcde`. The app gives every key meant for a dialog to
`take`, which applies it to the dialog's fields there and then.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from textual import events
from textual.actions import parse
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Static
from textual.widgets.input import Selection

from relconsole.engine.flag_actions import SEGMENT_EXAMPLES, attribute_problem, parse_segment
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
    #reason, #percent, #cohort { margin: 1 0 0 0; }
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
    # Textual's select_on_focus selects when the Focus event is handled, which in a burst
    # comes after the keys typed into the field (`Dialog.take` applies them at once), so
    # the next key replaced them: "checkout-api" after Enter became "t-api". The dialog
    # selects at the moment it moves the focus instead (`Dialog.focus_field`).
    field = Input(placeholder=placeholder, id=id, select_on_focus=False)
    field.cursor_blink = False  # steady cursor: less traffic over SSH, stable tests
    return field


T = TypeVar("T")


def _input_keys() -> dict[str, str]:
    """Textual's own Input key bindings (cursor moves, deletions), key → action."""
    keys: dict[str, str] = {}
    for binding in Input.BINDINGS:
        if isinstance(binding, Binding):
            names, action = binding.key, binding.action
        else:
            names, action = binding[0], binding[1]
        for name in names.split(","):
            keys.setdefault(name.strip(), action)
    return keys


INPUT_KEYS = _input_keys()
# Keys a dialog applies itself besides printable ones and INPUT_KEYS. Anything else (ctrl+q)
# takes Textual's usual way.
DIALOG_KEYS = frozenset({"escape", "enter", "tab", "shift+tab", "up", "down", "left", "right"})

Arrival = events.Key | events.Paste


class Dialog(ModalScreen[T]):
    """A modal screen whose keys are applied in arrival order, whatever their timing.

    `take` is called by the app for every key and paste while this dialog is on top, in
    the order the terminal sent them, and applies each one before the next is looked at:
    typing goes into the field focused at that moment, Tab moves the focus at once, Enter
    reads the fields as the keys before it left them. Keys that come before the dialog
    is mounted wait and are applied, in order, once it is.
    """

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self) -> None:
        super().__init__()
        self._waiting: list[Arrival] = []
        self._applying = False
        self._answered = False

    # -- what a dialog is made of (subclasses)

    def first_focus(self) -> Widget | None:
        """The widget that has the focus when the dialog opens."""
        return None

    def cancelled(self) -> T:
        """The result of Escape or Cancel."""
        raise NotImplementedError

    def pressed(self, button: str) -> None:
        """A button was pressed (by Enter, or by the mouse)."""
        self.answer(self.cancelled())

    def submitted(self, field: Input) -> None:
        """Enter in an input."""

    def after_key(self) -> None:
        """After each key applied: keep what depends on the fields (buttons) in step."""

    # -- the order of keys

    def take(self, event: Arrival) -> bool:
        """Apply one key or paste now; False for a key this dialog leaves to Textual."""
        if isinstance(event, events.Key) and not (
            event.is_printable or event.key in DIALOG_KEYS or event.key in INPUT_KEYS
        ):
            return False
        if self._answered:
            return True  # typed after the dialog answered: it must not reach the dashboard
        if not self._applying:
            self._waiting.append(event)
            return True
        self._apply(event)
        return True

    def on_mount(self) -> None:
        self.focus_field(self.first_focus())
        self._applying = True
        early, self._waiting = self._waiting, []
        for event in early:
            if self._answered:
                break
            self._apply(event)

    def answer(self, result: T) -> None:
        if not self._answered:
            self._answered = True
            self.dismiss(result)

    def _apply(self, event: Arrival) -> None:
        focused = self.focused
        if isinstance(event, events.Paste):
            if isinstance(focused, Input):
                # One line, as a field holds one: a pasted newline must not drop the rest.
                _insert(focused, " ".join(line.strip() for line in event.text.splitlines()
                                          if line.strip()))
                self.after_key()
            return
        key = event.key
        if key == "escape":
            self.answer(self.cancelled())
        elif key in ("tab", "shift+tab"):
            self._focus_step(-1 if key == "shift+tab" else 1)
        elif isinstance(focused, Input):
            if key == "enter":
                self.submitted(focused)
            elif event.is_printable and event.character is not None:
                _insert(focused, event.character)
            elif key in INPUT_KEYS:
                _run_input_action(focused, INPUT_KEYS[key])
            self.after_key()
        elif isinstance(focused, Button):
            if key == "enter":
                self.pressed(focused.id or "")
            elif key in ("left", "up"):
                self._focus_step(-1)
            elif key in ("right", "down"):
                self._focus_step(1)

    def focus_field(self, widget: Widget | None) -> None:
        """Focus now, and select a field's text now when the focus moves to it: typing
        replaces what it holds (a prefilled percentage), and keys already applied are
        never selected later. A field that keeps the focus (a wrong name after Enter)
        keeps its text as it is, to be corrected."""
        moved = self.focused is not widget
        self.set_focus(widget)
        if moved and isinstance(widget, Input):
            widget.selection = Selection(0, len(widget.value))

    def _focus_step(self, step: int) -> None:
        chain = [w for w in self.focus_chain if isinstance(w, Input | Button)]
        if not chain:
            return
        at = chain.index(self.focused) if self.focused in chain else -step
        self.focus_field(chain[(at + step) % len(chain)])

    def on_button_pressed(self, event: Button.Pressed) -> None:
        # The mouse: keys never get here (`take` presses buttons itself).
        event.stop()
        if not self._answered:
            self.pressed(event.button.id or "")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        # Only where keys took Textual's own way (a dialog outside ReleaseApp): `take`
        # applies Enter itself and never lets an input submit.
        event.stop()
        if not self._answered:
            self.submitted(event.input)

    def action_cancel(self) -> None:
        self.answer(self.cancelled())


def _insert(field: Input, text: str) -> None:
    if not text:
        return
    selection = field.selection
    if selection.is_empty:
        field.insert_text_at_cursor(text)
    else:
        field.replace(text, *selection)


def _run_input_action(field: Input, action: str) -> None:
    """One of Input's own bindings, run now rather than after the key has bubbled up."""
    _, name, params = parse(action)
    method: Callable[..., object] | None = getattr(field, f"action_{name}", None)
    if method is None or name == "submit":
        return
    outcome = method(*params)
    if hasattr(outcome, "close"):
        outcome.close()  # an async action (none of the editing ones is): not awaited


class FormDialog(Dialog[T | None]):
    """Inputs checked in order before the dialog may close with a result.

    Enter in a field, or the confirm button, checks every field. The first problem is
    shown in the dialog and its field focused; a later field that is still empty is
    simply focused (Enter moves on) unless the button was pressed or Enter was pressed
    in that very field. `typed_key` adds the production confirmation: `typed_what`
    (the flag's key, the service's name) typed out.
    """

    FIELDS: tuple[str, ...] = ()  # ids of the inputs, in the order they are checked

    def __init__(self, *, confirm: str, danger: bool, typed_key: str, hint: str,
                 typed_what: str = "the flag's key") -> None:
        super().__init__()
        self.confirm = confirm
        self.danger = danger
        self.typed_key = typed_key
        self.hint = hint
        self.typed_what = typed_what

    def compose_typed(self) -> ComposeResult:
        if self.typed_key:
            hint = self.hint or f"Production — to confirm, type {self.typed_what}:"
            yield Label(Content.assemble(hint, " ", (self.typed_key, "bold")), id="typed-hint")
            yield _input(f"{self.typed_what}, exactly as above", "typed")

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
                return f"Type {self.typed_what}, as shown above, to confirm."
            return f"That is not {self.typed_what}: type it exactly as shown above."
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

    def first_focus(self) -> Widget | None:
        return self.query_one(f"#{self.FIELDS[0]}", Input)

    def cancelled(self) -> T | None:
        return None

    def after_key(self) -> None:
        if self.typed_key:
            self.query_one("#confirm", Button).disabled = not self.typed_matches()

    def on_input_changed(self, event: Input.Changed) -> None:
        # Edits that do not come through `take` (a test setting a value) count too.
        self.after_key()

    def submitted(self, field: Input) -> None:
        self._submit(field.id)

    def pressed(self, button: str) -> None:
        if button == "confirm":
            self._submit(None)
        else:
            self.answer(None)

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
            self.focus_field(widget)  # now: the next key belongs to this field
            return
        self.answer(self.result())


class ReasonDialog(FormDialog[str]):
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
        typed_what: str = "the flag's key",
    ) -> None:
        super().__init__(confirm=confirm, danger=danger, typed_key=typed_key, hint=typed_hint,
                         typed_what=typed_what)
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

    def result(self) -> str:
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


class RolloutDialog(FormDialog[Rollout]):
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

    def after_key(self) -> None:
        super().after_key()
        percent = parse_percent(self.query_one("#percent", Input).value)
        label = f"Set {percent}%" if isinstance(percent, int) else self.confirm
        self.query_one("#confirm", Button).label = label

    def problem(self, field: str) -> str:
        if field == "percent":
            percent = parse_percent(self.value("percent"))
            return percent if isinstance(percent, str) else ""
        if field == "reason" and not self.value("reason"):
            return "A reason is required: it is written to the journal."
        return super().problem(field)

    def result(self) -> Rollout:
        percent = parse_percent(self.value("percent"))
        assert isinstance(percent, int)
        return Rollout(percent, self.value("reason"))


@dataclass(frozen=True)
class Targeting:
    """A cohort to serve the flag to (`values`), or to stop serving it to (no values)."""

    attribute: str
    values: tuple[str, ...]
    reason: str


def parse_cohort(text: str, flag: Flag) -> Targeting | str:
    """`plan=beta` (serve it), `plan=` (remove the cohort on plan), or what is wrong."""
    raw = text.strip()
    if not raw:
        return f"Enter who it is for: ATTR=V1,V2 (e.g. {SEGMENT_EXAMPLES})."
    attribute, sign, listed = raw.partition("=")
    attribute = attribute.strip()
    if sign and not listed.strip():
        problem = attribute_problem(attribute)
        if problem:
            return problem[0].upper() + problem[1:] + "."
        if not any(s.attribute == attribute for s in flag.segments or ()):
            return f"{flag.key} has no cohort on {attribute} to remove."
        return Targeting(attribute, (), "")
    segment = parse_segment(raw)
    if isinstance(segment, str):
        return segment[0].upper() + segment[1:] + "."
    return Targeting(segment.attribute, segment.values, "")


def cohorts_now(flag: Flag) -> str:
    """Who the flag is on for now, for the target dialog's body."""
    rollout = (f"for {flag.rollout}% of users" if flag.rollout is not None
               else "for everyone it targets")
    cohorts = "; ".join(s.text() for s in flag.segments or ())
    state = "KILLED (off for everyone; cohorts apply once it is restored)" if flag.killed \
        else f"ON {rollout}"
    return f"It is {state}" + (f", and on for {cohorts}." if cohorts else ", with no cohort.")


class TargetDialog(FormDialog[Targeting]):
    """Serve the selected flag to a cohort whatever its percentage, or stop; and why."""

    DEFAULT_CSS = "TargetDialog {" + DIALOG_CSS + "    #reason { margin: 0; }\n}"

    FIELDS = ("cohort", "reason")

    def __init__(self, flag: Flag, *, typed_key: bool = False, typed_hint: str = "") -> None:
        super().__init__(confirm="Target", danger=False,
                         typed_key=flag.key if typed_key else "", hint=typed_hint)
        self.flag = flag

    def compose(self) -> ComposeResult:
        flag = self.flag
        mine = " ★ It belongs to this release." if flag.in_release else ""
        body = (f"{cohorts_now(flag)}{mine} A cohort gets it ON whatever the percentage; "
                "the same attribute replaces its cohort, ATTR= removes it.")
        with Vertical(id="dialog"):
            yield Label(f"Target a cohort with {flag.key}?", id="title", markup=False)
            yield Static(body, id="body", markup=False)
            yield _input("who: userId=alice,bob · plan=beta · country=DE,FR", "cohort")
            yield _input("reason (required — it goes into the journal)", "reason")
            yield from self.compose_typed()
            yield from self.compose_end()

    def after_key(self) -> None:
        super().after_key()
        found = parse_cohort(self.query_one("#cohort", Input).value, self.flag)
        label = self.confirm
        if isinstance(found, Targeting):
            label = (f"Remove {found.attribute}" if not found.values
                     else f"Serve {found.attribute}")
        self.query_one("#confirm", Button).label = label

    def problem(self, field: str) -> str:
        if field == "cohort":
            found = parse_cohort(self.value("cohort"), self.flag)
            return found if isinstance(found, str) else ""
        if field == "reason" and not self.value("reason"):
            return "A reason is required: it is written to the journal."
        return super().problem(field)

    def result(self) -> Targeting:
        found = parse_cohort(self.value("cohort"), self.flag)
        assert isinstance(found, Targeting)
        return Targeting(found.attribute, found.values, self.value("reason"))


class ConfirmDialog(Dialog[bool]):
    """Yes or no. Enter presses the focused button; Escape cancels.

    `default` is the button focused when it opens: "cancel" where a stray Enter must not
    act (cutting a bake short), "confirm" where acting is the way out (retrying a rollback).
    """

    DEFAULT_CSS = "ConfirmDialog {" + DIALOG_CSS + "}"

    def __init__(self, title: str, body: str, *, confirm: str, danger: bool = False,
                 default: str = "confirm") -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.confirm = confirm
        self.danger = danger
        self.default = default

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

    def first_focus(self) -> Widget | None:
        return self.query_one(f"#{self.default}", Button)

    def cancelled(self) -> bool:
        return False

    def pressed(self, button: str) -> None:
        self.answer(button == "confirm")


@dataclass(frozen=True)
class Choice:
    """One answer of a `ChoiceDialog`; with `unavailable` (words that say what is not
    possible, and why) it is shown dimmed, in those words, and cannot be chosen."""

    id: str
    label: str
    unavailable: str = ""


class ChoiceDialog(Dialog[str | None]):
    """One of several answers, one per line; Escape (or a choice with id "cancel") is None.

    The choices are buttons in a column, so each can say in words what it does; the
    default is focused when the dialog opens.
    """

    DEFAULT_CSS = "ChoiceDialog {" + DIALOG_CSS + """
        #choices { height: auto; margin: 1 0 1 0; }
        #choices Button { width: 100%; margin: 0; }
    }"""

    def __init__(self, title: str, body: str, choices: Sequence[Choice], *,
                 warning: str = "", default: str = "cancel", danger: bool = True) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.choices = tuple(choices)
        self.warning = warning
        self.default = default
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="-danger" if self.danger else ""):
            yield Label(self.title_text, id="title", markup=False)
            yield Static(self.body, id="body", markup=False)
            if self.warning:
                yield Static(self.warning, id="warning", markup=False)
            with Vertical(id="choices"):
                for choice in self.choices:
                    # One look for all: only the focus may stand out, or a red choice
                    # reads as the selected one.
                    yield Button(choice.unavailable or choice.label, id=choice.id,
                                 compact=True, disabled=bool(choice.unavailable))

    def first_focus(self) -> Widget | None:
        return self.query_one(f"#{self.default}", Button)

    def cancelled(self) -> str | None:
        return None

    def pressed(self, button: str) -> None:
        self.answer(None if button == "cancel" else button)
