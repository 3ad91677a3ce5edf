"""Resizing the terminal never crashes the console, and at 60×20 the operator can still
read where the release stands: the phase and the canary's weight.

A bastion window gets dragged, split by tmux, or zoomed; each resize re-lays out every
panel while snapshots keep arriving. The sizes go down to 40×12 (below what is usable)
and back, on the main screen, with each dialog open, and during a rollback — both a
failing one and one whose provider call is still in flight.
"""

from __future__ import annotations

import asyncio

from rig import Rig, failed_rollback, healthy_mid_release

from relconsole.model import Phase, TrafficState
from relconsole.tui.app import ReleaseApp
from relconsole.tui.dialogs import ReasonDialog
from relconsole.tui.help import HelpScreen

ROUND_TRIP = [(80, 24), (60, 20), (40, 12), (120, 40)]
SMALL = (60, 20)  # the smallest size that must stay readable


def screen_text(app: ReleaseApp) -> str:
    """What the terminal shows now, as plain text (modal screens include what is behind)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


async def settle(app: ReleaseApp, pilot) -> None:
    await pilot.pause()
    await pilot.pause()


async def round_trip(app: ReleaseApp, pilot, at_small=None) -> dict[tuple[int, int], str]:
    """120×40 → 80×24 → 60×20 → 40×12 → 120×40; returns the text seen at each size."""
    seen: dict[tuple[int, int], str] = {}
    for size in ROUND_TRIP:
        await pilot.resize_terminal(*size)
        await settle(app, pilot)
        assert app.is_running, f"the app stopped at {size}"
        assert app.size == size
        seen[size] = screen_text(app)
        if at_small is not None and size == SMALL:
            await at_small()
    return seen


def header_lines(text: str) -> str:
    return "\n".join(text.splitlines()[:2])


async def test_main_screen_survives_the_round_trip_and_stays_readable(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        # Snapshots keep arriving while the size changes.
        seen = await round_trip(app, pilot, at_small=lambda: rig.ticks(2))
        for size in [(120, 40), (80, 24), SMALL]:
            head = header_lines(seen[size])
            assert "PROGRESSING" in head and "canary 10%" in head, (size, head)
        # Below the usable size the console says so, and still names the phase.
        assert "Terminal too small" in seen[(40, 12)]
        assert "PROGRESSING" in seen[(40, 12)]
        assert "Gates" in seen[SMALL]  # the verdicts are still on screen at 60×20
        # Back at full size, keys still act on the engine (p asks for an optional reason).
        await pilot.press("p")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        await app.workers.wait_for_complete()
        await settle(app, pilot)
        assert rig.engine.phase is Phase.PAUSED


async def test_rollback_dialog_survives_the_round_trip_and_still_rolls_back(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await settle(app, pilot)
        assert isinstance(app.screen, ReasonDialog)
        seen = await round_trip(app, pilot)
        assert isinstance(app.screen, ReasonDialog), "a resize closed the dialog"
        small = seen[SMALL]
        # Behind the dialog the header still says where the release stands.
        assert "PROGRESSING" in header_lines(small) and "canary 10%" in header_lines(small)
        assert "Roll back checkout-api" in small and "10% to 0%" in small
        assert "Cancel" in small and "Roll back" in small
        await pilot.press(*"p99", "space", *"regression")
        await pilot.press("enter")
        await settle(app, pilot)
        await app.workers.wait_for_complete()
        await settle(app, pilot)
        assert rig.engine.phase is Phase.ROLLED_BACK
        assert rig.world.weight == 0
        await pilot.resize_terminal(*SMALL)
        await settle(app, pilot)
        assert "ROLLED BACK" in header_lines(screen_text(app))


async def test_help_survives_the_round_trip(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        await settle(app, pilot)
        assert isinstance(app.screen, HelpScreen)
        seen = await round_trip(app, pilot)
        assert isinstance(app.screen, HelpScreen)
        assert "relconsole — keys" in seen[SMALL] and "roll back" in seen[SMALL]
        await pilot.press("escape")
        await settle(app, pilot)
        assert not isinstance(app.screen, HelpScreen)
        assert "PROGRESSING" in header_lines(screen_text(app))


async def test_a_failing_rollback_stays_loud_at_every_size(bad_rig: Rig) -> None:
    await failed_rollback(bad_rig)
    assert bad_rig.engine.phase is Phase.ROLLBACK_FAILED
    app = ReleaseApp(bad_rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        # A retry (failing again) lands while the terminal is small.
        seen = await round_trip(app, pilot, at_small=lambda: bad_rig.ticks(1, every=4.0))
        for size in [(120, 40), (80, 24), SMALL]:
            head = header_lines(seen[size])
            assert "ROLLBACK FAILED" in head and "canary 10%" in head, (size, head)
            assert "ROLLBACK FAILED — retrying" in seen[size]
        assert "ROLLBACK FAILED" in seen[(40, 12)]
        # Once the provider is back, the next retry is verified and shown as such.
        bad_rig.traffic.broken = False
        await bad_rig.ticks(1, every=30.0)
        await pilot.resize_terminal(*SMALL)
        await settle(app, pilot)
        assert bad_rig.engine.phase is Phase.ROLLED_BACK
        assert "ROLLED BACK" in header_lines(screen_text(app))


class HeldTraffic:
    """Wraps the rig's traffic: `set_weight` waits until the test lets it go."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.release = asyncio.Event()
        self.waiting = asyncio.Event()
        # Held on purpose for as long as the test needs: a loaded machine's slow resizes
        # must not turn the rollback in flight into a timed-out one.
        self.action_timeout = 120.0

    async def read(self) -> TrafficState:
        return await self.inner.read()

    async def set_weight(self, weight: int, *, reason: str) -> None:
        self.waiting.set()
        await self.release.wait()
        await self.inner.set_weight(weight, reason=reason)

    async def close(self) -> None:
        await self.inner.close()


async def test_resizing_while_a_rollback_is_in_flight(rig: Rig) -> None:
    await healthy_mid_release(rig)
    held = HeldTraffic(rig.engine.traffic)
    rig.engine.traffic = held
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await settle(app, pilot)
        await pilot.press(*"bad", "enter")
        await asyncio.wait_for(held.waiting.wait(), 5)
        await settle(app, pilot)
        assert rig.engine.phase is Phase.ROLLING_BACK
        seen = await round_trip(app, pilot)
        for size in [(120, 40), (80, 24), SMALL]:
            head = header_lines(seen[size])
            assert "ROLLING BACK" in head and "canary 10%" in head, (size, head)
        held.release.set()
        await app.workers.wait_for_complete()
        await settle(app, pilot)
        assert rig.engine.phase is Phase.ROLLED_BACK and rig.world.weight == 0
        await pilot.resize_terminal(*SMALL)
        await settle(app, pilot)
        assert "ROLLED BACK" in header_lines(screen_text(app))
