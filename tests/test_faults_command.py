"""Fault matrix, command traffic provider (docs/faults.md): a real deploy tool process
that fails the way helm and kubectl fail.

The tool is a small program that keeps two canary servers' weights in a file, like a
deployment with two replicas behind a mesh; a fault file makes it fail the way the real
tools do (the cluster unreachable, an API server answering 503, an expired token, a
hang, half its work done, garbage or cut-off status output). Each row runs the real
engine on it and checks what the user sees, what the engine does and what the journal
records, plus the matrix invariants (tests/faults/harness.py).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from relconsole.clock import FastClock
from relconsole.engine.journal import Journal, journal_path
from relconsole.engine.release import ReleaseEngine
from relconsole.model import Actor, Phase
from relconsole.providers.command import CommandTraffic, parse_settings
from relconsole.providers.sim import SimMetrics, SimWorld
from tests.faults.harness import assert_invariants, problem_records, tick, user_sees
from tests.helpers import demo_config

PY = sys.executable
CALL_TIMEOUT = 1.5

# What real tools print when these things happen (helm 3 / kubectl 1.2x wording).
FAULTS = {
    "unreachable": "Error: Kubernetes cluster unreachable: Get \"https://10.0.0.1:6443/version\":"
                   " dial tcp 10.0.0.1:6443: connect: connection refused",
    "http_5xx": "Error: the server is currently unable to handle the request "
                "(get deployments.apps checkout-canary) 503",
    "auth": "error: You must be logged in to the server (Unauthorized)",
}

TOOL = textwrap.dedent("""
    import json, os, sys, time
    base = sys.argv[1]
    args = sys.argv[2:]
    fault = open(base + ".fault").read().strip() if os.path.exists(base + ".fault") else ""
    messages = json.loads(open(base + ".messages").read())
    with open(base + ".calls", "a") as log:
        log.write(json.dumps(args) + "\\n")
    servers = (json.loads(open(base).read()) if os.path.exists(base)
               else {"canary-a": 0, "canary-b": 0})
    if fault in messages:
        print(messages[fault], file=sys.stderr)
        sys.exit(1)
    if fault == "slow":
        time.sleep(30)
    if args[0] == "set":
        weight = int(args[1])
        servers["canary-a"] = weight
        if fault != "half":
            servers["canary-b"] = weight
        open(base + ".tmp", "w").write(json.dumps(servers))
        os.replace(base + ".tmp", base)
        print("release upgraded")
    elif args[0] == "status":
        if fault == "garbage":
            print("<html><body>502 Bad Gateway</body></html>")
            sys.exit(0)
        # Rounded up: a canary that still serves anything is not at 0%.
        canary = (servers["canary-a"] + servers["canary-b"] + 1) // 2
        out = json.dumps({"canary_weight": canary, "servers": [
            {"name": name, "role": "canary", "up": True, "detail": f"weight {w}"}
            for name, w in sorted(servers.items())]})
        if fault == "truncated":
            out = out[: len(out) // 2]
        print(out)
""")


class Tool:
    """The deploy tool's files: its state, its fault switch and its call log."""

    def __init__(self, tmp_path: Path) -> None:
        self.script = tmp_path / "deploy.py"
        self.script.write_text(TOOL)
        self.base = tmp_path / "servers.json"
        Path(f"{self.base}.messages").write_text(json.dumps(FAULTS))

    def inject(self, fault: str) -> None:
        Path(f"{self.base}.fault").write_text(fault)

    def mend(self) -> None:
        Path(f"{self.base}.fault").unlink(missing_ok=True)

    def servers(self) -> dict[str, int]:
        return json.loads(self.base.read_text()) if self.base.exists() else {}

    def sets(self) -> list[list[str]]:
        log = Path(f"{self.base}.calls")
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        return [c for c in calls if c[0] == "set"]

    def provider(self) -> CommandTraffic:
        raw: dict[str, Any] = {
            "type": "command",
            "set_weight": [PY, str(self.script), str(self.base), "set", "{weight}"],
            "status": [PY, str(self.script), str(self.base), "status"],
        }
        return CommandTraffic(parse_settings(raw, call_timeout=CALL_TIMEOUT),
                              {"version": "2.3.0", "service": "checkout",
                               "environment": "production"})


class ToolMetrics(SimMetrics):
    """The simulator's metrics, for a canary that gets the share the tool really set."""

    def __init__(self, world: SimWorld, tool: Tool) -> None:
        super().__init__(world)
        self.tool = tool

    async def sample(self, metrics):  # type: ignore[no-untyped-def]
        servers = self.tool.servers()
        self.world.weight = (sum(servers.values()) + 1) // max(1, len(servers))
        return await super().sample(metrics)


@pytest.fixture
def tool(tmp_path: Path) -> Tool:
    return Tool(tmp_path)


async def engine_at_first_step(tool: Tool, tmp_path: Path) -> ReleaseEngine:
    """A release through the tool, at its first step (1%) with the bake almost over."""
    cfg = demo_config("healthy")
    plan = dataclasses.replace(cfg.plan, call_timeout=CALL_TIMEOUT)
    clock = FastClock()
    actor = Actor("oncall", "bastion")
    journal = Journal(journal_path(tmp_path / "state", plan.release_id), clock, actor,
                      release=plan.release_id)
    engine = ReleaseEngine(plan, traffic=tool.provider(),
                           metrics=ToolMetrics(SimWorld(clock, "healthy"), tool),
                           clock=clock, journal=journal, actor=actor)
    await engine.attach()
    assert (await engine.advance("start")).ok
    assert tool.servers() == {"canary-a": 1, "canary-b": 1}
    return engine


def real_weights(tool: Tool) -> set[int]:
    return set(tool.servers().values())


# --------------------------------------------------------------------------- read faults

READ_ROWS = {
    # row: (fault switch, words the operator reads on the traffic panel)
    "unreachable": ("unreachable", "cluster unreachable"),
    "slower than timeout": ("slow", "timed out after"),
    "server error 5xx": ("http_5xx", "503"),
    "malformed answer": ("garbage", "printed no JSON object with canary_weight"),
    "truncated answer": ("truncated", "printed no JSON object with canary_weight"),
    "authentication refused": ("auth", "Unauthorized"),
}


@pytest.mark.parametrize("row", list(READ_ROWS))
async def test_command_fault_holds_the_release_and_is_journalled(
    row: str, tool: Tool, tmp_path: Path
) -> None:
    fault, words = READ_ROWS[row]
    engine = await engine_at_first_step(tool, tmp_path)
    tool.inject(fault)
    # Well past the step's bake: only the fault can hold the release now.
    await tick(engine, 3)
    seen = user_sees(engine)
    assert "[traffic] stale since" in seen and words in seen, seen
    assert tool.servers() == {"canary-a": 1, "canary-b": 1}
    assert [c[1] for c in tool.sets()] == ["1"], "no step may be taken on an unknown weight"
    refused = await engine.advance("operator presses a")
    assert not refused.ok and words in refused.message
    assert engine.phase is Phase.PROGRESSING and engine.snapshot().weight == 1

    records = engine.journal.records()
    dark = problem_records(records, "traffic")
    assert [r["outcome"] for r in dark] == ["problem"] and words in dark[0]["reason"]

    tool.mend()
    for _ in range(20):
        await tick(engine)
        if engine.snapshot().weight > 1:
            break
    assert engine.snapshot().weight == 10, user_sees(engine)
    assert tool.servers() == {"canary-a": 10, "canary-b": 10}
    records = engine.journal.records()
    assert [r["outcome"] for r in problem_records(records, "traffic")] == [
        "problem", "recovered"]
    assert_invariants(records, real_weights={1, 10})


# --------------------------------------------------------------------------- half applied


async def test_command_half_applied_step_pauses_and_is_never_reported_done(
    tool: Tool, tmp_path: Path
) -> None:
    engine = await engine_at_first_step(tool, tmp_path)
    tool.inject("half")
    for _ in range(20):
        await tick(engine)
        if engine.phase is not Phase.PROGRESSING:
            break
    assert engine.phase is Phase.PAUSED
    assert tool.servers() == {"canary-a": 10, "canary-b": 1}
    seen = user_sees(engine)
    assert "advance to 10% not verified: provider reports 6%" in seen, seen
    assert "check the traffic provider, then resume" in seen
    records = engine.journal.records()
    advances = [r for r in records if r["intent"] == "advance"]
    assert advances[-1]["outcome"].startswith("failed: advance to 10% not verified")
    assert records[-1]["intent"] == "pause"
    assert_invariants(records, real_weights={1, 6})
    # Paused: nothing else is tried until a human looks.
    await tick(engine, 5)
    assert [c[1] for c in tool.sets()] == ["1", "10"]


# --------------------------------------------------------------------------- rollback


@pytest.mark.parametrize("fault", ["unreachable", "slow", "half"])
async def test_command_rollback_during_a_fault_is_retried_until_verified(
    fault: str, tool: Tool, tmp_path: Path
) -> None:
    engine = await engine_at_first_step(tool, tmp_path)
    tool.inject(fault)
    result = await engine.rollback("error budget burning")
    assert not result.ok
    assert engine.phase is Phase.ROLLBACK_FAILED
    seen = user_sees(engine)
    assert "ROLLBACK NOT VERIFIED (attempt 1)" in seen and "retrying in 1s" in seen, seen
    await tick(engine, 2)
    assert engine.snapshot().rollback_attempts >= 2
    assert engine.phase is Phase.ROLLBACK_FAILED

    tool.mend()
    for _ in range(10):
        await tick(engine)
        if engine.phase is Phase.ROLLED_BACK:
            break
    assert engine.phase is Phase.ROLLED_BACK
    assert tool.servers() == {"canary-a": 0, "canary-b": 0}
    records = engine.journal.records()
    rollbacks = [r for r in records if r["intent"] in ("rollback", "rollback.retry")]
    assert any(str(r["outcome"]).startswith("failed") for r in rollbacks)
    assert rollbacks[-1]["outcome"] == "verified"
    assert sum(1 for r in rollbacks if str(r["outcome"]).startswith("verified")) == 1
    assert_invariants(records, real_weights={0, 1})
