"""Issue 10, items 1, 6 and 7 through Pilot, on the real engine and the simulator.

- Quitting a console that drives a release mid-step asks how to leave it (item 1).
- A promotion in production needs the service's name typed; `P` and `a` are refused up
  front, in the engine's words, when the engine would refuse; the early-advance dialog
  has Cancel focused (item 6).
- Keys that arrive together land where they were typed (item 7). `burst` posts every key
  at once, as a paste or a catching-up SSH link delivers them; Pilot's `press` waits for
  the app to go idle after each key, which hid the problem.
"""

from __future__ import annotations

import sys

import pytest
from rig import RELEASE_FLAG, Rig, healthy_mid_release
from textual import events
from textual.keys import _character_to_key
from textual.widgets import Button, Input, Label

from relconsole.handoff import Handoff
from relconsole.model import Phase
from relconsole.tui.app import ReleaseApp
from relconsole.tui.dialogs import ChoiceDialog, ConfirmDialog, ReasonDialog, RolloutDialog

SIZES = {"120x40": (120, 40), "80x24": (80, 24)}
EXPERIMENT = "search-autocomplete-experiment"


def keys_of(text: str) -> list[str]:
    return list(text)


def burst(app: ReleaseApp, *keys: str) -> None:
    """Deliver every key at once, as the terminal driver does with a burst of input: no
    pause, no waiting for the app between keys."""
    assert app._driver is not None
    for key in keys:
        char: str | None = key if len(key) == 1 else {"space": " "}.get(key)
        if len(key) == 1 and not key.isalnum():
            key = _character_to_key(key)  # "%" arrives as percent_sign, " " as space
        event = events.Key(key, char)
        event.set_sender(app)
        app._driver.send_message(event)


async def drained(app: ReleaseApp, pilot) -> None:
    """Let the whole burst, the dialogs and the intents they send finish. Bounded: a
    worker may rightly still wait for a dialog that is open."""
    for _ in range(5):
        await pilot.pause(0.05)
    for _ in range(40):
        if not any(worker.is_running for worker in app.workers):
            break
        await pilot.pause(0.05)
    await pilot.pause()


def journalled(rig: Rig, intent: str) -> list[dict]:
    return [r for r in rig.engine.journal.records() if r["intent"] == intent]


def error_text(dialog) -> str:
    return str(dialog.query_one("#error", Label).render())


# -- item 7: bursts ------------------------------------------------------------------------


async def test_a_burst_fills_each_field_of_the_rollout_dialog_with_what_was_typed_for_it(
    rig: Rig,
) -> None:
    """`% 60 Tab ramp up Tab KEY Enter` in one burst: 60 %, reason "ramp up", key typed
    (today: `60ramp upsearch-autocomplete-exper` in the percentage field)."""
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", "down")  # the experiment's row
        await pilot.pause()
        assert app.selected_flag is not None and app.selected_flag.key == EXPERIMENT
        burst(app, "%", "6", "0", "tab", *keys_of("ramp up"), "tab", *keys_of(EXPERIMENT),
              "enter")
        await drained(app, pilot)
        assert app.screen is app.screen_stack[0], "the dialog should have confirmed"
        assert rig.world.flags[EXPERIMENT].rollout == 60
        assert rig.world.flags[RELEASE_FLAG].rollout == 25
        (record, *_) = journalled(rig, "flag.rollout")
        assert record["reason"] == "ramp up"
        assert app.notice_titles[-1] == "flag rollout · reason journalled: “ramp up”"


async def test_backspaces_in_a_burst_delete_what_was_typed_before_them(rig: Rig) -> None:
    """`r xyz BSpace×3 abcdefgh Enter` is a rollback for "abcdefgh" (today: `xyzabcde`)."""
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        burst(app, "r", *keys_of("xyz"), "backspace", "backspace", "backspace",
              *keys_of("abcdefgh"), "enter")
        await drained(app, pilot)
        assert rig.engine.phase is Phase.ROLLED_BACK and rig.world.weight == 0
        assert journalled(rig, "rollback")[0]["reason"] == "abcdefgh"


