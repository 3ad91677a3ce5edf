"""The help screen: every key, from the same table as the bindings."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from relconsole.flags_audit import legend
from relconsole.tui.keys import KEYS

FLAG_KEYS = frozenset({"kill_flag", "restore_flag", "set_rollout", "target_flag"})
# Started again as it is, a rolled-back release attaches ROLLED BACK and stays there:
# its journal says so, and the journal is never deleted.
AFTER_ROLLBACK = (
    "started again unchanged, it stays rolled back. Fix the cause, bump release.version and "
    "run relconsole run -c FILE (a new release, with its own journal); or run the same "
    "version again: relconsole run -c FILE --again --reason TEXT (journalled as restart; "
    "it starts at step 0 and the earlier attempt stays in the journal)"
)


def key_table(watching: bool, flags: bool = True) -> Table:
    """Every key; `flags` False (no flag provider) marks the flag keys as unavailable."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    seen: set[str] = set()
    for spec in KEYS:
        text = spec.help
        if watching and spec.drives:
            text += "  [watch-only: refused]"
        elif not flags and spec.action in FLAG_KEYS:
            text += "  [no flag provider configured]"
        shown = spec.shown if spec.shown not in seen else ""
        seen.add(spec.shown)
        # Text, not markup: "[watch-only: refused]" was read as a style tag and vanished.
        table.add_row(Text(shown), Text(text))
    table.add_row("", "")
    if flags:
        table.add_row("↑ ↓", "select a flag (for k, % and c)")
        table.add_row("tab", "move focus between the flags and the journal")
    table.add_row("escape", "close a dialog or this help without doing anything")
    if flags:
        table.add_row("", "")
        table.add_row("★", "a flag that belongs to this release (release.flags)")
        # The flags table's audit column is one letter per finding: say what each is.
        table.add_row("audit", legend())
    table.add_row("", "")
    table.add_row("enter", "on the journal: every event at full width; there ↑↓ pick one "
                  "(▶), c or ctrl+c copies it")
    table.add_row("ctrl+c", "never quits (q does); copies only in a detail view (enter, g)")
    # Textual captures the mouse and the journal panel supports no selection: say how to
    # get the text out anyway.
    table.add_row("mouse", "a drag selects no text in the journal: shift+drag (option+drag "
                  "on macOS) selects in most terminals, or start with --no-mouse; s saves "
                  "the journal, ctrl+p → Copy journal to clipboard (OSC 52)")
    table.add_row("", "")
    table.add_row("rolled back?", AFTER_ROLLBACK)
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        background: $background 60%;
        #help {
            width: 90;
            max-width: 100%;
            height: auto;
            max-height: 100%;
            border: thick $primary;
            border-title-style: bold;
            background: $surface;
            padding: 0 1;
        }
        #intro { width: 1fr; margin: 1 0; color: $text-muted; }
        #close { margin: 1 0 0 0; color: $text-muted; }
    }
    """

    BINDINGS = [
        Binding("escape", "close", "close"),
        Binding("question_mark", "close", "close", show=False),
        Binding("q", "close", "close", show=False),
    ]

    def __init__(
        self, *, watching: bool, driver: str, production: bool = False, flags: bool = True
    ) -> None:
        super().__init__()
        self.watching = watching
        self.driver = driver
        self.production = production
        self.flags = flags

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help") as box:
            box.border_title = "relconsole — keys"
            intro = "Actions are journalled, and verified before they are reported done."
            if self.production:
                intro += (" This is production: a flag change also asks for the flag's key,"
                          " a promotion for the service's name.")
            if self.watching:
                intro = (
                    f"WATCH-ONLY: {self.driver} drives this release. You can look; the "
                    "action keys are refused."
                )
            yield Label(intro, id="intro", markup=False)
            yield Static(key_table(self.watching, self.flags))
            yield Label("escape, ? or q closes this help", id="close")

    def action_close(self) -> None:
        self.dismiss(None)
