"""Theme files load, short names resolve, and colours survive a 256-colour terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.color import Color as RichColor
from rich.color import ColorSystem
from rig import Rig
from textual.color import Color

from relconsole.tui.app import ReleaseApp
from relconsole.tui.themes import (
    ThemeError,
    load_theme_file,
    load_themes,
    resolve_name,
    themes_dir,
)

NAMES = {"relconsole-dark", "relconsole-light", "relconsole-high-contrast", "relconsole-ansi"}


def test_all_four_themes_load() -> None:
    themes = load_themes()
    assert set(themes) == NAMES
    assert themes_dir().name == "themes"
    assert themes["relconsole-ansi"].ansi
    assert not themes["relconsole-light"].dark


@pytest.mark.parametrize(
    ("short", "full"),
    [("dark", "relconsole-dark"), ("light", "relconsole-light"),
     ("high-contrast", "relconsole-high-contrast"), ("ansi", "relconsole-ansi"),
     ("relconsole-dark", "relconsole-dark"), ("nope", None)],
)
def test_short_names(short: str, full: str | None) -> None:
    assert resolve_name(short, load_themes()) == full


def test_a_bad_theme_file_names_itself(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nprimary: '#fff'\ncolour: red\n")
    with pytest.raises(ThemeError, match=r"bad\.yaml: unknown key"):
        load_theme_file(bad)


def _at_256(variables: dict[str, str], name: str) -> int:
    colour = Color.parse(variables["background"]) + Color.parse(variables[name])
    rich = RichColor.parse(colour.hex[:7]).downgrade(ColorSystem.EIGHT_BIT)
    assert rich.number is not None
    return rich.number


@pytest.mark.parametrize("name", sorted(NAMES - {"relconsole-ansi"}))
def test_verdicts_and_badges_stay_apart_at_256_colours(name: str) -> None:
    """Stock dark themes collapse at 256 colours; ours must keep PASS/FAIL/INCONCLUSIVE
    and the DRIVE/WATCH badges distinct, and distinct from the backgrounds."""
    theme = load_themes()[name]
    variables = {**theme.to_color_system().generate(), **theme.variables}
    backgrounds = {_at_256(variables, v) for v in ("background", "surface", "panel")}
    verdict_text = [_at_256(variables, v) for v in ("text-success", "text-warning", "text-error")]
    badges = [_at_256(variables, v) for v in ("primary", "accent", "success", "warning", "error")]
    assert len(set(verdict_text)) == 3, verdict_text
    assert len(set(badges)) == 5, badges
    assert backgrounds.isdisjoint(verdict_text + badges)


@pytest.mark.parametrize(("given", "expected"), [(None, "relconsole-dark"),
                                                 ("light", "relconsole-light"),
                                                 ("ansi", "relconsole-ansi")])
async def test_app_theme_argument(rig: Rig, given: str | None, expected: str) -> None:
    app = ReleaseApp(rig.engine, theme=given, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == expected


async def test_unknown_theme_falls_back_with_a_notice(rig: Rig) -> None:
    app = ReleaseApp(rig.engine, theme="solarized-puce", start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "relconsole-dark"
        assert "unknown theme 'solarized-puce'" in app.notices[-1]


async def test_no_color_picks_the_ansi_theme(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "relconsole-ansi"
