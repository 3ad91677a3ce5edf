"""Rolling batches on a real HAProxy and on command hooks alone (relconsole/providers/rolling.py).

Each test has its own fleet (tests/rolling_stack.py): sandbox service processes started
on the old version, restarted on another by the deploy hook, and — for the HAProxy
tests — their own HAProxy with a 200 ms health check. What happened is read from
HAProxy itself (`show servers state`, `show stat`, its log), from the processes (which
version answers) and from the order the deploy hook ran in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relconsole.clock import SystemClock
from relconsole.model import ReleasePlan, Role, Route
from relconsole.providers.base import BuildContext, ProviderError
from relconsole.providers.rolling import (
    CommandRolling,
    HAProxyRolling,
    build_command_rolling,
    build_haproxy_rolling,
)
from tests.rolling_stack import BACKEND, NEW, OLD, Fleet, fleet, hook
from tests.sandbox_stack import Headless

pytestmark = pytest.mark.integration
FOUR = ("s1", "s2", "s3", "s4")
MAINT = 0x01  # srv_admin_state: forced maintenance


def plan(**rolling: Any) -> BuildContext:
    release = ReleasePlan(service="shop", version=NEW, environment="test", strategy="rolling",
                          steps=(), call_timeout=5.0, baseline_version=OLD, **rolling)
    return BuildContext(plan=release, clock=SystemClock(),
                        versions={"canary": NEW, "baseline": OLD})


def on_haproxy(box: Fleet, **rolling: Any) -> HAProxyRolling:
    state = str(box.folder)
    provider = build_haproxy_rolling({
        "type": "haproxy", "socket": str(box.socket), "backend": BACKEND,
        "servers": list(box.names), "deploy": hook("deploy", state, "{server}", "{version}"),
        "running": hook("running", state, "{server}"), "health_timeout": "3s",
        "drain_timeout": "2s",
    }, plan(**rolling))
    provider.poll = 0.1
    return provider


def entered_maintenance(box: Fleet) -> list[str]:
    """The servers HAProxy's log says went into maintenance, in order."""
    return re.findall(rf"Server {BACKEND}/(\w+) (?:is going DOWN|was DOWN and now enters) "
                      "(?:for )?maintenance", box.haproxy_log())


@pytest.fixture
def four(tmp_path: Path) -> Iterator[Fleet]:
    yield from fleet(tmp_path, FOUR)


@pytest.fixture
def four_s3_broken(tmp_path: Path) -> Iterator[Fleet]:
    # s3's new version starts and answers, but fails /healthz, as a bad release does.
    yield from fleet(tmp_path, FOUR, broken=(f"s3@{NEW}",))


async def test_healthy_batches_go_all_new_through_maintenance(four: Fleet) -> None:
    provider = on_haproxy(four, batch=2)
    start = await provider.read()
    assert (start.canary_weight, start.route.batches) == (0, 0)

    await provider.set_route(50, Route(batches=1), reason="batch 1/2")
    assert [four.version_of(s) for s in FOUR] == [NEW, NEW, OLD, OLD]
    assert four.admin_states() == dict.fromkeys(FOUR, 0)  # all back in rotation
    assert {s: row["status"] for s, row in four.stat().items()} == dict.fromkeys(FOUR, "UP")
    assert entered_maintenance(four) == ["s1", "s2"]  # the batch only, through maint
    assert set(four.answers(40)) == {NEW, OLD}  # both versions serve users now
    half = await provider.read()
    assert (half.canary_weight, half.route.batches) == (50, 1)
    assert [s.role for s in half.servers] == [Role.CANARY] * 2 + [Role.BASELINE] * 2

    await provider.set_route(100, Route(batches=2), reason="batch 2/2")
    assert [four.version_of(s) for s in FOUR] == [NEW] * 4
    assert four.admin_states() == dict.fromkeys(FOUR, 0)
    assert {s: row["status"] for s, row in four.stat().items()} == dict.fromkeys(FOUR, "UP")
    assert entered_maintenance(four) == ["s1", "s2", "s3", "s4"]  # s1, s2 left alone
    assert set(four.answers(20)) == {NEW}
    done = await provider.read()
    assert (done.canary_weight, done.route.batches) == (100, 2)
    # A batch's servers are deployed side by side; batch 1 before batch 2.
    deploys = four.deploys()
    assert [sorted(deploys[:2]), sorted(deploys[2:])] == [[f"s1 {NEW}", f"s2 {NEW}"],
                                                          [f"s3 {NEW}", f"s4 {NEW}"]]


