"""The flags panel, the kill switch `k` and the rollout key `%`, through Pilot on the sim.

Effects are asserted in the simulated flag provider (`rig.world.flags`): that is what a
key press must change, or must leave alone. The demo release is production, where every
flag change also needs the flag's key typed out; `staging_rig` is the same release
outside production, where a reason is enough.
"""

from __future__ import annotations

import pytest
from rig import RELEASE_FLAG, Rig, choose, healthy_mid_release
from textual.widgets import Button, Input, Label

from relconsole.flags_audit import marker
from relconsole.tui.app import ReleaseApp
from relconsole.tui.dialogs import ReasonDialog, RolloutDialog, parse_percent
from relconsole.tui.widgets.flags import FlagsPanel, FlagsTable
from relconsole.tui.widgets.table import clip

SIZES = [(80, 24), (120, 40)]
LEGACY = "legacy-cart-release"  # no owner, no description, 100% for 60 days, 95 days old


async def settle(app: ReleaseApp, pilot) -> None:
    """Let an intent reach the engine and come back. Only once no dialog is open: the
    intent's worker waits for the dialog."""
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def still_open(app: ReleaseApp, pilot, dialog) -> None:
    """After a refused confirmation: the dialog stays, and nothing reached the engine."""
    await pilot.pause()
    await pilot.pause()
    assert app.screen is dialog
    assert app.engine.snapshot().flags == app.snapshot.flags


async def type_text(pilot, text: str) -> None:
    await pilot.press(*["space" if c == " " else c for c in text])


def error_text(dialog) -> str:
    return str(dialog.query_one("#error", Label).render())


def flags_state(rig: Rig) -> dict:
    return {key: (f.enabled, f.rollout) for key, f in rig.world.flags.items()}


# -- the panel -----------------------------------------------------------------------------


