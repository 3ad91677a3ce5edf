"""Theme files (YAML) from the repository's `themes/` folder, as Textual `Theme`s.

A source or editable checkout reads `<repo>/themes`; a wheel carries the same files as
`relconsole/_themes`. Names may be given short: `dark` means `relconsole-dark`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml
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
