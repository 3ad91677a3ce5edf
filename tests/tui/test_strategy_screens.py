"""The console speaks each strategy's words (issue 14): an A/B release shows its cohort,
blue-green its preview and switch, a rolling release its batches, a shadow its mirror —
not canary percentages that would tell a tired reader the wrong thing.

Screenshots at 120×40 and 80×24 on the real engine and the simulator, with a traffic
double that reports a route beside the weight (tests/helpers.RoutedSim).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rig import Rig, make_rig

from relconsole.model import Cohort, Phase, Route, Step
from relconsole.tui.app import ReleaseApp
from relconsole.tui.widgets.canary import CanaryPanel

SIZES = {"120x40": (120, 40), "80x24": (80, 24)}
BETA = Cohort("beta-users", header="X-User-Group", values=("beta",))
AB_STEPS = (Step(0, 60.0, route=Route(cohorts=("beta-users",)), label="cohort beta-users"),
            Step(10, 120.0, route=Route(cohorts=("beta-users",))),
            Step(100))
BLUE_GREEN = (Step(100, 600.0, label="switch"), Step(100, label="done"))
ROLLING = tuple(Step(w, 60.0, route=Route(batches=k + 1), label=f"batch {k + 1}")
                for k, w in enumerate((25, 50, 75, 100)))
SHADOW = (Step(0, 60.0, route=Route(mirror=20), label="mirror 20%"),
          Step(10, 60.0, route=Route(mirror=20)), Step(100))


def strategy_rig(tmp_path: Path, strategy: str) -> Rig:
    steps = {"ab": AB_STEPS, "blue-green": BLUE_GREEN, "rolling": ROLLING,
             "shadow": SHADOW}[strategy]
    return make_rig(tmp_path / "state", strategy=strategy, steps=steps, cohorts=(BETA,))


def _app(rig: Rig) -> ReleaseApp:
    return ReleaseApp(rig.engine, start_engine=False)


def canary_text(app: ReleaseApp) -> str:
    panel = app.query_one(CanaryPanel)
    return " ".join(str(w.render()) for w in panel.query("Field"))


async def first_step(rig: Rig, ticks: int = 4) -> None:
    await rig.engine.attach()
    result = await rig.engine.advance("start")
    assert result.ok, result.message
    await rig.ticks(ticks)


@pytest.mark.parametrize("size", SIZES)
def test_an_ab_release_shows_its_cohort(snap_compare, tmp_path: Path, size: str) -> None:
    rig = strategy_rig(tmp_path, "ab")

    async def run_before(pilot) -> None:
        await first_step(rig)

    assert snap_compare(_app(rig), terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_a_blue_green_release_in_preview(snap_compare, tmp_path: Path, size: str) -> None:
    rig = strategy_rig(tmp_path, "blue-green")

    async def run_before(pilot) -> None:
        await rig.engine.attach()
        await rig.ticks(2)

    assert snap_compare(_app(rig), terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_a_rolling_release_shows_its_batches(snap_compare, tmp_path: Path, size: str) -> None:
    rig = strategy_rig(tmp_path, "rolling")

    async def run_before(pilot) -> None:
        await first_step(rig, ticks=13)
        assert (await rig.engine.advance("second batch")).ok
        await rig.ticks(3)

    assert snap_compare(_app(rig), terminal_size=SIZES[size], run_before=run_before)


async def test_blue_green_after_the_switch_bakes_and_says_green_is_live(
    tmp_path: Path,
) -> None:
    rig = strategy_rig(tmp_path, "blue-green")
    await rig.engine.attach()
    app = _app(rig)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = canary_text(app)
        assert "◉preview ○switch ○done" in text
        assert "blue live" in text
        assert "press a to switch all traffic to green" in text
        # The switch is asked like a promotion: all traffic moves at once.
        await pilot.press("a")
        await pilot.pause()
        assert "Switch checkout-api to green" in str(app.screen.query_one("#title").render())
        await pilot.press("escape")
        assert (await rig.engine.advance("switch")).ok
        await rig.ticks(2)
        await pilot.pause()
        text = canary_text(app)
        assert rig.engine.phase is Phase.PROGRESSING
        assert "●preview ◉switch ○done" in text and "green live" in text
        assert "bake" in text


async def test_shadow_and_ab_say_what_reaches_the_canary(tmp_path: Path) -> None:
    for strategy, said in (("shadow", "mirror 20% (answers dropped)"),
                           ("ab", "cohort beta-users → canary")):
        rig = strategy_rig(tmp_path / strategy, strategy)
        await first_step(rig)
        app = _app(rig)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert said in canary_text(app), canary_text(app)
        await rig.engine.rollback("the canary's answers differ")
        assert rig.engine.phase is Phase.ROLLED_BACK
        assert not rig.traffic.inner.route  # type: ignore[attr-defined]
