"""The help screen: every key, from the same table as the bindings."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from relconsole.tui.keys import KEYS


def key_table(watching: bool) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    seen: set[str] = set()
    for spec in KEYS:
        text = spec.help
        if watching and spec.drives:
            text += "  [watch-only: refused]"
        shown = spec.shown if spec.shown not in seen else ""
        seen.add(spec.shown)
        table.add_row(shown, text)
    table.add_row("", "")
    table.add_row("↑ ↓", "select a flag (for k and %)")
    table.add_row("tab", "move focus between the flags and the journal")
    table.add_row("escape", "close a dialog or this help without doing anything")
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

    def __init__(self, *, watching: bool, driver: str, production: bool = False) -> None:
        super().__init__()
        self.watching = watching
        self.driver = driver
        self.production = production

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help") as box:
            box.border_title = "relconsole — keys"
            intro = "Actions are journalled, and verified before they are reported done."
            if self.production:
                intro += " This is production: a flag change also asks for the flag's key."
            if self.watching:
                intro = (
                    f"WATCH-ONLY: {self.driver} drives this release. You can look; the "
                    "action keys are refused."
                )
            yield Label(intro, id="intro", markup=False)
            yield Static(key_table(self.watching))
            yield Label("escape, ? or q closes this help", id="close")

    def action_close(self) -> None:
        self.dismiss(None)
