"""A release whose plan Argo Rollouts owns, as the console shows it.

Hand-made snapshots carrying a `ControllerState` (the words `kubectl argo rollouts get`
prints) are shown on the real console's panels and read back from the screen; the
whole-console screenshots come from the demo's simulated Rollout (`--scenario argo`) on
the real engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from rig import ACTOR, WATCHER, Rig, healthy_mid_release
from terminal_bytes import Cell, cells, colour_codes, screen_bytes, text_of
from test_resize import screen_text
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Digits

from relconsole.assembly import demo_config
from relconsole.clock import FastClock
from relconsole.engine.journal import Journal, journal_path
from relconsole.engine.release import ReleaseEngine
from relconsole.engine.state import RollbackCause, Snapshot
from relconsole.model import (
    AnalysisVerdict,
    ControllerState,
    ControllerStep,
    Mode,
    Phase,
    Role,
    ServerHealth,
    TrafficState,
)
from relconsole.providers.sim import SimFlags, SimMetrics, SimWorld
from relconsole.providers.sim_rollout import SimRollout
from relconsole.tui.app import ReleaseApp
from relconsole.tui.widgets.canary import CanaryPanel
from relconsole.tui.widgets.controller import FitField
from relconsole.tui.widgets.field import Field
from relconsole.tui.widgets.gates import GatesPanel
from relconsole.tui.widgets.header import ReleaseHeader
from relconsole.tui.widgets.panel import Panel

SnapCompare = Callable[..., Any]
SIZES = {"120x40": (120, 40), "80x24": (80, 24)}
RESOURCE = "rollout payments/checkout"
PLAN = (
    ControllerStep("setWeight: 20", 20),
    ControllerStep("pause: 30s", 20, pause=30.0),
    ControllerStep("pause (until promoted)", 20, waits=True),
    ControllerStep("setWeight: 40", 40),
    ControllerStep("analysis: error-rate", 40),
    ControllerStep("setWeight: 60", 60),
    ControllerStep("pause: 1m", 60, pause=60.0),
    ControllerStep("setWeight: 100", 100),
)
ABORTED = "RolloutAborted: Rollout aborted update to revision 2"


def argo(**fields: object) -> ControllerState:
    """Argo Rollouts paused at the plan's indefinite pause, unless told otherwise."""
    values: dict[str, object] = dict(
        system="Argo Rollouts", resource=RESOURCE, phase="Paused", message="CanaryPauseStep",
        step=2, steps=len(PLAN), set_weight=20, actual_weight=20, plan=PLAN, waiting=True,
    )
    values.update(fields)
    return ControllerState(**values)  # type: ignore[arg-type]


def pods(canary_up: int, canary: int, stable: int = 4) -> tuple[ServerHealth, ...]:
    return (*(ServerHealth(f"canary-{i}", Role.CANARY, up=i < canary_up)
              for i in range(canary)),
            *(ServerHealth(f"stable-{i}", Role.BASELINE, up=True) for i in range(stable)))


def owned(base: Snapshot, c: ControllerState, **changes: object) -> Snapshot:
    """`base` as the engine shows a controller-owned release: no `release.steps`, its
    step index the controller's, its weight the actual one."""
    weight = c.actual_weight or 0
    index = -1 if c.aborted else (c.step if c.step is not None else 0)
    values: dict[str, object] = dict(
        plan=dataclasses.replace(base.plan, steps=()), phase=Phase.PROGRESSING,
        step_index=index, weight=weight, bake_elapsed=0.0,
        traffic=TrafficState(weight, pods(2, 2), c), traffic_at=base.now,
    )
    values.update(changes)
    return dataclasses.replace(base, **values)  # type: ignore[arg-type]


async def healthy(rig: Rig) -> Snapshot:
    """Gates passing, as they do at a pause the console may promote past."""
    await healthy_mid_release(rig)
    return rig.engine.snapshot()


async def show(app: ReleaseApp, pilot: Pilot[None], snapshot: Snapshot) -> None:
    app.query_one(ReleaseHeader).show(snapshot)
    for panel in app.query(Panel):
        panel.show(snapshot)
    await pilot.pause()
    await pilot.pause()


def text(app: ReleaseApp, selector: str) -> str:
    return app.query_one(selector, Field).text