async def test_a_reason_typed_in_a_burst_is_journalled_whole_and_shown_as_journalled(
    rig: Rig,
) -> None:
    """`r p99 spike in grafana Enter`, keys at once: the journal has every character
    (today: `p99 spike in graf`), and the confirmation quotes it exactly."""
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        burst(app, "r", *keys_of("p99 spike in grafana"), "enter")
        await drained(app, pilot)
        assert [r["reason"] for r in journalled(rig, "rollback")][:1] == ["p99 spike in grafana"]
        assert app.notices[-1] == "rolled back: canary at 0% (verified)"
        assert app.notice_titles[-1] == "rollback · reason journalled: “p99 spike in grafana”"


async def test_keys_behind_an_action_key_never_reach_the_dashboard(rig: Rig) -> None:
    """`k` then a reason in one burst: "pause" and "advance" typed into the reason are
    letters, not `p` and `a` on the dashboard behind the dialog."""
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        burst(app, "k", *keys_of("pause and advance"))
        await drained(app, pilot)
        dialog = app.screen
        assert isinstance(dialog, ReasonDialog)
        assert dialog.query_one("#reason", Input).value == "pause and advance"
        assert len(app.screen_stack) == 2
        assert rig.engine.phase is Phase.PROGRESSING and rig.world.weight == 10


async def test_a_bracketed_paste_goes_into_the_field_in_order_with_the_keys(rig: Rig) -> None:
    """A terminal's bracketed paste arrives as one Paste event between keys."""
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        burst(app, "r")
        paste = events.Paste("p99 spike in grafana\n")
        paste.set_sender(app)
        assert app._driver is not None
        app._driver.send_message(paste)
        burst(app, *keys_of(" (INC-42)"), "enter")
        await drained(app, pilot)
        assert journalled(rig, "rollback")[0]["reason"] == "p99 spike in grafana (INC-42)"


# -- item 6: promotion in production, refusals up front, Cancel by default -----------------


async def test_promote_in_production_needs_the_service_name_typed_out(rig: Rig) -> None:
    """`P` then Enter sent 100 % of traffic to the canary; now, as for a flag change in
    production, the name must be typed first."""
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("P")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ReasonDialog)
        confirm = dialog.query_one("#confirm", Button)
        assert confirm.disabled
        await pilot.press("enter", "enter")  # reason (optional), then the empty name
        await pilot.pause()
        assert app.screen is dialog and rig.world.weight == 10
        assert error_text(dialog) == "Type the service's name, as shown above, to confirm."
        burst(app, *keys_of("checkout"), "enter")
        await drained(app, pilot)
        assert app.screen is dialog and rig.world.weight == 10
        assert error_text(dialog).startswith("That is not the service's name")
        burst(app, *keys_of("-api"), "enter")
        await drained(app, pilot)
        assert rig.world.weight == 100 and rig.engine.phase is Phase.PROMOTED


async def test_a_name_typed_right_after_enter_moves_to_its_field_is_kept_whole(
    rig: Rig,
) -> None:
    """Enter in the reason field, then the name, in one burst (a tmux run on a loaded
    machine): the name field selected its text when its Focus event came — after the
    first keys — so the next key replaced them and "checkout-api" became "t-api"."""
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("P")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ReasonDialog)
        # Enter and the first letters before the app runs again, so before the name
        # field's Focus event is handled (what a loaded machine did with the burst) …
        for key in ["enter", *keys_of("checkou")]:
            assert dialog.take(events.Key(key, key if len(key) == 1 else None))
        await pilot.pause()
        # … and the rest after it.
        burst(app, *keys_of("t-api"))
        await drained(app, pilot)
        assert dialog.query_one("#typed", Input).value == "checkout-api"
        burst(app, "enter")
        await drained(app, pilot)
        assert rig.world.weight == 100 and rig.engine.phase is Phase.PROMOTED


