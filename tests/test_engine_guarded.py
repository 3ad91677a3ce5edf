"""Issue 10, items 5 and 6 in the engine: the rules hold below every front end.

- An advance inside a bake is refused unless the bake is skipped on purpose, with a
  reason, and it is journalled as an early advance (item 5).
- `why_not` says exactly what the intent itself would refuse with, so a console that asks
  first cannot disagree with the engine; an advance to the last step follows the rules of
  a promotion (items 5 and 6).
"""

from __future__ import annotations

import pytest

from relconsole.engine import policy
from relconsole.model import Phase
from relconsole.providers.base import ProviderError
from tests.helpers import demo_session, run_until, world


async def at_first_step(scenario: str = "healthy"):
    session = demo_session(scenario, auto_advance=False)
    await session.engine.attach()
    assert (await session.engine.advance("start")).ok  # pending → 1 %: no bake before it
    return session


async def test_an_advance_inside_a_bake_is_refused_and_moves_nothing() -> None:
    session = await at_first_step()
    engine = session.engine
    await engine.clock.sleep(5)
    await engine.tick()  # 5 s of the 30 s bake at 1 %
    result = await engine.advance("operator")
    assert not result.ok
    assert result.message == ("advance refused: the canary has baked 5s of 30s at 1% (25s "
                              "left); cutting a bake short must be asked for, with a reason "
                              "(relconsole advance --skip-bake --reason TEXT)")
    assert world(session).weight == 1 and world(session).set_weight_calls == [1]
    assert engine.why_not("advance") == result.message


async def test_skipping_a_bake_needs_a_reason_and_is_journalled_as_an_early_advance() -> None:
    session = await at_first_step()
    engine = session.engine
    await engine.clock.sleep(5)
    await engine.tick()
    refused = await engine.advance("  ", skip_bake=True)
    assert not refused.ok and "needs a reason for the journal" in refused.message
    assert world(session).weight == 1

    done = await engine.advance("db migration window closes at 14:00", skip_bake=True)
    assert done.ok, done.message
    assert done.message == ("advance: canary at 10% (verified) — early advance: 25s of the "
                            "30s bake skipped")
    assert world(session).weight == 10
    intent, outcome = [r for r in engine.journal.records() if r["intent"] == "advance"][-2:]
    assert intent["reason"] == "db migration window closes at 14:00"
    assert intent["data"]["early_advance"] == {"bake": 30.0, "baked": 5.0, "left": 25.0}
    assert outcome["outcome"] == "verified — early advance: 25s of the 30s bake skipped"


async def test_an_advance_once_the_bake_is_over_needs_no_skip() -> None:
    session = await at_first_step()
    await run_until(session, lambda e: e.snapshot().ready_to_advance)
    assert session.engine.why_not("advance") is None
    assert (await session.engine.advance("bake done")).ok
    record = [r for r in session.engine.journal.records() if r["intent"] == "advance"][-2]
    assert "early_advance" not in (record.get("data") or {})


async def test_automatic_advances_never_skip_a_bake() -> None:
    session = demo_session("healthy", auto_advance=True)
    engine = session.engine
    await engine.attach()
    await run_until(session, lambda e: e.phase is Phase.PROMOTED)
    early = [r for r in engine.journal.records()
             if "early_advance" in (r.get("data") or {})]
    assert early == []


@pytest.mark.parametrize("state", ["healthy", "gate failing", "traffic unreadable"])
async def test_an_advance_to_the_last_step_follows_the_rules_of_promote(state: str) -> None:
    """At 50 % the next step is 100 %: what refuses a promotion refuses it too."""
    session = demo_session("healthy", auto_advance=False, auto_rollback=False)
    engine = session.engine
    await engine.attach()
    await engine.advance("start")
    for _ in range(2):
        await run_until(session, lambda e: e.snapshot().ready_to_advance
                        or e.phase is not Phase.PROGRESSING)
        await engine.advance("next", skip_bake=True)
    if state == "gate failing":
        world(session).scenario = "bad-canary"  # the canary's 5xx jump, at 50 %
        await engine.clock.sleep(5)
        await engine.tick()
    if state == "traffic unreadable":
        async def refused() -> None:
            raise ProviderError("haproxy: connection refused")

        session.providers.traffic.read = refused  # type: ignore[method-assign]
        await engine.clock.sleep(5)
        await engine.tick()
    assert engine.snapshot().step_index + 2 == len(engine.plan.steps)
    advance = engine.why_not("advance", skip_bake=True, reason="go")
    promote = engine.why_not("promote")
    assert (promote is None) == (state == "healthy"), promote
    assert (advance is None) == (promote is None), (advance, promote)
    if promote is not None:
        assert promote.split(": ", 1)[1] == advance.split(": ", 1)[1]


async def test_why_not_is_what_the_intent_says() -> None:
    session = await at_first_step()
    engine = session.engine
    await engine.rollback("bad")
    for intent in ("advance", "promote", "pause", "resume"):
        said = engine.why_not(intent)  # type: ignore[arg-type]
        refused = await getattr(engine, intent)("x")
        assert said is not None and not refused.ok
        assert refused.message == said


def test_bake_left_counts_only_a_progressing_step() -> None:
    from relconsole.engine.progress import ReleaseState
    from relconsole.engine.steps import FixedSteps
    from relconsole.model import Step

    steps = FixedSteps([Step(1, 30.0), Step(100, 0.0)])
    state = ReleaseState(phase=Phase.PROGRESSING, step_index=0, bake_elapsed=12.0)
    assert policy.bake_left(state, steps) == 18.0
    state.phase = Phase.PAUSED
    assert policy.bake_left(state, steps) == 0.0
