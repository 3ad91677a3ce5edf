"""The engine drives strategies that route by more than a weight (issue 14).

A traffic provider double that keeps a route beside the simulator's weight stands in
for HAProxy's maps, a mirror or batches of servers: the engine must move with
`set_route`, verify the route it reads back, pause when the route changes behind its
back, roll back to an empty route, and name the strategy in every journal record.
Blue-green's switch is at 100 % and still bakes before the release is done.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from relconsole.assembly import demo_config
from relconsole.clock import FastClock
from relconsole.engine.journal import Journal, journal_path
from relconsole.engine.release import ReleaseEngine
from relconsole.model import Actor, Phase, Route, Step, TrafficState
from relconsole.providers.sim import SimMetrics, SimTraffic, SimWorld
from tests.helpers import RoutedSim

ACTOR = Actor("ci", "runner")


def engine_for(tmp_path: Path, strategy: str, steps: tuple[Step, ...],
               traffic: SimTraffic | None = None) -> tuple[ReleaseEngine, SimTraffic, Journal]:
    plan = dataclasses.replace(demo_config("healthy").plan, strategy=strategy, steps=steps,
                               auto_advance=False)
    clock = FastClock()
    world = SimWorld(clock, "healthy")
    traffic = traffic or RoutedSim(world)
    traffic.world = world
    journal = Journal(journal_path(tmp_path, plan.release_id), clock, ACTOR,
                      release=plan.release_id)
    engine = ReleaseEngine(plan, traffic=traffic, metrics=SimMetrics(world), clock=clock,
                           journal=journal, actor=ACTOR)
    return engine, traffic, journal


async def settle(engine: ReleaseEngine, ticks: int = 6) -> None:
    """Polls enough for the gates to judge the step just entered."""
    for _ in range(ticks):
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()


BETA = Route(cohorts=("beta",))
AB = (Step(0, 0.0, route=BETA, label="cohort beta"), Step(10, 0.0, route=BETA),
      Step(100, 0.0, route=BETA))


async def test_an_ab_release_moves_by_route_and_names_its_strategy(tmp_path: Path) -> None:
    engine, traffic, journal = engine_for(tmp_path, "ab", AB)
    await engine.attach()
    assert engine.phase is Phase.PENDING
    result = await engine.advance("beta users first")
    assert result.ok, result.message
    assert traffic.calls[-1] == (0, BETA)  # type: ignore[attr-defined]
    snap = engine.snapshot()
    assert (snap.step_index, snap.phase) == (0, Phase.PROGRESSING)
    assert snap.step_label == "step 1/3 · cohort beta"
    assert "cohort beta, canary at 0% (verified)" in result.message
    await settle(engine)
    assert (await engine.advance("then ten percent")).ok
    assert traffic.calls[-1] == (10, BETA)  # type: ignore[attr-defined]
    # Every record names the strategy; the moves say the route they asked for.
    records = journal.records()
    assert all(r["after"].get("strategy") == "ab" for r in records
               if r.get("outcome") == "verified" and r["intent"] == "advance")
    asked = [r["after"] for r in records if r["intent"] == "advance" and not r.get("outcome")]
    assert asked[0] == {"weight": 0, "route": "cohort beta"}
    result = await engine.rollback("beta users see errors")
    assert result.ok and engine.phase is Phase.ROLLED_BACK
    assert traffic.calls[-1] == (0, Route())  # type: ignore[attr-defined]
    assert not traffic.route  # type: ignore[attr-defined]


async def test_a_route_that_did_not_land_is_not_verified(tmp_path: Path) -> None:
    engine, traffic, _ = engine_for(tmp_path, "ab", AB)
    traffic.ignore_route = True  # type: ignore[attr-defined]
    await engine.attach()
    result = await engine.advance("beta users first")
    assert not result.ok
    assert "advance to cohort beta, canary at 0% not verified: provider reports canary at " \
           "0%" in result.message
    assert engine.phase is Phase.PAUSED
    assert engine.snapshot().step_index == -1


async def test_a_route_changed_behind_the_engines_back_pauses(tmp_path: Path) -> None:
    engine, traffic, _ = engine_for(tmp_path, "ab", AB)
    await engine.attach()
    assert (await engine.advance("beta users first")).ok
    traffic.route = Route()  # type: ignore[attr-defined] # someone cleared the map
    await engine.tick()
    assert engine.phase is Phase.PAUSED
    assert ("traffic changed outside relconsole: cohort beta, canary at 0% → canary at 0%"
            in engine.snapshot().pause_reason)


async def test_a_rollback_that_leaves_a_route_is_not_verified(tmp_path: Path) -> None:
    class Sticky(RoutedSim):
        async def set_route(self, weight: int, route: Route, *, reason: str) -> None:
            await super().set_route(weight, route if route else self.route, reason=reason)

    world = SimWorld(FastClock(), "healthy")
    engine, _, _ = engine_for(tmp_path, "shadow", (
        Step(0, 0.0, route=Route(mirror=20), label="mirror 20%"),
        Step(100, 0.0, route=Route(mirror=20))), traffic=Sticky(world))
    await engine.attach()
    assert (await engine.advance("mirror a fifth")).ok
    result = await engine.rollback("the shadow's answers are wrong")
    assert not result.ok
    assert engine.phase is Phase.ROLLBACK_FAILED
    assert "provider still routes mirror 20% to the new version" in result.message


async def test_rolling_is_verified_on_its_batches_not_its_weight(tmp_path: Path) -> None:
    class Rolling(RoutedSim):
        async def read(self) -> TrafficState:
            # One updated server of two is failing its check: less weight than planned.
            state = await super().read()
            return dataclasses.replace(state, canary_weight=max(0, state.canary_weight - 5))

    world = SimWorld(FastClock(), "healthy")
    steps = (Step(50, 0.0, route=Route(batches=1), label="batch 1"),
             Step(100, 0.0, route=Route(batches=2), label="batch 2"))
    engine, _, _ = engine_for(tmp_path, "rolling", steps, traffic=Rolling(world))
    await engine.attach()
    result = await engine.advance("first batch")
    assert result.ok, result.message
    assert "1 batch updated (45% of traffic) (verified)" in result.message
    await engine.tick()
    assert engine.phase is Phase.PROGRESSING  # the weight moving is not a change of plan


async def test_blue_green_bakes_after_the_switch_before_it_is_done(tmp_path: Path) -> None:
    steps = (Step(100, 30.0, label="switch"), Step(100, 0.0, label="done"))
    world = SimWorld(FastClock(), "healthy")
    engine, _, _ = engine_for(tmp_path, "blue-green", steps, traffic=SimTraffic(world))
    await engine.attach()
    assert (await engine.advance("switch to green")).ok
    snap = engine.snapshot()
    assert (snap.weight, snap.phase, snap.step_label) == (
        100, Phase.PROGRESSING, "step 1/2 · switch")
    # Still baking: the release is not done the moment traffic moved.
    await settle(engine, ticks=2)
    refused = await engine.advance("done already?")
    assert not refused.ok and "bake" in refused.message
    for _ in range(8):
        await engine.clock.sleep(5.0)
        await engine.tick()
    assert (await engine.advance("bake passed")).ok
    assert engine.phase is Phase.PROMOTED


async def test_a_slow_move_is_bounded_by_the_providers_action_timeout(tmp_path: Path) -> None:
    class Slow(RoutedSim):
        async def set_route(self, weight: int, route: Route, *, reason: str) -> None:
            await asyncio.sleep(0.3)  # longer than call_timeout below, within action_timeout
            await super().set_route(weight, route, reason=reason)

    world = SimWorld(FastClock(), "healthy")
    slow = Slow(world)
    engine, _, _ = engine_for(tmp_path, "ab", AB, traffic=slow)
    engine.plan = dataclasses.replace(engine.plan, call_timeout=0.1)
    await engine.attach()
    assert (await engine.advance("beta")).ok
    await settle(engine)
    slow.action_timeout = 0.1
    result = await engine.advance("ten percent")
    assert not result.ok
    assert "set cohort beta, canary at 10%" in result.message and "0.1s" in result.message


def test_a_provider_double_is_what_the_engine_expects() -> None:
    from relconsole.providers.base import routes

    assert routes(RoutedSim(SimWorld(FastClock(), "healthy")))
    assert not routes(SimTraffic(SimWorld(FastClock(), "healthy")))
