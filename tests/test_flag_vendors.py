"""LaunchDarkly, Split and Flagsmith adapters against FAKE servers (tests/fake_vendors.py).

The real services cannot run here. Each fake is a real local HTTP server answering as
the vendor documents; these tests assert the exact requests relconsole sends (method,
path, headers, body) and that every documented error becomes one clear line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relconsole.clock import FastClock
from relconsole.model import FlagKind
from relconsole.providers import registry
from relconsole.providers._http import parse_settings
from relconsole.providers.base import BuildContext, ProviderError
from tests.fake_vendors import FakeFlagsmith, FakeLaunchDarkly, FakeSplit
from tests.helpers import demo_config

ROOT = Path(__file__).resolve().parent.parent


def ctx() -> BuildContext:
    return BuildContext(plan=demo_config().plan, clock=FastClock())


def build(settings: dict) -> object:
    return registry.build("flags", settings, ctx())


@pytest.fixture
def ld() -> Iterator[FakeLaunchDarkly]:
    fake = FakeLaunchDarkly()
    fake.add_flag("checkout-new-pricing-release", rollout=10, maintainer="ana@example.com",
                  description="New pricing")
    fake.add_flag("checkout-pricing-killswitch", temporary=False, tags=("kill-switch",))
    fake.add_flag("search-ranking-experiment", tags=("experiment",), on=False)
    yield fake
    fake.close()


@pytest.fixture
def split() -> Iterator[FakeSplit]:
    fake = FakeSplit()
    fake.add_flag("checkout-new-pricing-release", on_size=10, tags=("release",),
                  description="New pricing")
    fake.add_flag("checkout-pricing-killswitch", tags=("killswitch",))
    fake.add_flag("legacy-cart-release", killed=True)
    yield fake
    fake.close()


@pytest.fixture
def flagsmith() -> Iterator[FakeFlagsmith]:
    fake = FakeFlagsmith()
    fake.add_feature("checkout-new-pricing-release", tags=(2,), owner="ana@example.com",
                     description="New pricing")
    fake.add_feature("checkout-pricing-killswitch", tags=(1,))
    fake.add_feature("legacy-cart-release", enabled=False)
    yield fake
    fake.close()


def ld_provider(fake: FakeLaunchDarkly, token: str | None = None):
    return build({"type": "launchdarkly", "url": fake.url, "token": token or fake.token,
                  "project": fake.project, "environment": fake.environment})


def split_provider(fake: FakeSplit, token: str | None = None):
    return build({"type": "split", "url": fake.url, "token": token or fake.token,
                  "workspace": fake.workspace, "environment": fake.environment})


def flagsmith_provider(fake: FakeFlagsmith, token: str | None = None):
    return build({"type": "flagsmith", "url": fake.url, "token": token or fake.token,
                  "project": fake.project, "environment": fake.environment})


# ---------------------------------------------------------------------- LaunchDarkly


async def test_launchdarkly_lists_every_page(ld):
    p = ld_provider(ld)
    flags = {f.key: f for f in await p.list_flags()}
    assert set(flags) == set(ld.flags)
    gets = [r for r in ld.requests if r.method == "GET"]
    assert len(gets) == 2  # page size 2 on the fake: the `_links.next` page was followed
    first = gets[0]
    assert first.path == "/api/v2/flags/default"
    assert first.query["env"] == ["production"] and first.query["summary"] == ["0"]
    assert first.header("Authorization") == ld.token  # the raw token, no "Bearer"
    assert first.header("LD-API-Version") == "20240415"
    pricing = flags["checkout-new-pricing-release"]
    assert pricing.enabled and pricing.rollout == 10 and pricing.owner == "ana@example.com"
    assert pricing.kind is FlagKind.RELEASE and pricing.last_changed == 1_762_000_000
    assert flags["checkout-pricing-killswitch"].kind is FlagKind.KILL_SWITCH
    assert flags["checkout-pricing-killswitch"].rollout == 100
    assert flags["search-ranking-experiment"].enabled is False
    await p.close()


async def test_launchdarkly_kill_restore_and_rollout_send_the_documented_patch(ld):
    p = ld_provider(ld)
    key = "checkout-new-pricing-release"
    await p.set_enabled(key, False, reason="error spike")
    patch = ld.writes()[-1]
    assert patch.method == "PATCH" and patch.path == f"/api/v2/flags/default/{key}"
    assert patch.header("Content-Type") == (
        "application/json; domain-model=launchdarkly.semanticpatch")
    assert patch.header("Authorization") == ld.token
    assert patch.header("LD-API-Version") == "20240415"
    assert patch.body == {"environmentKey": "production",
                          "comment": "relconsole: error spike",
                          "instructions": [{"kind": "turnFlagOff"}]}
    assert ld.flags[key]["environments"]["production"]["on"] is False

    await p.set_enabled(key, True, reason="fixed")
    assert ld.writes()[-1].body["instructions"] == [{"kind": "turnFlagOn"}]

    await p.set_rollout(key, 25, reason="ramp")
    ids = [v["_id"] for v in ld.flags[key]["variations"]]
    assert ld.writes()[-1].body == {
        "environmentKey": "production", "comment": "relconsole: ramp",
        "instructions": [{"kind": "updateFallthroughVariationOrRollout",
                          "rolloutWeights": {ids[0]: 25_000, ids[1]: 75_000}}],
    }
    flags = {f.key: f for f in await p.list_flags()}
    assert flags[key].rollout == 25 and flags[key].enabled
    await p.close()


async def test_launchdarkly_errors_become_clear_messages(ld):
    bad = ld_provider(ld, token="api-wrong-token-value")
    with pytest.raises(ProviderError) as err:
        await bad.list_flags()
    assert "token was rejected (HTTP 401: Invalid access token)" in str(err.value)
    assert "api-wrong-token-value" not in str(err.value)
    await bad.close()

    p = ld_provider(ld)
    with pytest.raises(ProviderError, match=r"not found \(HTTP 404: Unknown resource\)"):
        await p.set_enabled("no-such-flag", False, reason="x")
    ld.approvals_required = True
    with pytest.raises(ProviderError, match=r"requires an approval .* \(HTTP 405"):
        await p.set_enabled("checkout-new-pricing-release", False, reason="x")
    await p.close()


async def test_launchdarkly_429_is_retried_after_retry_after(ld):
    p = ld_provider(ld)
    ld.throttle_left, ld.retry_after = 1, "1"
    started = time.monotonic()
    await p.set_enabled("checkout-new-pricing-release", False, reason="x")
    assert time.monotonic() - started >= 0.9  # it waited as told
    patches = [r for r in ld.requests if r.method == "PATCH"]
    assert len(patches) == 2  # the throttled one and the retry
    # A wait longer than the bound is not sat out: the operator hears about it at once.
    ld.throttle_left, ld.retry_after = 1, "120"
    started = time.monotonic()
    with pytest.raises(ProviderError, match=r"rate limited \(HTTP 429\).*120s"):
        await p.set_enabled("checkout-new-pricing-release", True, reason="x")
    assert time.monotonic() - started < 5
    await p.close()


# ---------------------------------------------------------------------- Split


async def test_split_lists_flags_and_definitions(split):
    p = split_provider(split)
    flags = {f.key: f for f in await p.list_flags()}
    assert set(flags) == set(split.defs)
    gets = [r for r in split.requests if r.method == "GET"]
    assert {r.path for r in gets} == {
        "/internal/api/v2/splits/ws/ws-1",
        "/internal/api/v2/splits/ws/ws-1/environments/Production",
    }
    assert len(gets) == 4  # two pages each at the fake's page size of 2
    assert all(r.header("Authorization") == f"Bearer {split.token}" for r in gets)
    pricing = flags["checkout-new-pricing-release"]
    assert pricing.enabled and pricing.rollout == 10 and pricing.description == "New pricing"
    assert flags["checkout-pricing-killswitch"].kind is FlagKind.KILL_SWITCH
    assert flags["legacy-cart-release"].enabled is False
    await p.close()


async def test_split_kill_restore_and_rollout_send_the_documented_requests(split):
    p = split_provider(split)
    key = "checkout-new-pricing-release"
    await p.set_enabled(key, False, reason="error spike")
    kill = split.writes()[-1]
    assert (kill.method, kill.path) == (
        "PUT", f"/internal/api/v2/splits/ws/ws-1/{key}/environments/Production/kill")
    assert kill.header("Authorization") == f"Bearer {split.token}"
    assert kill.body == {"comment": "relconsole: error spike"}
    assert split.defs[key]["killed"] is True
    await p.set_enabled(key, True, reason="fixed")
    restore = split.writes()[-1]
    assert restore.path.endswith("/environments/Production/restore")
    assert split.defs[key]["killed"] is False

    await p.set_rollout(key, 25, reason="ramp")
    patch = split.writes()[-1]
    assert (patch.method, patch.path) == (
        "PATCH", f"/internal/api/v2/splits/ws/ws-1/{key}/environments/Production")
    assert patch.body == [{"op": "replace", "path": "/defaultRule",
                           "value": [{"treatment": "on", "size": 25},
                                     {"treatment": "off", "size": 75}]}]
    assert {f.key: f for f in await p.list_flags()}[key].rollout == 25
    await p.close()


async def test_split_errors_become_clear_messages(split):
    bad = split_provider(split, token="wrong-admin-key")
    with pytest.raises(ProviderError) as err:
        await bad.list_flags()
    assert "token was rejected (HTTP 401: Unauthorized)" in str(err.value)
    assert "wrong-admin-key" not in str(err.value)
    await bad.close()
    p = split_provider(split)
    with pytest.raises(ProviderError, match="HTTP 404: Feature flag nope not found"):
        await p.set_enabled("nope", False, reason="x")
    split.approvals_required = True
    with pytest.raises(ProviderError, match=r"HTTP 409: Approval required.*request one"):
        await p.set_enabled("checkout-new-pricing-release", False, reason="x")
    split.approvals_required = False
    split.throttle_left = 2
    await p.set_enabled("checkout-new-pricing-release", False, reason="x")  # 2 retries
    assert split.defs["checkout-new-pricing-release"]["killed"] is True
    await p.close()


# ---------------------------------------------------------------------- Flagsmith


async def test_flagsmith_lists_features_with_their_environment_state(flagsmith):
    p = flagsmith_provider(flagsmith)
    flags = {f.key: f for f in await p.list_flags()}
    assert set(flags) == {f["name"] for f in flagsmith.features}
    paths = {r.path for r in flagsmith.requests}
    assert paths == {"/api/v1/projects/7/features/", "/api/v1/projects/7/tags/",
                     "/api/v1/environments/ser.envkey123/featurestates/"}
    assert all(r.header("Authorization") == f"Api-Key {flagsmith.token}"
               for r in flagsmith.requests)
    pricing = flags["checkout-new-pricing-release"]
    # The environment default, not the identity override that says the opposite.
    assert pricing.enabled is True and flags["legacy-cart-release"].enabled is False
    assert pricing.owner == "ana@example.com" and pricing.kind is FlagKind.RELEASE
    assert flags["checkout-pricing-killswitch"].kind is FlagKind.KILL_SWITCH
    await p.close()


async def test_flagsmith_kill_and_restore_patch_the_feature_state(flagsmith):
    p = flagsmith_provider(flagsmith)
    await p.list_flags()
    await p.set_enabled("checkout-new-pricing-release", False, reason="error spike")
    patch = flagsmith.writes()[-1]
    assert (patch.method, patch.path) == (
        "PATCH", "/api/v1/environments/ser.envkey123/featurestates/101/")
    assert patch.body == {"enabled": False}
    assert patch.header("Authorization") == f"Api-Key {flagsmith.token}"
    assert {f.key: f for f in await p.list_flags()}["checkout-new-pricing-release"].killed
    await p.set_enabled("checkout-new-pricing-release", True, reason="fixed")
    assert flagsmith.writes()[-1].body == {"enabled": True}
    with pytest.raises(ProviderError, match="percentage rollouts are segment rules"):
        await p.set_rollout("checkout-new-pricing-release", 25, reason="ramp")
    await p.close()


async def test_flagsmith_errors_become_clear_messages(flagsmith):
    bad = flagsmith_provider(flagsmith, token="not-the-key")
    with pytest.raises(ProviderError) as err:
        await bad.list_flags()
    assert "token was rejected (HTTP 401: Invalid API Key)" in str(err.value)
    assert "not-the-key" not in str(err.value)
    await bad.close()
    p = flagsmith_provider(flagsmith)
    with pytest.raises(ProviderError, match="no feature named 'nope'"):
        await p.set_enabled("nope", False, reason="x")
    flagsmith.approvals_required = True
    with pytest.raises(ProviderError, match="HTTP 409: This environment requires change"):
        await p.set_enabled("checkout-new-pricing-release", False, reason="x")
    flagsmith.approvals_required = False
    flagsmith.throttle_left, flagsmith.retry_after = 1, "1"
    started = time.monotonic()
    await p.set_enabled("checkout-new-pricing-release", False, reason="x")
    assert time.monotonic() - started >= 0.9
    await p.close()


# ---------------------------------------------------------------------- common


def test_tls_is_verified_unless_told_otherwise(tmp_path):
    base = {"type": "x", "url": "https://flags.example", "token": "t"}
    assert parse_settings("x", base, default_url=None, allowed=set()).verify is True
    insecure = parse_settings("x", {**base, "insecure": True}, default_url=None, allowed=set())
    assert insecure.verify is False
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    assert parse_settings("x", {**base, "ca_file": str(ca)}, default_url=None,
                          allowed=set()).verify == str(ca)
    with pytest.raises(ProviderError, match="not both"):
        parse_settings("x", {**base, "ca_file": str(ca), "insecure": True},
                       default_url=None, allowed=set())
    with pytest.raises(ProviderError, match="token is required"):
        parse_settings("x", {"type": "x", "url": "https://x"}, default_url=None, allowed=set())
    with pytest.raises(ProviderError, match="unknown setting"):
        parse_settings("x", {**base, "tokn": "t"}, default_url=None, allowed=set())


def test_a_secret_token_is_revealed_only_on_the_wire(ld):
    from relconsole.config import Secret

    p = ld_provider(ld, token=Secret(ld.token, "env:LD_TOKEN"))  # type: ignore[arg-type]
    assert ld.token not in repr(vars(p))  # the settings hold it; no repr shows it
    import asyncio

    async def go() -> None:
        await p.list_flags()
        await p.close()

    asyncio.run(go())
    assert ld.requests[-1].header("Authorization") == ld.token


# ---------------------------------------------------------------------- one-shot CLI


def _config(tmp_path: Path, flags_block: str) -> Path:
    path = tmp_path / "relconsole.yaml"
    path.write_text(f"""
