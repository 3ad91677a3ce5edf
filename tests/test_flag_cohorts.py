"""Flag cohorts through the engine and the command line: journalled, applied, read back and
verified like every flag change, refused where they cannot be done."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext

from relconsole.clock import FastClock
from relconsole.engine.flag_actions import parse_segment
from relconsole.engine.results import WatchOnlyError
from relconsole.model import Segment
from relconsole.providers.base import BuildContext, ReadOnlyError, targets_segments
from relconsole.providers.flagd import FlagdFlags
from relconsole.providers.readonly import ReadOnlyFlags
from tests.helpers import demo_config, demo_session

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "flagd-flags.json"
PRICING = "checkout-new-pricing-release"


def flagd(path: Path) -> FlagdFlags:
    return FlagdFlags({"type": "flagd", "path": str(path)},
                      BuildContext(plan=demo_config().plan, clock=FastClock()))


@pytest.fixture
def flags_file(tmp_path: Path) -> Path:
    path = tmp_path / "flags.json"
    shutil.copy(DATA, path)
    return path


def records(engine, intent: str) -> list[dict]:
    return [r for r in engine.journal.records() if r.get("intent") == intent]


@pytest.mark.parametrize(("text", "segment"), [
    ("userId=alice,bob", Segment("userId", ("alice", "bob"))),
    ("plan=beta", Segment("plan", ("beta",))),
    (" country = DE, FR ,DE", Segment("country", ("DE", "FR"))),
    ("user.region=eu-west", Segment("user.region", ("eu-west",))),
])
def test_segments_are_read_as_an_operator_writes_them(text, segment):
    assert parse_segment(text) == segment


@pytest.mark.parametrize(("text", "says"), [
    ("plan", "write ATTR=V1,V2"),
    ("=beta", "the attribute is missing"),
    ("plan=", "no values after plan="),
    ("plan=a,,b", "an empty value"),
    ("pl an=beta", "is not an attribute name"),
])
def test_bad_segments_say_what_is_wrong(text, says):
    problem = parse_segment(text)
    assert isinstance(problem, str) and says in problem


async def test_engine_targets_journals_and_verifies_by_reading_back(flags_file):
    session = demo_session()
    engine = session.engine
    engine.flags_provider = flagd(flags_file)
    await engine.attach()
    core = FlagdCore()
    core.set_flags(flags_file.read_text())
    beta = [EvaluationContext(targeting_key=f"user-{i}", attributes={"plan": "beta"})
            for i in range(200)]
    outside = [c for c in beta if not core.resolve_boolean_value(PRICING, False, c).value]
    assert outside  # beta users the 10 % leaves out: the cohort must reach them
    result = await engine.set_flag_cohort(PRICING, "plan", ("beta",), "beta users first")
    assert result.ok and "verified" in result.message, result.message
    intent, outcome = records(engine, "flag.target")
    assert intent["reason"] == "beta users first" and intent["data"] == {"flag": PRICING}
    assert intent["before"]["segments"] == []
    assert outcome["outcome"] == "verified" and outcome["after"]["segments"] == ["plan = beta"]
    assert outcome["after"]["rollout"] == 10  # the percentage is as it was
    flag = next(f for f in engine.snapshot().flags if f.key == PRICING)
    assert flag.segments == (Segment("plan", ("beta",)),)
    # What the engine verified is what flagd's own evaluator serves.
    core.set_flags(flags_file.read_text())
    assert all(core.resolve_boolean_value(PRICING, False, c).value for c in outside)

    untargeted = await engine.set_flag_cohort(PRICING, "plan", (), "beta is over")
    assert untargeted.ok, untargeted.message
    assert [r.get("outcome") or "" for r in records(engine, "flag.untarget")] == [
        "", "verified"]
    assert next(f for f in engine.snapshot().flags if f.key == PRICING).segments == ()
    await session.close()


async def test_untargeting_a_cohort_the_flag_does_not_have_is_refused_unjournalled(flags_file):
    session = demo_session()
    engine = session.engine
    engine.flags_provider = flagd(flags_file)
    await engine.attach()
    text = flags_file.read_text()
    result = await engine.set_flag_cohort(PRICING, "plan", (), "cleanup")
    assert not result.ok and "has no cohort on plan" in result.message
    assert records(engine, "flag.untarget") == [] and flags_file.read_text() == text
    await session.close()


class RampsToo(FlagdFlags):
    """A provider that, asked for a cohort, also moves the percentage: it must not verify."""

    async def target(self, key: str, segment: Segment, *, reason: str) -> None:
        await super().target(key, segment, reason=reason)
        await self.set_rollout(key, 50, reason=reason)


async def test_a_cohort_that_moved_the_percentage_is_not_verified(flags_file):
    session = demo_session()
    engine = session.engine
    engine.flags_provider = RampsToo({"type": "flagd", "path": str(flags_file)},
                                     BuildContext(plan=demo_config().plan, clock=FastClock()))
    await engine.attach()
    result = await engine.set_flag_cohort(PRICING, "plan", ("beta",), "beta")
    assert not result.ok
    assert "not verified" in result.message and "rollout changed too" in result.message
    assert records(engine, "flag.target")[-1]["outcome"].startswith("failed")
    await session.close()


async def test_a_provider_without_cohorts_is_refused_naming_those_with_them():
    session = demo_session()  # the simulator's flags
    engine = session.engine
    await engine.attach()
    result = await engine.set_flag_cohort("checkout-pricing-killswitch", "plan", ("beta",), "x")
    assert not result.ok
    assert "sim flag provider cannot serve a flag to a cohort" in result.message
    assert "flagd, unleash, launchdarkly, split can" in result.message
    assert records(engine, "flag.target") == []
    await session.close()


async def test_watch_only_refuses_cohorts_below_the_ui(flags_file):
    text = flags_file.read_text()
    facade = ReadOnlyFlags(flagd(flags_file))
    assert targets_segments(facade)  # what it wraps can; this console may not
    with pytest.raises(ReadOnlyError):
        await facade.target(PRICING, Segment("plan", ("beta",)), reason="x")
    with pytest.raises(ReadOnlyError):
        await facade.untarget(PRICING, "plan", reason="x")
    session = demo_session(watch=True)
    with pytest.raises(WatchOnlyError):
        await session.engine.set_flag_cohort(PRICING, "plan", ("beta",), "x")
    assert flags_file.read_text() == text
    await session.close()


# ---------------------------------------------------------------- the command line


def relconsole(*args: str, state: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "relconsole", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "RELCONSOLE_STATE_DIR": str(state)})


def config(tmp_path: Path, flags: str) -> Path:
    cfg = tmp_path / "relconsole.yaml"
    cfg.write_text(f"""
