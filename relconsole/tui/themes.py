"""Theme files (YAML) from the repository's `themes/` folder, as Textual `Theme`s.

A source or editable checkout reads `<repo>/themes`; a wheel carries the same files as
`relconsole/_themes`. Names may be given short: `dark` means `relconsole-dark`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from rich.color import Color as RichColor
from rich.color import ColorSystem
from textual.app import App
from textual.color import Color
from textual.theme import Theme

import relconsole

PREFIX = "relconsole-"
DEFAULT_THEME = "relconsole-dark"
ANSI_THEME = "relconsole-ansi"

_FIELDS = {f.name for f in dataclasses.fields(Theme)}
_COLOURS = {"primary", "secondary", "warning", "error", "success", "accent",
            "foreground", "background", "surface", "panel", "boost"}

# Variables the widgets use beyond Textual's own; a built-in Textual theme chosen from
# the palette falls back to these.
VARIABLE_DEFAULTS = {
    "rc-border": "#5c6370",
    "rc-muted": "#888888",  # muted text inside tables and logs (component styles)
    "rc-border-focus": "#0178d4",
}


# NO_COLOR (https://no-color.org): Textual then draws every colour as the terminal's own
# default (the app asks for its NoColor filter, see `ReleaseApp`), so whatever colour
# alone said is said here with reverse, bold and borders. One stylesheet for every
# screen: the App's CSS outranks each widget's DEFAULT_CSS.
NO_COLOR_CSS = """
#mode:nocolor, #phase:nocolor, #stall:nocolor, #sim:nocolor, #banner:nocolor {
    text-style: bold reverse;
}
DataTable:nocolor > .datatable--cursor, DataTable:nocolor:focus > .datatable--cursor {
    text-style: bold reverse;
}
Panel:nocolor:focus-within { border: double $rc-border-focus; }
Panel:nocolor.-problem { border: heavy $warning; }
Input:nocolor > .input--cursor { text-style: reverse; }
Toast:nocolor { text-style: reverse; }
"""


def no_color() -> bool:
    """Whether NO_COLOR is set — Textual's own test (any value, even empty), so this
    agrees with what it draws."""
    return "NO_COLOR" in os.environ


class ThemeError(ValueError):
    """A theme file that cannot be used; the message names the file."""


def themes_dir() -> Path:
    package = Path(relconsole.__file__).parent
    source = package.parent / "themes"
    return source if source.is_dir() else package / "_themes"


def load_theme_file(path: Path) -> Theme:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ThemeError(f"{path}: cannot read theme: {exc}") from None
    if not isinstance(data, dict):
        raise ThemeError(f"{path}: a theme file is a mapping of names to colours")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ThemeError(f"{path}: unknown key(s) {', '.join(unknown)}")
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise ThemeError(f"{path}: 'name' is required")
    if not isinstance(data.get("primary"), str):
        raise ThemeError(f"{path}: 'primary' colour is required")
    fields: dict[str, Any] = dict(data)
    for key in _COLOURS & set(fields):
        if not isinstance(fields[key], str):
            raise ThemeError(f"{path}: '{key}' must be a colour such as \"#5fafff\"")
    variables = fields.get("variables") or {}
    if not isinstance(variables, dict):
        raise ThemeError(f"{path}: 'variables' must be a mapping")
    fields["variables"] = {str(k): str(v) for k, v in variables.items()}
    try:
        return Theme(**fields)
    except (TypeError, ValueError) as exc:
        raise ThemeError(f"{path}: {exc}") from None


def load_themes(folder: Path | None = None) -> dict[str, Theme]:
    """Every `*.yaml` theme in the folder, by name."""
    folder = folder or themes_dir()
    themes: dict[str, Theme] = {}
    for path in sorted(folder.glob("*.yaml")):
        theme = load_theme_file(path)
        themes[theme.name] = theme
    return themes


def resolve_name(name: str, available: dict[str, Theme] | set[str]) -> str | None:
    """The full name of a theme given as 'dark', 'relconsole-dark' or a Textual name."""
    for candidate in (name, f"{PREFIX}{name}"):
        if candidate in available:
            return candidate
    return None


# The colours that carry state on screen: verdict text, and the badges' backgrounds.
VERDICT_TEXT = ("text-success", "text-warning", "text-error")
BADGES = ("primary", "accent", "success", "warning", "error")
BACKGROUNDS = ("background", "surface", "panel")


def _at_256(variables: Mapping[str, str], name: str) -> int:
    """The xterm-256 palette entry a variable becomes on a 256-colour terminal."""
    colour = Color.parse(variables["background"]) + Color.parse(variables[name])
    rich = RichColor.parse(colour.hex[:7]).downgrade(ColorSystem.EIGHT_BIT)
    return rich.number if rich.number is not None else -1


def problems_at_256(theme: Theme) -> list[str]:
    """What collapses when this theme is drawn with 256 colours ([] when nothing does).

    OpenSSH does not forward COLORTERM, so a bastion session usually gets 256 colours;
    stock themes then merge PASS with FAIL, or a badge with the background. An `ansi`
    theme is drawn with the terminal's own palette and is never downsampled.
    """
    if theme.ansi:
        return []
    variables = {**theme.to_color_system().generate(), **theme.variables}
    problems: list[str] = []
    verdicts = [_at_256(variables, v) for v in VERDICT_TEXT]
    if len(set(verdicts)) < len(verdicts):
        problems.append(f"verdict colours merge: {dict(zip(VERDICT_TEXT, verdicts, strict=True))}")
    badges = [_at_256(variables, v) for v in BADGES]
    if len(set(badges)) < len(badges):
        problems.append(f"badge colours merge: {dict(zip(BADGES, badges, strict=True))}")
    backgrounds = {_at_256(variables, v) for v in BACKGROUNDS}
    if not backgrounds.isdisjoint(verdicts + badges):
        problems.append("a verdict or badge colour equals a background")
    return problems


def offered(themes: Mapping[str, Theme]) -> list[str]:
    """The themes an operator may pick: relconsole's own that survive 256 colours."""
    return sorted(
        name for name, theme in themes.items()
        if name.startswith(PREFIX) and not problems_at_256(theme)
    )


def initial_theme(
    available: Mapping[str, Theme], wanted: str | None, *, few_colours: bool
) -> tuple[str, str]:
    """The theme an app starts with, and why the one asked for was not taken ("" if it
    was): the one asked for, else the ansi theme on a 16-colour terminal or under
    NO_COLOR (the terminal's own palette), else relconsole's dark one."""
    problem = ""
    if wanted:
        name = resolve_name(wanted, set(offered(available)))
        if name is not None:
            return name, ""
        problem = f"unknown theme {wanted!r}"
    if (os.environ.get("NO_COLOR") or few_colours) and ANSI_THEME in available:
        return ANSI_THEME, problem
    return (DEFAULT_THEME if DEFAULT_THEME in available else "textual-dark"), problem


def register_themes(app: App[Any]) -> str:
    """Register relconsole's themes with an app; why they could not be read ("" if they
    could), for the app to say once it runs."""
    try:
        themes = load_themes()
    except ThemeError as exc:
        return str(exc)
    for theme in themes.values():
        app.register_theme(theme)
    return ""


def starting_theme(app: App[Any], wanted: str | None) -> tuple[str, str]:
    """`initial_theme` for a running app: a real 16-colour terminal (or NO_COLOR) gets the
    terminal's own palette. The headless driver of the tests reports "standard" too, so it
    is not asked."""
    few_colours = not app.is_headless and app.console.color_system in (
        "standard", "windows", None)
    return initial_theme(app.available_themes, wanted, few_colours=few_colours)