async def test_promote_outside_production_needs_only_a_confirmation(staging_rig: Rig) -> None:
    await healthy_mid_release(staging_rig)
    app = ReleaseApp(staging_rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("P")
        await pilot.pause()
        assert isinstance(app.screen, ReasonDialog) and not app.screen.query("#typed")
        await pilot.press("enter")
        await drained(app, pilot)
        assert staging_rig.world.weight == 100


async def test_P_on_a_rolled_back_release_is_refused_at_once_with_the_engines_reason(
    rig: Rig,
) -> None:
    """Today a dialog opened and said "The engine will refuse"; now nothing opens, and the
    words are the engine's own."""
    await healthy_mid_release(rig)
    await rig.engine.rollback("bad canary")
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("P")
        await drained(app, pilot)
        assert app.screen is app.screen_stack[0]
        assert app.notices[-1] == "promote refused: release is rolled back"
        assert app.notices[-1] == rig.engine.why_not("promote")
        refused = await rig.engine.promote("anyway")
        assert refused.message == app.notices[-1]  # the engine says the same, word for word
    assert rig.world.weight == 0


async def test_P_with_a_failing_gate_is_refused_at_once(bad_rig: Rig) -> None:
    await bad_rig.engine.attach()
    await bad_rig.engine.advance("start")
    await bad_rig.ticks(7)
    await bad_rig.engine.advance("step 2")
    await bad_rig.ticks(1)  # error_rate fails once (1/2): failing, not tripped yet
    app = ReleaseApp(bad_rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("P")
        await drained(app, pilot)
        assert app.screen is app.screen_stack[0]
        assert app.notices[-1].startswith("promote refused: gate error_rate is fail")
    assert bad_rig.world.weight == 10


async def test_the_early_advance_dialog_has_cancel_focused(rig: Rig) -> None:
    """`a` then a stray Enter (1m30s of bake left) cuts nothing short."""
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        burst(app, "a", "enter")
        await drained(app, pilot)
        assert rig.world.weight == 10
        assert app.notices[-1] == "advance cancelled — nothing changed"
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert app.focused is app.screen.query_one("#cancel", Button)


async def test_a_to_the_last_step_is_asked_as_a_promotion(rig: Rig) -> None:
    """At 50 % `a` goes to 100 %: in production that needs the name typed, like `P`; the
    bake cut short is said, and journalled as an early advance."""
    await healthy_mid_release(rig)
    await rig.ticks(20)  # the 2 m bake at 10 % is over
    await rig.engine.advance("step 3")
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ReasonDialog) and dialog.query("#typed")
        assert "Advancing now cuts the bake short" in str(dialog.query_one("#warning").render())
        burst(app, "enter", "enter")
        await drained(app, pilot)
        assert rig.world.weight == 50
        burst(app, *keys_of("checkout-api"), "enter")
        await drained(app, pilot)
        assert rig.world.weight == 100
    (intent, outcome) = [r for r in journalled(rig, "advance")][-2:]
    assert "early_advance" in intent["data"]
    assert outcome["outcome"].startswith("verified — early advance")


# -- item 1: quitting a console that drives ------------------------------------------------


async def test_q_while_driving_asks_and_cancel_keeps_driving(rig: Rig) -> None:
    """`q` (or ctrl+q) mid-step used to exit at once, leaving nobody to roll back."""
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=True)
    async with app.run_test(size=(80, 24)) as pilot:
        for key in ("q", "ctrl+q"):
            await pilot.press(key)
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, ChoiceDialog)
            assert app.focused is dialog.query_one("#cancel", Button)
            assert dialog.query_one("#hand-off", Button).disabled  # no hand-off in a test app
            await pilot.press("enter")  # Cancel
            await pilot.pause()
            assert app.screen is app.screen_stack[0]
            assert app.return_code is None and not rig.engine._stop.is_set()
        assert app.notices[-1] == "quit cancelled — this console still drives the release"


