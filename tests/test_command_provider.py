"""The command traffic provider: argv filling without a shell, exit codes, timeouts, the
status read-back, secrets, and a release driven through it by the real engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from relconsole.clock import FastClock
from relconsole.config import Secret
from relconsole.engine.journal import Journal, journal_path
from relconsole.engine.release import ReleaseEngine
from relconsole.model import Actor, Phase, Role
from relconsole.providers import registry
from relconsole.providers.base import BuildContext, ProviderError
from relconsole.providers.command import (
    CommandTraffic,
    fill,
    parse_settings,
    parse_status,
)
from relconsole.providers.sim import SimMetrics, SimWorld
from tests.helpers import demo_config

PY = sys.executable
NASTY = [
    "it's \"broken\"; rm -rf / && echo pwned",
    "$(reboot) `id` ${HOME} | tee /etc/passwd > /dev/null",
    "{weight} {version} %s %d \\n\nsecond line",
    "--force",
]

# A stand-in deploy tool: records its argv, keeps the weight in a file, prints status JSON.
TOOL = textwrap.dedent("""
    import json, os, sys, time
    state = os.environ["TOOL_STATE"]
    args = sys.argv[1:]
    with open(state + ".calls", "a") as log:
        log.write(json.dumps(args) + "\\n")
    if args[0] == "set":
        open(state, "w").write(args[1])
        print("release upgraded; weight", args[1])
    elif args[0] == "status":
        weight = open(state).read() if os.path.exists(state) else "0"
        print("Warning: kubeconfig is group-readable", file=sys.stderr)
        print(json.dumps({"canary_weight": int(weight), "servers": [
            {"name": "canary-0", "role": "canary", "up": True, "detail": "Running"},
            {"name": "stable-0", "role": "stable", "up": True}]}))
    elif args[0] == "fail":
        print("Error: UPGRADE FAILED: another operation is in progress", file=sys.stderr)
        sys.exit(1)
    elif args[0] == "sleep":
        import subprocess
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open(state + ".child", "w").write(str(child.pid))
        time.sleep(60)
    elif args[0] == "echo-env":
        print(os.environ.get("DEPLOY_TOKEN", ""), os.environ.get("RELCONSOLE_WEIGHT", ""))
    elif args[0] == "spam":
        sys.stdout.write("x" * 200_000 + "END")