release:
  service: checkout-api
  version: 2.3.0
  environment: staging
  steps: [{{weight: 100}}]
providers:
  traffic: {{type: sim}}
  flags: {flags}
""")
    return cfg


def test_cli_targets_and_untargets_a_flagd_flag(tmp_path, flags_file):
    cfg = str(config(tmp_path, f"{{type: flagd, path: {flags_file}}}"))
    state = tmp_path / "state"
    done = relconsole("flag", "target", PRICING, "--segment", "country=DE,FR",
                      "--reason", "Europe first", "-c", cfg, state=state)
    assert done.returncode == 0, done.stderr
    assert f"{PRICING} on for country in DE, FR (verified)" in done.stdout
    targeting = json.loads(flags_file.read_text())["flags"][PRICING]["targeting"]
    assert targeting["if"][0] == {"in": [{"var": "country"}, ["DE", "FR"]]}
    users = relconsole("flag", "target", PRICING, "--segment", "userId=alice,bob",
                       "--reason", "two testers", "-c", cfg, state=state)
    assert users.returncode == 0, users.stderr
    gone = relconsole("flag", "untarget", PRICING, "--attribute", "country",
                      "--reason", "done", "-c", cfg, state=state)
    assert gone.returncode == 0, gone.stderr
    journal = relconsole("journal", "-c", cfg, "--format", "json", state=state)
    lines = [json.loads(line) for line in journal.stdout.splitlines()]
    assert [(r["intent"], r.get("outcome") or "") for r in lines] == [
        ("flag.target", ""), ("flag.target", "verified"),
        ("flag.target", ""), ("flag.target", "verified"),
        ("flag.untarget", ""), ("flag.untarget", "verified"),
    ]
    assert lines[-1]["after"]["segments"] == ["userId in alice, bob"]
    assert relconsole("journal", "-c", cfg, "--verify", state=state).returncode == 0


@pytest.mark.parametrize(("args", "says"), [
    (("target", PRICING, "--segment", "plan", "--reason", "x"), "--segment: “plan” is not"),
    (("target", PRICING, "--segment", "plan=a,,b", "--reason", "x"), "an empty value"),
    (("target", PRICING, "--segment", "plan=beta", "--reason", "  "), "--reason must say why"),
    (("untarget", PRICING, "--attribute", "pl an", "--reason", "x"), "not an attribute name"),
])
def test_cli_bad_input_is_one_message_and_exit_2(tmp_path, flags_file, args, says):
    cfg = str(config(tmp_path, f"{{type: flagd, path: {flags_file}}}"))
    text = flags_file.read_text()
    result = relconsole("flag", *args, "-c", cfg, state=tmp_path / "state")
    assert result.returncode == 2
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and flags_file.read_text() == text


def test_cli_refuses_a_provider_without_cohorts_with_exit_2(tmp_path):
    cfg = str(config(tmp_path, "{type: sim}"))
    result = relconsole("flag", "target", "checkout-pricing-killswitch", "--segment",
                        "plan=beta", "--reason", "x", "-c", cfg, state=tmp_path / "state")
    assert result.returncode == 2
    assert "flagd, unleash, launchdarkly, split can" in result.stderr
    assert "Traceback" not in result.stderr


async def test_unleash_refuses_a_cohort_on_a_flag_that_is_on_with_no_strategy():
    """Unleash 7 always gives an enabled flag a strategy, so the real server cannot show
    this state; an older one (or a strategy deleted by its API) can, and SDKs differ on
    what it serves. Nothing may be written then."""
    import httpx

    from relconsole.providers.base import ProviderError
    from relconsole.providers.unleash import UnleashFlags

    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.method)
        return httpx.Response(200, json={"name": "f", "enabled": True, "strategies": []})

    p = UnleashFlags({"type": "unleash", "url": "http://unleash.invalid", "token": "t"},
                     BuildContext(plan=demo_config().plan, clock=FastClock()),
                     transport=httpx.MockTransport(answer))
    with pytest.raises(ProviderError, match=r"on in .* with no strategy"):
        await p.target("f", Segment("plan", ("beta",)), reason="x")
    assert sent == ["GET"]
    await p.close()
