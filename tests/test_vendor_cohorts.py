"""Flag cohorts (`FlagTargeting`) on LaunchDarkly and Split, against FAKE servers.

The real services cannot run here; tests/fake_vendors.py answers as each vendor
documents (LaunchDarkly's semantic patch `addRule`/`removeRule`, Split's RFC 6902 JSON
patch on the definition's `rules`). These tests assert what relconsole sends, what the
flag holds afterwards (the percentage and other people's rules as they were), what it
reads back as `Flag.segments`, and that each documented error is one clear line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from relconsole.clock import FastClock
from relconsole.model import Flag, Segment
from relconsole.providers import registry
from relconsole.providers.base import BuildContext, ProviderError, targets_segments
from tests.fake_vendors import FakeLaunchDarkly, FakeSplit, Reply
from tests.helpers import demo_config

KEY = "checkout-new-pricing-release"
BETA = Segment("plan", ("beta",))


def build(settings: dict[str, Any]) -> Any:
    return registry.build("flags", settings, BuildContext(plan=demo_config().plan,
                                                          clock=FastClock()))


async def flag(provider: Any, key: str = KEY) -> Flag:
    return {f.key: f for f in await provider.list_flags()}[key]


# ====================================================================== LaunchDarkly


@pytest.fixture
def ld() -> Iterator[FakeLaunchDarkly]:
    fake = FakeLaunchDarkly()
    fake.add_flag(KEY, rollout=10)
    fake.add_flag("checkout-pricing-killswitch", temporary=False, tags=("kill-switch",))
    yield fake
    fake.close()


@pytest.fixture
def ldp(ld: FakeLaunchDarkly) -> Iterator[Any]:
    yield build({"type": "launchdarkly", "url": ld.url, "token": ld.token,
                 "project": ld.project, "environment": ld.environment})


def ld_env(ld: FakeLaunchDarkly, key: str = KEY) -> dict[str, Any]:
    return ld.flags[key]["environments"][ld.environment]


async def test_launchdarkly_target_adds_one_rule_serving_on_and_keeps_the_rest(ld, ldp):
    assert targets_segments(ldp)
    germany = ld.add_rule(KEY, "country", ["DE"], variation=1)  # someone's: DE gets off
    fallthrough = dict(ld_env(ld)["fallthrough"])

    await ldp.target(KEY, BETA, reason="beta first")

    patch = ld.writes()[-1]
    assert patch.method == "PATCH" and patch.path == f"/api/v2/flags/default/{KEY}"
    assert patch.header("Content-Type") == (
        "application/json; domain-model=launchdarkly.semanticpatch")
    assert patch.header("Authorization") == ld.token
    on_id = ld.flags[KEY]["variations"][0]["_id"]  # the variation whose value is true
    assert patch.body == {
        "environmentKey": "production", "comment": "relconsole: beta first",
        "instructions": [{
            "kind": "addRule",
            "clauses": [{"contextKind": "user", "attribute": "plan", "op": "in",
                         "negate": False, "values": ["beta"]}],
            "variationId": on_id, "description": "relconsole: plan",
        }],
    }
    rules = ld.rules(KEY)
    assert [r["_id"] for r in rules] == [germany, rules[1]["_id"]]  # theirs first, as it was
    assert rules[0]["clauses"][0]["values"] == ["DE"] and rules[0]["variation"] == 1
    assert rules[1]["variation"] == 0 and rules[1]["description"] == "relconsole: plan"
    assert ld_env(ld)["fallthrough"] == fallthrough  # the 10 % rollout is untouched

    read = await flag(ldp)
    assert read.rollout == 10 and read.enabled
    assert read.segments == (BETA,)  # DE serves off: not a cohort the flag is on for
    await ldp.close()


async def test_launchdarkly_user_ids_are_the_context_key(ld, ldp):
    # `userId`, as the CLI and every other flag system say it, is the context's key.
    users = Segment("userId", ("alice", "bob"))
    await ldp.target(KEY, users, reason="staff")
    clause = ld.rules(KEY)[0]["clauses"][0]
    assert clause["attribute"] == "key" and clause["values"] == ["alice", "bob"]
    assert clause["contextKind"] == "user"
    assert (await flag(ldp)).segments == (users,)
    await ldp.close()


async def test_launchdarkly_retarget_replaces_ours_in_place_in_one_patch(ld, ldp):
    first = ld.add_rule(KEY, "country", ["DE"], variation=1)
    await ldp.target(KEY, BETA, reason="beta")
    last = ld.add_rule(KEY, "email", ["@example.com"], op="endsWith")
    ours = ld.rules(KEY)[1]["_id"]

    wider = Segment("plan", ("beta", "pro"))
    await ldp.target(KEY, wider, reason="and pro")

    instructions = ld.writes()[-1].body["instructions"]
    assert [i["kind"] for i in instructions] == ["addRule", "removeRule"]
    assert instructions[0]["beforeRuleId"] == ours and instructions[1]["ruleId"] == ours
    rules = ld.rules(KEY)
    assert [r["_id"] for r in rules][::2] == [first, last]  # the others kept, in order
    assert rules[1]["clauses"][0]["values"] == ["beta", "pro"]
    assert (await flag(ldp)).segments == (wider,)

    writes = len(ld.writes())
    await ldp.target(KEY, Segment("plan", ("pro", "beta")), reason="again")
    assert len(ld.writes()) == writes  # already so: nothing sent
    await ldp.close()


async def test_launchdarkly_untarget_removes_only_relconsoles_rule(ld, ldp):
    theirs = ld.add_rule(KEY, "plan", ["enterprise"])  # someone's rule on the same attribute
    await ldp.target(KEY, BETA, reason="beta")
    ours = next(r["_id"] for r in ld.rules(KEY) if r.get("description"))

    await ldp.untarget(KEY, "plan", reason="done")

    assert ld.writes()[-1].body["instructions"] == [{"kind": "removeRule", "ruleId": ours}]
    assert [r["_id"] for r in ld.rules(KEY)] == [theirs]
    # Read back: their rule is still a cohort the flag is on for.
    assert (await flag(ldp)).segments == (Segment("plan", ("enterprise",)),)

    writes = len(ld.writes())
    with pytest.raises(ProviderError) as err:
        await ldp.untarget(KEY, "plan", reason="again")
    assert str(err.value) == (
        "launchdarkly: remove the cohort on plan from checkout-new-pricing-release in "
        "production: the rule on plan was not added by relconsole (its description is "
        "not 'relconsole: plan'); change it in LaunchDarkly")
    await ldp.untarget(KEY, "country", reason="nothing there")
    assert len(ld.writes()) == writes  # neither sent anything
    await ldp.close()


async def test_launchdarkly_reads_only_simple_in_rules_serving_on_as_segments(ld, ldp):
    ld.add_rule(KEY, "plan", ["beta"], extra_clauses=[
        {"contextKind": "user", "attribute": "country", "op": "in", "negate": False,
         "values": ["DE"]}])  # two clauses: beta AND Germany, not one cohort
    ld.add_rule(KEY, "email", ["@example.com"], op="endsWith")
    ld.add_rule(KEY, "org", ["acme"], context_kind="organization")
    ld.add_rule(KEY, "tier", [3])  # not text
    ld.add_rule(KEY, "country", ["FR", "IT"])
    assert (await flag(ldp)).segments == (Segment("country", ("FR", "IT")),)
    assert (await flag(ldp, "checkout-pricing-killswitch")).segments == ()
    await ldp.close()


async def test_launchdarkly_errors_are_clear_and_change_nothing(ld, ldp):
    with pytest.raises(ProviderError) as err:
        await ldp.target("no-such-flag", BETA, reason="x")
    assert str(err.value) == ("launchdarkly: read no-such-flag: not found "
                              "(HTTP 404: Unknown resource)")

    ld.fail_writes = [ld.error(409, "conflict", "A concurrent update happened")]
    with pytest.raises(ProviderError) as err:
        await ldp.target(KEY, BETA, reason="x")
    assert str(err.value) == (
        "launchdarkly: target checkout-new-pricing-release at plan = beta in production: "
        "conflict — the flag changed in LaunchDarkly meanwhile (HTTP 409: A concurrent "
        "update happened); look again and retry")

    ld.fail_writes = [ld.error(400, "invalid_request", "clause values too long")]
    with pytest.raises(ProviderError) as err:
        await ldp.target(KEY, BETA, reason="x")
    assert str(err.value) == (
        "launchdarkly: target checkout-new-pricing-release at plan = beta in production: "
        "LaunchDarkly rejected the request (HTTP 400: clause values too long)")

    ld.approvals_required = True
    with pytest.raises(ProviderError, match=r"requires an approval .* \(HTTP 405"):
        await ldp.target(KEY, BETA, reason="x")
    assert ld.rules(KEY) == []  # nothing was applied
    assert (await flag(ldp)).segments == ()

    before = len(ld.requests)
    with pytest.raises(ProviderError, match="needs at least one value"):
        await ldp.target(KEY, Segment("plan", ()), reason="x")
    assert len(ld.requests) == before  # refused before asking LaunchDarkly
    await ldp.close()


# ====================================================================== Split


@pytest.fixture
def split() -> Iterator[FakeSplit]:
    fake = FakeSplit()
    fake.add_flag(KEY, on_size=10)
    fake.add_flag("legacy-cart-release", killed=True)
    yield fake
    fake.close()


@pytest.fixture
def sp(split: FakeSplit) -> Iterator[Any]:
    yield build({"type": "split", "url": split.url, "token": split.token,
                 "workspace": split.workspace, "environment": split.environment})


def in_list(attribute: str | None, *values: str) -> dict[str, Any]:
    matcher: dict[str, Any] = {"type": "IN_LIST_STRING", "negate": False,
                               "strings": list(values)}
    if attribute is not None:
        matcher["attribute"] = attribute
    return matcher


def cohort_rule(attribute: str | None, *values: str) -> dict[str, Any]:
    return {"condition": {"combiner": "AND", "matchers": [in_list(attribute, *values)]},
            "buckets": [{"treatment": "on", "size": 100}]}


async def test_split_target_appends_one_rule_beside_the_default_rule(split, sp):
    assert targets_segments(sp)
    split.add_rule(KEY, [in_list("country", "DE")], [{"treatment": "off", "size": 100}])
    theirs = [dict(r) for r in split.defs[KEY]["rules"]]

    await sp.target(KEY, BETA, reason="beta first")

    patch = split.writes()[-1]
    path = f"/internal/api/v2/splits/ws/{split.workspace}/{KEY}/environments/Production"
    assert patch.method == "PATCH" and patch.path == path
    assert patch.header("Authorization") == f"Bearer {split.token}"
    assert patch.header("Content-Type") == "application/json"
    assert patch.body == [{"op": "add", "path": "/rules/-",
                           "value": cohort_rule("plan", "beta")}]
    definition = split.defs[KEY]
    assert definition["rules"] == [*theirs, cohort_rule("plan", "beta")]
    assert definition["defaultRule"] == [{"treatment": "on", "size": 10},
                                         {"treatment": "off", "size": 90}]

    read = await flag(sp)
    assert read.rollout == 10 and read.enabled
    assert read.segments == (BETA,)  # Germany gets off: not a cohort the flag is on for
    await sp.close()


async def test_split_user_ids_match_the_key(split, sp):
    users = Segment("userId", ("alice", "bob"))
    await sp.target(KEY, users, reason="staff")
    assert split.defs[KEY]["rules"] == [cohort_rule(None, "alice", "bob")]
    assert (await flag(sp)).segments == (users,)
    await sp.close()


async def test_split_retarget_replaces_the_cohort_in_place(split, sp):
    split.add_rule(KEY, [in_list("country", "DE")], [{"treatment": "off", "size": 100}])
    await sp.target(KEY, BETA, reason="beta")
    split.add_rule(KEY, [in_list("country", "FR")], [{"treatment": "off", "size": 100}])

    wider = Segment("plan", ("beta", "pro"))
    await sp.target(KEY, wider, reason="and pro")

    assert split.writes()[-1].body == [
        {"op": "test", "path": "/rules/1", "value": cohort_rule("plan", "beta")},
        {"op": "replace", "path": "/rules/1", "value": cohort_rule("plan", "beta", "pro")},
    ]
    countries = [r["condition"]["matchers"][0]["strings"] for r in split.defs[KEY]["rules"]]
    assert countries == [["DE"], ["beta", "pro"], ["FR"]]
    assert (await flag(sp)).segments == (wider,)

    writes = len(split.writes())
    await sp.target(KEY, Segment("plan", ("pro", "beta")), reason="again")
    assert len(split.writes()) == writes  # already so: nothing sent
    await sp.close()


async def test_split_untarget_removes_only_the_cohort_rule(split, sp):
    both = [in_list("plan", "beta"), in_list("country", "DE")]  # beta AND Germany
    split.add_rule(KEY, both)
    half = [{"treatment": "on", "size": 50}, {"treatment": "off", "size": 50}]
    split.add_rule(KEY, [in_list("plan", "beta")], half)  # half of beta: not a cohort
    await sp.target(KEY, BETA, reason="beta")
    kept = [dict(r) for r in split.defs[KEY]["rules"][:2]]

    await sp.untarget(KEY, "plan", reason="done")

    assert split.writes()[-1].body == [
        {"op": "test", "path": "/rules/2", "value": cohort_rule("plan", "beta")},
        {"op": "remove", "path": "/rules/2"},
    ]
    assert split.defs[KEY]["rules"] == kept
    assert split.defs[KEY]["defaultRule"][0] == {"treatment": "on", "size": 10}
    assert (await flag(sp)).segments == ()

    writes = len(split.writes())
    await sp.untarget(KEY, "plan", reason="again")
    assert len(split.writes()) == writes  # nothing left of ours: nothing sent
    await sp.close()


async def test_split_rules_changed_meanwhile_fail_the_patch_and_lose_nothing(split, sp):
    await sp.target(KEY, BETA, reason="beta")
    other = cohort_rule("country", "DE")

    def someone_adds_a_rule_on_top() -> None:
        split.defs[KEY]["rules"].insert(0, other)

    split.before_write = someone_adds_a_rule_on_top
    with pytest.raises(ProviderError) as err:
        await sp.untarget(KEY, "plan", reason="done")
    assert str(err.value) == (
        "split: remove the cohort on plan from checkout-new-pricing-release in Production: "
        "conflict — the flag's rules changed in Split meanwhile (HTTP 409: Patch test "
        "failed at /rules/0); look again and retry")
    split.before_write = None
    assert split.defs[KEY]["rules"] == [other, cohort_rule("plan", "beta")]

    await sp.untarget(KEY, "plan", reason="retry")  # read afresh: the right index now
    assert split.defs[KEY]["rules"] == [other]
    await sp.close()


async def test_split_errors_are_clear_and_change_nothing(split, sp):
    with pytest.raises(ProviderError) as err:
        await sp.target("no-such-flag", BETA, reason="x")
    assert str(err.value) == ("split: read no-such-flag: not found (HTTP 404: Feature "
                              "flag no-such-flag not found in environment)")

    split.approvals_required = True
    with pytest.raises(ProviderError) as err:
        await sp.target(KEY, BETA, reason="x")
    assert "(HTTP 409: Approval required" in str(err.value)
    assert "request one in Split" in str(err.value)
    split.approvals_required = False

    split.fail_writes = [split.error(400, "Matcher IN_LIST_STRING: too many strings")]
    with pytest.raises(ProviderError) as err:
        await sp.target(KEY, BETA, reason="x")
    assert str(err.value) == (
        "split: target checkout-new-pricing-release at plan = beta in Production: Split "
        "rejected the request (HTTP 400: Matcher IN_LIST_STRING: too many strings)")
    assert split.defs[KEY]["rules"] == []

    split.defs[KEY]["treatments"] = [{"name": "v1"}, {"name": "v2"}]
    before = len(split.writes())
    with pytest.raises(ProviderError, match="has no treatment on to serve the cohort"):
        await sp.target(KEY, BETA, reason="x")
    assert len(split.writes()) == before
    await sp.close()


async def test_split_fake_refuses_what_split_refuses(split):
    # The fake holds relconsole to Split's documented rules, not to what relconsole sends.
    definition = split.defs[KEY]
    bad = cohort_rule("plan", "beta")
    bad["buckets"] = [{"treatment": "on", "size": 60}]
    reply = split._patch(definition, [{"op": "add", "path": "/rules/-", "value": bad}])
    assert reply.status == 400 and "sizes must sum to 100" in reply.body["message"]
    unknown = cohort_rule("plan", "beta")
    unknown["condition"]["matchers"][0]["type"] = "IS_ONE_OF"
    reply = split._patch(definition, [{"op": "add", "path": "/rules/-", "value": unknown}])
    assert reply.status == 400 and "unknown matcher type" in reply.body["message"]
    reply = split._patch(definition, [{"op": "remove", "path": "/rules/3"}])
    assert reply.status == 400
    assert isinstance(reply, Reply) and definition["rules"] == []
