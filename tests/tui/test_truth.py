"""What the screen says is true and readable (issue 10, items 9–11), on the real engine
and the simulator: a rollback keeps its cause on screen, a journal line is never cut at
the border, old words and old values do not pass for current ones, and a value is
written the way the journal writes it.

Pilot tests, then snapshots at 120×40, 80×24 and 60×20 (time is a FastClock, the
simulator is seeded, local time is UTC: the SVGs are stable).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from rig import ACTOR, Rig, healthy_mid_release, make_rig

from relconsole import units
from relconsole.engine.journal import Journal, journal_path
from relconsole.engine.release import ReleaseEngine
from relconsole.model import GateSpec, GateStatus, Phase, Verdict
from relconsole.providers.base import ProviderError
from relconsole.providers.sim import SimFlags, SimMetrics, SimTraffic
from relconsole.tui.app import ReleaseApp
from relconsole.tui.widgets import gates as gates_widget
from relconsole.tui.widgets import journal as journal_widget
from relconsole.tui.widgets.canary import CanaryPanel
from relconsole.tui.widgets.field import Field
from relconsole.tui.widgets.gates import GatesPanel, GatesTable
from relconsole.tui.widgets.journal import JournalLog, JournalPanel

SIZES = {"120x40": (120, 40), "80x24": (80, 24), "60x20": (60, 20)}


def _app(engine: ReleaseEngine) -> ReleaseApp:
    return ReleaseApp(engine, start_engine=False)


async def settle(app: ReleaseApp, pilot) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def rolled_back(rig: Rig, polls_after: int = 2) -> None:
    """bad-canary at 10 %: the error gate trips, the engine rolls back by itself, and
    the engine polls on (at 5 s a poll the cause used to be gone from screen by now)."""
    await rig.engine.attach()
    await rig.engine.advance("start")
    await rig.ticks(7)
    await rig.engine.advance("step 2")
    for _ in range(6):
        await rig.ticks(1)
        if rig.engine.phase is Phase.ROLLED_BACK:
            break
    assert rig.engine.phase is Phase.ROLLED_BACK
    await rig.ticks(polls_after)


def restarted_driver(rig: Rig) -> ReleaseEngine:
    """A new driving console on the same release, the journal and the world as they are."""
    plan = rig.engine.plan
    journal = Journal(journal_path(rig.state_dir, plan.release_id), rig.clock, ACTOR,
                      release=plan.release_id)
    return ReleaseEngine(plan, metrics=SimMetrics(rig.world), traffic=SimTraffic(rig.world),
                         flags=SimFlags(rig.world), clock=rig.clock, journal=journal,
                         actor=ACTOR)


def log_text(app: ReleaseApp) -> str:
    """The journal panel's text with its wrapping undone."""
    log = app.query_one(JournalLog)
    return " ".join(" ".join(strip.text.split()) for strip in log.lines)


def cause_reason(rig: Rig) -> str:
    return next(r["reason"] for r in rig.engine.journal.records()
                if r["intent"] == "rollback" and not r.get("outcome"))


# ---------------------------------------------------------------- 9. a rollback's cause


@pytest.mark.parametrize("size", list(SIZES.values()), ids=list(SIZES))
async def test_the_banner_and_the_gates_keep_the_cause_after_the_rollback(
    bad_rig: Rig, size: tuple[int, int]
) -> None:
    app = _app(bad_rig.engine)
    async with app.run_test(size=size) as pilot:
        await rolled_back(bad_rig)
        await settle(app, pilot)
        banner = app.query_one(CanaryPanel).query_one("#banner", Field).text
        assert banner == "ROLLED BACK from 10% — gate error_rate failed 2×"
        gates = app.query_one(GatesPanel)
        title = str(gates.border_title)
        assert "error_rate tripped the rollback" in title
        assert "no verdict" not in title
        table = app.query_one(GatesTable)
        assert str(table.get_cell("error_rate", "verdict")) == "✘ FAIL"
        reason = gates.query(".reason").results(Field)
        cause = cause_reason(bad_rig)
        assert [line.text for line in reason] == [
            "error_rate: " + cause.split(" (", 1)[1].removesuffix(")")
        ]


