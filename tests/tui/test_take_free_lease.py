"""Issue 10, item 4 through Pilot: a watch-only console on a release that nobody drives
says so, offers `t`, and after a confirmation with a reason drives it in place."""

from __future__ import annotations

from pathlib import Path

import pytest
from rig import WATCHER
from test_guarded import burst, drained, keys_of
from textual.widgets import Button

from relconsole.assembly import Session, demo_config, open_session
from relconsole.clock import FastClock
from relconsole.engine.lease import Lease
from relconsole.model import Actor, Mode, Phase
from relconsole.tui.app import ReleaseApp
from relconsole.tui.dialogs import ReasonDialog
from relconsole.tui.widgets.header import ReleaseHeader

REASON = "primary quit at 03:10, taking over, INC-7"


@pytest.fixture
def session(tmp_path: Path):
    """A watch-only console on the demo release, its lease free (nobody drives)."""
    cfg = demo_config("healthy", auto_advance=False)
    made = open_session(cfg, clock=FastClock(), state=tmp_path / "state", watch=True,
                        actor=WATCHER)
    yield made
    if made.lease is not None:
        made.lease.release()


async def watching(session: Session) -> ReleaseApp:
    await session.engine.attach()
    await session.engine.tick()
    return ReleaseApp(session.engine, start_engine=False, take=session.take)


def shown_actions(app: ReleaseApp) -> set[str]:
    return {a.binding.action for a in app.screen.active_bindings.values() if a.binding.show}


def status(app: ReleaseApp) -> str:
    return str(app.query_one(ReleaseHeader).query_one("#status").render())


def records(session: Session, intent: str) -> list[dict]:
    return [r for r in session.engine.journal.records() if r["intent"] == intent]


async def test_nobody_drives_is_said_and_t_is_offered(session: Session) -> None:
    app = await watching(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "WATCH-ONLY" in str(app.query_one("#mode").render())
        assert status(app) == "nobody drives — t take it"
        assert "take_lease" in shown_actions(app)


async def test_cancel_leaves_it_watching(session: Session) -> None:
    app = await watching(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("t")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ReasonDialog)
        assert "automatic rollback resumes" in dialog.body, dialog.body
        await pilot.click(dialog.query_one("#cancel", Button))
        await drained(app, pilot)
        assert app.screen is app.screen_stack[0]
        assert session.engine.mode is Mode.WATCH and session.lease is None
        assert not records(session, "lease.take")


async def test_taking_it_drives_in_place_with_the_reason_journalled_exactly(
    session: Session,
) -> None:
    app = await watching(session)
    async with app.run_test(size=(80, 24)) as pilot:
        burst(app, "t", *keys_of(REASON), "enter")
        await drained(app, pilot)
        assert session.engine.mode is Mode.DRIVE, list(app.notices)
        assert app.screen is app.screen_stack[0]
        assert "DRIVE" in str(app.query_one("#mode").render())
        assert "take_lease" not in shown_actions(app)
        [take] = records(session, "lease.take")
        assert take["reason"] == REASON
        assert take["actor"]["user"] == WATCHER.user and take["before"]["driver"] == "nobody"
        assert session.lease is not None and session.lease.held
        # It drives for real now: a pause goes to the provider and is journalled.
        burst(app, "p", *keys_of("after the take"), "enter")
        await drained(app, pilot)
        assert session.engine.phase is Phase.PAUSED
        assert records(session, "pause")[-1]["reason"] == "after the take"


async def test_a_live_holder_is_named_and_t_takes_nothing(session: Session) -> None:
    engine = session.engine
    other = Lease.acquire(session.state_dir, engine.plan.release_id, Actor("alice", "bastion-9"))
    assert other is not None
    try:
        app = await watching(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert "take_lease" not in shown_actions(app)
            assert "alice@bastion-9" in status(app)
            await pilot.press("t")
            await drained(app, pilot)
            assert app.screen is app.screen_stack[0], "a dialog opened for a held lease"
            assert "alice@bastion-9" in app.notices[-1] and "--take-over" in app.notices[-1]
            assert engine.mode is Mode.WATCH and not records(session, "lease.take")
    finally:
        other.release()


async def test_a_paused_release_stays_paused_under_the_console_that_takes_it(
    tmp_path: Path,
) -> None:
    """The previous driver paused and quit: taking the lease must not start it again."""
    cfg = demo_config("healthy", auto_advance=True)
    state = tmp_path / "state"
    first = open_session(cfg, clock=FastClock(), state=state, actor=Actor("alice", "b-1"))
    await first.engine.attach()
    await first.engine.advance("start")
    await first.engine.pause("held for the 03:00 batch")
    await first.close()  # quits: nobody drives
    second = open_session(cfg, clock=FastClock(), state=state, watch=True, actor=WATCHER)
    try:
        app = await watching(second)
        async with app.run_test(size=(80, 24)) as pilot:
            burst(app, "t", *keys_of(REASON), "enter")
            await drained(app, pilot)
            assert second.engine.mode is Mode.DRIVE
            await second.engine.tick()  # auto_advance is on: a started release would move
            assert second.engine.phase is Phase.PAUSED
            assert second.engine.snapshot().weight == 1
    finally:
        if second.lease is not None:
            second.lease.release()