async def test_wide_panel_shows_every_column(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = app.query_one(FlagsTable)
        assert [str(c.value) for c in table.columns] == [
            "key", "type", "state", "owner", "age", "audit"
        ]
        row = [str(cell) for cell in table.get_row(RELEASE_FLAG)]
        assert row == [f"★ {RELEASE_FLAG}", "rel", "ON 25%", "payments-team", "12d", ""]
        assert [str(table.get_cell(k, "type")) for k in
                ("checkout-pricing-killswitch", "search-autocomplete-experiment",
                 "payments-3ds-ops", "admin-bulk-refund-permission")] == [
            "kill", "exp", "ops", "perm"
        ]
        assert str(table.get_cell("admin-bulk-refund-permission", "state")) == "KILLED"
        findings = app.snapshot.flag_findings()[LEGACY]
        assert str(table.get_cell(LEGACY, "audit")) == marker(findings) == "LFOD"
        assert str(table.get_cell(LEGACY, "owner")) == "—"
        assert str(table.get_cell(LEGACY, "key")) == f"  {LEGACY}"  # not this release's


async def test_narrow_panel_keeps_key_state_and_marker(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(FlagsTable)
        assert [str(c.value) for c in table.columns] == ["key", "state", "audit"]
        key = str(table.get_cell("search-autocomplete-experiment", "key"))
        assert key.endswith("…") and "search-autocomplete-experiment".startswith(key[2:-1])
        assert str(table.get_cell(RELEASE_FLAG, "state")) == "ON 25%"
        assert str(table.get_cell(LEGACY, "audit")) == "LFOD"


async def test_narrow_panel_scrolls_to_the_selected_flag(rig: Rig) -> None:
    """At 80×24 only three flags fit: the one under the cursor (what `k` flips) must be
    the one in view, not a row clipped off below the panel."""
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", "down", "down", "down", "down")
        await pilot.pause()
        panel = app.query_one(FlagsPanel)
        table = app.query_one(FlagsTable)
        assert app.selected_flag is not None and app.selected_flag.key == LEGACY
        assert table.region.bottom <= panel.region.bottom - 1  # inside the border
        visible = range(int(table.scroll_y), int(table.scroll_y) + table.size.height - 1)
        assert table.cursor_row in visible


async def test_detail_line_describes_the_flag_and_its_findings(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press(*["down"] * 5)
        await pilot.pause()
        detail = app.query_one("#detail").render()
        text = str(detail)
        assert text.startswith(f"{LEGACY} · release · rollout 100% · no owner · 95d old")
        for finding in app.snapshot.flag_findings()[LEGACY]:
            assert finding.message in text


def test_clip_cuts_with_an_ellipsis_and_keeps_the_style() -> None:
    from rich.text import Text

    cell = Text.assemble(("★ ", "bold"), ("checkout-new-pricing-release", "bold"))
    cut = clip(cell, 12)
    assert cut.plain == "★ checkout-…" and cut.cell_len == 12
    assert all(span.style == "bold" for span in cut.spans)
    assert clip(cell, 40) is cell


@pytest.mark.parametrize(("text", "expected"), [
    ("40", 40), (" 0 ", 0), ("100", 100), ("40%", 40),
    ("130", "130 is outside 0–100"), ("-5", "-5 is outside 0–100"),
    ("abc", "“abc” is not a whole number"), ("25.5", "“25.5” is not a whole number"),
    ("", "Enter the new percentage"),
])
def test_parse_percent(text: str, expected) -> None:
    result = parse_percent(text)
    if isinstance(expected, int):
        assert result == expected
    else:
        assert isinstance(result, str) and result.startswith(expected)


# -- k: the kill switch --------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_k_outside_production_needs_only_a_reason(staging_rig: Rig, size) -> None:
    rig = staging_rig
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("k")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ReasonDialog)
        assert not dialog.query("#typed")  # no typed key outside production
        assert not dialog.query_one("#confirm", Button).disabled
        await type_text(pilot, "pricing errors")
        await pilot.press("enter")
        await settle(app, pilot)
        assert not rig.world.flags[RELEASE_FLAG].enabled
        assert app.notices[-1] == f"{RELEASE_FLAG} KILLED (off) (verified)"
        assert not app.snapshot.flags[0].enabled


@pytest.mark.parametrize("size", SIZES)
async def test_k_in_production_needs_the_key_typed_out(rig: Rig, size) -> None:
    assert rig.engine.plan.production
    await healthy_mid_release(rig)
    before = flags_state(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("k")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ReasonDialog)
        confirm = dialog.query_one("#confirm", Button)
        assert confirm.disabled
        assert RELEASE_FLAG in str(dialog.query_one("#typed-hint", Label).render())

        await type_text(pilot, "pricing errors")
        await pilot.press("enter")  # a reason alone: on to the key, nothing changes
        await pilot.pause()
        assert app.screen is dialog
        assert app.focused is dialog.query_one("#typed", Input)
        assert flags_state(rig) == before

        await type_text(pilot, "checkout-new-pricing")  # not the whole key
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog
        assert confirm.disabled
        assert "not the flag's key" in error_text(dialog)
        await pilot.click("#confirm")  # disabled: a click does nothing either
        await still_open(app, pilot, dialog)
        assert flags_state(rig) == before

        await type_text(pilot, "-releasx")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog and confirm.disabled
        assert flags_state(rig) == before

        await pilot.press("backspace", "e")  # now exactly the key
        await pilot.pause()
        assert not confirm.disabled
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.screen is app.screen_stack[0]
        assert not rig.world.flags[RELEASE_FLAG].enabled
        assert app.notices[-1] == f"{RELEASE_FLAG} KILLED (off) (verified)"


async def test_k_restore_in_production_needs_the_key_too(rig: Rig) -> None:
    await healthy_mid_release(rig)
    target = "admin-bulk-refund-permission"  # killed in the sim
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("down", "down", "down", "down")
        await pilot.pause()
        assert app.selected_flag is not None and app.selected_flag.key == target
        await pilot.press("k")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ReasonDialog)
        await type_text(pilot, "support backlog")
        await pilot.press("tab")
        await type_text(pilot, "admin-bulk-refund")
        await pilot.click("#confirm")
        await still_open(app, pilot, dialog)
        assert not rig.world.flags[target].enabled
        await type_text(pilot, "-permission")
        await pilot.click("#confirm")
        await settle(app, pilot)
        assert rig.world.flags[target].enabled


# -- %: the rollout percentage -------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_percent_sets_the_rollout(staging_rig: Rig, size) -> None:
    rig = staging_rig
    await healthy_mid_release(rig)
    assert rig.world.flags[RELEASE_FLAG].rollout == 25
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("%")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, RolloutDialog)
        assert "25%" in str(dialog.query_one("#body").render())  # the current value
        assert not dialog.query("#typed")
        await type_text(pilot, "40")
        await pilot.pause()
        assert str(dialog.query_one("#confirm", Button).label) == "Set 40%"
        await pilot.press("enter")  # on to the reason
        await pilot.pause()
        assert app.screen is dialog
        assert app.focused is dialog.query_one("#reason", Input)
        assert error_text(dialog) == ""
        await type_text(pilot, "ramp up")
        await pilot.press("enter")
        await settle(app, pilot)
        assert rig.world.flags[RELEASE_FLAG].rollout == 40
        assert rig.world.flags[RELEASE_FLAG].enabled
        assert app.notices[-1] == f"{RELEASE_FLAG} rollout at 40% (verified)"
        table = app.query_one(FlagsTable)
        assert str(table.get_cell(RELEASE_FLAG, "state")) == "ON 40%"


