"""Readable in every terminal an on-call engineer meets.

Every theme at every colour depth and under NO_COLOR, checked on the bytes the terminal
is sent: no character drawn in its own background colour, and under NO_COLOR no colour
at all, with state shown by reverse video, bold and words. Sizes from 120×40 down to
60×20 keep service, environment, phase and the `q` and `?` keys; below 60×20 the console
says plainly that the terminal is too small. Screenshots of the main screen at 120×40,
80×24 and 60×20 under each theme and under NO_COLOR.
"""

from __future__ import annotations

import dataclasses

import pytest
from rig import Rig, failed_rollback, healthy_mid_release
from terminal_bytes import cells, colour_codes, invisible, screen_bytes, text_of
from test_resize import screen_text
from test_truth import rolled_back

from relconsole.tui.app import ReleaseApp
from relconsole.tui.widgets.flags import FlagsPanel
from relconsole.tui.widgets.journal import JournalLog, JournalPanel

THEMES = ("dark", "light", "high-contrast", "ansi")
DEPTHS = ("truecolor", "256", "standard")
SIZES = {"120x40": (120, 40), "80x24": (80, 24), "60x20": (60, 20)}


async def drawn(app: ReleaseApp, pilot, depth: str) -> str:
    await pilot.pause()
    await pilot.pause()
    return screen_bytes(app, depth)


