"""Panels redraw only what changed, show stale providers, and keep tables in place."""

from __future__ import annotations

import dataclasses

import pytest
from rig import Rig, failed_rollback, healthy_mid_release
from textual.widgets import DataTable

from relconsole.engine.state import Event, EventKind
from relconsole.model import Phase
from relconsole.tui.app import ReleaseApp
from relconsole.tui.widgets.canary import CanaryPanel, next_move
from relconsole.tui.widgets.field import Field
from relconsole.tui.widgets.flags import FlagsTable
from relconsole.tui.widgets.gates import GatesTable
from relconsole.tui.widgets.header import ReleaseHeader
from relconsole.tui.widgets.journal import MAX_LINES, JournalLog, JournalPanel
from relconsole.tui.widgets.panel import Panel


async def test_an_unchanged_slice_is_not_redrawn(rig: Rig, monkeypatch) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        later = dataclasses.replace(app.snapshot, now=app.snapshot.now + 1)
        updated: list[str | None] = []
        original = Field.update

        def spy(self: Field, *args, **kwargs):
            updated.append(self.id)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(Field, "update", spy)
        for panel in app.query(Panel):
            assert panel.show(later) is False, panel
        app.query_one(ReleaseHeader).show(later)
        assert updated == ["clock"]  # one second later only the clock text differs


async def test_stale_traffic_shows_in_the_border(bad_rig: Rig) -> None:
    await failed_rollback(bad_rig)
    app = ReleaseApp(bad_rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        canary = app.query_one(CanaryPanel)
        assert canary.has_class("-problem")
        assert str(canary.border_subtitle) == (
            "stale since 00:00:40 — haproxy: connection refused"
        )
        banner = canary.query_one("#banner", Field)
        assert banner.text == "ROLLBACK FAILED — retrying (attempt 3, next in 4s)"


def test_the_rollback_cause_comes_from_the_snapshot(rig: Rig) -> None:
    """The canary names why the rollback is not verified from the snapshot's field, not by
    parsing the engine's message (whose wording is free to change)."""
    snap = dataclasses.replace(
        rig.engine.snapshot(), phase=Phase.ROLLBACK_FAILED,
        rollback_error="traffic: haproxy: connection refused",
        last_error="advance refused: the rollback is not verified",
    )
    assert next_move(snap) == "cause: traffic: haproxy: connection refused · r retries now"
    assert next_move(dataclasses.replace(snap, rollback_error="")) == (
        "rollback not verified · r retries now"
    )


async def test_tables_update_in_place(rig: Rig, monkeypatch) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("down", "down")
        await pilot.pause()
        cleared: list[DataTable] = []
        original = DataTable.clear

        def spy(self: DataTable, *args, **kwargs):
            cleared.append(self)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(DataTable, "clear", spy)
        await rig.ticks(3)
        await pilot.pause()
        assert cleared == []
        assert app.query_one(FlagsTable).cursor_row == 2
        gates = app.query_one(GatesTable)
        assert [str(k.value) for k in gates.rows] == ["error_rate", "latency_p99"]


async def test_journal_is_bounded(rig: Rig) -> None:
    await rig.engine.attach()
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one(JournalPanel).add(
            Event(at=rig.clock.now(), kind=EventKind.VERDICT, message=f"event {i}")
            for i in range(500)
        )
        await pilot.pause()
        log = app.query_one(JournalLog)
        assert len(log.lines) <= MAX_LINES
        assert log.lines[-1].text.endswith("event 499")


@pytest.mark.parametrize(("age", "shown"), [(10, False), (60, True)])
async def test_a_silent_engine_is_flagged_in_the_header(rig: Rig, age: float, shown: bool) -> None:
    await rig.engine.attach()
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        rig.clock.advance(age)
        app._check_stall()
        await pilot.pause()
        stall = app.query_one("#stall", Field)
        assert stall.has_class("-shown") is shown
        if shown:
            assert stall.text == "NO UPDATE SINCE 00:00:00"