async def test_a_server_failing_its_check_stays_in_maintenance_and_rollback_restores(
        four_s3_broken: Fleet) -> None:
    box = four_s3_broken
    provider = on_haproxy(box, batch=1)
    await provider.set_route(25, Route(batches=1), reason="batch 1/4")
    await provider.set_route(50, Route(batches=2), reason="batch 2/4")

    with pytest.raises(ProviderError) as failed:
        await provider.set_route(75, Route(batches=3), reason="batch 3/4")
    said = str(failed.value)
    assert "s3" in said and "maintenance" in said
    assert "L7STS" in said and "503" in said  # what HAProxy's check says, in its words
    states = box.admin_states()
    assert states["s3"] & MAINT  # it takes no users
    assert box.stat()["s3"]["status"] == "MAINT"
    assert states["s4"] == 0 and box.version_of("s4") == OLD  # the next batch never began
    assert set(box.answers(30)) <= {NEW, OLD}  # users only reach healthy servers
    after = await provider.read()
    assert after.route.batches == 2  # s3 runs the new version but is not back in rotation
    assert after.canary_weight == 67  # s1, s2 of the three in rotation
    assert next(s for s in after.servers if s.name == "s3").role is Role.CANARY

    await provider.set_route(0, Route(), reason="rollback")
    assert [box.version_of(s) for s in FOUR] == [OLD] * 4
    assert box.admin_states() == dict.fromkeys(FOUR, 0)
    assert {s: row["status"] for s, row in box.stat().items()} == dict.fromkeys(FOUR, "UP")
    assert set(box.answers(20)) == {OLD}
    # Forward in order, then the rollback newest first; s4, on the old version, untouched.
    assert box.deploys() == [f"s1 {NEW}", f"s2 {NEW}", f"s3 {NEW}",
                             f"s3 {OLD}", f"s2 {OLD}", f"s1 {OLD}"]
    back = await provider.read()
    assert (back.canary_weight, back.route.batches) == (0, 0)

    # Safe to repeat (a rollback retried after a crash): nothing left to do.
    await provider.set_route(0, Route(), reason="rollback again")
    assert len(box.deploys()) == 6


async def test_a_pool_without_health_checks_is_refused_before_anything_changes(
        four: Fleet) -> None:
    four.runtime(f"disable health {BACKEND}/s2")
    provider = on_haproxy(four, batch=1)
    with pytest.raises(ProviderError, match=r"s2 .*no health check"):
        await provider.set_route(25, Route(batches=1), reason="batch 1/4")
    assert four.deploys() == []
    assert four.admin_states() == dict.fromkeys(FOUR, 0)


# ----------------------------------------------------------------------------- command alone


@pytest.fixture
def three_s2_broken(tmp_path: Path) -> Iterator[Fleet]:
    yield from fleet(tmp_path, ("s1", "s2", "s3"), broken=(f"s2@{NEW}",), haproxy=False)


@pytest.fixture
def three(tmp_path: Path) -> Iterator[Fleet]:
    yield from fleet(tmp_path, ("s1", "s2", "s3"), haproxy=False)


def on_hooks(box: Fleet, **rolling: Any) -> CommandRolling:
    state = str(box.folder)
    provider = build_command_rolling({
        "type": "command", "servers": list(box.names),
        "drain": hook("drain", state, "{server}"), "ready": hook("ready", state, "{server}"),
        "deploy": hook("deploy", state, "{server}", "{version}"),
        "health": hook("health", state, "{server}"),
        "running": hook("running", state, "{server}"), "health_timeout": "2s",
    }, plan(**rolling))
    provider.poll = 0.1
    return provider