def rows_with(screen: str, *phrases: str) -> list[str]:
    """The screen's rows that hold every phrase whole (none broken by a wrap)."""
    return [row for row in screen.splitlines() if all(p in row for p in phrases)]


# -- the canary panel --------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_paused_at_an_indefinite_pause(rig: Rig, size: str) -> None:
    snap = owned(await healthy(rig), argo(), ready_to_advance=True)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=SIZES[size]) as pilot:
        await show(app, pilot, snap)
        screen = screen_text(app)
        assert text(app, "#controller") == "Argo Rollouts: Paused — CanaryPauseStep"
        assert rows_with(screen, "Argo Rollouts: Paused — CanaryPauseStep")
        # The plugin's count and the current step in its own words, on one row; the
        # plan with its done steps marked, its current one, and those to come.
        assert rows_with(screen, "step 2/8", "pause (until promoted)"), screen
        assert rows_with(screen, "●20%", "●‖30s", "◉", "○40%"), screen
        assert rows_with(screen, "set 20% · actual 20%")
        assert text(app, "#next") == (
            "a promotes past this pause (kubectl argo rollouts promote)")
        assert text(app, "#status") == "step 2/8 · canary 20%"


async def test_an_indefinite_pause_says_it_waits_for_a_promote(rig: Rig) -> None:
    """Watching, or driving before the gates pass, the pause still says what it waits
    for; the step line says it in 80 columns, one row."""
    base = await healthy(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await show(app, pilot, owned(base, argo(), ready_to_advance=False))
        assert text(app, "#next") == "waits for promote once every gate passes"
        await show(app, pilot, owned(base, argo(), mode=Mode.WATCH, driver=str(ACTOR),
                                     ready_to_advance=True))
        assert text(app, "#next") == f"waits for promote — {ACTOR} drives"


async def test_the_timeline_refits_when_the_terminal_narrows(rig: Rig) -> None:
    base = await healthy(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await show(app, pilot, owned(base, argo(step=4, phase="Progressing", message="",
                                                waiting=False, actual_weight=40,
                                                set_weight=40)))
        wide = app.query_one("#step", FitField)
        assert "○‖1m" in wide.text and "◉analysis: error-rate" in wide.text
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        # In 80 columns: shorter tokens (or only the steps around it), one row.
        assert rows_with(screen_text(app), "step 4/8  ", "◉analysis: error-rate")
        assert app.query_one("#step", FitField).size.height == 1


@pytest.mark.parametrize("size", SIZES)
async def test_progressing_while_pods_come_up(rig: Rig, size: str) -> None:
    c = argo(phase="Progressing", message="more replicas need to be updated", step=3,
             set_weight=40, actual_weight=20, waiting=False)
    snap = owned(await healthy(rig), c)
    snap = dataclasses.replace(snap, traffic=TrafficState(20, pods(1, 2), c))
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=SIZES[size]) as pilot:
        await show(app, pilot, snap)
        screen = screen_text(app)
        assert text(app, "#controller") == (
            "Argo Rollouts: Progressing — more replicas need to be updated")
        assert rows_with(screen, "Argo Rollouts: Progressing")
        assert app.query_one("#weight", Digits).value == "20%"  # the actual weight
        health = app.query_one("#health", Field)
        assert "set 40% · actual 20%" in health.text and "canary 1/2 up" in health.text
        assert rows_with(screen, "set 40% · actual 20%")
        if size == "120x40":
            assert "(pods coming up)" in health.text
        # A pod the controller is still bringing up is not an outage.
        assert not health.has_class("-down")
        assert text(app, "#next").endswith("moves on once the canary's pods are up")
        assert rows_with(screen, "moves on once the canary's pods are up")
        assert text(app, "#status") == "step 3/8 · set 40% · actual 20%"
        assert rows_with(screen, "◉setWeight: 40")


async def test_a_canary_pod_down_at_its_weight_is_still_news(rig: Rig) -> None:
    c = argo(phase="Progressing", message="", step=4, set_weight=40, actual_weight=40,
             waiting=False)
    snap = owned(await healthy(rig), c)
    snap = dataclasses.replace(snap, traffic=TrafficState(40, pods(1, 2), c))
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await show(app, pilot, snap)
        assert app.query_one("#health", Field).has_class("-down")
        assert text(app, "#next") == "Argo Rollouts moves on once its analysis succeeds"


async def test_a_timed_pause_moves_on_by_itself(rig: Rig) -> None:
    """`a` there cuts Argo's own step short (the console asks first): the hint says so,
    in one row at 80 columns; a watcher is told only what Argo will do."""
    c = argo(phase="Paused", step=6, set_weight=60, actual_weight=60, waiting=False)
    base = owned(await healthy(rig), c,
                 busy="Argo Rollouts is at pause: 1m and moves on by itself")
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await show(app, pilot, base)
        assert text(app, "#next") == (
            "Argo Rollouts moves on by itself after 1m · a promotes now (asks first)")
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        assert rows_with(screen_text(app),
                         "moves on by itself after 1m · a promotes now (asks first)")
        await show(app, pilot, dataclasses.replace(base, mode=Mode.WATCH, driver=str(ACTOR)))
        assert text(app, "#next") == "Argo Rollouts moves on by itself after 1m"


def cause(base: Snapshot) -> RollbackCause:
    return RollbackCause(reason="p99 doubled", at=base.now, actor=str(ACTOR), weight=40,
                         step_index=3, gates=base.gates)


@pytest.mark.parametrize("size", SIZES)
async def test_aborted(rig: Rig, size: str) -> None:
    base = await healthy(rig)
    c = argo(phase="Degraded", message=ABORTED, step=3, set_weight=0, actual_weight=0,
             waiting=False, aborted=True)
    snap = owned(base, c, phase=Phase.ROLLED_BACK, rollback_cause=cause(base),
                 rollback_reason="p99 doubled")
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=SIZES[size]) as pilot:
        await show(app, pilot, snap)
        screen = screen_text(app)
        banner = app.query_one("#banner", Field)
        assert banner.text == "ABORTED — rolled back from 40% — p99 doubled"
        assert banner.has_class("-warning") and rows_with(screen, "ABORTED — rolled back")
        # Argo's words, whole: there is no "Aborted" phase, it is Degraded.
        assert text(app, "#controller") == f"Argo Rollouts: Degraded — {ABORTED}"
        assert app.query_one("#controller").has_class("-degraded")
        assert "Degraded — RolloutAborted:" in screen.replace("\n", " ")
        assert rows_with(screen, "aborted at step 3/8", "setWeight: 40")
        assert rows_with(screen, "●", "✘")
        assert text(app, "#next") == (
            "ABORTED — rolled back: stable serves all traffic (verified)")
        assert text(app, "#status") == "aborted at step 3/8 · canary 0%"
        assert app.query_one("#weight", Digits).value == "0%"


