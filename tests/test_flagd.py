"""The flagd file provider, judged by OpenFeature's own flagd evaluator.

What relconsole writes must mean what the operator asked for when a real flagd
evaluator (openfeature-flagd-core, the in-process provider's engine) reads it: a 25 %
rollout serves "on" to about a quarter of keys, growing it only adds keys, and a kill
switch serves "on" to nobody.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext

from relconsole.clock import FastClock
from relconsole.model import FlagKind
from relconsole.providers.base import BuildContext, ProviderError
from relconsole.providers.flagd import FlagdFlags
from tests.helpers import demo_config

DATA = Path(__file__).parent / "data" / "flagd-flags.json"
PRICING = "checkout-new-pricing-release"
KEYS = [f"user-{i}" for i in range(10_000)]


@pytest.fixture
def flags_file(tmp_path: Path) -> Path:
    path = tmp_path / "flags.json"
    shutil.copy(DATA, path)
    return path


def provider(path: Path) -> FlagdFlags:
    ctx = BuildContext(plan=demo_config().plan, clock=FastClock())
    return FlagdFlags({"type": "flagd", "path": str(path)}, ctx)


def served_on(path: Path, key: str = PRICING, email: str = "someone@customer.org") -> set[str]:
    core = FlagdCore()
    core.set_flags(path.read_text())
    on = set()
    for k in KEYS:
        result = core.resolve_boolean_value(
            key, False, EvaluationContext(targeting_key=k, attributes={"email": email})
        )
        if result.value is True:
            on.add(k)
    return on


async def test_lists_every_flag_with_its_state_type_rollout_and_metadata(flags_file):
    flags = {f.key: f for f in await provider(flags_file).list_flags()}
    assert set(flags) == {PRICING, "checkout-pricing-killswitch", "search-ranking-experiment",
                          "header-colour"}
    pricing = flags[PRICING]
    assert pricing.kind is FlagKind.RELEASE and pricing.enabled
    assert pricing.rollout == 10  # the fractional nested inside the `if`
    assert pricing.owner == "payments-team" and pricing.description
    assert pricing.created is not None
    assert flags["checkout-pricing-killswitch"].kind is FlagKind.KILL_SWITCH
    assert flags["checkout-pricing-killswitch"].rollout is None
    assert flags["header-colour"].enabled is False
    assert flags["header-colour"].owner == ""


async def test_round_trip_changes_nothing_but_the_edited_flag(flags_file):
    before_text = flags_file.read_text()
    before = json.loads(before_text)
    await provider(flags_file).set_rollout(PRICING, 25, reason="ramp")
    after_text = flags_file.read_text()
    after = json.loads(after_text)

    edited = after["flags"].pop(PRICING)
    original = before["flags"].pop(PRICING)
    assert after == before  # $evaluators, metadata and every other flag untouched
    assert list(after) == list(before)  # key order kept
    # Byte for byte outside the edited flag: the rest of the file is as the team wrote it.
    start = before_text.index(f'"{PRICING}"')
    assert after_text[:start] == before_text[:start]
    tail = before_text[before_text.index('"checkout-pricing-killswitch"') - 6:]
    assert after_text.endswith(tail)

    # Inside the flag: only the weights and metadata.lastChanged moved.
    fractional = edited["targeting"]["if"][2]["fractional"]
    assert fractional[0] == original["targeting"]["if"][2]["fractional"][0]  # bucketing kept
    assert fractional[1:] == [["on", 25], ["off", 75]]
    assert edited["targeting"]["if"][0] == {"$ref": "internalStaff"}
    assert edited["metadata"].pop("lastChanged")
    assert edited["metadata"] == original["metadata"]
    edited["targeting"]["if"][2]["fractional"] = original["targeting"]["if"][2]["fractional"]
    assert edited == original


async def test_rollout_and_kill_switch_as_a_flagd_evaluator_sees_them(flags_file):
    p = provider(flags_file)
    at_10 = served_on(flags_file)
    assert 800 <= len(at_10) <= 1200

    await p.set_rollout(PRICING, 25, reason="ramp")
    assert (await p.list_flags())[0].rollout == 25
    at_25 = served_on(flags_file)
    assert 2000 <= len(at_25) <= 3000  # 25 % of 10 000 keys, give or take hashing
    assert at_10 <= at_25  # monotonic: nobody who had the feature loses it

    await p.set_rollout(PRICING, 60, reason="ramp")
    at_60 = served_on(flags_file)
    assert 5500 <= len(at_60) <= 6500 and at_25 <= at_60

    # Staff still get it through the $evaluators rule, whatever the percentage.
    assert len(served_on(flags_file, email="dev@example.com")) == len(KEYS)

    await p.set_enabled(PRICING, False, reason="kill")
    assert served_on(flags_file) == set()
    assert served_on(flags_file, email="dev@example.com") == set()  # everyone, at once

    await p.set_enabled(PRICING, True, reason="restore")
    assert served_on(flags_file) == at_60  # the rollout comes back exactly as it was


async def test_a_rollout_is_created_on_a_flag_without_targeting(flags_file):
    p = provider(flags_file)
    await p.list_flags()
    await p.set_rollout("checkout-pricing-killswitch", 30, reason="ramp")
    flags = {f.key: f for f in await p.list_flags()}
    assert flags["checkout-pricing-killswitch"].rollout == 30
    on = served_on(flags_file, "checkout-pricing-killswitch")
    assert 2500 <= len(on) <= 3500


async def test_targeting_it_cannot_combine_with_a_rollout_is_refused(flags_file):
    p = provider(flags_file)
    before = flags_file.read_bytes()
    with pytest.raises(ProviderError, match="no on/off variants"):
        await p.set_rollout("header-colour", 50, reason="x")
    with pytest.raises(ProviderError, match=r"more than on/off|no on/off"):
        await p.set_rollout("search-ranking-experiment", 50, reason="x")
    assert flags_file.read_bytes() == before


async def test_a_concurrent_edit_on_disk_is_refused_not_overwritten(flags_file):
    p = provider(flags_file)
    await p.list_flags()  # what the operator sees
    # A colleague edits the file in their editor meanwhile.
    doc = json.loads(flags_file.read_text())
    doc["flags"]["checkout-pricing-killswitch"]["state"] = "DISABLED"
    theirs = json.dumps(doc, indent=2) + "\n"
    flags_file.write_text(theirs)

    with pytest.raises(ProviderError, match="changed on disk"):
        await p.set_enabled(PRICING, False, reason="kill")
    assert flags_file.read_text() == theirs  # their edit stands, ours was not written

    # Having been told, the operator looks again and acts on what is there now.
    await p.list_flags()
    await p.set_enabled(PRICING, False, reason="kill")
    after = json.loads(flags_file.read_text())
    assert after["flags"][PRICING]["state"] == "DISABLED"
    assert after["flags"]["checkout-pricing-killswitch"]["state"] == "DISABLED"


async def test_writes_are_atomic_and_leave_no_temporary_files(flags_file):
    p = provider(flags_file)
    flags_file.chmod(0o640)
    await p.set_enabled(PRICING, False, reason="kill")
    assert sorted(x.name for x in flags_file.parent.iterdir()) == ["flags.json"]
    assert flags_file.stat().st_mode & 0o777 == 0o640


async def test_an_invalid_definition_is_reported_with_its_place(flags_file):
    doc = json.loads(flags_file.read_text())
    doc["flags"][PRICING]["state"] = "ON"
    flags_file.write_text(json.dumps(doc))
    with pytest.raises(ProviderError, match=rf"flags/{PRICING}/state"):
        await provider(flags_file).list_flags()
    flags_file.write_text("{not json")
    with pytest.raises(ProviderError, match="invalid JSON"):
        await provider(flags_file).list_flags()
    with pytest.raises(ProviderError, match="file not found"):
        await provider(flags_file.with_name("missing.json")).list_flags()