release:
  service: checkout-api
  version: 2.3.0
  environment: production
  steps: [{{weight: 100}}]
  flags: [checkout-new-pricing-release]
providers:
  traffic: {{type: sim}}
  flags: {flags_block}
state: {{dir: {tmp_path / 'state'}}}
""")
    return path


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "relconsole", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("vendor", ["launchdarkly", "split", "flagsmith"])
def test_one_shot_flag_commands_exit_0_only_when_the_vendor_shows_the_change(
    tmp_path, vendor, ld, split, flagsmith
):
    fake = {"launchdarkly": ld, "split": split, "flagsmith": flagsmith}[vendor]
    where = {
        "launchdarkly": "project: default, environment: production",
        "split": "workspace: ws-1, environment: Production",
        "flagsmith": "project: 7, environment: ser.envkey123",
    }[vendor]
    cfg = _config(tmp_path, f"{{type: {vendor}, url: '{fake.url}', token: env:FLAG_TOKEN, "
                            f"{where}}}")
    env = {"FLAG_TOKEN": fake.token}
    key = "checkout-new-pricing-release"
    done = _cli("flag", "kill", key, "--reason", "5xx spike", "-c", str(cfg), env=env)
    assert done.returncode == 0, done.stderr
    assert "KILLED (off) (verified)" in done.stdout
    listed = json.loads(_cli("flags", "--json", "-c", str(cfg), env=env).stdout)
    assert next(f for f in listed if f["key"] == key)["enabled"] is False

    fake.ignore_writes = True  # the vendor says 200 but nothing changes
    refused = _cli("flag", "restore", key, "--reason", "fixed", "-c", str(cfg), env=env)
    assert refused.returncode == 1
    assert "not verified: provider shows off" in refused.stderr
    wrong = _cli("flag", "kill", key, "--reason", "x", "-c", str(cfg),
                 env={"FLAG_TOKEN": "definitely-wrong-token"})
    assert wrong.returncode == 1
    assert "token was rejected" in wrong.stderr
    assert "definitely-wrong-token" not in wrong.stderr + wrong.stdout
