"""Flag cohorts on the flagd file, judged by OpenFeature's own flagd evaluator.

A cohort written by relconsole must mean, to a real evaluator (openfeature-flagd-core,
the in-process provider's engine), exactly what the operator asked: every context in the
cohort gets "on", every other context gets what the flag's targeting gave it before
(the same targetingKey, the same answer), and growing the percentage afterwards keeps the
cohort on. Untargeting gives back the file's targeting exactly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext

from relconsole.clock import FastClock
from relconsole.model import Segment
from relconsole.providers.base import BuildContext, ProviderError, targets_segments
from relconsole.providers.flagd import FlagdFlags
from tests.helpers import demo_config

DATA = Path(__file__).parent / "data" / "flagd-flags.json"
PRICING = "checkout-new-pricing-release"
KEYS = [f"user-{i}" for i in range(4000)]
PLANS = ("free", "pro", "beta")
COUNTRIES = ("DE", "FR", "US", "BR")


@pytest.fixture
def flags_file(tmp_path: Path) -> Path:
    path = tmp_path / "flags.json"
    shutil.copy(DATA, path)
    return path


def provider(path: Path) -> FlagdFlags:
    return FlagdFlags({"type": "flagd", "path": str(path)},
                      BuildContext(plan=demo_config().plan, clock=FastClock()))


def contexts() -> list[EvaluationContext]:
    """Many users: each with a plan, a country and (every fifth) a staff address."""
    out = []
    for i, key in enumerate(KEYS):
        email = "x@example.com" if i % 5 == 0 else f"{key}@customer.org"
        out.append(EvaluationContext(targeting_key=key, attributes={
            "plan": PLANS[i % 3], "country": COUNTRIES[i % 4], "email": email}))
    return out


def answers(path: Path, key: str = PRICING) -> dict[str, bool]:
    """targetingKey → the value flagd's evaluator serves it."""
    core = FlagdCore()
    core.set_flags(path.read_text())
    return {ctx.targeting_key or "": bool(core.resolve_boolean_value(key, False, ctx).value)
            for ctx in contexts()}


def in_cohort(ctx: EvaluationContext, segment: Segment) -> bool:
    value = ctx.targeting_key if segment.attribute == "userId" else ctx.attributes.get(
        segment.attribute)
    return value in segment.values


async def test_a_cohort_gets_on_and_everyone_else_keeps_their_answer(flags_file):
    before = answers(flags_file)
    beta = Segment("plan", ("beta",))
    await provider(flags_file).target(PRICING, beta, reason="beta first")
    after = answers(flags_file)
    by_key = {c.targeting_key: c for c in contexts()}
    cohort = {k for k, c in by_key.items() if in_cohort(c, beta)}
    assert cohort and all(after[k] for k in cohort)
    assert {k: after[k] for k in after if k not in cohort} == {
        k: before[k] for k in before if k not in cohort}
    # Somebody outside the cohort is still off: the percentage still decides for them.
    assert not all(after[k] for k in after if k not in cohort)
    assert (await provider(flags_file).list_flags())[0].segments == (beta,)


async def test_cohort_stays_on_as_the_percentage_grows_and_the_rest_grows_monotonically(
        flags_file):
    p = provider(flags_file)
    users = Segment("userId", ("user-7", "user-11", "user-4000-not-there"))
    await p.target(PRICING, users, reason="two testers")
    previous = answers(flags_file)
    assert previous["user-7"] and previous["user-11"]
    for percent in (25, 50, 80):
        await p.set_rollout(PRICING, percent, reason="ramp")
        now = answers(flags_file)
        assert now["user-7"] and now["user-11"]
        assert {k for k, v in previous.items() if v} <= {k for k, v in now.items() if v}
        previous = now
    flag = next(f for f in await p.list_flags() if f.key == PRICING)
    assert flag.rollout == 80 and flag.segments == (users,)


