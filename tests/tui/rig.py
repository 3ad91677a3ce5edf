"""A real ReleaseEngine on the simulator, driven step by step on a FastClock.

Nothing here is a fake engine: the only test double is `BrokenTraffic`, a traffic
provider wrapper that starts refusing calls on demand (a dead HAProxy).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from textual.command import CommandList, CommandPalette
from textual.widgets import Input

from relconsole.clock import FastClock
from relconsole.config import load_config
from relconsole.engine.journal import Journal, journal_path
from relconsole.engine.release import ReleaseEngine
from relconsole.model import Actor, Cohort, GateSpec, MetricSpec, Mode, Route, Step, TrafficState
from relconsole.providers.base import ProviderError
from relconsole.providers.sim import SimFlags, SimMetrics, SimTraffic, SimWorld
from tests.helpers import RoutedSim

DEMO = Path(__file__).resolve().parents[2] / "relconsole" / "demo.yaml"
ACTOR = Actor("oncall", "bastion-1", ssh_client="10.20.0.7")
WATCHER = Actor("bob", "bastion-2")
RELEASE_FLAG = "checkout-new-pricing-release"


class BrokenTraffic:
    """The simulator's traffic provider, until `broken` is set: then it cannot be reached."""

    name = "haproxy"

    def __init__(self, inner: SimTraffic) -> None:
        self.inner = inner
        self.broken = False

    async def read(self) -> TrafficState:
        if self.broken:
            raise ProviderError("haproxy: connection refused")
        return await self.inner.read()

    async def set_weight(self, weight: int, *, reason: str) -> None:
        if self.broken:
            raise ProviderError("haproxy: connection refused")
        await self.inner.set_weight(weight, reason=reason)

    async def set_route(self, weight: int, route: Route, *, reason: str) -> None:
        if self.broken:
            raise ProviderError("haproxy: connection refused")
        await self.inner.set_route(weight, route, reason=reason)  # type: ignore[attr-defined]

    @property
    def routes_supported(self) -> bool:
        return isinstance(self.inner, RoutedSim)

    async def close(self) -> None:
        await self.inner.close()



class PacedClock(FastClock):
    """A FastClock whose sleeps also let a little real time pass.

    Tests that run the engine's own poll loop (`start_engine=True`) used to spin it as
    fast as the CPU allowed: on a loaded machine the UI under test then got too little
    of the event loop for Pilot's pauses, and those tests flaked. Virtual time still
    moves by the whole sleep; `Rig.ticks` does not sleep and is unaffected.
    """

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0.01 if seconds > 0 else 0)

@dataclass
class Rig:
    engine: ReleaseEngine
    world: SimWorld
    clock: FastClock
    traffic: BrokenTraffic
    state_dir: Path

    async def ticks(self, n: int, every: float = 5.0) -> None:
        for _ in range(n):
            self.clock.advance(every)
            await self.engine.tick()

    def watcher(self) -> ReleaseEngine:
        """A second, watch-only console on the same release while this one drives."""
        plan = self.engine.plan
        journal = Journal(journal_path(self.state_dir, plan.release_id), self.clock, WATCHER,
                          release=plan.release_id, read_only=True)
        return ReleaseEngine(
            plan,
            metrics=SimMetrics(self.world),
            traffic=SimTraffic(self.world),
            flags=SimFlags(self.world),
            clock=self.clock,
            journal=journal,
            actor=WATCHER,
            mode=Mode.WATCH,
            driver=f"{ACTOR}",
            driver_since=self.clock.now(),
        )


def make_rig(state_dir: Path, scenario: str = "healthy", *, seed: int = 7,
             auto_advance: bool = False, blind_gate: bool = False,
             production: bool = True, strategy: str = "",
             steps: tuple[Step, ...] = (), cohorts: tuple[Cohort, ...] = ()) -> Rig:
    """The demo release on the simulator; `blind_gate` adds a gate on a metric the
    simulator does not have, which therefore stays INCONCLUSIVE. The demo environment is
    production (flag changes need the key typed out); `production=False` is staging."""
    cfg = load_config(DEMO, resolve_secrets=False)
    assert cfg.plan.production, "the demo release is meant to be production"
    plan = dataclasses.replace(cfg.plan, auto_advance=auto_advance, production=production)
    if blind_gate:
        plan = dataclasses.replace(
            plan,
            metrics=(*plan.metrics, MetricSpec("cpu_saturation", unit="ratio")),
            gates=(*plan.gates, GateSpec("cpu_saturation", max=0.8, inconclusive_limit=20)),
        )
    if strategy:
        # Another strategy's release on the same simulator: its steps, and a traffic
        # double that reports a route beside the weight (tests/helpers.RoutedSim).
        plan = dataclasses.replace(plan, strategy=strategy, steps=steps, cohorts=cohorts,
                                   baseline_version=plan.baseline_version or "2.2.9")
    clock = PacedClock()
    world = SimWorld(clock, scenario, seed)
    inner = RoutedSim(world) if plan.routed else SimTraffic(world)
    traffic = BrokenTraffic(inner)
    journal = Journal(journal_path(state_dir, plan.release_id), clock, ACTOR,
                      release=plan.release_id)
    engine = ReleaseEngine(
        plan,
        metrics=SimMetrics(world),
        traffic=traffic,
        flags=SimFlags(world),
        clock=clock,
        journal=journal,
        actor=ACTOR,
        driver_since=clock.now(),
    )
    return Rig(engine, world, clock, traffic, state_dir)


# -- deterministic mid-release states ----------------------------------------------------


async def healthy_mid_release(rig: Rig) -> None:
    """Step 2/4 at 10%, gates passing, 1m30s of bake left."""
    await rig.engine.attach()
    await rig.engine.advance("start")
    await rig.ticks(7)  # 35 s at 1%: bake of 30 s done, gates pass
    await rig.engine.advance("step 2")
    await rig.ticks(6)  # 30 s of 120 s baked


async def failed_rollback(rig: Rig) -> None:
    """bad-canary at 10% trips the error gate; the rollback cannot reach HAProxy."""
    await rig.engine.attach()
    await rig.engine.advance("start")
    await rig.ticks(7)
    await rig.engine.advance("step 2")
    rig.traffic.broken = True
    await rig.ticks(2)  # two failing polls: auto-rollback, attempt 1 fails
    await rig.ticks(1, every=1.0)  # attempt 2
    await rig.ticks(1, every=2.0)  # attempt 3, next in 4 s


async def verdict_mix(rig: Rig) -> None:
    """A console started while bad-canary runs at 10%: one gate passes, one fails (1/2),
    one has no data. Needs `make_rig(..., "bad-canary", blind_gate=True)`."""
    rig.world.apply_weight(10)
    await rig.engine.attach()


async def choose(pilot, title: str) -> None:
    """Enter a command into the open palette, wait until it is the only hit, and run it."""
    palette = pilot.app.screen
    assert isinstance(palette, CommandPalette)
    # All at once, as a paste would: typed key by key, every key searched the palette
    # again, and trying every palette command took a minute of the suite.
    palette.query_one(Input).value = title
    hits = palette.query_one(CommandList)
    for _ in range(200):
        await pilot.pause(0.02)
        if hits.option_count == 1:
            break
    assert hits.option_count == 1, f"{title!r} matches {hits.option_count} commands"
    await pilot.press("enter")
