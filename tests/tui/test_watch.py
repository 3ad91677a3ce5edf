"""Watch-only: the keys are hidden and refuse with a notice; the engine refuses as well."""

from __future__ import annotations

import pytest
from rig import RELEASE_FLAG, Rig, choose, healthy_mid_release
from textual.command import CommandPalette

from relconsole.engine.release import WatchOnlyError
from relconsole.model import Mode
from relconsole.tui.app import ReleaseApp
from relconsole.tui.keys import KEYS

ACTION_KEYS = sorted({k.key for k in KEYS if k.drives})
NOTICE = "watch-only: oncall@bastion-1 (ssh from 10.20.0.7) drives this release"


async def watching(rig: Rig) -> ReleaseApp:
    await healthy_mid_release(rig)
    watcher = rig.watcher()
    await watcher.attach()
    await rig.ticks(1)
    await watcher.tick()
    return ReleaseApp(watcher, start_engine=False)


def world_state(rig: Rig) -> tuple:
    return rig.world.weight, list(rig.world.set_weight_calls), dict(rig.world.flags)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_action_keys_refuse_with_a_notice(rig: Rig, size) -> None:
    app = await watching(rig)
    before = world_state(rig)
    async with app.run_test(size=size) as pilot:
        assert app.watching
        for key in ACTION_KEYS:
            count = len(app.notices)
            await pilot.press(key)
            await pilot.pause()
            await app.workers.wait_for_complete()
            assert app.screen is app.screen_stack[0], f"{key} opened a dialog"
            assert len(app.notices) == count + 1, f"{key} said nothing"
            assert app.notices[-1] == NOTICE
    assert world_state(rig) == before


async def test_action_keys_are_not_offered(rig: Rig) -> None:
    app = await watching(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        shown = {
            active.binding.action
            for active in app.screen.active_bindings.values()
            if active.binding.show
        }
        assert shown.isdisjoint({"advance", "pause", "resume", "promote", "rollback",
                                 "kill_flag", "restore_flag", "set_rollout"})
        assert {"help", "quit"} <= shown
        header = app.query_one("#mode").render()
        assert "WATCH" in str(header)
        assert str(app.query_one("#status").render()) == (
            "oncall@bastion-1 (ssh from 10.20.0.7) drives since 00:01:05"
        )


async def test_every_palette_action_refuses(rig: Rig) -> None:
    app = await watching(rig)
    before = world_state(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        titles = [
            command.title for command in app.palette_commands()
            # Gate details and Save journal change nothing: a watcher may use them.
            # Taking the free lease is a watcher's own action (tests/tui/test_take_free_lease).
            if not command.title.startswith(("Help", "Theme", "Quit", "Gate details",
                                             "Save journal", "Take the free lease"))
        ]
        assert "Roll back" in titles and f"Kill flag {RELEASE_FLAG}" in titles
        assert f"Set rollout of flag {RELEASE_FLAG}" in titles
        for title in titles:
            count = len(app.notices)
            await pilot.press("ctrl+p")
            await pilot.pause()
            assert isinstance(app.screen, CommandPalette)
            await choose(pilot, title)
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.screen is app.screen_stack[0], f"{title} left a screen open"
            assert app.notices[-1] == NOTICE, title
            assert len(app.notices) == count + 1, title
    assert world_state(rig) == before


async def test_the_engine_refuses_too(rig: Rig) -> None:
    """Hiding keys is cosmetic; the watch-only engine raises on every intent."""
    await healthy_mid_release(rig)
    watcher = rig.watcher()
    await watcher.attach()
    assert watcher.mode is Mode.WATCH
    before = world_state(rig)
    with pytest.raises(WatchOnlyError):
        await watcher.advance()
    with pytest.raises(WatchOnlyError):
        await watcher.pause("x")
    with pytest.raises(WatchOnlyError):
        await watcher.resume()
    with pytest.raises(WatchOnlyError):
        await watcher.promote("x")
    with pytest.raises(WatchOnlyError):
        await watcher.rollback("x")
    with pytest.raises(WatchOnlyError):
        await watcher.set_flag(RELEASE_FLAG, False, "x")
    with pytest.raises(WatchOnlyError):
        await watcher.set_flag_rollout(RELEASE_FLAG, 40, "x")
    assert world_state(rig) == before