async def test_a_journal_line_wraps_instead_of_being_cut_at_the_border(bad_rig: Rig) -> None:
    app = _app(bad_rig.engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await rolled_back(bad_rig, polls_after=0)
        await settle(app, pilot)
        log = app.query_one(JournalLog)
        width = log.scrollable_content_region.width
        assert width < 40  # the 80×24 journal is a narrow column
        assert all(strip.cell_length <= width for strip in log.lines)
        rolled = f"rolled back: canary at 0% (verified) — {cause_reason(bad_rig)}"
        assert rolled in log_text(app)


async def test_enter_on_the_journal_opens_every_event_with_its_values(bad_rig: Rig) -> None:
    app = _app(bad_rig.engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await rolled_back(bad_rig)
        await settle(app, pilot)
        app.query_one(JournalLog).focus()
        await pilot.pause()
        assert "enter: details" in str(app.query_one(JournalPanel).border_subtitle)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, journal_widget.JournalDetails)
        text = " ".join(" ".join(s.text.split()) for s in app.screen.query_one(
            "JournalDetailsLog").lines)  # type: ignore[attr-defined]
        gate = next(g for g in bad_rig.engine.snapshot().rollback_cause.tripped)  # type: ignore[union-attr]
        assert (f"error_rate FAIL canary {units.value(gate.canary, 'ratio')} "
                f"baseline {units.value(gate.baseline, 'ratio')} ≤1 % Δ≤0.5 % fails 2") in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, journal_widget.JournalDetails)


async def test_a_console_started_after_the_rollback_shows_the_history(bad_rig: Rig) -> None:
    await rolled_back(bad_rig)
    engine = restarted_driver(bad_rig)
    bad_rig.clock.advance(300)
    app = _app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await engine.attach()
        await settle(app, pilot)
        text = log_text(app)
        assert f"rollback: {cause_reason(bad_rig)}" in text
        assert "advance: step 2" in text
        assert "attached: ROLLED BACK" in text
        banner = app.query_one(CanaryPanel).query_one("#banner", Field).text
        assert banner == "ROLLED BACK from 10% — gate error_rate failed 2×"
        assert "tripped the rollback" in str(app.query_one(GatesPanel).border_title)


# ---------------------------------------------------------------- 10. old words and values


