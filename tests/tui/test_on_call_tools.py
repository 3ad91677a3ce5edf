"""What an on-call engineer reaches for (issue 10, item 15): the gate's query as sent and
its dashboard (`g`), the journal out of the console (`s`, the palette's copy, `c` in the
journal's detail view), ctrl+c that neither quits nor pretends, and the way forward once
a release is rolled back.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from unittest.mock import patch

import pytest
from rig import ACTOR, Rig, choose, healthy_mid_release
from test_guarded import burst, drained
from test_resize import screen_text
from test_truth import rolled_back
from textual.containers import VerticalScroll

from relconsole import units
from relconsole.clock import clock_text
from relconsole.engine.journal import Journal, journal_path
from relconsole.engine.release import ReleaseEngine
from relconsole.model import Mode, Phase, ReleasePlan
from relconsole.providers.sim import SimFlags, SimMetrics, SimTraffic
from relconsole.tui.app import ReleaseApp
from relconsole.tui.gate_details import GateDetails
from relconsole.tui.help import HelpScreen
from relconsole.tui.widgets.gates import GatesPanel
from relconsole.tui.widgets.journal import JournalDetails, JournalLog

QUERY = ('sum(rate(http_requests_total{version="{{version}}",code=~"5.."}[1m])) / '
         'sum(rate(http_requests_total{version="{{version}}"}[1m]))')
METRIC_BOARD = "https://grafana.example.com/d/checkout?viewPanel=2&var-version={{version}}"
RELEASE_BOARD = "https://grafana.example.com/d/rel?c={{version}}&b={{baseline}}"


def with_links(plan: ReleasePlan) -> ReleasePlan:
    """The demo plan as a team writes it for Prometheus: a query and a dashboard."""
    metrics = tuple(
        dataclasses.replace(m, query=QUERY, dashboard=METRIC_BOARD)
        if m.name == "error_rate" else m
        for m in plan.metrics
    )
    return dataclasses.replace(plan, metrics=metrics, dashboard=RELEASE_BOARD,
                               canary_version="2.3.0", baseline_version="2.2.1")


def linked(rig: Rig, *, mode: Mode = Mode.DRIVE) -> ReleaseEngine:
    """An engine like the rig's on the same world and journal, over the linked plan."""
    plan = with_links(rig.engine.plan)
    journal = Journal(journal_path(rig.state_dir, plan.release_id), rig.clock, ACTOR,
                      release=plan.release_id, read_only=mode is Mode.WATCH)
    return ReleaseEngine(plan, metrics=SimMetrics(rig.world), traffic=SimTraffic(rig.world),
                         flags=SimFlags(rig.world), clock=rig.clock, journal=journal,
                         actor=ACTOR, mode=mode, driver="you" if mode is Mode.DRIVE
                         else ACTOR.user)


def flat(text: str) -> str:
    """Text with every space, line break and border taken out: wrapping moves them."""
    return "".join(text.replace("│", " ").replace("▇", " ").split())


def inside(shown: str, edge: str) -> str:
    """The text of a modal screen: each line between its first and last `edge`."""
    lines = [line[line.index(edge) + 1:line.rindex(edge)] for line in shown.splitlines()
             if line.count(edge) >= 2]
    return flat("\n".join(lines))


def links_on_screen(app: ReleaseApp) -> set[str]:
    strips = app.screen._compositor.render_strips()
    return {seg.style.link for strip in strips for seg in strip
            if seg.style is not None and seg.style.link}


# -- the gate's query, values and dashboard ------------------------------------------------


@pytest.mark.parametrize("mode", [Mode.DRIVE, Mode.WATCH])
async def test_g_shows_each_gates_query_as_sent_its_values_and_dashboard_at_80x24(
    rig: Rig, mode: Mode
) -> None:
    await healthy_mid_release(rig)
    engine = linked(rig, mode=mode)
    await engine.attach()
    app = ReleaseApp(engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("g")
        await pilot.pause()
        assert isinstance(app.screen, GateDetails)
        shown = screen_text(app)
        gate = next(g for g in engine.snapshot().gates if g.name == "error_rate")
        # The query with the canary's version in it, wrapped but whole, on screen.
        assert flat(QUERY.replace("{{version}}", "2.3.0")) in flat(shown)
        assert "ERROR_RATE" not in shown and "error_rate" in shown
        assert f"canary {units.value(gate.canary, 'ratio')}" in shown
        assert "threshold: ≤1 % Δ≤0.5 %" in shown
        assert "fails in a row: 0 (trips at 2)" in shown
        assert "s ago)" in shown  # how old the values are
        # The release's dashboard, with both versions, clickable and written in full.
        release_url = "https://grafana.example.com/d/rel?c=2.3.0&b=2.2.1"
        assert release_url in shown
        assert release_url in links_on_screen(app)
        # Further down: the baseline's query and the metric's dashboard.
        plain = app.screen.text
        assert QUERY.replace("{{version}}", "2.2.1") in plain
        assert METRIC_BOARD.replace("{{version}}", "2.3.0") in plain
        await pilot.press("end")
        await pilot.pause()
        assert flat(QUERY.replace("{{version}}", "2.2.1")) in flat(screen_text(app))
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, GateDetails)
        # The release's dashboard is with the gates on the dashboard too.
        assert app.query_one(GatesPanel).border_subtitle.startswith("g details")