async def test_command_hooks_alone_roll_the_pool_to_the_new_version(three: Fleet) -> None:
    provider = on_hooks(three, batch_share=0.34)  # a third: one server a batch
    assert len(provider.groups) == 3
    await provider.set_route(33, Route(batches=1), reason="batch 1/3")
    assert [three.version_of(s) for s in three.names] == [NEW, OLD, OLD]
    assert three.drained() == set()
    mid = await provider.read()
    assert (mid.canary_weight, mid.route.batches) == (33, 1)
    await provider.set_route(100, Route(batches=3), reason="promote")
    assert [three.version_of(s) for s in three.names] == [NEW] * 3
    assert three.drained() == set()
    end = await provider.read()
    assert (end.canary_weight, end.route.batches) == (100, 3)
    assert all(s.up and s.role is Role.CANARY for s in end.servers)


async def test_command_hooks_alone_leave_a_failing_server_drained_then_roll_back(
        three_s2_broken: Fleet) -> None:
    box = three_s2_broken
    provider = on_hooks(box, batch=1)
    await provider.set_route(33, Route(batches=1), reason="batch 1/3")
    with pytest.raises(ProviderError, match=r"s2 did not pass its health check.*503.*drained"):
        await provider.set_route(67, Route(batches=2), reason="batch 2/3")
    assert box.drained() == {"s2"}  # it never returned to rotation
    assert box.version_of("s3") == OLD
    seen = await provider.read()
    assert seen.route.batches == 1
    assert not next(s for s in seen.servers if s.name == "s2").up

    await provider.set_route(0, Route(), reason="rollback")
    assert [box.version_of(s) for s in box.names] == [OLD] * 3
    assert box.drained() == set()
    assert box.deploys() == [f"s1 {NEW}", f"s2 {NEW}", f"s2 {OLD}", f"s1 {OLD}"]
    back = await provider.read()
    assert (back.canary_weight, back.route.batches) == (0, 0)


# ----------------------------------------------------------------------------- headless, end to end
# These need the lead's part of issue 14 (release.rolling in the config, the engine's
# set_route for strategy rolling, steps built from the provider's batches).


def rolling_config(box: Fleet) -> Path:
    state = str(box.folder)

    def flow(argv: list[str]) -> str:
        return "[" + ", ".join(f'"{a}"' for a in argv) + "]"

    path = box.folder / "relconsole.yaml"
    path.write_text(f"""release:
  service: shop
  version: {NEW}
  environment: test
  strategy: rolling
  rolling: {{batch: 1, bake: 1s}}
  auto_advance: true
  auto_rollback: true
  poll_interval: 0.5s
  call_timeout: 5s
providers:
  traffic:
    type: haproxy
    socket: "{box.socket}"
    backend: {BACKEND}
    servers: [{", ".join(box.names)}]
    deploy: {flow(hook("deploy", state, "{server}", "{version}"))}
    running: {flow(hook("running", state, "{server}"))}
    health_timeout: 3s
    drain_timeout: 2s
versions: {{canary: "{NEW}", baseline: "{OLD}"}}
state: {{dir: "{box.folder / 'state'}"}}
""")
    return path


def test_headless_rolling_release_goes_all_new(four: Fleet) -> None:
    run = Headless(rolling_config(four))
    try:
        assert run.finish(90) == 0, run.output()
    finally:
        run.close()
    assert [four.version_of(s) for s in FOUR] == [NEW] * 4
    assert four.admin_states() == dict.fromkeys(FOUR, 0)
    assert four.deploys() == [f"{s} {NEW}" for s in FOUR]


def test_headless_rolling_release_rolls_back_the_done_batches(four_s3_broken: Fleet) -> None:
    box = four_s3_broken
    run = Headless(rolling_config(box))
    try:
        assert run.finish(90) == 3, run.output()
    finally:
        run.close()
    assert [box.version_of(s) for s in FOUR] == [OLD] * 4
    assert box.admin_states() == dict.fromkeys(FOUR, 0)
    assert {s: row["status"] for s, row in box.stat().items()} == dict.fromkeys(FOUR, "UP")
    assert box.deploys() == [f"s1 {NEW}", f"s2 {NEW}", f"s3 {NEW}",
                             f"s3 {OLD}", f"s2 {OLD}", f"s1 {OLD}"]