async def test_a_refusal_does_not_outlive_the_pause_it_was_about(rig: Rig) -> None:
    await rig.engine.attach()
    await rig.engine.advance("start")
    await rig.ticks(3)
    app = _app(rig.engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await rig.engine.pause("lunch")
        await rig.engine.advance("go on")  # refused: the release is paused
        await settle(app, pilot)
        status = app.query_one("#status", Field)
        assert status.text == "advance refused: release is paused"
        await rig.engine.resume("back")
        await rig.engine.promote("looks good")
        await settle(app, pilot)
        assert app.snapshot.phase is Phase.PROMOTED
        assert "refused" not in status.text and "paused" not in status.text


async def test_a_dead_haproxy_leaves_an_old_weight_and_no_server_health(rig: Rig) -> None:
    app = _app(rig.engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await healthy_mid_release(rig)
        last_read = rig.clock.now()
        rig.traffic.broken = True
        await rig.ticks(3)
        await settle(app, pilot)
        canary = app.query_one(CanaryPanel)
        health = canary.query_one("#health", Field).text
        assert "up" not in health
        assert health == "as read 00:01:05, <1m ago · health unknown"
        assert rig.clock.now() - last_read == 15
        assert canary.query_one("#weight").has_class("-old")
        rig.traffic.broken = False
        await rig.ticks(1)
        await settle(app, pilot)
        assert canary.query_one("#health", Field).text == "canary 2/2 up · stable 2/2 up"
        assert not canary.query_one("#weight").has_class("-old")


async def test_metrics_from_a_dead_prometheus_are_shown_with_their_age(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(rig.engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await healthy_mid_release(rig)
        last = rig.clock.now()

        async def dead(*_args: object) -> None:
            raise ProviderError("prometheus: connection refused")

        monkeypatch.setattr(rig.engine.metrics, "sample", dead)
        await rig.ticks(25)  # two minutes
        await settle(app, pilot)
        value = app.query_one("#canary-value", Field)
        assert value.text != "—" and value.has_class("-old")
        note = app.query_one("#gate", Field).text
        assert note.startswith(f"as of 00:01:05, {int((rig.clock.now() - last) // 60)}m ago")


async def test_counters_past_their_limit_are_counts_not_fractions(tmp_path: Path) -> None:
    """A gate with no data keeps counting after it paused the release; '30/20 polls
    without data' reads as a broken counter."""
    rig = make_rig(tmp_path / "state", blind_gate=True)
    await rig.engine.attach()
    await rig.engine.advance("start")
    await rig.ticks(30)
    assert rig.engine.phase is Phase.PAUSED
    app = _app(rig.engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        lines = [f.text for f in app.query_one(GatesPanel).query(".reason").results(Field)]
        assert lines == [
            "cpu_saturation: canary: sim: no metric named 'cpu_saturation' "
            "(no data for 31 polls)"
        ], lines


def test_fails_stop_at_their_limit_and_the_reason_says_how_many() -> None:
    gate = GateStatus(GateSpec("error_rate", max=0.01, failure_limit=2), Verdict.FAIL,
                      "canary 4.39 % > max 1 %", canary=0.0439, consecutive_failures=4,
                      unit="ratio")
    assert gates_widget.fails_cell(gate) == "2/2"
    assert gates_widget.reason_line(gate) == (
        "error_rate: canary 4.39 % > max 1 % (failing for 4 polls)"
    )
    below = dataclasses.replace(gate, consecutive_failures=1)
    assert gates_widget.fails_cell(below) == "1/2"
    assert gates_widget.reason_line(below) == "error_rate: canary 4.39 % > max 1 % (1/2 fails)"


# ---------------------------------------------------------------- 11. one formatter


async def test_the_screen_says_what_the_journal_says(bad_rig: Rig) -> None:
    app = _app(bad_rig.engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await bad_rig.engine.attach()
        await bad_rig.engine.advance("start")
        await bad_rig.ticks(7)
        await bad_rig.engine.advance("step 2")
        await bad_rig.ticks(1)  # the error gate fails once (1/2)
        await settle(app, pilot)
        line = next(app.query_one(GatesPanel).query(".reason").results(Field)).text
        verdict = next(e for e in bad_rig.engine.recent_events(20)
                       if e.kind == "verdict" and e.data.get("verdict") == "fail")
        reason = verdict.message.split(" (", 1)[1].removesuffix(")")
        assert line == f"error_rate: {reason} (1/2 fails)"
        gate = bad_rig.engine.snapshot().gates[0]
        canary = str(app.query_one(GatesTable).get_cell("error_rate", "canary"))
        assert canary == units.value(gate.canary, "ratio")
        assert f"canary {canary} > max 1 %" in reason
        threshold = str(app.query_one(GatesTable).get_cell("error_rate", "threshold"))
        assert threshold == gate.as_dict()["threshold"] == "≤1 % Δ≤0.5 %"


# ---------------------------------------------------------------- snapshots


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_rolled_back_keeps_its_cause(snap_compare, bad_rig: Rig, size: str) -> None:
    async def run_before(pilot) -> None:
        await rolled_back(bad_rig)

    assert snap_compare(_app(bad_rig.engine), terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_console_started_after_the_rollback(
    snap_compare, bad_rig: Rig, size: str
) -> None:
    engine = restarted_driver(bad_rig)

    async def run_before(pilot) -> None:
        await rolled_back(bad_rig)
        bad_rig.clock.advance(300)
        await engine.attach()

    assert snap_compare(_app(engine), terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_haproxy_unreachable(snap_compare, rig: Rig, size: str) -> None:
    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)
        rig.traffic.broken = True
        await rig.ticks(3)

    assert snap_compare(_app(rig.engine), terminal_size=SIZES[size], run_before=run_before)