async def test_aborted_while_the_canary_still_takes_traffic(rig: Rig) -> None:
    """Aborted in Argo, pods not yet scaled down: not yet rolled back, and said loudly."""
    base = await healthy(rig)
    c = argo(phase="Degraded", message=ABORTED, step=3, set_weight=0, actual_weight=20,
             waiting=False, aborted=True)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await show(app, pilot, owned(base, c, phase=Phase.ROLLED_BACK))
        banner = app.query_one("#banner", Field)
        assert banner.text == "ABORTED — rolling back: canary still at 20%"
        assert banner.has_class("-error")
        assert text(app, "#next") == "ABORTED — Argo Rollouts is moving traffic back to stable"


async def test_the_engines_own_failing_rollback_keeps_its_banner(rig: Rig) -> None:
    """An abort relconsole cannot verify is relconsole's news, not Argo's."""
    base = await healthy(rig)
    c = argo(phase="Paused", step=3, waiting=False)
    snap = owned(base, c, phase=Phase.ROLLBACK_FAILED, rollback_attempts=2,
                 rollback_error="traffic: argo-rollouts: connection refused")
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await show(app, pilot, snap)
        assert text(app, "#banner").startswith("ROLLBACK FAILED — retrying (attempt 2")
        assert text(app, "#next") == (
            "cause: traffic: argo-rollouts: connection refused · r retries now")