# -- item 8: the bytes -------------------------------------------------------------------


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("theme", THEMES)
async def test_no_character_is_drawn_in_its_own_background(
    bad_rig: Rig, theme: str, depth: str
) -> None:
    """Mid-release and with a failing rollback's banner, at 80×24."""
    await failed_rollback(bad_rig)
    app = ReleaseApp(bad_rig.engine, theme=theme, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        data = await drawn(app, pilot, depth)
    drawn_cells = cells(data)
    assert "ROLLBACK FAILED" in text_of(drawn_cells)
    hidden = invisible(drawn_cells)
    assert not hidden, f"{len(hidden)} characters in their background colour: " + "".join(
        c.char for c in hidden[:60]
    )


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("theme", [None, *THEMES])
async def test_no_color_is_monochrome_and_readable(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, theme: str | None, depth: str
) -> None:
    """NO_COLOR=1 used to draw every cell black on black (ESC[38;5;16;48;5;16m)."""
    monkeypatch.setenv("NO_COLOR", "1")
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, theme=theme, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        data = await drawn(app, pilot, depth)
    drawn_cells = cells(data)
    assert colour_codes(data) == set(), "NO_COLOR sent colours"
    assert not invisible(drawn_cells)
    assert "checkout-api 2.3.0 · production" in text_of(drawn_cells)
    # What colour said is said by reverse video: the badges, the flag `k` would flip.
    shown_reversed = text_of(drawn_cells, reverse=True)
    for state in ("DRIVE", "PROGRESSING", "checkout-new-pricing-rel"):
        assert state in shown_reversed, state
    assert "PASS" in text_of(drawn_cells, reverse=False)


async def test_no_color_shows_a_failing_rollback_in_reverse(
    bad_rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    await failed_rollback(bad_rig)
    app = ReleaseApp(bad_rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        data = await drawn(app, pilot, "256")
    shown_reversed = text_of(cells(data), reverse=True)
    assert "ROLLBACK FAILED — retrying" in shown_reversed
    assert "FAIL" in shown_reversed  # the failing gate's verdict


def test_the_palette_offers_no_theme_under_no_color(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = ReleaseApp(rig.engine, start_engine=False)
    assert not [c for c in app.palette_commands() if c.title.startswith("Theme")]


# -- item 14: narrow terminals -----------------------------------------------------------


def footer_line(app: ReleaseApp) -> str:
    return screen_text(app).splitlines()[-1]


@pytest.mark.parametrize("focus", ["flags", "journal"])
@pytest.mark.parametrize("size", SIZES)
async def test_q_and_help_always_show_in_the_footer(rig: Rig, size: str, focus: str) -> None:
    await healthy_mid_release(rig)
    await rig.engine.pause("look first")  # "p resume": a longer label than "p pause"
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=SIZES[size]) as pilot:
        if focus == "journal":
            app.query_one(JournalLog).focus()
        await pilot.pause()
        await pilot.pause()
        footer = footer_line(app)
        assert "q quit" in footer and "? help" in footer, footer
        # Keys that do not fit are left out whole, never cut in the middle (at 120
        # columns the palette key follows, set apart).
        assert footer.split("▏")[0].rstrip().endswith("q quit"), footer


@pytest.mark.parametrize("size", SIZES)
async def test_service_environment_and_phase_are_never_cut(rig: Rig, size: str) -> None:
    plan = rig.engine.plan
    rig.engine.plan = dataclasses.replace(
        plan, service="payments-ledger-api", environment="production-eu-west"
    )
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False, simulation=5)
    async with app.run_test(size=SIZES[size]) as pilot:
        await pilot.pause()
        await pilot.pause()
        head = screen_text(app).splitlines()[:2]
    assert "payments-ledger-api " in head[0] and "production-eu-west " in head[0], head
    assert "DRIVE" in head[0], head
    # The demo's marker stays too, shortened at 60 columns.
    assert ("SIMULATION ×5" if size != "60x20" else "SIM ×5") in head[0], head
    assert head[1].lstrip().startswith("PROGRESSING"), head


async def test_at_60x20_the_flags_and_the_journal_keep_rows(rig: Rig) -> None:
    """They were two borders with nothing between them."""
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        await pilot.pause()
        flags = app.query_one(FlagsPanel)
        journal = app.query_one(JournalPanel)
        assert flags.content_region.height >= 4, flags.content_region
        assert journal.content_region.height >= 4, journal.content_region
        text = screen_text(app)
    assert "checkout-new-pric" in text  # the flag `k` would act on is on screen
    assert "Gates" in text and "PROGRESSING" in text


async def test_at_60x20_a_rolled_back_release_keeps_the_journal_in_view(bad_rig: Rig) -> None:
    """After a rollback the banner, the gates and 'how to try again' once took every
    row: the journal, which says what happened, was two borders."""
    await rolled_back(bad_rig)
    app = ReleaseApp(bad_rig.engine, start_engine=False)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        await pilot.pause()
        journal = app.query_one(JournalPanel)
        assert journal.content_region.height >= 3, journal.content_region
        text = screen_text(app)
    assert "ROLLED BACK from 10% — gate error_rate failed" in text
    assert "error_rate" in text and "FAIL" in text


@pytest.mark.parametrize("size", [(59, 20), (60, 19), (40, 12)])
async def test_below_60x20_the_console_says_it_is_too_small(rig: Rig, size) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert f"Terminal too small: {size[0]}×{size[1]}" in text
        assert "at least 60×20" in text
        assert "PROGRESSING" in text and "canary 10%" in text
        assert "╭" not in text, "a half-drawn panel behind the message"
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        text = screen_text(app)
        assert "too small" not in text and "Gates" in text


# -- screenshots: each theme and NO_COLOR at 120×40, 80×24 and 60×20 ----------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("theme", [*THEMES, "no-color"])
def test_main_screen(snap_compare, rig: Rig, monkeypatch: pytest.MonkeyPatch,
                     theme: str, size: str) -> None:
    if theme == "no-color":
        monkeypatch.setenv("NO_COLOR", "1")

    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)

    app = ReleaseApp(rig.engine, theme=None if theme == "no-color" else theme,
                     start_engine=False)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


def test_rollback_failed_under_no_color(snap_compare, bad_rig: Rig,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")

    async def run_before(pilot) -> None:
        await failed_rollback(bad_rig)

    app = ReleaseApp(bad_rig.engine, start_engine=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_too_small(snap_compare, rig: Rig) -> None:
    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)

    app = ReleaseApp(rig.engine, start_engine=False)
    assert snap_compare(app, terminal_size=(50, 15), run_before=run_before)