@pytest.mark.parametrize(("text", "message"), [
    ("130", "130 is outside 0–100"),
    ("abc", "“abc” is not a whole number"),
    ("12.5", "“12.5” is not a whole number"),
    ("-1", "-1 is outside 0–100"),
    ("", "Enter the new percentage"),
])
async def test_percent_refuses_what_is_not_a_percentage(
    staging_rig: Rig, text: str, message: str
) -> None:
    rig = staging_rig
    await healthy_mid_release(rig)
    before = flags_state(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("%")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, RolloutDialog)
        await type_text(pilot, text)
        await pilot.press("tab")
        await type_text(pilot, "ramp up")
        await pilot.press("enter")
        await still_open(app, pilot, dialog)
        assert error_text(dialog).startswith(message)
        percent = dialog.query_one("#percent", Input)
        assert percent.has_class("-invalid") and app.focused is percent
        await pilot.click("#confirm")  # the button refuses as well
        await still_open(app, pilot, dialog)
        assert flags_state(rig) == before

        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen is app.screen_stack[0]
        assert app.notices[-1] == f"rollout of {RELEASE_FLAG} cancelled — nothing changed"
    assert flags_state(rig) == before


@pytest.mark.parametrize("size", SIZES)
async def test_percent_in_production_needs_the_key_typed_out(rig: Rig, size) -> None:
    await healthy_mid_release(rig)
    before = flags_state(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("%")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, RolloutDialog)
        confirm = dialog.query_one("#confirm", Button)
        await type_text(pilot, "40")
        await pilot.press("tab")
        await type_text(pilot, "ramp up")
        await pilot.press("enter")  # on to the key
        await pilot.pause()
        assert app.focused is dialog.query_one("#typed", Input)
        await type_text(pilot, "checkout-pricing-killswitch")  # another flag's key
        await pilot.press("enter")
        await still_open(app, pilot, dialog)
        assert confirm.disabled
        assert "not the flag's key" in error_text(dialog)
        assert flags_state(rig) == before

        dialog.query_one("#typed", Input).value = ""
        await type_text(pilot, RELEASE_FLAG)
        await pilot.pause()
        assert not confirm.disabled
        await pilot.press("enter")
        await settle(app, pilot)
        assert rig.world.flags[RELEASE_FLAG].rollout == 40


async def test_percent_without_provider_support_gives_a_notice(staging_rig: Rig) -> None:
    rig = staging_rig
    await healthy_mid_release(rig)
    rig.engine.flags_provider.supports_rollout = False  # as Flagsmith's adapter says
    assert not rig.engine.flag_rollout_supported
    before = flags_state(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("%")
        await settle(app, pilot)
        assert app.screen is app.screen_stack[0]
        assert app.notices[-1] == (
            "rollout not changed: sim keeps rollout percentages itself — change them in sim"
        )
    assert flags_state(rig) == before


async def test_palette_sets_a_rollout(staging_rig: Rig) -> None:
    rig = staging_rig
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await choose(pilot, "Set rollout of flag search-autocomplete-experiment")
        await pilot.pause()
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, RolloutDialog)
        assert dialog.flag.key == "search-autocomplete-experiment"
        await type_text(pilot, "10")
        await pilot.press("tab")
        await type_text(pilot, "ranking bug")
        await pilot.press("enter")
        await settle(app, pilot)
        assert rig.world.flags["search-autocomplete-experiment"].rollout == 10
        assert rig.world.flags[RELEASE_FLAG].rollout == 25


# -- watch-only ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_watch_mode_k_and_percent_change_nothing(rig: Rig, size) -> None:
    await healthy_mid_release(rig)
    watcher = rig.watcher()
    await watcher.attach()
    before = flags_state(rig)
    app = ReleaseApp(watcher, start_engine=False)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        for key in ("k", "%", "k", "%"):
            count = len(app.notices)
            await pilot.press(key)
            await pilot.pause()
            await pilot.pause()
            assert app.screen is app.screen_stack[0], f"{key} opened a dialog"
            assert len(app.notices) == count + 1
            assert app.notices[-1].startswith("watch-only: ")
        await pilot.press("down", "down", "down", "down", "k", "%")  # a killed flag too
        await pilot.pause()
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
    assert flags_state(rig) == before