async def test_q_then_pause_and_quit_leaves_it_paused_and_says_where(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("up", "up", "enter")  # Cancel → leave → pause
        await drained(app, pilot)
    assert app.return_code == 0
    assert rig.engine.phase is Phase.PAUSED and rig.world.weight == 10
    line = app.exit_line
    assert line.startswith("relconsole: checkout-api 2.3.0 PAUSED at 10% (step 2/4) — paused;")
    assert f"Journal: {rig.engine.journal.path}" in line and "Re-attach: " in line
    assert "\n" not in line


async def test_q_then_leave_as_is_says_plainly_nobody_rolls_back(rig: Rig) -> None:
    await healthy_mid_release(rig)
    calls = list(rig.world.set_weight_calls)
    app = ReleaseApp(rig.engine, start_engine=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
        leave = app.screen.query_one("#leave", Button)
        assert "nobody will roll it back" in str(leave.label)
        await pilot.press("up", "enter")
        await drained(app, pilot)
    assert app.return_code == 0
    assert rig.world.set_weight_calls == calls and rig.engine.phase is Phase.PROGRESSING
    assert "PROGRESSING at 10% (step 2/4) — nobody drives it: nothing rolls it back" in (
        app.exit_line)
    assert journalled(rig, "detach")[-1]["reason"].endswith("nobody drives it")


async def test_a_hand_off_that_fails_says_why_and_this_console_goes_on_driving(
    rig: Rig,
) -> None:
    """A headless driver that dies before taking the lease: nothing is left unguarded."""
    await healthy_mid_release(rig)
    handoff = Handoff(
        argv=(sys.executable, "-c", "import sys; print('no such config'); sys.exit(2)"),
        state_dir=rig.state_dir, release_id=rig.engine.plan.release_id,
        reattach="relconsole run -c FILE", cwd=rig.state_dir,
    )
    app = ReleaseApp(rig.engine, start_engine=True, handoff=handoff)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("up", "up", "up", "enter")  # Cancel → … → Hand off
        for _ in range(100):
            await pilot.pause(0.05)
            if app.notices and app.notices[-1].startswith("hand-off failed"):
                break
        assert app.notices[-1].startswith(
            "hand-off failed: the headless driver exited with 2 before it took the lease: "
            "no such config")
        assert app.return_code is None and app.exit_line == ""
        assert not rig.engine._stop.is_set()  # its poll loop runs again: it still drives


async def test_a_paused_release_offers_no_hand_off_and_no_second_pause(rig: Rig) -> None:
    await healthy_mid_release(rig)
    await rig.engine.pause("lunch")
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ChoiceDialog)
        assert dialog.query_one("#pause", Button).disabled
        assert str(dialog.query_one("#hand-off", Button).label) == (
            "No hand-off: a headless run stops at once on a paused release")
        assert str(dialog.query_one("#pause", Button).label) == "No pause: release is paused"


@pytest.mark.parametrize("finish", ["promote", "rollback"])
async def test_q_on_a_finished_release_quits_at_once(rig: Rig, finish: str) -> None:
    await healthy_mid_release(rig)
    await getattr(rig.engine, finish)("done")
    app = ReleaseApp(rig.engine, start_engine=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0 and app.exit_line == ""


async def test_q_on_a_watching_console_quits_at_once(rig: Rig) -> None:
    await healthy_mid_release(rig)
    watcher = rig.watcher()
    await watcher.attach()
    app = ReleaseApp(watcher, start_engine=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0 and app.exit_line == ""


# -- snapshots (look at the PNGs before accepting: see the module docstring of test_snapshots)


def test_quit_dialog_while_driving(snap_compare, rig: Rig) -> None:
    """As `relconsole demo` shows it: every way out offered, Cancel focused."""

    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)

    handoff = Handoff(argv=("false",), state_dir=rig.state_dir,
                      release_id=rig.engine.plan.release_id,
                      reattach="relconsole demo --scenario healthy", cwd=rig.state_dir)
    assert snap_compare(ReleaseApp(rig.engine, start_engine=False, handoff=handoff),
                        terminal_size=(80, 24), run_before=run_before, press=["q"])


def test_promote_dialog_production(snap_compare, rig: Rig) -> None:
    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)

    assert snap_compare(ReleaseApp(rig.engine, start_engine=False), terminal_size=(80, 24),
                        run_before=run_before, press=["P", "enter"])


async def test_rollout_dialog_percent_field_keeps_every_character(staging_rig: Rig) -> None:
    """Nothing in the dialogs truncates a field (no max_length): a long key fits whole."""
    await healthy_mid_release(staging_rig)
    app = ReleaseApp(staging_rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        burst(app, "%", "4", "0", "tab", *keys_of("x" * 120))
        await drained(app, pilot)
        assert isinstance(app.screen, RolloutDialog)
        assert app.screen.query_one("#reason", Input).value == "x" * 120


async def test_after_a_rollback_the_footer_offers_only_what_is_left(rig: Rig) -> None:
    """A rolled-back release has no step to advance, pause or promote: the footer stops
    offering them, and a key pressed anyway still says why, in the engine's words."""
    await healthy_mid_release(rig)
    await rig.engine.rollback("bad canary")
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await drained(app, pilot)
        shown = {b.key for (_, b, enabled, _) in app.active_bindings.values()
                 if b.show and enabled}
        assert not shown & {"a", "p", "P", "r"}
        assert {"q", "question_mark"} <= shown
        await pilot.press("a")
        await drained(app, pilot)
        assert app.notices[-1] == "advance refused: release is rolled back"
        await pilot.press("r")
        await drained(app, pilot)
        assert app.notices[-1] == "rollback refused: already rolled back"
    assert rig.world.weight == 0
