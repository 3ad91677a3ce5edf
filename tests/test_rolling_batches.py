"""Rolling batches (relconsole/providers/rolling.py): how the pool is cut into batches, the
weights and routes that stand for them, the settings a rolling release needs, and what is
refused before anything changes. The real HAProxy and real hook runs are in
tests/integration/test_rolling.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from relconsole.clock import SystemClock
from relconsole.model import ReleasePlan, Route
from relconsole.providers.base import BuildContext, ProviderError, RouteTraffic, routes
from relconsole.providers.command import build_traffic as build_command
from relconsole.providers.haproxy import build_traffic as build_haproxy
from relconsole.providers.rolling import (
    Batches,
    CommandRolling,
    HAProxyRolling,
    batch_size,
)

PY = sys.executable


def ctx(*, baseline: str = "1.0.0", call_timeout: float = 5.0, **rolling: Any) -> BuildContext:
    release = ReleasePlan(service="shop", version="1.1.0", environment="test",
                          strategy="rolling", steps=(), call_timeout=call_timeout,
                          baseline_version=baseline, **rolling)
    return BuildContext(plan=release, clock=SystemClock(), versions={"canary": "1.1.0"})


def haproxy(**extra: Any) -> dict[str, Any]:
    return {"type": "haproxy", "socket": "/run/haproxy.sock", "backend": "app",
            "servers": ["a1", "a2", "a3", "a4"], "deploy": [PY, "deploy.py", "{server}",
                                                             "{version}"],
            "running": [PY, "version.py", "{server}"], **extra}


def hooks(log: Path, **extra: Any) -> dict[str, Any]:
    """Command hooks that only record that they ran (a server's version never changes)."""
    record = [PY, "-c", "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')",
              str(log)]
    return {"type": "command", "servers": ["a1", "a2", "a3"],
            **{h: [*record, f"{h} {{server}}"] for h in ("drain", "deploy", "ready", "health")},
            "running": [PY, "-c", "print('1.0.0')", "{server}"], **extra}


# ----------------------------------------------------------------------------- batches


def test_batches_are_consecutive_groups_of_the_pool_in_its_order() -> None:
    b = Batches(("a1", "a2", "a3", "a4", "a5"), 2, "new", "old")
    assert b.groups == [("a1", "a2"), ("a3", "a4"), ("a5",)]
    assert b.wanted(1) == {"a1": "new", "a2": "new", "a3": "old", "a4": "old", "a5": "old"}
    # The weight a step of k batches carries: the updated share of the pool.
    assert [b.weight(k) for k in range(4)] == [0, 40, 80, 100]
    # Done batches are leading whole ones: a later batch finished first does not count.
    finished = {"a1": True, "a2": True, "a3": True, "a4": False, "a5": True}
    assert b.done(finished) == 1


def test_a_plain_weight_is_a_batch_count_or_refused_naming_the_batches() -> None:
    b = Batches(("a1", "a2", "a3", "a4"), 1, "new", "old")
    assert [b.for_weight(w) for w in (0, 25, 50, 100)] == [0, 1, 2, 4]
    with pytest.raises(ProviderError, match=r"30% is not a whole number of batches.*"
                                            r"0, 25, 50, 75, 100%"):
        b.for_weight(30)


@pytest.mark.parametrize(("rolling", "size"), [
    ({}, 1), ({"batch": 2}, 2), ({"batch_share": 0.25}, 2), ({"batch_share": 0.3}, 2),
    ({"batch_share": 0.05}, 1),
])
def test_batch_size_from_a_count_or_a_share_rounding_down(rolling: dict[str, Any],
                                                          size: int) -> None:
    assert batch_size(ctx(**rolling).plan, 8, "haproxy") == size


@pytest.mark.parametrize("rolling", [{"batch": 4}, {"batch": 9}, {"batch_share": 1.0}])
def test_a_batch_of_the_whole_pool_is_refused(rolling: dict[str, Any]) -> None:
    with pytest.raises(ProviderError, match="all 4 servers out of rotation at once"):
        build_haproxy(haproxy(), ctx(**rolling))


# ----------------------------------------------------------------------------- settings


def test_the_strategy_dispatch_builds_a_route_provider_with_its_pool() -> None:
    provider = build_haproxy(haproxy(), ctx(batch=2))
    assert isinstance(provider, HAProxyRolling)
    assert isinstance(provider, RouteTraffic) and routes(provider)
    assert provider.servers == ("a1", "a2", "a3", "a4")
    assert provider.groups == (("a1", "a2"), ("a3", "a4"))


def test_action_timeout_covers_a_rollback_of_every_batch() -> None:
    provider = build_haproxy(haproxy(deploy_timeout="1m", drain_timeout="10s",
                                     health_timeout="20s"), ctx(batch=1))
    assert isinstance(provider, HAProxyRolling)
    # Four batches, each: drain + deploy + health, and the runtime-API calls around them.
    assert provider.action_timeout >= 4 * (10 + 60 + 20)
    assert provider.action_timeout < 4 * (10 + 60 + 20) + 200


def test_the_old_version_is_required_since_rollback_redeploys_it() -> None:
    with pytest.raises(ProviderError, match=r"needs versions\.baseline"):
        build_haproxy(haproxy(), ctx(baseline=""))


@pytest.mark.parametrize(("change", "said"), [
    ({"servers": None}, "'servers' is required"),
    ({"servers": ["a1"]}, "at least two servers"),
    ({"servers": ["a1", "a1"]}, "'a1' is listed twice"),
    ({"stable": "a1"}, "'stable' belongs to a canary release"),
    ({"deploy": "deploy.sh {server} {version}"}, "no shell is used"),
    ({"deploy": None}, "'deploy' is required"),
    ({"running": [PY, "v.py", "{server}", "{version}"]}, r"unknown placeholder \{version\}"),
    ({"deploy": [PY, "{host}"]}, r"unknown placeholder \{host\}"),
    ({"deploy": ["/no/such/deploy", "{server}"]}, "program '/no/such/deploy' not found"),
    ({"timeout": "5s"}, "must be shorter than release.call_timeout"),
    ({"health_timeout": "soon"}, "'health_timeout'"),
    ({"servers": ["a1", "a 2"]}, "is not a server name"),
])
def test_bad_settings_are_one_clear_message(change: dict[str, Any], said: str) -> None:
    raw = haproxy()
    for key, value in change.items():
        if value is None:
            raw.pop(key)
        else:
            raw[key] = value
    with pytest.raises(ProviderError, match=said):
        build_haproxy(raw, ctx())


def test_the_command_provider_needs_every_hook(tmp_path: Path) -> None:
    raw = hooks(tmp_path / "ran")
    raw.pop("health")
    with pytest.raises(ProviderError, match=r"'health' is required.*exits 0"):
        build_command(raw, ctx())


# ----------------------------------------------------------------------------- refusals


async def test_a_route_it_cannot_do_is_refused_before_any_hook_runs(tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    provider = build_command(hooks(ran), ctx())
    assert isinstance(provider, CommandRolling)
    with pytest.raises(ProviderError, match="batches only"):
        await provider.set_route(10, Route(cohorts=("beta",)), reason="x")
    with pytest.raises(ProviderError, match="4 batches asked; the pool has 3"):
        await provider.set_route(100, Route(batches=4), reason="x")
    with pytest.raises(ProviderError, match="not a whole number of batches"):
        await provider.set_weight(50, reason="x")
    assert not ran.exists()


async def test_a_deploy_the_running_hook_does_not_confirm_fails_and_stays_drained(
        tmp_path: Path) -> None:
    # The deploy hook exits 0, but the server still says it runs the old version: the
    # read-back, not the exit code, decides, and the server is not returned to rotation.
    ran = tmp_path / "ran"
    provider = build_command(hooks(ran), ctx())
    with pytest.raises(ProviderError, match=r"deploy of 1\.1\.0 to a1 exited 0, but a1 "
                                            r"runs 1\.0\.0; a1 left drained"):
        await provider.set_route(33, Route(batches=1), reason="batch 1/3")
    assert ran.read_text().split("\n")[:-1] == ["drain a1", "deploy a1"]


async def test_rollback_of_a_pool_already_on_the_old_version_runs_nothing(
        tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    provider = build_command(hooks(ran), ctx())
    await provider.set_route(0, Route(), reason="rollback")
    assert not ran.exists()
    state = await provider.read()  # the health hook runs here, for each server's health
    assert (state.canary_weight, state.route.batches) == (0, 0)
    assert [s.name for s in state.servers if s.up] == ["a1", "a2", "a3"]
