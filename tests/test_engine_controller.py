"""A release whose traffic provider's controller owns the plan (Argo Rollouts).

On the simulated Rollout (scenario `argo`): the engine follows the controller's steps,
moves only through the controller (promote, abort, pause, resume — never a weight), calls
a release promoted only when the controller says so, and adopts what was done outside
relconsole instead of fighting it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import demo_session, run_until, world

from relconsole.model import Phase
from relconsole.providers.base import owns_steps
from relconsole.providers.sim_rollout import PLAN


def rollout(session) -> dict:
    return world(session).extra["rollout"]


def controller(session):
    snap = session.engine.snapshot()
    assert snap.traffic is not None and snap.traffic.controller is not None
    return snap.traffic.controller


async def until_step(session, index: int) -> None:
    await run_until(session, lambda e: e.snapshot().step_index == index, max_ticks=200)


async def test_the_rollout_owns_the_plan_and_the_engine_follows_it(tmp_path: Path) -> None:
    session = demo_session("argo", auto_advance=False, state=tmp_path)
    engine = session.engine
    assert owns_steps(engine.traffic)
    await engine.attach()
    assert engine.snapshot().plan.steps == ()  # no release.steps: the Rollout's own
    assert engine.steps.count == len(PLAN) + 1
    await until_step(session, 1)  # setWeight 10 done by the controller: at the pause
    c = controller(session)
    assert (c.phase, c.message, c.step, c.waiting) == ("Paused", "CanaryPauseStep", 1, True)
    assert engine.snapshot().weight == 10 == c.actual_weight
    # Nothing moves without a promote: the pause waits, relconsole does not advance it
    # (auto_advance is off).
    for _ in range(20):
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
    assert controller(session).step == 1
    moved = [e for e in engine.recent_events(50) if "(by Argo Rollouts)" in e.message]
    assert [e.message for e in moved] == ["step 1/7: canary at 10% (by Argo Rollouts)"]
    records = engine.journal.records()
    assert any(r["intent"] == "advance" and r.get("reason") == "by Argo Rollouts"
               for r in records)


async def test_a_promotes_past_an_indefinite_pause_and_is_journalled_with_who(
    tmp_path: Path,
) -> None:
    session = demo_session("argo", auto_advance=False, state=tmp_path)
    engine = session.engine
    await engine.attach()
    await until_step(session, 1)
    await run_until(session, lambda e: all(g.verdict.value == "pass" for g in e.snapshot().gates),
                    max_ticks=50)
    assert engine.why_not("advance") is None
    result = await engine.advance("canary looks fine at 10%")
    assert result.ok, result.message
    assert "verified" in result.message
    c = controller(session)
    assert c.step == 2 and c.set_weight == 30  # the controller took the next setWeight
    assert "promote by" in rollout(session)["last_action"]
    assert "canary looks fine at 10%" in rollout(session)["last_action"]
    assert world(session).set_weight_calls == []  # never a weight: the Rollout owns them


async def test_an_advance_inside_a_step_the_controller_leaves_by_itself_needs_a_reason(
    tmp_path: Path,
) -> None:
    session = demo_session("argo", auto_advance=False, state=tmp_path)
    engine = session.engine
    await engine.attach()
    await until_step(session, 1)
    await engine.advance("ok")
    await until_step(session, 3)  # the timed pause: "pause 1m"
    refusal = engine.why_not("advance")
    assert refusal is not None
    assert "Argo Rollouts is at pause 1m and moves on by itself" in refusal
    assert "--skip-bake --reason" in refusal
    result = await engine.advance("no time for the full minute", skip_bake=True)
    assert result.ok, result.message
    assert controller(session).step >= 4


async def test_the_release_is_promoted_only_when_the_controller_says_healthy(
    tmp_path: Path,
) -> None:
    session = demo_session("argo", auto_advance=True, state=tmp_path)
    engine = session.engine
    await engine.attach()
    seen: list[tuple[Phase, bool]] = []
    for _ in range(400):
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
        c = controller(session)
        seen.append((engine.phase, c.fully_promoted))
        if engine.phase is Phase.PROMOTED:
            break
    assert engine.phase is Phase.PROMOTED
    # Never PROMOTED while the controller still brought pods up at the last step.
    assert all(fully for phase, fully in seen if phase is Phase.PROMOTED)
    assert controller(session).step == len(PLAN)
    assert controller(session).phase == "Healthy"


async def test_rollback_is_the_controllers_abort_verified_at_zero(tmp_path: Path) -> None:
    session = demo_session("argo", auto_advance=False, state=tmp_path)
    engine = session.engine
    await engine.attach()
    await until_step(session, 1)
    result = await engine.rollback("p99 doubled on the canary")
    assert result.ok, result.message
    assert engine.phase is Phase.ROLLED_BACK
    c = controller(session)
    assert c.aborted and c.phase == "Degraded"
    assert c.message.startswith("RolloutAborted: ")
    assert (c.set_weight, c.actual_weight) == (0, 0)
    assert "abort by" in rollout(session)["last_action"]
    assert "p99 doubled on the canary" in rollout(session)["last_action"]


async def test_pause_and_resume_go_to_the_controller(tmp_path: Path) -> None:
    session = demo_session("argo", auto_advance=False, state=tmp_path)
    engine = session.engine
    await engine.attach()
    await until_step(session, 1)
    await engine.advance("ok")
    await until_step(session, 3)  # a timed pause, which the controller would end itself
    assert (await engine.pause("looking at a dashboard")).ok
    assert rollout(session)["paused"] is True
    assert controller(session).message == "manually paused"
    for _ in range(40):  # far past the pause's minute: the controller stays put
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
    assert controller(session).step == 3 and engine.phase is Phase.PAUSED
    assert (await engine.resume("dashboard is fine")).ok
    assert rollout(session)["paused"] is False
    assert engine.phase is Phase.PROGRESSING
    # Resume undoes the pause only: it does not promote past the step it stands in.
    assert controller(session).step == 3 or controller(session).step == 4


async def test_an_abort_outside_relconsole_is_adopted_as_a_rollback(tmp_path: Path) -> None:
    session = demo_session("argo", auto_advance=False, state=tmp_path)
    engine = session.engine
    await engine.attach()
    await until_step(session, 1)
    state = rollout(session)
    state.update(aborted=True, set=0, actual=0)  # kubectl argo rollouts abort, elsewhere
    world(session).save()
    await engine.clock.sleep(engine.plan.poll_interval)
    await engine.tick()
    assert engine.phase is Phase.ROLLED_BACK
    assert engine.snapshot().rollback_reason.startswith(
        "aborted in Argo Rollouts: RolloutAborted: ")
    last = engine.journal.records()[-1]
    assert last["intent"] == "rollback"
    assert last["outcome"] == "verified (aborted outside relconsole)"


async def test_a_pause_and_a_resume_outside_relconsole_are_adopted(tmp_path: Path) -> None:
    session = demo_session("argo", auto_advance=False, state=tmp_path)
    engine = session.engine
    await engine.attach()
    await until_step(session, 1)
    await engine.tick()
    rollout(session)["paused"] = True
    world(session).save()
    await engine.tick()
    assert engine.phase is Phase.PAUSED
    assert engine.snapshot().pause_reason == "paused in Argo Rollouts (outside relconsole)"
    rollout(session)["paused"] = False
    world(session).save()
    await engine.tick()
    assert engine.phase is Phase.PROGRESSING


async def test_the_engines_own_pause_pauses_the_controller(tmp_path: Path) -> None:
    session = demo_session("argo", auto_advance=False, state=tmp_path)
    engine = session.engine
    await engine.attach()
    await until_step(session, 1)
    await engine._changes.auto_pause("no data: gate error_rate inconclusive for 6 polls")
    assert engine.phase is Phase.PAUSED
    # Without this the controller would walk on through its timed steps while the
    # screen says paused.
    assert rollout(session)["paused"] is True


async def test_a_watcher_follows_the_controller_and_cannot_move_it(tmp_path: Path) -> None:
    driver = demo_session("argo", auto_advance=False, state=tmp_path)
    await driver.engine.attach()
    await until_step(driver, 1)
    watcher = demo_session("argo", auto_advance=False, state=tmp_path, watch=True,
                           clock=driver.engine.clock)
    await watcher.engine.attach()
    assert watcher.engine.snapshot().step_index == 1
    with pytest.raises(Exception, match="watch-only"):
        await watcher.engine.traffic.promote(full=False, reason="x", actor="me@here")  # type: ignore[attr-defined]
    await driver.engine.advance("ok")
    await watcher.engine.tick()
    assert watcher.engine.snapshot().step_index >= 2


async def test_status_json_reports_the_controller(tmp_path: Path, capsys) -> None:
    from relconsole.cli import _snapshot_dict

    session = demo_session("argo", auto_advance=False, state=tmp_path)
    await session.engine.attach()
    await until_step(session, 1)
    out = json.loads(json.dumps(_snapshot_dict(session.engine.snapshot()), default=str))
    assert out["controller"] == {
        "phase": "Paused", "message": "CanaryPauseStep", "step": 1, "steps": len(PLAN),
        "set_weight": 10, "actual_weight": 10,
    }
    assert (out["step"], out["steps"], out["weight"]) == (1, len(PLAN), 10)
