"""The Unleash adapter against a real Unleash server (unleash-server on PostgreSQL).

One server for the whole session (tests/unleash_server.py starts it in a few seconds);
each test makes its own flags, named after itself, so the tests do not depend on order.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from relconsole.clock import FastClock
from relconsole.model import FlagKind
from relconsole.providers.base import BuildContext, ProviderError
from relconsole.providers.unleash import UnleashFlags
from tests.helpers import demo_config, demo_session
from tests.unleash_server import UnleashServer

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


# The `unleash` fixture (one server for the session) is in tests/integration/conftest.py.


def make_flag(server: UnleashServer, name: str, *, kind: str = "release",
              rollout: int | None = None, default_strategy: bool = False,
              enabled: bool = True, owner: str | None = None, description: str = "d") -> str:
    """Create a flag the way a team would, through the Admin API."""
    with server.admin() as admin:
        base = "/api/admin/projects/default/features"
        admin.post(base, json={"name": name, "type": kind,
                               "description": description}).raise_for_status()
        env = f"{base}/{name}/environments/production"
        if rollout is not None:
            admin.post(f"{env}/strategies", json={
                "name": "flexibleRollout",
                "parameters": {"rollout": str(rollout), "stickiness": "default",
                               "groupId": f"group-{name}"},
            }).raise_for_status()
        if default_strategy:
            admin.post(f"{env}/strategies", json={"name": "default"}).raise_for_status()
        if enabled:
            admin.post(f"{env}/on").raise_for_status()
        if owner:
            admin.post(f"/api/admin/features/{name}/tags",
                       json={"type": "owner", "value": owner}).raise_for_status()
    return name


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}-release"


def provider(server: UnleashServer, token: str | None = None) -> UnleashFlags:
    plan = dataclasses.replace(demo_config().plan, environment="production")
    return UnleashFlags(
        {"type": "unleash", "url": server.url, "token": token or server.token,
         "project": "default"},
        BuildContext(plan=plan, clock=FastClock()),
    )


async def test_lists_flags_with_state_type_rollout_owner_and_staleness(unleash):
    rel = make_flag(unleash, unique("list"), rollout=10, owner="payments-team",
                    description="New pricing")
    ks = make_flag(unleash, unique("list-ks"), kind="kill-switch", default_strategy=True)
    off = make_flag(unleash, unique("list-off"), kind="experiment", enabled=False)
    with unleash.admin() as admin:
        admin.post("/api/admin/projects/default/stale",
                   json={"features": [off], "stale": True}).raise_for_status()
    p = provider(unleash)
    flags = {f.key: f for f in await p.list_flags()}
    assert flags[rel].enabled and flags[rel].rollout == 10
    assert flags[rel].owner == "payments-team" and flags[rel].description == "New pricing"
    assert flags[rel].kind is FlagKind.RELEASE and flags[rel].created is not None
    assert flags[rel].environment == "production"
    assert flags[ks].kind is FlagKind.KILL_SWITCH and flags[ks].rollout is None
    assert flags[off].enabled is False and flags[off].kind is FlagKind.EXPERIMENT
    assert flags[off].stale is True
    await p.close()


async def test_kill_restore_and_rollout_10_to_25_read_back(unleash):
    key = make_flag(unleash, unique("ramp"), rollout=10)
    p = provider(unleash)

    async def read():
        return {f.key: f for f in await p.list_flags()}[key]

    assert (await read()).rollout == 10
    await p.set_enabled(key, False, reason="5xx spike")
    assert (await read()).enabled is False
    await p.set_enabled(key, True, reason="fixed")
    assert (await read()).enabled is True
    await p.set_rollout(key, 25, reason="ramp")
    flag = await read()
    assert flag.rollout == 25 and flag.enabled
    # Same strategy, same groupId: nobody is reshuffled as the percentage grows.
    with unleash.admin() as admin:
        env = admin.get(f"/api/admin/projects/default/features/{key}/environments/production")
        strategies = env.json()["strategies"]
    assert len(strategies) == 1
    assert strategies[0]["parameters"] == {"rollout": "25", "stickiness": "default",
                                           "groupId": f"group-{key}"}
    await p.close()


async def test_a_rollout_is_added_where_there_is_none_and_refused_over_default(unleash):
    bare = make_flag(unleash, unique("bare"))
    blanket = make_flag(unleash, unique("blanket"), default_strategy=True)
    p = provider(unleash)
    await p.set_rollout(bare, 30, reason="start")
    assert {f.key: f for f in await p.list_flags()}[bare].rollout == 30
    with pytest.raises(ProviderError, match="'default' \\(everyone\\) strategy"):
        await p.set_rollout(blanket, 30, reason="start")
    with pytest.raises(ProviderError, match="not found \\(HTTP 404"):
        await p.set_enabled("no-such-flag-here", False, reason="x")
    await p.close()


async def test_a_wrong_token_is_a_clear_error_and_a_flags_problem_in_the_engine(unleash):
    wrong = "*:*.not-the-right-token"
    p = provider(unleash, token=wrong)
    with pytest.raises(ProviderError) as err:
        await p.list_flags()
    message = str(err.value)
    assert message.startswith("unleash: list flags: the API token was rejected (HTTP 401")
    assert wrong not in message
    await p.close()

    session = demo_session(auto_advance=False, environment="production")
    session.engine.flags_provider = provider(unleash, token=wrong)
    await session.engine.attach()
    problem = session.engine.snapshot().problem("flags")
    assert problem is not None and "token was rejected" in problem.message
    assert wrong not in problem.message
    await session.close()


def test_one_shot_commands_against_unleash_exit_0_only_when_verified(unleash, tmp_path):
    key = make_flag(unleash, unique("cli"), rollout=10)
    cfg = tmp_path / "relconsole.yaml"
    cfg.write_text(f"""
release:
  service: checkout-api
  version: 2.3.0
  environment: production
  steps: [{{weight: 100}}]
  flags: [{key}]
providers:
  traffic: {{type: sim}}
  flags: {{type: unleash, url: "{unleash.url}", token: env:UNLEASH_TOKEN, project: default}}
state: {{dir: {tmp_path / 'state'}}}
""")
    env = {**os.environ, "UNLEASH_TOKEN": unleash.token}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "relconsole", *args, "-c", str(cfg)],
                              capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)

    done = cli("flag", "set", key, "25", "--reason", "ramp")
    assert done.returncode == 0, done.stderr
    assert "rollout at 25% (verified)" in done.stdout
    done = cli("flag", "kill", key, "--reason", "5xx")
    assert done.returncode == 0, done.stderr
    with httpx.Client(base_url=unleash.url, headers={"Authorization": unleash.token}) as c:
        env_state = c.get(f"/api/admin/projects/default/features/{key}/environments/production")
    assert env_state.json()["enabled"] is False
    missing = cli("flag", "kill", "no-such-flag-anywhere", "--reason", "x")
    assert missing.returncode == 1 and "not found" in missing.stderr
