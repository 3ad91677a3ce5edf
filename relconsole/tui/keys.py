"""The Keys contract of docs/design.md, in one table: bindings, the help screen and the
command palette are all built from it, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


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
    KeySpec("question_mark", "?", "help", "help", "this help", False,
            palette="Help: keys", palette_help="every key of this console"),
    KeySpec("ctrl+p", "ctrl+p", "command_palette", "palette",
            "command palette: every action, every flag, themes", False, bind=False),
    KeySpec("q", "q", "quit", "quit",
            "quit this console; the release is left exactly as it is", False,
            palette="Quit"),
)

DRIVING_ACTIONS = frozenset(k.action for k in KEYS if k.drives)


def bindings() -> list[Binding]:
    """Plain (never priority) bindings: a modal dialog must swallow them."""
    out = [
        Binding(k.key, k.action, k.label, key_display=k.shown if k.shown != k.key else None)
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
    return out