""")


@pytest.fixture
def tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "deploytool.py"
    script.write_text(TOOL)
    monkeypatch.setenv("TOOL_STATE", str(tmp_path / "weight"))
    return script


def make(tool: Path, call_timeout: float = 5.0, **hooks: Any) -> CommandTraffic:
    raw: dict[str, Any] = {
        "type": "command",
        "set_weight": [PY, str(tool), "set", "{weight}", "--reason", "{reason}"],
        "status": [PY, str(tool), "status", "{version}"],
        **hooks,
    }
    return CommandTraffic(parse_settings(raw, call_timeout=call_timeout),
                          {"version": "2.3.0", "service": "checkout", "environment": "prod"})


def calls(tool: Path) -> list[list[str]]:
    log = Path(os.environ["TOOL_STATE"] + ".calls")
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# ----------------------------------------------------------------------------- filling


def test_fill_substitutes_inside_an_argument_and_keeps_it_one_argument() -> None:
    argv = ["helm", "upgrade", "{service}", "--set", "canary.weight={weight}",
            "--description", "{reason}", '--set-json={"a": 1}']
    out = fill(argv, {"service": "checkout", "weight": "10", "reason": NASTY[0]})
    assert out == ["helm", "upgrade", "checkout", "--set", "canary.weight=10",
                   "--description", NASTY[0], '--set-json={"a": 1}']


def test_a_value_that_looks_like_a_placeholder_is_not_expanded_again() -> None:
    assert fill(["{reason}"], {"reason": "{weight}", "weight": "10"}) == ["{weight}"]


@pytest.mark.parametrize("reason", NASTY)
async def test_a_nasty_reason_reaches_the_program_as_one_literal_argument(
    tool: Path, reason: str
) -> None:
    traffic = make(tool)
    await traffic.set_weight(10, reason=reason)
    assert calls(tool)[-1] == ["set", "10", "--reason", reason]
    assert (await traffic.read()).canary_weight == 10


# ----------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"status": [PY]}, "'set_weight' is required"),
        ({"set_weight": [PY]}, "'status' is required"),
        ({"set_weight": "helm upgrade x --set w={weight}", "status": [PY]},
         "no shell is used"),
        ({"set_weight": [], "status": [PY]}, "non-empty list"),
        ({"set_weight": [PY, {"a": 1}], "status": [PY]}, "set_weight[1] must be text"),
        ({"set_weight": [PY, "{weigth}"], "status": [PY]}, "unknown placeholder {weigth}"),
        ({"set_weight": [PY], "status": [PY, "{weight}"]}, "only known when changing"),
        ({"set_weight": ["no-such-deploy-tool-xyz"], "status": [PY]}, "not found on PATH"),
        ({"set_weight": ["./missing.sh"], "status": [PY]}, "not found"),
        ({"set_weight": [PY], "status": [PY], "timeout": "10s"}, "shorter than"),
        ({"set_weight": [PY], "status": [PY], "env": {"BAD NAME": "x"}}, "not an environment"),
        ({"set_weight": [PY], "status": [PY], "cwd": "/nonexistent"}, "not a directory"),
        ({"set_weight": [PY], "status": [PY], "rollbak": [PY]}, "did you mean 'rollback'"),
    ],
)
def test_bad_settings_are_refused(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_settings({"type": "command", **raw}, call_timeout=5.0)
    assert message in str(caught.value)
    assert str(caught.value).startswith("command: ")


def test_registry_knows_it() -> None:
    cfg = demo_config("healthy")
    ctx = BuildContext(plan=cfg.plan, clock=FastClock(), versions={"canary": "2.3.0"})
    built = registry.build("traffic", {"type": "command", "set_weight": [PY],
                                       "status": [PY]}, ctx)
    assert isinstance(built, CommandTraffic)
    assert built.values["version"] == "2.3.0"


# ----------------------------------------------------------------------------- status


@pytest.mark.parametrize(
    ("stdout", "weight"),
    [
        ('{"canary_weight": 10}', 10),
        ('{"canary_weight": 50.0}', 50),
        ('Fetching status…\n{"canary_weight": 0}\n', 0),
    ],
)
def test_status_json_is_the_read_back(stdout: str, weight: int) -> None:
    assert parse_status(stdout).canary_weight == weight


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("", "no JSON object"),
        ("weight is 10", "no JSON object"),
        ("[10]", "no JSON object"),
        ('{"weight": 10}', "canary_weight must be"),
        ('{"canary_weight": "10"}', "canary_weight must be"),
        ('{"canary_weight": 101}', "canary_weight must be"),
        ('{"canary_weight": true}', "canary_weight must be"),
        ('{"canary_weight": 10.5}', "canary_weight must be"),
        ('{"canary_weight": 10, "servers": [{"up": true}]}', "need a name"),
    ],
)
def test_bad_status_output_is_a_clear_error(stdout: str, message: str) -> None:
    with pytest.raises(ProviderError, match=message):
        parse_status(stdout)


async def test_status_reports_server_health(tool: Path) -> None:
    state = await make(tool).read()
    assert state.canary_weight == 0
    assert state.servers[0].role is Role.CANARY and state.servers[1].role is Role.BASELINE
    assert state.health_line() == "canary 1/1 up · stable 1/1 up"


# ----------------------------------------------------------------------------- runs


async def test_a_failing_command_reports_exit_code_and_output(tool: Path) -> None:
    traffic = make(tool, set_weight=[PY, str(tool), "fail", "{weight}"])
    with pytest.raises(ProviderError) as caught:
        await traffic.set_weight(10, reason="r")
    message = str(caught.value)
    assert message.startswith("command: set_weight exited 1 after ")
    assert "UPGRADE FAILED: another operation is in progress" in message
    run = traffic.last_run
    assert run is not None and run.exit_code == 1 and not run.timed_out
    assert run.argv == (PY, str(tool), "fail", "10")


async def test_a_hanging_command_is_killed_with_its_children(tool: Path) -> None:
    traffic = make(tool, set_weight=[PY, str(tool), "sleep"], timeout="1s")
    started = time.monotonic()
    with pytest.raises(ProviderError, match=r"set_weight timed out after 1\.\ds \(killed\)"):
        await traffic.set_weight(10, reason="r")
    assert time.monotonic() - started < 4
    child = int(Path(os.environ["TOOL_STATE"] + ".child").read_text())
    await asyncio.sleep(0.2)
    assert not _running(child), "the tool's own child must die with it"
    assert traffic.last_run is not None and traffic.last_run.timed_out


async def test_cancellation_by_the_engine_kills_the_command(tool: Path) -> None:
    traffic = make(tool, set_weight=[PY, str(tool), "sleep"])
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(traffic.set_weight(10, reason="r"), timeout=1.0)
    child_file = Path(os.environ["TOOL_STATE"] + ".child")
    await asyncio.sleep(0.3)
    if child_file.exists():
        assert not _running(int(child_file.read_text()))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rpartition(")")[2].split()[0] == "Z")


async def test_output_is_kept_but_truncated(tool: Path) -> None:
    traffic = make(tool, set_weight=[PY, str(tool), "spam"])
    await traffic.set_weight(10, reason="r")
    assert traffic.last_run is not None
    assert len(traffic.last_run.stdout) <= 16 * 1024
    assert traffic.last_run.stdout.endswith("END")


async def test_promote_and_rollback_hooks_are_used_for_100_and_0(tool: Path) -> None:
    traffic = make(tool, promote=[PY, str(tool), "set", "100", "promote"],
                   rollback=[PY, str(tool), "set", "0", "rollback", "{reason}"])
    await traffic.set_weight(100, reason="done")
    assert calls(tool)[-1] == ["set", "100", "promote"]
    await traffic.set_weight(0, reason="bad canary")
    assert calls(tool)[-1] == ["set", "0", "rollback", "bad canary"]
    await traffic.set_weight(10, reason="step")
    assert calls(tool)[-1] == ["set", "10", "--reason", "step"]


async def test_secrets_reach_the_program_but_never_the_record(tool: Path) -> None:
    token = Secret("tok-123456", "env:DEPLOY_TOKEN")
    traffic = make(tool, set_weight=[PY, str(tool), "echo-env", token],
                   env={"DEPLOY_TOKEN": token})
    await traffic.set_weight(10, reason="r")
    run = traffic.last_run
    assert run is not None
    assert "tok-123456" not in run.stdout and "*** 10" in run.stdout
    assert "***" in run.argv and "tok-123456" not in " ".join(run.argv)


async def test_a_program_that_vanished_is_a_provider_error(tool: Path, tmp_path: Path) -> None:
    script = tmp_path / "gone.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    traffic = make(tool, set_weight=[str(script)])
    script.unlink()
    with pytest.raises(ProviderError, match="did not start: cannot run"):
        await traffic.set_weight(10, reason="r")


# ----------------------------------------------------------------------------- with the engine


async def test_a_release_through_the_command_provider(tool: Path, tmp_path: Path) -> None:
    cfg = demo_config("healthy")
    plan = cfg.plan
    clock = FastClock()
    world = SimWorld(clock, "healthy")
    traffic = make(tool)
    journal = Journal(journal_path(tmp_path, plan.release_id), clock, Actor("ci", "runner"),
                      release=plan.release_id)
    engine = ReleaseEngine(plan, traffic=traffic, metrics=SimMetrics(world), clock=clock,
                           journal=journal, actor=Actor("ci", "runner"))
    await engine.attach()
    assert engine.phase is Phase.PENDING
    assert (await engine.advance("first step")).ok
    assert engine.snapshot().weight == plan.steps[0].weight
    reason = 'error budget "burnt"; $(oops)'
    result = await engine.rollback(reason)
    assert result.ok and engine.phase is Phase.ROLLED_BACK
    assert calls(tool)[-2] == ["set", "0", "--reason", reason]

    # A failing tool: the journal shows its exit code and what it printed.
    failing = make(tool, set_weight=[PY, str(tool), "fail"])
    journal2 = Journal(journal_path(tmp_path / "2", plan.release_id), clock,
                       Actor("ci", "runner"), release=plan.release_id)
    engine2 = ReleaseEngine(plan, traffic=failing, metrics=SimMetrics(world), clock=clock,
                            journal=journal2, actor=Actor("ci", "runner"))
    await engine2.attach()
    result = await engine2.advance("go")
    assert not result.ok and "exited 1" in result.message
    outcomes = [r.get("outcome") or "" for r in journal2.records()]
    assert any("exited 1" in o and "another operation is in progress" in o for o in outcomes)
