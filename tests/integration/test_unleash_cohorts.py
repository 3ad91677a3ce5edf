"""Flag cohorts on a real Unleash server, judged by Unleash's own evaluation (the Admin
API's playground, which evaluates every strategy of a flag for a given context as the
SDKs do): the cohort's users are served the flag, everyone else keeps the answer the
rollout gave them, and the rollout strategy (its id, groupId, stickiness and percentage)
is never touched."""

from __future__ import annotations

import pytest

from relconsole.model import Segment
from relconsole.providers.base import ProviderError
from tests.helpers import demo_session
from tests.integration.test_unleash import make_flag, provider, unique
from tests.unleash_server import UnleashServer

pytestmark = pytest.mark.integration
PLANS = ("free", "pro", "beta")
USERS = [f"user-{i}" for i in range(150)]


def plan_of(i: int) -> str:
    return PLANS[i % 3]


def served(server: UnleashServer, key: str) -> dict[str, bool]:
    """userId → whether Unleash serves `key` to that user (with their plan)."""
    out = {}
    with server.admin() as admin:
        for i, user in enumerate(USERS):
            answer = admin.post("/api/admin/playground", json={
                "projects": "*", "environment": "production",
                "context": {"appName": "relconsole-test", "userId": user,
                            "properties": {"plan": plan_of(i)}},
            })
            answer.raise_for_status()
            feature = next(f for f in answer.json()["features"] if f["name"] == key)
            out[user] = bool(feature["isEnabled"])
    return out


def strategies(server: UnleashServer, key: str) -> list[dict]:
    with server.admin() as admin:
        env = admin.get(f"/api/admin/projects/default/features/{key}/environments/production")
        env.raise_for_status()
        return env.json()["strategies"]


def beta(user: str) -> bool:
    return plan_of(USERS.index(user)) == "beta"


async def test_a_cohort_is_served_beside_the_rollout_which_stays_as_it_was(unleash):
    key = make_flag(unleash, unique("cohort"), rollout=10)
    rollout_before = strategies(unleash, key)
    before = served(unleash, key)
    p = provider(unleash)
    await p.target(key, Segment("plan", ("beta",)), reason="beta first")
    after = served(unleash, key)
    assert all(after[u] for u in USERS if beta(u))
    assert {u: v for u, v in after.items() if not beta(u)} == {
        u: v for u, v in before.items() if not beta(u)}
    assert not all(after[u] for u in USERS if not beta(u))  # the 10 % still decides there

    now = strategies(unleash, key)
    assert rollout_before[0] in now  # the rollout strategy, id and all, untouched
    cohort = next(s for s in now if s["id"] != rollout_before[0]["id"])
    assert cohort["name"] == "flexibleRollout" and cohort["parameters"]["rollout"] == "100"
    assert [(c["contextName"], c["operator"], c["values"]) for c in cohort["constraints"]] == [
        ("plan", "IN", ["beta"])]
    flag = next(f for f in await p.list_flags() if f.key == key)
    assert flag.rollout == 10 and flag.segments == (Segment("plan", ("beta",)),)
    await p.close()


async def test_user_ids_then_a_bigger_percentage_keeps_the_cohort_and_is_monotonic(unleash):
    key = make_flag(unleash, unique("cohort-ids"), rollout=10)
    p = provider(unleash)
    before = served(unleash, key)
    testers = [u for u in USERS if not before[u]][:2]
    await p.target(key, Segment("userId", tuple(testers)), reason="two testers")
    previous = served(unleash, key)
    assert all(previous[u] for u in testers)
    await p.set_rollout(key, 60, reason="ramp")
    now = served(unleash, key)
    assert all(now[u] for u in testers)
    assert {u for u, v in previous.items() if v} <= {u for u, v in now.items() if v}
    flag = next(f for f in await p.list_flags() if f.key == key)
    # The percentage went to the rollout strategy, not to the cohort's.
    assert flag.rollout == 60 and flag.segments == (Segment("userId", tuple(testers)),)
    await p.close()


async def test_replace_then_untarget_removes_exactly_that_strategy(unleash):
    key = make_flag(unleash, unique("cohort-untarget"), rollout=10)
    original = strategies(unleash, key)
    before = served(unleash, key)
    p = provider(unleash)
    await p.target(key, Segment("plan", ("beta",)), reason="beta")
    await p.target(key, Segment("country", ("DE", "FR")), reason="Europe")
    await p.target(key, Segment("plan", ("beta", "pro")), reason="pro too")
    flag = next(f for f in await p.list_flags() if f.key == key)
    assert {s.text() for s in flag.segments or ()} == {"plan in beta, pro", "country in DE, FR"}
    assert len(strategies(unleash, key)) == 3  # replaced in place, not added again
    await p.untarget(key, "plan", reason="done")
    await p.untarget(key, "country", reason="done")
    assert strategies(unleash, key) == original
    assert served(unleash, key) == before
    await p.close()


async def test_a_new_flag_can_go_to_its_cohort_first_and_only_to_it(unleash):
    key = make_flag(unleash, unique("cohort-first"), enabled=False)
    p = provider(unleash)
    await p.target(key, Segment("plan", ("beta",)), reason="beta before anyone")
    with unleash.admin() as admin:
        admin.post(f"/api/admin/projects/default/features/{key}/environments/production/on"
                   ).raise_for_status()
    assert served(unleash, key) == {u: beta(u) for u in USERS}
    flag = next(f for f in await p.list_flags() if f.key == key)
    assert flag.enabled and flag.rollout is None
    assert flag.segments == (Segment("plan", ("beta",)),)
    # Removing the only strategy of a flag that is on is refused: SDKs differ on that.
    with pytest.raises(ProviderError, match="only strategy"):
        await p.untarget(key, "plan", reason="x")
    assert served(unleash, key) == {u: beta(u) for u in USERS}
    with pytest.raises(ProviderError, match="no cohort on country"):
        await p.untarget(key, "country", reason="x")
    await p.close()


async def test_engine_journals_and_verifies_a_cohort_on_real_unleash(unleash):
    key = make_flag(unleash, unique("cohort-engine"), rollout=25)
    session = demo_session()
    engine = session.engine
    engine.flags_provider = provider(unleash)
    await engine.attach()
    result = await engine.set_flag_cohort(key, "plan", ("beta",), "beta first")
    assert result.ok, result.message
    outcome = [r for r in engine.journal.records() if r.get("intent") == "flag.target"][-1]
    assert outcome["outcome"] == "verified"
    assert outcome["after"]["segments"] == ["plan = beta"] and outcome["after"]["rollout"] == 25
    assert all(v for u, v in served(unleash, key).items() if beta(u))
    gone = await engine.set_flag_cohort(key, "plan", (), "beta over")
    assert gone.ok, gone.message
    await session.close()
