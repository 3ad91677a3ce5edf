"""Small things an on-call engineer trips over (issue 10, items 13 and 16).

The demo says it is a simulation and how fast its clock runs, and every clock names its
zone; the palette's screenshot lands where the console says, its themes are only
relconsole's legible ones; without a flag provider there is no empty flags table and no
`k`/`%`; the audit letters are explained; a kill dialog says what happens to the feature.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from rig import Rig, choose, healthy_mid_release
from test_resize import screen_text
from textual.theme import BUILTIN_THEMES

from relconsole.flags_audit import MARKERS
from relconsole.model import FlagKind
from relconsole.tui import asks
from relconsole.tui.app import ReleaseApp
from relconsole.tui.dialogs import ReasonDialog
from relconsole.tui.help import HelpScreen
from relconsole.tui.themes import load_themes
from relconsole.tui.widgets.flags import FlagsPanel, FlagsTable
from relconsole.tui.widgets.journal import JournalPanel

KILLSWITCH = "checkout-pricing-killswitch"


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.pause()


def header(app: ReleaseApp) -> list[str]:
    return screen_text(app).splitlines()[:2]


# -- item 13: the demo is marked, the clock names its zone -------------------------------


async def test_the_demo_says_it_is_a_simulation_and_how_fast(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False, simulation=5)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "SIMULATION ×5" in header(app)[0]
    real = ReleaseApp(rig.engine, start_engine=False)
    async with real.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "SIM" not in "".join(header(real))


@pytest.mark.parametrize(("zone", "shown"), [("UTC", "00:01:05 UTC"),
                                             ("Asia/Kolkata", "05:31:05 IST"),
                                             ("America/New_York", "19:01:05 EST")])
async def test_the_clock_names_its_time_zone(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, zone: str, shown: str
) -> None:
    await healthy_mid_release(rig)  # 65 s after 2026-01-01T00:00:00Z
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert header(app)[1].rstrip().endswith(shown), header(app)


def test_demo_header(snap_compare, rig: Rig) -> None:
    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)

    app = ReleaseApp(rig.engine, start_engine=False, simulation=5)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


# -- item 16: screenshot ------------------------------------------------------------------


async def test_the_palette_screenshot_is_saved_where_it_says(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """~/Downloads does not exist on a bastion: the current directory does."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("HOME", str(tmp_path / "home-without-downloads"))
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False, state_dir=rig.state_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+p")
        await choose(pilot, "Screenshot")
        await pilot.pause(0.3)
        await settle(pilot)
        saved = list(here.glob("*.svg"))
        assert len(saved) == 1, list(here.iterdir())
        assert f"screenshot saved: {saved[0]}" in app.notices
        assert "<svg" in saved[0].read_text()


async def test_a_screenshot_goes_to_the_state_folder_when_the_directory_is_gone(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    os.rmdir(gone)
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False, state_dir=rig.state_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        path = app.save_screen()
    assert path is not None and path.parent == rig.state_dir and path.exists()
    assert app.notices[-1] == f"screenshot saved: {path}"


# -- item 16: themes -----------------------------------------------------------------------


def test_the_256_colour_check_keeps_ours_and_drops_collapsing_stock_themes() -> None:
    from relconsole.tui.themes import offered, problems_at_256

    ours = load_themes()
    assert offered(ours) == sorted(ours)
    assert all(not problems_at_256(theme) for theme in ours.values())
    # At 256 colours textual-dark's WATCH-ONLY and PAUSED badges are one colour, and
    # solarized-dark's PAUSED and ROLLED BACK.
    assert problems_at_256(BUILTIN_THEMES["textual-dark"])
    assert problems_at_256(BUILTIN_THEMES["solarized-dark"])


async def test_the_palette_offers_only_relconsoles_legible_themes(rig: Rig) -> None:
    from relconsole.tui.themes import offered

    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
    themes = [t for t in titles if "theme" in t.lower()]
    assert themes == [f"Theme: {name}" for name in offered(load_themes())], themes
    assert "Theme" not in titles  # Textual's picker of twenty stock themes
    assert titles.count("Screenshot") == 1


async def test_a_stock_theme_name_is_not_taken(rig: Rig) -> None:
    app = ReleaseApp(rig.engine, theme="nord", start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.theme == "relconsole-dark"
        assert "unknown theme 'nord'" in app.notices[-1]


# -- item 16: no flag provider --------------------------------------------------------------


async def test_without_a_flag_provider_there_is_no_flags_panel_and_no_flag_keys(
    rig: Rig,
) -> None:
    rig.engine.flags_provider = None
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert not app.query_one(FlagsPanel).display
        journal = app.query_one(JournalPanel)
        assert journal.outer_size.width == 80, journal.outer_size  # the whole row
        footer = screen_text(app).splitlines()[-1]
        assert "kill" not in footer and "rollout" not in footer, footer
        assert "q quit" in footer
        await pilot.press("k")
        await settle(pilot)
        assert "no flag provider is configured" in app.notices[-1]
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        # k (kill and restore), % and c are marked; the mark wraps at 80 columns.
        assert screen_text(app).count("provider configured]") == 4


def test_no_flag_provider(snap_compare, rig: Rig) -> None:
    rig.engine.flags_provider = None

    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)

    app = ReleaseApp(rig.engine, start_engine=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


# -- item 16: audit letters -------------------------------------------------------------------


async def test_the_audit_letters_are_explained(rig: Rig) -> None:
    from relconsole.flags_audit import MEANINGS

    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.query_one(FlagsTable)
        row = [str(k.value) for k in table.rows].index("legacy-cart-release")
        table.move_cursor(row=row)
        await settle(pilot)
        text = screen_text(app)
        assert "LFOD" in text
        # The line under the table ties each letter to its finding.
        assert "audit: L release flag is" in text and "O has no owner" in text
        await pilot.press("question_mark")
        await settle(pilot)
        box = app.screen.query_one("#help").region
        lines = screen_text(app).splitlines()[box.y: box.bottom]
        helped = " ".join(" ".join(line[box.x + 1: box.right - 1] for line in lines).split())
    for check, letter in MARKERS.items():
        assert f"{letter} {MEANINGS[check]}" in helped, check


# -- item 16: what a kill does to the feature ----------------------------------------------------


def test_every_flag_kind_says_what_kill_and_restore_do() -> None:
    from relconsole.tui.widgets.flags import KILL_EFFECT, RESTORE_EFFECT

    assert set(KILL_EFFECT) == set(FlagKind) == set(RESTORE_EFFECT)


async def test_killing_a_kill_switch_says_the_feature_goes_off(staging_rig: Rig) -> None:
    rig = staging_rig
    await healthy_mid_release(rig)
    snapshot = rig.engine.snapshot()
    dialog = asks.flag(snapshot, KILLSWITCH, enabled=False)
    assert "kill switch: the feature it guards is switched OFF" in dialog.body
    restore = asks.flag(snapshot, KILLSWITCH, enabled=True)
    assert "the feature it guards is switched back ON" in restore.body

    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.query_one(FlagsTable)
        table.move_cursor(row=[str(k.value) for k in table.rows].index(KILLSWITCH))
        await settle(pilot)
        await pilot.press("k")
        await settle(pilot)
        assert isinstance(app.screen, ReasonDialog)
        shown = " ".join(screen_text(app).split())
        assert f"Kill flag {KILLSWITCH}?" in shown
        assert "kill switch: the feature it guards is switched OFF" in shown