@pytest.mark.parametrize("size", SIZES)
async def test_healthy_fully_promoted(rig: Rig, size: str) -> None:
    c = argo(phase="Healthy", message="", step=8, set_weight=100, actual_weight=100,
             waiting=False, fully_promoted=True)
    snap = owned(await healthy(rig), c, phase=Phase.PROMOTED)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=SIZES[size]) as pilot:
        await show(app, pilot, snap)
        screen = screen_text(app)
        assert text(app, "#controller") == "Argo Rollouts: Healthy"
        assert text(app, "#banner") == "PROMOTED — 2.3.0 serves 100%"
        steps = app.query_one("#step", FitField).text
        assert steps.startswith("step 8/8") and "●100%" in steps
        assert "◉" not in steps and "○" not in steps and "✘" not in steps
        assert rows_with(screen, "step 8/8  ")
        assert text(app, "#next") == ""


async def test_blue_green(rig: Rig) -> None:
    """Two steps: the preview (0 %) waits for a promote, then the active service."""
    c = argo(strategy="BlueGreen", phase="Paused", message="BlueGreenPause", step=0,
             steps=2, set_weight=None, actual_weight=None,
             plan=(ControllerStep("preview 0%", 0, waits=True),
                   ControllerStep("active 100%", 100)))
    snap = owned(await healthy(rig), c, ready_to_advance=True)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await show(app, pilot, snap)
        screen = screen_text(app)
        assert rows_with(screen, "Argo Rollouts: Paused — BlueGreenPause")
        assert rows_with(screen, "step 0/2  ◉preview 0% › ○active 100%")
        assert text(app, "#next") == (
            "a promotes the preview to active (kubectl argo rollouts promote)")
        # No weights to speak of: only the pods.
        assert text(app, "#health") == "canary 2/2 up · stable 4/4 up"


async def test_a_rollout_without_steps(rig: Rig) -> None:
    c = argo(phase="Healthy", message="", step=0, steps=0, plan=(), waiting=False,
             set_weight=100, actual_weight=100, fully_promoted=True)
    snap = owned(await healthy(rig), c, phase=Phase.PROMOTED)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await show(app, pilot, snap)
        step = app.query_one("#step", FitField)
        assert step.text == "step 0/0 · all steps done" and step.size.height == 1


# -- the gates panel ---------------------------------------------------------------------

FAILED_RUN = AnalysisVerdict("checkout-7f9c-4", "Failed", "",
                             (("error-rate", "Failed"), ("latency", "Running")))


def drawn_cells(app: ReleaseApp, phrase: str) -> list[Cell]:
    """The cells of the first `phrase` on screen."""
    drawn = cells(screen_bytes(cast(App[object], app), "truecolor"))
    shown = text_of(drawn)
    at = shown.index(phrase)
    return drawn[at:at + len(phrase)]


async def test_analysis_failed_and_running(rig: Rig) -> None:
    snap = owned(await healthy(rig), argo(analysis=(FAILED_RUN,)))
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await show(app, pilot, snap)
        line = app.query_one(GatesPanel).query_one(".analysis", Field)
        # In 80 columns the run's name gives way; every metric's verdict stays, in a row.
        assert line.text == "Argo analysis ✘ Failed: ✘ error-rate Failed · ◷ latency Running"
        assert line.size.height == 1
        assert rows_with(screen_text(app), "✘ error-rate Failed · ◷ latency Running")
        # relconsole's gates pass; the title does not hide Argo's verdict.
        title = str(app.query_one(GatesPanel).border_title)
        assert "✔ all 2 pass" in title and "✘ Argo analysis Failed" in title
        failed = drawn_cells(app, "✘ error-rate Failed")
        running = drawn_cells(app, "◷ latency Running")
        assert all(c.bold for c in failed) and not any(c.bold for c in running)
        assert {c.fg for c in failed}.isdisjoint({c.fg for c in running})


