"""Issue 10, items 2 and 5 as real processes: closed pipes, and one-shot advances in a bake.

- `relconsole demo --headless | head -2` ended in `internal error: BrokenPipeError` with
  the release left at 1 % and nobody driving. A reader that goes away is an interruption,
  like SIGINT: the release is paused where it stands, the run exits 130, quietly. One-shot
  commands whose reader went away say nothing at all.
- `relconsole advance` cut a bake short without a word; now it refuses inside a bake
  unless told `--skip-bake --reason TEXT`, and journals an early advance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_crash_and_signals import fast_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.yaml"
DEMO = ROOT / "relconsole" / "demo.yaml"


def relconsole(state: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relconsole", *args], capture_output=True, text=True,
        timeout=timeout, cwd=ROOT, env={**os.environ, "RELCONSOLE_STATE_DIR": str(state)},
    )


def status(state: Path, *config: str) -> dict:
    result = relconsole(state, "status", *config, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def journal(state: Path, *config: str) -> list[dict]:
    result = relconsole(state, "journal", *config, "--format", "json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


# -- item 2: a closed stdout ---------------------------------------------------------------


def test_headless_demo_into_head_2_pauses_the_release_and_exits_130_quietly(tmp_path):
    """Exactly the command of the issue, through a shell pipe into a real `head -2`."""
    state = tmp_path / "state"
    script = (f'"{sys.executable}" -m relconsole demo --scenario healthy --headless | head -2; '
              'echo "relconsole exited $' + '{PIPESTATUS[0]}" >&2')
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT,
                            timeout=120, env={**os.environ, "RELCONSOLE_STATE_DIR": str(state)})
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and "attach" in lines[0], result.stdout
    said = result.stderr.splitlines()
    assert said[-1] == "relconsole exited 130", result.stderr
    assert said[:-1] == ["relconsole: interrupted, stdout was closed (the reader of the event "
                         "stream went away): the release is left paused where it stands"]
    demo = ("-c", str(DEMO), "--state-dir", str(state / "demo"))
    snap = status(state, *demo)
    assert snap["phase"] == "paused" and snap["weight"] == 1, snap
    pause = [r for r in journal(state, *demo) if r["intent"] == "pause"][-1]
    assert pause["reason"].startswith("interrupted: stdout was closed")


def test_headless_json_reader_that_stops_reading_mid_release_pauses_it(tmp_path):
    """A pipeline that reads until it has seen the first step, then closes its end: found
    at once from the pipe (no event needs to be written), not after the 3 s bake."""
    cfg, state = fast_config(tmp_path), tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "relconsole", "run", "-c", str(cfg), "--headless", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "RELCONSOLE_STATE_DIR": str(state)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    while True:
        event = json.loads(proc.stdout.readline())
        if event["event"] == "step" and event["weight"] == 10:
            break
    proc.stdout.close()
    assert proc.wait(timeout=20) == 130
    err = proc.stderr.read()
    assert "Traceback" not in err and "internal error" not in err, err
    assert err.count("\n") == 1 and "left paused where it stands" in err, err
    snap = status(state, "-c", str(cfg))
    assert snap["phase"] == "paused" and snap["weight"] == 10


@pytest.mark.parametrize("command", [
    ["status"], ["status", "--json"], ["journal"], ["journal", "--format", "json"],
    ["flags"], ["flags", "--audit"], ["--help"],
])
def test_one_shot_commands_say_nothing_when_their_reader_is_gone(tmp_path, command):
    state = tmp_path / "state"
    assert relconsole(state, "advance", "-c", str(EXAMPLE), "--reason", "start").returncode == 0
    args = command if command == ["--help"] else [*command, "-c", str(EXAMPLE)]
    expected = relconsole(state, *args).returncode  # what it says with someone reading
    proc = subprocess.Popen(
        [sys.executable, "-m", "relconsole", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, cwd=ROOT, env={**os.environ, "RELCONSOLE_STATE_DIR": str(state)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first byte
    assert proc.wait(timeout=60) == expected
    assert proc.stderr.read() == b""


# -- item 5: one-shot advance inside a bake ------------------------------------------------


def busy_example(tmp_path: Path) -> tuple[str, str]:
    """The example release with ten times its simulated traffic: its error gate is judged
    on counts, and a one-shot command a second into a step must find canary requests
    in it (at 1 % of the default 400 req/s, one second can bring none)."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["providers"]["metrics"]["request_rate"] = 4000
    path = tmp_path / "relconsole.yaml"
    path.write_text(yaml.safe_dump(data))
    return "-c", str(path)


def test_one_shot_advance_inside_a_bake_refuses_unless_told_to_skip_it(tmp_path):
    state, cfg = tmp_path / "state", busy_example(tmp_path)
    assert relconsole(state, "advance", *cfg, "--reason", "start").returncode == 0  # → 1 %

    refused = relconsole(state, "advance", *cfg)
    assert refused.returncode == 1
    assert "advance refused: the canary has baked" in refused.stderr
    assert "--skip-bake --reason TEXT" in refused.stderr
    assert status(state, *cfg)["weight"] == 1

    no_reason = relconsole(state, "advance", *cfg, "--skip-bake")
    assert no_reason.returncode == 2 and "--skip-bake needs --reason" in no_reason.stderr
    assert status(state, *cfg)["weight"] == 1

    early = relconsole(state, "advance", *cfg, "--skip-bake", "--reason", "db window closes")
    assert early.returncode == 0, early.stderr
    assert "canary at 10% (verified) — early advance:" in early.stdout
    assert status(state, *cfg)["weight"] == 10
    intent, outcome = [r for r in journal(state, *cfg) if r["intent"] == "advance"][-2:]
    assert intent["reason"] == "db window closes"
    assert intent["data"]["early_advance"]["left"] > 0
    assert outcome["outcome"].startswith("verified — early advance:")


def test_one_shot_advance_to_the_last_step_inside_its_bake_is_refused_too(tmp_path):
    """26 s of bake left at the last-but-one step went straight to 100 %."""
    state, cfg = tmp_path / "state", busy_example(tmp_path)
    assert relconsole(state, "advance", *cfg, "--reason", "start").returncode == 0
    for reason in ("to 10", "to 50"):
        result = relconsole(state, "advance", *cfg, "--skip-bake", "--reason", reason)
        assert result.returncode == 0, result.stderr
    refused = relconsole(state, "advance", *cfg)
    assert refused.returncode == 1 and "advance refused: the canary has baked" in refused.stderr
    snap = status(state, *cfg)
    assert snap["weight"] == 50 and snap["phase"] == "progressing"
