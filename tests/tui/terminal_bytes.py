"""What a terminal is sent, read back as cells: each character with the colours it is
drawn in, so a test can say "no character is drawn in its own background colour".

`screen_bytes` renders the console's current screen exactly as Textual's driver writes
it (the compositor's update through a Rich console of the given colour depth), and
`cells` parses those bytes — or bytes read from a real pty — with a small SGR reader.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from rich.color import EIGHT_BIT_PALETTE
from rich.console import Console
from textual.app import App

# CSI: ESC [ parameters intermediates final; OSC: ESC ] … BEL or ST; other ESC x pairs.
ESCAPE = re.compile(
    r"\x1b\[(?P<params>[0-?]*)[ -/]*(?P<final>[@-~])"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[P^_][^\x1b]*\x1b\\"
    r"|\x1b[^\[\]P^_]"
)

DEFAULT_FG = ("default", "foreground")
DEFAULT_BG = ("default", "background")

Colour = tuple[str, object]


@dataclass(frozen=True)
class Cell:
    char: str
    fg: Colour  # as drawn: after reverse video is applied
    bg: Colour
    reverse: bool
    bold: bool


def screen_bytes(app: App[object], depth: str) -> str:
    """The escape sequences that draw the whole current screen at this colour depth
    ("truecolor", "256" or "standard")."""
    width, height = app.size
    console = Console(color_system=depth, force_terminal=True, file=io.StringIO(),
                      width=width, height=height, legacy_windows=False, safe_box=False)
    update = app.screen._compositor.render_update(full=True)
    # Rich caches a style's escape codes on the style without the colour system: one
    # rendered at truecolor would be sent again at 256. Each depth renders afresh.
    for line in update.strips:
        for strip in line:
            for segment in strip:
                if segment.style is not None:
                    segment.style._ansi = None
    return update.render_segments(console)


def _colour(params: list[int], at: int) -> tuple[Colour, int]:
    """An extended colour (38/48;5;n or 38/48;2;r;g;b) at `at`; returns it and the index
    of its last parameter."""
    if params[at + 1] == 5:
        number = params[at + 2]
        if number < 16:  # the terminal's own palette: only the number is known
            return ("ansi", number), at + 2
        return ("rgb", tuple(EIGHT_BIT_PALETTE[number])), at + 2
    return ("rgb", tuple(params[at + 2: at + 5])), at + 4


def cells(data: str) -> list[Cell]:
    """Every character printed, in order, with the colours and attributes it got."""
    fg: Colour | None = None
    bg: Colour | None = None
    reverse = bold = False
    out: list[Cell] = []
    position = 0
    while position < len(data):
        escape = ESCAPE.match(data, position)
        if escape:
            position = escape.end()
            if escape.group("final") != "m":
                continue
            params = [int(p) if p else 0 for p in (escape.group("params") or "0").split(";")]
            index = 0
            while index < len(params):
                p = params[index]
                if p == 0:
                    fg = bg = None
                    reverse = bold = False
                elif p == 1:
                    bold = True
                elif p == 22:
                    bold = False
                elif p == 7:
                    reverse = True
                elif p == 27:
                    reverse = False
                elif 30 <= p <= 37 or 90 <= p <= 97:
                    fg = ("ansi", p - 30 if p < 90 else p - 90 + 8)
                elif 40 <= p <= 47 or 100 <= p <= 107:
                    bg = ("ansi", p - 40 if p < 100 else p - 100 + 8)
                elif p == 39:
                    fg = None
                elif p == 49:
                    bg = None
                elif p in (38, 48):
                    colour, index = _colour(params, index)
                    if p == 38:
                        fg = colour
                    else:
                        bg = colour
                index += 1
            continue
        char = data[position]
        position += 1
        if char in "\r\n\b\x07":
            continue
        shown_fg, shown_bg = fg or DEFAULT_FG, bg or DEFAULT_BG
        if reverse:
            shown_fg, shown_bg = shown_bg, shown_fg
        out.append(Cell(char, shown_fg, shown_bg, reverse, bold))
    return out


def invisible(drawn: list[Cell]) -> list[Cell]:
    """Visible characters drawn in their own background colour (a space hides nothing)."""
    return [c for c in drawn if not c.char.isspace() and c.fg == c.bg]


def colour_codes(data: str) -> set[str]:
    """Every SGR colour parameter sent other than "the terminal's default" (39, 49)."""
    found: set[str] = set()
    for escape in ESCAPE.finditer(data):
        if escape.group("final") != "m" or not escape.group("params"):
            continue
        params = [int(p) if p else 0 for p in escape.group("params").split(";")]
        index = 0
        while index < len(params):
            p = params[index]
            if p in (38, 48):
                colour, last = _colour(params, index)
                found.add(f"{p};{colour}")
                index = last
            elif 30 <= p <= 37 or 40 <= p <= 47 or 90 <= p <= 97 or 100 <= p <= 107:
                found.add(str(p))
            index += 1
    return found


def text_of(drawn: list[Cell], *, reverse: bool | None = None) -> str:
    """The characters drawn (only those in reverse video, or only those not, if asked)."""
    return "".join(c.char for c in drawn if reverse is None or c.reverse == reverse)