async def test_analysis_under_no_color_says_it_in_words(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    snap = owned(await healthy(rig), argo(analysis=(FAILED_RUN,)))
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await show(app, pilot, snap)
        data = screen_bytes(cast(App[object], app), "256")
    assert colour_codes(data) == set()
    shown = text_of(cells(data))
    assert "✘ error-rate Failed · ◷ latency Running" in shown
    assert "✘ Argo analysis Failed" in shown
    assert "◉pause (until promoted)" in shown and "●20%" in shown and "○40%" in shown


async def test_a_running_analysis_lists_its_metrics(rig: Rig) -> None:
    run = AnalysisVerdict("checkout-7f9c-4", "Running", "",
                          (("error-rate", "Successful"), ("latency", "Running")))
    snap = owned(await healthy(rig), argo(analysis=(run,)))
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await show(app, pilot, snap)
        panel = app.query_one(GatesPanel)
        assert panel.query_one(".analysis", Field).text == (
            "Argo analysis: ✔ error-rate Successful · ◷ latency Running")
        assert "Argo" not in str(panel.border_title)


async def test_no_analysis_line_without_a_controller(rig: Rig) -> None:
    """A release on the config's plan looks as it always did: no Argo anywhere."""
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = screen_text(app)
        assert "Argo" not in screen and "rollout payments" not in screen
        assert not app.query_one(GatesPanel).query_one(".analysis").display
        assert not app.query_one(CanaryPanel).query_one("#controller").display
        assert rows_with(screen, "step 2/4  ●1 ◉10 ○50 ○100")


# -- the header --------------------------------------------------------------------------


async def test_the_header_names_the_rollout_where_it_fits(rig: Rig) -> None:
    snap = owned(await healthy(rig), argo())
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await show(app, pilot, snap)
        assert text(app, "#title") == (
            f"checkout-api 2.3.0 · production · canary · {RESOURCE}")
        assert "driving: you since" in screen_text(app).splitlines()[0]
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        # No room for it and the driver: the driver keeps its words.
        assert text(app, "#title") == "checkout-api 2.3.0 · production · canary"
        assert "driving: you since 00:00:00" in screen_text(app).splitlines()[0]
        await show(app, pilot, owned(rig.engine.snapshot(), argo(), mode=Mode.WATCH,
                                     driver=str(WATCHER)))
        assert text(app, "#title") == f"checkout-api 2.3.0 · production · {RESOURCE}"


# -- whole-console screenshots from the demo's simulated Rollout --------------------------


def argo_engine(state_dir: Path) -> tuple[ReleaseEngine, FastClock]:
    """What `relconsole demo --scenario argo --manual` runs, on a clock the test moves."""
    cfg = demo_config("argo", auto_advance=False)
    clock = FastClock()
    world = SimWorld(clock, "argo", 7)
    journal = Journal(journal_path(state_dir, cfg.plan.release_id), clock, ACTOR,
                      release=cfg.plan.release_id)
    engine = ReleaseEngine(cfg.plan, metrics=SimMetrics(world), traffic=SimRollout(world),
                           flags=SimFlags(world), clock=clock, journal=journal, actor=ACTOR,
                           driver_since=clock.now())
    return engine, clock


async def demo_paused(engine: ReleaseEngine, clock: FastClock) -> None:
    """The Rollout's first pause, which waits for a promote; gates passing."""
    await engine.attach()
    for _ in range(4):
        clock.advance(5)
        await engine.tick()
    c = engine.snapshot().traffic.controller  # type: ignore[union-attr]
    assert c is not None and c.waiting and c.phase == "Paused"


async def demo_aborted(engine: ReleaseEngine, clock: FastClock) -> None:
    """Promoted past the pause, into the timed one at 30 %, then aborted with a reason."""
    await demo_paused(engine, clock)
    await engine.advance("gates green")
    for _ in range(3):
        clock.advance(5)
        await engine.tick()
    await engine.rollback("p99 doubled")
    clock.advance(5)
    await engine.tick()
    c = engine.snapshot().traffic.controller  # type: ignore[union-attr]
    assert c is not None and c.aborted and c.phase == "Degraded"


@pytest.mark.parametrize("size", SIZES)
def test_demo_paused(snap_compare: SnapCompare, tmp_path: Path, size: str) -> None:
    engine, clock = argo_engine(tmp_path / "state")

    async def run_before(pilot: Pilot[None]) -> None:
        await demo_paused(engine, clock)

    app = ReleaseApp(engine, start_engine=False)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_demo_aborted(snap_compare: SnapCompare, tmp_path: Path, size: str) -> None:
    engine, clock = argo_engine(tmp_path / "state")

    async def run_before(pilot: Pilot[None]) -> None:
        await demo_aborted(engine, clock)

    app = ReleaseApp(engine, start_engine=False)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


def test_demo_aborted_under_no_color(snap_compare: SnapCompare, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    engine, clock = argo_engine(tmp_path / "state")

    async def run_before(pilot: Pilot[None]) -> None:
        await demo_aborted(engine, clock)

    app = ReleaseApp(engine, start_engine=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
