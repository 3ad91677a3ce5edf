"""The Keys contract of docs/design.md, in one table: bindings, the help screen, the
command palette and the footer are all built from it, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # not re-exported; Textual is pinned exactly


@dataclass(frozen=True)
class KeySpec:
    key: str  # Textual key name
    shown: str  # how a human writes it
    action: str
    label: str  # footer text
    help: str  # help screen text
    drives: bool  # changes the release: refused in watch-only mode
    bind: bool = True  # False where Textual already binds the key (ctrl+p)
    # Command palette title; "" leaves the key out of the palette, which offers the
    # selected-flag actions once per flag instead ("Kill flag KEY", "Set rollout of ...").
    palette: str = ""
    palette_help: str = ""  # palette text where the help screen's ("this help") reads wrong
    # Always in the footer, however narrow: the way to every other key, and the way out.
    always: bool = False
    # Not in the footer, whose room is for the release's keys; `?`, the palette and the
    # panel that the key is about (its border) name it instead.
    footer: bool = True
    # A hidden twin that answers the key while the action is not offered, saying why.
    refused_by: str = ""


KEYS: tuple[KeySpec, ...] = (
    KeySpec("a", "a", "advance", "advance",
            "advance one step (refused while a gate fails or has no data)", True,
            palette="Advance one step"),
    KeySpec("p", "p", "pause", "pause", "pause the release (asks for an optional reason)", True,
            palette="Pause the release"),
    KeySpec("p", "p", "resume", "resume", "resume a paused release", True,
            palette="Resume the release"),
    KeySpec("P", "P", "promote", "promote",
            "promote: send 100% to the canary (asks to confirm)", True,
            palette="Promote to 100%"),
    KeySpec("r", "r", "rollback", "rollback",
            "roll back: all traffic to stable (asks for a reason)", True,
            palette="Roll back"),
    KeySpec("k", "k", "kill_flag", "kill",
            "kill switch: selected flag off for everyone (asks for a reason)", True),
    KeySpec("k", "k", "restore_flag", "restore",
            "restore: selected killed flag back on (asks for a reason)", True),
    KeySpec("percent_sign", "%", "set_rollout", "rollout",
            "rollout: selected flag's percentage, 0–100 (asks for a reason)", True),
    # Not in the footer (its room is the release's): `?` and the palette name it.
    KeySpec("c", "c", "target_flag", "cohort",
            "cohort: selected flag on for a cohort (plan=beta; asks for a reason)", True,
            footer=False),
    # Not a driving key: it is how a watcher becomes the driver, when nobody drives.
    KeySpec("t", "t", "take_lease", "take it",
            "take the free lease: drive from this console (only while nobody drives; "
            "asks for a reason)", False, palette="Take the free lease",
            refused_by="refuse_take"),
    KeySpec("g", "g", "gate_details", "gates",
            "gate details: each gate's query as sent, values and their age, dashboard",
            False, palette="Gate details", footer=False),
    KeySpec("s", "s", "save_journal", "save",
            "save the journal as Markdown (current folder, else the state folder)",
            False, palette="Save journal to a file", footer=False),
    KeySpec("question_mark", "?", "help", "help", "this help", False,
            palette="Help: keys", palette_help="every key of this console", always=True),
    KeySpec("ctrl+p", "ctrl+p", "command_palette", "palette",
            "command palette: every action, every flag, themes", False, bind=False),
    KeySpec("q", "q", "quit", "quit",
            "quit; while it drives a release mid-step, asks how to leave it", False,
            palette="Quit", always=True),
)

DRIVING_ACTIONS = frozenset(k.action for k in KEYS if k.drives)
ALWAYS_SHOWN = frozenset(k.key for k in KEYS if k.always)


def bindings() -> list[Binding]:
    """Plain (never priority) bindings: a modal dialog must swallow them."""
    out = [
        Binding(k.key, k.action, k.label, key_display=k.shown if k.shown != k.key else None,
                show=k.footer)
        for k in KEYS
        if k.bind
    ]
    # In watch-only mode the real action is disabled and hidden, and the key falls
    # through to this hidden twin, which explains why nothing happened.
    out += [
        Binding(k.key, f"refuse_watch('{k.action}')", show=False)
        for k in KEYS
        if k.drives
    ]
    out += [Binding(k.key, k.refused_by, show=False) for k in KEYS if k.refused_by]
    return out


class ReleaseFooter(Footer):
    """Textual's footer, except that `?` and `q` always show.

    Textual lays the keys out in one row and lets the screen clip whatever does not fit,
    and `q quit` is last: at 60 columns it was gone. Here the keys that do not fit are
    left out whole, from the right, until `?` and `q` fit; `?` lists the others.
    """

    def compose(self) -> ComposeResult:
        yield from super().compose()
        self.call_after_refresh(self._fit)

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    def _fit(self) -> None:
        keys = list(self.query(FooterKey))
        if not keys or not self.size.width:
            return
        always = [k for k in keys if k.key in ALWAYS_SHOWN]
        room = self.size.width - sum(_width(k) for k in always)
        for key in keys:
            if key.key in ALWAYS_SHOWN:
                continue
            fits = _width(key) <= room
            if fits:
                room -= _width(key)
            else:
                room = 0  # a later, shorter key must not jump into a gap out of order
            if key.display != fits:
                key.display = fits


def _width(key: FooterKey) -> int:
    """Cells the key takes in the footer row, shown or not."""
    return key.render().cell_len + key.styles.margin.width
