"""`c` serves the selected flag to a cohort (or stops): the dialog, its refusals, and the
Flags panel showing a flag's cohorts — on a real flagd file, judged by reading it back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rig import RELEASE_FLAG, Rig, healthy_mid_release
from textual.widgets import Button, Label

from relconsole.model import Segment
from relconsole.providers.base import BuildContext
from relconsole.providers.flagd import FlagdFlags
from relconsole.providers.readonly import ReadOnlyFlags
from relconsole.tui.app import ReleaseApp
from relconsole.tui.dialogs import TargetDialog
from relconsole.tui.widgets.flags import FlagsTable

DATA = Path(__file__).resolve().parents[1] / "data" / "flagd-flags.json"
SIZES = {"120x40": (120, 40), "80x24": (80, 24)}


def on_flagd(rig: Rig, folder: Path, *, beta: bool = True) -> tuple[FlagdFlags, Path]:
    """The rig's flags from a flagd file (the demo's release flags are in it); with `beta`
    its pricing flag is already on for plan = beta."""
    path = folder / "flags.json"
    shutil.copy(DATA, path)
    flags = FlagdFlags({"type": "flagd", "path": str(path)},
                       BuildContext(plan=rig.engine.plan, clock=rig.clock))
    if beta:
        flags._set_cohort(RELEASE_FLAG, "plan", Segment("plan", ("beta",)))
    rig.engine.flags_provider = flags
    return flags, path


def typed(text: str) -> list[str]:
    return ["space" if c == " " else c for c in text]


def targeting(path: Path) -> object:
    return json.loads(path.read_text())["flags"][RELEASE_FLAG].get("targeting")


async def settle(app: ReleaseApp, pilot) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


# -- screenshots ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_flags_panel_shows_cohorts(snap_compare, rig: Rig, tmp_path: Path, size: str) -> None:
    """The table says "+plan" beside the percentage; the line below (at 120×40) says who."""
    on_flagd(rig, tmp_path)

    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)

    assert snap_compare(ReleaseApp(rig.engine, start_engine=False),
                        terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_target_dialog_production(snap_compare, rig: Rig, tmp_path: Path, size: str) -> None:
    """Cohort and reason given; the flag's key still to be typed, so the button waits."""
    on_flagd(rig, tmp_path)

    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)

    assert snap_compare(
        ReleaseApp(rig.engine, start_engine=False), terminal_size=SIZES[size],
        run_before=run_before,
        press=["c", *typed("country=DE,FR"), "tab", *typed("Europe first"), "enter"],
    )


# -- behaviour ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_c_targets_a_cohort_verified_and_the_table_shows_it(rig: Rig, tmp_path: Path,
                                                                   size) -> None:
    _, path = on_flagd(rig, tmp_path)
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=size) as pilot:
        table = app.query_one(FlagsTable)
        assert str(table.get_cell(RELEASE_FLAG, "state")) == "ON 10% +plan"
        await pilot.press("c")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, TargetDialog)
        assert "on for plan = beta" in str(dialog.query_one("#body").render())
        await pilot.press(*typed("country=DE,FR"))
        await pilot.pause()
        assert str(dialog.query_one("#confirm", Button).label) == "Serve country"
        await pilot.press("tab", *typed("Europe first"), "tab", *typed(RELEASE_FLAG), "enter")
        await settle(app, pilot)
        assert app.screen is app.screen_stack[0]
        assert app.notices[-1] == f"{RELEASE_FLAG} on for country in DE, FR (verified)"
        assert str(table.get_cell(RELEASE_FLAG, "state")) == "ON 10% +country,plan"
    rule = targeting(path)
    assert isinstance(rule, dict) and rule["if"][0] == {"in": [{"var": "country"}, ["DE", "FR"]]}
    journal = [r for r in rig.engine.journal.records() if r.get("intent") == "flag.target"]
    assert journal[-1]["outcome"] == "verified" and journal[-1]["reason"] == "Europe first"


async def test_attr_equals_nothing_removes_that_cohort(staging_rig: Rig, tmp_path: Path) -> None:
    rig = staging_rig
    _, path = on_flagd(rig, tmp_path)
    await healthy_mid_release(rig)
    original = json.loads(DATA.read_text())["flags"][RELEASE_FLAG]["targeting"]
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("c", *typed("plan="))
        await pilot.pause()
        dialog = app.screen
        assert str(dialog.query_one("#confirm", Button).label) == "Remove plan"
        await pilot.press("tab", *typed("beta over"), "enter")
        await settle(app, pilot)
        assert app.notices[-1] == f"{RELEASE_FLAG} no longer on for its plan cohort (verified)"
        assert str(app.query_one(FlagsTable).get_cell(RELEASE_FLAG, "state")) == "ON 10%"
    assert targeting(path) == original


@pytest.mark.parametrize(("text", "says"), [
    ("country", "“country” is not a cohort"),
    ("country=DE,,FR", "An empty value"),
    ("country=", "has no cohort on country to remove"),
    ("", "Enter who it is for"),
])
async def test_the_dialog_refuses_what_it_cannot_read(staging_rig: Rig, tmp_path: Path,
                                                      text: str, says: str) -> None:
    rig = staging_rig
    _, path = on_flagd(rig, tmp_path)
    await healthy_mid_release(rig)
    before = path.read_text()
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("c", *typed(text), "tab", *typed("why"), "enter")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, TargetDialog)  # still open: nothing was sent
        assert says in str(dialog.query_one("#error", Label).render())
        assert app.focused is dialog.query_one("#cohort")
    assert path.read_text() == before


async def test_a_provider_without_cohorts_opens_no_dialog_and_names_those_with_them(
        rig: Rig) -> None:
    await healthy_mid_release(rig)  # the simulator's flags
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("c")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
        assert app.notices[-1].startswith("cohort not changed: the sim flag provider cannot")
        assert "flagd, unleash, launchdarkly, split can" in app.notices[-1]


async def test_watch_only_c_changes_nothing(rig: Rig, tmp_path: Path) -> None:
    flags, path = on_flagd(rig, tmp_path)
    await healthy_mid_release(rig)
    watcher = rig.watcher()
    watcher.flags_provider = ReadOnlyFlags(flags)
    await watcher.attach()
    before = path.read_text()
    app = ReleaseApp(watcher, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("c")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
        assert app.notices[-1].startswith("watch-only: ")
    assert path.read_text() == before
