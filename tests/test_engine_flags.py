"""Rollback kills the release's flags first (release.rollback.kill_flags), then traffic."""

from __future__ import annotations

from relconsole.model import Phase
from relconsole.providers.base import ProviderError
from relconsole.providers.sim import SimFlags
from tests.helpers import demo_session, run_until, world

RELEASE_FLAGS = ("checkout-new-pricing-release", "checkout-pricing-killswitch")


class FlakyKills(SimFlags):
    """Sim flags whose first `fail` kill calls fail, as a flag vendor outage would."""

    def __init__(self, inner: SimFlags, fail: int) -> None:
        super().__init__(inner.world)
        self.fail = fail
        self.calls: list[tuple[str, bool]] = []

    async def set_enabled(self, key: str, enabled: bool, *, reason: str) -> None:
        self.calls.append((key, enabled))
        if not enabled and self.fail > 0:
            self.fail -= 1
            raise ProviderError("sim flags: connection reset by peer")
        await super().set_enabled(key, enabled, reason=reason)


def intents(session) -> list[tuple[str, str, str]]:
    return [(r.get("intent", ""), str((r.get("data") or {}).get("flag")
                                      or (r.get("after") or {}).get("flag") or ""),
             r.get("outcome") or "")
            for r in session.engine.journal.records()]


async def test_rollback_kills_release_flags_first_then_traffic_each_verified():
    session = demo_session("bad-canary", kill_flags_on_rollback=True)
    engine = session.engine
    await engine.attach()
    assert all(f.enabled for f in world(session).flags.values() if f.key in RELEASE_FLAGS)
    await run_until(session, lambda e: e.phase.terminal)
    assert engine.phase is Phase.ROLLED_BACK
    flags = world(session).flags
    assert [flags[k].enabled for k in RELEASE_FLAGS] == [False, False]
    # Flags outside the release are left alone.
    assert flags["search-autocomplete-experiment"].enabled is True
    assert world(session).weight == 0

    records = intents(session)
    start = max(i for i, r in enumerate(records) if r[0] == "rollback" and not r[2])
    after = records[start + 1:]
    kills = [r for r in after if r[0] == "flag.kill"]
    # Each flag: an intent and a verified outcome, both before the traffic outcome.
    assert [(k[1], k[2]) for k in kills] == [
        (RELEASE_FLAGS[0], ""), (RELEASE_FLAGS[0], "verified"),
        (RELEASE_FLAGS[1], ""), (RELEASE_FLAGS[1], "verified"),
    ]
    rollback_done = next(i for i, r in enumerate(after)
                         if r[0] == "rollback" and r[2] == "verified")
    assert all(after.index(k) < rollback_done for k in kills)
    journal = engine.journal.records()
    kill_reason = next(r for r in journal if r.get("intent") == "flag.kill")["reason"]
    assert kill_reason.startswith("rollback: gate error_rate failed")
    events = [e.message for e in engine.recent_events(200)]
    first_kill = next(i for i, m in enumerate(events) if "KILLED" in m)
    rolled = next(i for i, m in enumerate(events) if m.startswith("rolled back"))
    assert first_kill < rolled
    await session.close()


async def test_without_kill_flags_a_rollback_leaves_flags_alone():
    session = demo_session("bad-canary")
    await session.engine.attach()
    await run_until(session, lambda e: e.phase.terminal)
    assert session.engine.phase is Phase.ROLLED_BACK
    assert all(world(session).flags[k].enabled for k in RELEASE_FLAGS)
    assert not [r for r in intents(session) if r[0] == "flag.kill"]
    await session.close()


async def test_a_flag_kill_that_fails_keeps_the_rollback_unverified_and_is_retried():
    session = demo_session("healthy", auto_advance=False, kill_flags_on_rollback=True)
    engine = session.engine
    flaky = FlakyKills(engine.flags_provider, fail=1)
    engine.flags_provider = flaky
    await engine.attach()
    await engine.advance("start")
    result = await engine.rollback("operator saw errors")
    # Traffic is back at 0, but one flag is not verified off: not done, and loud.
    assert not result.ok
    assert engine.phase is Phase.ROLLBACK_FAILED
    assert world(session).weight == 0
    assert "flags not verified off" in result.message
    assert engine.snapshot().problem("rollback") is not None
    outcomes = [r[2] for r in intents(session) if r[0] == "rollback" and r[2]]
    assert outcomes[-2:] == ["traffic verified at 0%; release flags not yet verified off",
                             outcomes[-1]]
    assert outcomes[-1].startswith("failed: flags not verified off")

    settled = await engine.settle_rollback()
    assert settled.ok and engine.phase is Phase.ROLLED_BACK
    assert [world(session).flags[k].enabled for k in RELEASE_FLAGS] == [False, False]
    # Only the flag that failed was tried again.
    kills = [c for c in flaky.calls if not c[1]]
    assert kills == [(RELEASE_FLAGS[0], False), (RELEASE_FLAGS[1], False),
                     (RELEASE_FLAGS[0], False)]
    await session.close()


async def test_the_engine_says_whether_a_percentage_can_be_set():
    from relconsole.providers.flagsmith import FlagsmithFlags

    session = demo_session("healthy")
    assert session.engine.flag_rollout_supported is True
    assert FlagsmithFlags.supports_rollout is False
    await session.close()
