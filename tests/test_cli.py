"""The command line as a user or a pipeline runs it: real processes, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.yaml"


def relconsole(*args: str, timeout: float = 60, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "relconsole", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("scenario", "code", "expect"),
    [
        ("healthy", 0, "PROMOTED"),
        ("bad-canary", 3, "rolled back: canary at 0% (verified)"),
        ("latency-regression", 3, "latency_p99"),
        ("no-data", 4, "paused: no data"),
        ("flaky-provider", 0, "PROMOTED"),
    ],
)
def test_headless_demo_exit_codes(scenario, code, expect):
    result = relconsole("demo", "--headless", "--scenario", scenario, "--speed", "3000")
    assert result.returncode == code, result.stdout + result.stderr
    assert expect in result.stdout
    assert "Traceback" not in result.stderr


def test_exit_codes_are_the_contracts():
    """docs/design.md promises these numbers to pipelines; one table holds them."""
    from relconsole.exit_codes import ExitCode

    assert {c.name: int(c) for c in ExitCode} == {
        "OK": 0, "ERROR": 1, "USAGE": 2, "ROLLED_BACK": 3, "PAUSED": 4,
        "HANGUP": 129, "INTERRUPTED": 130,
    }


def test_headless_rollback_line_names_the_gate_and_its_value():
    result = relconsole("demo", "--headless", "--scenario", "bad-canary", "--speed", "3000")
    line = next(x for x in result.stdout.splitlines() if " rollback " in x)
    assert "gate error_rate failed" in line
    assert "error_rate=5." in line or "error_rate=4." in line  # the measured canary value


def test_headless_json_is_one_object_per_line():
    result = relconsole(
        "demo", "--headless", "--json", "--scenario", "bad-canary", "--speed", "3000"
    )
    assert result.returncode == 3
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "attach" and "rollback" in kinds and kinds[-1] == "rolled_back"
    rollback = next(e for e in events if e["event"] == "rollback")
    assert rollback["metrics"]["error_rate"]["canary"] > 0.01
    assert any(g["gate"] == "error_rate" and g["verdict"] == "fail" for g in rollback["gates"])


def test_json_without_headless_is_a_usage_error():
    result = relconsole("demo", "--json")
    assert result.returncode == 2 and "--json needs --headless" in result.stderr


def test_check_reaches_every_provider_of_the_example():
    result = relconsole("check", "-c", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    for kind in ("traffic", "metrics", "flags"):
        assert f"✓ {kind} (sim)" in result.stdout


def test_bad_config_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("weight: 10,", "weight: 0,", 1))
    result = relconsole("check", "-c", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "bad.yaml:" in lines[0] and "release.steps[1].weight" in lines[0]


def test_missing_default_config_explains_what_to_do(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "relconsole", "status"], capture_output=True, text=True,
        cwd=tmp_path, timeout=30,
    )
    assert result.returncode == 2
    assert "relconsole demo" in result.stderr and "-c FILE" in result.stderr


def test_one_shot_commands_act_verify_and_journal(tmp_path):
    env = {"RELCONSOLE_STATE_DIR": str(tmp_path / "state")}
    cfg = ("-c", str(EXAMPLE))
    first = relconsole("advance", *cfg, "--reason", "start the canary", env=env)
    assert first.returncode == 0 and "canary at 1% (verified)" in first.stdout
    status = json.loads(relconsole("status", *cfg, "--json", env=env).stdout)
    assert status["weight"] == 1 and status["phase"] == "progressing"

    assert relconsole("pause", *cfg, "--reason", "lunch", env=env).returncode == 0
    status = json.loads(relconsole("status", *cfg, "--json", env=env).stdout)
    assert status["phase"] == "paused" and status["pause_reason"] == "lunch"
    assert relconsole("resume", *cfg, env=env).returncode == 0

    no_reason = relconsole("rollback", *cfg, env=env)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    back = relconsole("rollback", *cfg, "--reason", "checkout 5xx", env=env)
    assert back.returncode == 0 and "verified" in back.stdout
    again = relconsole("advance", *cfg, env=env)
    assert again.returncode == 1 and "rolled back" in again.stderr

    killed = relconsole("flag", "kill", "checkout-pricing-killswitch", "--reason", "bug",
                        *cfg, env=env)
    assert killed.returncode == 0, killed.stderr
    flags = json.loads(relconsole("flags", *cfg, "--json", env=env).stdout)
    assert next(f for f in flags if f["key"] == "checkout-pricing-killswitch")["enabled"] is False
    bad_pct = relconsole("flag", "set", "search-autocomplete-experiment", "130", "--reason", "x",
                         *cfg, env=env)
    assert bad_pct.returncode == 2 and "0–100" in bad_pct.stderr

    journal = relconsole("journal", *cfg, "--format", "json", env=env)
    intents = [json.loads(line)["intent"] for line in journal.stdout.splitlines()]
    assert {"advance", "pause", "resume", "rollback", "flag.kill"} <= set(intents)
    assert relconsole("journal", *cfg, "--verify", env=env).returncode == 0
    md = relconsole("journal", *cfg, env=env).stdout
    assert "checkout 5xx" in md and "| rollback |" in md


def test_journal_verify_finds_an_edited_record(tmp_path):
    env = {"RELCONSOLE_STATE_DIR": str(tmp_path / "state")}
    cfg = ("-c", str(EXAMPLE))
    relconsole("advance", *cfg, "--reason", "go", env=env)
    relconsole("rollback", *cfg, "--reason", "bad", env=env)
    path = next((tmp_path / "state" / "journal").glob("*.jsonl"))
    path.write_text(path.read_text().replace('"reason":"bad"', '"reason":"fine"'))
    result = relconsole("journal", *cfg, "--verify", env=env)
    assert result.returncode == 1
    assert "edited" in result.stderr or "chain" in result.stderr


def test_a_second_driver_is_refused_while_the_first_holds_the_lease(tmp_path):
    env = {**os.environ, "RELCONSOLE_STATE_DIR": str(tmp_path / "state")}
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from relconsole.assembly import open_session\n"
         "from relconsole.config import load_config\n"
         "from relconsole.clock import SystemClock\n"
         f"s = open_session(load_config({str(EXAMPLE)!r}), clock=SystemClock())\n"
         "print(s.engine.mode.value, flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "drive"
        result = relconsole("advance", "-c", str(EXAMPLE), env=env)
        assert result.returncode == 1
        assert "drives this release" in result.stderr and f"pid {holder.pid}" in result.stderr
    finally:
        holder.kill()
        holder.wait()
    # The lease dies with its holder.
    assert relconsole("advance", "-c", str(EXAMPLE), env=env).returncode == 0


def test_help_of_every_command_prints_and_exits_0():
    from relconsole.cli import build_parser

    parser = build_parser()
    commands = [[]]
    for action in parser._subparsers._group_actions:  # argparse keeps subcommands here
        for name, sub in action.choices.items():
            commands.append([name])
            inner_actions = sub._subparsers._group_actions if sub._subparsers else ()
            for inner in inner_actions:
                commands += [[name, child] for child in inner.choices]
    for argv in commands:
        with pytest.raises(SystemExit) as done:
            parser.parse_args([*argv, "--help"])
        assert done.value.code == 0, argv
    assert ["promote"] in commands and ["flag", "kill"] in commands
