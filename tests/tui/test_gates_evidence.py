"""The gates panel at 80×24 shows a count gate's evidence: this step's counts and the bar."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from relconsole.model import Phase
from relconsole.tui.app import ReleaseApp
from relconsole.tui.gate_details import detail_rows, plain
from relconsole.tui.widgets.gates import GatesTable
from tests.test_engine_evidence import NOISY_GATE, counting_session


async def _mid_step(canary: float):
    session = counting_session(canary, 0.01, gate=NOISY_GATE, weight=40, poll=5.0, seed=4)
    engine = session.engine
    for _ in range(4):
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
    return session


async def test_the_gates_panel_at_80x24_shows_counts_and_the_bar() -> None:
    session = await _mid_step(0.01)
    engine = session.engine
    assert engine.phase is Phase.PROGRESSING
    gate = engine.snapshot().gates[0]
    assert gate.evidence is not None
    app = ReleaseApp(engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(GatesTable)
        shown = [str(c.label) for c in table.columns.values()]
        assert "evidence" in shown and "canary" in shown
        row = [str(cell) for cell in table.get_row("error_rate")]
        bar = next(cell for cell in row if "│" in cell)
        # Monochrome-readable: the ends and the fill are characters, not only colour.
        assert bar.startswith("✔") and bar.endswith("✘")
        ev = app.snapshot.gates[0].evidence
        assert ev is not None
        assert "counts c vs b" in shown
        assert f"{ev.canary_events:.0f}/{ev.canary_total:.0f} vs " in row[shown.index(
            "counts c vs b")]
        text = plain(detail_rows(app.snapshot))
        assert f"canary {ev.canary_events:g} of {ev.canary_total:g} requests" in text


async def test_a_failing_count_gate_fills_the_fail_side() -> None:
    session = await _mid_step(0.15)
    cause = session.engine.snapshot().rollback_cause
    gates = cause.gates if cause is not None else session.engine.snapshot().gates
    gate = gates[0]
    assert gate.evidence is not None
    from relconsole.tui import format as fmt

    _, _left, _, right, _ = fmt.evidence_bar(gate.evidence.pass_e_value, gate.evidence.e_value,
                                            gate.evidence.alpha)
    assert right == fmt.BAR_FILL * fmt.BAR_HALF
    text = plain(detail_rows(session.engine.snapshot()))
    assert "e-value against the limits" in text and "FAIL at 100 = 1/alpha" in text


def _snap(snap_compare, canary: float, size: tuple[int, int]) -> bool:
    async def run_before(pilot) -> None:
        await pilot.pause()

    # The engine polls on its own loop first (snap_compare runs the app on another).
    loop = asyncio.new_event_loop()
    try:
        session = loop.run_until_complete(_mid_step(canary))
    finally:
        loop.close()
    # The lease was taken at a wall-clock time; the picture must not change with it.
    session.engine._ctx.drive.driver_since = 0.0
    app = ReleaseApp(session.engine, start_engine=False)
    return snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_snapshot_count_gates_mid_step(snap_compare, size) -> None:
    """The picture in the README's "How gates judge": a healthy canary at 40 %."""
    assert _snap(snap_compare, 0.01, size)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_snapshot_count_gate_failing(snap_compare, size) -> None:
    assert _snap(snap_compare, 0.15, size)


def test_the_readme_pictures_are_the_snapshots() -> None:
    """The README shows what the console draws today, not what it drew once."""
    root = Path(__file__).resolve().parents[2]
    snaps = root / "tests" / "tui" / "__snapshots__" / "test_gates_evidence"
    pictures = {
        "gates-panel-rollback.svg": "test_snapshot_count_gate_failing[120x40].svg",
        "gates-panel-needs-data.svg": "test_snapshot_count_gates_mid_step[80x24].svg",
    }
    for picture, snapshot in pictures.items():
        assert (root / "docs" / "img" / picture).read_bytes() == (snaps / snapshot).read_bytes(), (
            f"docs/img/{picture} differs from its snapshot: copy {snapshot} over it")


async def test_a_past_a_bake_while_a_gate_needs_data_asks_before_advancing() -> None:
    """The bake is over but the count gate has not shown the canary healthy yet: `a` says
    so and asks (Cancel focused); confirmed, the step is journalled as an early advance
    with what the gates still needed."""
    from textual.widgets import Button

    from relconsole.model import Step
    from relconsole.tui.dialogs import ConfirmDialog

    session = counting_session(0.01, 0.01, gate=NOISY_GATE, weight=10, poll=5.0, seed=4,
                               steps=(Step(10, 5.0), Step(50, 120.0), Step(100)))
    engine = session.engine
    for _ in range(3):
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
    snap = engine.snapshot()
    assert snap.weight == 10 and snap.bake_remaining == 0, snap
    assert snap.gates[0].needs_more_data, snap.gates[0]
    app = ReleaseApp(engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert "enough data" in str(dialog.query_one("#title").render())
        assert app.focused is dialog.query_one("#cancel", Button)
        await pilot.press("tab", "enter")
        for _ in range(50):
            await pilot.pause(0.02)
            if engine.snapshot().weight == 50:
                break
    assert engine.snapshot().weight == 50
    intent = [r for r in engine.journal.records() if r["intent"] == "advance"][-2]
    assert "error_rate" in intent["data"]["early_advance"]["needs_more_data"]