async def test_the_gate_details_follow_the_release_while_open(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("g")
        await pilot.pause()
        before = rig.engine.snapshot().metrics_at
        assert f"read at {clock_text(before)}" in screen_text(app)
        await rig.ticks(1)
        await pilot.pause()
        after = rig.engine.snapshot().metrics_at
        assert after != before
        assert f"read at {clock_text(after)}" in screen_text(app)


async def test_g_and_escape_in_one_burst_open_and_close_the_gate_details(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        burst(app, "g", "escape", "g")
        await drained(app, pilot)
        assert isinstance(app.screen, GateDetails)
        assert len(app.screen_stack) == 2


# -- the journal out of the console -------------------------------------------------------


async def test_s_saves_the_journal_as_markdown_where_it_says_and_never_overwrites(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await healthy_mid_release(rig)
    monkeypatch.chdir(tmp_path)
    app = ReleaseApp(rig.engine, start_engine=False, state_dir=rig.state_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        burst(app, "s", "s")
        await drained(app, pilot)
        saved = sorted(tmp_path.glob("relconsole-journal-*.md"))
        assert len(saved) == 2, "a second save in the same second must not overwrite"
        said = [n for n in app.notices if n.startswith("journal saved")]
        assert [str(p) for p in saved] == sorted(n.rsplit(": ", 1)[1] for n in said)
        text = saved[0].read_text()
        assert text.startswith("# checkout-api 2.3.0 → production")
        for record in rig.engine.journal.records():
            if record.get("reason"):
                assert record["reason"] in text


async def test_s_saves_in_the_state_folder_when_the_current_directory_is_gone(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await healthy_mid_release(rig)
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()  # the console was started in a directory removed since
    app = ReleaseApp(rig.engine, start_engine=False, state_dir=rig.state_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await pilot.pause()
    saved = list(rig.state_dir.glob("relconsole-journal-*.md"))
    assert len(saved) == 1
    assert f"journal saved ({len(rig.engine.journal.records())} records, " \
           f"Markdown): {saved[0]}" in app.notices


async def test_the_palette_copies_the_journal_text_to_the_clipboard(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    with patch.object(ReleaseApp, "copy_to_clipboard") as copy:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("ctrl+p")
            await choose(pilot, "Copy journal to clipboard")
            await pilot.pause()
    copy.assert_called_once()
    text = copy.call_args.args[0]
    assert text.startswith("# checkout-api 2.3.0 → production")
    assert "| advance |" in text and "step 2" in text
    assert any("OSC 52" in n and "s saves it" in n for n in app.notices)


async def test_c_and_ctrl_c_in_the_journal_details_copy_the_event_named_there(
    rig: Rig
) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    with patch.object(ReleaseApp, "copy_to_clipboard") as copy:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            app.query_one(JournalLog).focus()
            await pilot.press("enter")
            await pilot.pause()
            await pilot.pause()
            assert isinstance(app.screen, JournalDetails)
            events = rig.engine.recent_events(50)
            assert "c copy" in str(app.screen.query_one("Vertical").border_subtitle)
            # The newest event is picked first, and marked.
            assert flat(f"▶ {clock_text(events[-1].at)} {events[-1].kind.value}") in flat(
                screen_text(app))
            await pilot.press("ctrl+c")
            await pilot.pause()
            assert isinstance(app.screen, JournalDetails)  # nothing quit, nothing closed
            burst(app, "up", "up", "c", "home", "c")
            await drained(app, pilot)
            assert flat(f"▶ {clock_text(events[0].at)} {events[0].kind.value}") in flat(
                screen_text(app))
    newest, third, oldest = (call.args[0] for call in copy.call_args_list)
    assert events[-1].message in newest
    assert events[-3].message in third and events[-1].message not in third
    assert events[0].message in oldest


async def test_ctrl_c_on_the_dashboard_says_how_to_quit_and_copy_and_does_not_quit(
    rig: Rig
) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.is_running and len(app.screen_stack) == 1
        assert any(n.startswith("ctrl+c neither quits nor copies here: q quits")
                   for n in app.notices)
    assert rig.engine.phase is Phase.PROGRESSING


async def test_help_says_how_to_select_copy_and_run_again_after_a_rollback(rig: Rig) -> None:
    await rig.engine.attach()
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        shown = inside(screen_text(app), "█")
        for words in ("g gate details", "s save the journal as Markdown",
                      "shift+drag", "--no-mouse"):
            assert flat(words) in shown, words
        app.screen.query_one(VerticalScroll).scroll_end(animate=False, immediate=True)
        await pilot.pause()
        shown = inside(screen_text(app), "█")
        for words in ("--again --reason TEXT", "bump release.version"):
            assert flat(words) in shown, words


# -- after a rollback -----------------------------------------------------------------------


async def test_a_rolled_back_console_says_how_to_try_again(bad_rig: Rig) -> None:
    await rolled_back(bad_rig)
    app = ReleaseApp(bad_rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.pause()
        shown = screen_text(app)
        # On one line, and the journal (what happened) keeps its rows beside it.
        assert "Try again: bump release.version, or run --again --reason TEXT (? tells)" in shown
        journal = app.query_one("#journal")
        assert journal.content_region.height >= 4, journal.content_region


async def test_the_release_dashboard_is_on_the_gates_panel_in_full_where_it_fits(
    rig: Rig
) -> None:
    await healthy_mid_release(rig)
    engine = linked(rig)
    await engine.attach()
    app = ReleaseApp(engine, start_engine=False)
    url = "https://grafana.example.com/d/rel?c=2.3.0&b=2.2.1"
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert f"g details · dashboard {url}" in screen_text(app)
        assert url in links_on_screen(app)
        await pilot.resize_terminal(60, 20)
        await pilot.pause()
        assert "g details · dashboard ↗" in screen_text(app)  # still a link, named short
        assert url in links_on_screen(app)
