"""Every key of the Keys contract, driven through Pilot against the real engine on the sim.

Effects are asserted in the simulated providers (the world's weight and flags), not in
the UI, because that is what the operator's key press must change — or must not.
"""

from __future__ import annotations

import importlib.util

import pytest
from rig import RELEASE_FLAG, Rig, choose, failed_rollback, healthy_mid_release
from textual.command import CommandPalette
from textual.widgets import Input, Label

from relconsole.model import Phase
from relconsole.tui.app import ReleaseApp
from relconsole.tui.dialogs import ChoiceDialog, ConfirmDialog, ReasonDialog
from relconsole.tui.help import HelpScreen
from relconsole.tui.keys import KEYS

SIZES = [(80, 24), (120, 40)]


async def settle(app: ReleaseApp, pilot) -> None:
    """Let intents reach the engine and the snapshots come back."""
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def type_text(pilot, text: str) -> None:
    await pilot.press(*["space" if c == " " else c for c in text])


async def started(rig: Rig) -> None:
    await rig.engine.attach()


@pytest.mark.parametrize("size", SIZES)
async def test_a_advances_one_step(rig: Rig, size) -> None:
    await started(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("a")
        await settle(app, pilot)
        assert rig.world.weight == 1
        assert rig.world.set_weight_calls == [1]
        assert app.snapshot.weight == 1
        assert app.notices[-1] == "advance: canary at 1% (verified)"


@pytest.mark.parametrize("size", SIZES)
async def test_a_refused_by_the_engine_is_shown(bad_rig: Rig, size) -> None:
    """A failing gate: the engine's refusal is said at once, with no dialog to confirm
    first (its words, from `why_not`), and nothing moves."""
    await bad_rig.engine.attach()
    await bad_rig.engine.advance("start")
    await bad_rig.ticks(7)
    await bad_rig.engine.advance("step 2")
    await bad_rig.ticks(1)  # error_rate fails once (1/2): not tripped yet
    app = ReleaseApp(bad_rig.engine, start_engine=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("a")
        await settle(app, pilot)
        assert app.screen is app.screen_stack[0]  # no early-advance dialog for it
        assert bad_rig.world.weight == 10
        assert app.notices[-1].startswith("advance refused: gate error_rate is fail")
        assert app.notices[-1] == bad_rig.engine.why_not("advance", skip_bake=True,
                                                         reason="any")


@pytest.mark.parametrize("size", SIZES)
async def test_a_during_the_bake_asks_first(rig: Rig, size) -> None:
    await healthy_mid_release(rig)  # 1m30s of bake left at 10%
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("escape")
        await settle(app, pilot)
        assert rig.world.weight == 10

        await pilot.press("a")
        await pilot.pause()
        await pilot.press("tab", "enter")  # Cancel is focused: move to "Advance now" first
        await settle(app, pilot)
        assert rig.world.weight == 50


@pytest.mark.parametrize("size", SIZES)
async def test_p_pauses_with_optional_reason_and_resumes(rig: Rig, size) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, ReasonDialog)
        await pilot.press("enter")  # the reason is optional
        await settle(app, pilot)
        assert rig.engine.phase is Phase.PAUSED
        assert rig.world.weight == 10  # pausing never moves traffic
        assert app.snapshot.phase is Phase.PAUSED

        await pilot.press("p")  # now it resumes, without a dialog
        await settle(app, pilot)
        assert not isinstance(app.screen, ReasonDialog)
        assert rig.engine.phase is Phase.PROGRESSING
        assert app.notices[-1] == "resumed"


async def test_p_pause_reason_goes_to_the_engine(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("p")
        await pilot.pause()
        await type_text(pilot, "db failover")
        await pilot.press("enter")
        await settle(app, pilot)
        assert rig.engine.snapshot().pause_reason == "db failover"


@pytest.mark.parametrize("size", SIZES)
async def test_shift_p_promotes_after_confirm(rig: Rig, size) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("P")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ReasonDialog)
        assert rig.world.weight == 10  # nothing before the confirmation
        await pilot.press("enter")  # production: on to the service's name, nothing sent
        await pilot.pause()
        assert app.screen is dialog and rig.world.weight == 10
        await type_text(pilot, "checkout-api")
        await pilot.press("enter")
        await settle(app, pilot)
        assert rig.world.weight == 100
        assert rig.engine.phase is Phase.PROMOTED
        assert "100%" in app.notices[-1]


async def test_shift_p_cancelled_changes_nothing(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("P")
        await pilot.pause()
        await pilot.press("escape")
        await settle(app, pilot)
        assert rig.world.weight == 10
        assert rig.world.set_weight_calls == [1, 10]


@pytest.mark.parametrize("size", SIZES)
async def test_r_rolls_back_only_with_a_reason(rig: Rig, size) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("r")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ReasonDialog)

        await pilot.press("enter")  # empty: refused inside the dialog
        await pilot.pause()
        assert app.screen is dialog
        assert "reason is required" in str(dialog.query_one("#error", Label).render())
        await type_text(pilot, "   ")
        await pilot.click("#confirm")  # blanks are empty too, and so is the button
        await pilot.pause()
        assert app.screen is dialog
        assert rig.world.weight == 10

        dialog.query_one(Input).value = ""
        await type_text(pilot, "5xx spike")
        await pilot.press("enter")
        await settle(app, pilot)
        assert rig.world.weight == 0
        assert rig.engine.phase is Phase.ROLLED_BACK
        assert app.notices[-1] == "rolled back: canary at 0% (verified)"


async def test_r_cancelled_changes_nothing(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("escape")
        await settle(app, pilot)
        assert rig.world.weight == 10
        assert "cancelled" in app.notices[-1]


async def test_r_twice_does_not_stack_dialogs(rig: Rig) -> None:
    """Action keys are not priority bindings: inside the dialog `r` is just a letter."""
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("r", "a", "P", "k", "q")
        await pilot.pause()
        assert len(app.screen_stack) == 2
        assert app.screen.query_one(Input).value == "raPkq"
        assert rig.world.weight == 10


async def test_r_during_failed_rollback_retries_now(bad_rig: Rig) -> None:
    await failed_rollback(bad_rig)
    app = ReleaseApp(bad_rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        bad_rig.traffic.broken = False  # HAProxy is back
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("enter")
        await settle(app, pilot)
        assert bad_rig.world.weight == 0
        assert bad_rig.engine.phase is Phase.ROLLED_BACK


@pytest.mark.parametrize("size", SIZES)
async def test_k_kills_the_selected_flag_with_a_reason_then_restores(
    staging_rig: Rig, size
) -> None:
    """Outside production: a reason is all it takes (production: see test_flags.py)."""
    rig = staging_rig
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=size) as pilot:
        assert app.selected_flag is not None and app.selected_flag.key == RELEASE_FLAG
        await pilot.press("k")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ReasonDialog)
        await pilot.press("enter")  # no reason: refused
        await pilot.pause()
        assert app.screen is dialog
        assert rig.world.flags[RELEASE_FLAG].enabled

        await type_text(pilot, "pricing errors")
        await pilot.press("enter")
        await settle(app, pilot)
        assert not rig.world.flags[RELEASE_FLAG].enabled
        assert "KILLED" in app.notices[-1]

        await pilot.press("k")  # the same key restores a killed flag
        await pilot.pause()
        await type_text(pilot, "fixed")
        await pilot.press("enter")
        await settle(app, pilot)
        assert rig.world.flags[RELEASE_FLAG].enabled


async def test_k_follows_the_cursor(staging_rig: Rig) -> None:
    rig = staging_rig
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("down", "down")
        await pilot.pause()
        target = app.selected_flag
        assert target is not None and target.key == "search-autocomplete-experiment"
        await pilot.press("k")
        await pilot.pause()
        await type_text(pilot, "ranking bug")
        await pilot.press("enter")
        await settle(app, pilot)
        assert not rig.world.flags[target.key].enabled
        assert rig.world.flags[RELEASE_FLAG].enabled
        assert app.selected_flag is not None and app.selected_flag.key == target.key


@pytest.mark.parametrize("size", SIZES)
async def test_question_mark_shows_every_key(rig: Rig, size) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_ctrl_p_opens_the_palette(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)


async def test_palette_is_built_from_the_key_table(rig: Rig) -> None:
    """Every key with a palette title is offered once, with the help screen's words."""
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        offered = {c.title: c.help for c in app.get_system_commands(app.screen)}
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for spec in KEYS:
            if spec.palette:
                assert offered[spec.palette] == (spec.palette_help or spec.help)
        assert titles.count("Quit") == 1  # the key table's, not Textual's as well
        assert "Keys" in offered  # Textual's own are still there, but not its Theme:
        assert "Theme" not in offered  # it offered twenty stock themes
        flags = [f.key for f in app.snapshot.flags]
        assert f"Set rollout of flag {flags[0]}" in offered
    # The palette lives in the app: no provider module that imports the app back.
    assert importlib.util.find_spec("relconsole.tui.commands") is None


async def test_palette_advance_runs_the_intent(rig: Rig) -> None:
    await started(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await choose(pilot, "Advance one step")
        await settle(app, pilot)
        assert rig.world.weight == 1


async def test_palette_switches_theme(rig: Rig) -> None:
    await started(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await choose(pilot, "Theme: relconsole-light")
        await pilot.pause()
        assert app.theme == "relconsole-light"


@pytest.mark.parametrize("size", SIZES)
async def test_q_quits_without_touching_the_release(rig: Rig, size) -> None:
    await healthy_mid_release(rig)
    calls = list(rig.world.set_weight_calls)
    flags = dict(rig.world.flags)
    app = ReleaseApp(rig.engine, start_engine=True)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.press("q")  # it drives a release mid-step: it asks how to leave it
        await pilot.pause()
        assert isinstance(app.screen, ChoiceDialog)
        await pilot.press("up", "enter")  # from Cancel up to "leave it as it is"
        await pilot.pause()
    assert app.return_code == 0
    assert "nobody drives it" in app.exit_line
    assert rig.engine._stop.is_set()  # the poll loop was told to stop
    assert rig.world.set_weight_calls == calls
    assert rig.world.flags == flags
    assert rig.engine.phase is Phase.PROGRESSING


async def test_engine_loop_feeds_the_screen(rig: Rig) -> None:
    """With the poll loop running (FastClock), snapshots reach the widgets by themselves."""
    await started(rig)
    app = ReleaseApp(rig.engine, start_engine=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        for _ in range(50):
            await pilot.pause()
            if app.snapshot.weight == 1:
                break
        assert app.snapshot.weight == 1
        assert app.snapshot.now > rig.clock.now() - 60