async def test_two_cohorts_untarget_removes_exactly_one_and_then_the_file_is_as_it_was(
        flags_file):
    original = json.loads(flags_file.read_text())
    before = answers(flags_file)
    p = provider(flags_file)
    countries = Segment("country", ("DE", "FR"))
    await p.target(PRICING, Segment("plan", ("beta",)), reason="beta")
    await p.target(PRICING, countries, reason="Europe first")
    both = answers(flags_file)
    for ctx in contexts():
        wanted = (before[ctx.targeting_key] or ctx.attributes["plan"] == "beta"
                  or ctx.attributes["country"] in ("DE", "FR"))
        assert both[ctx.targeting_key] is wanted
    # The same attribute again replaces its values where the rule stands.
    await p.target(PRICING, Segment("plan", ("beta", "pro")), reason="pro too")
    flag = next(f for f in await p.list_flags() if f.key == PRICING)
    assert [s.text() for s in flag.segments or ()] == ["country in DE, FR", "plan in beta, pro"]

    await p.untarget(PRICING, "plan", reason="done")
    only = answers(flags_file)
    for ctx in contexts():
        assert only[ctx.targeting_key] is (before[ctx.targeting_key]
                                           or ctx.attributes["country"] in ("DE", "FR"))
    await p.untarget(PRICING, "country", reason="done")
    now = json.loads(flags_file.read_text())
    assert now["flags"][PRICING]["targeting"] == original["flags"][PRICING]["targeting"]
    now["flags"][PRICING]["metadata"].pop("lastChanged")
    assert now == original  # every other field, flag and $evaluator kept
    assert answers(flags_file) == before


async def test_a_flag_without_targeting_gets_a_cohort_then_a_percentage_beside_it(tmp_path):
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"flags": {"beta-banner": {
        "state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off",
        "metadata": {"keep": "me"}}}}, indent=2))
    p = provider(path)
    beta = Segment("plan", ("beta",))
    await p.target("beta-banner", beta, reason="beta only")
    served = answers(path, "beta-banner")
    by_key = {c.targeting_key: c for c in contexts()}
    assert {k for k, v in served.items() if v} == {
        k for k, c in by_key.items() if c.attributes["plan"] == "beta"}
    # A percentage afterwards goes beside the cohort, for everyone else.
    await p.set_rollout("beta-banner", 30, reason="and a third of the rest")
    ramped = answers(path, "beta-banner")
    assert all(ramped[k] for k, c in by_key.items() if c.attributes["plan"] == "beta")
    others = [ramped[k] for k, c in by_key.items() if c.attributes["plan"] != "beta"]
    assert 0.25 < sum(others) / len(others) < 0.35
    flag = (await p.list_flags())[0]
    assert flag.rollout == 30 and flag.segments == (beta,)
    await p.set_rollout("beta-banner", 0, reason="rest off again")
    await p.untarget("beta-banner", "plan", reason="done")
    assert not any(answers(path, "beta-banner").values())
    assert json.loads(path.read_text())["flags"]["beta-banner"]["metadata"]["keep"] == "me"


async def test_a_killed_flag_is_off_for_its_cohort_too(flags_file):
    p = provider(flags_file)
    await p.target(PRICING, Segment("plan", ("beta",)), reason="beta")
    await p.set_enabled(PRICING, False, reason="incident")
    assert not any(answers(flags_file).values())


async def test_rules_the_team_wrote_are_not_read_as_cohorts(flags_file):
    flags = await provider(flags_file).list_flags()
    # The pricing flag's `if` on $ref internalStaff, header-colour's sem_ver rule and
    # search-ranking's fractional: none is a cohort.
    assert all(f.segments == () for f in flags)
    assert targets_segments(provider(flags_file))


async def test_untargeting_an_attribute_without_a_cohort_writes_nothing(flags_file):
    text = flags_file.read_text()
    with pytest.raises(ProviderError, match="no cohort on plan; nothing was written"):
        await provider(flags_file).untarget(PRICING, "plan", reason="x")
    assert flags_file.read_text() == text


async def test_targeting_key_is_targeted_by_its_user_id_name(flags_file):
    with pytest.raises(ProviderError, match="as userId"):
        await provider(flags_file).target(PRICING, Segment("targetingKey", ("a",)),
                                          reason="x")
